"""Sparseloop sparse_optimizations and Accelergy ERT/ART loading (spec.sparseloop/accelergy)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.errors import SpecError
from testy_model.spec.accelergy import apply_art, apply_ert, load_art, load_ert, short_name
from testy_model.spec.arch import Architecture, ComputeUnit, StorageLevel
from testy_model.spec.sparseloop import (
    load_sparse_optimizations,
    load_yaml_marked,
    sparse_opts_from_support,
)
from testy_model.spec.workload import Density, gemm

SHARED = Path(__file__).resolve().parents[2] / "shared"
STUDY = SHARED / "sparseloop_stc_study"
L = "M512-K1024-N256-IAD0.27-WD0.5"
STC = STUDY / "WD-0.5" / L / "STC-RF2x-24-bandwidth"
DSTC = STUDY / "WD-0.5" / L / "DSTC-RF2x-24-bandwidth"


def test_study_stc_optimizations() -> None:
    opts = load_sparse_optimizations(STC / "aggregated_input.yaml")
    assert [t.name for t in opts.targets] == ["DRAM", "SMEM", "RF", "LRF"]
    fmt = opts.target("SMEM").format_of("A")
    assert fmt is not None
    # file lists UOP x4 then CP; Sparseloop's Rank 0 (innermost) is the CP rank with 2 bits.
    inner = fmt.ranks_inner_to_outer
    assert inner[0].format == "CP" and inner[0].metadata_word_bits == 2
    assert [r.format for r in inner[1:]] == ["UOP"] * 4
    acts = opts.target("RF").actions
    assert {(a.type, a.target, a.condition_on) for a in acts} == {
        ("skipping-spatial", "B", ("A",)),
        ("skipping-spatial", "Z", ("A",)),
    }
    assert opts.target("MAC").actions == () and not opts.is_dense


def test_study_dstc_optimizations() -> None:
    opts = load_sparse_optimizations(DSTC / "aggregated_input.yaml")
    lrf = opts.target("LRF")
    assert {a.type for a in lrf.actions} == {"position-skipping"}
    b = lrf.format_of("B")
    assert b is not None and b.ranks[0].flattened_rank_ids == (("N",),)
    assert opts.target("RF").actions[0].condition_on == ("A", "B")


HYPHEN = """\
sparse_optimizations:
  targets:
  - name: Buf
    representation-format:
      data-spaces:
      - name: A
        rank-application-order: inner-to-outer
        ranks:
        - format: CP
          metadata-word-bits: 3
    action-optimization:
    - type: gating
      target: B
      condition-on: [A]
"""


def test_hyphen_and_underscore_keys_are_the_same(tmp_path: Path) -> None:
    f1, f2 = tmp_path / "h.yaml", tmp_path / "u.yaml"
    f1.write_text(HYPHEN)
    under = HYPHEN
    for k in (
        "representation-format",
        "data-spaces",
        "rank-application-order",
        "metadata-word-bits",
        "action-optimization",
        "condition-on",
    ):
        under = under.replace(k, k.replace("-", "_"))
    f2.write_text(under)
    a, b = load_sparse_optimizations(f1), load_sparse_optimizations(f2)
    assert a.targets == b.targets
    assert a.target("Buf").format_of("A").ranks[0].metadata_word_bits == 3  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "words"),
    [
        ("format: CP", "format: XYZ", 9, "ranks[0].format", "unknown rank format 'XYZ'"),
        ("type: gating", "type: zapping", 12, "action-optimization[0].type", "unknown action"),
        (
            "metadata-word-bits: 3",
            "metadta-word-bits: 3",
            10,
            "ranks[0].metadta-word-bits",
            "unknown key",
        ),
        (
            "metadata-word-bits: 3",
            "metadata-word-bits: -1",
            10,
            "metadata-word-bits",
            "non-negative",
        ),
    ],
)
def test_bad_optimizations_name_file_line_key(
    tmp_path: Path, old: str, new: str, line: int, key: str, words: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(HYPHEN.replace(old, new))
    with pytest.raises(SpecError) as ei:
        load_sparse_optimizations(f)
    err = ei.value
    assert err.file == str(f) and err.line == line
    assert err.key_path is not None and err.key_path.endswith(key)
    assert words in str(err)


def test_marked_yaml_lines(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("a:\n  b:\n  - 1\n  - c: 2\n")
    doc = load_yaml_marked(f)
    assert doc.data == {"a": {"b": [1, {"c": 2}]}}
    assert doc.line(("a", "b", 1, "c")) == 4 and doc.line(("a", "b", 0)) == 3
    f.write_text("a: [1,\n")
    with pytest.raises(SpecError, match="YAML syntax error"):
        load_yaml_marked(f)


def test_short_names() -> None:
    assert short_name("system.SM.Subpartition[0..3].PE[0..255].MAC") == "MAC"
    # dots inside a bracket range are not path separators (the DSTC ERT spells it this way)
    assert short_name("system.SM.Subparition[0..3].MAC[0..255]") == "MAC"
    assert short_name("system.DRAM") == "DRAM"


def _arch() -> Architecture:
    return Architecture(
        levels=(
            StorageLevel(
                name="DRAM", kind="DRAM", width=64, datawidth=8, read_energy=1, write_energy=1
            ),
            StorageLevel(
                name="SMEM",
                depth=4096,
                width=512,
                datawidth=8,
                read_energy=1,
                write_energy=1,
                metadata_depth=8192,
                metadata_width=64,
            ),
            StorageLevel(
                name="Extra", depth=4, width=8, datawidth=8, read_energy=7, write_energy=7
            ),
        ),
        compute=ComputeUnit(name="MAC", instances=4),
    )


def test_apply_ert_per_word_energies_and_warning() -> None:
    ert = load_ert(STC / "ERT.yaml")
    assert ert.full_names["MAC"] == "system.SM.Subpartition[0..3].PE[0..255].MAC"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        arch = apply_ert(_arch(), ert)
    # a component with no ERT entry is named in a warning and keeps its energies
    assert any("Extra" in str(x.message) for x in w)
    assert arch.level("Extra").read_energy == 7
    smem = arch.level("SMEM")
    # SMEM: 512-bit rows of 8-bit words = 64 words per access:
    # read 285.71464 / 64 = 4.4642913 pJ/word, write 316.96744 / 64 = 4.9526163 pJ/word;
    # metadata read 25.8695 pJ per 64-bit row / 64 = 0.40421 pJ/bit.
    assert smem.read_energy == pytest.approx(285.71464 / 64)
    assert smem.write_energy == pytest.approx(316.96744 / 64)
    assert smem.metadata_read_energy == pytest.approx(25.8695 / 64)
    # DRAM: 512 pJ per 64-bit access of 8 words = 64 pJ/word; no metadata action listed: the
    # per-bit summary is absent (None) and the ERT's actions price metadata at 0 (Timeloop)
    assert arch.level("DRAM").read_energy == 64
    assert arch.level("DRAM").metadata_read_energy is None
    from testy_model.model.arrays import action_energies, op_index

    e = action_energies(arch.level("DRAM"))
    assert e[op_index("random", "reads", metadata=True)] == 0.0
    assert arch.compute.mac_energy == 0.5608 and arch.compute.gated_mac_energy == 0.01798


def test_apply_art_areas() -> None:
    art = load_art(STC / "ART.yaml")
    assert art.area("SMEM") == 2604256.0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        arch = apply_art(_arch(), art)
    assert any("Extra" in str(x.message) for x in w)
    assert arch.level("SMEM").area_um2 == 2604256.0 and arch.compute.area_um2 == 332.25


def test_bad_ert(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text(
        "ERT:\n  tables:\n  - name: x\n    actions:\n    - name: read\n      energy: fast\n"
    )
    with pytest.raises(SpecError) as ei:
        load_ert(f)
    assert ei.value.line == 6 and "energy" in (ei.value.key_path or "")
    f.write_text("nothing: 1\n")
    with pytest.raises(SpecError, match="ERT"):
        load_ert(f)


def test_opts_from_this_tools_sparsity_block() -> None:
    from testy_model.spec.arch import OperandSparsity, SparsitySupport

    base = _arch()
    arch = base.model_copy(
        update={
            "levels": (
                base.levels[0],
                base.levels[1].model_copy(update={"instances": 1}),
                base.levels[2].model_copy(update={"instances": 2}),
            ),
            "sparsity": SparsitySupport(A=OperandSparsity(patterns=("2:4",), metadata_bits=2)),
        }
    )
    prob = gemm(8, 8, 8, densities={"A": Density(kind="nm", pattern="2:4")})
    opts = sparse_opts_from_support(arch, prob)
    # wherever A may live: an innermost CP rank of 2 bits under one 0-bit UOP rank per level
    # below that may keep A, all flattened over A's dimensions; skipping-spatial of B and Z at
    # the innermost fan-out level (SMEM -> 2 x Extra; Extra -> 2 MACs each, the innermost).
    fmt = opts.target("SMEM").format_of("A")
    assert fmt is not None and [r.format for r in fmt.ranks] == ["UOP", "CP"]
    assert fmt.ranks[-1].metadata_word_bits == 2 and fmt.ranks[0].payload_word_bits == 0
    assert fmt.ranks[-1].flattened_rank_ids == (("M", "K"),)
    assert [r.format for r in opts.target("Extra").format_of("A").ranks] == ["CP"]  # type: ignore[union-attr]
    assert {(a.type, a.target) for a in opts.target("Extra").actions} == {
        ("skipping-spatial", "B"),
        ("skipping-spatial", "Z"),
    }
    # a dense problem needs nothing
    assert sparse_opts_from_support(arch, gemm(8, 8, 8)).is_dense
