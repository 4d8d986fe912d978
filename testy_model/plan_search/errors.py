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

import numpy as np

from testy_model.model.cost import OperandTerm
from testy_model.model.terms import kept_densities, reduction_axis, term_formats
from testy_model.plan_search.candidates import native_series, roles
from testy_model.spec.arch import OperandSparsity
from testy_model.spec.workload import Density, Layer
from testy_model.tasd.pattern import TasdSeries


def closed_form_error(
    series: TasdSeries, density: Density, tensor_size: int | None = None
) -> float:
    """Expected fraction of the operand's non-zeros that ``series`` drops (dimensionless).

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

        arr = np.asarray(load_tensor_ref(ref))
        axis = reduction_axis(arr.ndim)
    return Operand(tensor, prob.density(tensor), prob.full_size(tensor), arr, axis)


def layer_operands(layer: Layer) -> dict[str, Operand]:
    """Activation (and weight, when the layer has one) operands of ``layer``."""
    weight, act = roles(layer.problem)
    out = {act: operand(layer, act, layer.activation_tensor)}
    if weight is not None:
        out[weight] = operand(layer, weight, layer.weight_tensor)
    return out


def terms_and_error(
    op: Operand, series: TasdSeries, support: OperandSparsity
) -> tuple[list[OperandTerm], float]:
    """Terms of ``op`` under ``series`` on the slot ``support``, and its error (closed-form
    results cached across layers: a function of (series, density, support, size))."""
    if op.array is None:
        size = op.size if op.density.kind == "hypergeometric" else 1
        return _closed_terms(series, op.density, support, size)
    return _terms_and_error_uncached(op, series, support)


@lru_cache(maxsize=65536)
def _closed_terms(
    series: TasdSeries, density: Density, support: OperandSparsity, size: int
) -> tuple[list[OperandTerm], float]:
    return _terms_and_error_uncached(Operand("x", density, size), series, support)


def _terms_and_error_uncached(
    op: Operand, series: TasdSeries, support: OperandSparsity
) -> tuple[list[OperandTerm], float]:
    """Terms (``model.terms.term_formats``) and error: on an array, the decomposition's
    ``||R||_F / ||A||_F``; else :func:`closed_form_error`."""
    kd = kept_densities(series, op.density, tensor_size=op.size, array=op.array, axis=op.axis)
    if series.is_dense:
        err = 0.0
    elif kd.rel_error is not None:
        err = kd.rel_error
    else:
        err = closed_form_error(series, op.density, op.size)
    return [f.operand_term() for f in term_formats(series, kd.kept, support)], err


def native(op: Operand, support: OperandSparsity) -> TasdSeries:
    """The series ``op`` runs on ``support`` without TASD (:func:`native_series`)."""
    return native_series(op.density, support, op.array, op.axis)


def candidate_error(
    layer: Layer,
    arch: object,
    weights: str,
    activations: str,
    orientation: str = "weight",
) -> float:
    """Error of one candidate of ``layer`` on ``arch`` (closed form or measured, combined)."""
    from testy_model.model.terms import operand_supports

    ops = layer_operands(layer)
    w, a = TasdSeries.parse(weights), TasdSeries.parse(activations)
    weight, act = roles(layer.problem)
    w_sup, a_sup = operand_supports(arch, orientation == "activation")  # type: ignore[arg-type]
    e_w = terms_and_error(ops[weight], w, w_sup)[1] if weight is not None else 0.0
    e_a = terms_and_error(ops[act], a, a_sup)[1]
    return float(combine_errors(e_w, e_a))
