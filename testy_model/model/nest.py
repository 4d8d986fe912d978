"""Batched loop nests: B candidate mappings of one problem as numpy arrays.

A :class:`LoopNests` holds, for one problem with D dimensions (``problem.dimensions`` order),
L storage levels (architecture order, 0 = outermost/DRAM) and T tensors (``problem.data_spaces``
order), batched over B mappings:

- ``temporal`` int64 (B, L, D): temporal factor of dimension d at level l;
- ``spatial``  int64 (B, L, D): spatial factor of d at level l (over the fan-out *below* l);
- ``order``    int64 (B, L, D): position of d among level l's temporal loops, 0 = innermost;
- ``keep``     bool  (B, L, T): level l holds tensor t (level 0 keeps everything);
- ``spatial_order`` int64 (B, L, D), optional: position of d among level l's spatial loops,
  0 = innermost (default: problem order);
- ``split`` int64 (B, L), optional: level l's spatial loops at positions ``< split`` run along
  the mesh's X axis, the others along Y (default: all X, Timeloop's default);
- ``stream``, ``no_link``, ``no_multicast``, ``no_reuse`` bool (B, L, T), optional: the
  mapping's ``stream:`` lists and Timeloop's ``no_link_transfer``,
  ``no_multicast_no_reduction`` and ``no_temporal_reuse`` directives per level and tensor
  (default: none).

Loop-nest convention (Timeloop's): at each level the temporal loops sit outside that level's
spatial loops, which sit outside the next inner level's loops. A tile at level l spans the product
of the temporal and spatial factors at and below l.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testy_model.errors import MappingError
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import LevelMapping, Mapping
from testy_model.spec.workload import Problem

_MASKS = ("stream", "no_link", "no_multicast", "no_reuse")


@dataclass(frozen=True)
class LoopNests:
    """B loop nests of one problem on one level structure (see module docstring for shapes)."""

    temporal: np.ndarray
    spatial: np.ndarray
    order: np.ndarray
    keep: np.ndarray
    spatial_order: np.ndarray | None = None
    split: np.ndarray | None = None
    stream: np.ndarray | None = None
    no_link: np.ndarray | None = None
    no_multicast: np.ndarray | None = None
    no_reuse: np.ndarray | None = None

    def __post_init__(self) -> None:
        b, n_l, d = self.temporal.shape
        if self.spatial_order is not None and self.spatial_order.shape != (b, n_l, d):
            raise MappingError(
                f"loop nests: spatial_order has shape {self.spatial_order.shape}, expected "
                f"{(b, n_l, d)}"
            )
        if self.split is not None and self.split.shape != (b, n_l):
            raise MappingError(
                f"loop nests: split has shape {self.split.shape}, expected {(b, n_l)}"
            )
        if self.spatial.shape != (b, n_l, d) or self.order.shape != (b, n_l, d):
            raise MappingError(
                f"loop nests: temporal {self.temporal.shape}, spatial {self.spatial.shape} and "
                f"order {self.order.shape} must share the shape (B, L, D)"
            )
        if self.keep.ndim != 3 or self.keep.shape[:2] != (b, n_l):
            raise MappingError(f"loop nests: keep has shape {self.keep.shape}, expected (B, L, T)")
        for name in _MASKS:
            m = getattr(self, name)
            if m is not None and m.shape != self.keep.shape:
                raise MappingError(
                    f"loop nests: {name} has shape {m.shape}, expected {self.keep.shape}"
                )

    def mask(self, name: str) -> np.ndarray:
        """The (B, L, T) bool mask ``name`` (one of ``stream``, ``no_link``, ``no_multicast``,
        ``no_reuse``), all False when not given."""
        m = getattr(self, name)
        return np.zeros(self.keep.shape, dtype=bool) if m is None else m

    @property
    def batch(self) -> int:
        """B, the number of mappings."""
        return int(self.temporal.shape[0])

    @property
    def n_levels(self) -> int:
        """L, the number of storage levels."""
        return int(self.temporal.shape[1])

    def __len__(self) -> int:
        return self.batch

    def select(self, index: np.ndarray | slice | Sequence[int]) -> LoopNests:
        """The sub-batch at ``index`` (numpy indexing along B)."""
        return LoopNests(
            temporal=self.temporal[index],
            spatial=self.spatial[index],
            order=self.order[index],
            keep=self.keep[index],
            spatial_order=None if self.spatial_order is None else self.spatial_order[index],
            split=None if self.split is None else self.split[index],
            **{k: None if getattr(self, k) is None else getattr(self, k)[index] for k in _MASKS},
        )

    def spatial_positions(self) -> np.ndarray:
        """(B, L, D) position of each dimension among its level's spatial loops (0 = innermost):
        ``spatial_order``, or problem order when not given."""
        if self.spatial_order is not None:
            return self.spatial_order
        b, n_l, d = self.temporal.shape
        return np.broadcast_to(np.arange(d, dtype=np.int64), (b, n_l, d))

    def x_split(self) -> np.ndarray:
        """(B, L) number of leading spatial positions on the X axis (default: all of them)."""
        if self.split is not None:
            return self.split
        b, n_l, d = self.temporal.shape
        return np.full((b, n_l), d, dtype=np.int64)


def _default_keep(arch: Architecture, tensors: tuple[str, ...]) -> np.ndarray:
    """(L, T) bool: what each level keeps when the mapping leaves it to the architecture."""
    keep = np.array([[lvl.keeps(t) for t in tensors] for lvl in arch.levels], dtype=bool)
    keep[0, :] = True
    return keep


def unit_nests(n_levels: int, n_dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(temporal, spatial, order)`` of one (B = 1) nest with every factor 1 and the
    dimensions in problem order (shapes (1, L, D), int64), to be filled in by a converter."""
    temporal = np.ones((1, n_levels, n_dims), dtype=np.int64)
    spatial = np.ones((1, n_levels, n_dims), dtype=np.int64)
    order = np.tile(np.arange(n_dims, dtype=np.int64), (1, n_levels, 1))
    return temporal, spatial, order


_MEMO: dict[tuple[int, int, int], tuple[Mapping, Architecture, Problem, LoopNests]] = {}
_MEMO_MAX = 4096


def nests_from_mapping(mapping: Mapping, arch: Architecture, problem: Problem) -> LoopNests:
    """One mapping as a batch of B = 1 loop nests.

    Memoised on the identity of the three (frozen) specs, so re-evaluating fixed mappings, as
    sweeps and plan searches do, skips the conversion; the memo holds references to its keys'
    objects, so an identity cannot be reused by another object while it is cached.
    """
    key = (id(mapping), id(arch), id(problem))
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is mapping and hit[1] is arch and hit[2] is problem:
        return hit[3]
    nests = _nests_from_mapping(mapping, arch, problem)
    for arr in (
        nests.temporal,
        nests.spatial,
        nests.order,
        nests.keep,
        nests.spatial_order,
        *(getattr(nests, k) for k in _MASKS),
    ):
        if arr is not None:
            arr.flags.writeable = False  # shared through the memo
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.clear()
    _MEMO[key] = (mapping, arch, problem, nests)
    return nests


def _nests_from_mapping(mapping: Mapping, arch: Architecture, problem: Problem) -> LoopNests:
    """Build the B = 1 loop nests of ``mapping`` (see :func:`nests_from_mapping`).

    Levels the mapping does not mention get factor 1 everywhere and the architecture's keep set;
    dimensions missing from a permutation are appended outermost in problem order (Timeloop
    v3.0.3's ``src/mapping/parser.cpp``: "padding with arbitrary order"). Raises
    :class:`MappingError` naming the level or dimension when the mapping refers to unknown ones.
    """
    dims = problem.dimensions
    dim_index = {d: i for i, d in enumerate(dims)}
    names = arch.level_names
    tensors = problem.tensor_names
    n_l, n_d = len(names), len(dims)
    temporal, spatial, order = unit_nests(n_l, n_d)
    sorder = order.copy()
    split = np.full((1, n_l), n_d, dtype=np.int64)
    keep = _default_keep(arch, tensors)[None].copy()
    masks = {k: np.zeros_like(keep) for k in _MASKS}
    where = f" ({mapping.source})" if mapping.source else ""
    for lm in mapping.levels:
        if lm.target not in names:
            raise MappingError(
                f"mapping{where} targets unknown level {lm.target!r} (expected one of "
                f"{list(names)})"
            )
        li = names.index(lm.target)
        for kind, factors in (("temporal", lm.temporal), ("spatial", lm.spatial)):
            for d, f in factors.items():
                if d not in dim_index:
                    raise MappingError(
                        f"mapping{where}: level {lm.target!r} {kind} factor for unknown dimension "
                        f"{d!r} (expected one of {list(dims)})"
                    )
                if int(f) < 1:
                    raise MappingError(
                        f"mapping{where}: level {lm.target!r} {kind} factor {d}={f} (expected >= 1)"
                    )
                (temporal if kind == "temporal" else spatial)[0, li, dim_index[d]] = int(f)
        perm = [d for d in lm.temporal_permutation if d in dim_index]
        unknown = [d for d in lm.temporal_permutation if d not in dim_index]
        if unknown:
            raise MappingError(
                f"mapping{where}: level {lm.target!r} permutation names unknown dimensions "
                f"{unknown} (expected some of {list(dims)})"
            )
        missing = [d for d in dims if d not in perm]
        for pos, d in enumerate(perm + missing):
            order[0, li, dim_index[d]] = pos
        sperm = [d for d in lm.spatial_permutation if d in dim_index]
        for pos, d in enumerate(sperm + [d for d in dims if d not in sperm]):
            sorder[0, li, dim_index[d]] = pos
        if lm.split is not None:
            split[0, li] = lm.split
        if li > 0:
            for ti, t in enumerate(tensors):
                k = lm.keeps(t)
                if k is not None:
                    keep[0, li, ti] = k
        for name, listed in (
            ("stream", lm.stream),
            ("no_link", lm.no_link_transfer),
            ("no_multicast", lm.no_multicast),
            ("no_reuse", lm.no_temporal_reuse),
        ):
            for t in listed:
                if t in tensors:
                    masks[name][0, li, tensors.index(t)] = True
    return LoopNests(
        temporal=temporal,
        spatial=spatial,
        order=order,
        keep=keep,
        spatial_order=sorder,
        split=split,
        **{k: (v if v.any() else None) for k, v in masks.items()},
    )


def mapping_from_nests(nests: LoopNests, i: int, arch: Architecture, problem: Problem) -> Mapping:
    """Mapping ``i`` of ``nests`` as a :class:`Mapping` (inverse of ``nests_from_mapping``)."""
    dims = problem.dimensions
    tensors = problem.tensor_names
    levels = []
    for li, lvl in enumerate(arch.levels):
        t = nests.temporal[i, li]
        s = nests.spatial[i, li]
        o = nests.order[i, li]
        perm = tuple(dims[j] for j in np.argsort(o, kind="stable"))
        keep = tuple(tn for ti, tn in enumerate(tensors) if nests.keep[i, li, ti])
        so = nests.spatial_positions()[i, li]
        sperm = [j for j in np.argsort(so, kind="stable") if s[j] != 1]
        n_x = int(nests.x_split()[i, li])
        split = sum(1 for j in sperm if so[j] < n_x)
        levels.append(
            LevelMapping(
                target=lvl.name,
                temporal={d: int(t[j]) for j, d in enumerate(dims)},
                temporal_permutation=perm,
                spatial={d: int(s[j]) for j, d in enumerate(dims) if s[j] != 1},
                spatial_permutation=tuple(dims[j] for j in sperm),
                split=split if sperm else None,
                keep=keep,
                bypass=tuple(tn for tn in tensors if tn not in keep),
            )
        )
    return Mapping(levels=tuple(levels))


def stack_nests(nests: Sequence[LoopNests]) -> LoopNests:
    """Concatenate batches of loop nests along B (they must share L, D and T)."""
    if not nests:
        raise MappingError("stack_nests needs at least one LoopNests")
    try:
        explicit = any(n.spatial_order is not None or n.split is not None for n in nests)
        return LoopNests(
            temporal=np.concatenate([n.temporal for n in nests]),
            spatial=np.concatenate([n.spatial for n in nests]),
            order=np.concatenate([n.order for n in nests]),
            keep=np.concatenate([n.keep for n in nests]),
            spatial_order=(
                np.concatenate([n.spatial_positions() for n in nests]) if explicit else None
            ),
            split=np.concatenate([n.x_split() for n in nests]) if explicit else None,
            **{
                k: (
                    np.concatenate([n.mask(k) for n in nests])
                    if any(getattr(n, k) is not None for n in nests)
                    else None
                )
                for k in _MASKS
            },
        )
    except ValueError as err:
        raise MappingError(f"stack_nests: batches differ in shape ({err})") from err
