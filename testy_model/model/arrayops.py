"""Small array helpers of the cost core's hot paths (numpy's per-call overhead dominates the
short axes the model reduces over: a nest's D dimensions, a tensor's R ranks)."""

from __future__ import annotations

import numpy as np


def prod_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """``x.prod(axis=axis)`` as a chain of multiplies along the axis, in index order, the
    order ``np.multiply.reduce`` multiplies in (the same result, bit for bit), without a
    reduction's per-row inner loop (several times faster on short axes of many rows)."""
    n = x.shape[axis]
    if n == 0:
        return np.ones(np.delete(x.shape, axis), dtype=x.dtype)
    xs = np.moveaxis(x, axis, 0)
    if n == 1:
        return xs[0].copy()
    out = xs[0] * xs[1]
    for i in range(2, n):
        out *= xs[i]
    return out


def rep(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` repeated n times along its first axis (a copy; ``np.tile`` without its
    overhead)."""
    return np.concatenate([a] * n)
