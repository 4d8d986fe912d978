"""One rule for the model and the search: exact N:M operands, TASD-unit work, the fan-out check
with structured skipping, hierarchical (HighLight) metadata and candidates, and the measured
fallback of ``evaluate``. Every expected number is derived by hand in the comments."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from testy_model.model.cost import evaluate_nests, nm_term
from testy_model.model.evaluate import evaluate
from testy_model.model.hierarchical import hardware_for
from testy_model.model.nest import nests_from_mapping
from testy_model.model.plan import LayerPlan, Plan
from testy_model.model.terms import arrives_compliant, kept_densities, layer_terms, nm_kept
from testy_model.plan_search import closed_form_error, default_mapper, evaluate_candidates, search
from testy_model.spec import Density, Layer, Network, gemm
from testy_model.spec.arch import HierarchicalPattern
from testy_model.spec.arch_loader import load_arch
from testy_model.tasd.pattern import NMPattern, TasdSeries

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT.parent / "shared" / "sparseloop_stc_study"
STC = STUDY / "WD-0.5" / "M512-K1024-N256-IAD0.27-WD0.5" / "STC-RF2x-24-bandwidth"


def _arch(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(ROOT / "arch_specs" / name)


def _s(text: str) -> TasdSeries:
    return TasdSeries.parse(text)


# -- 1. exact kept densities of N:M operands ----------------------------------------------------


def test_nm_kept_hand_cases() -> None:
    p24, p28 = NMPattern(2, 4), NMPattern(2, 8)
    # 2:8 fits 2:4 (an aligned 4-block of a 2:8 tensor holds at most 2): term 1 keeps all 2/8
    assert nm_kept(_s("2:4"), p28) == (0.25,)
    assert nm_kept(_s("2:4+1:4"), p28) == (0.25, 0.0)
    # 2:4 under 1:4+1:4 (q = 4 = m): X = 2 per block; term 1 keeps 1, term 2 keeps 1 -> 1/4 each
    assert nm_kept(_s("1:4+1:4"), p24) == (0.25, 0.25)
    # 2:4 under 1:8 (q = 8, m = 4 divides it): X = 2·8/4 = 4 per 8-block, term keeps 1 -> 1/8
    # (Bernoulli(0.5) would give P(X >= 1)/8 = (1 - 2^-8)/8 = 0.12451...: not exact)
    assert nm_kept(_s("1:8"), p24) == (0.125,)
    # 2:8 under 1:4: a 4-block holds 0, 1 or 2 non-zeros depending on placement -> undetermined
    assert nm_kept(_s("1:4"), p28) is None


def test_kept_densities_nm_is_exact_not_bernoulli() -> None:
    # the model's closed form for an operand that is 2:8: under 2:4 it keeps exactly 2/8 = 0.25;
    # Bernoulli(0.25) under 2:4 would keep E[min(X,2)]/4 with X ~ Bin(4, 1/4):
    # P(1) = 4·(1/4)(3/4)^3 = 108/256, P(>=2) = 1 - 81/256 - 108/256 = 67/256,
    # E = (108 + 2·67)/256 = 242/256 -> 242/1024 = 0.23633 < 0.25
    nm = Density(kind="nm", pattern="2:8")
    assert kept_densities(_s("2:4"), nm).kept == (0.25,)
    bern = Density(kind="bernoulli", density=0.25)
    assert kept_densities(_s("2:4"), bern).kept[0] == pytest.approx(242 / 1024)
    # the search's error is the same exact rule: 2:4 operand under 1:8 keeps 1/8 of 1/2 -> 0.75
    assert closed_form_error(_s("1:8"), Density(kind="nm", pattern="2:4")) == pytest.approx(0.75)


def test_no_tasd_work_for_an_activation_that_already_fits_its_single_term() -> None:
    arch = _arch("s2ta_tasd.yaml")  # B runs 1:8, 2:8, 4:8; has a TASD unit
    prob = gemm(16, 8, 64, densities={"B": Density(kind="nm", pattern="1:8")})
    layer = Layer(name="l", problem=prob)
    # 1:8 under "2:8": arrives compliant (every 8-block holds 1 <= 2): no run-time decomposition
    _, tv = layer_terms(layer, LayerPlan(activations=_s("2:8")), arch)
    assert tv == 0.0
    assert arrives_compliant(_s("2:8"), prob.density("B"))
    # under "1:8+1:8" it is decomposed: the TASD unit reads all of B, N·K = 8·64 = 512 values
    _, tv = layer_terms(layer, LayerPlan(activations=_s("1:8+1:8")), arch)
    assert tv == 512.0
    # a Bernoulli activation under 2:8 is always decomposed at run time
    bern = gemm(16, 8, 64, densities={"B": Density(kind="bernoulli", density=0.2)})
    _, tv = layer_terms(Layer(name="b", problem=bern), LayerPlan(activations=_s("2:8")), arch)
    assert tv == 512.0


def _mixed_network() -> Network:
    nm = Density
    return Network(
        name="mixed",
        layers=(
            # weight already 2:8 (fits the engine), activation already 1:8
            Layer(
                name="nm_nm",
                problem=gemm(
                    64,
                    32,
                    128,
                    densities={
                        "A": nm(kind="nm", pattern="2:8"),
                        "B": nm(kind="nm", pattern="1:8"),
                    },
                ),
            ),
            # Bernoulli weight, activation 4:8 (decomposed exactly by 2:8+2:8 etc.)
            Layer(
                name="bern_nm",
                problem=gemm(
                    64,
                    32,
                    128,
                    densities={
                        "A": nm(kind="bernoulli", density=0.3),
                        "B": nm(kind="nm", pattern="4:8"),
                    },
                ),
            ),
            # dense weight, Bernoulli activation
            Layer(
                name="dense_bern",
                problem=gemm(32, 32, 128, densities={"B": nm(kind="bernoulli", density=0.5)}),
            ),
        ),
    )


def test_search_costs_equal_evaluate_for_every_candidate() -> None:
    # every candidate the search prices (nm, Bernoulli and dense operands, with and without
    # TASD-unit work) must cost exactly what evaluate() gives for that plan under that mapping
    arch = _arch("s2ta_tasd.yaml")
    net = _mixed_network()
    maps = {x.name: default_mapper(x.problem, arch, "edp") for x in net.layers}
    for layer in net.layers:
        t = evaluate_candidates(layer, arch, maps[layer.name], max_terms=2)
        assert len(t.options) > 10
        for i, opt in enumerate(t.options):
            rep = evaluate(layer, arch, maps[layer.name], plan=Plan(layers={layer.name: opt}))
            # a candidate the mapping cannot hold is invalid in both (infinite cost in the table)
            assert rep.layers[0].valid == bool(t.valid[i]), str(opt)
            if not t.valid[i]:
                continue
            assert rep.energy_pj == pytest.approx(float(t.energy_pj[i]), rel=1e-9), str(opt)
            assert rep.cycles == pytest.approx(float(t.cycles[i]), rel=1e-9), str(opt)
    # and the chosen plan of a search evaluates to the search's own totals
    r = search(net, arch, budget=0.05, mappings=maps, max_terms=2)
    rep = evaluate(net, arch, maps, plan=r.plan)
    tot = r.totals("plan")
    assert rep.energy_pj == pytest.approx(tot.energy_pj, rel=1e-9)
    assert rep.cycles == pytest.approx(tot.cycles, rel=1e-9)
    # the nm weight of layer 1 fits 2:8 losslessly: its chosen weight series loses nothing
    assert r.tables[0].weight_error[r.choice[0]] == 0.0


# -- 3. fan-out with structured skipping, metadata in its own storage --------------------------


def test_stc_study_mapping_is_valid_in_the_model() -> None:
    # Sparseloop's STC map.yaml (M512-K1024-N256, A 2:4 along K) puts RF spatial M16 x K32 under
    # a fan-out of 256. The engine skips A's zeros (sparsity.A: 2:4, action skip), so K32 holds
    # 2·32/4 = 16 non-zeros: 16 x 16 = 256 <= 256 -> valid_fanout.
    # Capacity at SMEM (4096 x 512 b = 2,097,152 b of data): A tile 256 x 1024 at 2:4 = 131,072
    # words, B tile 1024 x 128 = 131,072 words, 8 b each -> 2,097,152 b (fits exactly); the
    # 2-b metadata of A's 131,072 kept values = 262,144 b sits in the separate metadata storage
    # (8192 x 64 b = 524,288 b). Counting metadata with the data (2,359,296 b) would not fit.
    from testy_model.spec.timeloop_inputs import load_case

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case = load_case(STC)
    arch = _arch("sparseloop_stc.yaml")
    assert case.problem is not None and case.mapping is not None
    # the file's fixed-structured 0.5 on A, read as the 2:4 it describes
    prob = case.problem.model_copy(update={"densities": {"A": Density(kind="nm", pattern="2:4")}})
    nests = nests_from_mapping(case.mapping, arch, prob)
    cost = evaluate_nests(prob, arch, nests, {"A": nm_term("2:4", support=arch.sparsity.A)})
    assert bool(cost.valid_fanout[0]) and bool(cost.valid_capacity[0]) and bool(cost.valid[0])
    rep = evaluate(prob, arch, case.mapping, plan="W=2:4")
    assert rep.layers[0].valid
    # over-subscribed: the same mapping with A dense needs 16 x 32 = 512 > 256 instances
    dense_prob = prob.model_copy(update={"densities": {}})
    n2 = nests_from_mapping(case.mapping, arch, dense_prob)
    assert not bool(evaluate_nests(dense_prob, arch, n2).valid_fanout[0])


# -- 4. hierarchical (HighLight) candidates and metadata ---------------------------------------


def test_hierarchical_candidates_and_metadata_match_the_model() -> None:
    arch = _arch("highlight_tasd.yaml")  # A: 2:4, and coarse 1..4:4 over fine 2:4
    layer = Layer(
        name="fc",
        problem=gemm(64, 32, 256, densities={"A": Density(kind="bernoulli", density=0.2)}),
    )
    m = default_mapper(layer.problem, arch, "edp")
    t = evaluate_candidates(layer, arch, m, max_terms=2)
    labels = {str(o.weights) for o in t.options}
    # 2:16 fits 2:4(2:4): every 4-block of a 2:16 tensor holds <= 2, and a 16-group has at
    # most 2 non-empty 4-blocks; 1:16 fits 1:4(2:4); neither is a plain-pattern candidate
    assert {"1:16", "2:16", "2:16+2:16", "1:8"} <= labels
    for o in t.options:
        for p in o.weights.terms:
            assert hardware_for(p, arch.sparsity.A) is not None
    # metadata of 2:16 on 2:4(2:4): ceil(log2 4)/2 + ceil(log2 4) = 1 + 2 = 3 bits per kept
    # value (not the flat ceil(log2 16) = 4); the search's price equals evaluate()'s
    assert hardware_for(NMPattern(2, 16), arch.sparsity.A) == HierarchicalPattern(
        coarse="2:4", fine="2:4"
    )
    for w in ("2:16", "2:16+2:16", "1:16"):
        i = t.index(w, "dense")
        rep = evaluate(layer, arch, m, plan=f"W={w}")
        assert rep.energy_pj == pytest.approx(float(t.energy_pj[i]), rel=1e-9)
        assert rep.cycles == pytest.approx(float(t.cycles[i]), rel=1e-9)


def test_native_series_uses_hierarchical_patterns() -> None:
    from testy_model.plan_search import native_series

    sup = _arch("highlight_tasd.yaml").sparsity.A
    # a 1:16 operand fits 1:4(2:4) (<= 1 non-empty 4-block per 16-group, <= 1 value per block):
    # without TASD it runs as 1:16 on that pattern, at 1/4 · 2/4 = 1/8 of the dense work
    assert str(native_series(Density(kind="nm", pattern="1:16"), sup)) == "1:16"
    # a 2:8 operand fits the flat 2:4 (least-work flat pattern it fits) -> runs as 2:4
    assert str(native_series(Density(kind="nm", pattern="2:8"), sup)) == "2:4"
    # a Bernoulli operand fits nothing without TASD
    assert native_series(Density(kind="bernoulli", density=0.2), sup).is_dense


def test_highlight_search_beats_dense_on_resnet50_with_fitting_terms() -> None:
    from testy_model.graph.zoo import get_network

    arch = _arch("highlight_tasd.yaml")
    net = get_network("resnet50", weight_sparsity=0.8)
    r = search(net, arch, budget=0.1)
    assert r.ratio("dense") < 1.0
    hier = 0
    for o in r.plan.layers.values():
        for p in o.weights.terms:
            hw = hardware_for(p, arch.sparsity.A)
            assert hw is not None, f"{p} fits no hardware pattern"
            hier += isinstance(hw, HierarchicalPattern)
        assert o.activations.is_dense  # HighLight's B runs dense only
    assert hier > 0  # some layer runs a term on a hierarchical pattern
    assert r.totals("plan").max_error <= 0.1 + 1e-12


# -- 2. measured fallback ----------------------------------------------------------------------


def test_measured_eval_of_a_searched_plan_on_the_example_mlp(tmp_path: Path) -> None:
    # examples/search/mlp.yaml: fc1 has a real weight (measured), fc2/fc3 are closed form.
    from typer.testing import CliRunner

    from testy_model.cli.app import app

    plan = tmp_path / "plan.yaml"
    out = tmp_path / "r.json"
    runner = CliRunner()
    net = str(ROOT / "examples" / "search" / "mlp.yaml")
    arch = str(ROOT / "arch_specs" / "s2ta_tasd.yaml")
    res = runner.invoke(app, ["search", "--arch", arch, "--network", net, "--out", str(plan)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            *("eval", "--arch", arch, "--network", net, "--plan", str(plan), "--measured"),
            *("--mapping", "mapper", "--json", str(out)),
        ],
    )
    assert res.exit_code == 0, res.output
    import json

    layers = {x["name"]: x for x in json.loads(out.read_text())["layers"]}
    p = Plan.coerce(plan)
    for name in ("fc2", "fc3"):
        lp = p.for_layer(name)
        if not (lp.weights.is_dense and lp.activations.is_dense):
            assert layers[name]["density_source"] == "expected"
    if not p.for_layer("fc1").weights.is_dense:
        assert layers["fc1"]["density_source"] in ("measured", "mixed")
    assert "closed form (expected)" in res.output
    assert np.isfinite(sum(x["energy_pj"] for x in layers.values()))
