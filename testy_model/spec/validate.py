"""Check a :class:`Mapping` against an :class:`Architecture` and a :class:`Problem`.

Rules (each violation is a :class:`MappingError` naming the level and the numbers):

1. Targets are architecture levels; factor dimensions are problem dimensions.
2. Factors multiply out: for every dimension d, Π_levels temporal(d)·spatial(d) = bound(d).
3. Spatial fan-out: Π effective spatial factors at level i <= ``arch.fanout(i)``; when the
   mapping gives a ``split`` and the mesh is known, the X product (dimensions [0, split) of the
   spatial permutation) <= fan-out in X = mesh_x(i+1)/mesh_x(i), and the Y product <= fan-out /
   that. The effective factor of dimension d is the mapping's factor f, except where the engine
   skips the zeros of a structured (N:M) operand t spatially along d (d = t's pattern axis, the
   reduction dimension indexing t): then only the non-zeros of t occupy instances, and the
   effective factor is the most non-zeros an aligned f-run of an n:m tensor can hold,
   ``NMPattern.worst_case_per_block(f)`` (= f·n/m when m divides f; e.g. K32 of a 2:4 operand
   needs 16 instances: Sparseloop's STC map.yaml spreads K = 32 over 16 PEs). Spatial skipping
   applies (a) at every level when ``arch.sparsity`` lists, for that operand (A = the weight,
   B = the activation), a pattern containing n:m with ``action: skip``; (b) at level i when
   ``sparse_opts`` (Sparseloop ``sparse_optimizations``) has a ``skipping-spatial`` action there
   conditioned on t.
4. Keep/bypass: a tensor the mapping keeps at a level the architecture bypasses (or does not list
   in its ``keep``) is an error; a tensor both kept and bypassed is an error.
5. Capacity: the tile of each kept tensor at level i spans, per dimension, the product of the
   temporal and spatial factors at levels i, i+1, ... (at and below i); its size in words is
   ``Problem.tile_size``. The sum over kept tensors must be <= ``capacity_words``. A tensor with a
   stated density is stored compressed, as Sparseloop does: ceil(words · d) with d the N:M
   density n/m, the fixed-structured or hypergeometric density, or the expected Bernoulli
   density; dense and
   measured (``tensor``) operands count at full size. Metadata lives in separate metadata
   storage and is not counted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from testy_model.errors import MappingError
from testy_model.spec.arch import Architecture, SparsitySupport, StorageLevel
from testy_model.spec.mapping import LevelMapping, Mapping
from testy_model.spec.workload import Problem

if TYPE_CHECKING:
    from testy_model.spec.sparseloop import SparseOptimizations


class HasSparsity(Protocol):
    """What rule 3 reads of an engine: its operands' sparsity support (an
    :class:`Architecture`, or the cost model's stacked ``ArchArrays``)."""

    @property
    def sparsity(self) -> SparsitySupport: ...


def _err(mapping: Mapping, problem: str, level: str | None = None) -> MappingError:
    """A MappingError at the entry that defines ``level`` (file, line, key path when known)."""
    loc = mapping.locations.get(level) if level is not None else None
    if loc is None and level is None and mapping.locations:
        loc = next(iter(mapping.locations.values()))
    line, key = loc if loc is not None else (None, None)
    return MappingError(problem, file=mapping.source, line=line, key_path=key)


def kept_tensors(mapping: Mapping, arch: Architecture, problem: Problem, index: int) -> list[str]:
    """Tensors level ``index`` holds: the mapping's keep list if given, else those the
    architecture lets it keep, minus the mapping's bypass list."""
    lvl = arch.levels[index]
    lm = mapping.level(lvl.name) if lvl.name in {x.target for x in mapping.levels} else None
    out = []
    for t in problem.tensor_names:
        says = lm.keeps(t) if lm is not None else None
        if says is None:
            says = lvl.keeps(t)
        if says:
            out.append(t)
    return out


def tile_extents(
    mapping: Mapping, arch: Architecture, problem: Problem, index: int
) -> dict[str, int]:
    """Per-dimension tile extent at level ``index``: Π over levels >= index of temporal·spatial."""
    below = {lm.target: lm for lm in mapping.levels}
    ext = {d: 1 for d in problem.dimensions}
    for lvl in arch.levels[index:]:
        lm = below.get(lvl.name)
        if lm is None:
            continue
        for d in problem.dimensions:
            ext[d] *= lm.temporal_factor(d) * lm.spatial_factor(d)
    return ext


def tile_words(problem: Problem, tensor: str, extents: dict[str, int]) -> int:
    """Words of ``tensor`` in a tile: ``tile_size`` x density, rounded up (see module doc)."""
    size = problem.tile_size(tensor, extents)
    dens = problem.density(tensor)
    if dens.kind in ("nm", "hypergeometric", "bernoulli", "fixed_structured"):
        return math.ceil(size * dens.value)
    return size


def _skipped_axes(
    arch: HasSparsity,
    problem: Problem,
    level: str,
    sparse_opts: SparseOptimizations | None,
) -> dict[str, tuple[int, int]]:
    """Dimension -> (n, m) of a structured operand whose zeros the engine skips spatially along
    that dimension at ``level`` (module docstring, rule 3)."""
    out: dict[str, tuple[int, int]] = {}
    weight = problem.weight or problem.inputs[0]
    spatial_conds: set[str] = set()
    if sparse_opts is not None:
        for act in sparse_opts.target(level).actions:
            if act.type == "skipping-spatial":
                spatial_conds.update(act.condition_on or (act.target,))
    for t in problem.inputs:
        dens = problem.density(t)
        pat = dens.nm_pattern
        if pat is None or pat.is_dense:
            continue
        sup = arch.sparsity.A if t == weight else arch.sparsity.B
        by_arch = sup.action == "skip" and (
            any(pat.fits(hw) for hw in sup.patterns)
            or any(pat.fits(h.fine) for h in sup.hierarchical)
        )
        if not (by_arch or t in spatial_conds):
            continue
        axes = [
            d
            for d in problem.dimensions
            if d in problem.relevant(t) and d in problem.reduction_dims()
        ]
        if axes:
            out[axes[0]] = (pat.n, pat.m)
    return out


def effective_spatial(
    mapping: Mapping,
    arch: Architecture,
    problem: Problem,
    level: str,
    sparse_opts: SparseOptimizations | None = None,
) -> dict[str, int]:
    """Effective spatial factor of every dimension the mapping spreads at ``level`` (instances;
    module docstring, rule 3)."""
    lm = next((x for x in mapping.levels if x.target == level), None)
    if lm is None:
        return {}
    skip = _skipped_axes(arch, problem, level, sparse_opts)
    out = {}
    for d, f in lm.spatial.items():
        out[d] = _effective_factor(int(f), skip[d]) if d in skip else int(f)
    return out


def _effective_factor(factor: int, skipped: tuple[int, int]) -> int:
    """Instances a spatial factor occupies along an axis where the zeros of an n:m operand are
    skipped (rule 3): ``NMPattern(n, m).worst_case_per_block(factor)``."""
    from testy_model.tasd.pattern import NMPattern

    return NMPattern(*skipped).worst_case_per_block(factor)


def effective_spatial_factors(
    spatial: np.ndarray,
    arch: HasSparsity,
    problem: Problem,
    levels: Sequence[str],
    sparse_opts: SparseOptimizations | None = None,
) -> np.ndarray:
    """Rule 3 on arrays: ``spatial`` (..., L, D) factors (levels in ``levels`` order,
    dimensions in ``problem.dimensions`` order) -> the effective factors, as
    :func:`effective_spatial` gives them for one mapping (the cost model's fan-out check calls
    this, so both apply one rule). ``arch`` needs only its ``sparsity``. Instances."""
    out = np.array(spatial, dtype=np.int64, copy=True)
    dims = list(problem.dimensions)
    for li, level in enumerate(levels):
        for d, nm in _skipped_axes(arch, problem, level, sparse_opts).items():
            col = out[..., li, dims.index(d)]
            vals, inv = np.unique(col, return_inverse=True)
            eff = np.array([_effective_factor(int(v), nm) for v in vals], dtype=np.int64)
            out[..., li, dims.index(d)] = eff[inv].reshape(col.shape)
    return out


def validate_mapping(
    mapping: Mapping,
    arch: Architecture,
    problem: Problem,
    sparse_opts: SparseOptimizations | None = None,
) -> None:
    """Raise :class:`MappingError` when ``mapping`` does not fit ``arch`` and ``problem``
    (``sparse_opts``: Sparseloop optimizations whose spatial skipping the fan-out check honours).
    The rules of the module docstring are checked in order: names (1) and products (2) over the
    whole mapping, then level by level, outermost first, fan-out (3), keep/bypass (4) and
    capacity (5); the first violation is raised.
    """
    for lm in mapping.levels:
        _check_names(mapping, arch, problem, lm)
    _check_products(mapping, problem)
    by_name = {lm.target: lm for lm in mapping.levels}
    for i, lvl in enumerate(arch.levels):
        lvl_map = by_name.get(lvl.name)
        if lvl_map is not None:
            _check_fanout(mapping, arch, problem, i, lvl_map, sparse_opts)
            _check_keep(mapping, lvl, lvl_map)
        _check_capacity(mapping, arch, problem, i)


def _check_names(mapping: Mapping, arch: Architecture, problem: Problem, lm: LevelMapping) -> None:
    """Rule 1 for one mapping level: its target is a level, its dimensions and tensors exist,
    and its factors are >= 1."""
    names = arch.level_names
    if lm.target not in names:
        raise _err(
            mapping,
            f"mapping level {lm.target!r} is not in the architecture (levels are {list(names)})",
            lm.target,
        )
    dims = set(problem.dimensions)
    for d in {**lm.temporal, **lm.spatial}:
        if d not in dims:
            raise _err(
                mapping,
                f"level {lm.target!r}: unknown dimension {d!r}; the "
                f"problem's dimensions are {list(problem.dimensions)}",
                lm.target,
            )
    for kind, factors in (("temporal", lm.temporal), ("spatial", lm.spatial)):
        for d, v in factors.items():
            if v < 1:
                raise _err(
                    mapping,
                    f"level {lm.target!r}: {kind} factor {d}={v}; expected >= 1",
                    lm.target,
                )
    tensors = set(problem.tensor_names)
    for t in (*(lm.keep or ()), *lm.bypass):
        if t not in tensors:
            raise _err(
                mapping,
                f"level {lm.target!r}: unknown tensor {t!r}; tensors are "
                f"{list(problem.tensor_names)}",
                lm.target,
            )


def _check_products(mapping: Mapping, problem: Problem) -> None:
    """Rule 2: for every dimension d, Π_levels temporal(d)·spatial(d) = bound(d)."""
    for d in problem.dimensions:
        parts = [
            (lm.target, lm.temporal_factor(d) * lm.spatial_factor(d))
            for lm in mapping.levels
            if lm.temporal_factor(d) * lm.spatial_factor(d) != 1
        ]
        total = math.prod(v for _, v in parts)
        if total != problem.bounds[d]:
            detail = " x ".join(f"{n} {v}" for n, v in parts) or "no factors"
            where = parts[0][0] if parts else None
            raise _err(
                mapping,
                f"dimension {d}: factors multiply to {total} ({detail}) but "
                f"the problem bound is {problem.bounds[d]}",
                where,
            )


def _check_fanout(
    mapping: Mapping,
    arch: Architecture,
    problem: Problem,
    i: int,
    lvl_map: LevelMapping,
    sparse_opts: SparseOptimizations | None,
) -> None:
    """Rule 3 at level ``i``: Π effective spatial factors <= fan-out, and with a ``split`` on a
    known mesh, X product <= fan-out in X and Y product <= fan-out / fan-out in X."""
    if not lvl_map.spatial:
        return
    lvl = arch.levels[i]
    fan = arch.fanout(i)
    eff = effective_spatial(mapping, arch, problem, lvl.name, sparse_opts)
    used = math.prod(eff.values())
    if used > fan:
        note = (
            f" (effective {eff} after skipping structured zeros)"
            if eff != {d: int(f) for d, f in lvl_map.spatial.items()}
            else ""
        )
        raise _err(
            mapping,
            f"level {lvl.name!r}: spatial factors {lvl_map.spatial}{note} use "
            f"{used} instances but the fan-out below it is {fan}",
            lvl.name,
        )
    below_x = arch.levels[i + 1].mesh_x if i + 1 < len(arch.levels) else arch.compute.mesh_x
    if lvl_map.split is not None and below_x % lvl.mesh_x == 0:
        fan_x = below_x // lvl.mesh_x
        fan_y = max(1, fan // fan_x)
        x_dims = lvl_map.spatial_permutation[: lvl_map.split]
        x = math.prod(eff.get(d, 1) for d in x_dims)
        y = used // x
        if x > fan_x or y > fan_y:
            raise _err(
                mapping,
                f"level {lvl.name!r}: spatial split puts {x} in X and "
                f"{y} in Y but the mesh below is {fan_x} x {fan_y} (X x Y)",
                lvl.name,
            )


def _check_keep(mapping: Mapping, lvl: StorageLevel, lvl_map: LevelMapping) -> None:
    """Rule 4 at one level: kept tensors are ones the level may keep; none kept and bypassed."""
    for t in lvl_map.keep or ():
        if not lvl.keeps(t):
            raise _err(
                mapping,
                f"level {lvl.name!r}: the mapping keeps {t!r} but the "
                f"architecture bypasses it (keep={list(lvl.keep or [])}, "
                f"bypass={list(lvl.bypass)})",
                lvl.name,
            )
    both = set(lvl_map.keep or ()) & set(lvl_map.bypass)
    if both:
        raise _err(
            mapping,
            f"level {lvl.name!r}: tensors {sorted(both)} are both kept and bypassed",
            lvl.name,
        )


def _check_capacity(mapping: Mapping, arch: Architecture, problem: Problem, i: int) -> None:
    """Rule 5 at level ``i``: the kept tiles' words (compressed where a density is stated) fit
    ``capacity_words``."""
    lvl = arch.levels[i]
    cap = lvl.capacity_words
    if math.isinf(cap):
        return
    ext = tile_extents(mapping, arch, problem, i)
    kept = kept_tensors(mapping, arch, problem, i)
    sizes = {t: tile_words(problem, t, ext) for t in kept}
    need = sum(sizes.values())
    if need > cap:
        detail = ", ".join(f"{t} {w}" for t, w in sizes.items())
        raise _err(
            mapping,
            f"level {lvl.name!r}: tiles need {need} words ({detail}) but "
            f"the capacity is {cap:g} words ({lvl.depth} x {lvl.width} b / "
            f"{lvl.datawidth} b)",
            lvl.name,
        )
