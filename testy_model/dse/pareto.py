"""Pareto front (non-dominated set) of result rows.

Definition (all objectives minimised): row j dominates row i when ``a_j <= a_i`` in every objective
and ``a_j < a_i`` in at least one. The front is the set of rows no other row dominates. Rows with
identical objective vectors do not dominate each other, so duplicates are all kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n × k, every column minimised).

    Rows are visited in lexicographic order of their objectives, so a row can only be dominated
    by a row visited before it; each candidate is compared against the current front only
    (O(n · |front| · k) numpy work, no O(n²) matrix). NaN rows are never on the front.
    """
    a = np.asarray(values, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D array of objectives, got shape {a.shape}")
    n = a.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    finite = ~np.isnan(a).any(axis=1)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return mask
    order = idx[np.lexsort(a[idx].T[::-1])]
    front: list[int] = []
    front_vals = np.empty((0, a.shape[1]))
    for i in order:
        row = a[i]
        if front_vals.shape[0]:
            le = (front_vals <= row).all(axis=1)
            lt = (front_vals < row).any(axis=1)
            if (le & lt).any():
                continue
        front.append(i)
        front_vals = np.vstack([front_vals, row])
    mask[front] = True
    return mask


def pareto(
    df: pd.DataFrame,
    objectives: Sequence[str],
    maximize: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows of ``df`` not dominated in ``objectives`` (minimised, except those in ``maximize``).

    Raises ``KeyError`` naming a missing column.
    """
    missing = [c for c in objectives if c not in df.columns]
    if missing:
        raise KeyError(f"no column(s) {missing} in the results; columns are {list(df.columns)}")
    vals = df[list(objectives)].to_numpy(dtype=float).copy()
    for j, col in enumerate(objectives):
        if col in maximize:
            vals[:, j] = -vals[:, j]
    return df[pareto_mask(vals)]
