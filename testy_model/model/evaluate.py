"""``evaluate``: a network × plan × architecture × mappings → :class:`~testy_model.report.Report`.

The pipeline, in order:

1. each layer gets its mapping (one :class:`Mapping` for all, a dict by layer name, or a
   callable ``(layer, arch) -> Mapping``) as loop nests;
2. each layer's plan gives the term formats of its operands (``model.terms``: expected or
   measured kept densities, metadata bits, hardware work ratios);
3. each layer is priced by the one cost core (:func:`~testy_model.model.cost.price`) with one
   of its two stages: the **sparse stage** when the layer has Sparseloop optimizations (given
   as ``sparse``, e.g. the ``sparse_optimizations`` of Timeloop/Sparseloop input files; or, when
   no plan is given, the architecture's ``sparsity:`` support translated by
   :func:`~testy_model.spec.sparseloop.sparse_opts_from_support` for an operand whose density is
   N:M on a supported pattern or Sparseloop's ``fixed-structured``), else the **term stage**
   (the plan's TASD terms);
4. layers with the same problem structure (dimensions, projections, coefficients; for the
   sparse stage the same problem) are stacked into one batch and priced by one call, once as
   above and once dense (the baseline of the speed-up and energy ratio), so a ResNet-sized
   network is a handful of vectorised calls;
5. the results become a :class:`Report` (per layer; totals sum the layers in topological order).

``conventions`` (:class:`~testy_model.spec.conventions.Conventions`) selects Timeloop v3.0.3's
counting (default) or the Sparseloop 2022 artifact's.

:func:`evaluate` is the entry point: it takes a network (or its dataflow graph) and traverses it
(``model.graph_eval``), pricing the GEMM-like layers through :func:`evaluate_layers` (the steps
above) and the other operators and the tensors between them on top.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.model.arrays import arch_arrays
from testy_model.model.layer_inputs import (
    Mappings,
    _prepare,
    _Prepared,  # noqa: F401  (re-exported: old import path)
    _stack_terms,  # noqa: F401  (re-exported: old import path)
    _structure_key,  # noqa: F401  (re-exported: old import path)
    as_network,
    layer_sparse_opts,
    mapping_for,
)
from testy_model.model.layer_results import _accesses, _evaluate_group  # noqa: F401
from testy_model.model.plan import Plan
from testy_model.model.point_eval import PointCosts, _operator_points, evaluate_points  # noqa: F401
from testy_model.model.terms import DensitySource, oriented_arch
from testy_model.report import LayerResult, Report
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.sparseloop import SparseOptimizations
from testy_model.spec.workload import Layer, Network, Problem

__all__ = [
    "Mappings",
    "PointCosts",
    "as_network",
    "evaluate",
    "evaluate_layers",
    "evaluate_points",
    "layer_sparse_opts",
    "mapping_for",
]


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
    sparse: SparseOptimizations | None = None,
    conventions: Conventions | str | None = None,
) -> Report:
    """Evaluate ``network`` on ``arch``: a traversal of its dataflow graph
    (:func:`testy_model.model.graph_eval.evaluate_graph`; arguments there and in
    :func:`evaluate_layers`: ``sparse`` selects the sparse stage, ``conventions`` the counting).
    ``network`` may be a :class:`Network`, its ``networkx`` graph
    (``graph.dataflow.network_graph``), one :class:`Layer` or one :class:`Problem`."""
    from testy_model.model.graph_eval import evaluate_graph

    if isinstance(network, (Layer, Problem)):
        network = as_network(network)
    return evaluate_graph(
        network, arch, mappings, plan, densities_source, tensors, base_dir, dense_mappings,
        fusion=fusion, fusion_level=fusion_level, sparse=sparse, conventions=conventions,
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
    *,
    sparse: SparseOptimizations | None = None,
    conventions: Conventions | str | None = None,
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
        sparse: Sparseloop ``sparse_optimizations`` applied to every layer (the sparse stage,
            with each layer's problem densities); None: when ``plan`` is None too, the
            architecture's ``sparsity:`` support where it applies (:func:`layer_sparse_opts`).
        conventions: ``timeloop`` (default, v3.0.3) or ``sparseloop-2022`` (the MICRO 2022
            artifact's counting: ``stream:`` lists counted, first output fills counted).
    """
    net = as_network(network)
    pl = Plan.coerce(plan)
    conv = Conventions.parse(conventions)
    aa = arch_arrays(arch)
    n = len(net.layers)
    prep = _prepare(
        net, arch, mappings, pl, densities_source, tensors, base_dir, sparse, plan is None
    )
    dense_nests = (
        prep.nests
        if dense_mappings is None
        else _prepare(net, arch, dense_mappings, Plan.coerce(None)).nests
    )
    if tasd_scale:
        prep = dataclasses.replace(
            prep,
            terms=[
                dataclasses.replace(lt, tasd_values=lt.tasd_values * tasd_scale.get(x.name, 1.0))
                for lt, x in zip(prep.terms, net.layers, strict=True)
            ],
        )
    results: list[LayerResult | None] = [None] * n
    for idx in prep.groups:
        lp = pl.for_layer(net.layers[idx[0]].name)
        aa_g = (
            arch_arrays(oriented_arch(arch, net.layers[idx[0]].problem, True))
            if lp.transposed
            else aa
        )
        for i, r in zip(
            idx, _evaluate_group(net, idx, aa_g, prep, pl, dense_nests, conv, aa), strict=True
        ):
            results[i] = dataclasses.replace(r, density_sources=prep.terms[i].sources)
    return Report(
        network=net.name,
        arch=arch.name,
        plan=str(pl),
        clock_ghz=arch.compute.clock_ghz,
        layers=tuple(r for r in results if r is not None),
        conventions=conv.value,
    )
