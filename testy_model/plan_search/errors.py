"""Error of a candidate (the search's step 2), dimensionless, 0 = lossless.

On a layer's real tensors: the relative Frobenius error ``||R||_F / ||A||_F`` of the greedy
decomposition (measured). Otherwise the closed form: the expected fraction of the operand's
non-zeros dropped (:func:`closed_form_error`). Weight and activation errors combine as
``e = 1 − (1 − e_w)(1 − e_a)`` (:func:`combine_errors`).

The terms each operand becomes (kept density, stored slots, metadata, work) come from the model's
own rule (``model.terms.kept_densities`` and ``term_formats``), so the search prices exactly what
``evaluate`` prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from testy_model.model.cost import OperandTerm
from testy_model.model.terms import kept_densities, reduction_axis, term_formats
from testy_model.plan_search.candidates import native_series, roles, runtime_a
from testy_model.spec.arch import Architecture, OperandSparsity
from testy_model.spec.workload import Density, Layer
from testy_model.tasd.pattern import TasdSeries

ErrorMetric = Literal["count", "l2"]
ERROR_METRICS: tuple[str, ...] = ("count", "l2")
#: grid of the half-normal order-statistic integrals (:func:`half_normal_order_moments`)
_GRID = np.linspace(0.0, 12.0, 24001)


@lru_cache(maxsize=64)
def half_normal_order_moments(n: int) -> tuple[float, ...]:
    """``E[Y²_(j:n)]`` for j = 1..n: the mean square of the j-th smallest of ``n`` iid
    half-normal magnitudes ``Y = |Z|``, ``Z ~ N(0, 1)`` (dimensionless).

    Equation: ``E[Y²_(j:n)] = ∫ y² · n!/((j−1)!(n−j)!) · F(y)^{j−1} (1 − F(y))^{n−j} f(y) dy``
    with ``F(y) = erf(y/√2)``, ``f(y) = √(2/π)·e^{−y²/2}``, by the trapezoid rule on [0, 12]
    (24,001 points). They sum to ``n`` (``E[Y²] = 1``). Hand check: ``n = 2, j = 1``:
    ``E[min(|Z1|, |Z2|)²] = 1 − 2/π = 0.36338``.
    """
    from math import comb, erf

    y = _GRID
    cdf = np.array([erf(v) for v in y / np.sqrt(2.0)])
    pdf = np.sqrt(2.0 / np.pi) * np.exp(-0.5 * y * y)
    out = []
    for j in range(1, n + 1):
        w = j * comb(n, j) * cdf ** (j - 1) * (1.0 - cdf) ** (n - j) * pdf
        out.append(float(np.trapezoid(y * y * w, y)))
    return tuple(out)


def l2_closed_form_error(series: TasdSeries, density: Density) -> float | None:
    """Expected relative Frobenius error ``sqrt(E‖R‖² / E‖A‖²)`` of ``series`` on an operand
    whose non-zeros have iid half-normal magnitudes (a Gaussian tensor's), the units of the
    measured ``‖R‖/‖A‖`` (dimensionless); None for a series mixing block sizes.

    With ``K = Σ N_i`` (the greedy terms keep the K largest magnitudes of each M-block) and
    ``X`` the non-zeros of a block (``Binomial(M, d)``; exactly ``n·M/m`` for an ``nm``
    operand): ``E‖R‖² = Σ_x P(X = x) Σ_{j ≤ x−K} E[Y²_(j:x)]`` per block
    (:func:`half_normal_order_moments`) and ``E‖A‖² = M·d``. Hand check: ``1:2`` on a dense
    operand: ``sqrt((1 − 2/π)/2) = 0.42626``.
    """
    ms = {t.m for t in series.terms}
    if len(ms) != 1:
        return None
    m = ms.pop()
    k = sum(t.n for t in series.terms)
    d = float(density.value)
    pat = density.nm_pattern
    if pat is not None and m % pat.m == 0:
        probs = {pat.n * m // pat.m: 1.0}
    else:
        from math import comb

        probs = {x: comb(m, x) * d**x * (1 - d) ** (m - x) for x in range(m + 1)}
    dropped = sum(p * sum(half_normal_order_moments(x)[: x - k]) for x, p in probs.items() if x > k)
    return float(np.sqrt(dropped / (m * d)))


def closed_form_error(
    series: TasdSeries,
    density: Density,
    tensor_size: int | None = None,
    metric: ErrorMetric = "count",
) -> float:
    """Expected fraction of the operand's non-zeros that ``series`` drops (dimensionless), or
    with ``metric="l2"`` its expected relative Frobenius error (:func:`l2_closed_form_error`;
    the count for a series mixing block sizes).

    Equation: ``e = 1 − Σ_i kept_i / d`` with ``kept_i`` the kept density of term i from
    :func:`testy_model.model.terms.kept_densities`, the rule the model prices (Bernoulli
    non-zeros of density ``d``, hypergeometric over ``tensor_size`` values for a
    ``hypergeometric`` density, exact for an ``nm`` operand). ``dense`` and a zero density
    give 0; an ``nm`` operand that fits the first term loses nothing.

    Hand check: ``2:4`` at ``d = 0.5``: ``E[min(X, 2)]`` for ``X ~ Binomial(4, 1/2)`` is
    ``(0·1 + 1·4 + 2·11)/16 = 26/16`` per 4-block, i.e. ``26/64`` of the values; kept fraction
    ``(26/64)/0.5 = 0.8125``; ``e = 0.1875``. A ``2:4`` operand under ``1:4``: kept 1/4 of
    the values of its 1/2, ``e = 0.5`` exactly.
    """
    if series.is_dense or density.value <= 0.0:
        return 0.0
    if metric == "l2":
        e = l2_closed_form_error(series, density)
        if e is not None:
            return e
    kept = kept_densities(series, density, tensor_size=tensor_size).kept
    return float(max(0.0, 1.0 - sum(kept) / density.value))


def combine_errors(e_w: np.ndarray | float, e_a: np.ndarray | float) -> np.ndarray:
    """Error of a layer whose weight and activation are approximated: ``1 − (1 − e_w)(1 − e_a)``
    (dimensionless; both errors are fractions in [0, 1]; the kept share of the product
    ``W·X`` when each operand keeps ``1 − e`` of itself, independently). ``e_w = 0`` gives
    ``e_a``; 0.1 and 0.2 give 0.28."""
    return 1.0 - (1.0 - np.asarray(e_w, dtype=np.float64)) * (
        1.0 - np.asarray(e_a, dtype=np.float64)
    )


@dataclass(frozen=True)
class Operand:
    """What the search knows of one input operand of a layer: tensor name, density, size
    (values), and its real array (decomposed along ``axis``) when the layer names one."""

    tensor: str
    density: Density
    size: int
    array: np.ndarray | None = None
    axis: int = -1


def operand(layer: Layer, tensor: str, ref: str | None) -> Operand:
    """The operand ``tensor`` of ``layer``; its array from ``ref`` (a tensor reference), else
    from a ``tensor`` density's file; decomposed along ``model.terms.reduction_axis``."""
    prob = layer.problem
    arr = None
    axis = -1
    dens = prob.density(tensor)
    if ref is None and dens.kind == "tensor" and dens.path:
        ref = dens.path + (f":{dens.key}" if dens.key else "")
    if ref is not None:
        from testy_model.spec.tensors import load_tensor_ref

        arr = np.asarray(load_tensor_ref(ref, layer=layer.name))
        axis = reduction_axis(arr.ndim)
    return Operand(tensor, prob.density(tensor), prob.full_size(tensor), arr, axis)


def layer_operands(layer: Layer) -> dict[str, Operand]:
    """Activation (and weight, when the layer has one; else the run-time A operand,
    :func:`~testy_model.plan_search.candidates.runtime_a`) operands of ``layer``."""
    weight, act = roles(layer.problem)
    out = {act: operand(layer, act, layer.activation_tensor)}
    if weight is not None:
        out[weight] = operand(layer, weight, layer.weight_tensor)
    run_a = runtime_a(layer.problem)
    if run_a is not None:
        out[run_a] = operand(layer, run_a, None)
    return out


def slot_errors(
    layer: Layer,
    ops: dict[str, Operand],
    weights: TasdSeries,
    activations: TasdSeries,
    supports: tuple[OperandSparsity, OperandSparsity],
    metric: ErrorMetric = "count",
) -> tuple[tuple[str | None, list[OperandTerm], float], tuple[list[OperandTerm], float]]:
    """((A-slot-series tensor, its terms, weight error), (activation terms, activation error))
    of one candidate. The A-slot series of a layer without a weight decomposes a run-time
    operand (:func:`~testy_model.plan_search.candidates.runtime_a`), so its error joins the
    activation's (:func:`combine_errors`) and the weight error is 0."""
    weight, act = roles(layer.problem)
    tensor = weight if weight is not None else runtime_a(layer.problem)
    ta, e_a = terms_and_error(ops[act], activations, supports[1], metric)
    if tensor is None:
        return (None, [], 0.0), (ta, e_a)
    tw, e_x = terms_and_error(ops[tensor], weights, supports[0], metric)
    if weight is None:
        return (tensor, tw, 0.0), (ta, float(combine_errors(e_x, e_a)))
    return (tensor, tw, e_x), (ta, e_a)


def terms_and_error(
    op: Operand, series: TasdSeries, support: OperandSparsity, metric: ErrorMetric = "count"
) -> tuple[list[OperandTerm], float]:
    """Terms of ``op`` under ``series`` on the slot ``support``, and its error (closed-form
    results cached across layers: a function of (series, density, support, size, metric))."""
    if op.array is None:
        size = op.size if op.density.kind == "hypergeometric" else 1
        return _closed_terms(series, op.density, support, size, metric)
    return _terms_and_error_uncached(op, series, support, metric)


@lru_cache(maxsize=65536)
def _closed_terms(
    series: TasdSeries,
    density: Density,
    support: OperandSparsity,
    size: int,
    metric: ErrorMetric,
) -> tuple[list[OperandTerm], float]:
    return _terms_and_error_uncached(Operand("x", density, size), series, support, metric)


def _terms_and_error_uncached(
    op: Operand, series: TasdSeries, support: OperandSparsity, metric: ErrorMetric = "count"
) -> tuple[list[OperandTerm], float]:
    """Terms (``model.terms.term_formats``) and error: on an array, the decomposition's
    ``||R||_F / ||A||_F``; else :func:`closed_form_error` under ``metric``."""
    kd = kept_densities(series, op.density, tensor_size=op.size, array=op.array, axis=op.axis)
    if series.is_dense:
        err = 0.0
    elif kd.rel_error is not None:
        err = kd.rel_error
    else:
        err = closed_form_error(series, op.density, op.size, metric)
    return [f.operand_term() for f in term_formats(series, kd.kept, support)], err


def native(op: Operand, support: OperandSparsity) -> TasdSeries:
    """The series ``op`` runs on ``support`` without TASD (:func:`native_series`)."""
    return native_series(op.density, support, op.array, op.axis)


def candidate_error(
    layer: Layer,
    arch: Architecture,
    weights: str,
    activations: str,
    orientation: str = "weight",
    metric: ErrorMetric = "count",
) -> float:
    """Error of one candidate of ``layer`` on ``arch`` (closed form or measured, combined)."""
    from testy_model.model.terms import operand_supports

    ops = layer_operands(layer)
    w, a = TasdSeries.parse(weights), TasdSeries.parse(activations)
    sups = operand_supports(arch, orientation == "activation")
    (_, _, e_w), (_, e_a) = slot_errors(layer, ops, w, a, sups, metric)
    return float(combine_errors(e_w, e_a))
