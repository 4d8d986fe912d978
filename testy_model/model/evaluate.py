"""``evaluate``: a network × plan × architecture × mappings → :class:`~testy_model.report.Report`.

The pipeline, in order:

1. each layer gets its mapping (one :class:`Mapping` for all, a dict by layer name, or a
   callable ``(layer, arch) -> Mapping``) as loop nests;
2. each layer's plan gives the term formats of its operands (``model.terms``: expected or
   measured kept densities, metadata bits, hardware work ratios);
3. layers with the same problem structure (dimensions, projections, coefficients) are stacked
   into one batch and priced by one call of the batched core (``evaluate_terms``), once under
   the plan and once dense (the baseline of the speed-up and energy ratio), so a ResNet-sized
   network is a handful of vectorised calls;
4. the results become a :class:`Report` (per layer; totals sum the layers in topological order).

:func:`evaluate` is the entry point: it takes a network (or its dataflow graph) and traverses it
(``model.graph_eval``), pricing the GEMM-like layers through :func:`evaluate_layers` (the steps
above) and the other operators and the tensors between them on top.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.errors import MappingError
from testy_model.model.arrays import ArchArrays, arch_arrays
from testy_model.model.cost import NestCost, OperandTerm, evaluate_terms
from testy_model.model.nest import LoopNests, nests_from_mapping, stack_nests
from testy_model.model.plan import Plan
from testy_model.model.reuse import dense_counts
from testy_model.model.terms import (
    DensitySource,
    LayerTerms,
    TermFormat,
    layer_terms_sourced,
)
from testy_model.report import LayerResult, Report
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Layer, Network, Problem

Mappings = Mapping | MappingABC[str, Mapping] | Callable[[Layer, Architecture], Mapping]


def as_network(workload: Network | Layer | Problem) -> Network:
    """A :class:`Network` from a network, one layer or one problem (a one-layer network)."""
    if isinstance(workload, Network):
        return workload
    if isinstance(workload, Layer):
        return Network(name=workload.name, layers=(workload,))
    return Network(name=workload.name, layers=(Layer(name=workload.name, problem=workload),))


def mapping_for(layer: Layer, arch: Architecture, mappings: Mappings) -> Mapping:
    """The mapping of ``layer`` (:class:`MappingError` naming the layer when there is none)."""
    if isinstance(mappings, Mapping):
        return mappings
    if callable(mappings) and not isinstance(mappings, MappingABC):
        return mappings(layer, arch)
    if layer.name in mappings:
        return mappings[layer.name]
    if "default" in mappings:
        return mappings["default"]
    raise MappingError(
        f"no mapping for layer {layer.name!r} (have {sorted(mappings)}; add one or a 'default')"
    )


def _structure_key(p: Problem) -> tuple:
    return (
        p.dimensions,
        p.data_spaces,
        tuple(sorted(p.coefficients.items())),
        tuple(sorted(p.datawidths.items())),
        p.weight,
        p.activation,
    )


def _stack_terms(rows: list[list[TermFormat]]) -> list[OperandTerm]:
    """Per-layer term lists → a list of OperandTerm with (G,) arrays, padded with empty terms."""
    k = max(len(r) for r in rows)
    out = []
    for i in range(k):
        dens = np.array([r[i].density if i < len(r) else 0.0 for r in rows])
        bits = np.array([r[i].metadata_bits if i < len(r) else 0.0 for r in rows])
        work = np.array([r[i].work if i < len(r) else 0.0 for r in rows])
        out.append(OperandTerm(density=dens, metadata_bits=bits, work=work))
    return out


def _accesses(cost: NestCost, row: int) -> dict[str, dict[str, dict[str, float]]]:
    inst = cost.instances[row][:, None]
    keys = ("reads", "fills", "updates", "metadata_reads")
    arrs = [
        (a[row] * inst).tolist()
        for a in (cost.reads, cost.fills, cost.updates, cost.metadata_reads)
    ]
    return {
        lvl: {
            t: {k: arrs[j][li][ti] for j, k in enumerate(keys)}
            for ti, t in enumerate(cost.tensor_names)
        }
        for li, lvl in enumerate(cost.level_names)
    }


def _prepare(
    net: Network,
    arch: Architecture,
    mappings: Mappings,
    pl: Plan,
    source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
) -> tuple[list[LoopNests], list[LayerTerms], list[list[int]]]:
    """Per layer: its loop nest and its operands' terms (:func:`layer_terms_sourced`); and the
    groups of layer indices sharing one problem structure (each group is one batched call)."""
    nests: list[LoopNests] = []
    lts: list[LayerTerms] = []
    groups: dict[tuple, list[int]] = {}
    for i, layer in enumerate(net.layers):
        m = mapping_for(layer, arch, mappings)
        nests.append(nests_from_mapping(m, arch, layer.problem))
        lts.append(
            layer_terms_sourced(layer, pl.for_layer(layer.name), arch, source, tensors, base_dir)
        )
        groups.setdefault(_structure_key(layer.problem), []).append(i)
    return nests, lts, list(groups.values())


def evaluate(
    network: Network | Layer | Problem | Any,
    arch: Architecture,
    mappings: Mappings,
    plan: Plan | str | Path | None = None,
    densities_source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
    dense_mappings: Mappings | None = None,
    *,
    fusion: str = "none",
    fusion_level: str | None = None,
) -> Report:
    """Evaluate ``network`` on ``arch``: a traversal of its dataflow graph
    (:func:`testy_model.model.graph_eval.evaluate_graph`; arguments there and in
    :func:`evaluate_layers`). ``network`` may be a :class:`Network`, its ``networkx`` graph
    (``graph.dataflow.network_graph``), one :class:`Layer` or one :class:`Problem`."""
    from testy_model.model.graph_eval import evaluate_graph

    if isinstance(network, (Layer, Problem)):
        network = as_network(network)
    return evaluate_graph(
        network, arch, mappings, plan, densities_source, tensors, base_dir, dense_mappings,
        fusion=fusion, fusion_level=fusion_level,
    )  # fmt: skip


def evaluate_layers(
    network: Network | Layer | Problem,
    arch: Architecture,
    mappings: Mappings,
    plan: Plan | str | Path | None = None,
    densities_source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
    dense_mappings: Mappings | None = None,
    tasd_scale: MappingABC[str, float] | None = None,
) -> Report:
    """Evaluate every GEMM-like layer of ``network`` on ``arch``, each alone (module docstring;
    units in ``report``); the network's other operators are not priced here.

    Args:
        network: a :class:`Network`, one :class:`Layer` or one :class:`Problem`.
        arch: the architecture.
        mappings: one mapping for all layers, a dict layer name -> mapping (key ``default`` as a
            fallback), or a callable ``(layer, arch) -> Mapping`` (e.g. the mapper).
        plan: a :class:`Plan`, an inline plan string, a YAML plan path, or None (dense).
        densities_source: ``"expected"`` (closed form) or ``"measured"`` (real tensors).
        tensors: real arrays per layer name ``{"weight": arr, "activation": arr}`` for
            ``"measured"`` (else the layers' ``weight_tensor``/``activation_tensor`` files).
        base_dir: directory that relative tensor paths resolve against.
        dense_mappings: mappings of the dense baseline (same forms as ``mappings``); default:
            the same mappings as the plan. Give the dense run its own (e.g. the mapper's dense
            choice) when ``mappings`` were chosen for the plan's terms, so that speed-up and
            energy ratio compare each configuration on its own best mapping.
        tasd_scale: layer name -> factor on its TASD-unit values (default 1); the graph
            evaluation sets 0 where another consumer of the same tensor already paid for its
            decomposition (the unit sits on the producer's output).
    """
    net = as_network(network)
    pl = Plan.coerce(plan)
    aa = arch_arrays(arch)
    n = len(net.layers)
    nests, lts, groups = _prepare(net, arch, mappings, pl, densities_source, tensors, base_dir)
    dense_nests = (
        nests
        if dense_mappings is None
        else _prepare(net, arch, dense_mappings, Plan.coerce(None), "expected", None, None)[0]
    )
    fmts = [lt.formats for lt in lts]
    scale = tasd_scale or {}
    tasd = [lt.tasd_values * scale.get(x.name, 1.0) for lt, x in zip(lts, net.layers, strict=True)]
    sources = [lt.sources for lt in lts]
    results: list[LayerResult | None] = [None] * n
    for idx in groups:
        results_group = _evaluate_group(net, idx, aa, nests, fmts, tasd, pl, dense_nests)
        for i, r in zip(idx, results_group, strict=True):
            results[i] = dataclasses.replace(r, density_sources=sources[i])
    return Report(
        network=net.name,
        arch=arch.name,
        plan=str(pl),
        clock_ghz=arch.compute.clock_ghz,
        layers=tuple(r for r in results if r is not None),
    )


def _evaluate_group(
    net: Network,
    idx: Sequence[int],
    aa: ArchArrays,
    nests: Sequence[LoopNests],
    fmts: Sequence[dict[str, list[TermFormat]]],
    tasd: Sequence[float],
    pl: Plan,
    dense_nests: Sequence[LoopNests],
) -> list[LayerResult]:
    prob = net.layers[idx[0]].problem
    batch = stack_nests([nests[i] for i in idx])
    bounds = np.array(
        [[net.layers[i].problem.bounds[d] for d in prob.dimensions] for i in idx], dtype=np.int64
    )
    counts = dense_counts(prob, batch)
    terms = {t: _stack_terms([fmts[i][t] for i in idx]) for t in fmts[idx[0]]}
    cost = evaluate_terms(
        prob,
        aa,
        batch,
        terms,
        tasd_values=np.array([tasd[i] for i in idx]),
        bounds=bounds,
        counts=counts,
    )
    if dense_nests is nests:
        dense = evaluate_terms(prob, aa, batch, {}, bounds=bounds, counts=counts)
    else:
        dbatch = stack_nests([dense_nests[i] for i in idx])
        dense = evaluate_terms(
            prob, aa, dbatch, {}, bounds=bounds, counts=dense_counts(prob, dbatch)
        )
    out = []
    for row, i in enumerate(idx):
        layer = net.layers[i]
        labels = tuple(f"{t}:{'+'.join(x.label for x in fmts[i][t])}" for t in fmts[i])
        out.append(
            LayerResult(
                name=layer.name,
                plan=str(pl.for_layer(layer.name)),
                cycles=float(cost.cycles[row]),
                seconds=float(cost.seconds[row]),
                energy_pj=float(cost.energy_pj[row]),
                energy_by_component={k: float(v[row]) for k, v in cost.energy_by_component.items()},
                accesses=_accesses(cost, row),
                utilisation=float(cost.utilisation[row]),
                macs=float(cost.macs[row]),
                effective_macs=float(cost.effective_macs[row]),
                compute_cycles=float(cost.compute_cycles[row]),
                dense_cycles=float(dense.cycles[row]),
                dense_energy_pj=float(dense.energy_pj[row]),
                valid=bool(cost.valid[row]),
                terms=labels,
                level_cycles={
                    lvl: float(cost.level_cycles[row, li])
                    for li, lvl in enumerate(cost.level_names)
                },
                tasd_cycles=float(cost.tasd_cycles[row]),
                kind=layer.problem.shape_name,
            )
        )
    return out


@dataclass(frozen=True)
class PointCosts:
    """Costs of one network at P design points (arrays; units as in ``report``).

    ``cycles``/``energy_pj``/``valid`` are (P, layers) in network order; ``operator_cycles``/
    ``operator_energy_pj`` (P, operators) the network's non-GEMM operators (no fusion, execution
    order); ``total_cycles``, ``total_energy_pj``, ``total_seconds`` and ``edp_pj_s`` are (P,)
    and include them.
    """

    layer_names: tuple[str, ...]
    cycles: np.ndarray
    energy_pj: np.ndarray
    valid: np.ndarray
    total_cycles: np.ndarray
    total_seconds: np.ndarray
    total_energy_pj: np.ndarray
    edp_pj_s: np.ndarray
    operator_names: tuple[str, ...] = ()
    operator_cycles: np.ndarray | None = None
    operator_energy_pj: np.ndarray | None = None


def evaluate_points(
    network: Network | Layer | Problem,
    arch: Architecture,
    mappings: Mappings,
    points: ArchArrays,
    plan: Plan | str | Path | None = None,
) -> PointCosts:
    """Evaluate ``network`` at every design point of ``points`` in one batch per layer group.

    ``arch`` gives the level structure, sparsity support and the mappings' targets; ``points``
    (e.g. ``arch_arrays(arch).replace(read_energy=...)`` or ``arch_arrays([a1, a2, ...])``)
    gives P sets of numbers. Each group of G same-structure layers is one call of the batched
    core on G·P rows (layer-major), so no Python loop runs over design points.
    """
    net = as_network(network)
    pl = Plan.coerce(plan)
    p = points.points
    n = len(net.layers)
    cycles = np.zeros((p, n))
    energy = np.zeros((p, n))
    valid = np.zeros((p, n), dtype=bool)
    nests, lts, groups = _prepare(net, arch, mappings, pl)
    fmts = [lt.formats for lt in lts]
    tasd = [lt.tasd_values for lt in lts]
    for idx in groups:
        g = len(idx)
        prob = net.layers[idx[0]].problem
        base = stack_nests([nests[i] for i in idx])
        rows = np.repeat(np.arange(g), p)  # layer-major: row = layer·P + point
        batch = base.select(rows)
        bounds = np.array(
            [[net.layers[i].problem.bounds[d] for d in prob.dimensions] for i in idx]
        )[rows]
        tiled = dataclasses.replace(
            points,
            **{
                f.name: np.tile(v, (g, 1)) if v.ndim == 2 else np.tile(v, g)
                for f in dataclasses.fields(points)
                if isinstance(v := getattr(points, f.name), np.ndarray)
            },
        )
        terms = {
            t: [
                OperandTerm(
                    density=x.density[rows], metadata_bits=x.metadata_bits[rows], work=x.work[rows]
                )  # type: ignore[index]
                for x in _stack_terms([fmts[i][t] for i in idx])
            ]
            for t in fmts[idx[0]]
        }
        cost = evaluate_terms(
            prob,
            tiled,
            batch,
            terms,
            tasd_values=np.array([tasd[i] for i in idx])[rows],
            bounds=bounds,
        )
        cols = np.array(idx)
        cycles[:, cols] = cost.cycles.reshape(g, p).T
        energy[:, cols] = cost.energy_pj.reshape(g, p).T
        valid[:, cols] = cost.valid.reshape(g, p).T
    ops = _operator_points(net, points)
    tot_c = cycles.sum(axis=1) + ops[1].sum(axis=1)
    secs = tot_c / points.clock_ghz / 1e9
    tot_e = energy.sum(axis=1) + ops[2].sum(axis=1)
    return PointCosts(
        layer_names=tuple(x.name for x in net.layers),
        cycles=cycles,
        energy_pj=energy,
        valid=valid,
        total_cycles=tot_c,
        total_seconds=secs,
        total_energy_pj=tot_e,
        edp_pj_s=tot_e * secs,
        operator_names=ops[0],
        operator_cycles=ops[1],
        operator_energy_pj=ops[2],
    )


def _operator_points(
    net: Network, points: ArchArrays
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Names, (P, n) cycles and (P, n) energy of the network's non-GEMM operators at every
    design point (``model.elementwise``; tensors through the outermost level)."""
    p = points.points
    if not net.operators:
        return (), np.zeros((p, 0)), np.zeros((p, 0))
    from testy_model.graph.dataflow import as_graph, operand_reads
    from testy_model.model.elementwise import operator_costs
    from testy_model.model.graph_eval import operator_traffic

    g = as_graph(net)
    names, traffic = operator_traffic(g, operand_reads(g), len(points.level_names))
    cost = operator_costs(traffic, points)
    shape = (p, len(names))
    return tuple(names), np.broadcast_to(cost.cycles, shape), np.broadcast_to(cost.energy_pj, shape)
