"""Rotation moves of the mapper's beam search (:mod:`testy_model.mapper.search`): one prime
factor of one dimension enters a full spatial array while the same factor of another dimension
leaves it, so the array stays as fully used while which dimensions it spreads changes."""

from __future__ import annotations

import numpy as np

from testy_model.mapper.candidates import Candidates
from testy_model.mapper.context import _Ctx
from testy_model.mapper.space import factors_from_exps, slot_mask


def _rotations(ctx: _Ctx) -> tuple[np.ndarray, ...]:
    """The rotation moves through a spatial slot, as six (R,) arrays ``(s, a, d_in, b, d_out,
    p)``: one factor ``p`` of ``d_in`` enters spatial slot ``s`` from slot ``a`` while one factor
    ``p`` of another dimension ``d_out`` leaves ``s`` for slot ``b`` (``a == b``: a swap).

    Why: a spatial slot's product is capped by its fan-out, and the best mappings use it fully;
    from a full array, a single move either overflows the fan-out (invalid) or idles a share of
    it (cycles × p), so mappings that use the array as fully with other dimensions are two moves
    away across a valley the beam prunes. A rotation keeps the slot's product (the utilisation)
    while changing which dimensions are spread over the array and where the displaced factor
    is reused (e.g. a batched GEMM trading a spatial output dimension for another one).
    """
    return _rotation_moves(slot_mask(ctx.ai), ctx.pi.exps > 0, ctx.ai.fanout > 1)


def _rotation_moves(
    open_: np.ndarray, has: np.ndarray, spatial: np.ndarray
) -> tuple[np.ndarray, ...]:
    """:func:`_rotations` of the (S, D) open slots (:func:`slot_mask`), the (D, P) primes each
    bound has and the (L,) levels with a fan-out above 1."""
    S, D = open_.shape
    L = S // 2
    P = has.shape[1]
    sp = np.arange(L, S)[spatial]
    s, a, di, b, do, p = np.meshgrid(
        sp, np.arange(S), np.arange(D), np.arange(S), np.arange(D), np.arange(P), indexing="ij"
    )
    s, a, di, b, do, p = (x.ravel() for x in (s, a, di, b, do, p))
    keep = (a != s) & (b != s) & (di != do) & has[di, p] & has[do, p]
    keep &= open_[s, di] & open_[a, di] & open_[s, do] & open_[b, do]
    return s[keep], a[keep], di[keep], b[keep], do[keep], p[keep]


def _rotated(ctx: _Ctx, beam: Candidates, rot: tuple[np.ndarray, ...]) -> Candidates:
    """Every beam member under every rotation of :func:`_rotations` it has the factors for, where
    the slot is full (one more factor ``p`` would exceed its fan-out; below that, the single
    move into the slot is a neighbour already)."""
    s, a, di, b, do, p = rot
    K, R = len(beam), s.size
    k = np.repeat(np.arange(K), R)
    m = np.tile(np.arange(R), K)
    ok = (beam.exps[k, a[m], di[m], p[m]] > 0) & (beam.exps[k, s[m], do[m], p[m]] > 0)
    # only through a full array (one more factor p would overflow its fan-out): elsewhere the
    # single move into the slot is a neighbour already
    F = factors_from_exps(ctx.pi, beam.exps)  # (K, S, D)
    L = len(ctx.ai.names)
    used = np.prod(F[:, L:], axis=-1)  # (K, L)
    ok &= used[k, s[m] - L] * ctx.pi.primes[p[m]] > ctx.ai.fanout[s[m] - L]
    k, m = k[ok], m[ok]
    exps = beam.exps[k].copy()
    r = np.arange(k.size)
    exps[r, a[m], di[m], p[m]] -= 1
    exps[r, s[m], di[m], p[m]] += 1
    exps[r, s[m], do[m], p[m]] -= 1
    exps[r, b[m], do[m], p[m]] += 1
    return Candidates(exps, beam.order_idx[k], beam.keep[k], ctx.orders)
