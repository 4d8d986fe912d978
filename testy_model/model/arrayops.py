"""Small array helpers of the cost core's hot paths (numpy's per-call overhead dominates the
short axes the model reduces over: a nest's D dimensions, a tensor's R ranks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: dtypes whose product keeps the dtype (numpy's prod widens smaller integers and bools)
_CHAINED = (np.dtype(np.float64), np.dtype(np.int64))


def prod_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """``x.prod(axis=axis)`` as a chain of multiplies along the axis, in index order, the
    order ``np.multiply.reduce`` multiplies in (the same result, bit for bit), without a
    reduction's per-row inner loop (several times faster on short axes of many rows)."""
    axis = axis % x.ndim
    n = x.shape[axis]
    # the reduction costs ~15 ns per product formed, the chain ~0.5 µs per multiply call:
    # few products (or a long axis) reduce, many products of a short axis chain
    if n < 2 or x.ndim < 2 or x.size < 50 * n * (n - 1) or x.dtype not in _CHAINED:
        return x.prod(axis=axis)
    pre: tuple[Any, ...] = (slice(None),) * axis
    out = x[(*pre, 0)] * x[(*pre, 1)]  # (x has 2+ axes: every slice is an array)
    for i in range(2, n):
        out *= x[(*pre, i)]
    return out


def all_last(x: np.ndarray) -> np.ndarray:
    """``x.all(axis=-1)`` of a bool array as a chain of ``&`` along its (short) last axis,
    without a reduction's per-row inner loop."""
    n = x.shape[-1]
    if n < 2:
        return np.asarray(x.all(axis=-1))
    out = x[..., 0] & x[..., 1]
    for i in range(2, n):
        out &= x[..., i]
    return out


def stack_last(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays, axis=-1)`` of same-shape arrays: the one concatenate of trailing-axis
    views np.stack makes, without its Python-level checks."""
    return np.concatenate([a[..., None] for a in arrays], axis=-1)


def stack_first(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)`` (along a new first axis) of same-shape arrays, likewise."""
    return np.concatenate([a[None] for a in arrays])


def rep(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` repeated n times along its first axis (a copy; ``np.tile`` without its
    overhead)."""
    return np.concatenate([a] * n)
