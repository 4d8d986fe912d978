"""``testy-model validate`` and ``testy-model show arch``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from testy_model.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_validate_arch_problem_mapping() -> None:
    res = runner.invoke(
        app,
        [
            "validate",
            str(ROOT / "arch_specs/stc_2of4.yaml"),
            str(ROOT / "mappings/problem_M512-K1024-N256.yaml"),
            str(ROOT / "mappings/stc_2of4_M512-K1024-N256.yaml"),
        ],
    )
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "262,144 words" in out  # SMEM capacity
    assert "1024 MACs" in out
    assert "sparsity A: 2:4" in out
    assert "134,217,728 MACs" in out
    assert "mapping fits the architecture and problem" in out


def test_validate_broken_file_one_line_exit_2() -> None:
    res = runner.invoke(app, ["validate", str(ROOT / "tests/broken/arch_pattern_5of4.yaml")])
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "arch_pattern_5of4.yaml:" in lines[0] and "5:4" in lines[0]


def test_show_arch_with_override() -> None:
    res = runner.invoke(
        app,
        ["show", "arch", str(ROOT / "arch_specs/tc_dense.yaml"), "--set", "levels.SMEM.depth=8192"],
    )
    assert res.exit_code == 0, res.output
    assert "524,288 words" in res.output  # 8192 x 512 b / 8 b
    assert "peak 1024 MACs/cycle" in res.output
