"""The differential-testing harness itself (tests/oracle): the stats parser on the 12 shared
Timeloop v3.0.3 cases (numbers read by eye from the text files), format word bits, the case
generator's determinism and sizing, the comparison. Needs no Timeloop binary except the one
generator test marked below."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from oracle import gen
from oracle.compare import bucket, compare, quantity_class, rel_diff, summarize
from oracle.formats import adjust_word_bits, format_word_bits
from oracle.stats import RunStats, add_format_bits, parse_stats, parse_stats_file
from oracle.timeloop import run_timeloop, timeloop_binary

SHARED = Path(__file__).resolve().parents[2] / "shared" / "timeloop_v3_cases"
CASES = sorted(p.name for p in SHARED.iterdir() if p.is_dir()) if SHARED.is_dir() else []


def _stats(name: str) -> RunStats:
    return parse_stats_file(SHARED / name / "timeloop-model.stats.txt")


def test_all_twelve_shared_cases_parse() -> None:
    assert len(CASES) == 12
    for name in CASES:
        st = _stats(name)
        assert st.cycles > 0 and st.energy_pj > 0, name
        assert st.compute is not None and st.levels, name
        # the levels' and the MACs' energies add up to the total (within print rounding)
        parts = sum(lv.energy_pj or 0.0 for lv in st.levels) + (st.compute.energy_pj or 0.0)
        err = st.energy_abs_err + sum(lv.energy_abs_err for lv in st.levels)
        assert abs(parts - st.energy_pj) <= err + st.compute.energy_abs_err + 1e-9, name
        # sparse layout exactly when a sparse_optimizations file was given
        assert st.sparse == (SHARED / name / "sparse_opt.yaml").is_file(), name


def test_c01_dot_product_counts() -> None:
    st = _stats("c01_dotprod_K48_CP_skip_Ad0.25")
    buf = st.level("Buffer")
    a, b, z = buf.tensors["A"], buf.tensors["B"], buf.tensors["Z"]
    assert a.per_instance is not None and a.per_instance["reads"] == 12
    assert a.per_instance["reads.algorithmic"] == 48
    assert b.total["reads.skipped"] == 36 and b.total["reads"] == 12
    assert z.total["reads"] == 11 and z.total["reads.algorithmic"] == 47
    assert z.total["updates"] == 12 and z.total["updates.skipped"] == 36
    assert a.representation == "cp" and a.format_capacity == [[12, 0]]
    assert a.format_total["format_reads"] == [[12, 0]]
    assert st.compute is not None
    assert st.compute.computes == {"algorithmic": 48, "actual": 12, "gated": 0, "skipped": 0}
    assert st.cycles == 12 and buf.cycles == 12
    # fJ/Compute total 2408.57 x 12 actual computes, or fJ/Algorithmic-Compute 602.14 x 48
    assert st.energy_pj == pytest.approx(602.14 * 48 / 1000)
    assert st.energy_pj == pytest.approx(2408.57 * 12 / 1000, abs=st.energy_abs_err)


def test_b07_simba_dense_counts_and_instances() -> None:
    st = _stats("b07_simba_C64M128R3S3P14Q14")
    assert not st.sparse and st.cycles == 112896
    regs = st.level("PEWeightRegs")
    assert regs.instances == 256 and regs.mesh == [16, 16] and regs.size == 1
    w = regs.tensors["Weights"]
    assert w.instances == 128 and w.per_instance == {
        "reads": 112896,
        "updates": 0,
        "fills": 4032,
        "temporal_reductions": 0,
    }
    assert w.total["reads"] == 112896 * 128
    acc = st.level("PEAccuBuffer").tensors["Outputs"]
    assert acc.per_instance is not None and acc.per_instance["reads"] == 112504
    assert acc.instances == 64 and acc.tile_size == 28
    assert st.level("DRAM").tensors["Outputs"].total["updates"] == 25088
    assert "Weights" not in st.level("GlobalBuffer").tensors  # bypassed: not printed
    assert st.compute is not None and st.compute.computes["actual"] == 14450688
    assert st.energy_pj == pytest.approx(4976.10 * 14450688 / 1000)
    assert st.level("DRAM").energy_pj == pytest.approx(2541.95 * 14450688 / 1000)


def test_a01_tc_and_c07_gating() -> None:
    a01 = _stats("a01_TC_M256-K2304-N196")
    assert a01.level("RF").tensors["Z"].per_instance == {
        "reads": 1793792,
        "updates": 1806336,
        "fills": 0,
        "temporal_reductions": a01.level("RF").tensors["Z"].per_instance["temporal_reductions"],
    }
    assert a01.level("LRF").tensors["A"].instances == 1024
    c07 = _stats("c07_eyeriss_gating_C128M192P13Q13N2_I0.45W0.35O0.5")
    w = c07.level("weights_spad").tensors["Weights"]
    assert w.per_instance is not None
    assert w.per_instance["reads"] == 215655 and w.per_instance["reads.gated"] == 263577
    assert c07.compute is not None and c07.compute.computes["actual"] == 33642087
    assert c07.compute.utilized_instances == 156


def test_c03_per_rank_format_counts_and_bits() -> None:
    case = SHARED / "c03_spmspm_M8K16N12_Ad0.2_Bd0.3"
    st = parse_stats_file(case / "timeloop-model.stats.txt")
    a = st.level("Buffer").tensors["A"]
    assert a.representation == "uop cp"
    # rank 0 (innermost, CP): metadata units; rank 1 (UOP): payload units
    assert a.format_total["format_reads"] == [[110, 0], [0, 36]]
    assert a.format_total["format_reads.skipped"] == [[255, 0], [0, 84]]
    assert a.format_total["format_fills"] == [[31, 0], [0, 10]]
    assert a.format_capacity == [[16, 0], [0, 5]]
    bits = format_word_bits(case)
    assert bits[("Buffer", "A")] == [[4, 4], [4, 4]]  # metadata_datawidth 4, no overrides
    assert bits[("BackingStorage", "A")] == [[4, 4], [4, 4], [4, 4]]
    add_format_bits(st, bits)
    assert a.format_bits["format_reads"] == (110 + 36) * 4
    q = st.quantities()
    assert q["Buffer.A.format_reads.r1.pl"] == 36 and q["Buffer.A.format_reads.bits"] == 584


def test_format_word_bits_rules() -> None:
    assert adjust_word_bits(None, 4, 8) == 4  # unspecified: the level's metadata datawidth
    assert adjust_word_bits(3, 4, 4) == 4  # 3 does not divide 4: raised to 4 (README)
    assert adjust_word_bits(3, 4, 12) == 3
    assert adjust_word_bits(5, 4, 8) == 8  # 5, 6, 7 do not divide 8
    with pytest.raises(ValueError):
        adjust_word_bits(16, 4, 8)
    c05 = format_word_bits(SHARED / "c05_conv1d_M32S5Q16_RLE_Wd0.3")
    assert c05[("Buffer", "Weights")] == [[4, 4]]


def test_wrapped_uint64_count_reads_as_negative() -> None:
    text = (SHARED / "c01_dotprod_K48_CP_skip_Ad0.25" / "timeloop-model.stats.txt").read_text()
    bad = text.replace(
        "Gated scalar reads (per-instance)                           : 0",
        "Gated scalar reads (per-instance)                           : 18446744073709551612",
        1,
    )
    st = parse_stats(bad)
    assert st.level("Buffer").tensors["A"].total["reads.gated"] == -4
    cmp = compare(st, _stats("c01_dotprod_K48_CP_skip_Ad0.25"))
    d = next(x for x in cmp.diffs if x.name == "Buffer.A.reads.gated")
    assert d.bucket == "timeloop_invalid" and d.within_tolerance


def test_truncated_file_is_refused() -> None:
    text = (SHARED / "b01_sws_C16M64R3S3P28Q28" / "timeloop-model.stats.txt").read_text()
    with pytest.raises(ValueError, match="Cycles"):
        parse_stats(text.split("Summary Stats")[0])


def test_json_round_trip() -> None:
    st = _stats("c03_spmspm_M8K16N12_Ad0.2_Bd0.3")
    back = RunStats.from_json(st.to_json())
    assert back.quantities() == st.quantities()
    assert back.level("Buffer").tensors["A"].format_capacity == [[16, 0], [0, 5]]


def test_compare_buckets_and_classes() -> None:
    assert bucket(0.0) == "exact" and bucket(0.004) == "<0.5%" and bucket(-0.009) == "<1%"
    assert bucket(0.04) == "<5%" and bucket(0.2) == "worse" and bucket(None) == "missing"
    assert rel_diff(101.0, 100.0) == pytest.approx(0.01)
    assert rel_diff(100.4, 100.0, abs_unc=0.5) == 0.0
    assert math.isinf(rel_diff(1.0, 0.0))
    assert quantity_class("GLB.Inputs.reads.skipped") == "reads.skipped"
    assert quantity_class("DRAM.energy_pj") == "level.energy_pj"
    assert quantity_class("RF.A.format_reads.r1.md") == "format_reads.rank.md"
    st = _stats("b05_eyeriss_C256M384R3S3P13Q13")
    same = compare(st, st, case="b05", kind="dense_conv")
    assert not same.failures and all(d.bucket == "exact" for d in same.diffs)
    other = RunStats.from_json(st.to_json())
    other.cycles *= 1.02
    other.level("DRAM").tensors["Weights"].total["reads"] += 1
    del other.level("DRAM").tensors["Inputs"].total["fills"]
    diff = compare(st, other, case="b05", kind="dense_conv")
    bad = {d.name: d.bucket for d in diff.failures}
    assert bad == {"cycles": "<5%", "DRAM.Inputs.fills": "missing"}  # +1 read is < 0.5 %
    summ = summarize([same, diff])
    assert summ["cases"] == 2 and summ["cases_all_within_tolerance"] == 1
    assert summ["per_quantity"]["cycles"]["exact"] == 1


@pytest.mark.parametrize("kind", gen.KINDS)
def test_generator_is_deterministic_and_sized(kind: str, tmp_path: Path) -> None:
    a, b = gen.generate(11, kind), gen.generate(11, kind)
    assert gen.dump_yaml(a.docs["map.yaml"]) == gen.dump_yaml(b.docs["map.yaml"])
    assert a.docs == b.docs
    assert gen.generate(12, kind).docs != a.docs
    folder = a.write(tmp_path / "case")
    names = set((folder / "inputs.txt").read_text().split())
    assert names >= {"arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml", "ART.yaml"}
    assert ("sparse_opt.yaml" in names) == (kind in gen.SPARSE_KINDS)
    # every factor list multiplies to its dimension
    prob = yaml.safe_load((folder / "problem.yaml").read_text())["problem"]["instance"]
    loops = [d for d in a.docs["map.yaml"]["mapping"] if d["type"] != "datatype"]
    for dim in a.docs["problem.yaml"]["problem"]["shape"]["dimensions"]:
        prod = 1
        for d in loops:
            prod *= gen._factors(d["factors"])[dim]
        assert prod == prob[dim], dim


@pytest.mark.skipif(timeloop_binary() is None, reason="needs the timeloop-model binary")
@pytest.mark.parametrize("kind", gen.KINDS)
def test_generated_cases_are_valid_for_timeloop(kind: str, tmp_path: Path) -> None:
    def tl(folder: Path) -> tuple[int, str]:
        run = run_timeloop(folder, tmp_path / "out")
        return run.rc, run.message

    case, runs = gen.generate_valid(3, kind, tmp_path / "case", tl)
    assert runs >= 1 and case.kind == kind
    run = run_timeloop(tmp_path / "case")
    assert run.rc == 0 and run.stats is not None and run.stats.cycles > 0
