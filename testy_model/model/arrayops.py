"""Small array helpers of the cost core's hot paths (numpy's per-call overhead dominates the
short axes the model reduces over: a nest's D dimensions, a tensor's R ranks)."""

from __future__ import annotations

from typing import Any

import numpy as np


def prod_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """``x.prod(axis=axis)`` as a chain of multiplies along the axis, in index order, the
    order ``np.multiply.reduce`` multiplies in (the same result, bit for bit), without a
    reduction's per-row inner loop (several times faster on short axes of many rows)."""
    axis = axis % x.ndim
    n = x.shape[axis]
    if n < 2 or x.size < 4096:  # small arrays: the reduction's overhead is the lesser
        return x.prod(axis=axis)
    pre: tuple[Any, ...] = (slice(None),) * axis

    def at(i: int) -> np.ndarray:
        return np.asarray(x[(*pre, i)])

    out = at(0) * at(1)
    for i in range(2, n):
        out *= at(i)
    return out


def rep(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` repeated n times along its first axis (a copy; ``np.tile`` without its
    overhead)."""
    return np.concatenate([a] * n)
