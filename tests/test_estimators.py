"""Built-in estimators: node parser and scaling, the fitted formulas (hand-derived cases), their
fit to the cited points, smoothness and monotonicity (hypothesis, derandomized), and the
voltage-frequency rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from testy_model.errors import SpecError
from testy_model.estimators import energy as en
from testy_model.estimators import fit, node, voltage
from testy_model.estimators.area import area
from testy_model.estimators.energy import energy_per_action
from testy_model.estimators.reference_points import AREA_POINTS, ENERGY_POINTS

SHARED = Path(__file__).resolve().parents[2] / "shared"
# F_n(V) = a V² + b V + c of Stillmaker & Baas at the nominal supplies, by hand:
F45 = 1.018 - 0.3107 + 0.1539  # 45 nm at 1.0 V = 0.8612
F65 = 3.755 * 1.1**2 - 4.398 * 1.1 + 1.975  # 65 nm at 1.1 V = 1.68075
F32 = 0.8367 * 0.9**2 - 0.4341 * 0.9 + 0.1701  # 32 nm at 0.9 V = 0.457137
SETTINGS = settings(derandomize=True, max_examples=300, deadline=None)


# -- node parser ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nm"),
    [
        ("45nm", 45.0),
        ("45 nm", 45.0),
        (45, 45.0),
        (45.0, 45.0),
        ("7nm", 7.0),
        ("7", 7.0),
        ("0.045um", 45.0),
        ("0.045 µm", 45.0),
        ("45e-9m", 45.0),
        (45e-9, 45.0),
        ("22.5nm", 22.5),
        (None, 45.0),
        ("", 45.0),
    ],
)
def test_node_parser_reads_every_form(text: object, nm: float) -> None:
    assert node.node_nm(text) == pytest.approx(nm, rel=1e-12)


@pytest.mark.parametrize("junk", ["fast", "45xm", "nm", "-7nm", 0, -7, 0.045, True, [45], "4 5nm"])
def test_node_parser_rejects_junk(junk: object) -> None:
    with pytest.raises(SpecError, match="expected a process node"):
        node.node_nm(junk)


def test_node_outside_the_table_is_an_error() -> None:
    with pytest.raises(SpecError, match="outside the 7-180 nm range"):
        node.energy_scale(node.node_nm("5nm"))
    with pytest.raises(SpecError, match="outside"):
        energy_per_action("SRAM", width=64, depth=1024, node="250nm")


# -- node scaling (Stillmaker & Baas 2017) --------------------------------------------------------


def test_node_scaling_hand_derived() -> None:
    # area: the table's 45 nm row, exact at its nodes
    assert node.area_scale(45) == 1.0
    assert node.area_scale(7) == 0.059
    assert node.area_scale(65) == 1.5
    # energy: F_n(V_nom(n)) / F_45(1.0 V); 65 nm: 1.68075 / 0.8612 = 1.951637
    assert node.energy_scale(45) == 1.0
    assert node.energy_scale(65) == pytest.approx(F65 / F45, rel=1e-12)
    assert node.energy_scale(65) == pytest.approx(1.951637, rel=1e-6)
    assert node.energy_scale(32) == pytest.approx(F32 / F45, rel=1e-12)  # 0.530814
    # between nodes, log-log: 40 nm is t = ln(40/32)/ln(45/32) = 0.654521 of the way from 32 to
    # 45 nm, so S_E(40) = (F32/F45)^(1 - t) = 0.530814^0.345479 = 0.803477
    t = math.log(40 / 32) / math.log(45 / 32)
    assert node.energy_scale(40) == pytest.approx((F32 / F45) ** (1 - t), rel=1e-12)
    assert node.energy_scale(40) == pytest.approx(0.803477, rel=1e-6)
    # S_A(40) = 0.46^(1 - t) = 0.764698
    assert node.area_scale(40) == pytest.approx(0.46 ** (1 - t), rel=1e-12)
    assert node.nominal_vdd(45) == 1.0 and node.nominal_vdd(7) == 0.7


@SETTINGS
@given(st.floats(min_value=7.0, max_value=179.0))
def test_node_scaling_is_increasing_and_continuous(nm: float) -> None:
    for scale in (node.area_scale, node.energy_scale):
        lo, hi = scale(nm), scale(nm + 1.0)
        assert lo < hi
        # neighbouring 0.01 nm apart: no jump. The steepest log-log slope of the tables is
        # ln(30.62/7.317)/ln(180/130) = 4.40 (energy, 130-180 nm), so the step is below
        # ((nm + 0.01)/nm)^4.5.
        assert scale(nm + 0.01) / lo < ((nm + 0.01) / nm) ** 4.5


# -- the fitted formulas, each derived by hand -----------------------------------------------------


def test_sram_energy_hand_derived() -> None:
    # SRAM 16384 x 64 read at 45 nm: 0.007370307 · 16384^0.4393879 · 64
    # = 0.007370307 · exp(0.4393879 · 9.704061) · 64 = 0.007370307 · 71.08290 · 64 = 33.52978 pJ
    want = 0.007370307 * 16384**0.4393879 * 64
    assert want == pytest.approx(33.52978, rel=1e-6)
    assert energy_per_action("SRAM", width=64, depth=16384) == pytest.approx(want, rel=1e-12)
    w = 0.01000256 * 16384**0.406041 * 64
    assert energy_per_action("SRAM", width=64, depth=16384, action="write") == pytest.approx(w)
    # at 65 nm and its nominal supply: × 1.951637; at 0.9 V there: × (0.9/1.1)²
    e65 = want * F65 / F45
    assert energy_per_action("SRAM", width=64, depth=16384, node="65nm") == pytest.approx(e65)
    got = energy_per_action("SRAM", width=64, depth=16384, node=65, voltage=0.9)
    assert got == pytest.approx(e65 * (0.9 / 1.1) ** 2, rel=1e-12)


def test_rf_register_mac_dram_energy_hand_derived() -> None:
    # RF 128 x 24: 0.02302453 · 128^0.5192339 · 24^0.4526112 = 0.02302453 · 12.42038 · 4.214044
    assert energy_per_action("RF", width=24, depth=128) == pytest.approx(
        0.02302453 * 128**0.5192339 * 24**0.4526112, rel=1e-12
    )
    assert pytest.approx(1.205104, rel=1e-6) == 0.02302453 * 128**0.5192339 * 24**0.4526112
    # register: 0.005514185 pJ per bit read, 0.004683396 write, whatever the depth
    assert energy_per_action("register", width=16) == pytest.approx(16 * 0.005514185)
    assert energy_per_action("register", width=16, depth=4) == pytest.approx(16 * 0.005514185)
    assert energy_per_action("register", width=8, action="write") == pytest.approx(8 * 0.004683396)
    # MACs: 0.4506375 · (w/8)^2.576907; fp: 64.71874 · (w/32)^2.576907
    assert energy_per_action("MAC_int", width=8) == pytest.approx(0.4506375)
    assert energy_per_action("MAC_int", width=16) == pytest.approx(0.4506375 * 2**2.576907)
    assert energy_per_action("MAC_fp", width=32) == pytest.approx(64.71874)
    assert energy_per_action("MAC_fp", width=16) == pytest.approx(64.71874 * 0.5**2.576907)
    # DRAM: 8 pJ/bit LPDDR4, 3.9 HBM2, never scaled by node or voltage
    assert energy_per_action("DRAM", width=64) == 512.0
    assert energy_per_action("DRAM", width=64, node=7, voltage=0.5, dram_type="HBM2") == 249.6
    e, src = en.dram_word_energy("XDR", 8)
    assert e == 64.0 and "XDR->LPDDR4" in src


def test_per_word_and_metadata_wrappers() -> None:
    # a 2048 x 8 SRAM with 8-b words: per word = per row = 0.007370307 · 2048^0.4393879 · 8
    r, w, src = en.storage_word_energy("SRAM", 2048, 8, 8)
    assert r == pytest.approx(0.007370307 * 2048**0.4393879 * 8)
    assert w == pytest.approx(0.01000256 * 2048**0.406041 * 8)
    assert src.endswith("SRAM")
    # 4096 x 512 with 8-b words: a row holds 64 words -> row energy / 64
    r, _, _ = en.storage_word_energy("SRAM", 4096, 512, 8)
    assert r == pytest.approx(0.007370307 * 4096**0.4393879 * 512 / 64)
    # unbounded (no depth): priced as 16384 rows
    assert en.storage_word_energy("SRAM", None, 64, 16)[0] == pytest.approx(
        0.007370307 * 16384**0.4393879 * 64 / 4
    )
    # metadata: SRAM row energy per bit; depth 1 is a register; absent is 0
    mr, mw = en.metadata_energy_per_bit(8192, 64)
    assert mr == pytest.approx(0.007370307 * 8192**0.4393879)
    assert mw == pytest.approx(0.01000256 * 8192**0.406041)
    assert en.metadata_energy_per_bit(1, 8) == (
        pytest.approx(0.005514185),
        pytest.approx(0.004683396),
    )
    assert en.metadata_energy_per_bit(0, 0) == (0.0, 0.0)


def test_area_formulas_hand_derived() -> None:
    assert area("SRAM", width=64, depth=16384) == pytest.approx(1.087942 * 16384 * 64)
    assert area("RF", width=64, depth=8192) == pytest.approx(
        4.234451 * 8192**0.8067126 * 64**0.9622345, rel=1e-12
    )
    assert area("register", width=16) == pytest.approx(3.228057 * 16)
    assert area("MAC_int", width=8) == pytest.approx(773.6783)
    assert area("MAC_int", width=16) == pytest.approx(773.6783 * 4)  # (16/8)^2
    assert area("MAC_fp", width=16) == area("MAC_int", width=16)
    assert area("DRAM", width=64) == 0.0
    # 7 nm: × 0.059 (the table's 45 nm row)
    assert area("SRAM", width=8, depth=8, node="7nm") == pytest.approx(1.087942 * 64 * 0.059)


def test_issue_cliffs_are_gone() -> None:
    # issue 12: a 9,600-word SRAM cost 1.166 pJ per word read and an 11,520-word one 0.243; a
    # 2,048-word RF 2.154 and a 4,093-word one 1.888; 65,536 bits -> 93,536 um² of area and
    # 65,537 bits -> 65,107. Now each rises with size, by at most the size ratio.
    small, big = (en.storage_word_energy("SRAM", d, 8, 8)[0] for d in (9600, 11520))
    assert small < big < small * 11520 / 9600
    small, big = (en.storage_word_energy("RF", d, 8, 8)[0] for d in (2048, 4093))
    assert small < big < small * 4093 / 2048
    a1, a2 = (area("SRAM", width=1, depth=d) for d in (65536, 65537))
    assert a1 < a2 == pytest.approx(a1 * 65537 / 65536)


# -- the constants are the fits of the cited points ----------------------------------------------

ENERGY_KEYS = [("SRAM", "read"), ("SRAM", "write"), ("RF", "read"), ("RF", "write")]
ENERGY_KEYS += [("register", "read"), ("register", "write"), ("MAC_int", "read")]
ENERGY_KEYS += [("MAC_fp", "read")]


@pytest.mark.parametrize(("comp", "action"), ENERGY_KEYS)
def test_energy_constants_are_the_fit(comp: str, action: str) -> None:
    got = fit.fit(comp, action)  # type: ignore[arg-type]
    want = en.ENERGY_FITS[(comp, action)]
    assert math.exp(want.log_k) == pytest.approx(math.exp(got.log_k), rel=1e-6)
    assert want.depth_exp == pytest.approx(got.depth_exp, abs=1e-6)
    assert want.width_exp == pytest.approx(got.width_exp, abs=1e-6)


@pytest.mark.parametrize("comp", ["SRAM", "RF", "register", "MAC_int"])
def test_area_constants_are_the_fit(comp: str) -> None:
    from testy_model.estimators.area import AREA_FITS

    got = fit.fit(comp, "area")  # type: ignore[arg-type]
    want = AREA_FITS[comp]
    assert math.exp(want.log_k) == pytest.approx(math.exp(got.log_k), rel=1e-6)
    assert want.depth_exp == pytest.approx(got.depth_exp, abs=1e-6)
    assert want.width_exp == pytest.approx(got.width_exp, abs=1e-6)


def test_fit_recovers_a_known_power_law() -> None:
    # Points made from y = 0.01·D^0.5·W at 45 nm (one a compound of two arrays): the fit
    # returns those numbers.
    from testy_model.estimators.reference_points import RefPoint

    geo = [((64, 8),), ((1024, 32),), ((4096, 128),), ((256, 16), (16, 4)), ((8192, 64),)]
    pts = [
        RefPoint("SRAM", "read", sum(0.01 * d**0.5 * w for d, w in g), 45, g, "synthetic")
        for g in geo
    ]
    got = fit.fit_points("SRAM", "read", pts)
    assert math.exp(got.log_k) == pytest.approx(0.01, rel=1e-9)
    assert got.depth_exp == pytest.approx(0.5, abs=1e-9)
    assert got.width_exp == pytest.approx(1.0, abs=1e-9)


def test_leave_one_out_is_a_refit_without_the_point() -> None:
    res = fit.leave_one_out("register", "area")
    # register area points (bits, µm²): 16 b 72.0, 16 b 95.68, 16 b 20.0 -> the fit is their
    # geometric mean per bit; leaving 72.0 out, k = sqrt(95.68 · 20.0) / 16 = 2.733805 µm²/bit,
    # so 16 bits are predicted at 43.74089 µm², 39.25 % below 72.0.
    first = res[0]
    assert first.point.value == 72.0
    assert first.loo_error == pytest.approx(math.sqrt(95.68 * 20.0) / 72.0 - 1, rel=1e-12)
    assert first.fit_error == pytest.approx((72.0 * 95.68 * 20.0) ** (1 / 3) / 72.0 - 1)
    held = [r for r in fit.leave_one_out("RF", "read") if not r.point.fitted]
    assert held and all(r.loo_error is None for r in held)


def _value_in_file(source: str, quantity: str, component: str) -> float:
    """The value a point cites: ``<path>/ERT.yaml: NAME [metadata]`` read from the file."""
    path, rest = source.split(": ", 1)
    name = rest.split()[0]
    files = sorted(SHARED.glob(path))
    assert files, f"no file matches {path}"
    doc = yaml.safe_load(files[0].read_text())
    top = "ART" if path.endswith("ART.yaml") else "ERT"
    entry = next(t for t in doc[top]["tables"] if t["name"].split(".")[-1].split("[")[0] == name)
    if top == "ART":
        return float(entry["area"])
    action = "mac_random" if component.startswith("MAC") else quantity
    if rest.endswith("metadata"):
        action = f"metadata_{quantity}"
    return float(next(a["energy"] for a in entry["actions"] if a["name"] == action))


def test_every_file_point_is_the_value_in_its_file() -> None:
    checked = 0
    for p in (*ENERGY_POINTS, *AREA_POINTS):
        if p.source.startswith(("reference.md", "timeloop-accelergy-exercises")):
            continue
        assert p.value == _value_in_file(p.source, p.quantity, p.component), p
        checked += 1
    assert checked >= 60


def test_every_reference_md_point_is_in_reference_md() -> None:
    text = (SHARED / "reference.md").read_text()
    for p in (*ENERGY_POINTS, *AREA_POINTS):
        if p.source.startswith("reference.md") and p.quantity == "read":
            shown = {0.202442: "0.20", 1.976602: "1.98", 12.68 + 0.21: "12.68", 52.0: "35.3"}
            assert shown.get(p.value, f"{p.value:g}") in text, p


# -- smooth and monotone across the whole range (issue 12) ----------------------------------------

STORAGE = [(c, a) for c, a in ENERGY_KEYS if not c.startswith("MAC")]
NODES = [7, 10, 22, 45, 65, 130, 180]


def _bound(x: int, exponent: float) -> float:
    """Largest allowed ratio between the values at sizes x+1 and x: 1 % or, where one step of
    size is itself more than 1 %, the size ratio to the estimator's steepest exponent."""
    return max(1.01, ((x + 1) / x) ** exponent) * (1 + 1e-12)


@SETTINGS
@given(
    key=st.sampled_from(STORAGE),
    nm=st.sampled_from(NODES),
    depth=st.integers(1, 1 << 22),
    width=st.integers(1, 1 << 12),
)
def test_storage_energy_monotone_and_continuous(
    key: tuple[str, str], nm: int, depth: int, width: int
) -> None:
    comp, action = key

    def e(d: int, w: int) -> float:
        return energy_per_action(comp, width=w, depth=d, node=nm, action=action)

    here = e(depth, width)
    assert here > 0
    assert here <= e(depth + 1, width) <= here * _bound(depth, 1.0)
    assert here <= e(depth, width + 1) <= here * _bound(width, 1.0)


@SETTINGS
@given(
    comp=st.sampled_from(["SRAM", "RF", "register"]),
    nm=st.sampled_from(NODES),
    depth=st.integers(1, 1 << 22),
    width=st.integers(1, 1 << 12),
)
def test_storage_area_monotone_and_continuous(comp: str, nm: int, depth: int, width: int) -> None:
    here = area(comp, width=width, depth=depth, node=nm)
    assert here > 0
    assert here <= area(comp, width=width, depth=depth + 1, node=nm) <= here * _bound(depth, 1.0)
    assert here <= area(comp, width=width + 1, depth=depth, node=nm) <= here * _bound(width, 1.0)


@SETTINGS
@given(
    comp=st.sampled_from(["MAC_int", "MAC_fp"]), nm=st.sampled_from(NODES), w=st.integers(1, 128)
)
def test_mac_energy_and_area_monotone_and_continuous(comp: str, nm: int, w: int) -> None:
    p = en.ENERGY_FITS[(comp, "read")].width_exp
    e0, e1 = (energy_per_action(comp, width=x, node=nm) for x in (w, w + 1))
    assert e0 < e1 <= e0 * _bound(w, p)
    a0, a1 = (area(comp, width=x, node=nm) for x in (w, w + 1))
    assert a0 < a1 <= a0 * _bound(w, 2.0)


def test_every_depth_to_a_million_rows_is_smooth() -> None:
    # every neighbouring pair of depths 1..2^20 at width 64, each storage class (vectorised
    # through the fitted formula itself, which the hypothesis tests check against the API)
    d = np.arange(1, (1 << 20) + 2, dtype=np.float64)
    for comp, action in STORAGE:
        f = en.ENERGY_FITS[(comp, action)]
        e = math.exp(f.log_k) * d**f.depth_exp * 64.0**f.width_exp
        ratio = e[1:] / e[:-1]
        assert np.all(ratio >= 1.0)
        assert np.all(ratio <= np.maximum(1.01, (d[1:] / d[:-1])) * (1 + 1e-12))
        assert energy_per_action(comp, width=64, depth=123457, action=action) == pytest.approx(
            e[123456], rel=1e-12
        )


# -- voltage-frequency rule ----------------------------------------------------------------------


def test_vf_rule_hand_derived() -> None:
    # g(v) = (v - 0.33)^1.3 / v; g(1) = 0.67^1.3 = 0.594152. At 1.4 GHz over a 1 GHz nominal:
    # g(v) = 1.4 · 0.594152 = 0.831812, solved by v = 1.539594 ((1.209594)^1.3 / 1.539594).
    g1 = 0.67**1.3
    assert g1 == pytest.approx(0.594152, rel=1e-6)
    v = float(voltage.supply_ratio(1.4, 1.0))
    assert (v - 0.33) ** 1.3 / v == pytest.approx(1.4 * g1, rel=1e-12)
    assert v == pytest.approx(1.539594, rel=1e-6)
    k_dyn, k_leak = voltage.energy_factors(1.4, 1.0)
    assert float(k_dyn) == pytest.approx(v * v, rel=1e-12)  # 2.370349
    assert float(k_leak) == pytest.approx(v / 1.4, rel=1e-12)  # 1.099710
    # exactly 1 at the nominal clock; only the ratio f / f_nom matters
    assert voltage.energy_factors(0.7, 0.7) == (1.0, 1.0)
    assert float(voltage.supply_ratio(2.8, 2.0)) == pytest.approx(v, rel=1e-12)


@SETTINGS
@given(st.floats(min_value=0.01, max_value=20.0), st.floats(min_value=0.001, max_value=0.5))
def test_vf_rule_monotone(f: float, step: float) -> None:
    v0, v1 = (float(voltage.supply_ratio(x, 1.0)) for x in (f, f * (1 + step)))
    assert voltage.THRESHOLD_FRACTION < v0 < v1
    assert float(voltage.clock_ratio(v0)) == pytest.approx(f, rel=1e-9)
    d0, d1 = (float(voltage.energy_factors(x, 1.0)[0]) for x in (f, f * (1 + step)))
    assert d0 < d1  # higher clock -> higher V -> higher energy per action
    # a higher clock costs more per action through the estimator's voltage argument too
    vn = node.nominal_vdd(45)
    e0, e1 = (energy_per_action("SRAM", width=64, depth=1024, voltage=x * vn) for x in (v0, v1))
    assert e0 < e1


# -- the cost model reads voltage-scaled energies ------------------------------------------------


def test_clock_above_nominal_scales_the_energies_the_model_reads(tmp_path: Path) -> None:
    import warnings

    from testy_model.model.arrays import arch_arrays
    from testy_model.spec.arch_loader import apply_arch_overrides, load_arch

    spec = Path(__file__).resolve().parents[1] / "arch_specs" / "stc_2of4_tasd.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(spec, ["levels.SMEM.leakage=2.0", "compute.leakage=0.5"])
    assert arch.compute.clock_ghz == arch.compute.nominal_clock_ghz == 1.0
    base = arch_arrays(arch)
    fast = arch_arrays(apply_arch_overrides(arch, ["compute.clock_ghz=1.4"]))
    v = 1.539594  # test_vf_rule_hand_derived: 1.4 GHz over a 1 GHz nominal
    on_chip = np.array([name != "DRAM" for name in base.level_names])  # DRAM: its own supply
    for field in ("read_energy", "write_energy", "md_read_energy", "md_write_energy"):
        want = getattr(base, field)[0] * np.where(on_chip, v * v, 1.0)
        np.testing.assert_allclose(getattr(fast, field)[0], want, rtol=1e-6)
    assert base.read_energy[0][~on_chip].item() == fast.read_energy[0][~on_chip].item() == 64.0
    assert fast.mac_energy[0] == pytest.approx(base.mac_energy[0] * v * v, rel=1e-6)
    assert fast.tasd_energy_per_value[0] == pytest.approx(
        base.tasd_energy_per_value[0] * v * v, rel=1e-6
    )
    smem = list(base.level_names).index("SMEM")
    assert base.leakage[0, smem] == 2.0
    assert fast.leakage[0, smem] == pytest.approx(2.0 * v / 1.4, rel=1e-6)
    assert fast.mac_leakage[0] == pytest.approx(0.5 * v / 1.4, rel=1e-6)
    # the same operating point written in the spec: clock 1.4 GHz, nominal 1.0 GHz
    text = spec.read_text().replace("      clock_ghz: 1.0 ", "      clock_ghz: 1.4 ", 1)
    assert "clock_ghz: 1.4" in text and "nominal_clock_ghz: 1.0" in text
    (tmp_path / "fast.yaml").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = load_arch(
            tmp_path / "fast.yaml", ["levels.SMEM.leakage=2.0", "compute.leakage=0.5"]
        )
    np.testing.assert_allclose(arch_arrays(written).read_energy, fast.read_energy, rtol=1e-12)
    np.testing.assert_allclose(arch_arrays(written).leakage, fast.leakage, rtol=1e-12)
