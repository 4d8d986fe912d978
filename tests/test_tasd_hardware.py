"""TASD as the hardware runs it: fixed-slot formats, the TASD unit's parts, like-for-like engines,
orientation. Every expected value is derived by hand in the comments."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.estimators.area import area_breakdown_mm2
from testy_model.estimators.tasd_unit import tasd_unit_cost
from testy_model.model.evaluate import evaluate
from testy_model.model.plan import LayerPlan, Plan
from testy_model.model.terms import term_format
from testy_model.spec import (
    Architecture,
    ComputeUnit,
    Layer,
    LevelMapping,
    Mapping,
    Network,
    OperandSparsity,
    SparsitySupport,
    StorageLevel,
    gemm,
    load_arch,
)
from testy_model.tasd.pattern import NMPattern

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "arch_specs"
FAMILY = (
    "stc_2of4",
    "stc_2of4_tasd",
    "vegeta",
    "vegeta_tasd",
    "highlight",
    "highlight_tasd",
    "s2ta",
    "s2ta_tasd",
    "ttc_stc",
    "ttc_vegeta_m8",
)


def _load(name: str) -> Architecture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(SPECS / f"{name}.yaml")


# -- fixed-slot formats ---------------------------------------------------------------------------


def test_fixed_slot_1of8_term_on_a_2of4_engine() -> None:
    # a 1:8 term keeping 5 % of the values runs on 2:4 (an aligned 4-block of a 1:8 tensor holds
    # at most 1 <= 2 non-zeros): it stores and moves 2 of every 4 values (50 %), 2 bits of
    # metadata per kept slot (ceil(log2 4)), issues half the MACs, of which 5 % of the dense
    # MACs are effective (the zero slots are gated)
    sup = OperandSparsity(patterns=("2:4",))
    f = term_format(NMPattern(1, 8), 0.05, sup)
    assert (f.density, f.metadata_bits, f.work, f.nonzero) == (0.5, 2.0, 0.5, 0.05)
    # without zero-slot gating every slot is a full MAC
    f2 = term_format(
        NMPattern(1, 8), 0.05, OperandSparsity(patterns=("2:4",), zero_slots="compute")
    )
    assert f2.nonzero == 0.5
    # coordinate format: actual occupancy, ceil(log2 8) = 3 bits per kept value
    f3 = term_format(NMPattern(1, 8), 0.05, OperandSparsity(patterns=("2:4",), format="coordinate"))
    assert (f3.density, f3.metadata_bits, f3.work) == (0.05, 3.0, 0.5)
    # bitmask: one bit per value of the tensor = 1/0.05 = 20 bits per kept value
    f4 = term_format(NMPattern(1, 8), 0.05, OperandSparsity(patterns=("2:4",), format="bitmask"))
    assert f4.density == 0.05 and f4.metadata_bits == pytest.approx(20.0)
    # a term no pattern contains runs dense: every value stored, no metadata, full work
    f5 = term_format(NMPattern(3, 4), 0.7, sup)
    assert (f5.density, f5.metadata_bits, f5.work, f5.nonzero) == (1.0, 0.0, 1.0, 0.7)


def test_fixed_slot_traffic_and_macs_in_the_model() -> None:
    # GEMM M=8, N=4, K=16 with every loop at the buffer: DRAM reads A once (128 words). Plan
    # W=1:8 on a 2:4 engine at weight density 5 % (Bernoulli): kept 1:8 density E[min(X,1)]/8,
    # X ~ Bin(8, 0.05) -> (1 − 0.95^8)/8 = 0.0424; DRAM A reads 64 words (the slots) plus
    # 64·2 bits = 128 bits = 16 words of metadata; effective MACs 512·0.0424, issued 256, the
    # other 256 − 21.7 gated at 0.1 pJ; MAC energy = 21.7·1 + 234.3·0.1
    from testy_model.spec import Density

    arch = Architecture(
        name="h",
        levels=(
            StorageLevel(
                name="DRAM", kind="DRAM", width=8, datawidth=8, read_energy=1, write_energy=1
            ),
            StorageLevel(name="Buffer", width=8, datawidth=8, read_energy=0, write_energy=0),
        ),
        compute=ComputeUnit(instances=1, mac_energy=1.0, gated_mac_energy=0.1),
        sparsity=SparsitySupport(A=OperandSparsity(patterns=("2:4",))),
    )
    prob = gemm(8, 4, 16, densities={"A": Density(kind="bernoulli", density=0.05)})
    m = Mapping(
        levels=(
            LevelMapping(target="DRAM"),
            LevelMapping(target="Buffer", temporal={"M": 8, "N": 4, "K": 16}),
        )
    )
    lay = evaluate(prob, arch, m, plan="W=1:8").layers[0]
    acc = lay.accesses["DRAM"]["A"]
    assert acc["reads"] == 64 and acc["metadata_reads"] == 16
    kept = (1 - 0.95**8) / 8
    assert lay.effective_macs == pytest.approx(512 * kept)
    assert lay.energy_by_component["MAC"] == pytest.approx(512 * kept + (256 - 512 * kept) * 0.1)


# -- the TASD unit from its parts ---------------------------------------------------------------


def test_tasd_unit_cost_by_hand() -> None:
    # top-2 of 4-blocks, int8, 45 nm (c = ceil(log2 4) = 2):
    # comparators 2·(8+1) = 18 bits: 18 · 0.21/32 pJ at 40 nm, brought to 45 nm by the node
    #   rule S_E(45)/S_E(40) = 1/S_E(40); 18·4.256 = 76.608 µm²
    # kept list: one write per value of an 8+2-bit register, 10·0.004683396 pJ (the register
    #   estimator's write fit); 2 entries of 10 bits at 3.228057 µm² per bit = 64.56114 µm²
    # index encoder: 2 bits, 2·0.004683396 pJ, 2·3.228057 = 6.456114 µm²
    from testy_model.estimators.node import area_scale, energy_scale

    c = tasd_unit_cost(2, 4, 8)
    assert c.cycles_per_block == 4
    e_cmp = 18 * 0.21 / 32 / energy_scale(40.0)
    assert c.energy_per_value == pytest.approx(e_cmp + 10 * 0.004683396 + 2 * 0.004683396)
    assert c.area_um2 == pytest.approx(76.608 + 64.56114 + 6.456114)
    # at 22 nm every part scales by the node rules: energy S_E(22), area S_A(22)
    c22 = tasd_unit_cost(2, 4, 8, "22nm")
    assert c22.energy_per_value == pytest.approx(c.energy_per_value * energy_scale(22.0))
    assert c22.area_um2 == pytest.approx(c.area_um2 * area_scale(22.0))


def test_tasd_unit_count_trades_area_for_hidden_cycles() -> None:
    # ttc_vegeta_m8: 16 units of top-4 over 8-blocks. Area = 16 × one unit; the unit's cycles for
    # V activation values: ceil(V/8)·8/16 (model.latency.tasd_unit_cycles); with 4 units the
    # area is a quarter and the cycles 4x
    from testy_model.model.latency import tasd_unit_cycles

    a16 = _load("ttc_vegeta_m8")
    a4 = a16.model_copy(update={"tasd_unit": a16.tasd_unit.model_copy(update={"count": 4})})
    one = tasd_unit_cost(4, 8, 8).area_um2 / 1e6
    assert area_breakdown_mm2(a16)["tasd_unit"] == pytest.approx(16 * one)
    assert area_breakdown_mm2(a4)["tasd_unit"] == pytest.approx(4 * one)
    assert float(tasd_unit_cycles(1024.0, 8.0, 8.0, 16.0)) == 64
    assert float(tasd_unit_cycles(1024.0, 8.0, 8.0, 4.0)) == 256


# -- like-for-like engines ----------------------------------------------------------------------


MUX4 = 0.5608 - 0.44688  # STC ERT mac_random − TC ERT mac_random (pJ)
MUX8 = MUX4 * 7 / 3  # an 8:1 mux tree has 7 2:1 cells per bit, a 4:1 tree 3
ITEMISED_MUX = {
    "stc_2of4": MUX4,
    "stc_2of4_tasd": MUX4,
    "vegeta": MUX4,
    "vegeta_tasd": MUX4,
    "highlight": MUX4,
    "highlight_tasd": MUX4,
    "s2ta": 2 * MUX8,
    "s2ta_tasd": 2 * MUX8,
    "ttc_stc": MUX4,
    "ttc_vegeta_m8": MUX8,
}


@pytest.mark.parametrize("name", FAMILY)
def test_dense_plan_costs_the_base_engine_plus_its_sparsity_support(name: str) -> None:
    # the same dense network on one mapping: every level's energy and the cycles equal the base
    # engine's (tc_dense.yaml); the MAC energy differs by MACs × the itemised operand-select
    # mux energy (the metadata storage and the TASD unit cost nothing on a dense plan)
    base = _load("tc_dense")
    eng = _load(name)
    net = Network(
        name="n",
        layers=(
            Layer(name="a", problem=gemm(256, 128, 512)),
            Layer(name="b", problem=gemm(512, 64, 256)),
        ),
    )
    from testy_model.mapper import find_mapping

    maps = {x.name: find_mapping(x.problem, base, densities={}).mapping for x in net.layers}
    rb = evaluate(net, base, maps)
    re_ = evaluate(net, eng, maps)
    macs = sum(x.macs for x in rb.layers)
    assert all(x.valid for x in re_.layers) and all(x.valid for x in rb.layers)
    assert re_.cycles == rb.cycles
    for lb, le in zip(rb.layers, re_.layers, strict=True):
        for comp in ("DRAM", "SMEM", "RF", "LRF"):
            assert le.energy_by_component[comp] == pytest.approx(lb.energy_by_component[comp])
    assert re_.energy_pj == pytest.approx(rb.energy_pj + macs * ITEMISED_MUX[name], rel=1e-11)


def test_family_engines_share_the_base_levels() -> None:
    base = _load("tc_dense")
    for name in FAMILY:
        eng = _load(name)
        for lb, le in zip(base.levels, eng.levels, strict=True):
            assert (lb.read_energy, lb.write_energy, lb.depth, lb.width) == (
                le.read_energy,
                le.write_energy,
                le.depth,
                le.width,
            ), name


# -- orientation ----------------------------------------------------------------------------------


def test_transposed_gemm_puts_the_activation_in_the_structured_slot() -> None:
    # on the 2:4 STC (2:4 on A only), A=2:4 in the plain orientation fits no pattern of the B
    # slot and runs dense; transposed it runs 2:4: half the compute cycles of the dense layer
    arch = _load("stc_2of4_tasd")
    net = Network(name="n", layers=(Layer(name="g", problem=gemm(256, 128, 512)),))
    from testy_model.plan_search.pricing import plan_mapping

    for orient, ratio in (("weight", 1.0), ("activation", 0.5)):
        lp = LayerPlan(activations="2:4", orientation=orient)
        m = plan_mapping(net.layers[0], arch, lp)
        rep = evaluate(net, arch, {"g": m}, Plan(layers={"g": lp}))
        dense_compute = 256 * 128 * 512 / 1024
        assert rep.layers[0].compute_cycles == pytest.approx(dense_compute * ratio)
    assert str(Plan.parse("W=dense,A=2:4,O=activation")) == "W=dense,A=2:4,O=activation"


def test_plan_orientation_syntax_and_yaml(tmp_path) -> None:
    from testy_model.errors import SpecError

    p = Plan.parse("W=2:4;fc:W=dense,A=2:4,O=activation")
    assert p.for_layer("fc") == LayerPlan(activations="2:4", orientation="activation")
    assert p.for_layer("conv").orientation == "weight"
    f = tmp_path / "plan.yaml"
    f.write_text(p.to_yaml_text())
    assert "orientation: activation" in f.read_text() and Plan.load(f) == p
    with pytest.raises(SpecError, match="orientation"):
        Plan.parse("A=2:4,O=sideways")
    bad = tmp_path / "bad.yaml"
    bad.write_text("plan:\n  layers:\n    fc: {activations: '2:4', orientation: up}\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:3"):
        Plan.load(bad)


def test_cli_eval_accepts_the_orientation(tmp_path) -> None:
    # one 256x128x512 GEMM (dense operands) on the 2:4 STC, each plan on its own mapping: A=2:4
    # in the plain orientation fits no pattern of the B slot (dense work, 256·128·512/1024 =
    # 16,384 compute cycles); transposed it runs 2:4 at half the work
    import json

    from typer.testing import CliRunner

    from testy_model.cli import app

    net = tmp_path / "g.yaml"
    net.write_text(
        "network:\n  name: g\n  layers:\n    - name: g\n      gemm: {M: 256, N: 128, K: 512}\n"
    )
    arch = str(SPECS / "stc_2of4_tasd.yaml")
    cycles = {}
    for k, plan in enumerate(("W=dense,A=2:4", "W=dense,A=2:4,O=activation")):
        js = tmp_path / f"r{k}.json"
        res = CliRunner().invoke(
            app, ["eval", "--arch", arch, "--network", str(net), "--plan", plan, "--json", str(js)]
        )
        assert res.exit_code == 0, res.output
        cycles[plan] = json.loads(js.read_text())["layers"][0]["cycles"]
    assert cycles["W=dense,A=2:4"] >= 16_384
    assert cycles["W=dense,A=2:4,O=activation"] < cycles["W=dense,A=2:4"]


def test_gelu_threshold_option_sets_the_measured_density() -> None:
    from testy_model.errors import SpecError
    from testy_model.graph.zoo import GELU_THRESHOLDS, get_network

    # the FFN down-projection reads the GELU output: its B density is the measured non-zero
    # fraction at the threshold (0.7810 at τ = 0.05); other activations stay dense
    net = get_network("bert-base", gelu_threshold=0.05)
    down = next(x for x in net.layers if x.name.endswith("mlp.down"))
    assert down.problem.density("B").value == GELU_THRESHOLDS[0.05][0] == 0.7810
    up = next(x for x in net.layers if x.name.endswith("mlp.up"))
    assert up.problem.density("B").value == 1.0
    with pytest.raises(SpecError, match="measured for"):
        get_network("bert-base", gelu_threshold=0.03)


def test_a_full_fixed_slot_series_maps_with_metadata_apart() -> None:
    # W=2:4+2:4 on the 2:4 STC fills 4 of 4 slots: the LRF (one 8-bit word, keeps A) holds a
    # whole word of A plus 2 bits of metadata per slot, 10 bits counted together; the LRF's
    # separate 1x8-bit metadata storage holds the 2 bits, so the layer maps (as the model
    # counts capacity) and is valid
    from testy_model.plan_search.pricing import plan_mapping

    arch = _load("stc_2of4_tasd")
    layer = Layer(name="g", problem=gemm(128, 64, 256))
    lp = LayerPlan(weights="2:4+2:4")
    m = plan_mapping(layer, arch, lp)
    rep = evaluate(layer, arch, m, Plan(layers={"g": lp}))
    assert rep.layers[0].valid
