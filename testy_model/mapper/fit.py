"""What fits: the mapper's validity masks over candidate batches (fan-out and mesh on the
instances the spatial factors occupy, factor constraints, both capacity rules), the X/Y layout
of spatial loops, and the feasibility check; arrays from :mod:`testy_model.mapper.space`."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from testy_model.errors import MappingError
from testy_model.mapper.space import (
    UNBOUNDED,
    ArchIndex,
    ProblemIndex,
    held_bits,
    held_words,
    tile_extents,
    tile_words,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Problem


def _divisors(n: int) -> set[int]:
    """Every divisor of ``n`` (trial division up to √n)."""
    out: set[int] = set()
    for i in range(1, math.isqrt(n) + 1):
        if n % i == 0:
            out.update((i, n // i))
    return out


def instance_table(
    arch: Architecture, problem: Problem, sparse_opts: Any = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """:attr:`ArchIndex.instances`: for every divisor v of a problem bound, the instances a
    spatial factor v occupies per level and dim under ``spec.validate``'s rule 3
    (``effective_spatial_factors``: along the axis of an N:M operand whose zeros the engine
    skips spatially, by its ``sparsity:`` support or a ``skipping-spatial`` of
    ``sparse_opts``, a factor f needs ``worst_case_per_block(f)`` instances: K32 of a 2:4
    operand needs 16). None where every factor is its own instance count."""
    from testy_model.spec.validate import effective_spatial_factors

    values = np.array(sorted({v for b in problem.bounds.values() for v in _divisors(b)}))
    n_l, n_d = len(arch.levels), len(problem.dimensions)
    probe = np.broadcast_to(values[:, None, None], (values.size, n_l, n_d))
    table = effective_spatial_factors(probe, arch, problem, arch.level_names, sparse_opts)
    if np.array_equal(table, probe):
        return None
    return values, np.asarray(table, dtype=np.int64)


def effective_spatial(ai: ArchIndex, spatial: np.ndarray) -> np.ndarray:
    """(..., L, D) instances the spatial factors occupy (:attr:`ArchIndex.instances`; the
    factors themselves where no zeros are skipped spatially)."""
    if ai.instances is None:
        return spatial
    values, table = ai.instances
    idx = np.searchsorted(values, spatial)
    idx = np.minimum(idx, values.size - 1)
    hit = values[idx] == spatial
    n_l, n_d = table.shape[1:]
    li = np.arange(n_l)[:, None]
    di = np.arange(n_d)[None, :]
    return np.where(hit, table[idx, li, di], spatial)


def _subsets(n: int) -> np.ndarray:
    """(2^n, n) bool: every subset of n items."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


def mesh_fits(ai: ArchIndex, spatial: np.ndarray) -> np.ndarray:
    """(B, L) bool: the spatial factors of each level can be split into an X group and a Y group
    with ``Π_X <= fan_x`` and ``Π_Y <= fan_y`` (always true where the mesh is unknown), every
    X dim allowed along X and every Y dim along Y (``ai.x_ok`` / ``ai.y_ok``).

    Fast path (levels without per-axis constraints): when ``Π_d spatial <= max(fan_x, fan_y)``
    everything fits in one group. The other (candidate, level) pairs are tested in log space
    over every subset of the dims (:func:`_mesh_split_fits`).
    """
    out = np.ones(spatial.shape[:-1], dtype=bool)
    levels, one_group, free, free_all = _mesh_constants(ai)[:4]
    if levels.size == 0:
        return out
    sp = spatial[..., levels, :]
    hard = _prod_last(sp) > one_group  # (B, l)
    if not free_all:
        hard |= ~free
    if not hard.any():
        return out
    rows, lv = np.nonzero(hard)
    sub_out = out[..., levels]
    sub_out[rows, lv] = _mesh_split_fits(ai, sp[rows, lv], lv)
    out[..., levels] = sub_out
    return out


def _mesh_split_fits(ai: ArchIndex, sp: np.ndarray, lv: np.ndarray) -> np.ndarray:
    """(n,) bool :func:`mesh_fits` of n (level, spatial factors) pairs: ``sp`` (n, D) factors,
    ``lv`` (n,) index into the mesh levels of :func:`_mesh_constants`; tested in log space over
    every subset of the dims used: ``log Π_X = subset · log f``."""
    levels, _, _, free_all, log_fx, log_fy = _mesh_constants(ai)[:6]
    dims = np.nonzero(np.any(sp > 1, axis=0))[0]
    sub = _subsets_f64(dims.size)  # (2^D', D'): only dims used somewhere
    logf = np.log(sp.take(dims, axis=1).astype(np.float64))  # (n, D')
    x = logf @ sub.T  # (n, 2^D')
    y = logf.sum(axis=-1, keepdims=True) - x
    fit = (x <= log_fx[lv][:, None]) & (y <= log_fy[lv][:, None])  # (n, 2^D')
    if not free_all:
        # a subset puts dim j in X (sub = 1) or Y (sub = 0); a used dim must be allowed there
        used = sp[:, dims] > 1  # (n, D')
        xo = ai.x_ok[levels][lv][:, dims]  # (n, D')
        yo = ai.y_ok[levels][lv][:, dims]
        fit &= (used & ~xo).astype(np.float64) @ sub.T == 0  # no used dim in X not allowed
        fit &= (used & ~yo).astype(np.float64) @ (1 - sub).T == 0  # nor in Y
    return np.any(fit, axis=-1)


@functools.lru_cache(maxsize=16)
def _subsets_f64(n: int) -> np.ndarray:
    """:func:`_subsets` as float64 (read-only)."""
    sub = _subsets(n).astype(np.float64)
    sub.setflags(write=False)
    return sub


#: :func:`_mesh_constants` per ArchIndex (keyed by identity, the index held so the key stays
#: its own; at most 64 entries)
_MESH: dict[int, tuple[ArchIndex, tuple[Any, ...]]] = {}


def _mesh_constants(ai: ArchIndex) -> tuple[Any, ...]:
    """What :func:`mesh_fits` derives from ``ai`` alone: the mesh levels (known mesh, fan-out
    above 1), their one-group limit ``max(fan_x, fan_y)``, which have no per-axis constraint
    (and whether all), and ``log max(fan, 1) + 1e-9`` along X and Y (the log-space limits);
    then whether :func:`structure_mask`'s fixed temporal, fixed spatial, bounded temporal and
    bounded spatial factors occur; and which levels have no per-axis constraint."""
    hit = _MESH.get(id(ai))
    if hit is not None and hit[0] is ai:
        return hit[1]
    levels = np.nonzero((ai.fan_x > 0) & (ai.fanout > 1))[0]
    free = np.all(ai.x_ok[levels] & ai.y_ok[levels], axis=-1)  # (l,) no per-axis constraint
    eps = 1e-9
    consts = (
        levels,
        np.maximum(ai.fan_x[levels], ai.fan_y[levels]),
        free,
        bool(free.all()),
        np.log(np.maximum(ai.fan_x[levels], 1)) + eps,
        np.log(np.maximum(ai.fan_y[levels], 1)) + eps,
        # structure_mask's factor constraints present: fixed / bounded temporal and spatial
        bool(np.any(ai.t_fix)),
        bool(np.any(ai.s_fix)),
        bool(np.any(ai.t_max != UNBOUNDED)),
        bool(np.any(ai.s_max != UNBOUNDED)),
        # (L,) levels with no per-axis constraint (mesh_layout)
        np.all(ai.x_ok & ai.y_ok, axis=-1),
    )
    if len(_MESH) >= 64:
        _MESH.clear()
    _MESH[id(ai)] = (ai, consts)
    return consts


def mesh_split(ai: ArchIndex, level: int, spatial: np.ndarray) -> tuple[list[int], list[int]]:
    """(X dims, Y dims) for one level's (D,) spatial factors: the first subset (in binary order,
    unit factors excluded) that fits the mesh and the per-axis constraints, else all in X."""
    used = [d for d in range(spatial.size) if spatial[d] > 1]
    if ai.fan_x[level] == 0:
        return used, []
    for mask in _subsets(len(used)):
        xs = [d for d, m in zip(used, mask, strict=True) if m]
        ys = [d for d, m in zip(used, mask, strict=True) if not m]
        allowed = all(ai.x_ok[level, xs]) and all(ai.y_ok[level, ys])
        if (
            allowed
            and np.prod(spatial[xs]) <= ai.fan_x[level]
            and np.prod(spatial[ys]) <= ai.fan_y[level]
        ):
            return xs, ys
    return used, []


def _unique_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct rows, inverse (B,))`` of a (B, D) array, rows in lexicographic order (as
    ``np.unique(axis=0)``); non-negative integer rows are packed into one int64 key each (mixed
    radix, same order) and sorted in 1-D, which is several times faster."""
    if x.dtype.kind in "iu" and x.size and x.min() >= 0:
        base = int(x.max()) + 1
        if base ** x.shape[1] < 2**62:
            key = x.astype(np.int64) @ (base ** np.arange(x.shape[1] - 1, -1, -1, dtype=np.int64))
            _, first, inv = np.unique(key, return_index=True, return_inverse=True)
            return x.take(first, axis=0), inv.reshape(-1)
    rows, inv = np.unique(x, axis=0, return_inverse=True)
    return rows, inv.reshape(-1)


def mesh_layout(ai: ArchIndex, spatial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The spatial loop order and X/Y split of B candidates' (B, L, D) spatial factors, as
    :func:`mesh_split` lays out each level (and ``to_mapping`` writes it): per level the X dims
    (problem order), then the Y dims, then the unit dims; ``split`` = number of X dims. The fit
    is tested on the instances the factors occupy (:func:`effective_spatial`).

    Returns ``(spatial_order, split)``: (B, L, D) int64 position of each dim among the level's
    spatial loops (0 = innermost) and (B, L) int64, as :class:`~testy_model.model.nest.LoopNests`
    takes them. Per level, over the distinct factor rows only, vectorised over every subset of
    the dims used there in :func:`mesh_split`'s binary order (a subset that names a unit dim of
    a row is skipped for that row, which keeps that order)."""
    n_d = spatial.shape[-1]
    used = spatial > 1
    in_x = used.copy()  # default (no mesh, or no subset fits): every used dim along X
    mesh = np.nonzero(ai.fan_x > 0)[0]
    levels = mesh[used[:, mesh].any(axis=(0, 2))]
    if levels.size:  # the levels with a mesh and a spatial loop, all at once
        in_x[:, levels] = _mesh_x(ai, spatial[:, levels], levels)
    # class: X dims (0), then Y dims (1), then unit dims (2); ties in problem order
    # (X dims are used: 2 - used - in_x)
    cls = 2 - used.view(np.uint8) - in_x.view(np.uint8)
    tables = _position_table(n_d)
    if tables is None:
        split = np.where(used.any(-1), in_x.sum(-1), n_d).astype(np.int64)
        return _positions(cls), split
    # each row's class pattern Σ_d class_d · 3^d, by a float matmul (exact: integers far below
    # 2^53; much faster than an integer one)
    code = (cls.reshape(-1, n_d).astype(np.float64) @ 3.0 ** np.arange(n_d)).astype(np.int64)
    code = code.reshape(cls.shape[:-1])
    return tables[0].take(code, axis=0), tables[1].take(code)


def _mesh_x(ai: ArchIndex, spatial: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(B, m, D) bool: :func:`mesh_layout`'s X dims of the (B, m, D) spatial factors of mesh
    ``levels`` (m of them): per distinct (level, factors) row, the first subset of its used
    dims in binary order that fits (else all of them). The subsets run over the dims used in
    any row, a subset that names a unit dim of a row skipped for that row, which keeps each
    row's own binary order."""
    B, m, n_d = spatial.shape
    dims = np.nonzero((spatial > 1).any(axis=(0, 1)))[0]  # the dims used somewhere
    lvl = np.broadcast_to(levels, (B, m)).reshape(-1, 1)
    pairs, inv = _unique_rows(np.concatenate([lvl, spatial[..., dims].reshape(-1, dims.size)], 1))
    lv, rows = pairs[:, 0], pairs[:, 1:]  # (U,), (U, D')
    u = rows > 1
    sub = _subsets_f64(dims.size)  # (M, D') 0/1, binary order over the used dims
    # Π_X f <= fan_x and Π_Y f <= fan_y over the used dims, in log space: integer products
    # are exact, and one above the limit is above it by a factor 1 + 1/fan, far beyond the
    # 1e-9 margin, so the comparisons decide as the products do
    logf = np.log(_instances_at(ai, lv, dims, rows).astype(np.float64))
    logf[~u] = 0.0  # unit dims stay out of both products
    x = logf @ sub.T  # (U, M)
    ok = x <= (np.log(ai.fan_x[lv]) + 1e-9)[:, None]
    ok &= logf.sum(axis=-1, keepdims=True) - x <= (np.log(ai.fan_y[lv]) + 1e-9)[:, None]
    ok &= (~u).astype(np.float64) @ sub.T == 0  # the subset names only this row's used dims
    if not _mesh_constants(ai)[10][levels].all():  # used X dims allowed along X, Y along Y
        ok &= (u & ~ai.x_ok[lv][:, dims]).astype(np.float64) @ sub.T == 0
        ok &= (u & ~ai.y_ok[lv][:, dims]).astype(np.float64) @ (1 - sub).T == 0
    chosen = (sub[np.argmax(ok, axis=-1)] > 0) & u
    layout = np.zeros((len(rows), n_d), dtype=bool)  # (U, D)
    layout[:, dims] = np.where(ok.any(-1)[:, None], chosen, u)
    return layout.take(inv, axis=0).reshape(B, m, n_d)


def _positions(cls: np.ndarray) -> np.ndarray:
    """(..., D) int64 position of each dim when a row's dims are sorted by class, ties in
    problem order (0 = first): the rank of ``class · D + d``. The ranks of a row are distinct,
    so any sort orders them the same (no stable sort needed)."""
    n_d = cls.shape[-1]
    rank = cls.astype(np.int64) * n_d + np.arange(n_d)
    return np.argsort(np.argsort(rank, axis=-1), axis=-1).astype(np.int64, copy=False)


@functools.lru_cache(maxsize=8)
def _position_table(n_d: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per class pattern of D dims (classes 0..2, at index ``Σ_d class_d · 3^d``): (3^D, D)
    :func:`_positions` and (3^D,) the split (the X dims, class 0; D where every dim is a unit
    one, class 2), both int64; None for D > 8 (read-only)."""
    if n_d > 8:
        return None
    codes = np.arange(3**n_d)
    cls = (codes[:, None] // 3 ** np.arange(n_d)) % 3
    table = _positions(cls)
    split = np.where((cls == 2).all(-1), n_d, (cls == 0).sum(-1)).astype(np.int64)
    table.setflags(write=False)
    split.setflags(write=False)
    return table, split


def _instances_at(
    ai: ArchIndex, levels: np.ndarray, dims: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """(U, D') instances of spatial factor rows of ``dims`` (the other dims' factors 1), row i
    at level ``levels[i]`` (:func:`effective_spatial`)."""
    if ai.instances is None:  # every factor is its own instance count
        return rows
    n_l, r = len(ai.names), np.arange(rows.shape[0])
    full = np.ones((rows.shape[0], n_l, ai.t_fix.shape[1]), dtype=rows.dtype)
    full[r[:, None], levels[:, None], dims[None, :]] = rows
    return effective_spatial(ai, full)[r[:, None], levels[:, None], dims[None, :]]


def structure_mask(
    pi: ProblemIndex, ai: ArchIndex, temporal: np.ndarray, spatial: np.ndarray
) -> np.ndarray:
    """(B,) bool: fan-out, mesh and factor constraints hold (everything but capacity).

    Checks: ``Π_d inst[l, d] <= fanout[l]`` and :func:`mesh_fits` on the instances the factors
    occupy (:func:`effective_spatial`), fixed factors equal and bounded factors at most their
    bound.
    """
    inst = effective_spatial(ai, spatial)
    levels, one_group, free, free_all, _, _, t_fix, s_fix, t_max, s_max = _mesh_constants(ai)[:10]
    n_inst = _prod_last(inst)  # (B, L) instances used below each level
    ok = n_inst <= ai.fanout
    if t_fix:
        ok &= np.all((ai.t_fix == 0) | (temporal == ai.t_fix), axis=-1)
    if s_fix:
        ok &= np.all((ai.s_fix == 0) | (spatial == ai.s_fix), axis=-1)
    if t_max:
        ok &= np.all(temporal <= ai.t_max, axis=-1)
    if s_max:
        ok &= np.all(spatial <= ai.s_max, axis=-1)
    ok = _all_last(ok)
    if levels.size == 0 or not ok.any():
        return ok
    # mesh_fits of the rows that fit the fan-out, from the instance counts above
    hard = n_inst[:, levels] > one_group  # (B, l)
    if not free_all:
        hard |= ~free
    hard &= ok[:, None]
    if hard.any():
        rows, lv = np.nonzero(hard)
        B, L, D = inst.shape  # the (row, level) pairs' factors, one flat gather
        sp = inst.reshape(B * L, D).take(rows * L + levels[lv], axis=0)
        fits = _mesh_split_fits(ai, sp, lv)
        ok[rows[~fits]] = False
    return ok


def capacity_mask(
    pi: ProblemIndex, ai: ArchIndex, temporal: np.ndarray, spatial: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """(B,) bool: for every level both ``Σ_t keep[l,t] · held_bits(t) <= capacity[l]`` (the
    model's test, metadata included unless the level stores it apart, then
    ``Σ_t keep·words·md_bits_t <= md_capacity[l]``) and
    ``Σ_t keep[l,t] · held_words(t) · datawidth(l,t) <= capacity[l]`` (``spec.validate``'s
    test, whole words), words from :func:`tile_words`."""
    return capacity_fits(pi, ai, tile_words(pi, tile_extents(temporal, spatial)), keep)


def capacity_fits(
    pi: ProblemIndex, ai: ArchIndex, words: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """(B,) bool: :func:`capacity_mask`'s tests for tiles of ``words`` (B, L, T) dense words
    (:func:`tile_words`), kept as ``keep`` (B, L, T)."""
    cap, whole, md_apart = _capacity_constants(pi, ai)
    ok = _sum_last(keep * held_bits(pi, ai, words)) <= cap
    if whole:
        ok &= _sum_last(keep * held_words(pi, words) * ai.datawidth) <= cap
    if md_apart and ai.md_capacity is not None:  # separate metadata storage
        md = _sum_last(keep * words * pi.md_bits)
        ok &= (ai.md_capacity == 0) | (md <= ai.md_capacity * (1 + 1e-9))
    return _all_last(ok)


#: :func:`_capacity_constants` per (ProblemIndex, ArchIndex) (keyed by identity, both held so
#: the key stays theirs; at most 64 entries)
_CAP: dict[tuple[int, int], tuple[ProblemIndex, ArchIndex, tuple[Any, ...]]] = {}


def _capacity_constants(pi: ProblemIndex, ai: ArchIndex) -> tuple[np.ndarray, bool, bool]:
    """What :func:`capacity_mask` derives from ``pi`` and ``ai`` alone: the limits
    ``capacity · (1 + 1e-9)``; whether ``spec.validate``'s whole-word test can differ from the
    model's (not where every tensor is dense, ``scale = 1``, with no metadata counted with the
    data, ``word_bits = datawidth``, and integer projection coefficients: then tiles hold whole
    words, ``held_words = words``, and both tests sum the same products); and whether a level
    stores metadata apart (``md_capacity > 0``)."""
    hit = _CAP.get((id(pi), id(ai)))
    if hit is not None and hit[0] is pi and hit[1] is ai:
        return hit[2]
    integral = all(isinstance(c, int) for ranks in pi.ranks for rank in ranks for _, c in rank)
    same = bool(np.all(pi.scale == 1.0)) and np.array_equal(ai.word_bits, ai.datawidth)
    consts = (
        ai.capacity * (1 + 1e-9),
        not (integral and same),
        ai.md_capacity is not None and bool(np.any(ai.md_capacity > 0)),
    )
    if len(_CAP) >= 64:
        _CAP.clear()
    _CAP[(id(pi), id(ai))] = (pi, ai, consts)
    return consts


def _sum_last(x: np.ndarray) -> np.ndarray:
    """``np.sum(x, axis=-1)`` of a float array with a short last axis, as left-to-right adds
    (``((x0 + x1) + x2) + …``, the order numpy's reduction takes on so few items; one
    elementwise add per item instead of a reduction over a short axis)."""
    n = x.shape[-1]
    if n == 0 or n > 8:
        return np.sum(x, axis=-1)
    out = x[..., 0].copy()
    for i in range(1, n):
        out += x[..., i]
    return out


def _prod_last(x: np.ndarray) -> np.ndarray:
    """``np.prod(x, axis=-1)`` of an integer array with a short last axis, as elementwise
    products of int64 (the same wrapping arithmetic, so the same value in any order)."""
    n = x.shape[-1]
    if n == 0 or n > 8 or x.dtype != np.int64:
        return np.prod(x, axis=-1)
    out = x[..., 0].copy()
    for i in range(1, n):
        out *= x[..., i]
    return out


def _all_last(x: np.ndarray) -> np.ndarray:
    """``np.all(x, axis=-1)`` of a bool array with a short last axis, as elementwise ANDs."""
    n = x.shape[-1]
    if n == 0 or n > 8:
        return np.all(x, axis=-1)
    out = x[..., 0].copy()
    for i in range(1, n):
        out &= x[..., i]
    return out


def valid_mask(
    pi: ProblemIndex, ai: ArchIndex, temporal: np.ndarray, spatial: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """(B,) bool: :func:`structure_mask` and :func:`capacity_mask` both hold."""
    ok = structure_mask(pi, ai, temporal, spatial)
    if ok.any():
        rows = np.nonzero(ok)[0]
        ok[rows] = capacity_mask(pi, ai, temporal[rows], spatial[rows], keep[rows])
    return ok


def check_feasible(pi: ProblemIndex, ai: ArchIndex, arch: Architecture) -> None:
    """Raise :class:`MappingError` when even the smallest tile (one word of each tensor a level
    must keep, compressed for sparse tensors) overflows a level: then no mapping exists (every
    tile holds at least one word of each tensor it keeps)."""
    need = np.sum(ai.keep_must * ai.word_bits, axis=-1)
    bad = np.nonzero(need > ai.capacity * (1 + 1e-9))[0]
    if bad.size:
        i = int(bad[0])
        kept = [t for t, k in zip(pi.tensors, ai.keep_must[i], strict=True) if k]
        raise MappingError(
            f"no valid mapping: level {ai.names[i]!r} holds {ai.capacity[i]:g} bits but must "
            f"keep at least one word of each of {kept} ({need[i]:g} bits); expected a larger "
            "depth/width or a bypass of some tensor there",
            file=arch.source,
            key_path=f"levels[{ai.names[i]}]",
        )
