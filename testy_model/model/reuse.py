"""Dense per-level traffic of B loop nests, as Timeloop v3.0.3's nest analysis counts it.

All counts are **words of the tensor, per instance** of the level; ``DenseCounts.instances``
gives how many instances of each level the mapping uses (totals are ``count × instances``).
Levels are indexed l = 0 (outermost, DRAM) .. L−1; the compute sits below L−1.

Loop nest (Timeloop's ``src/mapping/parser.cpp``): at each level, the temporal loops sit outside
that level's spatial loops (its fan-out to the level below), which sit outside the next inner
level's loops. The *vector stride* of a loop over dimension d is the product of all factors of
d below it (``NestAnalysis::InitPerLevelDimScales``); moving it one step moves a tensor's tile by
``τ = proj[:, d] · stride`` in data-space coordinates.

Rules (each reproduces a function of ``src/loop-analysis/nest-analysis.cpp`` or
``src/loop-analysis/tiling.cpp``; derivations in ``docs/cost_model.md``):

1. **Tile** of tensor t at level l: ``Π_r (Σ_d proj[r,d]·(E_l[d] − 1) + 1)`` with E_l the extents
   of every loop at and below l (an axis-aligned box; strided/dilated windows without im2col).
2. **Temporal deltas** ``W_l`` (words entering one instance of l over the run,
   ``ComputeTemporalWorkingSet`` + ``OperationSpace::SaveAndSubtractIfSameStride``): Timeloop
   samples iterations #0 and #1 of every temporal loop above l (weight 1 and n−1) and charges
   each step the tile minus its overlap with the previous position, but only while the step's
   translation equals the previous one; a changed translation refetches the whole tile. Over the
   binary-counter order of the sampled steps this reduces to (active = loops above l with n ≥ 2,
   j1 the innermost, ``τ_j = s_j − Σ_{active i inside j} s_i``)::

       W_l = T + Σ_j (n_j − 1)·Π_{active k outside j} n_k · (diff(τ_j1) if τ_j == τ_j1 else T)

   with ``diff(τ) = T − Π_r max(0, span_r − |τ_r|)``. Examples: an innermost sliding window
   loop keeps its halo; an irrelevant loop inside it (τ_j1 = 0) loses it at every step of j.
3. **Spatial fan-out** (``ComputeAccurateMulticastedAccesses``): the children of one instance of
   l see translated copies of one delta; equal copies are served once (multicast; for outputs,
   spatial reduction). ``G_l`` = the number of distinct data-space translations among the
   children (Π of the relevant spatial factors unless two of them shift the same rank).
4. **Collapse and bypass** (``CollapseDataMovementNest``, ``MaskTiles``): the reads a holder p
   serves its next holder c (across bypassed levels k) are ``content_p = W_c·Π_{k=p}^{c−1} G_k``
   (compute: ``W = Π all temporal factors``, every MAC reads its operands); c is filled with
   ``W_c`` (``ComputeParentAccessShare``).
5. **Outputs** (read-write; ``ComputeReadUpdateReductionAccesses_Legacy``): updates = content,
   reads = content − partition (the first write of each output needs no read), fills =
   parent share − partition (Timeloop) or parent share (``sparseloop-2022``: first fill counted),
   0 at the outermost level; ``partition_l = |t| / Π_{k<l} G_k`` (``ComputePartitionSizes``).
6. **Streams** (``sparseloop-2022`` only): a level listed under ``stream:`` for a tensor it
   bypasses counts the words passing through (reads = fills for inputs; updates, reads −
   partition and fills = updates for outputs); its parent's counts are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testy_model.model.links import _first_rows
from testy_model.model.nest import LoopNests
from testy_model.model.steps import (
    _fan_base,
    _spatial_content,
    _step_frame,
    _StepFrame,
    spatial_structure,
    step_sequence,
    temporal_deltas,
)
from testy_model.spec.conventions import Conventions
from testy_model.spec.workload import Problem


@dataclass(frozen=True)
class DenseCounts:
    """Dense per-instance traffic of B mappings (words of each tensor; module docstring).

    Attributes:
        tile: (B, L, T) tile of t at level l, words (whether kept or not).
        reads, fills, updates: (B, L, T) per-instance words read out (to children or compute),
            written in from the parent, written in from below (output partial sums).
        instances: (B, L) instances of level l the mapping uses (Π spatial factors above l).
        temporal_iterations: (B,) Π of all temporal factors (the dense compute cycles).
        mac_units: (B,) Π of all spatial factors (MAC units used).
        macs: (B,) dense MACs (temporal_iterations × mac_units).
        compulsory: (T,) words of each tensor in the whole problem.
        distinct: (B, L, T) Timeloop's partition size: distinct words an instance of l holds
            over the run (0 where l neither keeps nor streams t).
        held: (B, L, T) l keeps t (level 0 keeps everything).
        streamed: (B, L, T) l streams t (``sparseloop-2022`` only).
        entering: (B, L, T) ``W_l``: words entering one instance of l (rule 2), kept or not.
        groups: (B, L, T) ``G_l``: distinct spatial translations below l (rule 3).
        child: (B, L, T) int, the next holder below l for t (L = the compute).
    """

    tile: np.ndarray
    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    instances: np.ndarray
    temporal_iterations: np.ndarray
    mac_units: np.ndarray
    macs: np.ndarray
    compulsory: np.ndarray
    distinct: np.ndarray | None = None
    held: np.ndarray | None = None
    streamed: np.ndarray | None = None
    entering: np.ndarray | None = None
    groups: np.ndarray | None = None
    child: np.ndarray | None = None


def projection_matrix(problem: Problem, tensor: str) -> np.ndarray:
    """(R, D) float matrix of projection coefficients of ``tensor`` (rank × dimension)."""
    dims = problem.dimensions
    ranks = problem.data_space(tensor).projection
    mat = np.zeros((len(ranks), len(dims)))
    for r, rank in enumerate(ranks):
        for d, c in rank:
            mat[r, dims.index(d)] += problem.coef(c)
    return mat


def take_counts(counts: DenseCounts, rows: np.ndarray) -> DenseCounts:
    """The counts of the mappings at ``rows`` (every (B, ...) array indexed along B; the
    per-problem ``compulsory`` stays): repeat one batch's counts over design points."""
    import dataclasses

    upd = {
        f.name: getattr(counts, f.name)[rows]
        for f in dataclasses.fields(counts)
        if f.name != "compulsory" and getattr(counts, f.name) is not None
    }
    return dataclasses.replace(counts, **upd)


def tile_words(proj: np.ndarray, extents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tile size in words and per-rank spans for extents ``(..., D)``.

    Equation: ``span_r = Σ_d proj[r,d]·(E[d] − 1) + 1`` and ``tile = Π_r span_r``.
    Returns ``(tile (...,), spans (..., R))``.
    """
    spans = (extents - 1.0) @ proj.T + 1.0
    return spans.prod(axis=-1), spans


def extents(nests: LoopNests) -> np.ndarray:
    """(B, L+1, D) extents at and below each level: ``E_l[d] = Π_{k>=l} t[k,d]·s[k,d]``;
    ``E_L = 1`` (the compute)."""
    tem = nests.temporal.astype(np.float64)
    spa = nests.spatial.astype(np.float64)
    n_b, n_l, n_d = tem.shape
    ext = np.ones((n_b, n_l + 1, n_d))
    ext[:, :n_l] = np.cumprod((tem * spa)[:, ::-1], axis=1)[:, ::-1]
    return ext


def _stream_mask(stream: np.ndarray | None, keep: np.ndarray) -> np.ndarray:
    """(B, L, T) bool: levels that pass a bypassed tensor through (``stream`` and not kept)."""
    if stream is None:
        return np.zeros_like(keep)
    st = np.broadcast_to(np.asarray(stream, dtype=bool), keep.shape)
    return st & ~keep


def dense_counts(
    problem: Problem,
    nests: LoopNests,
    *,
    conventions: Conventions | str | None = None,
    stream: np.ndarray | None = None,
    output_first_fill: bool | None = None,
    fanout_x: np.ndarray | None = None,
) -> DenseCounts:
    """Per-instance dense reads/fills/updates of every level and tensor (module docstring).

    Args:
        problem: the problem (dimensions, projections, bounds).
        nests: B loop nests.
        conventions: ``timeloop`` (default) or ``sparseloop-2022``
            (:class:`~testy_model.spec.conventions.Conventions`).
        stream: optional (L, T) or (B, L, T) bool mask of levels that a tensor they do not keep
            passes through (a mapping's ``stream:`` lists); counted under ``sparseloop-2022``.
        output_first_fill: override the convention's first-fill rule (tests, studies).
        fanout_x: (L,) physical X fan-out below each level (the mesh row length of link
            transfers); default: the mapping's own X factors.
    """
    conv = Conventions.parse(conventions)
    first_fill = conv.output_first_fill if output_first_fill is None else output_first_fill
    tem = nests.temporal.astype(np.float64)
    spa = nests.spatial.astype(np.float64)
    n_b, n_l, _ = tem.shape
    tensors = problem.tensor_names
    n_t = len(tensors)
    out_idx = tensors.index(problem.output)
    ext = extents(nests)
    t_all = tem.prod(axis=(1, 2))
    instances = np.ones((n_b, n_l))
    instances[:, 1:] = np.cumprod(spa.prod(axis=2)[:, :-1], axis=1)
    keep = nests.keep.copy()
    keep[:, 0, :] = True
    if stream is None and nests.stream is not None:
        stream = nests.stream
    streamed = _stream_mask(stream if conv.counts_streams else None, keep)
    no_reuse, no_link, no_mc = (nests.mask(k) for k in ("no_reuse", "no_link", "no_multicast"))
    shape = (n_b, n_l, n_t)
    tile, reads, fills, updates = (np.zeros(shape) for _ in range(4))
    distinct, entering, groups = np.zeros(shape), np.zeros(shape), np.ones(shape)
    child = np.full(shape, n_l, dtype=np.int64)
    compulsory = np.zeros(n_t)
    bounds = np.array([float(problem.bounds[d]) for d in problem.dimensions])
    children: dict[int, _ChildRows] = {}
    fan_base = _fan_base(nests, ext, fanout_x)
    for ti, t in enumerate(tensors):
        proj = projection_matrix(problem, t)
        tw, spans = tile_words(proj, ext)  # (B, L+1), (B, L+1, R)
        tile[:, :, ti] = tw[:, :n_l]
        compulsory[ti] = tile_words(proj, bounds)[0]
        fan = spatial_structure(proj, nests, ext, fanout_x, no_mc[:, :, ti], fan_base)
        groups[:, :, ti] = fan[1]
        masks = (no_reuse[:, :, ti], no_link[:, :, ti], no_mc[:, :, ti])
        lv = _level_traffic(proj, nests, ext, tw, spans, fan, masks, children)
        entering[:, :, ti] = lv[0]
        cols = _collapse(lv, keep[:, :, ti], fan[0], instances)
        # the row's own tensor size (its outermost tile: rows of one batch may be layers of
        # different bounds sharing one structure)
        part = tw[:, 0][:, None] / np.concatenate(
            [np.ones((n_b, 1)), np.cumprod(fan[1][:, :-1], axis=1)], axis=1
        )
        r, f, u, dist = _assign(
            cols, part, keep[:, :, ti], streamed[:, :, ti], ti == out_idx, first_fill
        )
        reads[:, :, ti], fills[:, :, ti], updates[:, :, ti] = r, f, u
        distinct[:, :, ti] = dist
        child[:, :, ti] = cols[3]
    return DenseCounts(
        tile=tile,
        reads=reads,
        fills=fills,
        updates=updates,
        instances=instances,
        temporal_iterations=t_all,
        mac_units=spa.prod(axis=(1, 2)),
        macs=t_all * spa.prod(axis=(1, 2)),
        compulsory=compulsory,
        distinct=distinct,
        held=keep,
        streamed=streamed,
        entering=entering,
        groups=groups,
        child=child,
    )


@dataclass(frozen=True)
class _ChildRows:
    """The rows the traffic above child level c is computed on (:func:`_child_rows`): ``rows``
    (U,) one row per distinct key (None: every row), ``inv`` (B,) each row's group, ``nests``
    and ``ext`` those rows' nests and extents, ``frame`` their step frame (shared by the
    tensors)."""

    rows: np.ndarray | None
    inv: np.ndarray | None
    nests: LoopNests
    ext: np.ndarray
    frame: _StepFrame

    def take(self, a: np.ndarray) -> np.ndarray:
        """``a`` (B, ...) on the distinct rows."""
        return a if self.rows is None else a[self.rows]

    def put(self, a: np.ndarray) -> np.ndarray:
        """``a`` (U, ...) back on every row."""
        return a if self.inv is None else a[self.inv]


def _child_rows(nests: LoopNests, ext: np.ndarray, c: int) -> _ChildRows:
    """:class:`_ChildRows` of child level ``c``: rows are grouped by everything the traffic
    above c depends on — the factors and orders of levels ``0..c−1``, the extents
    ``E_1..E_c``, level c−1's spatial order, X split and directives, and c's ``no_reuse``
    (a mapper batch repeats them: keep/bypass variants, moves at inner levels). The traffic
    is integer arithmetic (exact in float64), so a row's counts do not depend on the rows
    priced with it."""
    n_b = nests.batch
    rows = inv = None
    if n_b >= 64:
        parts = [
            nests.temporal[:, :c].reshape(n_b, -1),
            nests.spatial[:, :c].reshape(n_b, -1),
            nests.order[:, :c].reshape(n_b, -1),
            ext[:, 1 : c + 1].reshape(n_b, -1),
            nests.spatial_positions()[:, c - 1],
            nests.x_split()[:, c - 1 : c],
        ]
        for name, lv in (("no_link", c - 1), ("no_multicast", c - 1), ("no_reuse", c)):
            m = getattr(nests, name)
            if m is not None and lv < nests.n_levels:
                parts.append(m[:, lv])
        key = np.concatenate([np.asarray(x, dtype=np.float64) for x in parts], axis=1)
        first, groups = _first_rows(key)
        if len(first) < 0.8 * n_b:
            rows, inv = first, groups
    sub = nests if rows is None else nests.select(rows)
    sub_ext = ext if rows is None else ext[rows]
    return _ChildRows(rows, inv, sub, sub_ext, _step_frame(sub, sub_ext, c))


def _level_traffic(
    proj: np.ndarray,
    nests: LoopNests,
    ext: np.ndarray,
    tw: np.ndarray,
    spans: np.ndarray,
    fan: tuple[np.ndarray, ...],
    masks: tuple[np.ndarray, np.ndarray, np.ndarray],
    children: dict[int, _ChildRows] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per level, before bypass: ``(W, content, weighted, links)`` (B, L) of one tensor
    (``children``: the tensors' shared :func:`_child_rows` per child level, filled as needed;
    each level is computed on its distinct rows only).

    ``W_l`` words entering an instance of l (rule 2); ``content_l`` the reads an instance of l
    serves its tiling child (l+1, or the compute below L−1); ``weighted_l`` the words it
    delivers to its children; ``links_l`` the words its children pass over links (rule 3).
    ``masks`` = (no_reuse, no_link, no_multicast), each (B, L), the mapping's directives."""
    n_b, n_l = tw.shape[0], tw.shape[1] - 1
    w = np.zeros((n_b, n_l))
    content, weighted, links = np.zeros((n_b, n_l)), np.zeros((n_b, n_l)), np.zeros((n_b, n_l))
    w[:, 0] = tw[:, 0]
    children = {} if children is None else children
    for c in range(1, n_l + 1):
        if c not in children:
            children[c] = _child_rows(nests, ext, c)
        ch = children[c]
        seq = step_sequence(proj, ch.nests, ch.ext, c, ch.frame)
        k = c - 1
        fan_k = tuple(ch.take(a[:, k]) for a in fan)
        no_reuse, no_link, no_mc = (ch.take(m) for m in masks)
        args = (no_link[:, k], no_mc[:, k])
        if c < n_l:
            t_c = ch.take(tw[:, c])
            w_c, diff1 = temporal_deltas(seq, ch.take(spans[:, c]))
            full = np.where(seq.f >= 2, seq.f, 1.0).prod(axis=1) * t_c
            w_c = np.where(no_reuse[:, c], full, w_c)
            diff1 = np.where(no_reuse[:, c] & seq.has, t_c, diff1)
            w[:, c] = ch.put(w_c)
            dj = np.where(seq.same | no_reuse[:, c][:, None], diff1[:, None], t_c[:, None])
            out = _spatial_content(seq, (t_c, diff1, dj), False, fan_k, *args)
        else:
            one = np.ones(ch.nests.batch)
            out = _spatial_content(seq, (one, one, np.ones_like(seq.f)), True, fan_k, *args)
        content[:, k], weighted[:, k], links[:, k] = (ch.put(x) for x in out)
    return w, content, weighted, links


def _collapse(
    lv: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    held: np.ndarray,
    f_all: np.ndarray,
    instances: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Bypass (``MaskTiles``) and peer accesses (``ComputePeerAccesses``) of one tensor.

    A bypassed level m promotes its children's demand to its parent k = m−1 (inner to outer):
    ``content_k ← content_k · content_m · F_k / weighted_k``, and k's link transfers are dropped.
    A holder c filled over links gets ``peer_c = links_{c−1} / instances_c`` extra reads and
    fills (Timeloop divides the per-parent-instance link count by all instances of c).
    ``share_c = weighted_{c−1} / F_{c−1}`` is what the parent delivers to one instance of c.
    Returns ``(content, share, peer, child)`` (B, L); ``child`` = the next holder below (L =
    compute)."""
    _, content, weighted, links = (a.copy() for a in lv)
    n_b, n_l = content.shape
    share = np.zeros((n_b, n_l))
    share[:, 1:] = weighted[:, :-1] / f_all[:, :-1]
    child = np.full((n_b, n_l), n_l, dtype=np.int64)
    nearest = np.full(n_b, n_l, dtype=np.int64)
    for m in range(n_l - 1, 0, -1):
        child[:, m] = nearest
        masked = ~held[:, m]
        wk = weighted[:, m - 1]
        scale = content[:, m] * f_all[:, m - 1] / np.where(wk > 0, wk, 1.0)
        content[:, m - 1] = np.where(masked, content[:, m - 1] * scale, content[:, m - 1])
        links[:, m - 1] = np.where(masked, 0.0, links[:, m - 1])
        nearest = np.where(held[:, m], m, nearest)
    child[:, 0] = nearest
    peer = np.zeros((n_b, n_l))
    peer[:, 1:] = links[:, :-1] / instances[:, 1:]
    return content, share, peer, child


def _assign(
    cols: tuple[np.ndarray, ...],
    part: np.ndarray,
    held: np.ndarray,
    streamed: np.ndarray,
    is_out: bool,
    first_fill: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reads, fills, updates and partition sizes (B, L) of one tensor from the collapsed
    columns (module rules 4–6; ``ComputeReadUpdateReductionAccesses_Legacy``)."""
    content, share, peer, _ = cols
    n_b, n_l = content.shape
    reads, fills, updates = np.zeros((n_b, n_l)), np.zeros((n_b, n_l)), np.zeros((n_b, n_l))
    outer = np.zeros(n_l, dtype=bool)
    outer[0] = True
    if is_out:
        upd = np.round(content)
        rd = np.round(content + peer - part)
        fl = share + peer if first_fill else np.round(share + peer - part)
        fl[:, 0] = 0.0
        updates = np.where(held | streamed, upd, 0.0)
        reads = np.where(held | streamed, rd, 0.0)
        fills = np.where(held, fl, np.where(streamed, upd, 0.0))
    else:
        rd = np.round(content + peer)
        fl = share + peer
        fl[:, 0] = 0.0
        reads = np.where(held | streamed, rd, 0.0)
        fills = np.where(held, fl, np.where(streamed, rd, 0.0))
    fills[:, 0] = 0.0
    dist = np.where(held | streamed, part, 0.0)
    return reads, fills, updates, dist
