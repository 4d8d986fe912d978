"""The Timeloop example designs run unchanged with their reference mappings, and the
simple_weight_stationary case reproduces Timeloop's own figures (reference.md).

Timeloop's figures for simple_weight_stationary (default_problem, ref_mapping): cycles 903,168;
DRAM Weights reads 864, Inputs reads 151,875, Outputs updates 401,408 (reads 0); shared_glb
Weights reads 24,192 fills 864, Inputs reads 2,709,504 fills 151,875, Outputs reads 3,211,264
updates 3,612,672; energy 151.67 µJ. These are Timeloop's outputs, not ours: the hand derivation
of why our formulas give them is in the comments of ``test_simple_weight_stationary_counts``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.model import evaluate_nests, nests_from_mapping
from testy_model.model.evaluate import evaluate
from testy_model.spec.accelergy import apply_ert, load_ert
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.mapping_loader import load_mapping
from testy_model.spec.problem_loader import load_problem

EX = Path(__file__).resolve().parents[2] / "shared" / "timeloop_examples"
ERT = Path(__file__).resolve().parent / "data" / "timeloop_exercises_ert"
DESIGNS = [
    "simple_weight_stationary",
    "simple_output_stationary",
    "eyeriss_like",
    "simba_like",
    "sparse_tensor_core_like",
]


def _load(design: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(EX / design / "arch.yaml")
        own = EX / design / "problem.yaml"
        prob = load_problem(own if own.exists() else EX / "default_problem.yaml")
        mapping = load_mapping(EX / design / "ref_mapping.yaml", arch=arch, problem=prob)
    return arch, prob, mapping


@pytest.mark.parametrize("design", DESIGNS)
def test_example_runs_with_its_reference_mapping(design: str) -> None:
    arch, prob, mapping = _load(design)
    cost = evaluate_nests(prob, arch, nests_from_mapping(mapping, arch, prob))
    # The reference mapping is legal: factors multiply to the bounds, fits the buffers/fan-out.
    assert bool(cost.valid[0])
    # Cycles are at least the MACs spread over every MAC unit, energy at least the MAC energy.
    assert cost.cycles[0] >= prob.macs / arch.compute.instances
    assert cost.energy_pj[0] >= prob.macs * arch.compute.mac_energy
    # Every MAC of the problem is counted exactly once.
    assert cost.macs[0] == prob.macs


def test_simple_weight_stationary_counts() -> None:
    # Loop nest (outer→inner): DRAM Q14 | GLB S3 P2 M8 | spatial C3 M4 | spad R3 Q2 P2 |
    # weight_reg P28 Q4. Cycles = Π temporal = 14·48·12·112 = 903,168.
    # Weights: GLB tile C3·M32·R3·S3 = 864, Q14 above is irrelevant -> DRAM reads 864.
    #   spad tile R3 = 3 words; above it M8 (relevant) is innermost -> 14·3·2·(8·3) = 2016 per
    #   PE; 12 PEs hold different weights (C, M relevant) -> GLB reads 24,192.
    # Inputs: GLB tile C3 × (2·111+2+1 = 225) × (2·7+2+1 = 17) = 11,475; Q14 slides the window by
    #   8·2 = 16 of 17 rows -> 11,475 + 13·(3·225·16) = 151,875 (DRAM reads = GLB fills).
    #   input register: 1 word refetched every cycle, multicast over M4, distinct over C3:
    #   903,168·3 = 2,709,504 GLB reads.
    # Outputs: GLB tile M32·P112·Q8, Q14 relevant -> 401,408 DRAM updates, all first writes, so
    #   no DRAM reads. Output register: every cycle a new word -> 903,168 updates per PE, reduced
    #   over C3, distinct over M4: 3,612,672 GLB updates; distinct outputs per PE 100,352 ->
    #   (903,168 − 100,352)·4 = 3,211,264 GLB reads.
    arch, prob, mapping = _load("simple_weight_stationary")
    c = evaluate_nests(prob, arch, nests_from_mapping(mapping, arch, prob))
    w, i, o = (prob.tensor_names.index(t) for t in ("Weights", "Inputs", "Outputs"))
    dram, glb = arch.level_index("DRAM"), arch.level_index("shared_glb")
    assert c.cycles[0] == 903_168
    assert c.reads[0, dram, w] == 864
    assert c.reads[0, dram, i] == 151_875
    assert c.reads[0, dram, o] == 0
    assert c.updates[0, dram, o] == 401_408
    assert c.reads[0, glb, w] == 24_192
    assert c.fills[0, glb, w] == 864
    assert c.reads[0, glb, i] == 2_709_504
    assert c.fills[0, glb, i] == 151_875
    assert c.reads[0, glb, o] == 3_211_264
    assert c.updates[0, glb, o] == 3_612_672
    assert c.utilisation[0] == pytest.approx(12 / 256)
    # Energy: Timeloop + Accelergy give 151.67 µJ. Priced with the exercise's per-action energies
    # (tests/data/timeloop_exercises_ert: registers read 0.144 pJ, write 0; GLB 32.38/26.16 pJ
    # per 4-word row; pe_spad 0.68/1.58 pJ; DRAM 512 pJ per 4-word row; MAC 0.315) ours is
    # 151.66 µJ (was 156.17, +3.0%, when register writes cost 0.144 pJ). The tolerance 1% covers
    # the rounding of the ERT in those values (GLB 32.38 vs 32.342, pe_spad 0.68 vs 0.660 pJ; the
    # GLB alone is ~72 µJ, so 0.1% there is ~0.1 µJ).
    ert = load_ert(ERT / "simple_weight_stationary.yaml")
    priced = evaluate_nests(prob, apply_ert(arch, ert), nests_from_mapping(mapping, arch, prob))
    assert priced.energy_pj[0] == pytest.approx(151.67e6, rel=0.01)


def test_report_json_contract_on_timeloop_example() -> None:
    arch, prob, mapping = _load("simple_weight_stationary")
    rep = evaluate(prob, arch, mapping)
    d = rep.to_dict()
    assert set(d["total"]) >= {"cycles", "seconds", "energy_pj", "edp_pj_s"}
    layer = d["layers"][0]
    assert layer["accesses"]["DRAM"]["Inputs"]["reads"] == 151_875
    assert layer["accesses"]["shared_glb"]["Outputs"]["updates"] == 3_612_672
    assert d["total"]["cycles"] == 903_168
    # seconds = cycles / clock; EDP = energy × seconds.
    assert d["total"]["seconds"] == pytest.approx(903_168 / (arch.compute.clock_ghz * 1e9))
    assert d["total"]["edp_pj_s"] == pytest.approx(d["total"]["energy_pj"] * d["total"]["seconds"])


SPARSELOOP = sorted(p.name for p in (EX / "sparseloop").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", SPARSELOOP)
def test_sparseloop_examples_run(case: str) -> None:
    d = EX / "sparseloop" / case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(d / "arch.yaml")
        prob = load_problem(d / "problem.yaml")
        mapping = load_mapping(d / "mapping.yaml", arch=arch, problem=prob)
    cost = evaluate_nests(prob, arch, nests_from_mapping(mapping, arch, prob))
    assert cost.macs[0] == prob.macs
    assert bool(cost.valid_factors[0]) and bool(cost.valid_fanout[0])
    assert cost.energy_pj[0] >= prob.macs * arch.compute.mac_energy


def test_conv1d_sliding_window_counts() -> None:
    # sparseloop/03.2.3: Conv1D M16 S3 Q9, Inputs[S+Q] (11 words). BackingStorage temporal M4,
    # spatial M4 over 4 Buffers; Buffer temporal S3 Q9.
    # Buffer tiles: Weights M1·S3 = 3, Inputs (9−1)+(3−1)+1 = 11, Outputs M1·Q9 = 9.
    # Weights: M4 above is relevant -> 4·3 = 12 fills per Buffer; 4 Buffers hold different M
    #   -> 48 backing reads. Inputs: M4 irrelevant -> 11 fills, multicast over M -> 11 reads.
    # Outputs: 4 tiles of 9 drained per Buffer, all first writes -> 0 reads, 36·4 = 144 updates.
    # Compute: 4·27 = 108 cycles; Buffer reads 108 Weights, 108 Inputs; Outputs 108 updates,
    #   108 − 36 distinct = 72 reads.
    d = EX / "sparseloop" / "03.2.3-conv1d+oc-spatial"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(d / "arch.yaml")
        prob = load_problem(d / "problem.yaml")
        mapping = load_mapping(d / "mapping.yaml", arch=arch, problem=prob)
    c = evaluate_nests(prob, arch, nests_from_mapping(mapping, arch, prob))
    assert c.cycles[0] == 108
    assert list(c.reads[0, 0]) == [48, 11, 0]
    assert list(c.updates[0, 0]) == [0, 0, 144]
    assert list(c.fills[0, 1]) == [12, 11, 0]
    assert list(c.reads[0, 1]) == [108, 108, 72]
    assert c.instances[0, 1] == 4
