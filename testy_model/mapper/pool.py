"""The mapper's candidate pool and the beam's selection (:mod:`testy_model.mapper.search`):
the exhaustive enumeration of a small space, seeded random start candidates, each candidate under
every keep/bypass choice, canonical loop orders (equivalent orders are one candidate), and the
beam's choice of the best distinct-cost candidates with at most ``per_keep`` per keep/bypass
choice."""

from __future__ import annotations

import numpy as np

from testy_model.mapper.candidates import Candidates, _hash_weights
from testy_model.mapper.context import _Ctx
from testy_model.mapper.fit import _all_last
from testy_model.mapper.space import (
    canonical_order_idx,
    enumerate_factorisations,
    factors_from_exps,
    slot_mask,
)
from testy_model.mapper.templates import _base_exps

_CHUNK = 16384  # candidates per evaluate call in exhaustive mode


_EXHAUSTIVE_LIMIT = 4096  # find_mapping's default exhaustive_limit


def _exhaustive(ctx: _Ctx) -> Candidates:
    """Every valid (factorisation, allowed order per level, keep/bypass choice), deduplicated
    where a level has at most one non-unit loop (its order cannot matter)."""
    L = len(ctx.ai.names)
    E = enumerate_factorisations(ctx.pi, ctx.ai).astype(np.int8)
    keeps = ctx.keep_choices()
    per_level = [np.nonzero(ctx.allowed[lv])[0] for lv in range(L)]
    combos = np.array(np.meshgrid(*per_level, indexing="ij")).reshape(L, -1).T
    n_f, n_o = E.shape[0], combos.shape[0]
    exps = np.repeat(E, n_o, axis=0)
    oi = np.tile(combos, (n_f, 1))
    # canonicalise: where a level has <= 1 non-unit temporal loop, its order is irrelevant
    F = factors_from_exps(ctx.pi, exps)[:, :L]
    trivial = np.sum(F > 1, axis=-1) <= 1
    first = np.array([p[0] for p in per_level])
    oi = np.where(trivial, first, oi)
    _, idx = np.unique(
        np.concatenate([exps.reshape(len(exps), -1), oi], axis=1), axis=0, return_index=True
    )
    idx = np.sort(idx)
    exps, oi = exps[idx], oi[idx]
    n_k = keeps.shape[0]
    cand = Candidates(
        np.repeat(exps, n_k, axis=0),
        np.repeat(oi, n_k, axis=0),
        np.tile(keeps, (len(exps), 1, 1)),
        ctx.orders,
    )
    return cand.take(np.nonzero(ctx.valid(cand))[0])


def _random_candidates(ctx: _Ctx, n: int, seed: int) -> Candidates:
    """``n`` seeded random factorisations: each prime power of each dim spread uniformly over
    its open slots (multinomial), with uniformly random allowed orders; invalid ones dropped."""
    rng = np.random.default_rng(seed)
    pi, ai = ctx.pi, ctx.ai
    L = len(ai.names)
    base = _base_exps(pi, ai)
    open_ = slot_mask(ai)
    exps = np.repeat(base[None], n, axis=0)
    for d in range(len(pi.dims)):
        slots = np.nonzero(open_[:, d])[0]
        for p in range(pi.primes.size):
            e = int(base[0, d, p])
            if e == 0 or slots.size == 0:
                continue
            exps[:, 0, d, p] -= e
            draw = rng.multinomial(e, np.full(slots.size, 1.0 / slots.size), size=n)
            exps[:, slots, d, p] += draw
    oi = np.stack([rng.choice(np.nonzero(ctx.allowed[lv])[0], size=n) for lv in range(L)], axis=1)
    keeps = ctx.keep_choices()
    keep = keeps.take(rng.integers(0, len(keeps), size=n), axis=0)
    cand = Candidates(exps, oi.astype(np.int64), keep, ctx.orders)
    return cand.take(np.nonzero(ctx.valid(cand))[0])


def _best(scores: tuple[np.ndarray, ...]) -> np.ndarray:
    """Candidate indices sorted best first: objective, then EDP, energy, position
    (``scores``: objective, EDP, energy)."""
    obj, edp, energy = scores
    return np.lexsort((np.arange(obj.size), energy, edp, obj))


def _select(
    cand: Candidates, scores: tuple[np.ndarray, ...], beam: int, per_keep: int
) -> np.ndarray:
    """Indices of the ``beam`` best candidates, at most ``per_keep`` per keep/bypass choice (so
    alternative bypass structures stay in the beam while their factors are tuned)."""
    order = _best(scores)
    order = order[np.isfinite(scores[0][order])]
    if order.size == 0:  # no candidate has a finite cost
        return order
    # equal (objective, EDP, energy) = equivalent for the model: keep the first of each
    trip = np.stack([s[order] for s in scores], axis=1)
    same = np.r_[False, _all_last(_close(trip[1:], trip[:-1], 1e-12))]
    order = order[~same]
    # the first ``beam`` in that order whose keep/bypass group has fewer than ``per_keep``
    # before them (a group: one keep hash)
    groups = _keep_hash(cand.keep.take(order, axis=0)).tolist()
    count: dict[int, int] = {}
    out: list[int] = []
    for i, g in zip(order.tolist(), groups, strict=True):
        if len(out) >= beam:
            break
        c = count.get(g, 0)
        if c < per_keep:
            count[g] = c + 1
            out.append(i)
    return np.array(out, dtype=order.dtype)


def _keep_hash(keep: np.ndarray) -> np.ndarray:
    """(B,) ``_hash`` of each candidate's (L, T) keep bits (its keep/bypass choice), as one
    wrapping matmul."""
    nk = int(np.prod(keep.shape[1:]))
    return keep.reshape(keep.shape[0], nk) @ _hash_weights(nk)


def _close(x: np.ndarray, y: np.ndarray, rtol: float) -> np.ndarray:
    """``np.isclose(x, y, rtol=rtol, atol=0)`` of float arrays, its own formula without its
    per-call checks: ``|x − y| <= rtol·|y|`` for finite ``y``, or ``x == y``."""
    with np.errstate(invalid="ignore"):
        return ((np.abs(x - y) <= rtol * np.abs(y)) & np.isfinite(y)) | (x == y)


def _keep_variants(ctx: _Ctx, cand: Candidates) -> Candidates:
    """Each candidate under every keep/bypass choice of :func:`keep_options` (valid ones)."""
    keeps = ctx.keep_choices()
    n, k = len(cand), len(keeps)
    out = Candidates(
        np.repeat(cand.exps, k, axis=0),
        np.repeat(cand.order_idx, k, axis=0),
        np.tile(keeps, (n, 1, 1)),
        ctx.orders,
    )
    return out.take(np.nonzero(ctx.valid(out))[0])


def _canonical(ctx: _Ctx, cand: Candidates) -> Candidates:
    """The candidates with each level's loop order replaced by its canonical equivalent
    (:func:`canonical_order_idx`: same relative order of the non-unit loops, same costs)."""
    if ctx.canon is None or len(cand) == 0:
        return cand
    L = len(ctx.ai.names)
    # (B, L, D): temporal factor above 1 (an OR over the few primes: np.any along that short
    # last axis is several times slower)
    exps = cand.exps[:, :L]
    nonunit = exps[..., 0] > 0
    for p in range(1, exps.shape[-1]):
        nonunit |= exps[..., p] > 0
    oi = canonical_order_idx(ctx.canon, nonunit, cand.order_idx)
    return Candidates(cand.exps, oi, cand.keep, cand.orders)


def _in_sorted(x: np.ndarray, sorted_: np.ndarray) -> np.ndarray:
    """(len(x),) bool: ``x`` occurs in the ascending array ``sorted_`` (binary search)."""
    if sorted_.size == 0:
        return np.zeros(x.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_, x), sorted_.size - 1)
    return sorted_[pos] == x
