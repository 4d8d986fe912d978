"""Sparse acceleration features: the probability that an access is gated or skipped.

``src/sparse-analysis/storage-gs-analyzer.cpp`` of Timeloop v3.0.3 (``ComputeIneffectual-
ReadImpact``), per B row. A ``gating``/``skipping`` of target tensor t at level s conditioned on
tensors C acts at t's holder h (s, or the next holder above s):

1. **Target loop**: walking the loops of h's child-side levels inside h, inner to outer — with a
   child holder c: the first non-trivial loop indexing t; with the compute as child: the first
   non-trivial spatial loop of the innermost level indexing t, else its last spatial loop (a
   level without spatial loops: one value). None found: h's outermost loop.
2. **Granularity**: the box of every loop up to the target loop (one value without spatial
   loops at the compute); the condition box extends it by the non-trivial spatial loops above,
   up to h (and, above a spatial target loop, by the temporal loops not indexing t until one
   that does).
3. **Block alignment**: co-iterated dimensions (indexing t and c) of those loops are scaled so
   that the target box covers h's block: ``scale = ⌈block / (target words / Π co-iteration
   factors)⌉``; each co-iterated dimension's extent is divided by ``factor / scale``.
4. ``p = 1 − Π_c (1 − P(c's condition box is empty))``, with c's density model.

Among the ``options`` of one action the one saving the most read energy is used; two actions on
one (level, tensor) keep the larger probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from testy_model.model.density import DensityModel
from testy_model.model.loops import LoopTable
from testy_model.model.reuse import projection_matrix, tile_words
from testy_model.spec.workload import Problem


@dataclass(frozen=True)
class SafTarget:
    """Where one action acts, per row: ``level`` (B,) the target's holder (our index),
    ``child`` (B,) its next holder below (L = compute)."""

    level: np.ndarray
    child: np.ndarray


def _words(problem: Problem, tensor: str, extents: np.ndarray) -> np.ndarray:
    return tile_words(projection_matrix(problem, tensor), extents)[0]


def action_probability(
    problem: Problem,
    table: LoopTable,
    target: str,
    conditions: tuple[str, ...],
    where: SafTarget,
    block: np.ndarray,
    models: dict[str, DensityModel],
) -> np.ndarray:
    """``p`` (B,): probability that an access of ``target`` at its holder ``where.level`` is
    ineffectual (module steps 1–4). ``block`` (L,) words per vector of each level."""
    n_b = table.dim.shape[0]
    n_l = int(table.level.max()) + 1
    dims = problem.dimensions
    t_rel = np.array([d in problem.relevant(target) for d in dims])
    out = np.zeros(n_b)
    for b in range(n_b):
        h, c = int(where.level[b]), int(where.child[b])
        ext, cond_ext, tdim, spatial, loops = _target_boxes(table, b, h, c, n_l, t_rel)
        eff = 1.0
        for cname in conditions:
            c_rel = np.array([d in problem.relevant(cname) for d in dims])
            co = t_rel & c_rel
            text, cext = ext.copy(), cond_ext.copy()
            factors: dict[int, float] = {}
            skip = False
            seen = False
            for d, bound in loops:
                if spatial and seen and c_rel[d]:
                    skip = True
                    break
                if co[d]:
                    factors[d] = factors.get(d, 1.0) * bound
                    seen = True
            if skip:
                continue
            gran = float(_words(problem, target, text[None])[0])
            agg = math.prod(factors.values()) if factors else 1.0
            scale = math.ceil(block[h] / (gran / agg) - 1e-12) if gran > 0 else 1.0
            for d in sorted(factors):
                e = factors[d] / scale
                text[d] = math.ceil(text[d] / e - 1e-12)
                cext[d] = math.ceil(cext[d] / e - 1e-12)
                scale = scale / factors[d]
            if scale > 1:
                cext[tdim] *= scale
                text[tdim] *= scale
            shape = _words(problem, cname, cext[None])
            eff *= 1.0 - float(models[cname].prob_empty(shape)[0])
        out[b] = 1.0 - eff
    return out


def _target_boxes(
    table: LoopTable, b: int, h: int, c: int, n_l: int, t_rel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, bool, list[tuple[int, float]]]:
    """(target box, condition box, target loop dimension, target loop spatial, relevant loops
    as (dim, bound)) for row b, holder h, child c (module steps 1–2)."""
    n_d = table.mold.shape[2]
    levels = range(c - 1, h - 1, -1) if c < n_l else range(n_l - 1, h - 1, -1)
    found = -1
    scalar = False
    for lvl in levels:
        slots = table.level_slots(lvl)
        for j, k in enumerate(slots):
            bound, d, sp = table.bound[b, k], table.dim[b, k], table.spatial[k]
            if c < n_l:
                if bound > 1 and t_rel[d]:
                    found = k
            else:
                nxt_sp = bool(table.spatial[slots[j + 1]]) if j + 1 < len(slots) else False
                if not nxt_sp:
                    found = k
                    scalar = not sp
                elif t_rel[d] and bound > 1:
                    found = k
            if found >= 0:
                break
        if found >= 0:
            break
    if found < 0:
        found = int(table.level_slots(h)[-1])
    ext = np.ones(n_d) if scalar else table.mold[b, found].copy()
    cond = ext.copy()
    tdim = int(table.dim[b, found])
    spatial = bool(table.spatial[found])
    loops = [(tdim, float(table.bound[b, found]))]
    locate = not spatial
    for k in range(found + 1, table.dim.shape[1]):
        if table.level[k] < h:
            break
        bound, d, sp = float(table.bound[b, k]), int(table.dim[b, k]), bool(table.spatial[k])
        if bound <= 1:
            continue
        above_spatial = not locate and not sp and c < n_l and not t_rel[d]
        if sp or above_spatial:
            cond[d] *= bound
            loops.append((d, bound))
        if spatial and not sp and (c >= n_l or t_rel[d]):
            locate = True
    return ext, cond, tdim, spatial, [] if scalar else loops


@dataclass(frozen=True)
class SpatialSkip:
    """Spatial skipping, per B row: ``ratio`` (B, L+1, T) the average fraction of the children
    of level j−1 that get work (index j = the child: storage level j, or L = the compute; 1 for
    j = 0); ``p`` (B, L, T) the probability that level l's deliveries of t are skipped
    (``1 − ratio[l+1]``, where the level skips spatially); ``mask`` (B, L, T) those levels;
    ``max_instances`` (B, L+1, T) and ``max_xy`` (B, L+1, T, 2) the instances (X·Y; X and Y)
    each level needs for each tensor after the reductions."""

    ratio: np.ndarray
    p: np.ndarray
    mask: np.ndarray
    max_instances: np.ndarray
    max_xy: np.ndarray


@lru_cache(maxsize=1 << 16)
def _max_occupancy(model: DensityModel, words: float) -> float:
    """``model.max_occupancy`` of one tile of ``words`` values (memoised: a pure function of
    its arguments, asked for the same few tile sizes by every candidate of a search)."""
    return float(model.max_occupancy(np.array([words]))[0])


@lru_cache(maxsize=1 << 16)
def _prob_nonempty(model: DensityModel, words: float) -> float:
    """``1 − model.prob_empty`` of one tile of ``words`` values (memoised as above)."""
    return 1.0 - float(model.prob_empty(np.array([words]))[0])


def _fiber_elements(
    model: DensityModel, fiber_words: float, element_words: float, count: float
) -> float:
    """``min(largest occupancy of the fiber, fiber / element)`` (``GetMaxNumElementByConfidence``
    at confidence 1), per fiber of ``count`` elements."""
    top = _max_occupancy(model, fiber_words)
    return min(top, fiber_words / max(element_words, 1.0), count)


def spatial_skipping(
    problem: Problem,
    table: LoopTable,
    held: np.ndarray,
    has_md: np.ndarray,
    models: dict[str, DensityModel],
    actions: dict[int, list[tuple[str, tuple[str, ...]]]],
    inst_xy: np.ndarray,
) -> SpatialSkip:
    """Spatial skipping (``InitializeSpatialInstances``, ``CalculateSpatialOptimizationImpact``,
    ``SummarizeAndPropagateSpatialCapacityReduction`` of Timeloop v3.0.3), per row.

    A spatial fan-out of level l over a dimension indexing a tensor t kept with metadata (at l or
    the next holder above) sends work only to children whose t-slice is non-empty: the first
    such loop's element (the box inside it) is non-empty with probability ``1 − P(empty)``,
    which is the average fraction of children that get t, and each such loop of bound n needs
    only ``min(largest fiber occupancy, n)`` instances. A ``skipping-spatial`` of target T at l
    conditioned on C multiplies the conditions' fractions (with the element extended by the
    temporal loops above, up to T's holder, that do not index T, for a co-iterated dimension)
    and becomes T's fraction below l, with ``p = 1 − fraction`` of T's deliveries skipped. When a
    level needs fewer instances, its fraction multiplies into the deeper levels' down to the
    next level with its own reduction. ``actions``: level -> [(target, conditions)];
    ``inst_xy`` (B, L+1, 2) the X and Y instances of each level and of the compute (index L).
    """
    n_b = table.dim.shape[0]
    n_l, n_t = has_md.shape
    tensors = problem.tensor_names
    rel = {t: np.asarray(projection_matrix(problem, t).any(axis=0)) for t in tensors}
    ratio = np.ones((n_b, n_l + 1, n_t))
    mask = np.zeros((n_b, n_l, n_t), bool)
    need = np.ones((n_b, n_l + 1, n_t))
    need_xy = np.ones((n_b, n_l + 1, n_t, 2))
    for b in range(n_b):
        for ti, t in enumerate(tensors):
            # child index j: storage level j, or the compute (j = n_l); ratio of j's parent fan-out
            avg = np.ones(n_l + 1)
            own = np.zeros(n_l + 1, bool)
            mx = inst_xy[b].astype(np.float64).copy()
            dm = mx.copy()
            for lvl in range(n_l - 1, -1, -1):
                h = _holder_at_or_above(held[b, :, ti], lvl)
                if h < 0 or not has_md[h, ti]:
                    continue
                eff, red = _fan_ratio(problem, table, b, lvl, t, t, rel, models[t], ti, held)
                mx[lvl + 1] *= red
                if eff is not None:
                    avg[lvl + 1] = eff
                    own[lvl + 1] = eff != 1.0
            _propagate(avg, mx, dm, own, n_l)
            for lvl, acts in actions.items():
                for target, conds in acts:
                    if target != t:
                        continue
                    agg = 1.0
                    for c in conds:
                        ci = tensors.index(c)
                        hc = _holder_at_or_above(held[b, :, ci], lvl)
                        if hc < 0 or not has_md[hc, ci]:
                            continue
                        eff, red = _fan_ratio(
                            problem, table, b, lvl, t, c, rel, models[c], ti, held
                        )
                        mx[lvl + 1] *= red
                        agg *= 1.0 if eff is None else eff
                    avg[lvl + 1] = agg
                    mask[b, lvl, ti] = True
            stop = np.zeros(n_l + 1, bool)
            stop[1:] = mask[b, :, ti]  # a child of a spatially skipping level starts anew
            _propagate(avg, mx, dm, stop, n_l)
            ratio[b, :, ti] = avg
            need[b, :, ti] = mx.prod(axis=1)
            need_xy[b, :, ti] = mx
    p = 1.0 - ratio[:, 1:, :]
    return SpatialSkip(ratio, np.where(mask, p, 0.0), mask, need, need_xy)


def _propagate(
    avg: np.ndarray,
    mx: np.ndarray,
    dm: np.ndarray,
    stop: np.ndarray,
    n_l: int,
) -> None:
    """Outer to inner: a child j whose needed X/Y instances dropped (``mx_j != dm_j``) passes
    its fraction to the deeper children until one in ``stop`` (in place; in Summarize's
    ``spatial_skip`` check the mask marks the children of a spatially skipping level)."""
    for j in range(0, n_l):
        red = mx[j] / np.maximum(dm[j], 1e-300)
        if abs(red[0] - 1.0) <= 1.001e-5 and abs(red[1] - 1.0) <= 1.001e-5:
            continue  # np.allclose(red, 1.0) on the (X, Y) pair (NaN compares False)
        dm[j] = mx[j].copy()
        cross = False
        for k in range(j + 1, n_l + 1):
            if stop[k]:
                cross = True
            if not cross:
                avg[k] *= avg[j]
            mx[k] *= red


def _holder_at_or_above(held_row: np.ndarray, lvl: int) -> int:
    """The first level at or above ``lvl`` (towards DRAM) holding the tensor, −1 if none."""
    for k in range(lvl, -1, -1):
        if held_row[k]:
            return k
    return -1


def _fan_ratio(
    problem: Problem,
    table: LoopTable,
    b: int,
    lvl: int,
    target: str,
    cond: str,
    rel: dict[str, np.ndarray],
    model: DensityModel,
    ti: int,
    held: np.ndarray,
) -> tuple[float | None, np.ndarray]:
    """For the spatial loops of ``lvl`` indexing ``cond``: (non-empty probability of the first
    one's element, or None; the (X, Y) reduction of the needed instances, Π of
    ``min(largest fiber occupancy, n) / n``)."""
    n_l = int(table.level.max()) + 1
    slots = table.level_slots(lvl)
    t_rel, c_rel = rel[target], rel[cond]
    child_exists = any(held[b, k, ti] for k in range(lvl + 1, n_l))
    eff: float | None = None
    red = np.ones(2)
    for pos, k in enumerate(slots):
        d, bound = int(table.dim[b, k]), float(table.bound[b, k])
        if not table.spatial[k] or bound <= 1 or not c_rel[d]:
            continue
        if pos == 0:
            mold = (
                np.ones(table.mold.shape[2])
                if lvl == n_l - 1
                else table.mold[b, table.level_slots(lvl + 1)[-1]].copy()
            )
        else:
            mold = table.mold[b, slots[pos - 1]].copy()
        if target != cond and child_exists and t_rel[d]:
            _extend_upward(table, b, lvl, mold, t_rel, _holder_at_or_above(held[b, :, ti], lvl))
        words = float(_words(problem, cond, mold[None])[0])
        if eff is None:
            eff = _prob_nonempty(model, words)
        fiber = mold.copy()
        fiber[d] *= bound
        fw = float(_words(problem, cond, fiber[None])[0])
        n_el = _fiber_elements(model, fw, words, bound)
        red[0 if table.x_axis[b, k] else 1] *= n_el / bound
    return eff, red


def _extend_upward(
    table: LoopTable, b: int, lvl: int, mold: np.ndarray, t_rel: np.ndarray, h: int
) -> None:
    """Multiply into ``mold`` the non-trivial temporal loops from ``lvl`` up to the target's
    holder ``h`` that do not index the target, up to the first that does (in place)."""
    for up in range(lvl, h - 1, -1):
        for u in table.level_slots(up):
            ub = float(table.bound[b, u])
            if table.spatial[u] or ub <= 1:
                continue
            if t_rel[table.dim[b, u]]:
                return
            mold[table.dim[b, u]] *= ub
