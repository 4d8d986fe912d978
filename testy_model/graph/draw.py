"""Drawing a network's dataflow graph (``testy-model show network ... --plot graph.png``).

Layout: each node sits in the column of its depth (longest path from a network input; an input
just before its first reader), nodes of one depth stacked in execution order; a deep network
wraps onto several bands of ``columns`` depths, read left to right, top to bottom. GEMM-like
layers are large squares coloured by their series under a plan (``W=… A=…``; by kind of layer
without a plan), other operators small grey circles, views smaller white ones, network inputs
black triangles. Returns a matplotlib ``Figure`` (no pyplot state, no backend choice: the
caller saves it).
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from testy_model.graph.dataflow import as_graph, execution_order
from testy_model.model.plan import Plan
from testy_model.spec.workload import Network

_KIND_LABEL = {"conv2D": "convolution", "gemm_ABZ": "linear", "bgemm_ABZ": "attention product"}


def _depths(g: nx.DiGraph) -> dict[str, int]:
    """Longest path from a source; a network input sits just before its first reader."""
    depth: dict[str, int] = {}
    for n in execution_order(g):
        depth[n] = max((depth[u] + 1 for u in g.predecessors(n)), default=0)
    for n in g:
        if g.nodes[n]["kind"] == "input" and g.out_degree(n):
            depth[n] = max(0, min(depth[v] for v in g.successors(n)) - 1)
    return depth


def layout(g: nx.DiGraph, columns: int = 40) -> dict[str, tuple[float, float]]:
    """Positions (x, y) of every node (module docstring)."""
    depth = _depths(g)
    lanes: dict[int, list[str]] = {}
    for n in execution_order(g):
        lanes.setdefault(depth[n], []).append(n)
    width = max(len(v) for v in lanes.values())
    band = width + 1.5
    pos = {}
    for d, nodes in lanes.items():
        row, col = divmod(d, columns)
        for i, n in enumerate(nodes):
            pos[n] = (float(col), -(row * band + i - (len(nodes) - 1) / 2.0))
    return pos


def series_labels(g: nx.DiGraph, plan: Plan | None) -> dict[str, str]:
    """Legend label of every GEMM-like layer: its plan series, or its kind without a plan."""
    out = {}
    for n, d in g.nodes(data=True):
        if d["kind"] != "gemm":
            continue
        if plan is None:
            out[n] = _KIND_LABEL.get(d["op"], d["op"])
        else:
            lp = plan.for_layer(n)
            out[n] = f"W={lp.weights} A={lp.activations}"
    return out


def plot_network(
    network: Network | nx.DiGraph,
    plan: Plan | str | None = None,
    *,
    columns: int = 40,
    labels: bool = True,
    ax: Any = None,
) -> Any:
    """Draw ``network``'s dataflow graph (module docstring); returns the figure."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    g = as_graph(network)
    pl = Plan.coerce(plan) if plan is not None else None
    pos = layout(g, columns)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    if ax is None:
        w = min(40.0, max(6.0, 0.45 * (max(xs) - min(xs) + 2)))
        h = min(40.0, max(3.0, 0.45 * (max(ys) - min(ys) + 2)))
        fig = Figure(figsize=(w, h), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    for u, v in g.edges:
        ex, ey, style = _edge_path(pos[u], pos[v])
        ax.plot(ex, ey, color="0.75" if style == ":" else "0.45", lw=0.6, ls=style, zorder=1)
    font = 7.0 if g.number_of_nodes() <= 60 else 4.5
    series = series_labels(g, pl)
    names = sorted(set(series.values()), key=lambda s: (s.count("dense"), s), reverse=True)
    cmap = {s: f"C{i % 10}" for i, s in enumerate(names)}
    for n, d in g.nodes(data=True):
        x, y = pos[n]
        if d["kind"] == "gemm":
            ax.scatter([x], [y], s=90, marker="s", c=cmap[series[n]], edgecolors="k",
                       linewidths=0.4, zorder=3)  # fmt: skip
        elif d["kind"] == "input":
            ax.scatter([x], [y], s=60, marker="^", c="k", zorder=3)
        else:
            face = "white" if d["kind"] == "view" else "0.7"
            ax.scatter([x], [y], s=25 if d["kind"] == "view" else 40, c=face, edgecolors="0.3",
                       linewidths=0.4, zorder=3)  # fmt: skip
        if labels:
            ax.annotate(n, (x, y), xytext=(0, 5), textcoords="offset points", fontsize=font,
                        ha="left", rotation=35, zorder=4)  # fmt: skip
    handles = [Line2D([], [], marker="s", ls="", color=cmap[s], label=s) for s in names]
    handles += [
        Line2D([], [], marker="o", ls="", color="0.7", label="other operator"),
        Line2D([], [], marker="^", ls="", color="k", label="network input"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small",
              title="GEMM series" if pl is not None else "layers")  # fmt: skip
    title = f"{g.graph['name']}: {len(series)} GEMM layers, "
    title += f"{g.number_of_nodes() - len(series)} other nodes"
    if pl is not None:
        title += f", {len(names)} series under the plan"
    ax.set_title(title, fontsize="medium", pad=22)
    ax.set_axis_off()
    ax.margins(x=0.06, y=0.12)
    return fig


def _edge_path(
    a: tuple[float, float], b: tuple[float, float]
) -> tuple[list[float], list[float], str]:
    """Points of one edge: a straight segment between neighbouring columns, an arc above the
    row for one that skips columns (a residual), a dotted line when it wraps to the next band."""
    (x0, y0), (x1, y1) = a, b
    if x1 < x0:
        return [x0, x1], [y0, y1], ":"
    if x1 - x0 <= 1 or y0 != y1:
        return [x0, x1], [y0, y1], "-"
    h = 0.35 + 0.05 * min(x1 - x0, 8)
    ts = [i / 16 for i in range(17)]
    return ([x0 + t * (x1 - x0) for t in ts],
            [y0 + t * (y1 - y0) + h * 4 * t * (1 - t) for t in ts], "-")  # fmt: skip
