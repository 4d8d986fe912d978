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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testy_model.model.arrayops import prod_axis, stack_last
from testy_model.model.nest import LoopNests
from testy_model.model.steps import _fan_base, spatial_structure
from testy_model.model.traffic import Traffic, child_rows, level_traffic
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


_PROBLEM_MEMO: dict[int, tuple[Problem, tuple[list[np.ndarray], np.ndarray, int]]] = {}


def _problem_arrays(problem: Problem) -> tuple[list[np.ndarray], np.ndarray, int]:
    """``(projections, compulsory, output index)`` of ``problem``: every tensor's
    :func:`projection_matrix`, its words in the whole problem (``tile_words`` of the bounds)
    and the output's index. Memoised on the (frozen) problem's identity; the memo holds the
    problem, so an identity cannot be reused while cached (bounded)."""
    hit = _PROBLEM_MEMO.get(id(problem))
    if hit is not None and hit[0] is problem:
        return hit[1]
    tensors = problem.tensor_names
    bounds = np.array([float(problem.bounds[d]) for d in problem.dimensions])
    projs = [projection_matrix(problem, t) for t in tensors]
    compulsory = np.zeros(len(tensors))
    for ti, proj in enumerate(projs):
        compulsory[ti] = tile_words(proj, bounds)[0]
    for a in (*projs, compulsory):
        a.flags.writeable = False  # shared through the memo
    out = (projs, compulsory, tensors.index(problem.output))
    if len(_PROBLEM_MEMO) >= 256:
        _PROBLEM_MEMO.clear()
    _PROBLEM_MEMO[id(problem)] = (problem, out)
    return out


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


def _tiles(projs: Sequence[np.ndarray], ext: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`tile_words` of every tensor (projections ``projs``) for extents ``ext`` (B, L+1,
    D), the spans of all tensors' ranks in one product (integer arithmetic, exact: the same
    whatever order the sums run in, so the rows are multiplied as one (B·(L+1), D) matrix)."""
    n_d = ext.shape[-1]
    flat = ext.reshape(-1, n_d) - 1.0
    spans = (flat @ np.concatenate(projs).T).reshape(*ext.shape[:-1], -1)
    spans += 1.0
    out = []
    lo = 0
    for p in projs:  # each tensor's ranks' columns
        sp = spans[..., lo : lo + p.shape[0]]
        lo += p.shape[0]
        out.append((prod_axis(sp, -1), sp))
    return out


def extents(nests: LoopNests) -> np.ndarray:
    """(B, L+1, D) extents at and below each level: ``E_l[d] = Π_{k>=l} t[k,d]·s[k,d]``;
    ``E_L = 1`` (the compute)."""
    n_b, n_l, n_d = nests.temporal.shape
    ext = np.empty((n_b, n_l + 1, n_d))
    ext[:, n_l] = 1.0
    np.multiply(nests.temporal, nests.spatial, out=ext[:, :n_l], dtype=np.float64)
    for lv in range(n_l - 2, -1, -1):  # the running product, inner to outer (as cumprod)
        np.multiply(ext[:, lv + 1], ext[:, lv], out=ext[:, lv])
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
    projs, compulsory, out_idx = _problem_arrays(problem)
    ext = extents(nests)
    t_all = prod_axis(tem.reshape(n_b, -1), 1)  # = tem.prod(axis=(1, 2))
    mac_units = prod_axis(spa.reshape(n_b, -1), 1)
    instances = np.ones((n_b, n_l))
    fan = prod_axis(spa, 2)
    for lv in range(1, n_l):  # the running product, outer to inner (as cumprod)
        if lv == 1:
            instances[:, 1] = fan[:, 0]
        else:
            np.multiply(instances[:, lv - 1], fan[:, lv - 1], out=instances[:, lv])
    keep = nests.keep.copy()
    keep[:, 0, :] = True
    if stream is None and nests.stream is not None:
        stream = nests.stream
    streamed = _stream_mask(stream if conv.counts_streams else None, keep)
    tiles = _tiles(projs, ext)  # per tensor (B, L+1), (B, L+1, R)
    fans, lvs, f_all = _traffic(nests, ext, projs, tiles, fanout_x)
    # every tensor's columns at once (B, L, T): elementwise, the same per tensor
    w_s, c_s, d_s, l_s = (stack_last([lv[j] for lv in lvs]) for j in range(4))
    # (F and instances repeated along T: a trailing axis of 1 would make every step broadcast)
    n_t = len(projs)
    cols = _collapse(
        (w_s, c_s, d_s, l_s),
        keep,
        f_all[..., None].repeat(n_t, axis=2),
        instances[..., None].repeat(n_t, axis=2),
    )
    tw = stack_last([t[0] for t in tiles])  # (B, L+1, T)
    groups = stack_last([fan[1] for fan in fans])
    # the row's own tensor size (its outermost tile: rows of one batch may be layers of
    # different bounds sharing one structure)
    below = np.empty(groups.shape)  # Π_{k<l} G_k, the running product (as cumprod)
    below[:, 0] = 1.0
    for lv in range(1, n_l):
        if lv == 1:
            below[:, 1] = groups[:, 0]
        else:
            np.multiply(below[:, lv - 1], groups[:, lv - 1], out=below[:, lv])
    part = tw[:, :1].repeat(n_l, axis=1)
    part /= below
    is_out = np.zeros(len(projs), dtype=bool)
    is_out[out_idx] = True
    reads, fills, updates, distinct = _assign(cols, part, keep, streamed, is_out, first_fill)
    return DenseCounts(
        tile=tw[:, :n_l],
        reads=reads,
        fills=fills,
        updates=updates,
        instances=instances,
        temporal_iterations=t_all,
        mac_units=mac_units,
        macs=t_all * mac_units,
        compulsory=compulsory,
        distinct=distinct,
        held=keep,
        streamed=streamed,
        entering=w_s,
        groups=groups,
        child=cols[3],
    )


def _traffic(
    nests: LoopNests,
    ext: np.ndarray,
    projs: Sequence[np.ndarray],
    tiles: Sequence[tuple[np.ndarray, np.ndarray]],
    fanout_x: np.ndarray | None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[Traffic], np.ndarray]:
    """``(fans, traffic, F)``: per tensor ``(F, G)`` (B, L) of every level's fan-out
    (:func:`~testy_model.model.steps.spatial_structure`) and
    :func:`~testy_model.model.traffic.level_traffic` (those with the same number of ranks
    stacked, on each child level's distinct rows, shared by the tensors), and F (B, L)."""
    names = ("no_reuse", "no_link", "no_multicast")
    given = any(getattr(nests, k) is not None for k in names)
    no_reuse, no_link, no_mc = (nests.mask(k) for k in names)
    base = _fan_base(nests, ext, fanout_x)
    fans = [  # (F, G) per tensor (radices, offsets, rows: base, per level)
        spatial_structure(
            p, nests, ext, fanout_x, no_mc[:, :, ti] if given else None, base, offsets=False
        )[:2]
        for ti, p in enumerate(projs)
    ]
    masks = (
        [(no_reuse[:, :, ti], no_link[:, :, ti], no_mc[:, :, ti]) for ti in range(len(projs))]
        if given
        else None
    )
    children = child_rows(nests, ext)
    out: list[Traffic | None] = [None] * len(projs)
    for r in sorted({p.shape[0] for p in projs}):
        ids = [i for i, p in enumerate(projs) if p.shape[0] == r]
        res = level_traffic(
            [projs[i] for i in ids],
            [tiles[i][0] for i in ids],
            [tiles[i][1] for i in ids],
            [fans[i] for i in ids],
            None if masks is None else [masks[i] for i in ids],
            children,
            base,
        )
        for i, lv in zip(ids, res, strict=True):
            out[i] = lv
    return fans, [lv for lv in out if lv is not None], base.f_all


def _collapse(
    lv: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    held: np.ndarray,
    f_all: np.ndarray,
    instances: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Bypass (``MaskTiles``) and peer accesses (``ComputePeerAccesses``) of one tensor, or of
    several along a trailing axis (arrays (B, L, ...), ``f_all`` and ``instances``
    broadcasting).

    A bypassed level m promotes its children's demand to its parent k = m−1 (inner to outer):
    ``content_k ← content_k · content_m · F_k / weighted_k``, and k's link transfers are dropped.
    A holder c filled over links gets ``peer_c = links_{c−1} / instances_c`` extra reads and
    fills (Timeloop divides the per-parent-instance link count by all instances of c).
    ``share_c = weighted_{c−1} / F_{c−1}`` is what the parent delivers to one instance of c.
    Returns ``(content, share, peer, child)`` (B, L, ...); ``child`` = the next holder below
    (L = compute)."""
    content, links = lv[1].copy(), lv[3].copy()  # (updated below; W and weighted are not)
    weighted = lv[2]
    n_l = content.shape[1]
    share = np.zeros(content.shape)
    np.divide(weighted[:, :-1], f_all[:, :-1], out=share[:, 1:])
    child = np.full(content.shape, n_l, dtype=np.int64)
    nearest = np.full(content[:, 0].shape, n_l, dtype=np.int64)
    masked_all = ~held
    # every level kept: nothing is promoted (the same arrays; the loop below only finds holders)
    promote = bool(masked_all[:, 1:].any())
    w_safe = np.where(weighted > 0, weighted, 1.0) if promote else weighted
    for m in range(n_l - 1, 0, -1):
        child[:, m] = nearest
        if promote:
            masked = masked_all[:, m]
            scale = content[:, m] * f_all[:, m - 1] / w_safe[:, m - 1]
            # (×1 where kept: x·1 is x, bit for bit)
            content[:, m - 1] *= np.where(masked, scale, 1.0)
            np.copyto(links[:, m - 1], 0.0, where=masked)
        np.copyto(nearest, m, where=held[:, m])
    child[:, 0] = nearest
    peer = np.zeros(content.shape)
    np.divide(links[:, :-1], instances[:, 1:], out=peer[:, 1:])
    return content, share, peer, child


def _assign(
    cols: tuple[np.ndarray, ...],
    part: np.ndarray,
    held: np.ndarray,
    streamed: np.ndarray,
    is_out: np.ndarray,
    first_fill: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reads, fills, updates and partition sizes (B, L, T) of the tensors from the collapsed
    columns (module rules 4–6; ``ComputeReadUpdateReductionAccesses_Legacy``); ``is_out``
    (T,) marks the output (read-write) tensor. Elementwise: the inputs' rule is evaluated on
    every column, the output's on its own column, which it replaces."""
    content, share, peer, _ = cols
    any_stream = bool(streamed.any())
    on = held | streamed if any_stream else held
    o = np.flatnonzero(is_out)  # the output's column: its rules replace the inputs' there
    # inputs: reads = content + peer, fills = share + peer
    cp = content + peer
    rd = cp.round()
    fl = share + peer
    # outputs: updates = content, reads = content + peer − partition, fills likewise
    upd_o = content[..., o].round()
    rd[..., o] = (cp[..., o] - part[..., o]).round()
    if not first_fill:
        fl[..., o] = (fl[..., o] - part[..., o]).round()
    reads = np.where(on, rd, 0.0)
    updates = np.zeros(rd.shape)
    updates[..., o] = np.where(on[..., o], upd_o, 0.0)
    if any_stream:  # a streamed level is filled with what it passes on: the inputs' reads
        fill_stream = rd.copy()  # (their columns of rd are the inputs' reads), the updates
        fill_stream[..., o] = upd_o
        fills = np.where(held, fl, np.where(streamed, fill_stream, 0.0))
    else:  # nothing streamed: the inner choice is 0 everywhere
        fills = np.where(held, fl, 0.0)
    fills[:, 0] = 0.0
    dist = np.where(on, part, 0.0)
    return reads, fills, updates, dist
