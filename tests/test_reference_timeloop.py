"""Timeloop's own reference outputs for the example designs, beside ours.

Source of every reference figure below: the public repository
``Accelergy-Project/timeloop-accelergy-exercises``, files
``workspace/example_designs/example_designs/<design>/ref_outputs/default_problem/timeloop-mapper.stats.txt``
(commit 67b75f24c84350d85c5e2ed7fdd00e2a53251577). Their ``timeloop-mapper.map.yaml`` at that
commit is the same mapping as ``../shared/timeloop_examples/<design>/ref_mapping.yaml`` (checked
by reading both; for simple_output_stationary the two files are identical), on
``default_problem.yaml`` (M=32, C=3, P=Q=112, R=S=3, stride 2; 10,838,016 MACs).

Timeloop prints counts *per instance*; the totals below are ``per-instance × utilized instances``
(both printed in the stats file) so they compare with our report, whose accesses are totals.
Energies: Timeloop prices each access with Accelergy's estimate for that exact memory
(``timeloop-mapper.ERT_summary.yaml`` of the same ref_outputs); we price with those per-action
energies too, given as an ERT (``tests/data/timeloop_exercises_ert/<design>.yaml``, some rounded
as reference.md lists them), and charge whole vectors (``model.energy.whole_vector_words``), so
energy is compared within a stated tolerance. (The built-in estimators are smooth fits on other
points; how far they are from these ERTs is in the README's Estimators section.)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.model.evaluate import evaluate
from testy_model.spec.accelergy import apply_ert, load_ert
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.mapping_loader import load_mapping
from testy_model.spec.problem_loader import load_problem

EX = Path(__file__).resolve().parents[2] / "shared" / "timeloop_examples"
ERT = Path(__file__).resolve().parent / "data" / "timeloop_exercises_ert"


def _arch(design: str):
    """The example's architecture priced with the exercise's ERT values."""
    return apply_ert(load_arch(EX / design / "arch.yaml"), load_ert(ERT / f"{design}.yaml"))


def _report(design: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = _arch(design)
        prob = load_problem(EX / "default_problem.yaml")
        mapping = load_mapping(EX / design / "ref_mapping.yaml", arch=arch, problem=prob)
    return evaluate(prob, arch, mapping)


# (level, tensor, kind) -> Timeloop total = per-instance count × utilized instances.
# simple_output_stationary: 16 PEs used (M16 spatial); loop nest DRAM P2 Q8 M2 | GLB Q14 R3 |
# spatial M16 | pe_spad C3 P4 S3 | weight_reg P14.
OS_REF = {
    ("output_activation_reg", "Outputs", "reads"): 652_288 * 16,
    ("output_activation_reg", "Outputs", "fills"): 652_288 * 16,
    ("output_activation_reg", "Outputs", "updates"): 677_376 * 16,
    ("input_activation_reg", "Inputs", "reads"): 677_376 * 16,
    ("input_activation_reg", "Inputs", "fills"): 677_376 * 16,
    ("weight_reg", "Weights", "reads"): 677_376 * 16,
    ("weight_reg", "Weights", "fills"): 48_384 * 16,
    ("pe_spad", "Outputs", "reads"): 652_288 * 16,
    ("pe_spad", "Outputs", "updates"): 677_376 * 16,
    ("shared_glb", "Weights", "reads"): 774_144,
    ("shared_glb", "Weights", "fills"): 13_824,
    ("shared_glb", "Inputs", "reads"): 677_376,
    ("shared_glb", "Inputs", "fills"): 157_296,
    ("DRAM", "Weights", "reads"): 13_824,
    ("DRAM", "Inputs", "reads"): 157_296,
    ("DRAM", "Outputs", "reads"): 0,
    ("DRAM", "Outputs", "updates"): 401_408,
}

# eyeriss_like: 126 PEs used (C3·S3 spatial × Q14 columns); DRAM P8 Q2 M4 | GLB P14 Q4 |
# spatial Q14 | spatial C3 S3 | weights_spad R3 | psum_spad M8.
EYERISS_REF = {
    ("psum_spad", "Outputs", "reads"): 57_344 * 126,
    ("psum_spad", "Outputs", "updates"): 86_016 * 126,
    ("weights_spad", "Weights", "reads"): 86_016 * 126,
    ("weights_spad", "Weights", "fills"): 1_536 * 126,
    ("ifmap_spad", "Inputs", "reads"): 86_016 * 126,
    ("ifmap_spad", "Inputs", "fills"): 10_752 * 126,
    # The exercises' reference (a later Timeloop) prints 1,354,752 = 10,752 · 126: one read per
    # PE. Timeloop v3.0.3 multicasts equal deltas (NestAnalysis::ComputeAccurateMulticasted-
    # Accesses): the spatial fan-out C3 · S3 · Q14 shifts the input rows by 2q + s (Hstride 2,
    # Hdilation 1), which takes 29 distinct values for 14 · 3 (q, s) pairs, so the GLB serves
    # 3 · 29 = 87 distinct deltas: 10,752 · 87 = 935,424 (v3.0.3 counts the same way on
    # conv fan-outs of Q and S, checked against its binary by the oracle harness).
    ("shared_glb", "Inputs", "reads"): 10_752 * 87,
    ("shared_glb", "Inputs", "fills"): 157_296,
    ("shared_glb", "Outputs", "reads"): 0,
    ("shared_glb", "Outputs", "updates"): 401_408,
    ("DRAM", "Weights", "reads"): 13_824,
    ("DRAM", "Inputs", "reads"): 157_296,
    ("DRAM", "Outputs", "updates"): 401_408,
}

# simba_like: DRAM Q28 | GlobalBuffer P4 | spatial C3 M4 (12 PEs) | PEInputBuffer Q4 |
# spatial M4 (48 buffer instances) | PEWeightBuffer R3 P4 S3 | PEAccuBuffer M2 P7.
SIMBA_REF = {
    ("PEWeightRegs", "Weights", "reads"): 225_792 * 48,
    ("PEWeightRegs", "Weights", "fills"): 32_256 * 48,
    ("PEAccuBuffer", "Outputs", "reads"): 200_704 * 48,
    ("PEAccuBuffer", "Outputs", "fills"): 50_176 * 48,
    ("PEAccuBuffer", "Outputs", "updates"): 225_792 * 48,
    ("PEWeightBuffer", "Weights", "reads"): 32_256 * 48,
    ("PEWeightBuffer", "Weights", "fills"): 18 * 48,
    ("PEInputBuffer", "Inputs", "reads"): 225_792 * 12,
    ("PEInputBuffer", "Inputs", "fills"): 56_700 * 12,
    ("GlobalBuffer", "Inputs", "reads"): 170_100,
    ("GlobalBuffer", "Inputs", "fills"): 151_875,
    ("GlobalBuffer", "Outputs", "reads"): 802_816,
    ("GlobalBuffer", "Outputs", "updates"): 1_204_224,
    ("DRAM", "Weights", "reads"): 864,
}

# design -> (reference counts, Timeloop cycles, Timeloop energy µJ, our tolerance on energy).
# Before the ERT-derived table: OS 123.15 (+4.0%), eyeriss 54.92 (-7.4%), simba 125.47 (-48%).
# Tolerances: counts are exact, so what is left is the rounding of the ERT values in
# tests/data/timeloop_exercises_ert (1%) and, for simba, the GlobalBuffer (51.87/66.31 pJ per
# row there vs the ERT's 51.843/66.283), plus Timeloop's address-generator and spatial-network
# energies that we do not model (simba measured -1.0%, so 2%).
CASES = {
    "simple_output_stationary": (OS_REF, 677_376, 118.46, 0.01),
    # eyeriss: the reference's 59.28 µJ less the GLB input reads v3.0.3 does not make (1,354,752
    # − 935,424 = 419,328 words at the GLB's 18.183829 pJ per 8-word vector = 2.273 pJ/word:
    # 0.953 µJ, see EYERISS_REF) = 58.33 µJ
    "eyeriss_like": (EYERISS_REF, 86_016, 59.28 - 419_328 * 18.183829 / 8 / 1e6, 0.01),
    "simba_like": (SIMBA_REF, 225_792, 239.15, 0.02),
}


@pytest.fixture(scope="module")
def reports():
    return {d: _report(d) for d in CASES}


@pytest.mark.parametrize("design", list(CASES))
def test_cycles_match_timeloop(design: str, reports) -> None:
    # Cycles are the product of the temporal loop bounds (no level is bandwidth-bound):
    # OS 2·8·2·14·3·3·4·3·14 = 677,376; eyeriss 8·2·4·14·4·3·8 = 86,016;
    # simba 28·4·4·3·4·3·2·7 = 225,792.
    assert reports[design].cycles == CASES[design][1]


@pytest.mark.parametrize("design", list(CASES))
def test_counts_match_timeloop_exactly(design: str, reports) -> None:
    ref = CASES[design][0]
    acc = reports[design].layers[0].accesses
    got = {k: acc[k[0]][k[1]][k[2]] for k in ref}
    assert got == pytest.approx(ref, rel=0, abs=0.5)


def test_input_halo_lost_with_irrelevant_inner_loop(reports) -> None:
    # Hand derivation (eyeriss_like, Inputs at the GLB): below DRAM the tile spans
    # P14 -> 13·2+3 = 29 rows, Q4·14 = 56 -> 55·2+3 = 113 columns, C3: 3·29·113 = 9,831 words.
    # DRAM loops (outer->inner) P8 Q2 M4: M is irrelevant to Inputs and innermost, so Timeloop
    # does not credit the 1-column overlap between Q steps: 8·2·9,831 = 157,296 (with the
    # overlap it would be 8·(9,831 + 3·29·112) = 156,600).
    acc = reports["eyeriss_like"].layers[0].accesses
    assert acc["DRAM"]["Inputs"]["reads"] == 8 * 2 * 3 * 29 * 113 == 157_296


@pytest.mark.parametrize("design", list(CASES))
def test_energy_within_tolerance(design: str, reports) -> None:
    # Counts match exactly (above); the per-action energies are the exercise's ERT values.
    _, _, ref_uj, tol = CASES[design]
    assert reports[design].energy_pj / 1e6 == pytest.approx(ref_uj, rel=tol)


def test_simba_pe_buffers_priced_as_accelergy_rf(reports) -> None:
    # Simba's PEInputBuffer is an Accelergy smartbuffer_RF 8192x64: 242.046772 pJ per read and
    # 241.470772 per write of one 8-word row (ERT), i.e. 30.2558 / 30.1838 pJ per word. With
    # Timeloop's counts per instance (reads 225,792 = 28,224 rows exactly; fills 56,700 =
    # 7,087.5 rows -> charged as 7,088 whole rows = 56,704 words), 12 instances:
    # 12·(28,224·242.046772 + 7,088·241.470772) = 12·(6,831,528 + 1,711,545) pJ = 102.517 µJ.
    # (The built-in RF estimator, fitted on other Accelergy outputs, prices this 64 KB register
    # file at a few pJ per row: the exercise's Accelergy RF is depth-linear flip-flops.)
    by = reports["simba_like"].layers[0].energy_by_component
    hand = 12 * (28_224 * 242.046772 + 7_088 * 241.470772)
    assert hand / 1e6 == pytest.approx(102.517, rel=1e-4)
    assert by["PEInputBuffer"] == pytest.approx(hand, rel=1e-9)


def test_sparse_tensor_core_like_counts_and_whole_cycles() -> None:
    # sparse_tensor_core_like on its own problem.yaml (M=64, N=K=1; 64 MACs on 64 of 1,024
    # MACs), same source (commit 67b75f24): cycles 3, because DRAM moves 64 A + 1 B words at
    # 32 words/cycle: ceil(65/32) = 3 (Timeloop reports throttling 0.49 and whole cycles).
    # Counts (per instance × instances): LRF A reads 1·64, fills 1·64; RF Z updates 16·4;
    # SMEM A reads 64 fills 64, B reads 1 fills 1; DRAM A reads 64, B reads 1, Z updates 64.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = EX / "sparse_tensor_core_like"
        arch = load_arch(d / "arch.yaml")
        prob = load_problem(d / "problem.yaml")
        rep = evaluate(prob, arch, load_mapping(d / "ref_mapping.yaml", arch=arch, problem=prob))
    acc = rep.layers[0].accesses
    assert rep.cycles == 3
    got = {
        "LRF.A": (acc["LRF"]["A"]["reads"], acc["LRF"]["A"]["fills"]),
        "RF.Z": acc["RF"]["Z"]["updates"],
        "SMEM.A": (acc["SMEM"]["A"]["reads"], acc["SMEM"]["A"]["fills"]),
        "SMEM.B": (acc["SMEM"]["B"]["reads"], acc["SMEM"]["B"]["fills"]),
        "DRAM": (acc["DRAM"]["A"]["reads"], acc["DRAM"]["B"]["reads"], acc["DRAM"]["Z"]["updates"]),
    }
    assert got == {
        "LRF.A": (64, 64),
        "RF.Z": 64,
        "SMEM.A": (64, 64),
        "SMEM.B": (1, 1),
        "DRAM": (64, 1, 64),
    }


def test_sparse_tensor_core_like_energy_whole_vectors() -> None:
    # Timeloop charges a partly filled vector as a whole one. Hand derivation with the ERT of
    # the same ref_outputs (DRAM 512 pJ per 64-b = 8-word vector; SMEM 8192x256 = 32-word rows,
    # read 124.7 / write 118.1 pJ in tests/data, 124.66 / 118.09 in the ERT):
    #   DRAM: A reads ceil(64/8) = 8, B reads ceil(1/8) = 1, Z updates ceil(64/8) = 8 vectors
    #         -> 17 · 512 = 8,704 pJ (word-priced it would be 129 · 64 = 8,256 pJ).
    #   SMEM: A reads ceil(64/32) = 2, fills 2; B reads 1, fills 1 vectors
    #         -> 3·124.7 + 3·118.1 = 728.4 pJ (the ERT values of tests/data, as reference.md).
    # Total energy 0.0104 µJ (Timeloop): ours within 1%.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = EX / "sparse_tensor_core_like"
        arch = _arch("sparse_tensor_core_like")
        prob = load_problem(d / "problem.yaml")
        rep = evaluate(prob, arch, load_mapping(d / "ref_mapping.yaml", arch=arch, problem=prob))
    by = rep.layers[0].energy_by_component
    assert by["DRAM"] == pytest.approx(17 * 512)
    assert by["SMEM"] == pytest.approx(3 * 124.7 + 3 * 118.1, abs=0.5)
    assert rep.energy_pj / 1e6 == pytest.approx(0.0104, rel=0.01)
