"""Evaluation at many design points: a network's per-layer and total costs at P sets of
architecture numbers (:class:`~testy_model.model.arrays.ArchArrays`), one batched cost-core
call per layer group on G·P rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.model.arrays import ArchArrays
from testy_model.model.cost import NestCost, OperandTerm, price
from testy_model.model.layer_inputs import Mappings, _prepare, _Prepared, _stack_terms, as_network
from testy_model.model.nest import stack_nests
from testy_model.model.plan import Plan
from testy_model.model.reuse import dense_counts, take_counts
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.sparseloop import SparseOptimizations
from testy_model.spec.workload import Layer, Network, Problem


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
    *,
    sparse: SparseOptimizations | None = None,
    conventions: Conventions | str | None = None,
) -> PointCosts:
    """Evaluate ``network`` at every design point of ``points`` in one batch per layer group.

    ``arch`` gives the level structure, sparsity support and the mappings' targets; ``points``
    (e.g. ``arch_arrays(arch).replace(read_energy=...)`` or ``arch_arrays([a1, a2, ...])``)
    gives P sets of numbers. Each group of G same-structure layers is one call of the cost core
    on G·P rows (layer-major), so no Python loop runs over design points. ``sparse`` and
    ``conventions`` as in :func:`evaluate` (the sparse stage reads the structural numbers of
    the first design point: block sizes, metadata widths).
    """
    net = as_network(network)
    pl = Plan.coerce(plan)
    conv = Conventions.parse(conventions)
    p = points.points
    n = len(net.layers)
    cycles = np.zeros((p, n))
    energy = np.zeros((p, n))
    valid = np.zeros((p, n), dtype=bool)
    prep = _prepare(net, arch, mappings, pl, sparse=sparse, support=plan is None)
    for idx in prep.groups:
        g = len(idx)
        cost = _price_group_points(net, idx, points, prep, conv)
        cols = np.array(idx)
        cycles[:, cols] = np.broadcast_to(cost.cycles, (g * p,)).reshape(g, p).T
        energy[:, cols] = np.broadcast_to(cost.energy_pj, (g * p,)).reshape(g, p).T
        valid[:, cols] = np.broadcast_to(cost.valid, (g * p,)).reshape(g, p).T
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


def _price_group_points(
    net: Network, idx: Sequence[int], points: ArchArrays, prep: _Prepared, conv: Conventions
) -> NestCost:
    """Price one group of G same-structure layers at every design point of ``points``: one
    cost-core call on G·P rows, layer-major (row = layer·P + point)."""
    p = points.points
    fmts = [lt.formats for lt in prep.terms]
    g = len(idx)
    prob = net.layers[idx[0]].problem
    base = stack_nests([prep.nests[i] for i in idx])
    rows = np.repeat(np.arange(g), p)  # layer-major: row = layer·P + point
    batch = base.select(rows)
    dims = prob.dimensions
    bounds = np.array([[net.layers[i].problem.bounds[d] for d in dims] for i in idx])[rows]
    # field name -> its value tiled over the layers (Any: the fields' types differ)
    tiles: dict[str, Any] = {
        f.name: np.tile(v, (g,) + (1,) * (v.ndim - 1)) if v.ndim >= 2 else np.tile(v, g)
        for f in dataclasses.fields(points)
        if isinstance(v := getattr(points, f.name), np.ndarray)
    }
    tiled = dataclasses.replace(points, **tiles)
    opts = prep.sparse[idx[0]]
    # the dense counts depend on the mappings only: once per layer, repeated over points
    fx = points.fanout_x[0] if points.fanout_x is not None else None
    counts = take_counts(dense_counts(prob, base, conventions=conv, fanout_x=fx), rows)
    if opts is not None:
        cost = price(
            prob, tiled, batch, sparse=opts, bounds=bounds, conventions=conv, counts=counts
        )
    else:
        terms = {
            t: [
                OperandTerm(
                    # _stack_terms fills every field with a (G,) array
                    density=np.asarray(x.density)[rows],
                    metadata_bits=np.asarray(x.metadata_bits)[rows],
                    work=np.asarray(x.work)[rows],
                    nonzero=np.asarray(x.nonzero)[rows],
                )
                for x in _stack_terms([fmts[i][t] for i in idx])
            ]
            for t in fmts[idx[0]]
        }
        cost = price(
            prob,
            tiled,
            batch,
            terms=terms,
            tasd_values=np.array([prep.terms[i].tasd_values for i in idx])[rows],
            bounds=bounds,
            conventions=conv,
            counts=counts,
        )
    return cost


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
