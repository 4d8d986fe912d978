"""Fitting the built-in estimators to the cited reference points, and leave-one-out errors.

Every reference value is first brought to 45 nm with the node rule (divided by
:func:`~testy_model.estimators.node.energy_scale` or :func:`~testy_model.estimators.node.area_scale`
of its node), then one model per (component class, quantity) is fitted by least squares on
logarithms (so every point weighs the same in relative terms):

- storage arrays (SRAM, RF): ``y = Σ_parts exp(κ)·D^β·W^γ`` with β, γ bounded to [0, 1]
  (continuous and non-decreasing in depth D and width W; at most linear, as Accelergy's
  width-linear rule). Gauss-Newton on ``ln y``; a bound that is hit is fixed and the rest refitted;
- registers: ``y = k·bits`` (energy: the W bits of one access, whatever the depth; area:
  Σ depth·width), k the geometric mean of ``y / bits``;
- integer MACs: ``y = exp(κ)·(w/8)^p``, w the multiplier width; p the slope of ``ln y`` on
  ``ln(w/8)`` when the points have two widths or more, else :data:`DEFAULT_MAC_EXPONENT` (the
  MAC areas: one width only, so p = 2, an array multiplier's w² cells);
- floating-point MACs: ``y = exp(κ)·(w/32)^p`` with the integer-MAC energy exponent p.

The constants used at run time (:mod:`~testy_model.estimators.energy`,
:mod:`~testy_model.estimators.area`) are these fits, rounded; ``tests/test_estimators.py``
refits and compares. :func:`leave_one_out` gives, for each fitted point, the model refitted
without it, evaluated at it: the README's table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from testy_model.estimators.node import area_scale, energy_scale
from testy_model.estimators.reference_points import Component, Quantity, RefPoint, points

#: MAC energy exponent in width when the data hold one width only (multiplier ∝ w²).
DEFAULT_MAC_EXPONENT = 2.0
#: Bounds of the storage exponents β (depth) and γ (width).
EXPONENT_BOUNDS = (0.0, 1.0)


@dataclass(frozen=True)
class Fit:
    """A fitted model: ``log_k`` = κ, and the exponents (``depth_exp`` β, ``width_exp`` γ or p)."""

    component: Component
    quantity: Quantity
    log_k: float
    depth_exp: float = 0.0
    width_exp: float = 1.0

    def at_45nm(self, parts: tuple[tuple[int, int], ...]) -> float:
        """The model's value at 45 nm for ``parts`` (pJ or µm²; see module docstring)."""
        if self.component in ("MAC_int", "MAC_fp"):
            ref = 8.0 if self.component == "MAC_int" else 32.0
            return math.exp(self.log_k) * (parts[0][1] / ref) ** self.width_exp
        if self.component == "register":
            bits = sum(d * w if self.quantity == "area" else w for d, w in parts)
            return math.exp(self.log_k) * bits
        return sum(
            math.exp(self.log_k + self.depth_exp * math.log(d) + self.width_exp * math.log(w))
            for d, w in parts
        )

    def predict(self, p: RefPoint) -> float:
        """The model's value for reference point ``p`` at its own node."""
        return self.at_45nm(p.parts) * node_scale(p.quantity, p.node_nm)


def node_scale(quantity: Quantity, node_nm: float) -> float:
    """The node rule for ``quantity``: area_scale for areas, energy_scale for energies."""
    return area_scale(node_nm) if quantity == "area" else energy_scale(node_nm)


def _at_45(p: RefPoint) -> float:
    return p.value / node_scale(p.quantity, p.node_nm)


def _gauss_newton(
    pts: list[RefPoint], theta: np.ndarray, free: list[int], steps: int = 100
) -> np.ndarray:
    """Minimise Σ (ln y − ln Σ_parts exp(κ + β ln D + γ ln W))² over the ``free`` of (κ, β, γ)."""
    y = np.log([_at_45(p) for p in pts])
    for _ in range(steps):
        r = np.empty(len(pts))
        jac = np.empty((len(pts), 3))
        for i, p in enumerate(pts):
            lnd = np.log([d for d, _ in p.parts])
            lnw = np.log([w for _, w in p.parts])
            terms = np.exp(theta[0] + theta[1] * lnd + theta[2] * lnw)
            share = terms / terms.sum()
            r[i] = y[i] - math.log(terms.sum())
            jac[i] = (1.0, float(share @ lnd), float(share @ lnw))
        step = np.linalg.lstsq(jac[:, free], r, rcond=None)[0]
        theta = theta.copy()
        theta[free] += step
        if np.max(np.abs(step)) < 1e-13:
            break
    return theta


def _fit_storage(pts: list[RefPoint]) -> tuple[float, float, float]:
    lo, hi = EXPONENT_BOUNDS
    theta = np.array([math.log(_at_45(pts[0])), 0.5, 1.0])
    free = [0, 1, 2]
    for _ in range(3):
        theta = _gauss_newton(pts, theta, free)
        out = [k for k in (1, 2) if k in free and not lo <= theta[k] <= hi]
        if not out:
            break
        for k in out:
            theta[k] = min(max(theta[k], lo), hi)
            free.remove(k)
    return float(theta[0]), float(theta[1]), float(theta[2])


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fit_points(component: Component, quantity: Quantity, pts: list[RefPoint]) -> Fit:
    """Fit the model of ``component``/``quantity`` (module docstring) to ``pts``."""
    if component in ("SRAM", "RF"):
        k, b, c = _fit_storage(pts)
        return Fit(component, quantity, k, b, c)
    if component == "register":
        unit = Fit(component, quantity, 0.0, 0.0, 1.0)  # k = 1: the bits the model counts
        k = _geomean([_at_45(p) / unit.at_45nm(p.parts) for p in pts])
        return Fit(component, quantity, math.log(k), 0.0, 1.0)
    ref = 8.0 if component == "MAC_int" else 32.0
    p_exp = mac_energy_exponent() if component == "MAC_fp" else _slope(pts)
    k = _geomean([_at_45(p) / (p.parts[0][1] / ref) ** p_exp for p in pts])
    return Fit(component, quantity, math.log(k), 0.0, p_exp)


def _slope(pts: list[RefPoint]) -> float:
    """p: slope of ln y on ln(w/8) over ``pts`` with two widths or more, else
    :data:`DEFAULT_MAC_EXPONENT`."""
    x = np.log([p.parts[0][1] / 8.0 for p in pts])
    if len(set(x.tolist())) < 2:
        return DEFAULT_MAC_EXPONENT
    y = np.log([_at_45(p) for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def mac_energy_exponent() -> float:
    """p of the integer-MAC energy fit on all its fitted points (shared by fp MACs)."""
    return _slope(points("MAC_int", "read"))


def fit(component: Component, quantity: Quantity) -> Fit:
    """The model of ``component``/``quantity`` fitted on all its fitted reference points."""
    return fit_points(component, quantity, points(component, quantity))


@dataclass(frozen=True)
class Residual:
    """One reference point against the estimator: the full fit's relative error, and the
    leave-one-out error (the fit without this point; ``None`` when nothing would be left, or
    the point is held out and so never in the fit)."""

    point: RefPoint
    fit_error: float
    loo_error: float | None


def leave_one_out(component: Component, quantity: Quantity) -> list[Residual]:
    """Relative errors (estimate / published − 1) of every reference point of a class: fitted
    points with their leave-one-out error, then held-out points."""
    pts = points(component, quantity)
    full = fit_points(component, quantity, pts)
    out: list[Residual] = []
    for i, p in enumerate(pts):
        rest = pts[:i] + pts[i + 1 :]
        loo = fit_points(component, quantity, rest).predict(p) / p.value - 1 if rest else None
        out.append(Residual(p, full.predict(p) / p.value - 1, loo))
    for p in points(component, quantity, fitted=False):
        out.append(Residual(p, full.predict(p) / p.value - 1, None))
    return out
