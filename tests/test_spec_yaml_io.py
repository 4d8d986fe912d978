"""YAML reading: marks, tags, sexagesimal, rejections, warnings, overrides round-trip."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.errors import SpecError
from testy_model.spec import SpecWarning, load_arch, load_yaml_with_marks
from testy_model.spec.yaml_io import (
    TaggedDict,
    apply_overrides,
    format_path,
    parse_override,
    parse_yaml_text,
    spec_error_at,
)

ROOT = Path(__file__).resolve().parents[1]


def test_marks_and_key_paths(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("top:\n  items:\n  - x: 1\n  - x: 2\n    y: [3, 4]\n")
    data, marks = load_yaml_with_marks(f)
    assert data == {"top": {"items": [{"x": 1}, {"x": 2, "y": [3, 4]}]}}
    # line numbers counted by hand in the text above
    assert marks[("top",)] == 1
    assert marks[("top", "items", 1)] == 4
    assert marks[("top", "items", 1, "y")] == 5
    assert format_path(("top", "items", 1, "y")) == "top.items[1].y"
    err = spec_error_at(str(f), marks, ("top", "items", 1, "y", 0), "bad")
    assert str(err) == f"{f}:5: top.items[1].y[0]: bad"


def test_timeloop_tags_keep_kind() -> None:
    data, _ = parse_yaml_text("- !Component {name: a}\n- !Parallel\n  nodes: []\n- !Nothing\n")
    assert isinstance(data[0], TaggedDict) and data[0].tag == "Component"
    assert data[1].tag == "Parallel" and data[1]["nodes"] == []
    assert data[2].tag == "Nothing" and dict(data[2]) == {}


def test_no_sexagesimal_but_normal_numbers() -> None:
    data, _ = parse_yaml_text("p: [2:4, 1:8]\nh: 0x10\nf: 1.5e3\ni: -7\nb: true\n")
    # PyYAML's YAML 1.1 rules would read 2:4 as 2*60+4 = 124
    assert data == {"p": ["2:4", "1:8"], "h": 16, "f": 1500.0, "i": -7, "b": True}


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object:os.system {}\n",
        "x: !!python/object/apply:os.system ['ls']\n",
        "x: !!python/name:os.system ''\n",
        "x: !!set {a: null}\n",
    ],
)
def test_dangerous_tags_rejected(text: str) -> None:
    with pytest.raises(SpecError, match="not allowed") as info:
        parse_yaml_text(text, "t.yaml")
    assert info.value.line == 1 and info.value.key_path == "x"


def test_alias_bomb_rejected() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(SpecError, match="aliases expand to more than"):
        parse_yaml_text("\n".join(lines) + "\n", "bomb.yaml")


def test_duplicate_key_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="duplicate key 'a'"):
        parse_yaml_text("a: 1\na: 2\n")
    with pytest.raises(SpecError, match="cannot read file"):
        load_yaml_with_marks(tmp_path / "nope.yaml")


def test_unused_keys_grouped_in_one_line_per_file(tmp_path: Path) -> None:
    """Unused keys of one file are one warning line naming each key path and line; Accelergy's
    own attributes (n_banks) are accepted quietly."""
    src = (ROOT / "arch_specs" / "tc_dense.yaml").read_text()
    f = tmp_path / "tc.yaml"
    f.write_text(
        src.replace("depth: 4096", "depth: 4096\n      n_banks: 2\n      colour: red\n      hue: 3")
    )
    line = f.read_text().splitlines().index("      colour: red") + 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_arch(f)
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and "\n" not in msgs[0]
    assert all(issubclass(w.category, SpecWarning) for w in caught)
    assert msgs[0].startswith(f"{f}:{line}: 2 keys not used by the model (ignored): ")
    assert f"architecture.nodes[3].attributes.colour (line {line})" in msgs[0]
    assert f"architecture.nodes[3].attributes.hue (line {line + 1})" in msgs[0]
    assert "n_banks" not in msgs[0]


def test_parse_override() -> None:
    assert parse_override("levels.GLB.depth=4096") == (["levels", "GLB", "depth"], 4096)
    assert parse_override("sparsity.A.patterns=[1:4,2:4]")[1] == ["1:4", "2:4"]
    with pytest.raises(SpecError, match=r"KEY\.PATH=VALUE"):
        parse_override("levels.GLB.depth")


def _edited_copy(tmp_path: Path, name: str, edits: list[tuple[str, str]]) -> Path:
    """A copy of arch_specs/NAME.yaml (same file name, so the same design name) with each
    ``old`` text (which must occur exactly once) replaced by ``new``."""
    src = ROOT / "arch_specs" / f"{name}.yaml"
    dst = tmp_path / src.name
    text = src.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    dst.write_text(text)
    return dst


@pytest.mark.parametrize(
    ("name", "overrides", "edits"),
    [
        # table-derived energies are re-derived for the new geometry, as loading the copy does
        ("vegeta", ["levels.SMEM.depth=8192"], [("depth: 4096", "depth: 8192")]),
        ("tc_dense", ["levels.RF.depth=1024"], [("depth: 2048", "depth: 1024")]),
        (
            "vegeta_tasd",
            ["sparsity.A.patterns=[2:4]", "tasd_unit.count=8"],
            [
                ('patterns: ["1:4", "2:4", "4:4"]', 'patterns: ["2:4"]'),
                ("count: 16 ", "count: 8 "),
            ],
        ),
        ("s2ta", ["levels.1.width=256"], [("width: 512", "width: 256")]),
    ],
)
def test_overrides_round_trip(
    tmp_path: Path, name: str, overrides: list[str], edits: list[tuple[str, str]]
) -> None:
    path = _edited_copy(tmp_path, name, edits)
    via_override = load_arch(ROOT / "arch_specs" / f"{name}.yaml", overrides=overrides)
    via_edit = load_arch(path)
    assert via_override.model_dump(exclude={"source"}) == via_edit.model_dump(exclude={"source"})
    assert via_override != load_arch(ROOT / "arch_specs" / f"{name}.yaml")


def test_override_errors_name_choices() -> None:
    path = ROOT / "arch_specs" / "tc_dense.yaml"
    with pytest.raises(SpecError, match=r"valid names are \['DRAM', 'SMEM', 'RF', 'LRF'\]"):
        load_arch(path, overrides=["levels.GLB.depth=4096"])
    with pytest.raises(SpecError, match=r"unknown key 'dept'.*'depth'"):
        load_arch(path, overrides=["levels.SMEM.dept=4096"])
    with pytest.raises(SpecError, match="5:4"):
        load_arch(path, overrides=["sparsity.A.patterns=[5:4]"])
    arch = load_arch(path, overrides=["compute.macs=2048"])
    assert arch.compute.instances == 2048


def test_apply_overrides_is_pure() -> None:
    arch = load_arch(ROOT / "arch_specs" / "tc_dense.yaml")
    new = apply_overrides(arch, ["levels.SMEM.depth=8192"])
    assert arch.level("SMEM").depth == 4096 and new.level("SMEM").depth == 8192
    assert new.level("SMEM").capacity_words == 8192 * 512 / 8
