"""Numerics of the MiniLM forward pass (erf, GELU, LayerNorm, softmax) and the weight
transforms it applies (TASD approximation, magnitude pruning, global thresholds).

Every function is elementwise or per row and states its units (activations are dimensionless,
float32 unless noted)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from testy_model.errors import TestyModelError
from testy_model.tasd.decompose import decompose
from testy_model.tasd.pattern import TasdSeries

SeriesLike = TasdSeries | str


# ----------------------------------------------------------------------------------------------
# numerics
# ----------------------------------------------------------------------------------------------

# Rational minimax approximation erf(x) ≈ x·P(x²)/Q(x²) on [-4, 4] (the float32 coefficients used
# by the Eigen library); |error| < 7e-8 against math.erf (tested), and |erf(±4) ∓ 1| < 1.6e-8.
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function ``erf(x) = 2/√π ∫₀ˣ e^(−t²) dt`` (dimensionless), elementwise.

    Computed as ``x·P(x²)/Q(x²)`` with x clipped to [-4, 4] (degree-6 and degree-4 polynomials in
    x², Horner's rule); absolute error < 1e-7 in float64. Returns the input's float dtype.
    """
    x = np.asarray(x)
    xc = np.clip(x, -4.0, 4.0)
    x2 = xc * xc
    p = np.full_like(xc, _ERF_P[0])
    for c in _ERF_P[1:]:
        p = p * x2 + c
    q = np.full_like(xc, _ERF_Q[0])
    for c in _ERF_Q[1:]:
        q = q * x2 + c
    return xc * p / q


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU ``x/2·(1 + erf(x/√2))`` (BERT's ``gelu``), elementwise, same dtype as ``x``."""
    return (0.5 * x * (1.0 + erf(x * np.float32(1.0 / math.sqrt(2.0))))).astype(x.dtype)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """``(x − mean)/sqrt(var + eps)·γ + β`` over the last axis (biased variance), float32."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return (xc / np.sqrt(var + np.float32(eps)) * gamma + beta).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------------------
# TASD approximation and pruning
# ----------------------------------------------------------------------------------------------


def tasd_approx(array: np.ndarray, series: SeriesLike) -> np.ndarray:
    """The TASD approximation (sum of the greedy terms) of ``array`` along its last axis.

    ``dense`` returns the array unchanged. Uses :func:`testy_model.tasd.decompose.decompose`.
    """
    s = TasdSeries.parse(series)
    if s.is_dense:
        return array
    return np.asarray(decompose(array, s, axis=-1).approximation(), dtype=array.dtype)


def magnitude_prune(weight: np.ndarray, sparsity: float) -> np.ndarray:
    """Zero the ``round(sparsity·size)`` smallest-magnitude entries of ``weight``.

    Ties are broken by flat index (lowest first, deterministic). ``sparsity`` in [0, 1).
    """
    if not 0.0 <= sparsity < 1.0:
        raise TestyModelError(f"weight sparsity {sparsity!r} is outside [0, 1)")
    n_zero = round(sparsity * weight.size)
    if n_zero == 0:
        return weight
    flat = np.abs(weight).ravel()
    drop = np.argsort(flat, kind="stable")[:n_zero]
    out = weight.copy().ravel()
    out[drop] = 0
    return out.reshape(weight.shape)


def global_thresholds(weights: Mapping[str, np.ndarray], sparsity: float) -> dict[str, float]:
    """Per-layer sparsities that realise one *global* magnitude threshold over all ``weights``.

    The threshold t is the ``round(sparsity·Σ size)``-th smallest magnitude over all layers
    pooled; layer ℓ's sparsity is then ``#{|w| < t in ℓ}/size_ℓ`` (ties at t stay, so the total
    pruned fraction is ≤ ``sparsity`` by the tie count). Returns layer -> sparsity in [0, 1).
    """
    if not 0.0 <= sparsity < 1.0:
        raise TestyModelError(f"weight sparsity {sparsity!r} is outside [0, 1)")
    pooled = np.concatenate([np.abs(w).ravel() for w in weights.values()])
    n_zero = round(sparsity * pooled.size)
    if n_zero == 0:
        return dict.fromkeys(weights, 0.0)
    t = np.partition(pooled, n_zero - 1)[n_zero - 1]
    return {k: float(np.count_nonzero(np.abs(w) <= t) / w.size) for k, w in weights.items()}
