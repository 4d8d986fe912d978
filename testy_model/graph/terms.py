"""The dataflow graph the hardware runs: Network × Plan × Architecture → ``networkx.DiGraph``.

A layer whose weights use series W1+…+Wp and activations A1+…+Aq becomes p·q term GEMMs
(Wi·Aj; Wi·A when activations stay dense), an accumulation node adding their partial sums (only
when there are several terms), and, when the activations are decomposed at run time, a TASD-unit
node on the producing layer's output (none when the activation already arrives in the pattern of
its single term: ``model.terms.arrives_compliant``). A dense plan gives exactly one GEMM node
per layer.

Node attributes (all nodes): ``kind`` (``"input"``, ``"weights"``, ``"tasd_unit"``,
``"term_gemm"``, ``"accumulate"``), ``layer`` (layer name, ``None`` for the network input),
``order`` (layer index, for drawing and topological order).
- ``term_gemm``: ``weight_term``/``activation_term`` (``"2:8"`` or ``"dense"``),
  ``weight_density``/``activation_density`` (kept fraction of all values), ``work`` (fraction of
  the dense MAC work the engine issues for this pair, Π of the operands' p/q ratios), ``macs``
  (dense MACs of the layer), ``effective_macs`` (``macs`` × both kept densities).
- ``tasd_unit``: ``series`` (the activation series), ``values`` (activation values examined).
- ``accumulate``: ``terms`` (number of partial-sum inputs).
- ``weights``: ``series``.
Edge attributes: ``tensor`` (data-space name), ``shape`` (tuple of rank extents, words),
``word_bits`` (datawidth), ``density`` (kept fraction of the tensor's values), ``format``
(``"dense"`` or ``"N:M+Kb"``: the pattern and metadata bits per kept value).
Graph attributes: ``network``, ``arch``, ``plan``, ``densities_source``.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from testy_model.model.plan import Plan
from testy_model.model.terms import DensitySource, TermFormat, layer_terms, operand_roles
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Network, Problem


def tensor_shape(problem: Problem, tensor: str) -> tuple[int, ...]:
    """Extent of each rank of ``tensor`` over the full problem (words along each rank)."""
    out = []
    for rank in problem.data_space(tensor).projection:
        out.append(sum(problem.coef(c) * (problem.bounds[d] - 1) for d, c in rank) + 1)
    return tuple(out)


def _fmt(t: TermFormat) -> str:
    return "dense" if t.pattern is None else f"{t.pattern}+{t.metadata_bits:g}b"


def build_graph(
    network: Network,
    plan: Plan | str | None,
    arch: Architecture,
    densities_source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
) -> nx.DiGraph:
    """Build the dataflow graph (attributes in the module docstring)."""
    pl = Plan.coerce(plan)
    g = nx.DiGraph(
        network=network.name, arch=arch.name, plan=str(pl), densities_source=densities_source
    )
    g.add_node("input", kind="input", layer=None, order=-1)
    prev = "input"
    for order, layer in enumerate(network.layers):
        lp = pl.for_layer(layer.name)
        prob = layer.problem
        fmts, tasd_values = layer_terms(layer, lp, arch, densities_source, tensors, base_dir)
        wname, aname = operand_roles(prob)
        out = prob.output

        def bits(t: str, prob: Problem = prob) -> int:
            return int(prob.datawidths.get(t, arch.levels[0].datawidth))

        def edge(a: str, b: str, t: str, density: float, fmt: str, prob: Problem = prob) -> None:
            g.add_edge(
                a,
                b,
                tensor=t,
                shape=tensor_shape(prob, t),
                word_bits=bits(t),
                density=density,
                format=fmt,
            )

        wnode = f"{layer.name}/weights"
        g.add_node(wnode, kind="weights", layer=layer.name, order=order, series=str(lp.weights))
        src = prev
        if tasd_values > 0:  # decomposed at run time (not when it arrives compliant)
            tnode = f"{layer.name}/tasd"
            g.add_node(
                tnode,
                kind="tasd_unit",
                layer=layer.name,
                order=order,
                series=str(lp.activations),
                values=tasd_values,
            )
            edge(prev, tnode, aname, prob.density(aname).value, "dense")
            src = tnode
        terms = []
        for i, wt in enumerate(fmts[wname], start=1):
            for j, at in enumerate(fmts[aname], start=1):
                node = f"{layer.name}/W{i}A{j}"
                g.add_node(
                    node,
                    kind="term_gemm",
                    layer=layer.name,
                    order=order,
                    weight_term=wt.label,
                    activation_term=at.label,
                    weight_density=wt.density,
                    activation_density=at.density,
                    work=wt.work * at.work,
                    macs=prob.macs,
                    effective_macs=prob.macs * wt.density * at.density,
                )
                edge(wnode, node, wname, wt.density, _fmt(wt))
                edge(src, node, aname, at.density, _fmt(at))
                terms.append(node)
        if len(terms) == 1:
            prev = terms[0]
        else:
            acc = f"{layer.name}/acc"
            g.add_node(acc, kind="accumulate", layer=layer.name, order=order, terms=len(terms))
            for node in terms:
                edge(node, acc, out, 1.0, "dense")
            prev = acc
    return g


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
