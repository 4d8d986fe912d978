"""Greedy plan path of the quality search: switches of most EDP gain per added loss, and the
plans (per-layer series) of its prefixes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from testy_model.models.quality_classes import quality_class
from testy_model.tasd.pattern import TasdSeries

if TYPE_CHECKING:
    from testy_model.plan_search import LayerTable

_EPS = 1e-12


@dataclass(frozen=True)
class Step:
    """One switch of the greedy path: ``layer`` to option ``option``; EDP after it (pJ·s),
    the added loss and the proxy loss ``Σ loss`` after it (dimensionless)."""

    layer: int
    option: int
    edp: float
    d_loss: float
    proxy_loss: float


def greedy_path(
    tables: Sequence[LayerTable], loss: np.ndarray, cap: float, max_steps: int = 10000
) -> list[Step]:
    """The greedy path of module step 5, from all-dense; only options with a measured loss
    are used. Every step strictly lowers the network EDP, so the path ends."""
    n_l = len(tables)
    n_c = loss.shape[1]
    energy = np.full((n_l, n_c), np.inf)
    secs = np.full((n_l, n_c), np.inf)
    for j, t in enumerate(tables):
        c = len(t.options)
        energy[j, :c] = t.energy_pj
        secs[j, :c] = t.seconds
    ok = np.isfinite(loss)
    idx = np.array([t.dense for t in tables], dtype=np.int64)
    rows = np.arange(n_l)
    cur_loss = np.zeros(n_l)
    path: list[Step] = []
    for _ in range(max_steps):
        e_tot = float(energy[rows, idx].sum())
        s_tot = float(secs[rows, idx].sum())
        j_now = e_tot * s_tot
        j_new = (e_tot - energy[rows, idx][:, None] + energy) * (
            s_tot - secs[rows, idx][:, None] + secs
        )
        gain = j_now - j_new
        d_loss = np.where(ok, loss, np.inf) - cur_loss[:, None]
        allowed = ok & (gain > j_now * 1e-9) & (cur_loss.sum() + d_loss <= cap + _EPS)
        if not allowed.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(d_loss > _EPS, gain / np.where(d_loss > _EPS, d_loss, 1.0), np.inf)
        ratio = np.where(allowed, ratio, -np.inf)
        pick = np.where(ratio == ratio.max(), np.where(allowed, gain, -np.inf), -np.inf)
        li, ci = np.unravel_index(int(np.argmax(pick)), pick.shape)
        idx[li] = ci
        dl = float(loss[li, ci] - cur_loss[li])
        cur_loss[li] = loss[li, ci]
        path.append(Step(int(li), int(ci), float(j_new[li, ci]), dl, float(cur_loss.sum())))
    return path


def prefix_indices(tables: Sequence[LayerTable], path: Sequence[Step], k: int) -> np.ndarray:
    """Option index per layer after the first ``k`` steps of ``path``."""
    idx = np.array([t.dense for t in tables], dtype=np.int64)
    for st in path[:k]:
        idx[st.layer] = st.option
    return idx


def plan_of(
    tables: Sequence[LayerTable], idx: Sequence[int] | np.ndarray
) -> dict[str, tuple[str, str]]:
    """The non-dense layers of a choice: layer -> (weight series, activation series)."""
    out = {}
    for t, i in zip(tables, idx, strict=True):
        o = t.options[int(i)]
        if not o.is_dense:
            out[t.name] = (str(o.weights), str(o.activations))
    return out


def model_plan(plan: dict[str, tuple[str, str]]) -> dict[str, tuple[TasdSeries, TasdSeries]]:
    """A search plan in the form ``MiniLM.encode`` runs: every series replaced by its quality
    class (the same approximated tensors, module step 2, computed with one term)."""
    return {k: (quality_class(w), quality_class(a)) for k, (w, a) in plan.items()}
