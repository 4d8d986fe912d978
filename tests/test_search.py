"""Tests of the layer-wise plan search (:mod:`testy_model.plan_search`), each case derived by hand.

Common engine (``_arch``): DRAM (100 pJ/word, unbounded, unlimited bandwidth) above a Buffer
(unbounded, 2 pJ read / 3 pJ write per word, unlimited bandwidth), one MAC (1 pJ, gated 0.1 pJ),
8-bit words; hardware patterns 2:4 on both operands; a TASD unit of 1 lane handling 4-value
blocks in 4 cycles at 0.5 pJ per value. With unlimited bandwidth the latency is the compute
time: cycles = (dense MACs) × Σ_i r_A,i × Σ_j r_B,j (r = p/q of the hardware pattern).
Mapping: every loop at the Buffer, so the dense cycle count is M·N·K.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from testy_model.errors import MappingError, SpecError
from testy_model.graph.zoo import batched_gemm
from testy_model.model.plan import LayerPlan
from testy_model.plan_search import (
    LayerTable,
    candidate_error,
    candidates,
    closed_form_error,
    combine_errors,
    evaluate_candidates,
    native_series,
    operand_series,
    search,
    select_global,
    select_per_layer,
    uniform_indices,
)
from testy_model.spec import (
    Architecture,
    ComputeUnit,
    Density,
    Layer,
    LevelMapping,
    Mapping,
    Network,
    OperandSparsity,
    Problem,
    SparsitySupport,
    StorageLevel,
    TasdUnit,
    gemm,
)
from testy_model.tasd.pattern import NMPattern, TasdSeries


def _arch(
    tasd: bool = True,
    a_patterns: tuple[str, ...] = ("2:4",),
    b_patterns: tuple[str, ...] = ("2:4",),
) -> Architecture:
    return Architecture(
        name="hand",
        levels=(
            StorageLevel(
                name="DRAM", kind="DRAM", width=8, datawidth=8, read_energy=100, write_energy=100
            ),
            StorageLevel(name="Buffer", width=8, datawidth=8, read_energy=2, write_energy=3),
        ),
        compute=ComputeUnit(instances=1, mac_energy=1.0, gated_mac_energy=0.1),
        sparsity=SparsitySupport(
            A=OperandSparsity(patterns=a_patterns), B=OperandSparsity(patterns=b_patterns)
        ),
        tasd_unit=TasdUnit(count=1, cycles_per_block=4, block=4, energy_per_value=0.5)
        if tasd
        else None,
    )


def _all_at_buffer(problem: Problem, arch: object = None, objective: object = None) -> Mapping:
    return Mapping(
        levels=(
            LevelMapping(target="DRAM"),
            LevelMapping(target="Buffer", temporal=dict(problem.bounds)),
        )
    )


def _series(texts: list[str]) -> set[TasdSeries]:
    return {TasdSeries.parse(t) for t in texts}


# -- candidates -----------------------------------------------------------------------------------


def test_operand_series_on_2_4_two_terms() -> None:
    # n:4 with n in {1, 2}; non-increasing sequences of 1..2 terms with sum <= 4:
    # (1), (2), (1,1), (2,1), (2,2) -> 5 series, plus dense.
    got = operand_series(OperandSparsity(patterns=["2:4"]), max_terms=2)
    assert got[0].is_dense
    assert set(got) == _series(["dense", "1:4", "2:4", "1:4+1:4", "2:4+1:4", "2:4+2:4"])
    assert len(got) == 6


def test_operand_series_three_terms_counts_and_fit() -> None:
    # 2:8, up to 3 terms, sum <= 8: k=1: (1),(2); k=2: (1,1),(2,1),(2,2); k=3: (1,1,1),(2,1,1),
    # (2,2,1),(2,2,2) -> 9 series + dense = 10. Every term fits 2:8.
    sup = OperandSparsity(patterns=["2:8"])
    got = operand_series(sup, max_terms=3)
    assert len(got) == 10
    for s in got[1:]:
        assert all(t.fits(NMPattern(2, 8)) for t in s.terms)
        assert [t.n for t in s.terms] == sorted((t.n for t in s.terms), reverse=True)
    # the sum cap: on 1:2 three 1:2 terms would exceed a 2-block -> only (1) and (1,1)
    assert set(operand_series(OperandSparsity(patterns=["1:2"]), 3)) == _series(
        ["dense", "1:2", "1:2+1:2"]
    )
    # no hardware pattern: dense only
    assert operand_series(OperandSparsity(), 3) == [TasdSeries(())]


def test_candidates_activation_options_need_a_tasd_unit() -> None:
    layer = Layer(
        name="fc",
        problem=gemm(8, 4, 8, densities={"B": Density(kind="bernoulli", density=0.5)}),
    )
    with_unit = candidates(layer, _arch(tasd=True), max_terms=2)
    without = candidates(layer, _arch(tasd=False), max_terms=2)
    # 6 weight series x 6 activation series with the unit; x 1 (dense) without it
    # (A and B supports are equal here: one orientation)
    assert len(with_unit) == 36 and len(without) == 6
    assert with_unit[0] == LayerPlan()
    assert {o.activations for o in without} == {TasdSeries(())}
    # an activation that already is 2:4 runs 2:4 without a unit (no run-time decomposition)
    nm_layer = Layer(
        name="fc", problem=gemm(8, 4, 8, densities={"B": Density(kind="nm", pattern="2:4")})
    )
    acts = {o.activations for o in candidates(nm_layer, _arch(tasd=False), max_terms=2)}
    assert acts == _series(["dense", "2:4"])


def test_candidates_of_a_single_sided_engine_include_the_transposed_gemm() -> None:
    # 2:4 on A only: plain orientation: 6 weight series x dense activation (B has no pattern);
    # transposed: the activation takes the A slot (6 series) with the weight dense in B, less
    # the all-dense pair: 6 + 5 = 11 candidates
    layer = Layer(name="fc", problem=gemm(8, 4, 8))
    got = candidates(layer, _arch(b_patterns=()), max_terms=2)
    plain = [o for o in got if o.orientation == "weight"]
    trans = [o for o in got if o.orientation == "activation"]
    assert len(plain) == 6 and len(trans) == 5
    assert {o.activations for o in plain} == {TasdSeries(())}
    assert {o.weights for o in trans} == {TasdSeries(())}
    assert LayerPlan(activations="2:4", orientation="activation") in trans


def test_candidates_of_a_layer_without_weight() -> None:
    # attention's batched matmul: both operands are run-time activations, each with its own
    # slot's options (2:4 on A and on B, 2 terms: dense, 1:4, 2:4, 1:4+1:4, 2:4+1:4, 2:4+2:4),
    # the TASD unit decomposing one of them per candidate: 1 all-dense + 5 (A only) + 5 (B only)
    layer = Layer(name="qk", problem=batched_gemm(2, 4, 4, 8, name="qk"))
    got = candidates(layer, _arch(), max_terms=2)
    assert len(got) == 11
    assert not any(not o.weights.is_dense and not o.activations.is_dense for o in got)
    assert len({o.weights for o in got}) == 6 and len({o.activations for o in got}) == 6
    # without a TASD unit neither dense operand has a native pattern: only the dense pair
    assert candidates(layer, _arch(tasd=False), max_terms=2) == [LayerPlan()]


def test_native_series() -> None:
    sup = OperandSparsity(patterns=["2:4", "1:4"])
    # 1:8 fits both 1:4 and 2:4; the least work ratio is 1:4
    assert str(native_series(Density(kind="nm", pattern="1:8"), sup)) == "1:4"
    assert native_series(Density(kind="bernoulli", density=0.2), sup).is_dense
    # measured: rows [1,0,0,0 | 0,2,3,0] hold at most 2 non-zeros per 4-block -> 2:4, not 1:4
    arr = np.array([[1.0, 0, 0, 0, 0, 2, 3, 0]])
    assert str(native_series(Density(), sup, arr, -1)) == "2:4"


# -- error ----------------------------------------------------------------------------------------


def test_closed_form_error_hand_values() -> None:
    bern = Density(kind="bernoulli", density=0.5)
    # 2:4 at d = 0.5: X ~ Binomial(4, 1/2) has pmf (1, 4, 6, 4, 1)/16; E[min(X, 2)] =
    # (0·1 + 1·4 + 2·6 + 2·4 + 2·1)/16 = 26/16 per 4-block; kept fraction (26/64)/0.5 = 13/16;
    # error 3/16 = 0.1875.
    assert closed_form_error(TasdSeries.parse("2:4"), bern) == pytest.approx(3 / 16)
    # 1:4: E[min(X,1)] = 1 − P(X=0) = 15/16 per block; kept (15/64)/0.5 = 15/32; error 17/32.
    assert closed_form_error(TasdSeries.parse("1:4"), bern) == pytest.approx(17 / 32)
    # 2:4+2:4 keeps everything of a 4-block; dense loses nothing
    assert closed_form_error(TasdSeries.parse("2:4+2:4"), bern) == pytest.approx(0.0, abs=1e-12)
    assert closed_form_error(TasdSeries(()), bern) == 0.0
    # dense operand (d = 1): 2:4 keeps exactly half
    assert closed_form_error(TasdSeries.parse("2:4"), Density()) == pytest.approx(0.5)
    # an operand already 2:4 loses nothing under a first term it fits; under 1:4 it is exact:
    # every 4-block holds exactly 2 non-zeros, 1:4 keeps 1 of them, e = 1 - (1/4)/(1/2) = 0.5
    # (not the Bernoulli(0.5) 17/32, which would assume blocks with 3 or 4 non-zeros)
    nm = Density(kind="nm", pattern="2:4")
    assert closed_form_error(TasdSeries.parse("2:4+1:4"), nm) == 0.0
    assert closed_form_error(TasdSeries.parse("1:4"), nm) == pytest.approx(0.5)


def test_combine_errors() -> None:
    # 1 − 0.9·0.8 = 0.28; a lossless operand leaves the other's error
    assert float(combine_errors(0.1, 0.2)) == pytest.approx(0.28)
    assert float(combine_errors(0.0, 0.3)) == pytest.approx(0.3)
    assert float(combine_errors(1.0, 0.0)) == pytest.approx(1.0)


def test_measured_error_from_a_real_weight(tmp_path: Path) -> None:
    # W = [[4,3,2,1],[0,0,5,0]] under 2:4: row 1 keeps 4,3 and drops 2,1 (||R||² = 5);
    # row 2 keeps 5. ||W||² = 16+9+4+1+25 = 55 -> error sqrt(5/55).
    w = np.array([[4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 5.0, 0.0]])
    np.save(tmp_path / "w.npy", w)
    layer = Layer(name="fc", problem=gemm(2, 1, 4), weight_tensor=str(tmp_path / "w.npy"))
    arch = _arch()
    assert candidate_error(layer, arch, "2:4", "dense") == pytest.approx(math.sqrt(5 / 55))
    assert candidate_error(layer, arch, "2:4+2:4", "dense") == pytest.approx(0.0)
    # the kept density drives the cost: 3 of 8 values kept -> effective MACs = 8 × 3/8 = 3,
    # MAC energy 3 pJ (1 pJ/MAC) + gated (slots 8×0.5 = 4, 1 gated × 0.1) = 3.1 pJ
    t = evaluate_candidates(layer, arch, _all_at_buffer(layer.problem), max_terms=2)
    i = t.index("2:4", "dense")
    assert t.energy_by_component["MAC"][i] == pytest.approx(3.1)
    assert t.measured


# -- cost -----------------------------------------------------------------------------------------


def test_candidate_costs_hand_derived() -> None:
    # gemm M=4, N=4, K=8: 128 MACs on one MAC, all loops at the Buffer: dense 128 cycles.
    # Weights dense (d = 1); activations Bernoulli 0.5.
    prob = gemm(4, 4, 8, densities={"B": Density(kind="bernoulli", density=0.5)})
    layer = Layer(name="fc", problem=prob)
    t = evaluate_candidates(layer, _arch(), _all_at_buffer(prob), max_terms=2)
    d = t.dense
    assert t.cycles[d] == pytest.approx(128)
    assert t.energy_by_component["MAC"][d] == pytest.approx(128.0)  # every MAC at 1 pJ
    assert t.error[d] == 0.0
    # W = 2:4: kept 0.5 of the weights, work 1/2 -> 64 cycles; effective MACs 128·0.5 = 64,
    # issued 64 -> 64 pJ, nothing gated; error 0.5 (half of a dense weight dropped).
    i = t.index("2:4", "dense")
    assert t.cycles[i] == pytest.approx(64)
    assert t.energy_by_component["MAC"][i] == pytest.approx(64.0)
    assert t.error[i] == pytest.approx(0.5)
    # A = 2:4: kept density 26/64 (see the closed form), work 1/2 -> 64 cycles;
    # TASD unit: N·K = 32 values -> ceil(32/4)·4/1 = 32 cycles (< 64), 32 × 0.5 = 16 pJ;
    # MACs: effective 128 × 26/64 = 52 (52 pJ), issued 64 -> 12 gated × 0.1 = 1.2 pJ.
    j = t.index("dense", "2:4")
    assert t.cycles[j] == pytest.approx(64)
    assert t.latency_by_component["TASD_unit"][j] == pytest.approx(32)
    assert t.energy_by_component["TASD_unit"][j] == pytest.approx(16.0)
    assert t.energy_by_component["MAC"][j] == pytest.approx(53.2)
    assert t.error[j] == pytest.approx(3 / 16)
    # both: W = 2:4+2:4 (lossless, work 1/2+1/2 = 1) with A = 2:4 (work 1/2): 128·1·0.5 = 64
    k = t.index("2:4+2:4", "2:4")
    assert t.cycles[k] == pytest.approx(64)
    assert t.error[k] == pytest.approx(3 / 16)
    # W = 2:4 and A = 2:4: work 1/4 -> 32 cycles; error 1 − 0.5·(13/16) = 19/32
    m = t.index("2:4", "2:4")
    assert t.cycles[m] == pytest.approx(32)
    assert t.error[m] == pytest.approx(19 / 32)


def test_mapping_that_does_not_fit_is_an_error() -> None:
    prob = gemm(4, 4, 8)
    bad = Mapping(
        levels=(LevelMapping(target="DRAM"), LevelMapping(target="Buffer", temporal={"M": 4}))
    )
    with pytest.raises(MappingError, match="layer 'fc'"):
        evaluate_candidates(Layer(name="fc", problem=prob), _arch(), bad)


# -- selection on hand-made tables ----------------------------------------------------------------


def _table(name: str, macs: int, rows: list[tuple[str, str, float, float, float]]) -> LayerTable:
    """rows: (weights, activations, energy pJ, seconds, error)."""
    e = np.array([r[2] for r in rows], dtype=float)
    s = np.array([r[3] for r in rows], dtype=float)
    err = np.array([r[4] for r in rows], dtype=float)
    opts = tuple(LayerPlan(weights=r[0], activations=r[1]) for r in rows)
    return LayerTable(
        name=name,
        macs=macs,
        options=opts,
        weight_error=err,
        activation_error=np.zeros_like(err),
        error=err,
        cycles=s * 1e9,
        seconds=s,
        energy_pj=e,
        valid=np.ones(len(rows), dtype=bool),
        energy_by_component={"MAC": e},
        latency_by_component={"compute": s * 1e9},
        dense=0,
        native=0,
    )


def test_select_per_layer_respects_the_budget() -> None:
    t = _table(
        "l",
        1,
        [
            ("dense", "dense", 10, 10, 0.0),
            ("1:4", "dense", 4, 4, 0.1),
            ("2:4", "dense", 6, 6, 0.02),
        ],
    )
    # layer EDPs: 100, 16, 36. Budget 0.05 admits dense and 2:4 -> 2:4; 0.2 admits all -> 1:4;
    # 0 admits only the lossless dense.
    assert list(select_per_layer([t], 0.05)) == [2]
    assert list(select_per_layer([t], 0.2)) == [1]
    assert list(select_per_layer([t], 0.0)) == [0]


def test_per_layer_refines_the_network_edp() -> None:
    # L1: dense (E=1, t=10, EDP 10) or b (E=9, t=1, EDP 9): alone, b wins.
    # L2: only (E=1, t=1000). Network EDP: L1 dense -> (1+1)(10+1000) = 2020;
    # L1 b -> (9+1)(1+1000) = 10010. The network optimum keeps L1 dense.
    l1 = _table("l1", 1, [("dense", "dense", 1, 10, 0.0), ("2:4", "dense", 9, 1, 0.0)])
    l2 = _table("l2", 1, [("dense", "dense", 1, 1000, 0.0)])
    assert list(select_per_layer([l1, l2], 1.0, "edp")) == [0, 0]
    # latency is separable: L1 takes b (1 s < 10 s)
    assert list(select_per_layer([l1, l2], 1.0, "latency")) == [1, 0]


def test_select_global_greedy_by_gain_per_error() -> None:
    # three layers of equal MACs (weight 1/3 each), objective energy; each: dense (E=10, err 0)
    # or cheap. Gains and MAC-weighted error increments:
    #   L1: saves 8, Δē = 0.3/3 = 0.10 (80 per unit); L2: saves 5, Δē = 0.01 (500);
    #   L3: saves 4, Δē = 0.02 (200).
    # Budget 0.04: take L2 (ē 0.01), then L3 (0.03); L1 would reach 0.13 > 0.04.
    tabs = [
        _table("l1", 5, [("dense", "dense", 10, 1, 0.0), ("1:4", "dense", 2, 1, 0.3)]),
        _table("l2", 5, [("dense", "dense", 10, 1, 0.0), ("1:4", "dense", 5, 1, 0.03)]),
        _table("l3", 5, [("dense", "dense", 10, 1, 0.0), ("1:4", "dense", 6, 1, 0.06)]),
    ]
    assert list(select_global(tabs, 0.04, "energy")) == [0, 1, 1]
    # budget 0.15: all three (ē = 0.13)
    assert list(select_global(tabs, 0.15, "energy")) == [1, 1, 1]
    # budget 0: lossless -> all dense
    assert list(select_global(tabs, 0.0, "energy")) == [0, 0, 0]
    # budget 0.15 but no layer above 0.05: L1 (0.3) and L3 (0.06) may not switch, L2 (0.03)
    # may: [dense, cheap, dense]
    assert list(select_global(tabs, 0.15, "energy", layer_cap=0.05)) == [0, 1, 0]


# -- search end to end --------------------------------------------------------------------------


def _net() -> Network:
    return Network(
        name="two",
        layers=(
            Layer(
                name="fc1",
                problem=gemm(
                    8,
                    4,
                    16,
                    name="fc1",
                    densities={
                        "A": Density(kind="bernoulli", density=0.2),
                        "B": Density(kind="bernoulli", density=0.5),
                    },
                ),
            ),
            Layer(name="qk", problem=batched_gemm(2, 4, 4, 8, name="qk")),
        ),
    )


def test_search_zero_budget_is_lossless_and_reports_three_plans(tmp_path: Path) -> None:
    rep = search(_net(), _arch(), budget=0.0, mappings=_all_at_buffer, max_terms=2)
    for t, i in zip(rep.tables, rep.choice, strict=True):
        assert t.error[i] == pytest.approx(0.0, abs=1e-12)
    assert rep.totals("plan").max_error == pytest.approx(0.0, abs=1e-12)
    # no operand already fits a hardware pattern: the no-TASD engine is the dense run
    assert rep.totals("native").edp_pj_s == pytest.approx(rep.totals("dense").edp_pj_s)
    assert rep.totals("plan").edp_pj_s <= rep.totals("dense").edp_pj_s
    # the plan is the model's Plan and reloads from its YAML unchanged
    from testy_model.model.plan import Plan

    path = tmp_path / "plan.yaml"
    path.write_text(rep.plan.to_yaml_text(), encoding="utf-8")
    back = Plan.load(path)
    assert back == rep.plan
    assert set(back.layers) == {"fc1", "qk"}
    assert back.for_layer("qk").weights.is_dense


def test_native_plan_runs_fitting_operands_sparse() -> None:
    # fc1's weight is already 2:4 (nm density): the no-TASD engine runs it at work 1/2 with no
    # error; 8·4·16 = 512 dense cycles -> 256; the other layer stays dense.
    net = Network(
        name="n",
        layers=(
            Layer(
                name="fc1",
                problem=gemm(8, 4, 16, densities={"A": Density(kind="nm", pattern="2:4")}),
            ),
        ),
    )
    rep = search(net, _arch(tasd=False), budget=0.0, mappings=_all_at_buffer, max_terms=2)
    t = rep.tables[0]
    assert str(t.options[t.native].weights) == "2:4"
    assert t.cycles[t.native] == pytest.approx(256)
    assert t.error[t.native] == 0.0
    assert rep.totals("native").cycles == pytest.approx(256)
    assert rep.totals("dense").cycles == pytest.approx(512)


def test_search_rejects_bad_settings() -> None:
    with pytest.raises(SpecError, match="budget"):
        search(_net(), _arch(), budget=-0.1, mappings=_all_at_buffer)
    with pytest.raises(SpecError, match="mode"):
        search(_net(), _arch(), mode="everything", mappings=_all_at_buffer)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="objective"):
        search(_net(), _arch(), objective="area", mappings=_all_at_buffer)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="no mapping for layer 'fc1'"):
        search(_net(), _arch(), mappings={})


def test_closed_form_error_hypergeometric() -> None:
    # T = 8 values with K = 4 non-zeros, blocks of 4: X ~ Hypergeometric(8, 4, 4) with pmf
    # C(4,x)C(4,4−x)/C(8,4) = (1, 16, 36, 16, 1)/70. E[min(X, 2)] = (16 + 72 + 32 + 2)/70 =
    # 122/70 per block, 2 blocks keep 244/70 of the 4 non-zeros: error 1 − 244/280 = 9/70.
    hyper = Density(kind="hypergeometric", density=0.5)
    got = closed_form_error(TasdSeries.parse("2:4"), hyper, tensor_size=8)
    assert got == pytest.approx(9 / 70)


def test_search_costs_agree_with_the_model_evaluate() -> None:
    # the plan's totals from the batched candidate tables equal the model's own evaluate() of
    # that plan under the same mappings (one pipeline, no second cost formula here)
    from testy_model.model.evaluate import evaluate

    arch = _arch()
    rep = search(_net(), arch, budget=0.3, mappings=_all_at_buffer, max_terms=2)
    assert any(not o.is_dense for o in rep.plan.layers.values())  # something was decomposed
    ev = evaluate(_net(), arch, lambda layer, a: _all_at_buffer(layer.problem), plan=rep.plan)
    tot = rep.totals("plan")
    assert ev.cycles == pytest.approx(tot.cycles)
    assert ev.energy_pj == pytest.approx(tot.energy_pj)
    assert ev.edp_pj_s == pytest.approx(tot.edp_pj_s)


def test_measured_conv_layouts(tmp_path: Path) -> None:
    # conv 4 -> 1 channels, 1x1 kernel, one output pixel. The weight (M, C, R, S) = (1, 4, 1, 1)
    # and the input (N, C, H, W) = (1, 4, 1, 1) are split along C (axis 1, the model's
    # convention). Both hold [4, 3, 2, 1] along the reduction: 2:4 keeps 4, 3 and drops 2, 1:
    # error sqrt((4 + 1)/(16 + 9 + 4 + 1)) = sqrt(1/6) each; both -> 1 − (1 − e)².
    from testy_model.spec import conv2d

    np.save(tmp_path / "w.npy", np.array([4.0, 3.0, 2.0, 1.0]).reshape(1, 4, 1, 1))
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1))
    layer = Layer(
        name="conv",
        problem=conv2d(name="conv", c=4, m=1, p=1, q=1),
        weight_tensor=str(tmp_path / "w.npy"),
        activation_tensor=str(tmp_path / "x.npy"),
    )
    e = math.sqrt(1 / 6)
    arch = _arch()
    assert candidate_error(layer, arch, "2:4", "dense") == pytest.approx(e)
    assert candidate_error(layer, arch, "dense", "2:4") == pytest.approx(e)
    assert candidate_error(layer, arch, "2:4", "2:4") == pytest.approx(1 - (1 - e) ** 2)


def test_guard_replaces_a_plan_worse_than_a_uniform_one() -> None:
    # two layers with options dense (E=1, t=1) and 2:4 (E=0.5, t=0.5, err 0.01). Handed the
    # mixed plan [2:4, dense] (EDP (0.5+1)(0.5+1) = 2.25), the global-mode guard finds the
    # uniform 2:4 plan (EDP 1·1 = 1) within a 0.05 budget; with budget 0 only uniform dense
    # (EDP 4) is feasible, which is worse than 2.25, so the plan stays.
    from testy_model.plan_search.selection import _guard, _stack, _uniform_matrix

    tabs = [
        _table(n, 1, [("dense", "dense", 1, 1, 0.0), ("2:4", "dense", 0.5, 0.5, 0.01)])
        for n in ("a", "b")
    ]
    mixed = np.array([1, 0])
    assert list(_guard(tabs, _stack(tabs), mixed, 0.05, "edp")) == [1, 1]
    assert list(_guard(tabs, _stack(tabs), mixed, 0.0, "edp")) == [1, 0]
    # the vectorised uniform plans equal uniform_indices, option by option
    mat = _uniform_matrix(tabs)
    rows = {tuple(r) for r in mat.tolist()}
    assert rows == {tuple(uniform_indices(tabs, o)) for o in tabs[0].options}


def test_uniform_indices_fall_back_to_dense_series() -> None:
    # a layer without the pair (W=2:4, A=2:4) runs W=dense with A=2:4 if it has it
    t1 = _table("a", 1, [("dense", "dense", 1, 1, 0), ("2:4", "2:4", 1, 1, 0)])
    t2 = _table("b", 1, [("dense", "dense", 1, 1, 0), ("dense", "2:4", 1, 1, 0)])
    assert list(uniform_indices([t1, t2], LayerPlan(weights="2:4", activations="2:4"))) == [1, 1]


def test_measured_search_agrees_with_the_model_evaluate(tmp_path: Path) -> None:
    # real (seeded) 70 %-sparse weight and 50 %-sparse activation: the plan's totals equal the
    # model's evaluate() with densities measured on the same arrays
    from testy_model.model.evaluate import evaluate

    rng = np.random.default_rng(7)
    w = rng.standard_normal((8, 16)) * (rng.random((8, 16)) < 0.3)
    x = rng.standard_normal((4, 16)) * (rng.random((4, 16)) < 0.5)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "x.npy", x)
    net = Network(
        name="m",
        layers=(
            Layer(
                name="fc",
                problem=gemm(8, 4, 16, name="fc"),
                weight_tensor=str(tmp_path / "w.npy"),
                activation_tensor=str(tmp_path / "x.npy"),
            ),
        ),
    )
    arch = _arch()
    rep = search(net, arch, budget=0.5, mappings=_all_at_buffer, max_terms=2)
    assert not rep.plan.for_layer("fc").is_dense
    ev = evaluate(
        net,
        arch,
        lambda layer, a: _all_at_buffer(layer.problem),
        plan=rep.plan,
        densities_source="measured",
    )
    assert ev.energy_pj == pytest.approx(rep.totals("plan").energy_pj)
    assert ev.cycles == pytest.approx(rep.totals("plan").cycles)


def test_plot_shows_dense_no_tasd_and_plan_side_by_side() -> None:
    """Per layer three bars (dense, structured engine without TASD, plan) in both panels: the
    latency bars' tops are each variant's layer latency (not a stack of non-overlapped parts),
    the energy bars' tops each variant's layer energy; the plan's series label each layer."""
    from testy_model.plan_search import plot_search
    from testy_model.plots import energy_unit

    rep = search(_net(), _arch(), budget=0.3, mappings=_all_at_buffer, max_terms=2)
    fig = plot_search(rep)
    ax_t, ax_e = fig.axes[:2]
    assert "cycles" in ax_t.get_ylabel()
    labels = [t.get_text() for t in ax_e.get_xticklabels()]
    rows = rep.rows()
    assert [lab.split("\n")[0] for lab in labels] == ["fc1", "qk"]
    assert all(f"W {r['weights']}" in lab for r, lab in zip(rows, labels, strict=True))

    def tops(ax: object) -> dict[float, float]:
        out: dict[float, float] = {}
        for bars in ax.containers:  # type: ignore[attr-defined]
            for b in bars:
                x = round(b.get_x() + b.get_width() / 2, 6)
                out[x] = max(out.get(x, 0.0), b.get_y() + b.get_height())
        return out

    want_t, want_e = [], []
    for which in ("dense", "native", "plan"):
        for tab, i in rep._entries(which):
            want_t.append(float(tab.cycles[i]))
            want_e.append(float(tab.energy_pj[i]))
    unit, div = energy_unit(max(want_e))
    assert ax_e.get_ylabel() == f"energy ({unit})"
    # bar centres: layer l, variant v at l + (v - 1)·0.27 -> order by variant then layer
    xs = sorted(tops(ax_t), key=lambda x: (round(x - round(x), 3), x))
    got_t = [tops(ax_t)[x] for x in xs]
    got_e = [tops(ax_e)[x] for x in xs]
    assert got_t == pytest.approx(want_t)
    assert got_e == pytest.approx([e / div for e in want_e])
