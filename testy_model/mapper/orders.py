"""Candidate temporal loop orders of the mapping search (see :mod:`testy_model.mapper.space`):
the canonical, reuse-distinct permutations, which of them each level's constraints allow, and
their equivalence classes under unit loops. Orders are (O, D) arrays of positions
(0 = innermost)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from testy_model.mapper.space import ArchIndex, ProblemIndex


def canonical_orders(pi: ProblemIndex, fixed: tuple[tuple[str, ...], ...] = ()) -> np.ndarray:
    """Candidate temporal loop orders as an (O, D) array of positions (0 = innermost).

    Reuse at a level depends only on which dimensions sit inside the first loop relevant to each
    tensor, so the orders kept are: for each tensor t, "the dimensions irrelevant to t innermost"
    (t stationary), and for each dimension d, "d innermost" (declaration order otherwise).
    For a GEMM, where each tensor is irrelevant to exactly one dimension, these three orders are
    every reuse-distinct permutation (the other three only swap two loops that are both relevant
    to the tensor reused by the innermost one). ``fixed`` permutations (inner to outer, from
    constraints) are appended, with unlisted dimensions outside them in declaration order.
    """
    D = len(pi.dims)
    seqs: list[tuple[int, ...]] = []
    for t in range(len(pi.tensors)):
        irr = [d for d in range(D) if not pi.relevant[t, d]]
        seqs.append(tuple(irr + [d for d in range(D) if pi.relevant[t, d]]))
    for d in range(D):
        seqs.append((d, *[e for e in range(D) if e != d]))
    for perm in fixed:
        if perm:
            head = [pi.dims.index(x) for x in perm]
            seqs.append(tuple(head + [d for d in range(D) if d not in head]))
    seen: dict[tuple[int, ...], None] = {}
    for s in seqs:
        seen.setdefault(s, None)
    out = np.zeros((len(seen), D), dtype=np.int64)
    for i, s in enumerate(seen):
        out[i, list(s)] = np.arange(D)
    return out


def allowed_orders(pi: ProblemIndex, ai: ArchIndex, orders: np.ndarray) -> np.ndarray:
    """(L, O) bool: order o may be used at level l (only the fixed one where a level fixes it)."""
    allowed = np.ones((len(ai.names), len(orders)), dtype=bool)
    for lvl, perm in enumerate(ai.perm):
        if perm:
            head = [pi.dims.index(x) for x in perm]
            pos = np.argsort(orders, axis=1)  # (O, D): dims inner to outer
            allowed[lvl] = np.all(pos[:, : len(head)] == np.array(head), axis=1)
    return allowed


def order_classes(orders: np.ndarray, allowed: np.ndarray, max_dims: int = 10) -> np.ndarray | None:
    """Canonical loop orders: (L, 2^D, O) int64 ``canon[l, m, o]``, the first order allowed at
    level l that puts the dimensions of bit mask ``m`` (bit d = dimension d) in the same
    relative order as order ``o`` does (``o`` itself when none is allowed). None when
    D > ``max_dims`` (the table would be too large; candidates then stay as they are).

    Why: reuse at a level depends only on the relative order of its loops with a factor above 1
    (a unit loop neither reuses nor refetches anything), so two orders that agree on the
    non-unit dims give the same costs, and the search keeps one of them (see
    :func:`canonical_order_idx`). Two orders agree on mask m when, for every pair (i, j) of
    dims in m, ``pos[i] < pos[j]`` holds in both or in neither.
    """
    n_o, n_d = orders.shape
    if n_d > max_dims:
        return None
    before = orders[:, :, None] < orders[:, None, :]  # (O, D, D): i inside j
    masks = ((np.arange(2**n_d)[:, None] >> np.arange(n_d)) & 1).astype(bool)  # (M, D)
    pair = masks[:, :, None] & masks[:, None, :]  # (M, D, D)
    differ = before[:, None] != before[None, :]  # (O, O, D, D)
    same = ~np.any(differ[None] & pair[:, None, None], axis=(-2, -1))  # (M, O, O)
    L = allowed.shape[0]
    out = np.empty((L, masks.shape[0], n_o), dtype=np.int64)
    own = np.broadcast_to(np.arange(n_o), (masks.shape[0], n_o))
    for lv in range(L):
        ok = same & allowed[lv][None, None, :]
        out[lv] = np.where(ok.any(axis=-1), np.argmax(ok, axis=-1), own)
    return out


def canonical_order_idx(
    canon: np.ndarray | None, nonunit: np.ndarray, order_idx: np.ndarray
) -> np.ndarray:
    """(B, L) order indices mapped to their canonical class member (:func:`order_classes`),
    given which temporal loops have a factor above 1, (B, L, D) bool (in exponent form: any
    prime exponent above 0); unchanged when ``canon`` is None."""
    if canon is None:
        return order_idx
    D = nonunit.shape[-1]
    # Σ_d nonunit_d · 2^d by a float matmul (exact: integers far below 2^53; much faster
    # than an integer one)
    bits = nonunit.reshape(-1, D).astype(np.float64)  # 2-D: one BLAS call, not one per row
    key = (bits @ 2.0 ** np.arange(D)).astype(np.int64).reshape(nonunit.shape[:-1])
    # canon[l, key, order] as one flat index: (l · 2^D + key) · n_o + order
    n_l, n_m, n_o = canon.shape
    flat = key * n_o + order_idx
    flat += np.arange(n_l, dtype=np.int64) * (n_m * n_o)
    return canon.reshape(-1).take(flat)
