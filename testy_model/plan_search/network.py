"""Selection under a network quality budget (the ``network`` search mode).

Problem: one option per layer minimising the network EDP ``(E_0 + Σ_l E_l)(t_0 + Σ_l t_l)``
(pJ·s; ``(E_0, t_0)`` the non-GEMM operators) subject to ``Σ_l loss_l <= B``, with ``loss_l``
the option's predicted quality loss (``plan_search.quality``). The objective is not separable
and the constraint makes it a multiple-choice knapsack, so the selection is a Lagrangian
heuristic, checked against brute force on small networks (tests), in three steps:

1. **Lagrangian family** (independent of ``B``): for every ``λ`` of a geometric grid (pJ/s;
   ``λ_0 · 2^(k/2)``, ``k = −24..24``, ``λ_0 = E/t`` of the best lossless plan, plus ``λ → 0``
   and ``λ → ∞``) every layer's options are reduced to the lower convex hull of
   ``(loss, E + λ·t)``; as the multiplier ``μ`` of the loss falls from ∞ to 0, the minimiser of
   ``Σ_l (E_l + λ t_l + μ loss_l)`` walks the hulls' edges in order of decreasing slope
   ``μ = −Δ(E + λt)/Δloss``. Every prefix of that walk is a plan of the family (the plans a
   sweep over all ``μ`` gives, and the partial steps between equal slopes); the best lossless
   plan (``selection.select_edp`` over zero-loss options) joins it.
2. **Ladder**: for every budget ``x`` of the fixed ladder ``{0} ∪ {10^(k/16)}`` with
   ``x <= B`` (:func:`budget_ladder`; 16 points per decade, 0.01 on it), the family's
   least-EDP plan of loss ``<= x`` is **improved** by greedy moves that keep the loss
   ``<= x``: the single-layer switch that lowers the network EDP most, and, when none does
   and the network is small (at most ``_PAIR_LIMIT`` (layer, option) entries), the best
   switch of two layers at once; each move strictly lowers the EDP, so it ends.
3. The result is the least-EDP plan over the ladder's budgets (ties: the lower loss).

The candidates at budget ``B`` are those of every ladder budget ``<= B``, a set that only grows
with ``B``: the network EDP is non-increasing in the budget **by construction**. The price: a
budget between two ladder points is used as the lower one (at most 13.4 % less budget; the
default 0.01 is on the ladder). Against brute force (every combination; random networks of
2–4 layers with 2–6 options, budgets on the ladder; ``tests/test_search_network.py``) the
result is the exact optimum in 1199 of 1200 cases, 1.8 % off in the other.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from testy_model.plan_search.selection import _lexmin, _Stack, _totals, select_edp

_EPS = 1e-12
#: the λ grid: λ_0 · 2^(k/2) for k in this range (module docstring)
_LAMBDA_STEPS = range(-24, 25)
#: pair moves in the improvement when the network has at most this many (layer, option) entries
_PAIR_LIMIT = 400


@dataclass(frozen=True)
class _Edge:
    """One hull edge of one layer: switch ``layer`` from option ``frm`` to ``to``."""

    mu: float
    layer: int
    frm: int
    to: int


def _hull_edges(loss: np.ndarray, cost: np.ndarray, ok: np.ndarray, layer: int) -> list[_Edge]:
    """Edges of the lower convex hull of the points ``(loss_c, cost_c)`` of the feasible
    options ``ok`` from the least-loss vertex (ties: least cost) to the least-cost vertex, with
    slopes ``μ = (cost_a − cost_b)/(loss_b − loss_a) > 0`` decreasing along the hull."""
    cols = np.flatnonzero(ok)
    order = cols[np.lexsort((cost[cols], loss[cols]))]
    pareto: list[int] = []
    for c in order:  # loss ascending: keep the options strictly cheaper than all before
        if not pareto or cost[c] < cost[pareto[-1]] * (1 - _EPS) - _EPS:
            pareto.append(int(c))
    hull: list[int] = []
    for c in pareto:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b is not below the chord a -> c: drop it
            cross = (loss[b] - loss[a]) * (cost[c] - cost[a]) - (cost[b] - cost[a]) * (
                loss[c] - loss[a]
            )
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(c)
    out = []
    for a, b in itertools.pairwise(hull):
        mu = (cost[a] - cost[b]) / max(loss[b] - loss[a], _EPS)
        out.append(_Edge(float(mu), layer, a, b))
    return out


def _walk(st: _Stack, loss: np.ndarray, feasible: np.ndarray, lam: float) -> list[np.ndarray]:
    """The family's plans for one ``λ`` (step 1): the start (every layer's least-loss option,
    ties least ``E + λt``) and the plan after each edge of the merged walk."""
    cost = np.where(feasible, st.energy + lam * st.seconds, np.inf)
    idx = _lexmin((np.where(feasible, loss, np.inf), cost), feasible)
    edges: list[_Edge] = []
    for li in range(len(idx)):
        edges += _hull_edges(loss[li], cost[li], feasible[li], li)
    edges.sort(key=lambda e: -e.mu)  # stable: one layer's edges keep their hull order
    plans = [idx.copy()]
    cur = idx.copy()
    for e in edges:
        cur[e.layer] = e.to
        plans.append(cur.copy())
    return plans


def _lambda_grid(st: _Stack, loss: np.ndarray, feasible: np.ndarray) -> list[float]:
    """λ (pJ/s) of the family: the geometric grid around ``λ_0`` and its two ends."""
    lossless = feasible & (loss <= _EPS)
    e, t = _totals(st, select_edp(st, lossless))
    lam0 = e / t if t > 0 and e > 0 else 1.0
    return [lam0 * 1e-9, *(lam0 * 2.0 ** (k / 2) for k in _LAMBDA_STEPS), lam0 * 1e9]


def _improve(
    st: _Stack, loss: np.ndarray, feasible: np.ndarray, idx: np.ndarray, bound: float
) -> np.ndarray:
    """Step 3: greedy moves lowering the network EDP, loss kept ``<= bound``: the best single
    switch; when none helps and the network is small (``L·C <= _PAIR_LIMIT`` options), the best
    switch of two layers at once (an exchange of loss between layers)."""
    idx = idx.copy()
    rows = np.arange(len(idx))
    n_l, n_c = loss.shape
    pairs = n_l * n_c <= _PAIR_LIMIT and n_l > 1
    same = np.repeat(np.arange(n_l), n_c)
    other = same[:, None] != same[None, :]
    for _ in range(10000):
        e_tot, s_tot = _totals(st, idx)
        j_now = e_tot * s_tot
        d_e = st.energy - st.energy[rows, idx][:, None]
        d_s = st.seconds - st.seconds[rows, idx][:, None]
        d_l = loss - loss[rows, idx][:, None]
        l_tot = float(loss[rows, idx].sum())
        with np.errstate(invalid="ignore"):
            ok = feasible & (l_tot + d_l <= bound + _EPS)
            gain = np.where(ok, j_now - (e_tot + d_e) * (s_tot + d_s), -np.inf)
        li, ci = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if gain[li, ci] > j_now * _EPS:
            idx[li] = ci
            continue
        if not pairs:
            break
        fe, fs, fl, fo = d_e.ravel(), d_s.ravel(), d_l.ravel(), feasible.ravel()
        with np.errstate(invalid="ignore"):
            ok2 = other & fo[:, None] & fo[None, :]
            ok2 &= l_tot + fl[:, None] + fl[None, :] <= bound + _EPS
            j2 = (e_tot + fe[:, None] + fe[None, :]) * (s_tot + fs[:, None] + fs[None, :])
            gain2 = np.where(ok2, j_now - j2, -np.inf)
        a, b = np.unravel_index(int(np.argmax(gain2)), gain2.shape)
        if not gain2[a, b] > j_now * _EPS:
            break
        idx[a // n_c] = a % n_c
        idx[b // n_c] = b % n_c
    return idx


def budget_ladder(budget: float) -> np.ndarray:
    """The budgets ``x <= budget`` of the fixed ladder ``{0} ∪ {10^(k/16)}`` (16 per decade,
    ``10^−8 .. 10^2``; 0.01 is on it) at which the selection runs (module docstring)."""
    grid = 10.0 ** (np.arange(-128, 33) / 16.0)
    return np.concatenate([[0.0], grid[grid <= budget * (1 + 1e-9)]])


def _family(st: _Stack, loss: np.ndarray, feasible: np.ndarray) -> list[np.ndarray]:
    """Step 1's plans (and the best lossless plan), without duplicates."""
    fam: dict[bytes, np.ndarray] = {}
    for lam in _lambda_grid(st, loss, feasible):
        for p in _walk(st, loss, feasible, lam):
            fam.setdefault(p.tobytes(), p)
    p0 = select_edp(st, feasible & (loss <= _EPS))
    fam.setdefault(p0.tobytes(), p0)
    return list(fam.values())


def select_network(st: _Stack, loss: np.ndarray, feasible: np.ndarray, budget: float) -> np.ndarray:
    """The option per layer of least network EDP with ``Σ loss <= budget`` among ``feasible``
    (module docstring; monotone in ``budget``). ``loss``: (L, C) predicted losses."""
    rows = np.arange(loss.shape[0])
    fam = _family(st, loss, feasible)
    tot = np.array([[loss[rows, p].sum(), *_totals(st, p)] for p in fam])
    fam_loss, fam_edp = tot[:, 0], tot[:, 1] * tot[:, 2]
    best: tuple[float, float, np.ndarray] | None = None
    for x in budget_ladder(budget):
        ok = fam_loss <= x + _EPS
        start = fam[int(np.argmin(np.where(ok, fam_edp, np.inf)))]
        q = _improve(st, loss, feasible, start, float(x))
        e, t = _totals(st, q)
        key = (e * t, float(loss[rows, q].sum()), q)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None  # the ladder holds 0: the lossless plan
    return best[2]


def brute_force_network(
    st: _Stack, loss: np.ndarray, feasible: np.ndarray, budget: float
) -> tuple[np.ndarray, float]:
    """Every combination of feasible options with ``Σ loss <= budget`` (small networks only,
    for checking): the least network EDP and its plan."""
    import itertools

    rows = np.arange(loss.shape[0])
    best, best_j = None, np.inf
    for combo in itertools.product(*[np.flatnonzero(f) for f in feasible]):
        idx = np.array(combo, dtype=np.int64)
        if loss[rows, idx].sum() > budget + _EPS:
            continue
        e, t = _totals(st, idx)
        if e * t < best_j:
            best, best_j = idx, e * t
    assert best is not None
    return best, best_j
