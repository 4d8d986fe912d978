"""Every shipped architecture and mapping loads and validates; derived numbers checked by hand.

Hand derivations (from the YAML text of arch_specs/):
- Hierarchy (all designs): DRAM (1 instance) -> SMEM (1) -> Subpartition meshY 4 -> RF (4) ->
  PE meshX 16 x meshY 16 -> LRF (4 x 256 = 1024, mesh_x 16) -> MAC (1024). Fan-outs: 1, 4, 256, 1.
- Capacities: SMEM 4096 x 512 b / 8 b = 262,144 words; RF 2048 x 8 / 8 = 2048; LRF 1 x 8 / 8 = 1.
- Bandwidths: DRAM 32 words/cycle x 8 b = 256 b/cycle; SMEM 42 x 8 = 336 b/cycle.
- tc_dense energies (spec, from the study's ERT): SMEM read 536.05005 / 64 = 8.37578 pJ/word.
- Estimated energies (vegeta, highlight, s2ta; estimators/energy.py at 45 nm): SMEM SRAM
  4096 x 512 b, 64 words per row: read 0.007370307 x 4096^0.4393879 x 512 / 64 = 2.279307 pJ
  per word; RF 2048 x 8 (a generic regfile: SRAM class) 0.007370307 x 2048^0.4393879 x 8;
  LRF depth 1: register 0.005514185 pJ/bit x 8 b read. DRAM LPDDR4 8 pJ/bit x 8 b = 64 pJ.
  MAC int8: 0.4506375 pJ.
- Mapping (all designs, M512-K1024-N256): RF keeps Z; Z tile at RF = M 16 (RF spatial) x N 128
  (LRF temporal) = 2048 words = the RF's capacity exactly. SMEM keeps B: N 128 x K 1024 = 131,072.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

from testy_model.spec import load_any, load_arch, load_mapping, load_problem, validate_mapping
from testy_model.spec.validate import tile_extents, tile_words
from testy_model.tasd.pattern import NMPattern

ROOT = Path(__file__).resolve().parents[1]
ARCHS = sorted(p.stem for p in (ROOT / "arch_specs").glob("*.yaml"))
BASES = ["tc_dense", "stc_2of4", "vegeta", "highlight", "s2ta"]
PROBLEM = ROOT / "mappings" / "problem_M512-K1024-N256.yaml"


def _mapping_for(name: str) -> Path:
    """The shipped mapping of a design (TASD variants share their base engine's; designs added
    later with the same hierarchy and no mapping of their own use the dense engine's)."""
    own = ROOT / "mappings" / f"{name.removesuffix('_tasd')}_M512-K1024-N256.yaml"
    return own if own.exists() else ROOT / "mappings" / "tc_dense_M512-K1024-N256.yaml"


def test_all_designs_shipped() -> None:
    assert set(BASES) | {f"{b}_tasd" for b in BASES if b != "tc_dense"} <= set(ARCHS)


@pytest.mark.parametrize("name", ARCHS)
def test_arch_loads_without_warnings_and_hierarchy(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arch = load_arch(ROOT / "arch_specs" / f"{name}.yaml")
    assert arch.level_names == ("DRAM", "SMEM", "RF", "LRF")
    assert [lvl.instances for lvl in arch.levels] == [1, 1, 4, 1024]
    assert [arch.fanout(i) for i in range(4)] == [1, 4, 256, 1]
    assert [lvl.capacity_words for lvl in arch.levels] == [math.inf, 262144, 2048, 1]
    assert arch.level("DRAM").read_bandwidth == 256
    assert arch.level("SMEM").read_bandwidth == 336
    assert arch.peak_macs_per_cycle == 1024
    assert arch.compute.mesh_x == 16
    assert arch.level("LRF").keep == ("A",)
    assert (arch.tasd_unit is not None) == name.endswith("_tasd")


@pytest.mark.parametrize("name", ARCHS)
def test_shipped_mapping_validates(name: str) -> None:
    arch = load_arch(ROOT / "arch_specs" / f"{name}.yaml")
    prob = load_problem(PROBLEM)
    mp = load_mapping(_mapping_for(name), arch, prob)
    validate_mapping(mp, arch, prob)
    rf = arch.level_index("RF")
    assert tile_words(prob, "Z", tile_extents(mp, arch, prob, rf)) == 16 * 128 == 2048
    smem = arch.level_index("SMEM")
    assert tile_words(prob, "B", tile_extents(mp, arch, prob, smem)) == 128 * 1024


def test_every_mapping_file_loads() -> None:
    files = sorted((ROOT / "mappings").glob("*.yaml"))
    assert len(files) >= 6
    for f in files:
        parts = load_any(f)
        assert set(parts) <= {"mapping", "problem"} and parts


def test_tc_dense_spec_energies() -> None:
    arch = load_arch(ROOT / "arch_specs" / "tc_dense.yaml")
    assert arch.level("SMEM").read_energy == pytest.approx(536.05005 / 64)
    assert arch.level("SMEM").energy_source == "spec"
    assert arch.compute.mac_energy == pytest.approx(0.44688)
    assert arch.sparsity.A.patterns == ()


def test_table_energies_vegeta() -> None:
    # vegeta.yaml gives no energies: the built-in estimators (estimators/energy.py) at 45 nm.
    arch = load_arch(ROOT / "arch_specs" / "vegeta.yaml")
    smem = arch.level("SMEM")
    # SMEM: SRAM 4096 x 512 b, 64 8-b words per row: 0.007370307 · 4096^0.4393879 · 512 / 64
    assert smem.read_energy == pytest.approx(0.007370307 * 4096**0.4393879 * 8, rel=1e-9)
    assert smem.read_energy == pytest.approx(2.279307, rel=1e-6)
    assert smem.write_energy == pytest.approx(0.01000256 * 4096**0.406041 * 8, rel=1e-9)
    assert smem.energy_source.endswith("SRAM")
    # RF: a 2048 x 8 "regfile" is CACTI-class SRAM, one word per row
    assert arch.level("RF").read_energy == pytest.approx(0.007370307 * 2048**0.4393879 * 8)
    # LRF: a depth-1 regfile is a register: 0.005514185 pJ/bit read, 0.004683396 write, 8 bits
    assert arch.level("LRF").read_energy == pytest.approx(0.005514185 * 8)
    assert arch.level("LRF").write_energy == pytest.approx(0.004683396 * 8)
    assert arch.level("DRAM").read_energy == pytest.approx(64.0)  # LPDDR4 8 pJ/bit x 8 b
    assert arch.compute.mac_energy == pytest.approx(0.4506375)  # int8 MAC
    # metadata SRAM 8192 x 64: the SRAM row energy per bit, 0.007370307 · 8192^0.4393879
    assert smem.metadata_read_energy == pytest.approx(0.007370307 * 8192**0.4393879)


def test_sparsity_blocks() -> None:
    def pats(name: str, op: str) -> list[str]:
        arch = load_arch(ROOT / "arch_specs" / f"{name}.yaml")
        return [str(p) for p in arch.sparsity.operand(op).patterns]

    assert pats("stc_2of4", "A") == ["2:4"] and pats("stc_2of4", "B") == []
    assert pats("vegeta", "A") == ["1:4", "2:4", "4:4"]
    assert pats("s2ta", "A") == pats("s2ta", "B") == ["1:8", "2:8", "4:8", "8:8"]
    hl = load_arch(ROOT / "arch_specs" / "highlight.yaml").sparsity.A.hierarchical
    assert [str(h) for h in hl][-1] == "1:4(2:4)"
    assert hl[-1].density == pytest.approx(0.25 * 0.5)
    stc = load_arch(ROOT / "arch_specs" / "stc_2of4_tasd.yaml")
    assert stc.sparsity.A.metadata_bits == 2 and stc.sparsity.A.metadata_level == "SMEM"
    assert stc.tasd_unit is not None and stc.tasd_unit.count == 16
    assert NMPattern.parse("2:4").fits(stc.sparsity.A.patterns[0])
