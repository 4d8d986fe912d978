"""evaluate(): plans, mappings per layer, measured vs expected densities, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from testy_model.errors import MappingError, SpecError
from testy_model.model.evaluate import evaluate
from testy_model.model.plan import LayerPlan, Plan
from testy_model.spec import (
    Architecture,
    ComputeUnit,
    Density,
    Layer,
    LevelMapping,
    Mapping,
    Network,
    OperandSparsity,
    SparsitySupport,
    StorageLevel,
    TasdUnit,
    gemm,
)
from testy_model.tasd.pattern import TasdSeries

ARCH = Architecture(
    name="stc",
    levels=(
        StorageLevel(
            name="DRAM", kind="DRAM", width=8, datawidth=8, read_energy=100, write_energy=100
        ),
        StorageLevel(
            name="Buffer", depth=65536, width=8, datawidth=8, read_energy=2, write_energy=3
        ),
    ),
    compute=ComputeUnit(instances=1, mac_energy=1.0, gated_mac_energy=0.1),
    sparsity=SparsitySupport(
        A=OperandSparsity(patterns=("2:4",)), B=OperandSparsity(patterns=("2:8",))
    ),
    tasd_unit=TasdUnit(count=16, cycles_per_block=8, block=8, energy_per_value=0.05),
)


def _flat_mapping(m: int, n: int, k: int) -> Mapping:
    # Everything at the buffer: DRAM moves each tensor once.
    return Mapping(levels=(LevelMapping(target="Buffer", temporal={"M": m, "N": n, "K": k}),))


# ---------------------------------------------------------------- plans
def test_plan_inline_parse_and_roundtrip(tmp_path) -> None:
    p = Plan.parse("W=2:8+1:8,A=dense;fc2:A=2:8")
    assert p.for_layer("fc1") == LayerPlan(weights="2:8+1:8")
    # per-layer overrides start from the default
    assert p.for_layer("fc2") == LayerPlan(weights="2:8+1:8", activations="2:8")
    f = tmp_path / "plan.yaml"
    f.write_text(p.to_yaml_text())
    assert Plan.load(f) == p
    assert Plan.coerce(str(f)) == p
    assert Plan.parse(str(p)) == p
    assert Plan.coerce(None).default.is_dense


def test_plan_errors_name_the_place(tmp_path) -> None:
    with pytest.raises(SpecError, match="'X=2:4'"):
        Plan.parse("X=2:4")
    with pytest.raises(SpecError, match="5:4"):
        Plan.parse("W=5:4")
    f = tmp_path / "bad.yaml"
    f.write_text("plan:\n  default:\n    weights: 2:4\n  layers:\n    fc1: {weights: 9:3}\n")
    with pytest.raises(SpecError) as err:
        Plan.load(f)
    msg = str(err.value)
    assert "bad.yaml:5" in msg and "plan.layers.fc1.weights" in msg


# ---------------------------------------------------------------- evaluate
def test_single_layer_matches_hand_derivation() -> None:
    # GEMM 8×8×16, flat mapping (one buffer tile holds everything), weights 2:4 on a 2:4 engine.
    # Cycles: 8·8·16 = 1024 dense, × 1/2 = 512. DRAM: A 128·0.5 = 64 values + 64·2 bits =
    # 128 bits; B 128; Z updates 64. Buffer: reads A 1024·0.5, B 1024, Z 1024−64 = 960.
    # Energy: DRAM (64+128+64)·100 + 128 bit·12.5 = 25,600 + 1,600 = 27,200;
    #   Buffer reads (512+1024+960)·2 = 4,992 + metadata 1024 bit·0.25 = 256;
    #   writes (64+128+1024)·3 = 3,648 + metadata 128 bit·0.375 = 48  -> 8,944;
    #   MAC 512·1 = 512 -> total 36,656 pJ.
    r = evaluate(gemm(8, 8, 16, name="fc"), ARCH, _flat_mapping(8, 8, 16), plan="W=2:4")
    layer = r.layers[0]
    assert layer.cycles == 512
    assert layer.accesses["DRAM"]["A"]["reads"] == 64
    assert layer.accesses["DRAM"]["A"]["metadata_reads"] == 16  # 128 bits / 8
    assert layer.accesses["Buffer"]["Z"]["reads"] == 960
    assert layer.energy_pj == pytest.approx(36_656)
    assert layer.speedup == pytest.approx(2.0)
    assert r.energy_pj == pytest.approx(36_656)


def test_network_mappings_per_layer_and_totals() -> None:
    net = Network(
        layers=(Layer(name="a", problem=gemm(8, 8, 16)), Layer(name="b", problem=gemm(16, 8, 8)))
    )
    maps = {"a": _flat_mapping(8, 8, 16), "b": _flat_mapping(16, 8, 8)}
    r = evaluate(net, ARCH, maps)
    assert r.cycles == 1024 + 1024
    assert r.energy_pj == pytest.approx(sum(x.energy_pj for x in r.layers))
    r2 = evaluate(net, ARCH, lambda layer, arch: maps[layer.name])
    assert r2.to_dict() == r.to_dict()
    with pytest.raises(MappingError, match="'b'"):
        evaluate(net, ARCH, {"a": maps["a"]})


def test_tasd_unit_cost_on_decomposed_activations() -> None:
    # A=2:8 on the activation B (N×K = 8·16 = 128 values): the TASD unit examines 128 values:
    # cycles ceil(128/8)·8/16 = 8, energy 128·0.05 = 6.4 pJ.
    r = evaluate(gemm(8, 8, 16), ARCH, _flat_mapping(8, 8, 16), plan="A=2:8")
    assert r.layers[0].energy_by_component["TASD_unit"] == pytest.approx(6.4)
    # 2:8 on B runs at 2/8 of the dense 1024 cycles.
    assert r.layers[0].cycles == 256


def _random_operand(rng: np.random.Generator, shape: tuple[int, int], d: float) -> np.ndarray:
    return rng.standard_normal(shape) * (rng.random(shape) < d)


def test_measured_and_expected_densities_agree_within_2_percent() -> None:
    # Real random tensors (Bernoulli(0.4) weights, Bernoulli(0.6) activations, seeded) against
    # the closed-form statistics of the same distributions, for a two-term weight plan and a
    # decomposed activation: energy, traffic and cycles agree within 2%.
    rng = np.random.default_rng(1234)
    m, n, k = 128, 64, 512
    w = _random_operand(rng, (m, k), 0.4)
    x = _random_operand(rng, (n, k), 0.6)
    prob = gemm(
        m,
        n,
        k,
        name="fc",
        densities={
            "A": Density(kind="bernoulli", density=0.4),
            "B": Density(kind="bernoulli", density=0.6),
        },
    )
    mapping = Mapping(
        levels=(
            LevelMapping(target="DRAM", temporal={"M": 4, "N": 2, "K": 8}),
            LevelMapping(target="Buffer", temporal={"M": 32, "N": 32, "K": 64}),
        )
    )
    for plan in ("W=2:8+1:8", "W=2:8+1:8,A=2:8+2:8", "W=1:4,A=2:8"):
        exp = evaluate(prob, ARCH, mapping, plan=plan)
        mea = evaluate(
            prob,
            ARCH,
            mapping,
            plan=plan,
            densities_source="measured",
            tensors={"fc": {"weight": w, "activation": x}},
        )
        assert mea.energy_pj == pytest.approx(exp.energy_pj, rel=0.02)
        assert mea.cycles == pytest.approx(exp.cycles, rel=0.02)
        a_exp = exp.layers[0].accesses["DRAM"]["A"]["reads"]
        a_mea = mea.layers[0].accesses["DRAM"]["A"]["reads"]
        assert a_mea == pytest.approx(a_exp, rel=0.02)
        assert mea.energy_pj != exp.energy_pj  # really measured, not the same numbers


def test_measured_without_tensor_falls_back_to_closed_form_per_layer() -> None:
    # Two layers, only "fc" has a real weight; "fc2" has none. Under "measured", fc2 must be
    # priced exactly as under "expected" (closed form) and flagged density_source=expected,
    # while fc is measured. fc's weight: 8x16 with every 4-block along K = [1, 2, 0, 0]
    # -> under 2:4 the term keeps both non-zeros: kept density 2/4 = 0.5 exactly, whereas the
    # closed form at its declared Bernoulli 0.3 would give E[min(X,2)]/4 with X~Bin(4,0.3)
    # = (4·0.3·0.7^3 + 2·(1 − 0.7^4 − 4·0.3·0.7^3))/4 = (0.4116 + 2·0.3483)/4 = 0.27705.
    w = np.tile(np.array([1.0, 2.0, 0.0, 0.0]), (8, 4))
    bern = {"A": Density(kind="bernoulli", density=0.3)}
    net = Network(
        name="n",
        layers=(
            Layer(name="fc", problem=gemm(8, 8, 16, densities=bern)),
            Layer(name="fc2", problem=gemm(8, 8, 16, densities=bern)),
        ),
    )
    m = _flat_mapping(8, 8, 16)
    exp = evaluate(net, ARCH, m, plan="W=2:4")
    mea = evaluate(
        net, ARCH, m, plan="W=2:4", densities_source="measured", tensors={"fc": {"weight": w}}
    )
    assert [x.density_source for x in mea.layers] == ["measured", "expected"]
    assert [x.density_source for x in exp.layers] == ["expected", "expected"]
    assert mea.layers[1].energy_pj == exp.layers[1].energy_pj
    # fc: DRAM reads of A scale with the kept density (0.5 measured vs 0.27705 expected)
    a_mea = mea.layers[0].accesses["DRAM"]["A"]["reads"]
    a_exp = exp.layers[0].accesses["DRAM"]["A"]["reads"]
    assert a_mea / a_exp == pytest.approx(0.5 / 0.27705, rel=1e-3)
    assert mea.to_dict()["layers"][1]["density_source"] == "expected"


def test_report_outputs(tmp_path) -> None:
    net = Network(name="n", layers=(Layer(name="a", problem=gemm(8, 8, 16)),))
    r = evaluate(net, ARCH, _flat_mapping(8, 8, 16), plan="W=2:8+1:8")
    d = json.loads(r.to_json(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == d
    assert set(d["total"]) >= {"cycles", "seconds", "energy_pj", "edp_pj_s"}
    lay = d["layers"][0]
    assert set(lay) >= {"name", "cycles", "seconds", "energy_pj", "energy_by_component", "accesses"}
    assert set(lay["accesses"]["DRAM"]["A"]) == {"reads", "fills", "updates", "metadata_reads"}
    df = r.to_frame()
    assert list(df["layer"]) == ["a"] and df["cycles"][0] == r.cycles
    assert r.table().row_count == 2
    fig = r.plot_breakdown()
    # energy in the unit that keeps the largest bar between 1 and 1000 (never pJ with an offset)
    total = r.layers[0].energy_pj
    unit = next(u for u, d in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3), ("pJ", 1)) if total >= d)
    assert fig.axes[0].get_ylabel() == f"energy ({unit})"
    # two 2:4-compatible terms on a 2:4 engine: 2 × 1/2 of the dense cycles = dense cycles.
    assert r.speedup == pytest.approx(1.0)
    assert TasdSeries.parse(r.layers[0].plan.split(",")[0][2:]) == TasdSeries.parse("2:8+1:8")


def test_structured_operand_keeps_exact_block_counts() -> None:
    # A is exactly 2:4 (Density kind nm). Plan W=1:4+1:4: each 4-block holds exactly 2
    # non-zeros, term 1 keeps 1, term 2 keeps the other: 1/4 + 1/4 of A's 128 values -> DRAM A
    # reads 32 + 32 = 64 values, metadata 64·2 bits = 128 bits = 16 words (flat mapping).
    prob = gemm(8, 8, 16, name="fc", densities={"A": Density(kind="nm", pattern="2:4")})
    r = evaluate(prob, ARCH, _flat_mapping(8, 8, 16), plan="W=1:4+1:4")
    acc = r.layers[0].accesses["DRAM"]["A"]
    assert acc["reads"] == 64 and acc["metadata_reads"] == 16
    # W=1:4 alone keeps exactly half of the non-zeros: 32 values.
    r1 = evaluate(prob, ARCH, _flat_mapping(8, 8, 16), plan="W=1:4")
    assert r1.layers[0].accesses["DRAM"]["A"]["reads"] == 32


def test_dense_baseline_uses_its_own_mappings_when_given() -> None:
    """With ``dense_mappings`` the speed-up and energy ratio compare the plan on its mappings
    against the dense run on *its* mappings: the report's dense figures must equal a plain
    dense evaluation on those dense mappings, whatever mapping the plan used."""
    from pathlib import Path

    from testy_model.mapper import find_mapping
    from testy_model.model.evaluate import evaluate
    from testy_model.model.plan import Plan
    from testy_model.model.terms import layer_terms
    from testy_model.spec import Layer, Network, gemm, load_arch

    arch = load_arch(Path(__file__).resolve().parents[1] / "arch_specs" / "stc_2of4.yaml")
    net = Network(name="n", layers=(Layer(name="g", problem=gemm(256, 128, 512)),))
    plan = Plan.coerce("W=2:4,A=dense")
    fmts, _ = layer_terms(net.layers[0], plan.for_layer("g"), arch)
    dens = {t: [x.operand_term() for x in ts] for t, ts in fmts.items()}
    plan_map = {"g": find_mapping(net.layers[0].problem, arch, densities=dens).mapping}
    dense_map = {"g": find_mapping(net.layers[0].problem, arch, densities={}).mapping}
    dense = evaluate(net, arch, dense_map)
    rep = evaluate(net, arch, plan_map, plan, dense_mappings=dense_map)
    assert rep.dense_cycles == dense.cycles
    assert rep.dense_energy_pj == dense.energy_pj
    assert rep.speedup == dense.cycles / rep.cycles
    # and without it the baseline is the dense run on the plan's own mapping (old behaviour)
    same = evaluate(net, arch, plan_map, plan)
    assert same.dense_energy_pj == evaluate(net, arch, plan_map).energy_pj
