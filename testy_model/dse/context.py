"""Sweep context: each point's architecture, structure groups, representatives, networks.

:class:`SweepContext` is what a worker needs besides its points; :func:`prepare` checks every
point and builds it. Architectures are grouped by *structure* (:func:`structure_key`) and by
capacity set (:func:`capacity_key`); networks are pruned per weight sparsity
(:func:`network_for`). The per-process caches here are bounded by :data:`CACHE_LIMIT`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testy_model.dse.points import _file_digest, expand_points, override_strings
from testy_model.errors import SpecError
from testy_model.graph.zoo import get_network
from testy_model.model.plan import Plan
from testy_model.spec.arch import Architecture
from testy_model.spec.arch_loader import apply_arch_overrides, load_arch
from testy_model.spec.inputs import file_has_sparse_optimizations
from testy_model.spec.loaders import load_network
from testy_model.spec.sweep_spec import SweepSpec, sweep_key_error
from testy_model.spec.workload import Density, Network

_BASE_ARCH: dict[str, Architecture] = {}
#: Most entries any per-process cache of the sweep modules holds (it is emptied when full).
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
    if file_has_sparse_optimizations(path):
        raise sweep_key_error(
            spec,
            "arch",
            f"architecture file {path!r} has a sparse_optimizations block (Sparseloop formats, "
            "gating, skipping): a sweep prices the engine's N:M support and the networks' "
            "densities only, so it would ignore the block; price such a design with eval or map "
            "(one design point each), or sweep an architecture file without the block",
        )
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


_NETWORKS: dict[tuple, Network] = {}


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
