"""``evaluate(graph, arch, ...)``: a network priced as a traversal of its dataflow graph.

The pipeline, in order (each step one function below):

1. the graph (``graph.dataflow.network_graph``; a :class:`Network` is converted) and, views
   resolved, which operand of which operator reads which tensor (``operand_reads``);
2. the TASD unit sits on a producer's output and feeds every consumer: consumers that decompose
   the same tensor with the same activation series share one decomposition, charged to the
   first of them (:func:`shared_tasd`);
3. every GEMM-like layer is priced by the per-layer path (``model.evaluate.evaluate_layers``:
   the batched cost core, TASD terms and the accumulation of their partial sums), once under
   the plan (and dense, for the baseline);
4. where the tensors between operators live (``model.fusion``: DRAM, or an on-chip level with
   ``fusion="fit"``), and the layers' accesses of kept tensors moved there;
5. the non-GEMM operators, priced by their traffic and element-wise work
   (``model.elementwise``) at the levels their tensors live in;
6. the tensors between operators and what moving them costs (``report.TensorTraffic``).

Totals add the layers and the operators, run one after another (``report.Report``). The dense
baseline is the same network with every layer dense on its own mappings, under the same fusion
policy.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from testy_model.errors import SpecError
from testy_model.graph.dataflow import OperandRead, as_graph, execution_order, operand_reads
from testy_model.model import fusion as fu
from testy_model.model.arrays import ArchArrays, arch_arrays
from testy_model.model.elementwise import OperatorTraffic, element_ops, operator_costs
from testy_model.model.plan import Plan
from testy_model.model.terms import DensitySource
from testy_model.report import (
    FusionSummary,
    LayerResult,
    OperatorResult,
    Report,
    TensorTraffic,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.sparseloop import SparseOptimizations
from testy_model.spec.workload import Network


def shared_tasd(g: nx.DiGraph, reads: list[OperandRead], plan: Plan) -> dict[str, float]:
    """Layer name -> 0.0 for every layer whose run-time decomposition another consumer of the
    same tensor(s) already does: key = (the real tensors its activation operand reads, the
    activation series); the first consumer in execution order keeps its TASD-unit work."""
    from testy_model.model.terms import operand_roles

    src: dict[tuple[str, str], list[str]] = {}
    for r in reads:
        d = g.nodes[r.consumer]
        if d["kind"] == "gemm" and r.operand == operand_roles(d["layer"].problem)[1]:
            src.setdefault((r.consumer, r.operand), []).append(r.producer)
    seen: set[tuple] = set()
    out: dict[str, float] = {}
    for (layer, _), producers in src.items():
        series = plan.for_layer(layer).activations
        if series.is_dense:
            continue
        key = (tuple(sorted(producers)), str(series))
        if key in seen:
            out[layer] = 0.0
        seen.add(key)
    return out


@dataclass(frozen=True)
class _Run:
    """One priced configuration (the plan, or the dense baseline)."""

    layers: dict[str, LayerResult]
    op_names: list[str]
    op_cycles: np.ndarray
    op_seconds: np.ndarray
    op_energy: np.ndarray
    op_components: dict[str, np.ndarray]
    traffic: OperatorTraffic
    residency: fu.Residency


def operator_traffic(
    g: nx.DiGraph, reads: list[OperandRead], n_levels: int, residency: fu.Residency | None = None
) -> tuple[list[str], OperatorTraffic]:
    """Words each non-GEMM operator reads from and writes to each level, and its element
    operations (``model.elementwise``): run-time operands from where their tensors live,
    constants from the outermost level, its output to where it lives."""
    names = [n for n in execution_order(g) if g.nodes[n]["kind"] in ("elementwise", "unknown")]
    idx = {n: i for i, n in enumerate(names)}
    rd = np.zeros((len(names), n_levels))
    wr = np.zeros((len(names), n_levels))
    in_words = np.zeros(len(names))
    kept = residency.resident if residency is not None else frozenset()
    lvl = residency.level if residency is not None and residency.level is not None else 0
    for r in reads:
        i = idx.get(r.consumer)
        if i is not None:
            rd[i, lvl if r.producer in kept else 0] += r.words
            in_words[i] += r.words
    ops = np.zeros(len(names))
    for n, i in idx.items():
        op = g.nodes[n]["operator"]
        rd[i, 0] += op.constant_words
        wr[i, lvl if n in kept else 0] += op.words
        ops[i] = element_ops(op.op, in_words[i], op.words, op.window)
    return names, OperatorTraffic(reads=rd, writes=wr, ops=ops)


def _price(
    g: nx.DiGraph,
    reads: list[OperandRead],
    layers: dict[str, LayerResult],
    arch: Architecture,
    aa: ArchArrays,
    residency: fu.Residency,
) -> _Run:
    """Steps 4-5 for one configuration: move kept tensors' accesses, price the operators."""
    if residency.resident:
        moves: dict[str, dict[str, float]] = {}
        for r in reads:
            if r.producer in residency.resident and g.nodes[r.consumer]["kind"] == "gemm":
                m = moves.setdefault(r.consumer, {})
                m[r.operand] = m.get(r.operand, 0.0) + r.share
        for p in residency.resident:
            if g.nodes[p]["kind"] == "gemm":
                moves.setdefault(p, {})[g.nodes[p]["layer"].problem.output] = 1.0
        layers = dict(layers)
        for name, m in moves.items():
            prob = g.nodes[name]["layer"].problem
            layers[name] = fu.move_accesses(
                layers[name], m, arch, residency.level or 1, prob.datawidths, aa
            )
    names, traffic = operator_traffic(g, reads, len(arch.levels), residency)
    cost = operator_costs(traffic, aa)
    return _Run(
        layers=layers,
        op_names=names,
        op_cycles=cost.cycles[0],
        op_seconds=cost.seconds[0],
        op_energy=cost.energy_pj[0],
        op_components={k: v[0] for k, v in cost.energy_by_component.items()},
        traffic=traffic,
        residency=residency,
    )


def _residency(
    g: nx.DiGraph,
    reads: list[OperandRead],
    arch: Architecture,
    mappings: Any,
    policy: str,
    level: str | None,
) -> fu.Residency:
    """Step 4: the residency of every tensor under ``policy`` (``model.fusion``)."""
    if policy == "none":
        return fu.Residency(None, frozenset(), {})
    from testy_model.model.evaluate import mapping_for
    from testy_model.model.nest import nests_from_mapping

    li = fu.fusion_level_index(arch, level)
    lvl = arch.levels[li]
    working = {}
    for n in g:
        if g.nodes[n]["kind"] == "gemm":
            layer = g.nodes[n]["layer"]
            prob = layer.problem
            nests = nests_from_mapping(mapping_for(layer, arch, mappings), arch, prob)
            bits = {t: prob.datawidths.get(t, lvl.datawidth) for t in prob.tensor_names}
            working[n] = fu.working_set_bits(prob, nests, li, bits)
    return fu.plan_residency(g, reads, lvl.capacity_bits, lvl.datawidth, working, li)


def _tensors(
    g: nx.DiGraph, reads: list[OperandRead], run: _Run, base: _Run, arch: Architecture
) -> list[TensorTraffic]:
    """Step 6: every tensor between operators, its DRAM (or on-chip) traffic as the unfused
    operators count it (``base``), placed where ``run`` keeps it."""
    lv0 = arch.levels[0]
    dram = lv0.name
    cons: dict[str, list[str]] = {}
    rd: dict[str, float] = {}
    for r in reads:
        if r.consumer not in cons.setdefault(r.producer, []):
            cons[r.producer].append(r.consumer)
        if g.nodes[r.consumer]["kind"] == "gemm":
            a = base.layers[r.consumer].accesses[dram][r.operand]
            w = (a["reads"] + a["metadata_reads"]) * r.share
        else:
            w = r.words
        rd[r.producer] = rd.get(r.producer, 0.0) + w
    out = []
    for p in execution_order(g):
        d = g.nodes[p]
        if d["kind"] == "view" or (p not in cons and not d["output"]):
            continue
        reads_p, writes = rd.get(p, 0.0), 0.0
        if d["kind"] == "gemm":
            a = base.layers[p].accesses[dram][d["layer"].problem.output]
            writes = a["updates"] + a["fills"]
            reads_p += a["reads"]
        elif d["kind"] != "input":
            writes = float(d["words"])
        kept = p in run.residency.resident
        lvl = arch.levels[run.residency.level or 0].name if kept else dram
        e = reads_p * lv0.read_energy + writes * lv0.write_energy
        out.append(
            TensorTraffic(
                producer=p, consumers=tuple(cons.get(p, ())), words=int(d["words"]), level=lvl,
                output=bool(d["output"]), dram_reads=0.0 if kept else reads_p,
                dram_writes=0.0 if kept else writes, dram_energy_pj=0.0 if kept else e,
                onchip_reads=reads_p if kept else 0.0, onchip_writes=writes if kept else 0.0,
            )
        )  # fmt: skip
    return out


def _dram_energy(run: _Run, dram: str) -> float:
    return float(
        sum(x.energy_by_component.get(dram, 0.0) for x in run.layers.values())
        + run.op_components[dram].sum()
    )


def evaluate_graph(
    network: Network | nx.DiGraph,
    arch: Architecture,
    mappings: Any,
    plan: Plan | str | Path | None = None,
    densities_source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
    dense_mappings: Any = None,
    *,
    fusion: str = "none",
    fusion_level: str | None = None,
    sparse: SparseOptimizations | None = None,
    conventions: Conventions | str | None = None,
) -> Report:
    """Price ``network`` (a :class:`Network` or its dataflow graph) on ``arch`` (module
    docstring). Arguments as ``model.evaluate.evaluate_layers`` (``plan`` None, not a dense
    plan, lets an engine run its operands' own N:M sparsity: the sparse stage), plus ``fusion``
    (``none`` | ``fit``) and ``fusion_level`` (the on-chip level for ``fit``; default the
    outermost on-chip level), see ``model.fusion``."""
    from testy_model.model.evaluate import evaluate_layers

    if fusion not in fu.POLICIES:
        raise SpecError(f"fusion {fusion!r}: expected one of {', '.join(fu.POLICIES)}")
    g = as_graph(network)
    net: Network = g.graph["network"]
    pl = Plan.coerce(plan)
    aa = arch_arrays(arch)
    reads = operand_reads(g)
    per_layer = evaluate_layers(
        net, arch, mappings, pl if plan is not None else None, densities_source, tensors,
        base_dir, dense_mappings, tasd_scale=shared_tasd(g, reads, pl), sparse=sparse,
        conventions=conventions,
    )  # fmt: skip
    plan_layers = {x.name: x for x in per_layer.layers}
    none = fu.Residency(None, frozenset(), {})
    base = _price(g, reads, plan_layers, arch, aa, none)
    run = base
    dense = None
    if fusion != "none":
        res = _residency(g, reads, arch, mappings, fusion, fusion_level)
        run = _price(g, reads, plan_layers, arch, aa, res)
        same_maps = dense_mappings is None or dense_mappings is mappings
        sparse_stage = any(x.compute_split is not None for x in per_layer.layers)
        if same_maps and pl == Plan.dense() and not sparse_stage:
            dense = run  # the plan is dense (and no layer ran sparse): its run is the baseline
        else:
            dense_rep = evaluate_layers(
                net, arch, dense_mappings or mappings, Plan.dense(), conventions=conventions
            )
            dres = (
                res
                if same_maps
                else _residency(g, reads, arch, dense_mappings, fusion, fusion_level)
            )
            dense = _price(g, reads, {x.name: x for x in dense_rep.layers}, arch, aa, dres)
    layers = tuple(_with_dense(run.layers[x.name], dense) for x in per_layer.layers)
    ops = _operator_results(g, run, dense or run, aa)
    dram = arch.levels[0].name
    summary = FusionSummary(
        policy=fusion,
        level=arch.levels[run.residency.level].name if run.residency.level is not None else None,
        resident_tensors=len(run.residency.resident),
        dram_energy_saved_pj=_dram_energy(base, dram) - _dram_energy(run, dram),
    )
    return Report(
        network=net.name,
        arch=arch.name,
        plan=str(pl),
        clock_ghz=arch.compute.clock_ghz,
        layers=layers,
        operators=ops,
        tensors=tuple(_tensors(g, reads, run, base, arch)),
        fusion=summary,
        conventions=per_layer.conventions,
    )


def _with_dense(x: LayerResult, dense: _Run | None) -> LayerResult:
    """The layer with its dense baseline taken from the fused dense run (when fusing)."""
    if dense is None:
        return x
    import dataclasses

    d = dense.layers[x.name]
    return dataclasses.replace(x, dense_cycles=d.cycles, dense_energy_pj=d.energy_pj)


def _operator_results(
    g: nx.DiGraph, run: _Run, dense: _Run, aa: ArchArrays
) -> tuple[OperatorResult, ...]:
    levels = aa.level_names
    comps = {k: v.tolist() for k, v in run.op_components.items()}
    rd, wr = run.traffic.reads.tolist(), run.traffic.writes.tolist()
    cyc, sec, en = run.op_cycles.tolist(), run.op_seconds.tolist(), run.op_energy.tolist()
    dcyc, den = dense.op_cycles.tolist(), dense.op_energy.tolist()
    ops = run.traffic.ops.tolist()
    out = []
    for i, n in enumerate(run.op_names):
        op = g.nodes[n]["operator"]
        out.append(
            OperatorResult(
                name=n,
                op=op.op,
                cycles=cyc[i],
                seconds=sec[i],
                energy_pj=en[i],
                energy_by_component={k: v[i] for k, v in comps.items()},
                words_read=dict(zip(levels, rd[i], strict=True)),
                words_written=dict(zip(levels, wr[i], strict=True)),
                element_ops=ops[i],
                dense_cycles=dcyc[i],
                dense_energy_pj=den[i],
                source=op.source,
            )
        )
    return tuple(out)


def price_operators(
    network: Network | nx.DiGraph, arch: Architecture
) -> tuple[OperatorResult, ...]:
    """The non-GEMM operators of ``network`` priced alone (no fusion): they do not depend on the
    plan, so a plan search reports them beside its layers (``cli.search_cmd``)."""
    g = as_graph(network)
    aa = arch_arrays(arch)
    names, traffic = operator_traffic(g, operand_reads(g), len(arch.levels))
    cost = operator_costs(traffic, aa)
    run = _Run(
        layers={}, op_names=names, op_cycles=cost.cycles[0], op_seconds=cost.seconds[0],
        op_energy=cost.energy_pj[0],
        op_components={k: v[0] for k, v in cost.energy_by_component.items()},
        traffic=traffic, residency=fu.Residency(None, frozenset(), {}),
    )  # fmt: skip
    return _operator_results(g, run, run, aa)
