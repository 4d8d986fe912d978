"""Design-space exploration: sweep specs, point expansion, evaluation, Pareto front.

A sweep is described in YAML (or built in Python as a :class:`SweepSpec`)::

    sweep:
      arch: ../arch_specs/stc_2of4_tasd.yaml     # base architecture, relative to this file
      grid:                                      # full factorial over dotted keys ...
        levels.SMEM.depth: [2048, 4096, 8192]
        levels.DRAM.read_bandwidth: [16, 64]     # words/cycle, as in architecture files
        array.pes: [256, 512, 1024]              # PE-array size: compute + innermost levels'
                                                 # instances together (arch_loader.scale_pes)
      random:                                    # ... and/or a seeded random sample
        samples: 200
        seed: 0
        space: {levels.RF.depth: [1024, 2048, 4096]}
      networks: [resnet50]                       # zoo names (or network files)
      weight_sparsity: [0.5, 0.8]
      plan: dense | search | "W=2:8+1:8,A=dense"  # or a plan YAML file
      budget: 0.05                               # error budget when plan is search
      objective: edp                             # what the mapper (and search) minimise
      conventions: timeloop                      # or sparseloop-2022 (counting conventions)
      mapper: true                               # false: only the representatives' mappings
      seed_limit: 64                             # most capacity sets searched one by one

Every point is one (architecture overrides, network, weight sparsity) triple with a stable
``point_id`` (a hash of those inputs), so a re-run recognises the rows it already has. One result
row per point: the inputs, cycles, seconds, energy (pJ) by component, EDP (pJ·s) and area (mm²).

Evaluation of a chunk of points (:func:`evaluate_chunk`, the picklable function the
:mod:`~testy_model.dse.runner` backends call):

1. each point's architecture is the base spec with the point's dotted overrides (the base file is
   read once per worker); points are grouped by *structure* (:func:`structure_key`: everything
   but capacities, bandwidths, energies, leakage, clock and TASD-unit rates);
2. per (structure, distinct layer shape and operand formats) the candidate mappings are generated
   once per worker and priced once as :class:`~testy_model.dse.batch.CandidateFeatures`:
   the mapper's shared candidates (:func:`testy_model.mapper.candidate_nests`, capacities
   ignored, at most :data:`SHARED_LIMIT`), plus the mapper's own (lighter, :data:`SEED_SEARCH`)
   search result at the first point of each distinct capacity set (:func:`capacity_key`; up to
   ``seed_limit`` sets, else at the structure's smallest and largest capacities,
   :func:`representatives`). Every point then picks, among the candidates of its structure and
   capacity set that fit it, the one with the least objective under its own numbers, all points
   in one batched pass (:func:`~testy_model.dse.batch.best_candidates`): no per-point search.
   Candidate sets depend only on the point and the whole sweep, never on the chunking;
3. network totals: layers run one after another, so ``cycles = Σ_layers cycles``,
   ``seconds = cycles / (clock_GHz·10⁹)``, ``energy_pj = Σ_layers energy`` (and per component),
   ``edp_pj_s = energy_pj · seconds``; ``area_mm2`` from
   :func:`testy_model.estimators.area.area_mm2`.
   A point where some layer has no fitting mapping gets ``valid = False`` and NaN costs.
4. ``plan: search`` runs :func:`testy_model.plan_search.search` per point with the mappings
   chosen in step 2 for the dense layers (slower: one plan search per point).

The result does not depend on the backend or on how points are chunked (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from testy_model.dse.batch import best_candidates, chosen_cost, concat_features, points_of
from testy_model.dse.candidates import (
    _CANDS,
    _FEATS,
    SEED_SEARCH,
    SHARED_LIMIT,
    _cap_features,
    _features,
    _seed_nests,  # noqa: F401  (re-exported: old import path)
    _shared_candidates,  # noqa: F401  (re-exported: old import path)
    _terms,  # noqa: F401  (re-exported: old import path)
    _unbounded,  # noqa: F401  (re-exported: old import path)
    clear_caches,
)
from testy_model.dse.context import (
    CACHE_LIMIT,
    SweepContext,
    _plan,
    _prune,  # noqa: F401  (re-exported: old import path)
    arch_for,
    base_arch,
    capacity_key,
    network_for,
    prepare,
    representatives,
    structure_key,
)
from testy_model.dse.pareto import pareto, pareto_mask
from testy_model.dse.points import evaluation_fingerprint, expand_points, override_strings, point_id
from testy_model.dse.runner import run_points
from testy_model.errors import SpecError
from testy_model.estimators.area import area_mm2
from testy_model.model.arrays import arch_arrays
from testy_model.model.nest import mapping_from_nests, stack_nests
from testy_model.model.plan import Plan
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.sweep_spec import RandomSpace, SweepSpec, load_sweep
from testy_model.spec.workload import Layer, Network

if TYPE_CHECKING:
    from testy_model.plan_search.plan import Objective

__all__ = [
    "CACHE_LIMIT",
    "SEED_SEARCH",
    "SHARED_LIMIT",
    "RandomSpace",
    "SweepContext",
    "SweepSpec",
    "arch_for",
    "base_arch",
    "capacity_key",
    "clear_caches",
    "evaluate_chunk",
    "evaluation_fingerprint",
    "expand_points",
    "load_sweep",
    "network_for",
    "override_strings",
    "pareto",
    "pareto_mask",
    "point_id",
    "point_mappings",
    "prepare",
    "representatives",
    "structure_key",
    "sweep",
]


def point_mappings(
    ctx: SweepContext, network: Network, archs: Sequence[Architecture]
) -> list[dict[str, Mapping]]:
    """Per design point (all of one structure), the mapping the sweep chooses for each layer
    (layer name -> :class:`Mapping`), under the context's plan (dense for ``search``)."""
    plan = Plan() if ctx.plan in ("dense", "search") else _plan(ctx.plan)
    skey = structure_key(archs[0])
    return _network_totals(ctx, skey, network, archs, plan, want_maps=True)[1]


# --------------------------------------------------------------------------------------------
# the chunk evaluator
# --------------------------------------------------------------------------------------------


def _column_value(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(str(x) for x in v) + "]"
    return v


@dataclass
class _Totals:
    """Per-point network totals being accumulated (arrays of shape (P,))."""

    cycles: np.ndarray
    seconds: np.ndarray
    energy: np.ndarray
    comps: dict[str, np.ndarray]
    valid: np.ndarray


def _network_totals(
    ctx: SweepContext,
    skey: str,
    net: Network,
    archs: Sequence[Architecture],
    plan: Plan,
    want_maps: bool = False,
) -> tuple[_Totals, list[dict[str, Mapping]]]:
    """Map every layer at every point (shared candidates, one batch per layer shape) and sum.

    Returns the totals and, per point, the chosen mapping of each layer (only built when
    ``want_maps`` or when ``plan`` is the search, which needs them; else empty dicts)."""
    aa = arch_arrays(list(archs))
    p = len(archs)
    clock = aa.clock_ghz * 1e9
    tot = _Totals(
        cycles=np.zeros(p),
        seconds=np.zeros(p),
        energy=np.zeros(p),
        comps={},
        valid=np.ones(p, bool),
    )
    want_maps = want_maps or ctx.plan == "search"
    maps: list[dict[str, Mapping]] = [{} for _ in range(p)]
    groups: dict[tuple, list[Layer]] = {}
    for layer in net.layers:
        lp = plan.for_layer(layer.name)
        groups.setdefault(
            (layer.problem.shape_key(), repr(layer.problem.densities), str(lp)), []
        ).append(layer)
    by_cap: dict[str, list[int]] = {}
    for i, a in enumerate(archs):
        by_cap.setdefault(capacity_key(a), []).append(i)
    for layers in groups.values():
        layer = layers[0]
        lp = plan.for_layer(layer.name)
        base = _features(ctx, skey, layer, archs[0], lp)
        k = len(layers)
        for ckey, idx_list in by_cap.items():
            idx = np.array(idx_list)
            extra = _cap_features(ctx, ckey, layer, archs[0], lp)
            if base is None and extra is None:
                tot.valid[idx] = False
                continue
            if base is None or extra is None:
                one = base if base is not None else extra
                assert one is not None  # not both None: skipped above
                nests, feats = one
            else:
                nests = stack_nests([base[0], extra[0]])
                feats = concat_features(base[1], extra[1])
            sub = points_of(aa, idx)
            best, _ = best_candidates(feats, sub, ctx.objective)
            c = chosen_cost(feats, sub, best)
            tot.cycles[idx] += k * c.cycles
            tot.seconds[idx] += k * c.cycles / clock[idx]
            tot.energy[idx] += k * c.energy_pj
            for name, v in c.components.items():
                tot.comps.setdefault(name, np.zeros(p))[idx] += k * v
            tot.valid[idx] &= c.valid
            if want_maps:
                for j, i in enumerate(idx_list):
                    if best[j] >= 0:
                        m = mapping_from_nests(nests, int(best[j]), archs[i], layer.problem)
                        for lyr in layers:
                            maps[i][lyr.name] = m
    return tot, maps


def _search_totals(
    ctx: SweepContext, net: Network, archs: Sequence[Architecture], maps: list[dict[str, Mapping]]
) -> _Totals:
    """Per point: the TASD plan search under the chosen dense mappings; the plan's totals."""
    from testy_model.plan_search import search

    p = len(archs)
    nan = np.full(p, np.nan)
    tot = _Totals(nan.copy(), nan.copy(), nan.copy(), {}, np.zeros(p, bool))
    for i, arch in enumerate(archs):
        if len(maps[i]) != len(net.layers):
            continue
        rep = search(
            net,
            arch,
            budget=ctx.budget,
            # SweepSpec's validator admits only the search's objectives
            objective=cast("Objective", ctx.objective),
            mappings=maps[i],
        )
        t = rep.totals("plan")
        tot.cycles[i], tot.seconds[i], tot.energy[i] = t.cycles, t.seconds, t.energy_pj
        tot.valid[i] = True
        for row in rep.rows():
            for name, v in row["energy_by_component"].items():
                arr = tot.comps.setdefault(name, np.zeros(p))
                arr[i] += v
    for arr in tot.comps.values():
        arr[~tot.valid] = np.nan
    return tot


def evaluate_chunk(ctx: SweepContext, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result row per point (module docstring); the function the sweep runner calls.

    Top-level and picklable; it keeps per-process caches (base architecture, networks, candidate
    features) across the chunks a worker receives.
    """
    for cache in (_CANDS, _FEATS):
        if len(cache) >= CACHE_LIMIT:  # bounded: a long-lived worker never grows without end
            cache.clear()
    plan = Plan() if ctx.plan in ("dense", "search") else _plan(ctx.plan)
    archs = [arch_for(ctx.arch, pt["set"]) for pt in points]
    groups: dict[tuple, list[int]] = {}
    for i, (pt, a) in enumerate(zip(points, archs, strict=True)):
        groups.setdefault((structure_key(a), pt["network"], pt["weight_sparsity"]), []).append(i)
    rows: list[dict[str, Any] | None] = [None] * len(points)
    for (skey, name, ws), idx in groups.items():
        net = network_for(ctx.network_files.get(name, name), float(ws), ctx.network_params)
        group_archs = [archs[i] for i in idx]
        tot, maps = _network_totals(ctx, skey, net, group_archs, plan)
        if ctx.plan == "search":
            tot = _search_totals(ctx, net, group_archs, maps)
        for j, i in enumerate(idx):
            pt = points[i]
            ok = bool(tot.valid[j])
            row: dict[str, Any] = {
                "point_id": str(pt["point_id"]),
                "network": name,
                "weight_sparsity": float(ws),
            }
            for key in ctx.keys:
                row[key] = _column_value(pt["set"].get(key))
            row["plan"] = ctx.plan
            row["valid"] = ok
            row["cycles"] = float(tot.cycles[j]) if ok else float("nan")
            row["seconds"] = float(tot.seconds[j]) if ok else float("nan")
            row["energy_pj"] = float(tot.energy[j]) if ok else float("nan")
            for comp, v in tot.comps.items():
                row[f"energy_{comp}_pj"] = float(v[j]) if ok else float("nan")
            row["edp_pj_s"] = row["energy_pj"] * row["seconds"]
            row["area_mm2"] = area_mm2(group_archs[j])
            rows[i] = row
    return [r for r in rows if r is not None]


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------


def sweep(
    spec: SweepSpec | str | Path,
    out: str | Path,
    *,
    backend: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run a sweep (a :class:`SweepSpec` or a sweep YAML path) and write its table to ``out``
    (``.parquet`` or ``.csv``), one row per point in point order.

    Finished chunks are kept under ``<out>.parts/``; re-running the same sweep computes only the
    points not yet there. ``backend``: ``local`` (process pool over all cores), ``dask``
    (``scheduler`` address, or a local cluster of ``workers``) or ``serial``.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep(spec)
    if backend not in ("local", "dask", "serial"):
        raise SpecError(f"backend {backend!r}: expected one of local, dask, serial")
    points = expand_points(spec)
    ctx = prepare(spec, points)
    return run_points(
        points,
        evaluate_chunk,
        ctx,
        out,
        backend=backend,
        workers=workers,
        scheduler=scheduler,
        chunk_size=chunk_size,
        progress=progress,
    )
