"""The beam search's neighbourhood (:mod:`testy_model.mapper.search`, step 3): the single
moves of every beam member, the rotations of the leader, which neighbours a leader may repair,
and the keep/bypass repair of a move that overflows a buffer."""

from __future__ import annotations

import functools
import itertools

import numpy as np

from testy_model.mapper.candidates import (
    Candidates,
    _hash,
    _hash_parts,
    _hash_weights,
    _hash_weights_of,
)
from testy_model.mapper.context import (
    _Ctx,
)
from testy_model.mapper.fit import capacity_fits, structure_mask
from testy_model.mapper.rotations import _rotation_moves
from testy_model.mapper.space import (
    slot_mask,
    tile_extents,
    tile_words,
)


def _moves(ctx: _Ctx) -> tuple[np.ndarray, ...]:
    """All single-prime moves (from slot a, to slot b, dim d, prime p), each as an (M,) array,
    then the distinct (a, b, d) of the whole-factor jumps, as three (J,) arrays, then the six
    (R,) arrays of the rotations through a spatial slot (:func:`_rotations`); read-only,
    shared by the problems with the same open slots, prime pattern and spatial levels."""
    open_, has = slot_mask(ctx.ai), ctx.pi.exps > 0
    spatial = ctx.ai.fanout > 1
    return _moves_of(open_.tobytes(), open_.shape, has.tobytes(), has.shape, spatial.tobytes())


@functools.lru_cache(maxsize=64)
def _moves_of(
    open_b: bytes,
    open_shape: tuple[int, ...],
    has_b: bytes,
    has_shape: tuple[int, ...],
    sp_b: bytes,
) -> tuple[np.ndarray, ...]:
    """:func:`_moves` of the (S, D) open slots, the (D, P) primes each bound has and the (L,)
    levels with a fan-out, as bytes."""
    open_ = np.frombuffer(open_b, dtype=bool).reshape(open_shape)
    has = np.frombuffer(has_b, dtype=bool).reshape(has_shape)
    S, D = open_.shape
    P = has.shape[1]
    a, b, d, p = np.meshgrid(np.arange(S), np.arange(S), np.arange(D), np.arange(P), indexing="ij")
    a, b, d, p = a.ravel(), b.ravel(), d.ravel(), p.ravel()
    keep = (a != b) & open_[a, d] & open_[b, d] & has[d, p]
    a, b, d, p = a[keep], b[keep], d[keep], p[keep]
    # the distinct (a, b, d) triples (in hash order): the jump moves
    first = np.unique(_hash(np.stack([a, b, d], axis=1)), return_index=True)[1]
    rot = _rotation_moves(open_, has, np.frombuffer(sp_b, dtype=bool))
    out = (a, b, d, p, a[first], b[first], d[first], *rot)
    for x in out:
        x.setflags(write=False)
    return out


def _neighbours(
    ctx: _Ctx, beam: Candidates, moves: tuple[np.ndarray, ...]
) -> tuple[Candidates, np.ndarray]:
    """Every candidate one move away from a beam member: one prime factor (or its square) of one
    dimension moved between slots; the whole factor of one dimension at one slot moved to
    another (a jump over plateaus); one level's loop order changed; one tensor's keep/bypass
    toggled at one level. With their :func:`_hash_parts`, each its member's plus the move's
    change (the same wrapping sums)."""
    a, b, d, p, ja, jb, jd = moves[:7]
    K = len(beam)
    w_e, _, w_k = _hash_weights_of(beam)
    hb = _hash_parts(beam)  # (K,)
    ne, (S, D, P) = w_e.size, w_e.shape  # exponents per candidate; flat offsets of the moves:
    off_a, off_b = (a * D + d) * P + p, (b * D + d) * P + p
    fa, fb = ja * D + jd, jb * D + jd  # the jumps' flat (slot, dim) offsets
    # which member takes which move, member-major, per kind
    k1, m1 = np.nonzero(beam.exps.reshape(K, ne).take(off_a, axis=1) > 0)  # one p from a to b
    two = beam.exps.reshape(K * ne).take(k1 * ne + off_a[m1]) > 1  # its square, where two are
    moved = beam.exps.reshape(K, S * D, P).take(fa, axis=1)  # (K, J, P) jumps: all of d's
    # factor at slot a to slot b
    total = np.zeros(moved.shape[:2], dtype=np.int64)  # Σ_p moved_p (short axis: unrolled)
    for i in range(P):
        total += moved[..., i]
    k3, m3 = np.nonzero((total > 1) & (ctx.ai.t_fix.shape[0] > 0))
    moved = moved.reshape(K * fa.size, P).take(k3 * fa.size + m3, axis=0)  # (n3, P)
    lv_o, o = np.nonzero(ctx.allowed)  # one level's loop order changed
    k4 = np.repeat(np.arange(K), lv_o.size)
    j4 = np.arange(k4.size) % max(lv_o.size, 1)
    lv_t, t = np.nonzero(ctx.ai.keep_may & ~ctx.ai.keep_must)  # one keep/bypass toggled
    k5 = np.repeat(np.arange(K), lv_t.size)
    j5 = np.arange(k5.size) % max(lv_t.size, 1)
    k = np.concatenate([k1, k1[two], k3, k4, k5])
    ends = list(
        itertools.accumulate([k1.size, int(np.count_nonzero(two)), k3.size, k4.size, k5.size])
    )
    nbr = beam.take(k)  # one gather each
    exps, oi, keep = nbr.exps, nbr.order_idx, nbr.keep
    flat = exps.reshape(-1)
    r1 = np.arange(ends[0]) * ne
    flat[r1 + off_a[m1]] -= 1
    flat[r1 + off_b[m1]] += 1
    m2 = m1[two]
    r2 = np.arange(ends[0], ends[1]) * ne
    flat[r2 + off_a[m2]] -= 2
    flat[r2 + off_b[m2]] += 2
    r3 = np.arange(ends[1], ends[2]) * (S * D)  # (row, slot, dim) flat, one row each
    rows_p = exps.reshape(k.size * S * D, P)
    rows_p[r3 + fa[m3]] -= moved
    rows_p[r3 + fb[m3]] += moved
    oi[np.arange(ends[2], ends[3]), lv_o[j4]] = o[j4]
    r5 = np.arange(ends[3], ends[4])
    was = keep[r5, lv_t[j5], t[j5]]
    keep[r5, lv_t[j5], t[j5]] = ~was
    # hashes: the member's plus each move's change (wrapping sums)
    step = (w_e.reshape(-1)[off_b] - w_e.reshape(-1)[off_a])[m1]
    h1 = hb[k1] + step
    w_sd = w_e.reshape(S * D, P)
    jump = (w_sd.take(fb, axis=0) - w_sd.take(fa, axis=0))[m3]  # (n3, P)
    h3 = hb[k3]
    for i in range(P):  # Σ_p moved_p · change_p (a short axis: unrolled)
        h3 += moved[:, i] * jump[:, i]
    flip = w_k[lv_t, t][j5]
    h5 = hb[k5] + np.where(was, -flip, flip)
    h = np.concatenate([h1, h1[two] + step[two], h3, hb[k4], h5])
    return Candidates(exps, oi, keep, ctx.orders), h


def _lead(
    nb: Candidates, cur: Candidates, compound: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """(len(rows),) bool: neighbour ``rows`` (default: all) descends from one of the
    ``compound`` best beam members (identified by its keep choice and order, which a factor
    move leaves unchanged)."""
    rows = np.arange(len(nb)) if rows is None else rows
    hit = np.zeros(len(rows), dtype=bool)
    if compound <= 0 or len(cur) == 0:
        return hit
    keys = _lead_key(nb, rows)
    for v in _lead_key(cur, np.arange(min(compound, len(cur)))).tolist():  # a few members
        hit |= keys == v
    return hit


def _lead_key(c: Candidates, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) ``_hash`` of each row's (order indices, keep bits) row, as wrapping
    matmuls of its two parts."""
    oi, keep = c.order_idx.take(rows, axis=0), c.keep.take(rows, axis=0)
    no, nk = oi.shape[1], int(np.prod(keep.shape[1:]))
    w = _hash_weights(no + nk)
    return oi @ w[:no] + keep.reshape(len(rows), nk) @ w[no:]


def _repair_keep(
    ctx: _Ctx,
    bad: Candidates,
    F: np.ndarray,
    structure: np.ndarray | None = None,
    words: np.ndarray | None = None,
) -> tuple[Candidates, np.ndarray]:
    """Compound moves: each over-capacity neighbour (fan-out, mesh and constraints fine) with one
    tensor's keep/bypass toggled at one level (a bigger tile fits once some tensor is bypassed,
    or kept elsewhere); the ones that then fit, and their factors (``F``: those of ``bad``;
    ``structure``: their :meth:`_Ctx.valid_parts` structure test when already known;
    ``words``: their (B, L, T) :func:`tile_words` when known where the structure holds)."""
    lv, t = np.nonzero(ctx.ai.keep_may & ~ctx.ai.keep_must)
    empty = bad.take(np.zeros(0, dtype=np.int64))
    if lv.size == 0 or len(bad) == 0:
        return empty, F[:0]
    L = len(ctx.ai.names)
    if structure is None:
        ok = structure_mask(ctx.pi, ctx.ai, F[:, :L], F[:, L:])
        ok &= ctx.orders_allowed(bad.order_idx)
    else:
        ok = structure
    bad, F = bad.take(np.nonzero(ok)[0]), F[ok]
    words = None if words is None else words[ok]
    if len(bad) == 0:
        return empty, F[:0]
    k = np.repeat(np.arange(len(bad)), lv.size)  # (row, toggle), row-major
    j = np.arange(k.size) % lv.size
    keep = bad.keep.take(k, axis=0)
    r = np.arange(k.size)
    keep[r, lv[j], t[j]] = ~keep[r, lv[j], t[j]]
    # a toggle changes what a level keeps, not its tiles: their words once per row
    if words is None:
        words = tile_words(ctx.pi, tile_extents(F[:, :L], F[:, L:]))
    fits = np.nonzero(capacity_fits(ctx.pi, ctx.ai, words.take(k, axis=0), keep))[0]
    k = k[fits]
    exps, oi = bad.exps.take(k, axis=0), bad.order_idx.take(k, axis=0)
    return Candidates(exps, oi, keep.take(fits, axis=0), ctx.orders), F.take(k, axis=0)
