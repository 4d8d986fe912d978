"""Tests of ``testy-model decompose`` (typer CliRunner) and of the array loader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.errors import SpecError
from testy_model.tasd.io import load_array

runner = CliRunner()

# The 2x8 matrix of tests/test_decompose.py::test_hand_2_8_plus_1_8_of_a_2x8_matrix:
# 2:8 keeps -5, -4 (row 0) and 7 (row 1); 1:8 keeps 3 (row 0); residual 1, 2, 0.5.
# L1: total 22.5, term 1 = 16, term 2 = 3; squares: total 104.25, left 14.25 then 5.25.
HAND = np.array(
    [[1.0, -5.0, 2.0, 0.0, 3.0, -4.0, 0.0, 0.5], [0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0]]
)


@pytest.fixture
def hand_npy(tmp_path: Path) -> Path:
    p = tmp_path / "hand.npy"
    np.save(p, HAND)
    return p


def test_table_output(hand_npy: Path) -> None:
    res = runner.invoke(app, ["decompose", str(hand_npy), "--series", "2:8+1:8"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "2:8" in out and "1:8" in out and "residual" in out
    # percentages of L1: 16/22.5 = 71.11 %, 3/22.5 = 13.33 %; of nnz: 3/7 = 42.86 %, 1/7 = 14.29 %
    for text in ("71.11", "13.33", "42.86", "14.29"):
        assert text in out
    # error after term 1: sqrt(14.25/104.25) = 0.3697
    assert f"{math.sqrt(14.25 / 104.25):.4f}" in out


def test_json_output(hand_npy: Path) -> None:
    res = runner.invoke(app, ["decompose", str(hand_npy), "-s", "2:8+1:8", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["series"] == "2:8+1:8" and data["axis"] == 1 and data["total_nnz"] == 7
    assert [t["kept_nnz"] for t in data["terms"]] == [3, 1]
    assert data["residual_nnz"] == 3
    assert data["rel_error"] == pytest.approx(math.sqrt(5.25 / 104.25))


def test_axis_option(hand_npy: Path) -> None:
    # along axis 0 each column is one (padded) 1:8 block of 2 values; 1:8 keeps the larger:
    # columns 0..7 keep 1, -5, 2, 7, 3, -4, (none), 0.5 -> 7 kept, residual empty
    res = runner.invoke(app, ["decompose", str(hand_npy), "-s", "1:8", "--axis", "0", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["axis"] == 0 and data["terms"][0]["kept_nnz"] == 7 and data["rel_error"] == 0.0


def test_out_writes_terms_and_residual(hand_npy: Path, tmp_path: Path) -> None:
    out = tmp_path / "parts.npz"
    res = runner.invoke(app, ["decompose", str(hand_npy), "-s", "2:8+1:8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        assert sorted(z.files) == ["residual", "term1", "term2"]
        np.testing.assert_array_equal(z["term2"], [[0, 0, 0, 0, 3, 0, 0, 0], [0] * 8])
        np.testing.assert_array_equal(z["residual"], [[1, 0, 2, 0, 0, 0, 0, 0.5], [0] * 8])
        np.testing.assert_array_equal(z["term1"] + z["term2"] + z["residual"], HAND)


def test_npz_with_key(tmp_path: Path) -> None:
    p = tmp_path / "w.npz"
    np.savez(p, a=HAND, b=np.ones((2, 4)))
    res = runner.invoke(app, ["decompose", str(p), "--key", "a", "-s", "2:8", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["terms"][0]["kept_nnz"] == 3  # -5, -4 and 7
    # without --key the choice is ambiguous
    res = runner.invoke(app, ["decompose", str(p)])
    assert res.exit_code == 2
    assert "holds 2 arrays (a, b); choose one with --key" in res.output
    res = runner.invoke(app, ["decompose", str(p), "--key", "zz"])
    assert res.exit_code == 2 and "no array named 'zz'" in res.output


def _one_line_error(res: object) -> str:
    out = res.output.strip()  # type: ignore[attr-defined]
    assert res.exit_code == 2, out  # type: ignore[attr-defined]
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    assert out.startswith("error:")
    return out


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npy"
    out = _one_line_error(runner.invoke(app, ["decompose", str(missing)]))
    assert "nope.npy" in out and "file not found" in out


def test_non_numeric_array(tmp_path: Path) -> None:
    p = tmp_path / "s.npy"
    np.save(p, np.array(["a", "b"]))
    out = _one_line_error(runner.invoke(app, ["decompose", str(p)]))
    assert "s.npy" in out and "expected a real numeric array" in out
    c = tmp_path / "c.npy"
    np.save(c, np.array([1 + 1j, 2j]))
    assert "complex" in _one_line_error(runner.invoke(app, ["decompose", str(c)]))


def test_pickled_object_array_is_not_loaded(tmp_path: Path) -> None:
    p = tmp_path / "o.npy"
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    out = _one_line_error(runner.invoke(app, ["decompose", str(p)]))
    assert "o.npy" in out and "cannot read the array" in out


def test_bad_series(hand_npy: Path) -> None:
    out = _one_line_error(runner.invoke(app, ["decompose", str(hand_npy), "-s", "3:2"]))
    assert "invalid TASD series '3:2'" in out and "N must not exceed M" in out


def test_nan_and_bad_axis_name_the_file(tmp_path: Path, hand_npy: Path) -> None:
    p = tmp_path / "nan.npy"
    np.save(p, np.array([1.0, np.nan]))
    out = _one_line_error(runner.invoke(app, ["decompose", str(p)]))
    assert "nan.npy" in out and "NaN" in out
    out = _one_line_error(runner.invoke(app, ["decompose", str(hand_npy), "--axis", "5"]))
    assert "hand.npy" in out and "axis 5 is out of range" in out


def test_wrong_suffix_and_corrupt_file(tmp_path: Path) -> None:
    t = tmp_path / "w.txt"
    t.write_text("1 2 3")
    assert "unsupported file type '.txt'" in _one_line_error(
        runner.invoke(app, ["decompose", str(t)])
    )
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    assert "cannot read the array" in _one_line_error(runner.invoke(app, ["decompose", str(bad)]))


def test_load_array_errors_are_spec_errors(tmp_path: Path) -> None:
    p = tmp_path / "x.npy"
    np.save(p, np.ones(3))
    with pytest.raises(SpecError) as info:
        load_array(p, key="k")
    assert info.value.file == str(p) and "--key applies to .npz" in str(info.value)
    z = tmp_path / "e.npz"
    np.savez(z, s=np.array(["x"]))
    with pytest.raises(SpecError) as info:
        load_array(z, key="s")
    assert info.value.key_path == "s" and str(info.value).startswith(f"{z}: s: array has dtype")


def test_shipped_example_runs() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "weights_70pct.npy"
    res = runner.invoke(app, ["decompose", str(example), "-s", "2:8+1:8", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["shape"] == [256, 256]
    # 70% random sparsity: density ~0.3 -> about 0.3 * 65536 = 19,661 non-zeros (+-3 sigma: 350)
    assert abs(data["total_nnz"] - 0.3 * 65536) < 350
    kept = [t["kept_nnz"] for t in data["terms"]]
    assert sum(kept) + data["residual_nnz"] == data["total_nnz"]
