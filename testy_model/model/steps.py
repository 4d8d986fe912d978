"""Loop-step sequences and spatial fan-out structure of B loop nests: rules 2 and 3 of
:mod:`testy_model.model.reuse` (Timeloop v3.0.3's ``ComputeTemporalWorkingSet`` sampling and
``ComputeAccurateMulticastedAccesses``), which :func:`~testy_model.model.reuse.dense_counts`
combines into per-level traffic. Counts are words of a tensor per instance of a level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from testy_model.model.arrayops import prod_axis
from testy_model.model.links import _first_rows, link_adjustments
from testy_model.model.nest import LoopNests


@dataclass(frozen=True)
class StepSequence:
    """The temporal steps Timeloop samples above one child level (module rule 2), per B row.

    ``f`` (B, J) loop bounds inner to outer (1 = inactive), ``tau`` (B, J, R) the data-space
    translation of a step of type j (``s_j − Σ_{active i inside j} s_i``), ``j1`` (B,) the
    innermost active loop, ``has`` (B,) whether any loop above is active, ``outer`` (B, J)
    ``Π_{k outside j} n_k``, ``same`` (B, J) ``τ_j == τ_j1`` for active j.
    """

    f: np.ndarray
    tau: np.ndarray
    j1: np.ndarray
    has: np.ndarray
    outer: np.ndarray
    same: np.ndarray
    tau1: np.ndarray | None = None
    weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class _StepFrame:
    """The tensor-independent part of a :class:`StepSequence` (one child level): bounds ``f``
    (B, J), strides ``st`` and dimensions ``dim`` of the active loops, inner to outer."""

    f: np.ndarray
    st: np.ndarray
    dim: np.ndarray
    active: np.ndarray
    has: np.ndarray
    j1: np.ndarray
    outer: np.ndarray
    weights: tuple[np.ndarray, np.ndarray, np.ndarray]
    #: (B, J) the storage level of each loop (0 = outermost)
    level: np.ndarray | None = None


def _step_weights(
    f: np.ndarray, j1: np.ndarray, has: np.ndarray, outer: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights of the sampled steps (:func:`_spatial_content`): ``w_first`` (B,) = n_j1 − 1
    (the innermost loop's own steps), ``w_after`` (B, J) = (n_j1 − 1)·(n_j − 1)·Π_{k outside j}
    n_k (innermost steps after a step of j) and ``w_type`` (B, J) = (n_j − 1)·Π_{k outside j}
    n_k (steps of j), both 0 at j1 and at inactive loops."""
    n_b = f.shape[0]
    rows = np.arange(n_b)
    act = f >= 2
    act[rows, j1] = False  # (j1's own steps are w_first's)
    n1 = f[rows, j1]
    w_first = np.where(has, n1 - 1.0, 0.0)
    f1 = f - 1.0
    w_after = np.where(act, (n1[:, None] - 1.0) * f1 * outer, 0.0)
    w_type = np.where(act, f1 * outer, 0.0)
    return w_first, w_after, w_type


def _sort_positions(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, axis=1, kind="stable")`` of (B, K) integer keys; where each row is a
    permutation of 0..K−1 (each level's loop positions are a permutation) the inverse
    permutation is scattered directly, without sorting (the same result)."""
    k = key.shape[1]
    pos = np.arange(k)
    if key.shape[0] >= 64 and key.min() >= 0 and key.max() < k:  # (small batches: sort)
        rows = np.arange(key.shape[0])[:, None]
        idx = np.empty_like(key)
        idx[rows, key] = pos
        if np.array_equal(key[rows, idx], np.broadcast_to(pos, key.shape)):
            return idx
    return key.argsort(axis=1, kind="stable")


def _step_frame(
    nests: LoopNests, ext: np.ndarray, level: int, rows: np.ndarray | None = None
) -> _StepFrame:
    """The loops above child ``level`` (module rule 2), each row's active loops first, of
    the batch ``rows`` (default: all; ``ext`` is the whole batch's)."""
    tem_i, spa_i, order = nests.temporal[:, :level], nests.spatial[:, :level], nests.order
    if rows is not None:
        tem_i, spa_i, order, ext = tem_i[rows], spa_i[rows], order[rows], ext[rows]
    n_b, _, n_d = tem_i.shape
    tem = tem_i.astype(np.float64)
    spa = spa_i.astype(np.float64)
    stride = ext[:, 1 : level + 1] * spa
    key = (level - 1 - np.arange(level))[None, :, None] * n_d + order[:, :level]
    idx = _sort_positions(key.reshape(n_b, -1))
    rows = np.arange(n_b)[:, None]
    # row-wise gathers as one flat np.take (several times faster than fancy indexing)
    flat = idx + rows * idx.shape[1]
    f = tem.take(flat)
    st = stride.take(flat)
    # flat position k·D + d of loop (k, d)
    return _compact_frame(f, st, idx % n_d, idx // n_d)


def _compact_frame(f: np.ndarray, st: np.ndarray, dim: np.ndarray, lvl: np.ndarray) -> _StepFrame:
    """:class:`_StepFrame` of loops (B, K) inner to outer (bounds ``f``, strides ``st``,
    dimensions ``dim``, levels ``lvl``), each row's active loops (bound >= 2) kept first in
    order, the others (bound 1) play no part."""
    n_b = f.shape[0]
    active = f >= 2
    j_max = max(int(active.sum(axis=1).max()), 1)
    if j_max < f.shape[1]:
        rows = np.arange(n_b)[:, None]
        keep = (~active).argsort(axis=1, kind="stable")[:, :j_max] + rows * f.shape[1]
        f, st, dim, lvl = (x.take(keep) for x in (f, st, dim, lvl))
    return _frame(f, st, dim, lvl)


def _frame(f: np.ndarray, st: np.ndarray, dim: np.ndarray, lvl: np.ndarray) -> _StepFrame:
    """:class:`_StepFrame` of compacted loops (active ones first; ``Π_{k outside j} n_k``,
    the innermost active loop and the step weights derived here)."""
    active = f >= 2
    outer = np.empty_like(f)  # Π_{k outside j} n_k: the running product from the outermost
    outer[:, -1] = 1.0
    if len(f) >= 256:  # (the order cumprod multiplies in; a loop over J beats its rows)
        if f.shape[1] > 1:
            outer[:, -2] = f[:, -1]
        for j in range(f.shape[1] - 3, -1, -1):
            np.multiply(outer[:, j + 1], f[:, j + 1], out=outer[:, j])
    else:
        outer[:, :-1] = np.cumprod(f[:, :0:-1], axis=1)[:, ::-1]
    j1 = active.argmax(axis=1)  # (0 where no loop is active: there active is False)
    has = active[np.arange(len(f)), j1]  # active.any(axis=1)
    weights = _step_weights(f, j1, has, outer)
    return _StepFrame(f, st, dim, active, has, j1, outer, weights, lvl)


def suffix_frames(
    full: _StepFrame, rows: Sequence[np.ndarray], levels: Sequence[int]
) -> _StepFrame:
    """The step frames (:func:`_step_frame`) of several child ``levels``, each on its frame
    rows ``rows`` of a deeper child's frame ``full``, stacked along the rows: the loops above a
    level are the outermost of ``full``'s (the same loops, strides and order), so each row's
    active ones are those of ``full`` at levels below it, kept in order and padded with bound-1
    loops to the most any row has (at least 1; where bound-1 loops sit plays no part)."""
    assert full.level is not None  # frames built by _step_frame carry their loops' levels
    at = np.concatenate(rows) if len(rows) > 1 else rows[0]
    f, st, dim, lvl = (x[at] for x in (full.f, full.st, full.dim, full.level))
    lim: np.ndarray | int = levels[0]
    if len(rows) > 1:
        lim = np.repeat(np.asarray(levels), [len(r) for r in rows])[:, None]
    sel = (f >= 2) & (lvl < lim)
    n_c = sel.sum(axis=1)
    j_max = max(int(n_c.max()) if n_c.size else 0, 1)
    pos = (~sel).argsort(axis=1, kind="stable")[:, :j_max]
    valid = np.arange(j_max) < n_c[:, None]

    r = np.arange(len(pos))[:, None]

    def take(x: np.ndarray, pad: float) -> np.ndarray:
        return np.where(valid, x[r, pos], pad)

    return _frame(take(f, 1.0), take(st, 0.0), take(dim, 0), take(lvl, 0))


def temporal_deltas(seq: StepSequence, spans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W, diff1)`` (B,): words entering one instance of a level over the run (module rule 2)
    and the size of one innermost step's delta, for a tile of per-rank ``spans`` (B, R)."""
    n_b = spans.shape[0]
    tile = prod_axis(spans, -1)
    if seq.f.shape[1] == 0:
        return tile, np.zeros(n_b)
    tau1 = seq.tau[np.arange(n_b), seq.j1] if seq.tau1 is None else seq.tau1
    diff1 = tile - prod_axis(np.clip(spans - np.abs(tau1), 0.0, None), -1)
    weight = np.where(seq.f >= 2, (seq.f - 1.0) * seq.outer, 0.0)
    cost = np.where(seq.same, diff1[:, None], tile[:, None])
    w = tile + (weight * cost).sum(axis=1)
    return np.where(seq.has, w, tile), np.where(seq.has, diff1, 0.0)


@lru_cache(maxsize=4096)
def _distinct_translations(vectors: tuple[tuple[float, ...], ...], counts: tuple[int, ...]) -> int:
    """Number of distinct points ``Σ_k i_k·v_k`` for ``0 <= i_k < counts[k]`` (enumerated)."""
    pts = {tuple(0.0 for _ in vectors[0])}
    for v, c in zip(vectors, counts, strict=True):
        pts = {tuple(p[r] + i * v[r] for r in range(len(v))) for p in pts for i in range(c)}
    return len(pts)


@dataclass(frozen=True)
class _FanBase:
    """The tensor-independent part of :func:`spatial_structure` (shared by the tensors):
    spatial factors ``spa`` (B, L, D), their positions ``pos`` (B, L, D) (0 = innermost), the
    extents ``ext`` (B, L+1, D), ``f_all`` (B, L) and ``h_size`` (B, L); :meth:`ordered` puts a
    level's loops in order."""

    spa: np.ndarray
    pos: np.ndarray
    ext: np.ndarray
    f_all: np.ndarray
    h_size: np.ndarray

    def ordered(
        self, level: int | None = None, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(idx, radix, ext_sorted)``: the spatial loops' order inner to outer, the factors
        and the extents below (``E_{l+1}``) in that order, of every level ((B, L, D); or of
        one ``level`` (B, D)), on ``rows`` (default: all)."""
        spa, pos, ext = self.spa, self.pos, self.ext[:, 1:]
        if level is not None:
            spa, pos, ext = spa[:, level], pos[:, level], ext[:, level]
        if rows is not None:
            spa, pos, ext = spa[rows], pos[rows], ext[rows]
        idx = pos.argsort(axis=-1, kind="stable")
        return idx, np.take_along_axis(spa, idx, axis=-1), np.take_along_axis(ext, idx, axis=-1)

    def ordered_rows(
        self, parts: Sequence[tuple[int, np.ndarray | None]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`ordered` of several ``(level, rows)``, stacked along the rows (one sort;
        each row is sorted on its own)."""
        if len(parts) == 1:
            return self.ordered(*parts[0])

        def rows_of(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
            return a if rows is None else a[rows]

        spa = np.concatenate([rows_of(self.spa[:, k], r) for k, r in parts])
        pos = np.concatenate([rows_of(self.pos[:, k], r) for k, r in parts])
        ext = np.concatenate([rows_of(self.ext[:, k + 1], r) for k, r in parts])
        idx = pos.argsort(axis=-1, kind="stable")
        return idx, np.take_along_axis(spa, idx, axis=-1), np.take_along_axis(ext, idx, axis=-1)


@dataclass(frozen=True)
class FanRows:
    """The radices, offsets and mesh row lengths (:func:`spatial_structure`) of stacked
    fan-out rows, formed on demand (:meth:`at`): stacked row j is tensor ``j // n_u``
    (transposed projection ``proj_t[j // n_u]`` (D, R)) at parent level ``k_of[j % n_u]`` of
    batch row ``b_of[j % n_u]``, over the tensor-independent ``base``."""

    base: _FanBase
    proj_t: np.ndarray
    b_of: np.ndarray
    k_of: np.ndarray
    n_u: int

    def at(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(radix (H, D), offset (H, D, R), h_size (H,))`` of the stacked ``rows`` (H,):
        the level's spatial loops inner to outer, their factors and translations
        ``proj[:, d]·E_{l+1}[d]`` (:func:`fan_offsets`), as :meth:`_FanBase.ordered` orders
        them."""
        u = rows % self.n_u
        b, k = self.b_of[u], self.k_of[u]
        fb = self.base
        spa, pos, ext = fb.spa[b, k], fb.pos[b, k], fb.ext[b, k + 1]
        idx = pos.argsort(axis=-1, kind="stable")
        h = np.arange(len(rows))[:, None]
        radix, ext_sorted = spa[h, idx], ext[h, idx]
        offset = self.proj_t[(rows // self.n_u)[:, None], idx] * ext_sorted[..., None]
        return radix, offset, fb.h_size[b, k]

    def reach(self, rows: np.ndarray) -> np.ndarray:
        """(H, R) how far two children's offsets can differ along each rank, for the sorted
        stacked ``rows`` (H,): ``Σ_d (s_d − 1)·E_{l+1}[d]·|proj[r, d]|`` over the level's
        spatial factors s (exact integers; :func:`~testy_model.model.links._within_reach`)."""
        u = rows % self.n_u
        b, k = self.b_of[u], self.k_of[u]
        fb = self.base
        span = np.maximum(fb.spa[b, k] - 1.0, 0.0) * fb.ext[b, k + 1]  # (H, D)
        tensor = rows // self.n_u
        out = np.empty((len(rows), self.proj_t.shape[2]))
        ends = np.searchsorted(tensor, np.arange(len(self.proj_t) + 1))
        for i in range(len(self.proj_t)):  # rows are sorted: tensor by tensor
            if ends[i + 1] > ends[i]:
                out[ends[i] : ends[i + 1]] = span[ends[i] : ends[i + 1]] @ np.abs(self.proj_t[i])
        return out

    @property
    def n_dims(self) -> int:
        """D, the number of problem dimensions."""
        return int(self.base.spa.shape[2])


def _fan_base(nests: LoopNests, ext: np.ndarray, fanout_x: np.ndarray | None) -> _FanBase:
    """:class:`_FanBase` of ``nests`` (``h_size = max(physical X fan-out, Π X factors)``)."""
    spa = nests.spatial.astype(np.float64)
    n_l = spa.shape[1]
    pos = nests.spatial_positions()
    f_all = prod_axis(spa, 2)
    x_fac = prod_axis(np.where(pos < nests.x_split()[:, :, None], spa, 1.0), 2)
    phys = np.ones(n_l) if fanout_x is None else np.asarray(fanout_x, dtype=np.float64)
    h_size = np.maximum(phys[None, :], x_fac)
    return _FanBase(spa, pos, ext, f_all, h_size)


def fan_offsets(proj: np.ndarray, idx: np.ndarray, ext_sorted: np.ndarray) -> np.ndarray:
    """(..., D, R) each spatial loop's translation ``proj[:, d]·E_{l+1}[d]`` with the loops in
    the order ``idx`` (..., D) and ``ext_sorted`` (..., D) the extents below in that order
    (:class:`_FanBase`)."""
    return proj.T.take(idx, axis=0) * ext_sorted[..., None]


def spatial_structure(
    proj: np.ndarray,
    nests: LoopNests,
    ext: np.ndarray,
    fanout_x: np.ndarray | None,
    no_multicast: np.ndarray | None = None,
    base: _FanBase | None = None,
    offsets: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """The spatial fan-out of every level for one tensor: ``(F, G, radix, offset, h_size)``.

    ``F`` (B, L) children per instance (Π spatial factors); ``G`` (B, L) distinct data-space
    translations among them (module rule 3; Π of the relevant factors unless two of them shift
    one rank, then counted); ``radix`` (B, L, D) the spatial factors ordered inner to outer
    (spatial permutation), ``offset`` (B, L, D, R) each loop's translation
    ``proj[:, d]·E_{l+1}[d]`` in that order, ``h_size`` (B, L) the mesh row length
    ``max(physical X fan-out, Π X factors)`` (``NestAnalysis::ComputeNetworkLinkTransfers``).
    ``no_multicast`` (B, L): levels where the tensor is not multicast (``G = F``).
    ``base``: :func:`_fan_base` of the same nests (shared by the tensors). ``offsets=False``:
    the radices and offsets are left out (None; :meth:`_FanBase.ordered` and
    :func:`fan_offsets` give those of one level's rows).
    """
    fb = base if base is not None else _fan_base(nests, ext, fanout_x)
    spa = fb.spa
    radix = offset = None
    if offsets:
        idx, radix, ext_sorted = fb.ordered()
        offset = fan_offsets(proj, idx, ext_sorted)  # (B, L, D, R)
    rel = proj != 0
    active = (spa >= 2) & rel.any(axis=0)[None, None, :]
    g = prod_axis(np.where(active, spa, 1.0), 2)
    # ranks with two or more relevant active loops (only ranks that two dims project onto,
    # e.g. a sliding window's p + r, can have them)
    share = np.zeros(g.shape, dtype=bool)
    for r_i in (rel.sum(axis=1) >= 2).nonzero()[0]:
        ds = rel[r_i].nonzero()[0]
        if len(ds) == 2:  # (a sliding window's p + r: both active)
            share |= active[..., ds[0]] & active[..., ds[1]]
        else:
            share |= active[..., ds].sum(axis=-1) >= 2
    sb, sl = share.nonzero()
    if sb.size:
        # G depends only on the level's spatial factors and extents below: count each distinct
        # (factors, extents) once (a batch repeats a handful of fan-outs)
        key = np.concatenate([spa[sb, sl], ext[sb, sl + 1]], axis=1)
        first, inv = _first_rows(key)
        vals = np.empty(len(first))
        for u, i in enumerate(first):
            b, lvl = sb[i], sl[i]
            ds = np.nonzero(active[b, lvl])[0]
            vecs = tuple(tuple(float(x) for x in proj[:, d] * ext[b, lvl + 1, d]) for d in ds)
            vals[u] = _distinct_translations(vecs, tuple(int(spa[b, lvl, d]) for d in ds))
        g[sb, sl] = vals[inv.reshape(-1)]
    f_all = fb.f_all
    if no_multicast is not None:
        g = np.where(no_multicast, f_all, g)
    return f_all, g, radix, offset, fb.h_size


def _spatial_content(
    seq: StepSequence,
    sizes: tuple[np.ndarray, np.ndarray, np.ndarray],
    point_child: bool,
    fan: tuple[np.ndarray, np.ndarray, FanRows],
    no_link: np.ndarray,
    no_multicast: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(content, weighted, links)`` (B,) of one parent level's fan-out for one tensor
    (module rule 3 with link transfers, ``NestAnalysis::ComputeSpatialWorkingSet``).

    Each sampled step s (weight w_s) delivers a delta of |D_s| words to each of F children;
    without link transfers the parent reads ``G·|D_s|`` (one read per distinct translation) and
    delivers ``F·|D_s|``. A child whose delta equals a mesh neighbour's previous delta
    (same shape, translated by the step's δ = a neighbour's offset difference) gets it over a
    link instead; when that lowers the parent's reads (``ρ < G``, ρ = distinct offsets among
    the other children) the step costs ``ρ·|D_s|`` reads, ``(F − λ)·|D_s|`` deliveries and
    ``λ·|D_s|`` link transfers. ``sizes`` = (tile T, innermost-step delta diff1, per-type
    delta |D_j|) for a storage child; ``point_child`` marks the compute (every delta is the
    operand itself: |D| = 1, always the same shape). ``no_link`` / ``no_multicast`` (B,) are the
    mapping's directives for this level and tensor.
    """
    f_all, g, rows = fan
    tile, diff1, dj = sizes
    n_b, n_j = seq.f.shape
    content = g * tile
    weighted = f_all * tile
    links = np.zeros(n_b)
    if n_j == 0:
        return content, weighted, links
    if seq.weights is None:
        w_first, w_after, w_type = _step_weights(seq.f, seq.j1, seq.has, seq.outer)
    else:
        w_first, w_after, w_type = seq.weights
    tau1 = seq.tau[np.arange(n_b), seq.j1] if seq.tau1 is None else seq.tau1
    if point_child:
        eq_first = np.ones(n_b, bool)
        eq_rest = np.ones((n_b, n_j), bool)
        d1 = np.ones(n_b)
        dj = np.ones((n_b, n_j))
    else:
        eq_first = diff1 == tile
        eq_rest = seq.same | eq_first[:, None]
        d1 = diff1
    # without links: one read per distinct translation, one delivery per child, every step
    moved = d1 * (w_first + w_after.sum(axis=1)) + (w_type * dj).sum(axis=1)
    content = content + g * moved
    weighted = weighted + f_all * moved
    # steps that may go over links, grouped by translation: the innermost step's (taken at
    # the first step of a loop and after every outer step) and each loop's own
    elig = np.concatenate(
        [(w_first * eq_first + (w_after * eq_rest).sum(axis=1))[:, None], w_type * eq_rest],
        axis=1,
    )
    size = np.concatenate([d1[:, None], dj], axis=1)
    check = (elig > 0) & (size > 0) & ((f_all >= 2) & ~no_link)[:, None]
    hit = check[:, 0].copy()  # check.any(axis=1), one column at a time (K is small)
    for j in range(1, check.shape[1]):
        hit |= check[:, j]
    sel = hit.nonzero()[0]
    if sel.size == 0:
        return content, weighted, links
    delta = np.concatenate([tau1[sel, None], seq.tau[sel]], axis=1)
    w = elig[sel] * size[sel]
    dc, dw, lk = link_adjustments(sel, check[sel], w, delta, (g, f_all, no_multicast), rows)
    content[sel] += dc
    weighted[sel] -= dw
    links[sel] = lk
    return content, weighted, links
