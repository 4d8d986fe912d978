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
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.errors import MappingError
from testy_model.model.arrays import ArchArrays, arch_arrays
from testy_model.model.cost import NestCost, OperandTerm, price
from testy_model.model.hierarchical import hardware_for
from testy_model.model.nest import LoopNests, nests_from_mapping, stack_nests
from testy_model.model.plan import Plan
from testy_model.model.reuse import dense_counts, take_counts
from testy_model.model.terms import (
    DensitySource,
    LayerTerms,
    TermFormat,
    layer_terms_sourced,
    oriented_arch,
)
from testy_model.report import LayerResult, Report
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.mapping import Mapping
from testy_model.spec.sparseloop import SparseOptimizations, sparse_opts_from_support
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
        nz = np.array([r[i].kept if i < len(r) else 0.0 for r in rows])
        out.append(OperandTerm(density=dens, metadata_bits=bits, work=work, nonzero=nz))
    return out


def _accesses(cost: NestCost, row: int, splits: bool) -> dict[str, dict[str, dict[str, Any]]]:
    """Per level and tensor: totals over the utilized instances (``reads``/``fills``/``updates``
    actual, ``metadata_reads``); with ``splits``, ``*_split`` ``{"actual", "gated",
    "skipped"}`` beside each kind, ``algorithmic`` ``{kind: dense count}`` and, where the level
    keeps the tensor in a
    format, ``format`` ``{kind: {split: [[metadata units, payload units] per rank]}}`` (rank 0
    innermost, Timeloop's numbering) and ``format_bits`` ``{kind: {split: bits}}``."""
    util = np.broadcast_to(cost.utilized, cost.reads.shape)[row]
    kinds = ("reads", "fills", "updates")
    names = {"random": "actual", "gated": "gated", "skipped": "skipped"}
    tot = {k: (getattr(cost, k)[row] * util).tolist() for k in (*kinds, "metadata_reads")}
    split = {
        k: {names[s]: (v[row] * util).tolist() for s, v in cost.splits[k].items()} for k in kinds
    }
    dense = cost.dense
    alg = (
        {k: (getattr(dense, k)[row] * util).tolist() for k in kinds}
        if splits and dense is not None
        else None
    )
    sc = cost.sparse
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for li, lvl in enumerate(cost.level_names):
        row_out: dict[str, dict[str, Any]] = {}
        for ti, t in enumerate(cost.tensor_names):
            entry: dict[str, Any] = {k: tot[k][li][ti] for k in (*kinds, "metadata_reads")}
            if splits:
                for k in kinds:
                    entry[f"{k}_split"] = {s: v[li][ti] for s, v in split[k].items()}
                if alg is not None:
                    entry["algorithmic"] = {k: alg[k][li][ti] for k in kinds}
            n_r = int(sc.n_ranks[li, ti]) if sc is not None and sc.n_ranks is not None else 0
            if splits and sc is not None and n_r:
                md = cost.stage.md_bits if cost.stage is not None else None
                if md is not None:
                    entry["format_bits"] = {
                        k: {
                            names[s]: float(
                                np.broadcast_to(md[k][s], cost.reads.shape)[row, li, ti]
                            )
                            * float(util[li, ti])
                            for s in ("random", "gated", "skipped")
                        }
                        for k in kinds
                    }
                entry["format"] = {
                    k: {
                        names[s]: (sc.fmt[k][s][row, li, ti, :n_r] * util[li, ti]).tolist()
                        for s in ("random", "gated", "skipped")
                    }
                    for k in kinds
                }
            row_out[t] = entry
        out[lvl] = row_out
    return out


def layer_sparse_opts(
    layer: Layer, arch: Architecture, support: bool, sparse: SparseOptimizations | None
) -> SparseOptimizations | None:
    """The Sparseloop optimizations ``layer`` is priced with (None: the term stage).

    ``sparse`` when given; else, with ``support`` (no plan given: the engine runs the operands
    as they are, no TASD decomposition), the architecture's ``sparsity:`` support
    (:func:`sparse_opts_from_support`) for each operand whose density is N:M on a pattern the
    engine supports (``hardware_for``) or Sparseloop's ``fixed-structured`` below 1. A plan,
    even an all-dense one, selects the term stage (the TASD semantics the plan search prices).
    """
    if sparse is not None:
        return sparse
    if not support:
        return None
    prob = layer.problem
    ops = []
    for op, tensor in (("A", prob.weight), ("B", prob.activation)):
        sup = arch.sparsity.operand(op)
        dens = prob.densities.get(tensor) if tensor is not None else None
        if dens is None or not sup.patterns or dens.value >= 1.0:
            continue
        nm = dens.kind == "nm" and dens.pattern is not None
        flat = sup.model_copy(update={"hierarchical": ()}) if nm else sup
        if (nm and hardware_for(dens.pattern, flat) is not None) or dens.kind == "fixed_structured":
            ops.append(op)
    if not ops:
        return None
    opts = sparse_opts_from_support(arch, prob, ops)
    return None if opts.is_dense else opts


@dataclass(frozen=True)
class _Prepared:
    """Per layer: loop nests, TASD terms, Sparseloop optimizations (None: term stage); and the
    groups of layer indices priced by one batched call each."""

    nests: list[LoopNests]
    terms: list[LayerTerms]
    sparse: list[SparseOptimizations | None]
    groups: list[list[int]]


def _prepare(
    net: Network,
    arch: Architecture,
    mappings: Mappings,
    pl: Plan,
    source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
    sparse: SparseOptimizations | None = None,
    support: bool = False,
) -> _Prepared:
    """Per layer: its loop nest, its operands' terms (:func:`layer_terms_sourced`) and its
    sparse optimizations (:func:`layer_sparse_opts`); layers sharing one problem structure and
    stage (for the sparse stage: one problem and one set of optimizations) form one group."""
    nests: list[LoopNests] = []
    lts: list[LayerTerms] = []
    sps: list[SparseOptimizations | None] = []
    groups: dict[tuple, list[int]] = {}
    for i, layer in enumerate(net.layers):
        lp = pl.for_layer(layer.name)
        m = mapping_for(layer, arch, mappings)
        seen = oriented_arch(arch, layer.problem, lp.transposed)
        nests.append(nests_from_mapping(m, seen, layer.problem))
        lts.append(layer_terms_sourced(layer, lp, arch, source, tensors, base_dir))
        sp = layer_sparse_opts(layer, arch, support, sparse)
        sps.append(sp)
        key = (_structure_key(layer.problem), lp.transposed)
        if sp is not None:
            key = (key, layer.problem.model_dump_json(), sp.model_dump_json())
        groups.setdefault(key, []).append(i)
    return _Prepared(nests, lts, sps, list(groups.values()))


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


def _evaluate_group(
    net: Network,
    idx: Sequence[int],
    aa: ArchArrays,
    prep: _Prepared,
    pl: Plan,
    dense_nests: Sequence[LoopNests],
    conv: Conventions,
    dense_aa: ArchArrays,
) -> list[LayerResult]:
    """Price one group of same-structure, same-orientation layers (``aa``: the engine as the
    group's orientation sees it) under the plan, and dense on ``dense_aa`` (the engine as is)."""
    prob = net.layers[idx[0]].problem
    batch = stack_nests([prep.nests[i] for i in idx])
    bounds = np.array(
        [[net.layers[i].problem.bounds[d] for d in prob.dimensions] for i in idx], dtype=np.int64
    )
    fx = aa.fanout_x[0] if aa.fanout_x is not None else None
    counts = dense_counts(prob, batch, conventions=conv, fanout_x=fx)
    opts = prep.sparse[idx[0]]
    fmts = [lt.formats for lt in prep.terms]
    common = {"conventions": conv, "bounds": bounds}
    if opts is not None:
        cost = price(prob, aa, batch, sparse=opts, counts=counts, **common)
    else:
        terms = {t: _stack_terms([fmts[i][t] for i in idx]) for t in fmts[idx[0]]}
        tv = np.array([prep.terms[i].tasd_values for i in idx])
        cost = price(prob, aa, batch, terms=terms, tasd_values=tv, counts=counts, **common)
    if dense_nests is prep.nests:
        dense = price(prob, dense_aa, batch, counts=counts, **common)
    else:
        dbatch = stack_nests([dense_nests[i] for i in idx])
        dense = price(prob, dense_aa, dbatch, **common)
    out = []
    for row, i in enumerate(idx):
        layer = net.layers[i]
        if opts is not None:
            labels: tuple[str, ...] = ()
            cs = cost.compute_split
            split = {
                "actual": float(np.broadcast_to(cs["random"], cost.cycles.shape)[row]),
                "gated": float(np.broadcast_to(cs["gated"], cost.cycles.shape)[row]),
                "skipped": float(np.broadcast_to(cs["skipped"], cost.cycles.shape)[row]),
            }
        else:
            labels = tuple(f"{t}:{'+'.join(x.label for x in fmts[i][t])}" for t in fmts[i])
            split = None
        out.append(
            LayerResult(
                name=layer.name,
                plan="sparse" if opts is not None else str(pl.for_layer(layer.name)),
                cycles=float(cost.cycles[row]),
                seconds=float(cost.seconds[row]),
                energy_pj=float(cost.energy_pj[row]),
                energy_by_component={k: float(v[row]) for k, v in cost.energy_by_component.items()},
                accesses=_accesses(cost, row, opts is not None),
                utilisation=float(cost.utilisation[row]),
                macs=float(cost.macs[row]),
                effective_macs=float(cost.effective_macs[row]),
                compute_cycles=float(cost.compute_cycles[row]),
                dense_cycles=float(dense.cycles[row]),
                dense_energy_pj=float(dense.energy_pj[row]),
                valid=bool(cost.valid[row]),
                terms=labels,
                compute_split=split,
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
    fmts = [lt.formats for lt in prep.terms]
    for idx in prep.groups:
        g = len(idx)
        prob = net.layers[idx[0]].problem
        base = stack_nests([prep.nests[i] for i in idx])
        rows = np.repeat(np.arange(g), p)  # layer-major: row = layer·P + point
        batch = base.select(rows)
        bounds = np.array(
            [[net.layers[i].problem.bounds[d] for d in prob.dimensions] for i in idx]
        )[rows]
        tiled = dataclasses.replace(
            points,
            **{
                f.name: np.tile(v, (g,) + (1,) * (v.ndim - 1)) if v.ndim >= 2 else np.tile(v, g)
                for f in dataclasses.fields(points)
                if isinstance(v := getattr(points, f.name), np.ndarray)
            },
        )
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
                        density=x.density[rows],  # type: ignore[index]
                        metadata_bits=x.metadata_bits[rows],  # type: ignore[index]
                        work=x.work[rows],  # type: ignore[index]
                        nonzero=x.nonzero[rows],  # type: ignore[index]
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
