"""The plan search is sound and optimal: its totals are ``eval``'s of the plan it writes, the
network EDP is minimised exactly (checked against brute force), and more options never give a
worse plan (budget, patterns, a TASD unit, more terms)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.model.evaluate import evaluate
from testy_model.model.plan import LayerPlan
from testy_model.plan_search import (
    LayerTable,
    brute_force,
    network_objective,
    plan_mapping,
    search,
    select_per_layer,
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
    load_arch,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _net() -> Network:
    b = Density(kind="bernoulli", density=0.2)
    a = Density(kind="bernoulli", density=0.4)
    return Network(
        name="three",
        layers=(
            Layer(name="fc1", problem=gemm(256, 64, 256, name="fc1", densities={"A": b})),
            Layer(name="fc2", problem=gemm(128, 64, 256, name="fc2", densities={"B": a})),
            Layer(name="fc3", problem=gemm(64, 64, 128, name="fc3", densities={"A": b, "B": a})),
        ),
    )


def _shipped(name: str) -> Architecture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(ROOT / "arch_specs" / f"{name}.yaml")


@pytest.mark.parametrize("engine", ["stc_2of4_tasd", "ttc_vegeta_m8"])
def test_search_totals_equal_eval_of_the_written_plan(engine: str) -> None:
    # eval maps every layer for its plan (pricing.plan_mapping, as `eval --mapping mapper`)
    arch = _shipped(engine)
    net = _net()
    rep = search(net, arch, budget=0.3)
    assert not all(lp.is_dense for lp in rep.plan.layers.values())
    maps = {x.name: plan_mapping(x, arch, rep.plan.for_layer(x.name)) for x in net.layers}
    ev = evaluate(net, arch, maps, rep.plan)
    tot = rep.totals("plan")
    assert ev.energy_pj == pytest.approx(tot.energy_pj, rel=1e-9)
    assert ev.cycles == pytest.approx(tot.cycles, rel=1e-9)
    assert ev.edp_pj_s == pytest.approx(tot.edp_pj_s, rel=1e-9)
    dense_maps = {x.name: plan_mapping(x, arch, LayerPlan()) for x in net.layers}
    dense = evaluate(net, arch, dense_maps)
    assert dense.energy_pj == pytest.approx(rep.totals("dense").energy_pj, rel=1e-9)


@pytest.mark.parametrize(
    ("network", "engine", "params", "act_budget"),
    [
        ("resnet50", "stc_2of4_tasd", {"weight_sparsity": 0.8}, None),
        # activations decomposed: Q, K and V share one decomposition of their input (eval
        # charges the TASD unit once); the operators (LayerNorm, GELU, softmax, adds) count
        ("bert-base", "stc_2of4_tasd", {"seq_len": 64}, 0.5),
    ],
)
def test_search_totals_equal_eval_on_zoo_networks_with_operators(
    network: str, engine: str, params: dict, act_budget: float | None
) -> None:
    from testy_model.graph.zoo import get_network

    arch = _shipped(engine)
    net = get_network(network, **params)
    rep = search(net, arch, max_terms=2, activation_budget=act_budget)
    assert rep.operators, "the zoo network has non-GEMM operators"
    maps = {x.name: plan_mapping(x, arch, rep.plan.for_layer(x.name)) for x in net.layers}
    ev = evaluate(net, arch, maps, rep.plan)
    assert ev.non_gemm_energy_pj > 0.01 * ev.energy_pj  # operators matter at this tolerance
    tot = rep.totals("plan")
    assert tot.energy_pj == pytest.approx(ev.energy_pj, rel=1e-9)
    assert tot.cycles == pytest.approx(ev.cycles, rel=1e-9)
    assert tot.seconds == pytest.approx(ev.seconds, rel=1e-9)
    assert tot.edp_pj_s == pytest.approx(ev.edp_pj_s, rel=1e-9)
    if act_budget is not None:  # some layer reuses another's decomposition
        from testy_model.graph.dataflow import as_graph, operand_reads
        from testy_model.model.graph_eval import shared_tasd

        g = as_graph(net)
        assert shared_tasd(g, operand_reads(g), rep.plan)
    dense_maps = {x.name: plan_mapping(x, arch, LayerPlan()) for x in net.layers}
    dense = evaluate(net, arch, dense_maps, "dense")
    assert rep.totals("dense").energy_pj == pytest.approx(dense.energy_pj, rel=1e-9)
    assert rep.totals("dense").cycles == pytest.approx(dense.cycles, rel=1e-9)


def test_cli_search_and_eval_of_its_plan_agree(tmp_path: Path) -> None:
    net = tmp_path / "net.yaml"
    net.write_text(
        "network:\n  name: two\n  layers:\n"
        "    - name: fc1\n      gemm: {M: 256, N: 64, K: 256}\n"
        "      densities: {A: {distribution: bernoulli, density: 0.2}}\n"
        "    - name: fc2\n      gemm: {M: 128, N: 64, K: 256}\n"
        "      densities: {B: {distribution: bernoulli, density: 0.4}}\n"
    )
    arch = ROOT / "arch_specs" / "stc_2of4_tasd.yaml"
    plan, sj, ej = tmp_path / "p.yaml", tmp_path / "s.json", tmp_path / "e.json"
    res = runner.invoke(app, ["search", "-a", str(arch), "-n", str(net), "-b", "0.3", "-q",
                              "--out", str(plan), "--json", str(sj)])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "--arch", str(arch), "--network", str(net),
                              "--plan", str(plan), "--json", str(ej)])  # fmt: skip
    assert res.exit_code == 0, res.output
    s = json.loads(sj.read_text())["totals"]["plan"]
    e = json.loads(ej.read_text())["total"]
    assert e["energy_pj"] == pytest.approx(s["energy_pj"], rel=1e-9)
    assert e["cycles"] == pytest.approx(s["cycles"], rel=1e-9)


# -- network EDP optimality against brute force -------------------------------------------------


def _table(name: str, rows: list[tuple[float, float, float]]) -> LayerTable:
    n = len(rows)
    e = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    err = np.array([r[2] for r in rows])
    opts = tuple(LayerPlan(weights=f"{i + 1}:64") if i else LayerPlan() for i in range(n))
    return LayerTable(
        name=name,
        macs=1,
        options=opts,
        weight_error=err,
        activation_error=np.zeros(n),
        error=err,
        cycles=s * 1e9,
        seconds=s,
        energy_pj=e,
        valid=np.ones(n, dtype=bool),
        energy_by_component={},
        latency_by_component={},
    )


_opt = st.tuples(
    st.floats(0.1, 10.0), st.floats(0.1, 10.0), st.sampled_from([0.0, 0.01, 0.03, 0.08])
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    layers=st.lists(st.lists(_opt, min_size=1, max_size=5), min_size=1, max_size=4),
    budget=st.sampled_from([0.0, 0.02, 0.05, 1.0]),
    fixed=st.sampled_from([(0.0, 0.0), (5.0, 0.5), (0.5, 20.0)]),
)
def test_network_edp_is_optimal_against_brute_force(
    layers: list[list[tuple[float, float, float]]], budget: float, fixed: tuple[float, float]
) -> None:
    # ``fixed``: the (pJ, s) of non-GEMM operators every plan adds to the network totals
    tabs = [_table(f"l{i}", [(1.0, 1.0, 0.0), *rows]) for i, rows in enumerate(layers)]
    idx = select_per_layer(tabs, budget, "edp", fixed=fixed)
    _, best = brute_force(tabs, budget, "edp", fixed=fixed)
    got = network_objective(tabs, idx, "edp", fixed=fixed)
    assert got <= best * (1 + 1e-12)
    assert all(t.error[i] <= budget + 1e-12 for t, i in zip(tabs, idx, strict=True))


def test_network_edp_is_optimal_on_a_real_network() -> None:
    rep = search(_net(), _shipped("s2ta_tasd"), budget=0.1, max_terms=2)
    _, best = brute_force(rep.tables, 0.1, "edp")
    assert rep.totals("plan").edp_pj_s == pytest.approx(best, rel=1e-12)


def test_fixed_operator_cost_changes_the_edp_optimum() -> None:
    # two layers, options (E pJ, t s): a = (1, 1) dense, b = (2, 0.4). Without operators
    # (Σ E)(Σ t): a+a = 2·2 = 4.0, a+b = 3·1.4 = 4.2, b+b = 4·0.8 = 3.2 -> b+b.
    # With operators (E_0, t_0) = (0, 10), E·(10 + t):
    # a+a = 2·12 = 24, a+b = 3·11.4 = 34.2, b+b = 4·10.8 = 43.2 -> a+a.
    tabs = [_table(f"l{i}", [(1.0, 1.0, 0.0), (2.0, 0.4, 0.0)]) for i in range(2)]
    assert list(select_per_layer(tabs, 0.0, "edp")) == [1, 1]
    assert list(select_per_layer(tabs, 0.0, "edp", fixed=(0.0, 10.0))) == [0, 0]
    assert network_objective(tabs, [0, 0], "edp", fixed=(0.0, 10.0)) == pytest.approx(24.0)


def test_per_layer_edp_choice_is_not_the_network_optimum() -> None:
    # layer a: (E, t) = (1, 1) or (0.3, 2.5); layer b: (10, 10) or (12, 7). Per-layer EDP picks
    # (1,1) [1 < 0.75? no: 0.3·2.5 = 0.75 < 1 -> (0.3, 2.5)] and (12, 7) [84 < 100]: network
    # (12.3)(9.5) = 116.85; the optimum is (1,1)+(12,7): 13·8 = 104.
    a = _table("a", [(1.0, 1.0, 0.0), (0.3, 2.5, 0.0)])
    b = _table("b", [(10.0, 10.0, 0.0), (12.0, 7.0, 0.0)])
    idx = select_per_layer([a, b], 0.0, "edp")
    assert list(idx) == [0, 1]
    assert network_objective([a, b], idx, "edp") == pytest.approx(104.0)


# -- monotonicity ---------------------------------------------------------------------------------


def _arch(a_patterns: tuple[str, ...], tasd: bool) -> Architecture:
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
            A=OperandSparsity(patterns=a_patterns), B=OperandSparsity(patterns=("2:4", "2:8"))
        ),
        tasd_unit=TasdUnit(count=4, block=8, select=2) if tasd else None,
    )


def _at_buffer(problem: Problem, arch: object = None, objective: object = None) -> Mapping:
    return Mapping(
        levels=(
            LevelMapping(target="DRAM"),
            LevelMapping(target="Buffer", temporal=dict(problem.bounds)),
        )
    )


def _small(wd: float, ad: float) -> Network:
    d = {"A": Density(kind="bernoulli", density=wd), "B": Density(kind="bernoulli", density=ad)}
    return Network(
        name="s",
        layers=(
            Layer(name="a", problem=gemm(16, 8, 32, name="a", densities=d)),
            Layer(name="b", problem=gemm(8, 8, 16, name="b", densities=d)),
        ),
    )


def _edp(net: Network, arch: Architecture, budget: float, terms: int = 2) -> float:
    return (
        search(net, arch, budget=budget, mappings=_at_buffer, max_terms=terms)
        .totals("plan")
        .edp_pj_s
    )


FAMILY = ("1:4", "2:4", "1:8", "2:8", "4:8")
_dens = st.sampled_from([0.1, 0.3, 0.5, 0.8, 1.0])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    wd=_dens,
    ad=_dens,
    b1=st.sampled_from([0.0, 0.02, 0.05, 0.1]),
    extra=st.sampled_from([0.0, 0.03, 0.2]),
)
def test_a_larger_budget_never_gives_a_worse_plan(wd: float, ad: float, b1: float, extra: float):
    net, arch = _small(wd, ad), _arch(("2:4",), True)
    assert _edp(net, arch, b1 + extra) <= _edp(net, arch, b1) * (1 + 1e-12)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    wd=_dens,
    ad=_dens,
    budget=st.sampled_from([0.0, 0.05, 0.2]),
    base=st.sets(st.sampled_from(FAMILY), min_size=1, max_size=2),
    more=st.sets(st.sampled_from(FAMILY), min_size=1, max_size=3),
)
def test_more_patterns_a_tasd_unit_or_more_terms_never_give_a_worse_plan(
    wd: float, ad: float, budget: float, base: set[str], more: set[str]
) -> None:
    net = _small(wd, ad)
    small = _arch(tuple(sorted(base)), False)
    j0 = _edp(net, small, budget, 1)
    # a TASD unit
    assert _edp(net, _arch(tuple(sorted(base)), True), budget, 1) <= j0 * (1 + 1e-12)
    # more patterns
    assert _edp(net, _arch(tuple(sorted(base | more)), False), budget, 1) <= j0 * (1 + 1e-12)
    # more terms
    assert _edp(net, small, budget, 2) <= j0 * (1 + 1e-12)


def test_api_and_cli_defaults_agree() -> None:
    import inspect

    from testy_model.cli.search_cmd import search_command
    from testy_model.plan_search import ACTIVATION_BUDGET

    api = inspect.signature(search).parameters
    cli = inspect.signature(search_command).parameters
    for name in ("budget", "mode", "objective", "max_terms", "layer_cap"):
        assert api[name].default == cli[name].default.default, name
    # the CLI's --activation-budget default is None (resolved to ACTIVATION_BUDGET in the run,
    # so that the CLI module imports nothing heavy); the API's default is that constant
    assert api["activation_budget"].default == ACTIVATION_BUDGET
    assert cli["activation_budget"].default.default is None
    # the CLI's `--mapping mapper` is the API's mappings=None: each candidate on its mapping
    assert api["mappings"].default is None and cli["mapping"].default.default == "mapper"


def test_activation_budget_bounds_each_operand() -> None:
    # one layer, options (weight error, activation error): dense (0, 0), W (0.04, 0),
    # A (0, 0.4), WA (0.04, 0.4) with EDP falling in that order. budget 0.05 alone (combined
    # error 1 − (1 − e_w)(1 − e_a)) admits only dense and W; with activation_budget 0.5 the
    # weight keeps 0.05 and the activation may lose 0.4: WA
    from testy_model.plan_search.selection import select_per_layer

    t = _table("l", [(1.0, 1.0, 0.0), (0.9, 0.9, 0.04), (0.8, 0.8, 0.4), (0.5, 0.5, 0.424)])
    t = dataclasses.replace(
        t,
        weight_error=np.array([0.0, 0.04, 0.0, 0.04]),
        activation_error=np.array([0.0, 0.0, 0.4, 0.4]),
    )
    assert list(select_per_layer([t], 0.05, "edp")) == [1]
    allow = (t.weight_error <= 0.05) & (t.activation_error <= 0.5)
    assert list(select_per_layer([t], float("inf"), "edp", allow=allow[None, :])) == [3]


def test_l2_closed_form_error_by_hand() -> None:
    # two half-normal magnitudes: E[min²] = 1 − 2/π, E[max²] = 1 + 2/π (they sum to 2)
    import math

    from testy_model.plan_search.errors import (
        closed_form_error,
        half_normal_order_moments,
        l2_closed_form_error,
    )
    from testy_model.tasd.pattern import TasdSeries

    lo, hi = half_normal_order_moments(2)
    assert lo == pytest.approx(1 - 2 / math.pi, abs=1e-9)
    assert hi == pytest.approx(1 + 2 / math.pi, abs=1e-9)
    assert sum(half_normal_order_moments(8)) == pytest.approx(8.0, abs=1e-9)
    # 1:2 on a dense operand drops the smaller of each pair: sqrt((1 − 2/π)/2)
    got = l2_closed_form_error(TasdSeries.parse("1:2"), Density())
    assert got == pytest.approx(math.sqrt((1 - 2 / math.pi) / 2), abs=1e-9)
    # 1:2 at density 1/2: a pair holds 2 non-zeros with probability 1/4 and then drops its
    # smaller: E‖R‖² = (1 − 2/π)/4 per pair, E‖A‖² = 2·(1/2) = 1
    half = Density(kind="bernoulli", density=0.5)
    assert closed_form_error(TasdSeries.parse("1:2"), half, metric="l2") == pytest.approx(
        math.sqrt((1 - 2 / math.pi) / 4), abs=1e-9
    )
    # a series mixing block sizes falls back to the count
    mixed = TasdSeries.parse("2:4+1:8")
    assert l2_closed_form_error(mixed, half) is None
    assert closed_form_error(mixed, half, metric="l2") == closed_form_error(mixed, half)


def test_search_error_metric_option(tmp_path: Path) -> None:
    net = _small(0.5, 1.0)
    arch = _arch(("2:4",), True)
    count = search(net, arch, budget=0.3, mappings=_at_buffer, max_terms=1)
    l2 = search(net, arch, budget=0.3, mappings=_at_buffer, max_terms=1, error_metric="l2")
    # 2:4 on a Bernoulli(0.5) weight: count error 0.1875 (closed_form_error's hand check), l2
    # error 0.2016 (both within 0.3); the two searches price the same candidates
    t = count.tables[0]
    i = t.index("2:4", "dense")
    assert t.weight_error[i] == pytest.approx(0.1875)
    assert l2.tables[0].weight_error[i] > t.weight_error[i]
    from testy_model.errors import SpecError

    with pytest.raises(SpecError, match="error_metric"):
        search(net, arch, error_metric="bits")
