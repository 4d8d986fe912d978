"""The dataflow graph the hardware runs: Network × Plan × Architecture → ``networkx.DiGraph``.

The network's operator graph (``graph.dataflow``) with every GEMM-like layer expanded: a layer
whose weights use series W1+…+Wp and activations A1+…+Aq becomes p·q term GEMMs (Wi·Aj; Wi·A
when activations stay dense) and an accumulation node adding their partial sums (only when there
are several terms). When a layer decomposes its activations at run time, the TASD unit sits on
the **producer's** output: one ``tasd_unit`` node per (producer, activation series), feeding every
consumer that decomposes that tensor with that series (none when the activation already arrives
in the pattern of its single term: ``model.terms.arrives_compliant``). Non-GEMM operators and
network inputs are carried over as ``operator``/``input`` nodes. A dense plan gives exactly one
GEMM node per layer.

Node attributes (all nodes): ``kind`` (``"input"``, ``"operator"``, ``"weights"``,
``"tasd_unit"``, ``"term_gemm"``, ``"accumulate"``), ``layer`` (the layer or operator name; for a
TASD unit the producer's), ``order`` (execution position of that layer or operator).
- ``term_gemm``: ``orientation`` (which operand is in the engine's A slot, ``model.plan``),
  ``weight_term``/``activation_term`` (``"2:8"`` or ``"dense"``),
  ``weight_density``/``activation_density`` (stored fraction of all values: the slots of a
  fixed-slot term), ``work`` (fraction of
  the dense MAC work the engine issues for this pair, Π of the operands' p/q ratios), ``macs``
  (dense MACs of the layer), ``effective_macs`` (``macs`` × both kept densities).
- ``tasd_unit``: ``series`` (the activation series), ``values`` (activation values examined,
  as the first consumer prices them), ``consumers`` (the layers it feeds).
- ``accumulate``: ``terms`` (number of partial-sum inputs).
- ``weights``: ``series``. ``operator``/``input``: ``op`` (the operator kind).
Edge attributes: ``tensor`` (data-space name, or ``"out"`` for an operator's output), ``shape``
(tuple of rank extents, words), ``word_bits`` (datawidth), ``density`` (kept fraction of the
tensor's values), ``format`` (``"dense"`` or ``"N:M+Kb"``: the pattern and metadata bits per
kept value).
Graph attributes: ``network``, ``arch``, ``plan``, ``densities_source``.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from testy_model.graph.dataflow import as_graph, execution_order, tensor_shape
from testy_model.model.plan import Plan
from testy_model.model.terms import (
    DensitySource,
    TermFormat,
    arrives_compliant,
    layer_terms,
    operand_roles,
    runtime_series,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Layer, Network, Problem


def _fmt(t: TermFormat) -> str:
    return "dense" if t.pattern is None else f"{t.pattern}+{t.metadata_bits:g}b"


def _out_node(g: nx.DiGraph, name: str) -> str:
    """The node of ``g`` that holds layer/operator ``name``'s output."""
    return g.graph["_out"][name]


def build_graph(
    network: Network | nx.DiGraph,
    plan: Plan | str | None,
    arch: Architecture,
    densities_source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
) -> nx.DiGraph:
    """Build the term-level dataflow graph (attributes in the module docstring)."""
    dg = as_graph(network)
    net: Network = dg.graph["network"]
    pl = Plan.coerce(plan)
    g: nx.DiGraph[str] = nx.DiGraph(
        network=net.name, arch=arch.name, plan=str(pl), densities_source=densities_source
    )
    g.graph["_out"] = {}
    for name in execution_order(dg):
        d = dg.nodes[name]
        if d["kind"] == "gemm":
            _expand_layer(g, dg, d["layer"], d["order"], pl, arch, densities_source, tensors,
                          base_dir)  # fmt: skip
            continue
        kind = "input" if d["kind"] == "input" else "operator"
        g.add_node(name, kind=kind, layer=name, order=d["order"], op=d["op"])
        for u in dg.predecessors(name):
            src = _out_node(g, u)
            g.add_edge(src, name, tensor="out", shape=dg.nodes[u]["shape"],
                       word_bits=arch.levels[0].datawidth, density=1.0, format="dense")  # fmt: skip
        g.graph["_out"][name] = name
    del g.graph["_out"]
    return g


def _expand_layer(
    g: nx.DiGraph,
    dg: nx.DiGraph,
    layer: Layer,
    order: int,
    pl: Plan,
    arch: Architecture,
    source: DensitySource,
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None,
    base_dir: str | Path | None,
) -> None:
    """Weights, TASD unit (on the producer's output), term GEMMs and accumulation of one layer."""
    lp = pl.for_layer(layer.name)
    prob = layer.problem
    fmts, tasd_values = layer_terms(layer, lp, arch, source, tensors, base_dir)
    wname, aname = operand_roles(prob)

    def edge(a: str, b: str, t: str, density: float, fmt: str, prob: Problem = prob) -> None:
        g.add_edge(a, b, tensor=t, shape=tensor_shape(prob, t),
                   word_bits=int(prob.datawidths.get(t, arch.levels[0].datawidth)),
                   density=density, format=fmt)  # fmt: skip

    preds = {
        op: _out_node(g, u)
        for u in dg.predecessors(layer.name)
        for op in dg.edges[u, layer.name]["operands"]
    }
    if wname not in preds:  # an attention product has no weights: both operands run-time
        preds[wname] = f"{layer.name}/weights"
        g.add_node(preds[wname], kind="weights", layer=layer.name, order=order,
                   series=str(lp.weights))  # fmt: skip
    for t, series in runtime_series(prob, lp) if tasd_values > 0 else ():
        if t not in preds or series.is_dense or arrives_compliant(series, prob.density(t)):
            continue
        # decomposed at run time on the producer's output
        producer = preds[t]
        values = float(prob.full_size(t))
        tnode = _tasd_node(g, producer, str(series), order, values, layer.name)
        edge(producer, tnode, t, prob.density(t).value, "dense")
        preds[t] = tnode
    terms = []
    for i, wt in enumerate(fmts[wname], start=1):
        for j, at in enumerate(fmts[aname], start=1):
            node = f"{layer.name}/W{i}A{j}"
            g.add_node(node, kind="term_gemm", layer=layer.name, order=order,
                       orientation=lp.orientation,
                       weight_term=wt.label, activation_term=at.label, weight_density=wt.density,
                       activation_density=at.density, work=wt.work * at.work, macs=prob.macs,
                       effective_macs=prob.macs * wt.kept * at.kept)  # fmt: skip
            edge(preds[wname], node, wname, wt.density, _fmt(wt))
            edge(preds[aname], node, aname, at.density, _fmt(at))
            terms.append(node)
    out = terms[0]
    if len(terms) > 1:
        out = f"{layer.name}/acc"
        g.add_node(out, kind="accumulate", layer=layer.name, order=order, terms=len(terms))
        for node in terms:
            edge(node, out, prob.output, 1.0, "dense")
    g.graph["_out"][layer.name] = out


def _tasd_node(
    g: nx.DiGraph, producer: str, series: str, order: int, values: float, consumer: str
) -> str:
    """The TASD unit on ``producer``'s output for ``series`` (created by its first consumer)."""
    base = g.nodes[producer]["layer"]
    name = f"{base}/tasd"
    if g.has_node(name) and g.nodes[name]["series"] != series:
        name = f"{base}/tasd[{series}]"
    if not g.has_node(name):
        g.add_node(name, kind="tasd_unit", layer=base, order=order, series=series, values=values,
                   consumers=[])  # fmt: skip
    g.nodes[name]["consumers"].append(consumer)
    return name


def term_nodes(g: nx.DiGraph, layer: str | None = None) -> list[str]:
    """The term-GEMM nodes (of one layer when given), in topological order."""
    return [
        n
        for n in nx.topological_sort(g)
        if g.nodes[n]["kind"] == "term_gemm" and (layer is None or g.nodes[n]["layer"] == layer)
    ]


def draw_graph(g: nx.DiGraph, ax: Any = None) -> Any:
    """Draw the graph left to right by layer (matplotlib); returns the figure (no pyplot, no
    backend change)."""
    from matplotlib.figure import Figure

    for _, d in g.nodes(data=True):
        d["_col"] = 2 * (d["order"] + 1) + (
            1 if d["kind"] in ("term_gemm",) else 2 if d["kind"] == "accumulate" else 0
        )
    pos = nx.multipartite_layout(g, subset_key="_col")
    for _, d in g.nodes(data=True):
        del d["_col"]
    if ax is None:
        fig = Figure(figsize=(max(6.0, g.number_of_nodes() * 0.4), 4))
        ax = fig.subplots()
    else:
        fig = ax.figure
    colours = {
        "input": "grey",
        "operator": "lightgrey",
        "weights": "tab:blue",
        "tasd_unit": "tab:orange",
        "term_gemm": "tab:green",
        "accumulate": "tab:red",
    }
    nx.draw_networkx(
        g,
        pos,
        ax=ax,
        node_size=300,
        font_size=6,
        node_color=[colours[g.nodes[n]["kind"]] for n in g.nodes],
    )
    ax.set_axis_off()
    return fig
