"""Timeloop's complete loop nest of B mappings as flat arrays (trivial loops included).

The sparse analysis walks loops the way Timeloop's ``complete_loop_nest`` lists them
(``src/mapping/parser.cpp``): from the innermost storage level outwards, each level's spatial
loops (one per dimension, in spatial-permutation order, present only where the architecture has a
fan-out below the level) and then its temporal loops (one per dimension, in permutation order).

:class:`LoopTable` holds, for K loop slots (inner to outer):

- ``dim`` (B, K) dimension index, ``bound`` (B, K) loop bound (1 = trivial);
- ``spatial`` (K,) bool and ``level`` (K,) the storage level (our index, 0 = outermost);
- ``mold`` (B, K, D) extents of the operation-space box spanned by every loop up to and including
  slot k (Timeloop's ``maxtile_molds_high_ + 1``);
- ``x_axis`` (B, K) a spatial loop runs along the mesh's X axis (its spatial position is below
  the level's ``split``).

``level_slots(l)`` gives the slot range of level l (inner to outer inside the level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testy_model.model.nest import LoopNests


@dataclass(frozen=True)
class LoopTable:
    """Flat complete loop nest (module docstring)."""

    dim: np.ndarray
    bound: np.ndarray
    spatial: np.ndarray
    level: np.ndarray
    mold: np.ndarray
    x_axis: np.ndarray

    def level_slots(self, level: int) -> np.ndarray:
        """Slot indices of ``level``, inner to outer."""
        return np.nonzero(self.level == level)[0]

    def mold_before(self, k: int) -> np.ndarray:
        """(B, D) extents of the box spanned by the loops strictly inside slot ``k``."""
        if k == 0:
            return np.ones((self.dim.shape[0], self.mold.shape[2]))
        return self.mold[:, k - 1]


def loop_table(nests: LoopNests, arch_spatial: np.ndarray) -> LoopTable:
    """Build the :class:`LoopTable` of ``nests``; ``arch_spatial`` (L,) marks levels whose
    architecture has a fan-out below them (Timeloop adds spatial loops only there)."""
    n_b, n_l, n_d = nests.temporal.shape
    rows = np.arange(n_b)[:, None]
    dims, bounds, spatial, level, xs = [], [], [], [], []
    tpos = np.argsort(nests.order, axis=2, kind="stable")
    spos = np.argsort(nests.spatial_positions(), axis=2, kind="stable")
    split = nests.x_split()
    for lvl in range(n_l - 1, -1, -1):
        if arch_spatial[lvl]:
            d = spos[:, lvl]
            dims.append(d)
            bounds.append(nests.spatial[:, lvl][rows, d])
            xs.append(np.arange(n_d)[None, :] < split[:, lvl][:, None])
            spatial += [True] * n_d
            level += [lvl] * n_d
        d = tpos[:, lvl]
        dims.append(d)
        bounds.append(nests.temporal[:, lvl][rows, d])
        xs.append(np.zeros((n_b, n_d), bool))
        spatial += [False] * n_d
        level += [lvl] * n_d
    dim = np.concatenate(dims, axis=1)
    bound = np.concatenate(bounds, axis=1).astype(np.float64)
    onehot = dim[..., None] == np.arange(n_d)  # (B, K, D)
    mold = np.cumprod(np.where(onehot, bound[..., None], 1.0), axis=1)
    x_axis = np.concatenate(xs, axis=1)
    return LoopTable(dim, bound, np.array(spatial), np.array(level), mold, x_axis)


def instances_xy(nests: LoopNests) -> np.ndarray:
    """(B, L+1, 2) X and Y instances of every level (Π of the X / Y spatial factors of the
    levels above) and, at index L, of the compute."""
    n_b, n_l, _ = nests.temporal.shape
    pos = nests.spatial_positions()
    is_x = pos < nests.x_split()[:, :, None]
    spa = nests.spatial.astype(np.float64)
    fx = np.where(is_x, spa, 1.0).prod(axis=2)
    fy = np.where(is_x, 1.0, spa).prod(axis=2)
    out = np.ones((n_b, n_l + 1, 2))
    out[:, 1:, 0] = np.cumprod(fx, axis=1)
    out[:, 1:, 1] = np.cumprod(fy, axis=1)
    return out
