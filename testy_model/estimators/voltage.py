"""Voltage-frequency rule: a design point's clock sets its supply voltage, and the voltage its
per-action energies and leakage.

**Rule** (alpha-power law, T. Sakurai and A. R. Newton, "Alpha-power law MOSFET model and its
applications to CMOS inverter delay and other formulas", IEEE JSSC 25(2):584-594, 1990): gate
delay ∝ V / (V − V_t)^α, so the clock a circuit reaches at supply V is

    f(V) / f_nom = g(V/V_nom) / g(1),   g(v) = (v − θ)^α / v,   θ = V_t / V_nom.

``f_nom`` is the clock at the node's nominal supply ``V_nom``
(:func:`testy_model.estimators.node.nominal_vdd`); it is the spec's ``nominal_clock_ghz``
(default: the clock written in the spec, see :class:`testy_model.spec.arch.ComputeUnit`). The
voltage of a clock f is the v > θ solving the equation (g rises monotonically for α >= 1, so the
solution is unique and v rises with f). Constants:

- θ = 0.33: the high-performance device threshold over the supply of ITRS 2009 (front-end
  process tables, HP device: V_t 0.33 V at 45 nm with V_dd 1.0 V, 0.297 V at 32 nm with 0.9 V,
  0.267 V at 22 nm with 0.8 V: 0.33·V_dd at each). One ratio serves every node.
- α = 1.3: the velocity-saturation index of short-channel CMOS in the alpha-power model, whose
  range is 1 (fully velocity-saturated) to 2 (Shockley's square law).

**Energy.** Dynamic energy per action ∝ V² (CV², as Accelergy scales voltage):
``k_dyn = v²``. **Leakage.** Static power ``P = V·N·k_design·I_leak`` (J. A. Butts and G. S.
Sohi, "A static power model for architects", MICRO-33, 2000), with the leakage current taken as
fixed at the node, so leakage power ∝ V and leakage energy per cycle ∝ V / f:
``k_leak = v / (f / f_nom)``. At the nominal clock both factors are exactly 1.

Worked example (f_nom = 1 GHz): at 1.4 GHz, g(v) = 1.4·g(1) = 1.4·0.67^1.3 = 1.4·0.594152 =
0.831812; v = 1.539594 solves it ((1.209594)^1.3 / 1.539594 = 0.831812), so dynamic energies
scale by v² = 2.370349 and leakage per cycle by v / 1.4 = 1.099710.
"""

from __future__ import annotations

import numpy as np

#: V_t / V_nom (ITRS 2009 HP devices, module docstring).
THRESHOLD_FRACTION = 0.33
#: Velocity-saturation index α of the alpha-power law (module docstring).
ALPHA = 1.3
#: Bisection steps in :func:`supply_ratio` (the bracket halves each step: 2^-64 of it is below
#: double precision).
_STEPS = 64


def _g(v: np.ndarray) -> np.ndarray:
    """g(v) = (v − θ)^α / v for v > θ (0 at and below θ)."""
    return np.maximum(v - THRESHOLD_FRACTION, 0.0) ** ALPHA / v


def _g1(v: float) -> float:
    """g of one float (:func:`_g`)."""
    return max(v - THRESHOLD_FRACTION, 0.0) ** ALPHA / v


def clock_ratio(v: float | np.ndarray) -> np.ndarray:
    """f / f_nom reached at supply ratio v = V / V_nom: ``g(v) / g(1)`` (module docstring)."""
    return _g(np.asarray(v, dtype=np.float64)) / _g1(1.0)


def _solve(ratio: float) -> float:
    """v > θ with g(v) = ratio·g(1), by bisection on a bracket grown until it holds v."""
    if ratio == 1.0:
        return 1.0
    target = ratio * _g1(1.0)
    lo, hi = THRESHOLD_FRACTION, 1.0
    while _g1(hi) < target:
        lo, hi = hi, 2.0 * hi
    for _ in range(_STEPS):
        mid = 0.5 * (lo + hi)
        if _g1(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def supply_ratio(
    clock_ghz: float | np.ndarray, nominal_clock_ghz: float | np.ndarray
) -> np.ndarray:
    """V / V_nom needed to run at ``clock_ghz`` when ``nominal_clock_ghz`` is reached at V_nom.

    Solves ``g(v) = (f / f_nom)·g(1)`` for v > θ by bisection (module docstring); exactly 1.0
    where ``clock_ghz == nominal_clock_ghz``. Both arguments in GHz, > 0; broadcast together.
    """
    f = np.asarray(clock_ghz, dtype=np.float64)
    f0 = np.asarray(nominal_clock_ghz, dtype=np.float64)
    ratio = f / f0
    flat = [_solve(float(r)) for r in np.ravel(ratio)]
    return np.asarray(flat, dtype=np.float64).reshape(ratio.shape)


def energy_factors(
    clock_ghz: float | np.ndarray, nominal_clock_ghz: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(k_dyn, k_leak) at ``clock_ghz``: dynamic energy per action × v², leakage energy per
    cycle × v / (f / f_nom), v from :func:`supply_ratio` (module docstring). Both exactly 1 at
    the nominal clock."""
    f = np.asarray(clock_ghz, dtype=np.float64)
    f0 = np.asarray(nominal_clock_ghz, dtype=np.float64)
    v = supply_ratio(f, f0)
    return v * v, np.where(f == f0, 1.0, v / (f / f0))
