"""The beam search's neighbourhood (:mod:`testy_model.mapper.search`, step 3): the single
moves of every beam member, the rotations of the leader, which neighbours a leader may repair,
and the keep/bypass repair of a move that overflows a buffer."""

from __future__ import annotations

import functools

import numpy as np

from testy_model.mapper.candidates import (
    Candidates,
    _concat,
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
    K, M = len(beam), a.size
    w_e, _, w_k = _hash_weights_of(beam)
    hb = _hash_parts(beam)  # (K,)
    parts, hashes = [], []
    if M:
        ne = w_e.size  # exponents per candidate; a move's flat offsets in one candidate's:
        off_a, off_b = (
            (a * w_e.shape[1] + d) * w_e.shape[2] + p,
            (b * w_e.shape[1] + d) * w_e.shape[2] + p,
        )
        k, m = np.nonzero(beam.exps.reshape(K, ne)[:, off_a] > 0)  # (member, move), member-major
        exps = beam.exps[k]
        flat = exps.reshape(-1)
        fa, fb = np.arange(k.size) * ne + off_a[m], np.arange(k.size) * ne + off_b[m]
        flat[fa] -= 1
        flat[fb] += 1
        parts.append(Candidates(exps, beam.order_idx[k], beam.keep[k], ctx.orders))
        step = (w_e.reshape(-1)[off_b] - w_e.reshape(-1)[off_a])[m]  # one factor p: a -> b
        hashes.append(hb[k] + step)
        # the same moves with the prime squared (where two of it are there to move)
        two = flat[fa] > 0
        exps2 = exps[two]
        flat2, m2 = exps2.reshape(-1), m[two]
        rows2 = np.arange(m2.size) * ne
        flat2[rows2 + off_a[m2]] -= 1
        flat2[rows2 + off_b[m2]] += 1
        parts.append(Candidates(exps2, beam.order_idx[k[two]], beam.keep[k[two]], ctx.orders))
        hashes.append(hashes[-1][two] + step[two])
        # jumps: all of dimension d's factor at slot a moves to slot b (one per (a, b, d))
        moved = beam.exps[:, ja, jd]  # (K, J, P)
        ok = (moved.sum(axis=2) > 1) & (ctx.ai.t_fix.shape[0] > 0)
        k, m = np.nonzero(ok)
        moved = moved[k, m]  # (n, P)
        exps = beam.exps[k]
        r = np.arange(k.size)
        exps[r, ja[m], jd[m]] -= moved
        exps[r, jb[m], jd[m]] += moved
        parts.append(Candidates(exps, beam.order_idx[k], beam.keep[k], ctx.orders))
        jump = (w_e[jb, jd] - w_e[ja, jd])[m]  # (n, P)
        hj = hb[k]
        for i in range(moved.shape[1]):  # Σ_p moved_p · change_p (a short axis: unrolled)
            hj += moved[:, i] * jump[:, i]
        hashes.append(hj)
    lv, o = np.nonzero(ctx.allowed)
    k = np.repeat(np.arange(K), lv.size)
    j = np.arange(k.size) % max(lv.size, 1)  # (member, order change), member-major
    oi = beam.order_idx[k]
    oi[np.arange(k.size), lv[j]] = o[j]
    parts.append(Candidates(beam.exps[k], oi, beam.keep[k], ctx.orders))
    hashes.append(hb[k])
    # keep/bypass toggles of one tensor at one level
    lv, t = np.nonzero(ctx.ai.keep_may & ~ctx.ai.keep_must)
    if lv.size:
        k = np.repeat(np.arange(K), lv.size)
        j = np.arange(k.size) % lv.size
        keep = beam.keep[k]
        r = np.arange(k.size)
        was = keep[r, lv[j], t[j]]
        keep[r, lv[j], t[j]] = ~was
        parts.append(Candidates(beam.exps[k], beam.order_idx[k], keep, ctx.orders))
        flip = w_k[lv, t][j]
        hashes.append(hb[k] + np.where(was, -flip, flip))
    return _concat(parts, ctx.orders), np.concatenate(hashes)


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
    oi, keep = c.order_idx[rows], c.keep[rows]
    no, nk = oi.shape[1], int(np.prod(keep.shape[1:]))
    w = _hash_weights(no + nk)
    return oi @ w[:no] + keep.reshape(len(rows), nk) @ w[no:]


def _repair_keep(
    ctx: _Ctx, bad: Candidates, F: np.ndarray, structure: np.ndarray | None = None
) -> tuple[Candidates, np.ndarray]:
    """Compound moves: each over-capacity neighbour (fan-out, mesh and constraints fine) with one
    tensor's keep/bypass toggled at one level (a bigger tile fits once some tensor is bypassed,
    or kept elsewhere); the ones that then fit, and their factors (``F``: those of ``bad``;
    ``structure``: their :meth:`_Ctx.valid_parts` structure test when already known)."""
    lv, t = np.nonzero(ctx.ai.keep_may & ~ctx.ai.keep_must)
    empty = bad.take(np.zeros(0, dtype=np.int64))
    if lv.size == 0 or len(bad) == 0:
        return empty, F[:0]
    L = len(ctx.ai.names)
    if structure is None:
        ok = structure_mask(ctx.pi, ctx.ai, F[:, :L], F[:, L:])
        ok &= np.all(ctx.allowed[np.arange(L), bad.order_idx], axis=-1)
    else:
        ok = structure
    bad, F = bad.take(np.nonzero(ok)[0]), F[ok]
    if len(bad) == 0:
        return empty, F[:0]
    k = np.repeat(np.arange(len(bad)), lv.size)  # (row, toggle), row-major
    j = np.arange(k.size) % lv.size
    keep = bad.keep[k]
    r = np.arange(k.size)
    keep[r, lv[j], t[j]] = ~keep[r, lv[j], t[j]]
    # a toggle changes what a level keeps, not its tiles: their words once per row
    words = tile_words(ctx.pi, tile_extents(F[:, :L], F[:, L:]))
    fits = np.nonzero(capacity_fits(ctx.pi, ctx.ai, words[k], keep))[0]
    k = k[fits]
    return Candidates(bad.exps[k], bad.order_idx[k], keep[fits], ctx.orders), F[k]
