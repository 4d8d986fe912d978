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

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from testy_model.dse.batch import (
    CandidateFeatures,
    best_candidates,
    candidate_features,
    chosen_cost,
    concat_features,
    points_of,
)
from testy_model.dse.pareto import pareto, pareto_mask
from testy_model.dse.runner import run_points
from testy_model.errors import MappingError, SpecError
from testy_model.estimators.area import area_mm2
from testy_model.graph.zoo import get_network
from testy_model.model.arrays import arch_arrays
from testy_model.model.cost import OperandTerm
from testy_model.model.nest import LoopNests, mapping_from_nests, nests_from_mapping, stack_nests
from testy_model.model.plan import LayerPlan, Plan
from testy_model.model.terms import TermFormat, layer_terms
from testy_model.spec.arch import Architecture
from testy_model.spec.arch_loader import apply_arch_overrides, load_arch
from testy_model.spec.loaders import load_network
from testy_model.spec.mapping import Mapping
from testy_model.spec.sweep_spec import RandomSpace, SweepSpec, load_sweep, sweep_key_error
from testy_model.spec.workload import Density, Layer, Network, Problem

__all__ = [
    "RandomSpace",
    "SweepContext",
    "SweepSpec",
    "arch_for",
    "evaluate_chunk",
    "expand_points",
    "load_sweep",
    "override_strings",
    "pareto",
    "pareto_mask",
    "point_id",
    "point_mappings",
    "prepare",
    "structure_key",
    "sweep",
]


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of its path when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


def evaluation_fingerprint(spec: SweepSpec) -> str:
    """What every row of the sweep depends on besides its own point inputs: the base
    architecture file's contents, the plan (and a plan file's contents), budget, objective,
    mapper switch and its seeding limit, and the network parameters.

    It is folded into each ``point_id``, so re-running a sweep after editing any of these
    recomputes every point instead of silently reusing rows of the old sweep.
    """
    plan_path = Path(spec.plan)
    if not plan_path.is_absolute():
        plan_path = Path(spec.base_dir) / plan_path
    plan_file = _file_digest(plan_path) if plan_path.suffix in (".yaml", ".yml") else None
    blob = json.dumps(
        {
            "arch": _file_digest(spec.arch_path()),
            "plan": spec.plan,
            "plan_file": plan_file,
            "budget": spec.budget,
            "objective": spec.objective,
            "mapper": spec.mapper,
            "seed_limit": spec.seed_limit,
            "network_params": spec.network_params,
            # only when not the default, so fingerprints of earlier sweeps stay valid
            **({"conventions": spec.conventions} if spec.conventions != "timeloop" else {}),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def point_id(
    overrides: dict[str, Any], network: str, weight_sparsity: float, fingerprint: str = ""
) -> str:
    """Stable 16-hex-digit id of a point: SHA-256 of its canonical JSON inputs and the sweep's
    :func:`evaluation_fingerprint`."""
    blob = json.dumps(
        {
            "set": overrides,
            "network": network,
            "weight_sparsity": weight_sparsity,
            "fingerprint": fingerprint,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """All points of the sweep, deterministic order: grid (row-major), then random samples,
    each crossed with networks × weight sparsities. Duplicate points are kept once."""
    fingerprint = evaluation_fingerprint(spec)
    arch_points: list[dict[str, Any]] = []
    keys = list(spec.grid)
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        arch_points.append(dict(zip(keys, combo, strict=True)))
    if spec.random is not None:
        rng = np.random.default_rng(spec.random.seed)
        rkeys = list(spec.random.space)
        for _ in range(spec.random.samples):
            arch_points.append(
                {
                    k: spec.random.space[k][int(rng.integers(len(spec.random.space[k])))]
                    for k in rkeys
                }
            )
    if not arch_points:
        arch_points = [{}]
    points: list[dict[str, Any]] = []
    seen: set[str] = set()
    for overrides in arch_points:
        for net in spec.networks:
            for ws in spec.weight_sparsity:
                pid = point_id(overrides, net, ws, fingerprint)
                if pid in seen:
                    continue
                seen.add(pid)
                points.append(
                    {"point_id": pid, "set": overrides, "network": net, "weight_sparsity": ws}
                )
    return points


def override_strings(overrides: dict[str, Any]) -> list[str]:
    """``{"levels.GLB.depth": 4096}`` -> ``["levels.GLB.depth=4096"]`` (lists as YAML flow)."""

    def scalar(v: Any) -> str:  # YAML spelling: null, true/false, numbers and strings as is
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    out = []
    for key, value in overrides.items():
        if isinstance(value, (list, tuple)):
            text = "[" + ",".join(scalar(v) for v in value) + "]"
        else:
            text = scalar(value)
        out.append(f"{key}={text}")
    return out


# --------------------------------------------------------------------------------------------
# architectures per point, structure groups, representatives
# --------------------------------------------------------------------------------------------

_BASE_ARCH: dict[str, Architecture] = {}
#: Most entries any per-process cache of this module holds (it is emptied when full).
CACHE_LIMIT = 4096


def base_arch(path: str | Path) -> Architecture:
    """The base architecture file, loaded once per process and content (an edited file is read
    again, never served stale from the cache)."""
    key = str(Path(path).resolve()) + ":" + _file_digest(Path(path))
    if key not in _BASE_ARCH:
        if len(_BASE_ARCH) >= CACHE_LIMIT:
            _BASE_ARCH.clear()
        _BASE_ARCH[key] = load_arch(path)
    return _BASE_ARCH[key]


def arch_for(path: str | Path, overrides: dict[str, Any]) -> Architecture:
    """The base architecture at ``path`` with the dotted ``overrides`` applied by
    :func:`~testy_model.spec.arch_loader.apply_arch_overrides` (``load_arch``'s semantics:
    table-derived energies of a level whose geometry changes are re-derived). Besides the typed
    model's own keys, ``array.pes: [256, 512, 1024]`` resizes the PE array (compute instances and
    the innermost levels' instances together, :func:`~testy_model.spec.arch_loader.scale_pes`).

    Raises :class:`SpecError` naming the override and the valid keys."""
    if not overrides:
        return base_arch(path)
    return apply_arch_overrides(base_arch(path), override_strings(overrides))


def structure_key(arch: Architecture) -> str:
    """Digest of what candidate mappings depend on: level names, kinds, widths, datawidths,
    instances, meshes, keep/bypass, constraints, compute instances/mesh/datawidth, sparsity
    support and TASD-unit presence (not capacities, bandwidths, energies, leakage or clock)."""
    levels = tuple(
        (
            lv.name,
            lv.kind,
            lv.depth is None,
            lv.width,
            lv.datawidth,
            lv.instances,
            lv.mesh_x,
            lv.keep,
            lv.bypass,
            repr(lv.constraints),
        )
        for lv in arch.levels
    )
    c = arch.compute
    blob = repr(
        (
            levels,
            (c.instances, c.mesh_x, c.datawidth),
            repr(arch.sparsity),
            arch.tasd_unit is not None,
            sorted(arch.container_parents.items()),
        )
    )
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def capacity_key(arch: Architecture) -> str:
    """Structure key plus every level's depth: points with equal keys fit the same mappings."""
    return structure_key(arch) + ":" + ",".join(str(lv.depth) for lv in arch.levels)


def representatives(archs: Sequence[Architecture]) -> tuple[Architecture, ...]:
    """Points of one structure at which the mapper runs its own search (its results join the
    shared candidates): the first point with every level's depth set to the group's minimum,
    and to its maximum (one of them when equal)."""
    first = archs[0]
    out = []
    for pick in (min, max):
        levels = []
        for i, lv in enumerate(first.levels):
            depths = [a.levels[i].depth for a in archs]
            d = None if any(x is None for x in depths) else pick(x for x in depths if x)
            levels.append(lv.model_copy(update={"depth": d}))
        rep = first.model_copy(update={"levels": tuple(levels)})
        if rep not in out:
            out.append(rep)
    return tuple(out)


class SweepContext(BaseModel):
    """Everything a worker needs besides its points (picklable; sent with every chunk).

    Attributes:
        arch: base architecture file (absolute or relative to the working directory).
        network_params: extra zoo parameters for every network (``act_density`` ...).
        plan: ``dense``, ``search``, an inline plan or a plan YAML path.
        budget: error budget of ``plan: search`` (dimensionless).
        objective: ``edp``, ``energy`` or ``latency`` (mapper per layer; search per network).
        conventions: the counting conventions (``timeloop`` or ``sparseloop-2022``).
        mapper: False = only the representatives' own mappings are candidates.
        seeds: structure key -> representative architectures (:func:`representatives`).
        keys: the dotted keys of the sweep, in column order.
        network_files: network name as written in the sweep -> resolved file path.
        cap_seeds: capacity key (:func:`capacity_key`) -> the first point of the sweep with those
            capacities; the mapper also searches there, for the points with those capacities.
            Empty when the sweep has more than ``seed_limit`` distinct capacity sets.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    arch: str
    network_params: dict[str, Any] = Field(default_factory=dict)
    plan: str = "dense"
    budget: float = 0.05
    objective: str = "edp"
    conventions: str = "timeloop"
    mapper: bool = True
    seeds: dict[str, tuple[Architecture, ...]] = Field(default_factory=dict)
    keys: tuple[str, ...] = ()
    network_files: dict[str, str] = Field(default_factory=dict)
    cap_seeds: dict[str, Architecture] = Field(default_factory=dict)


def prepare(spec: SweepSpec, points: Sequence[dict[str, Any]] | None = None) -> SweepContext:
    """Check every point's overrides (a :class:`SpecError` names the sweep's key on a bad one)
    and build the :class:`SweepContext`, with representatives per structure from all points, so
    that results do not depend on how points are chunked."""
    pts = expand_points(spec) if points is None else points
    path = str(spec.arch_path())
    if not spec.arch_path().is_file():
        raise sweep_key_error(spec, "arch", f"architecture file {path!r} does not exist")
    groups: dict[str, list[Architecture]] = {}
    caps: dict[str, Architecture] = {}
    seen: set[str] = set()
    for p in pts:
        blob = json.dumps(p["set"], sort_keys=True, default=str)
        if blob in seen:
            continue
        seen.add(blob)
        try:
            a = arch_for(path, p["set"])
        except SpecError as err:
            if err.file is not None and err.file != spec.source:
                raise  # the base architecture file itself is bad: its own file and line
            raise sweep_key_error(
                spec,
                "grid" if spec.grid else "random",
                f"point {override_strings(p['set'])}: {err.problem}",
            ) from None
        groups.setdefault(structure_key(a), []).append(a)
        caps.setdefault(capacity_key(a), a)
    keys: list[str] = list(spec.grid)
    if spec.random is not None:
        keys += [k for k in spec.random.space if k not in keys]
    files: dict[str, str] = {}
    for net in spec.networks:
        if net.endswith((".yaml", ".yml")):
            f = Path(net) if Path(net).is_absolute() else Path(spec.base_dir) / net
            files[net] = str(f)
            if not f.is_file():
                raise sweep_key_error(spec, "networks", f"network file {str(f)!r} does not exist")
            load_network(f)  # fail early, naming the file
        else:
            try:
                get_network(net, **spec.network_params)
            except SpecError as err:
                raise sweep_key_error(spec, "networks", err.problem) from None
    plan = spec.plan
    if plan.endswith((".yaml", ".yml")) and not Path(plan).is_absolute():
        plan = str(Path(spec.base_dir) / plan)
    if plan not in ("dense", "search"):
        try:
            pl = _plan(plan)  # fail early on a bad plan
            for net in spec.networks:
                names = [
                    x.name
                    for x in network_for(files.get(net, net), 0.0, spec.network_params).layers
                ]
                pl.check_layers(names)
        except SpecError as err:
            if err.file is not None and err.file != spec.source:
                raise  # a plan file: its own file and line
            raise sweep_key_error(spec, "plan", err.problem) from None
    return SweepContext(
        arch=path,
        network_params=dict(spec.network_params),
        plan=plan,
        budget=spec.budget,
        objective=spec.objective,
        conventions=spec.conventions,
        mapper=spec.mapper,
        seeds={k: representatives(v) for k, v in groups.items()},
        keys=tuple(keys),
        network_files=files,
        cap_seeds=caps if len(caps) <= spec.seed_limit else {},
    )


def _plan(text: str) -> Plan:
    if text == "dense":
        return Plan()
    return Plan.coerce(text)


# --------------------------------------------------------------------------------------------
# per-worker caches: networks, candidate mappings, candidate features
# --------------------------------------------------------------------------------------------

#: Beam-search settings of the mapper's own searches at representative points: lighter than
#: ``find_mapping``'s defaults (about 2x faster on ResNet-50, a few % higher per-layer EDP on its
#: own; the shared candidates then compete with it at every point).
SEED_SEARCH: dict[str, int] = {"beam": 4, "n_random": 128, "max_rounds": 12}

#: Shared candidates per layer shape (``mapper.candidate_nests``'s ``limit``: the whole space when
#: it is at most this large, else this many seeded random factorisations, the invalid dropped).
SHARED_LIMIT = 5000

_NETWORKS: dict[tuple, Network] = {}
_CANDS: dict[tuple, LoopNests | None] = {}
_FEATS: dict[tuple, tuple[LoopNests, CandidateFeatures] | None] = {}


def clear_caches() -> None:
    """Forget this process's cached networks, candidates and features (tests, benchmarks)."""
    _NETWORKS.clear()
    _CANDS.clear()
    _FEATS.clear()
    _BASE_ARCH.clear()


def network_for(name: str, weight_sparsity: float, params: dict[str, Any]) -> Network:
    """Zoo network ``name`` with weights pruned to ``weight_sparsity`` (cached per process).

    A name ending in ``.yaml``/``.yml`` is a network file (``load_network``); a weight sparsity
    s > 0 then sets every weight's density to ``bernoulli(1 − s)``, s = 0 keeps the file's."""
    digest = _file_digest(Path(name)) if name.endswith((".yaml", ".yml")) else ""
    key = (name, digest, weight_sparsity, json.dumps(params, sort_keys=True, default=str))
    if key not in _NETWORKS:
        if len(_NETWORKS) >= CACHE_LIMIT:
            _NETWORKS.clear()
        if name.endswith((".yaml", ".yml")):
            net = load_network(name)
            if weight_sparsity > 0:
                net = _prune(net, weight_sparsity)
        else:
            net = get_network(name, weight_sparsity=weight_sparsity, **params)
        _NETWORKS[key] = net
    return _NETWORKS[key]


def _prune(net: Network, s: float) -> Network:
    """``net`` with every weight operand at an unstructured density 1 − s."""
    layers = []
    for layer in net.layers:
        w = layer.problem.weight
        if w is None:
            layers.append(layer)
            continue
        dens = {**layer.problem.densities, w: Density(kind="bernoulli", density=1.0 - s)}
        prob = layer.problem.model_copy(update={"densities": dens})
        layers.append(layer.model_copy(update={"problem": prob}))
    return net.model_copy(update={"layers": tuple(layers)})


def point_mappings(
    ctx: SweepContext, network: Network, archs: Sequence[Architecture]
) -> list[dict[str, Mapping]]:
    """Per design point (all of one structure), the mapping the sweep chooses for each layer
    (layer name -> :class:`Mapping`), under the context's plan (dense for ``search``)."""
    plan = Plan() if ctx.plan in ("dense", "search") else _plan(ctx.plan)
    skey = structure_key(archs[0])
    return _network_totals(ctx, skey, network, archs, plan, want_maps=True)[1]


def shape_key(problem: Problem) -> tuple:
    """A layer's shape without its densities: dims, bounds, projections, coefficients,
    datawidths, operand roles."""
    return (
        problem.dimensions,
        tuple(problem.bounds[d] for d in problem.dimensions),
        tuple((ds.name, ds.projection, ds.read_write) for ds in problem.data_spaces),
        tuple(sorted(problem.coefficients.items())),
        tuple(sorted(problem.datawidths.items())),
        problem.weight,
        problem.activation,
    )


def _unbounded(arch: Architecture) -> Architecture:
    return arch.model_copy(
        update={"levels": tuple(lv.model_copy(update={"depth": None}) for lv in arch.levels)}
    )


def _shared_candidates(skey: str, problem: Problem, arch: Architecture) -> LoopNests:
    """The mapper's shared candidates of this shape on this structure (cached per process)."""
    key = (skey, shape_key(problem))
    if key not in _CANDS:
        from testy_model.mapper import candidate_nests, to_nests
        from testy_model.mapper.space import index_arch, index_problem

        cand = candidate_nests(problem, arch, densities={}, limit=SHARED_LIMIT)
        pi = index_problem(problem, {}, {})
        ai = index_arch(_unbounded(arch), problem, pi, None)
        _CANDS[key] = to_nests(pi, ai, cand)
    return _CANDS[key]


def _terms(fmts: dict[str, list[TermFormat]]) -> dict[str, list[OperandTerm]]:
    return {
        t: [
            OperandTerm(
                density=x.density, metadata_bits=x.metadata_bits, work=x.work, nonzero=x.nonzero
            )
            for x in fs
        ]
        for t, fs in fmts.items()
    }


def _seed_nests(
    ctx: SweepContext,
    which: str,
    reps: Sequence[Architecture],
    problem: Problem,
    terms: dict[str, list[OperandTerm]],
) -> LoopNests | None:
    """The mapper's own search result for the layer (with its operand ``terms``, so capacities
    hold compressed tiles) at each of ``reps`` (``which`` names them in the per-process cache)."""
    key = ("seeds", which, shape_key(problem), repr(terms), ctx.objective, ctx.conventions)
    if key not in _CANDS:
        from testy_model.mapper import find_mapping

        found = []
        for rep in reps:
            try:
                res = find_mapping(
                    problem,
                    rep,
                    objective=ctx.objective,  # type: ignore[arg-type]
                    densities=terms,  # type: ignore[arg-type]
                    conventions=ctx.conventions,
                    **SEED_SEARCH,
                )
            except MappingError:
                continue
            found.append(nests_from_mapping(res.mapping, rep, problem))
        _CANDS[key] = stack_nests(found) if found else None
    return _CANDS[key]


def _cap_features(
    ctx: SweepContext, ckey: str, layer: Layer, arch: Architecture, plan: LayerPlan
) -> tuple[LoopNests, CandidateFeatures] | None:
    """The mapper's search result at the capacity representative ``ckey`` and its features
    (cached per process); None when the sweep has no such representative."""
    rep = ctx.cap_seeds.get(ckey)
    if rep is None:
        return None
    fmts, tv = layer_terms(layer, plan, arch)
    terms = _terms(fmts)
    key = ("cap", ckey, shape_key(layer.problem), repr(terms), tv, ctx.objective, ctx.conventions)
    if key not in _FEATS:
        nests = _seed_nests(ctx, "cap:" + ckey, [rep], layer.problem, terms)
        if nests is None:
            return None
        _FEATS[key] = (
            nests,
            candidate_features(
                layer.problem, arch_arrays(arch), nests, terms, tv, conventions=ctx.conventions
            ),
        )
    return _FEATS[key]


def _features(
    ctx: SweepContext, skey: str, layer: Layer, arch: Architecture, plan: LayerPlan
) -> tuple[LoopNests, CandidateFeatures] | None:
    """Candidates shared by every point of structure ``skey`` (the mapper's shared candidates,
    and its search results at the structure's extremes when capacity sets have no
    representatives of their own) and their features for ``layer`` under ``plan`` (cached per
    process); None when there are none (``mapper: false`` with capacity representatives)."""
    fmts, tv = layer_terms(layer, plan, arch)
    terms = _terms(fmts)
    key = (
        skey, shape_key(layer.problem), repr(terms), tv, ctx.objective, ctx.mapper,
        ctx.conventions,
    )  # fmt: skip
    if key in _FEATS:
        return _FEATS[key]
    parts = [_shared_candidates(skey, layer.problem, arch)] if ctx.mapper else []
    # the structure's extremes, unless every capacity set has its own representative
    reps = () if ctx.cap_seeds else ctx.seeds.get(skey, ())
    seeds = _seed_nests(ctx, "struct:" + skey, reps, layer.problem, terms)
    parts += [] if seeds is None else [seeds]
    if not parts:
        _FEATS[key] = None  # type: ignore[assignment]
        return None
    nests = stack_nests(parts)
    feats = candidate_features(
        layer.problem, arch_arrays(arch), nests, terms, tv, conventions=ctx.conventions
    )
    _FEATS[key] = (nests, feats)
    return nests, feats


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
            (shape_key(layer.problem), repr(layer.problem.densities), str(lp)), []
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
                nests, feats = base if extra is None else extra  # type: ignore[misc]
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
            objective=ctx.objective,
            mappings=maps[i],  # type: ignore[arg-type]
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
