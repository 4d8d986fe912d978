"""Selection of one option per layer (the search's step 4), for a network objective.

Network totals (layers and operators run one after another): ``E = E_0 + Σ_l E_l`` (pJ),
``t = t_0 + Σ_l t_l`` (s), with ``(E_0, t_0)`` the ``fixed`` part no plan changes (the non-GEMM
operators, priced as ``eval`` prices them); objectives ``edp = E·t`` (pJ·s), ``latency = t``,
``energy = E``.

**Layer mode** (every layer's error ``<= budget``): exact. Latency and energy are separable:
each layer's least-objective feasible option. EDP is not (:func:`select_edp`): over the finite
set S of achievable ``(E, t)``, ``f = (E_0 + E)·(t_0 + t)`` is increasing and quasi-concave on
the positive quadrant (its superlevel sets ``{f >= c}`` are convex), so its minimum over conv(S)
is at an extreme point, one on the lower-left chain of conv(S), which minimises ``E + λ·t`` for
some ``λ`` in ``[0, ∞]``; and ``Σ_l (E_l + λ·t_l)`` is minimised layer by layer. So the sweep
over λ (every breakpoint of every layer's lower convex hull of ``(t, E)``, a λ between each pair
of consecutive breakpoints, and both ends) finds the optimum network EDP; ties go to the lower
summed error, then the lower index. :func:`brute_force` checks it on small networks.

**Global mode** (MAC-weighted mean error ``<= budget``, each layer ``<= layer_cap``): a knapsack;
greedy by objective gain per unit of error (:func:`select_global`), never worse than the
layer-mode optimum at the same budget nor any feasible uniform plan.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testy_model.model.plan import LayerPlan
from testy_model.plan_search.candidates import DENSE
from testy_model.plan_search.pricing import LayerTable
from testy_model.tasd.pattern import TasdSeries

_EPS = 1e-12


@dataclass(frozen=True)
class _Stack:
    """All layers' candidates as (L, C) arrays; missing/invalid entries are +inf cost."""

    energy: np.ndarray
    seconds: np.ndarray
    error: np.ndarray
    ok: np.ndarray
    weight: np.ndarray  # (L,) MAC share of each layer, sums to 1
    fixed: tuple[float, float] = (0.0, 0.0)  # (pJ, s) every plan adds (non-GEMM operators)


#: ``(energy pJ, seconds)`` of the network's plan-independent part (non-GEMM operators).
Fixed = tuple[float, float]


def _stack(tables: Sequence[LayerTable], fixed: Fixed = (0.0, 0.0)) -> _Stack:
    n_l = len(tables)
    n_c = max(len(t.options) for t in tables)
    e = np.full((n_l, n_c), np.inf)
    s = np.full((n_l, n_c), np.inf)
    err = np.full((n_l, n_c), np.inf)
    ok = np.zeros((n_l, n_c), dtype=bool)
    for i, t in enumerate(tables):
        c = len(t.options)
        e[i, :c] = np.where(t.valid, t.energy_pj, np.inf)
        s[i, :c] = np.where(t.valid, t.seconds, np.inf)
        err[i, :c] = t.error
        ok[i, :c] = t.valid
    macs = np.array([t.macs for t in tables], dtype=np.float64)
    return _Stack(e, s, err, ok, macs / macs.sum(), (float(fixed[0]), float(fixed[1])))


def _objective_of(energy: float, seconds: float, objective: str) -> float:
    """Network objective from totals: EDP = E·t (pJ·s), latency t (s), energy E (pJ)."""
    if objective == "edp":
        return energy * seconds
    if objective == "latency":
        return seconds
    return energy


def network_objective(
    tables: Sequence[LayerTable], idx: Sequence[int], objective: str, fixed: Fixed = (0.0, 0.0)
) -> float:
    """The network objective of choosing option ``idx[l]`` in layer ``l`` (layers in sequence:
    ``E = E_0 + Σ E_l``, ``t = t_0 + Σ t_l`` with ``fixed = (E_0, t_0)``; EDP = ``E·t`` in
    pJ·s, latency ``t`` in s, energy ``E`` in pJ)."""
    e = fixed[0] + sum(float(t.energy_pj[i]) for t, i in zip(tables, idx, strict=True))
    s = fixed[1] + sum(float(t.seconds[i]) for t, i in zip(tables, idx, strict=True))
    return _objective_of(e, s, objective)


def _totals(st: _Stack, idx: np.ndarray) -> tuple[float, float]:
    """Network (energy pJ, seconds) of ``idx``, the fixed part included."""
    rows = np.arange(len(idx))
    return (
        st.fixed[0] + float(st.energy[rows, idx].sum()),
        st.fixed[1] + float(st.seconds[rows, idx].sum()),
    )


def _lexmin(keys: Sequence[np.ndarray], feasible: np.ndarray) -> np.ndarray:
    """Per row, the feasible column least in ``keys[0]``, ties (within a relative 1e-12) broken
    by ``keys[1]``, ..., then the lowest index."""
    tie = feasible.copy()
    for k in keys:
        v = np.where(tie, k, np.inf)
        best = v.min(axis=1, keepdims=True)
        tie &= v <= best + np.abs(best) * 1e-12
    return np.argmax(tie, axis=1).astype(np.int64)


def hull_breakpoints(seconds: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """The λ (pJ/s) where the minimiser of ``E + λ·t`` changes among points ``(t, E)``: the
    slopes ``(E_a − E_b)/(t_b − t_a)`` between consecutive vertices of their lower-left convex
    hull (Pareto points by ascending t, then Andrew's monotone chain)."""
    ok = np.isfinite(seconds) & np.isfinite(energy)
    t, e = seconds[ok], energy[ok]
    pareto: list[int] = []
    best = np.inf
    for i in np.lexsort((e, t)):
        if e[i] < best:
            pareto.append(int(i))
            best = e[i]
    hull: list[int] = []
    for i in pareto:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (t[b] - t[a]) * (e[i] - e[a]) - (e[b] - e[a]) * (t[i] - t[a]) <= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return np.array([(e[a] - e[b]) / (t[b] - t[a]) for a, b in itertools.pairwise(hull)])


def select_edp(st: _Stack, feasible: np.ndarray) -> np.ndarray:
    """The option per layer of least network EDP ``(Σ E)(Σ t)`` among ``feasible`` (module
    docstring: the λ sweep). Exact."""
    per_layer = [
        hull_breakpoints(np.where(f, s, np.inf), np.where(f, e, np.inf))
        for s, e, f in zip(st.seconds, st.energy, feasible, strict=True)
    ]
    breaks = np.unique(np.concatenate(per_layer))
    breaks = breaks[np.isfinite(breaks) & (breaks > 0)]
    mids = np.sqrt(breaks[:-1] * breaks[1:]) if len(breaks) > 1 else np.zeros(0)
    tries = [_lexmin((st.energy, st.seconds, st.error), feasible)]
    tries += [_lexmin((st.energy + lam * st.seconds, st.error), feasible) for lam in mids]
    tries.append(_lexmin((st.seconds, st.energy, st.error), feasible))
    best, best_key = tries[0], (np.inf, np.inf)
    for idx in tries:
        e, s = _totals(st, idx)
        key = (e * s, float(st.error[np.arange(len(idx)), idx].sum()))
        if key[0] < best_key[0] * (1 - 1e-12) or (
            key[0] <= best_key[0] * (1 + 1e-12) and key[1] < best_key[1]
        ):
            best, best_key = idx, key
    return best


def select_feasible(st: _Stack, feasible: np.ndarray, objective: str) -> np.ndarray:
    """The exact optimum of ``objective`` over per-layer ``feasible`` options."""
    if objective == "edp":
        return select_edp(st, feasible)
    if objective == "latency":
        return _lexmin((st.seconds, st.energy, st.error), feasible)
    return _lexmin((st.energy, st.seconds, st.error), feasible)


def select_per_layer(
    tables: Sequence[LayerTable],
    budget: float,
    objective: str = "edp",
    allow: np.ndarray | None = None,
    fixed: Fixed = (0.0, 0.0),
) -> np.ndarray:
    """Per layer, one valid option with error ``<= budget`` (and ``allow``, an (L, C) mask)
    such that the network objective is least, ``fixed`` = (pJ, s) added to the totals (module
    docstring; exact). ``dense`` always qualifies (error 0). Returns the chosen option index
    per layer."""
    st = _stack(tables, fixed)
    feasible = st.ok & (st.error <= budget + _EPS)
    if allow is not None:
        feasible &= allow
    return select_feasible(st, feasible, objective)


def brute_force(
    tables: Sequence[LayerTable], budget: float, objective: str = "edp", fixed: Fixed = (0.0, 0.0)
) -> tuple[np.ndarray, float]:
    """Every combination of per-layer feasible options (error ``<= budget``), for checking
    small networks: the combination of least network objective and that objective."""
    st = _stack(tables, fixed)
    feasible = st.ok & (st.error <= budget + _EPS)
    choices = [np.flatnonzero(f) for f in feasible]
    best, best_j = None, np.inf
    for combo in itertools.product(*choices):
        idx = np.array(combo, dtype=np.int64)
        j = _objective_of(*_totals(st, idx), objective)
        if j < best_j:
            best, best_j = idx, j
    assert best is not None
    return best, best_j


def _mean_error(st: _Stack, idx: np.ndarray) -> float:
    return float((st.weight * st.error[np.arange(len(idx)), idx]).sum())


def select_global(
    tables: Sequence[LayerTable],
    budget: float,
    objective: str = "edp",
    layer_cap: float = 1.0,
    max_steps: int = 100000,
    fixed: Fixed = (0.0, 0.0),
    allow: np.ndarray | None = None,
) -> np.ndarray:
    """One network-wide budget on the MAC-weighted mean error ``Ē = Σ_l w_l e_l <= budget``
    (``w_l = MACs_l / Σ MACs``, dimensionless), spread greedily; no layer's error may exceed
    ``layer_cap`` (1 = no cap).

    Start from the best lossless plan (:func:`select_per_layer` with budget 0). Each step
    considers every (layer, option) switch that keeps ``Ē <= budget`` and lowers the network
    objective ``J``, and takes the one of highest gain per unit of added error
    ``(J − J') / (w_l·Δe_l)`` (a switch that adds no error ranks first, by its gain). Every
    step strictly lowers ``J``, so the loop ends; ``max_steps`` is a safety cap. ``fixed``:
    (pJ, s) added to the totals; ``allow``: an (L, C) mask of the options that may be chosen.
    """
    st = _stack(tables, fixed)
    if allow is not None:
        st = dataclasses.replace(st, ok=st.ok & allow)
    idx = select_per_layer(tables, 0.0, objective, allow=allow, fixed=fixed)
    idx = _greedy(st, idx, budget, objective, layer_cap, max_steps)
    # never worse than the layer-mode optimum at min(budget, layer_cap) (feasible here) or the
    # feasible uniform plans
    alt = select_per_layer(tables, min(budget, layer_cap), objective, allow=allow, fixed=fixed)
    if _objective_of(*_totals(st, alt), objective) < _objective_of(*_totals(st, idx), objective):
        idx = alt
    return _guard(tables, st, idx, budget, objective, layer_cap)


def _greedy(
    st: _Stack, idx: np.ndarray, budget: float, objective: str, layer_cap: float, max_steps: int
) -> np.ndarray:
    """The greedy steps of :func:`select_global` from ``idx``."""
    idx = idx.copy()
    rows = np.arange(len(idx))
    for _ in range(max_steps):
        e_tot, s_tot = _totals(st, idx)
        j_now = _objective_of(e_tot, s_tot, objective)
        cur_e = st.energy[rows, idx][:, None]
        cur_s = st.seconds[rows, idx][:, None]
        new_e = e_tot - cur_e + st.energy
        new_s = s_tot - cur_s + st.seconds
        j_new = _objective_of(new_e, new_s, objective)
        gain = j_now - j_new
        d_err = st.weight[:, None] * (st.error - st.error[rows, idx][:, None])
        mean_now = _mean_error(st, idx)
        allowed = (
            (st.error <= layer_cap + _EPS)
            & st.ok
            & np.isfinite(gain)
            & (gain > j_now * 1e-12)
            & (mean_now + d_err <= budget + _EPS)
        )
        if not allowed.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(d_err > _EPS, gain / np.where(d_err > _EPS, d_err, 1.0), np.inf)
        ratio = np.where(allowed, ratio, -np.inf)
        top = ratio.max()
        pick = np.where(ratio == top, np.where(allowed, gain, -np.inf), -np.inf)
        li, ci = np.unravel_index(int(np.argmax(pick)), pick.shape)
        idx[li] = ci
    return idx


def uniform_indices(tables: Sequence[LayerTable], option: LayerPlan) -> np.ndarray:
    """Option index per layer for running ``option`` in every layer: a layer where it is not a
    candidate runs its weight (resp. activation) series dense instead (e.g. attention layers,
    which have no weight); ``dense`` when neither exists."""
    out = []
    for t in tables:
        o = option.orientation
        i = t.index(option.weights, option.activations, o)
        if i is None:
            i = t.index(DENSE, option.activations, o)
        if i is None:
            i = t.index(option.weights, DENSE, o)
        out.append(t.dense if i is None else i)
    return np.array(out, dtype=np.int64)


def _uniform_matrix(tables: Sequence[LayerTable]) -> np.ndarray:
    """(P, L) option indices of every uniform plan (one row per distinct series pair ``p`` of
    any layer), with :func:`uniform_indices`' fallbacks, built with integer ids (no per-pair
    Python loop over layers)."""
    gid: dict[tuple[TasdSeries, TasdSeries, str], int] = {}
    for t in tables:
        for o in t.options:
            gid.setdefault((o.weights, o.activations, o.orientation), len(gid))
    n_p, n_l = len(gid), len(tables)
    loc = np.full((n_l, n_p + 1), -1, dtype=np.int64)  # column n_p: "no such pair"
    for li, t in enumerate(tables):
        loc[li, [gid[(o.weights, o.activations, o.orientation)] for o in t.options]] = np.arange(
            len(t.options)
        )
    pairs = list(gid)
    first = np.array([gid[p] for p in pairs], dtype=np.int64)
    no_w = np.array([gid.get((DENSE, a, o), n_p) for _, a, o in pairs], dtype=np.int64)
    no_a = np.array([gid.get((w, DENSE, o), n_p) for w, _, o in pairs], dtype=np.int64)
    dense = np.array([t.dense for t in tables], dtype=np.int64)[:, None]
    out = loc[:, first]
    out = np.where(out < 0, loc[:, no_w], out)
    out = np.where(out < 0, loc[:, no_a], out)
    return np.where(out < 0, dense, out).T


def _guard(
    tables: Sequence[LayerTable],
    st: _Stack,
    idx: np.ndarray,
    budget: float,
    objective: str,
    layer_cap: float = 1.0,
) -> np.ndarray:
    """Global mode: replace the plan by a uniform one (same option in every layer,
    :func:`uniform_indices`) when a feasible uniform plan has a strictly lower network objective
    (a safety net for the greedy; all uniform plans are scored in one numpy pass)."""
    u = _uniform_matrix(tables)  # (P, L)
    rows = np.arange(len(tables))[None, :]
    e = st.fixed[0] + st.energy[rows, u].sum(axis=1)
    s = st.fixed[1] + st.seconds[rows, u].sum(axis=1)
    err = st.error[rows, u]
    ok = st.ok[rows, u].all(axis=1)
    ok &= (err * st.weight[None, :]).sum(axis=1) <= budget + _EPS
    ok &= (err <= layer_cap + _EPS).all(axis=1)
    j = np.where(ok, _objective_of(e, s, objective), np.inf)
    best_u = int(np.argmin(j))
    j_plan = _objective_of(*_totals(st, idx), objective)
    if np.isfinite(j[best_u]) and j[best_u] < j_plan * (1 - 1e-12):
        return u[best_u].copy()
    return idx
