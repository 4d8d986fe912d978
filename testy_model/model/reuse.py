"""Tiles, reuse and dense traffic per level per tensor (Timeloop's conventions), batched over B.

All counts are **words of the tensor, per instance** of the level (Timeloop reports per-instance
counts); ``DenseCounts.instances`` gives how many instances of each level the mapping uses, so
totals are ``count × instances``. Counts here are for dense tensors; sparse operands scale them by
their kept density (``model.evaluate``), since every count is linear in the words moved.

Definitions (B mappings, levels l = 0 outermost .. L-1, compute below L-1):

- Extent of dimension d in the tile of level l: ``E_l[d] = Π_{k>=l} temporal[k,d]·spatial[k,d]``.
- Tile of tensor t at level l (words): ``tile = Π_ranks (Σ_{(d,c) in rank} c·(E_l[d]−1) + 1)``;
  a strided/dilated rank ``P·s + R·dl`` spans ``(P−1)·s + (R−1)·dl + 1`` rows (no im2col).
- Loops above level l: the temporal loops of levels 0..l-1, ordered outer to inner (level, then
  permutation). Let j be the innermost of them that is relevant to t with factor F_j > 1.
  Loops inside j are irrelevant: the tile stays resident across them (reuse). Each iteration of
  j moves the tile by ``step = E_{k_j+1}[d_j]·spatial[k_j,d_j]`` along d_j; on the rank holding
  d_j with coefficient c and span ``span`` the new words are ``delta = tile·min(1, c·step/span)``
  (sliding-window overlap counted as Timeloop does, e.g. the 1-row halo of a 17-row input tile
  moved 16 rows). The overlap is credited only when no loop with a bound > 1 lies inside j
  above level l: with an irrelevant loop inside j (e.g. ``DRAM: P8 Q2 M4``, M innermost) Timeloop
  refetches the whole tile at every step of j (``delta = tile``), as its reference outputs show
  (eyeriss_like / simple_output_stationary: 157,296 = 16 × 9,831 input words from DRAM).
  Every iteration of a loop outside j refetches the whole tile.
  Words entering level l:  ``W_l = (Π_{loops outside j} F) · (tile + (F_j − 1)·delta)``,
  and ``W_l = tile`` when no relevant loop lies above.
- Distinct words of t an instance of l ever holds: ``D_l = tile·Π_{relevant loops above} F``.
- Spatial: between a keeping parent p and child l, a tensor irrelevant to a spatial dimension is
  multicast (one parent read serves all children along it) and an output is reduced across it:
  ``S_rel(p, l) = Π_{k=p}^{l-1} Π_{d relevant to t} spatial[k,d]`` parent accesses per child word.
- Inputs: ``fills_l = W_l``; ``reads_p += W_l·S_rel(p,l)``.
- Outputs: the child drains every tile it leaves (``updates_p += W_l·S_rel``) and gets back a
  partial sum only for words already written once (``fills_l = W_l − D_l``;
  ``reads_p += (W_l − D_l)·S_rel``): the first write of each output needs no read, and the
  drain of a level to its parent is not counted as a read (Timeloop's counting).
- Compute: every MAC reads its operands from their innermost keeping level (no reuse inside the
  MAC): ``reads_in += T_all·S_rel(l_in, L)`` with ``T_all = Π`` of all temporal factors; the
  innermost output level gets ``updates += T_all·S_rel`` and ``reads += (T_all − D_c)·S_rel``,
  ``D_c = Π`` of the output-relevant temporal factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testy_model.model.nest import LoopNests
from testy_model.spec.workload import Problem


@dataclass(frozen=True)
class DenseCounts:
    """Dense per-instance traffic of B mappings (words of each tensor).

    Attributes:
        tile: (B, L, T) tile size of t at level l, words (whether kept or not).
        reads, fills, updates: (B, L, T) per-instance words read out (to children or compute),
            written in from the parent, and written in from below (output partial sums).
        instances: (B, L) instances of level l the mapping uses (Π spatial factors above l).
        temporal_iterations: (B,) Π of all temporal factors (the dense compute cycles).
        mac_units: (B,) Π of all spatial factors (MAC units used).
        macs: (B,) dense MACs (temporal_iterations × mac_units).
        compulsory: (T,) words of each tensor in the whole problem.
        distinct: (B, L, T) distinct words of t an instance of l ever holds (``D_l``; 0 where
            l does not hold t).
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


def projection_matrix(problem: Problem, tensor: str) -> np.ndarray:
    """(R, D) float matrix of projection coefficients of ``tensor`` (rank × dimension)."""
    dims = problem.dimensions
    ranks = problem.data_space(tensor).projection
    mat = np.zeros((len(ranks), len(dims)))
    for r, rank in enumerate(ranks):
        for d, c in rank:
            mat[r, dims.index(d)] += problem.coef(c)
    return mat


def tile_words(proj: np.ndarray, extents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tile size in words and per-rank spans for extents ``(..., D)``.

    Equation: ``span_r = Σ_d proj[r,d]·(E[d] − 1) + 1`` and ``tile = Π_r span_r``.
    Returns ``(tile (...,), spans (..., R))``.
    """
    spans = (extents - 1.0) @ proj.T + 1.0
    return spans.prod(axis=-1), spans


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
    stream: np.ndarray | None = None,
    output_first_fill: bool = False,
) -> DenseCounts:
    """Per-instance dense reads/fills/updates of every level and tensor (module docstring).

    Args:
        problem: the problem (dimensions, projections, bounds).
        nests: B loop nests.
        stream: optional (L, T) or (B, L, T) bool mask of levels that a tensor they do not keep
            passes through (a Sparseloop mapping's ``stream:`` list). Default: none (Timeloop).
            A streamed level l of tensor t, whose nearest holder below is c, counts per instance
            ``W_l = W_c·S_rel(l, c)`` words entering and ``D_l = D_c·S_rel(l, c)`` distinct
            ones; inputs: ``reads_l = fills_l = W_l``; outputs: ``updates_l = W_l``,
            ``reads_l = W_l − D_l``, ``fills_l = updates_l``. Its parent's counts are the same
            as without the stream (the level only adds its own pass-through accesses).
        output_first_fill: count the first fill of every output tile at a storage level
            (``fills_l = W_l`` instead of ``W_l − D_l``), the convention of the Sparseloop
            artifact's ``reference_stats.txt``. Default ``False``: Timeloop's counting, where
            only fills that carry partial sums back are fills.
    """
    tem = nests.temporal.astype(np.float64)
    spa = nests.spatial.astype(np.float64)
    n_b, n_l, n_d = tem.shape
    tensors = problem.tensor_names
    n_t = len(tensors)
    out_idx = tensors.index(problem.output)
    # E[:, l] = extents at and below level l; E[:, L] = 1 (the compute).
    per_level = tem * spa
    ext = np.ones((n_b, n_l + 1, n_d))
    ext[:, :n_l] = np.cumprod(per_level[:, ::-1], axis=1)[:, ::-1]
    # Loop keys: larger = more inner (level-major, then permutation position).
    level_of = np.broadcast_to(np.arange(n_l)[None, :, None], (n_b, n_l, n_d))
    keys = level_of * n_d + (n_d - 1 - nests.order)
    dim_of = np.broadcast_to(np.arange(n_d)[None, None, :], (n_b, n_l, n_d))
    flat_keys = keys.reshape(n_b, -1)
    flat_tem = tem.reshape(n_b, -1)
    flat_level = level_of.reshape(n_b, -1)
    flat_dim = dim_of.reshape(n_b, -1)
    rows = np.arange(n_b)
    # step of each loop along its dimension: E_{k+1}[d]·spatial[k,d]
    flat_step = (ext[:, 1:] * spa).reshape(n_b, -1)
    t_all = tem.prod(axis=(1, 2))
    mac_units = spa.prod(axis=(1, 2))
    spatial_tot = spa.prod(axis=2)  # (B, L)
    instances = np.ones((n_b, n_l))
    instances[:, 1:] = np.cumprod(spatial_tot[:, :-1], axis=1)

    tile = np.zeros((n_b, n_l, n_t))
    reads = np.zeros((n_b, n_l, n_t))
    fills = np.zeros((n_b, n_l, n_t))
    updates = np.zeros((n_b, n_l, n_t))
    distinct = np.zeros((n_b, n_l, n_t))
    compulsory = np.zeros(n_t)
    keep = nests.keep.copy()
    keep[:, 0, :] = True
    streamed = _stream_mask(stream, keep)
    for ti, t in enumerate(tensors):
        proj = projection_matrix(problem, t)
        rel = proj.sum(axis=0) != 0  # (D,)
        tw, spans = tile_words(proj, ext)  # (B, L+1), (B, L+1, R)
        tile[:, :, ti] = tw[:, :n_l]
        compulsory[ti] = tile_words(
            proj, np.array([float(problem.bounds[d]) for d in problem.dimensions])
        )[0]
        rel_flat = rel[flat_dim]  # (B, L*D)
        rel_spatial = np.where(rel[None, None, :], spa, 1.0).prod(axis=2)  # (B, L)
        is_out = ti == out_idx

        def entering(child: int, tw=tw, spans=spans, proj=proj, rel_flat=rel_flat):
            """(W, D) per instance of storage level ``child`` (its own loops above it)."""
            above = flat_level < child
            cand = above & rel_flat & (flat_tem > 1)
            mk = np.where(cand, flat_keys, -1)
            jpos = mk.argmax(axis=1)
            has = mk[rows, jpos] >= 0
            kj = flat_keys[rows, jpos]
            inner_or_j = above & (flat_keys >= kj[:, None])
            prod_above = np.where(above, flat_tem, 1.0).prod(axis=1)
            prod_inner = np.where(inner_or_j, flat_tem, 1.0).prod(axis=1)
            outer = prod_above / prod_inner
            fj = flat_tem[rows, jpos]
            dj = flat_dim[rows, jpos]
            coef = proj[:, dj].T  # (B, R)
            one_rank = (coef > 0).sum(axis=1) == 1
            sp = spans[:, child]  # (B, R)
            shift = (coef * flat_step[rows, jpos][:, None]).sum(axis=1)
            span_j = np.where(coef > 0, sp, 0.0).sum(axis=1)
            frac = np.where(one_rank, np.minimum(1.0, shift / np.maximum(span_j, 1.0)), 1.0)
            # Timeloop credits the halo only when j is the innermost loop above the level with
            # a bound > 1: an irrelevant loop inside j (even one that keeps the tile) loses it.
            busy_inside = (above & (flat_keys > kj[:, None]) & (flat_tem > 1)).any(axis=1)
            frac = np.where(busy_inside, 1.0, frac)
            tile_c = tw[:, child]
            w = np.where(has, outer * (tile_c + (fj - 1.0) * tile_c * frac), tile_c)
            dist = tile_c * np.where(above & rel_flat, flat_tem, 1.0).prod(axis=1)
            return w, dist

        # Walk the levels inner to outer. (w_b, d_b): words entering / distinct words per
        # instance of the nearest holder below (the compute at first); s_acc: S_rel from the
        # current level down to that holder.
        w_b = t_all.copy()
        d_b = np.where(rel[None, None, :], tem, 1.0).prod(axis=(1, 2))
        s_acc = np.ones(n_b)
        for lvl in range(n_l - 1, -1, -1):
            s_acc = s_acc * rel_spatial[:, lvl]
            kept = keep[:, lvl, ti]
            holds = kept | streamed[:, lvl, ti]
            if not holds.any():
                continue
            # this level serves its nearest holder below (reads / updates, per instance)
            served = w_b * s_acc
            if is_out:
                updates[:, lvl, ti] += np.where(holds, served, 0.0)
                reads[:, lvl, ti] += np.where(holds, (w_b - d_b) * s_acc, 0.0)
            else:
                reads[:, lvl, ti] += np.where(holds, served, 0.0)
            # ... and becomes the holder below for the levels above
            if lvl > 0:
                w_k, d_k = entering(lvl)
            else:
                w_k, d_k = tw[:, 0], tw[:, 0]
            w_l = np.where(kept, w_k, served)
            d_l = np.where(kept, d_k, d_b * s_acc)
            distinct[:, lvl, ti] = np.where(holds, d_l, 0.0)
            if lvl > 0:
                first = output_first_fill or not is_out
                f_kept = w_l if first else w_l - d_l
                fills[:, lvl, ti] += np.where(kept, f_kept, np.where(holds, served, 0.0))
            w_b = np.where(holds, w_l, w_b)
            d_b = np.where(holds, d_l, d_b)
            s_acc = np.where(holds, 1.0, s_acc)
    return DenseCounts(
        tile=tile,
        reads=reads,
        fills=fills,
        updates=updates,
        instances=instances,
        temporal_iterations=t_all,
        mac_units=mac_units,
        macs=t_all * mac_units,
        compulsory=compulsory,
        distinct=distinct,
    )
