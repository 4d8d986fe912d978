"""apply_arch_overrides (one implementation behind load_arch's overrides), the derived
``array.pes`` key, and the single definition of the known top-level blocks.

Hand derivations (from the YAML text of the files named):
- stc_2of4_tasd.yaml: DRAM, SMEM 1 instance; Subpartition meshY 4 -> RF 4 instances, mesh_x 1;
  PE meshX 16 x meshY 16 -> LRF and MAC 4 x 256 = 1024 instances, mesh_x 16.  The PE block
  (levels with the compute unit's 1024 instances) is LRF; its parent RF has P = 4, so
  ``array.pes`` accepts multiples of 4 and the fan-out below RF is N / 4.
- eyeriss_like/arch.yaml: weights_spad is a 65 nm smartbuffer_RF, 192 rows x 16 b, 8-b words:
  1.976602 pJ per 2-word row (0.988301 pJ/word); depth 384 doubles the depth-linear RF
  estimate: 2 x 0.988301 = 1.976602 pJ/word.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.errors import SpecError
from testy_model.spec import (
    Architecture,
    SpecWarning,
    apply_arch_overrides,
    arch_loader,
    load_arch,
    load_mapping,
    load_problem,
    mapping_loader,
    problem_loader,
    yaml_io,
)

ROOT = Path(__file__).resolve().parents[1]
STC = ROOT / "arch_specs" / "stc_2of4_tasd.yaml"
TC = ROOT / "arch_specs" / "tc_dense.yaml"
EYERISS = ROOT.parent / "shared" / "timeloop_examples" / "eyeriss_like" / "arch.yaml"

# one MAC under one buffer under DRAM: no fan-out anywhere
FLAT = """\
architecture:
  version: 0.4
  nodes:
  - !Component
    name: DRAM
    class: DRAM
    attributes: {width: 8, datawidth: 8, read_energy: 10.0}
  - !Component
    name: Buf
    class: SRAM
    attributes: {depth: 64, width: 8, datawidth: 8, read_energy: 1.0}
  - !Component
    name: MAC
    class: intmac
    attributes: {datawidth: 8, mac_energy: 1.0}
"""


def _quiet(path: Path, overrides: list[str] | None = None) -> Architecture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        return load_arch(path, overrides=overrides)


ROUND_TRIPS = [
    (STC, ["levels.SMEM.depth=2048"]),
    (STC, ["compute.instances=2048", "levels.LRF.instances=2048"]),
    (STC, ["levels.DRAM.read_bandwidth=512", "sparsity.A.patterns=[1:4,2:4]"]),
    (STC, ["array.pes=512", "levels.RF.depth=64"]),
    (TC, ["levels.SMEM.depth=8192", "compute.macs=2048", "levels.LRF.instances=2048"]),
    (EYERISS, ["levels.weights_spad.depth=384"]),
    (EYERISS, ["levels.shared_glb.depth=8192", "levels.DRAM.datawidth=16"]),
]


@pytest.mark.parametrize(("path", "overrides"), ROUND_TRIPS)
def test_apply_equals_load_with_overrides(path: Path, overrides: list[str]) -> None:
    base = _quiet(path)
    got = apply_arch_overrides(base, overrides)
    assert got == _quiet(path, overrides)
    assert got != base  # every case changes something


def test_depth_change_rederives_table_energy() -> None:
    base = _quiet(EYERISS)
    got = apply_arch_overrides(base, ["levels.weights_spad.depth=384"])
    # the RF estimator (estimators/energy.py) grows as depth^0.5192339: 384 rows = 2 x 192 ->
    # x 2^0.5192339 = 1.433194 pJ/word over the loaded value
    assert got.level("weights_spad").depth == 384
    assert got.level("weights_spad").read_energy == pytest.approx(
        base.level("weights_spad").read_energy * 2**0.5192339, rel=1e-12
    )
    assert pytest.approx(1.433194, rel=1e-6) == 2**0.5192339
    # a level whose geometry did not change keeps its energy
    assert got.level("shared_glb").read_energy == base.level("shared_glb").read_energy


def test_spec_energies_are_not_rederived() -> None:
    # STC gives SMEM's energies in the spec (4.46429 pJ/word): a depth change keeps them
    got = apply_arch_overrides(_quiet(STC), ["levels.SMEM.depth=1024"])
    assert got.level("SMEM").read_energy == pytest.approx(4.46429)


def test_no_overrides_is_identity() -> None:
    base = _quiet(STC)
    assert apply_arch_overrides(base, []) is base
    assert apply_arch_overrides(base, None) is base


@pytest.mark.parametrize(("pes", "mesh_x"), [(256, 16), (512, 16), (1024, 16), (2048, 16)])
def test_array_pes_scales_compute_and_pe_block(pes: int, mesh_x: int) -> None:
    a = apply_arch_overrides(_quiet(STC), [f"array.pes={pes}"])
    # compute and LRF (the PE block) follow N; DRAM, SMEM (1) and RF (4) stay
    assert a.compute.instances == pes
    assert a.peak_macs_per_cycle == pes
    assert [lv.instances for lv in a.levels] == [1, 1, 4, pes]
    # fan-out below RF: N / 4; X part 16 kept (16 divides N / 4), the growth goes to Y
    assert a.fanout(a.level_index("RF")) == pes // 4
    assert a.level("LRF").mesh_x == mesh_x
    assert a.compute.mesh_x == mesh_x
    assert a.level("LRF").mesh_y == pes // 16
    # the same as the explicit pair of overrides (mesh_x unchanged at 16)
    pair = [f"compute.instances={pes}", f"levels.LRF.instances={pes}"]
    assert a == apply_arch_overrides(_quiet(STC), pair)


def test_array_pes_small_fanout_shrinks_x() -> None:
    # N = 8: fan-out below RF 8 / 4 = 2, which 16 does not divide -> X fan-out gcd(2, 16) = 2
    a = apply_arch_overrides(_quiet(STC), ["array.pes=8"])
    assert a.level("LRF").mesh_x == 2
    assert a.compute.mesh_x == 2
    assert a.level("LRF").mesh_y == 4  # 8 / 2


@pytest.mark.parametrize("bad", ["6", "0", "-4", "x", "true", "1024.5", "[512]"])
def test_array_pes_invalid_names_valid_values(bad: str) -> None:
    with pytest.raises(SpecError) as info:
        _quiet(STC, [f"array.pes={bad}"])
    msg = str(info.value)
    assert str(STC) in msg  # load_arch names the file
    assert "array.pes" in msg
    assert "multiple of the 4 instances of level 'RF'" in msg
    assert "4, 8, 12, 16" in msg
    with pytest.raises(SpecError, match=r"array\.pes"):
        apply_arch_overrides(_quiet(STC), [f"array.pes={bad}"])


def test_array_pes_without_fanout_scales_only_compute(tmp_path: Path) -> None:
    f = tmp_path / "flat.yaml"
    f.write_text(FLAT)
    base = _quiet(f)
    a = apply_arch_overrides(base, ["array.pes=6"])
    # no level has fewer instances than the compute unit's 1: the PE block is empty, P = 1,
    # so 6 MACs sit under the one buffer (fan-out 6, all of it in X: gcd(6, 1) = 1 -> mesh_x 1)
    assert a.compute.instances == 6
    assert [lv.instances for lv in a.levels] == [1, 1]
    assert a.fanout(1) == 6
    with pytest.raises(SpecError, match=r"expected a positive integer \(valid values: 1, 2, 3"):
        apply_arch_overrides(base, ["array.pes=0"])


def test_overrides_apply_in_order() -> None:
    base = _quiet(STC)
    # array.pes sets the LRF count; a later plain override of the pair wins
    a = apply_arch_overrides(
        base, ["array.pes=512", "compute.instances=2048", "levels.LRF.instances=2048"]
    )
    assert a.compute.instances == 2048
    b = apply_arch_overrides(
        base, ["compute.instances=2048", "levels.LRF.instances=2048", "array.pes=512"]
    )
    assert b.compute.instances == 512
    assert b.level("LRF").instances == 512


def test_plain_override_errors_are_unchanged() -> None:
    with pytest.raises(SpecError, match="not a multiple"):
        apply_arch_overrides(_quiet(STC), ["compute.instances=512"])  # LRF left at 1024
    with pytest.raises(SpecError, match="GLB"):
        apply_arch_overrides(_quiet(STC), ["levels.GLB.depth=4"])


def test_known_top_level_has_one_definition() -> None:
    assert mapping_loader.KNOWN_TOP_LEVEL is yaml_io.KNOWN_TOP_LEVEL
    assert problem_loader.KNOWN_TOP_LEVEL is yaml_io.KNOWN_TOP_LEVEL
    assert arch_loader.KNOWN_TOP_LEVEL is yaml_io.KNOWN_TOP_LEVEL
    for block in ("architecture", "problem", "mapping", "sparsity", "tasd_unit"):
        assert block in yaml_io.KNOWN_TOP_LEVEL


def test_each_loader_skips_the_others_blocks(tmp_path: Path) -> None:
    # one file holding an architecture (+ sparsity, tasd_unit), a problem and a mapping
    parts = [
        STC.read_text(),
        (ROOT / "mappings" / "problem_M512-K1024-N256.yaml").read_text(),
        (ROOT / "mappings" / "stc_2of4_M512-K1024-N256.yaml").read_text(),
    ]
    both = tmp_path / "all.yaml"
    both.write_text("\n".join(parts))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        arch = load_arch(both)
        prob = load_problem(both)
        load_mapping(both, arch, prob)
    top = [str(w.message) for w in rec if "top-level" in str(w.message)]
    assert top == []
    # an unknown block is still warned about, once, by each loader
    extra = tmp_path / "extra.yaml"
    extra.write_text("\n".join(parts) + "\nbogus_block: 1\n")
    loaders = (load_arch, load_problem, lambda f: load_mapping(f, arch, prob))
    for load in loaders:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            load(extra)
        top = [str(w.message) for w in rec if "top-level" in str(w.message)]
        assert len(top) == 1
        assert "bogus_block" in top[0]


def test_technology_override_rescales_estimated_energies() -> None:
    # vegeta gives no energies: every one is the estimators' at 45 nm. At 65 nm each on-chip
    # one (and the MAC) is × S_E(65 nm) = F_65(1.1 V) / F_45(1.0 V) = 1.68075 / 0.8612; DRAM
    # (off-chip, per bit) is not scaled. Energies written in a spec are kept (STC's SMEM).
    f45 = 1.018 - 0.3107 + 0.1539
    f65 = 3.755 * 1.1**2 - 4.398 * 1.1 + 1.975
    base = _quiet(ROOT / "arch_specs" / "vegeta.yaml")
    got = apply_arch_overrides(base, ["technology=65nm"])
    for name in ("SMEM", "RF", "LRF"):
        want = base.level(name).read_energy * f65 / f45
        assert got.level(name).read_energy == pytest.approx(want, rel=1e-12)
    assert got.level("DRAM").read_energy == base.level("DRAM").read_energy
    assert got.compute.mac_energy == pytest.approx(base.compute.mac_energy * f65 / f45)
    stc = apply_arch_overrides(_quiet(STC), ["technology=65nm"])
    assert stc.level("SMEM").read_energy == pytest.approx(4.46429)
