"""Figures of the command-line reports (``eval --plot``, ``search --plot``, ``pareto --plot``).

Every function builds and returns a :class:`matplotlib.figure.Figure` without touching pyplot or
the matplotlib backend (no global state: the caller saves it, e.g. ``fig.savefig(path,
bbox_inches="tight")``). Conventions shared by all figures:

- one colour per component (storage level, MAC array, TASD unit, leakage) in every panel of a
  figure (:func:`component_colors`), the MAC array's colour also marking compute cycles;
- energies in µJ or mJ, whichever keeps the largest bar between 1 and 1000 (:func:`energy_unit`),
  never pJ with an offset;
- titles wrapped, never clipped.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

#: Colours assigned in order to the components of a figure (colour-blind-safe Okabe-Ito first).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#999999",
    "#882255",
    "#44AA99",
)
#: Latency component names that are the same component as an energy one.
SAME_AS = {"compute": "MAC"}


def component_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per component name, stable in the order given (``compute`` shares ``MAC``'s)."""
    out: dict[str, str] = {}
    for n in names:
        key = SAME_AS.get(n, n)
        if key not in out:
            out[key] = PALETTE[len(out) % len(PALETTE)]
        out[n] = out[key]
    return out


def energy_unit(max_pj: float) -> tuple[str, float]:
    """(label, divisor) that shows ``max_pj`` between 1 and 1000: pJ, nJ, µJ, mJ or J."""
    for label, div in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if max_pj >= div:
            return label, div
    return "pJ", 1.0


def _title(fig: Figure, text: str, width: int) -> None:
    """A figure title wrapped to ``width`` characters (words kept whole, never clipped)."""
    wrapped = textwrap.fill(text, width=max(40, width), break_on_hyphens=False)
    fig.suptitle(wrapped, fontsize=10)


# --------------------------------------------------------------------------------------------
# eval --plot
# --------------------------------------------------------------------------------------------
def breakdown_figure(report: Any) -> Figure:
    """``eval``: per-layer energy by component (stacked) and latency (compute cycles plus the
    cycles the slowest level adds beyond them), one colour per component in both panels.

    ``report`` is a :class:`testy_model.report.Report`.
    """
    df = report.to_frame()
    layers = list(df["layer"])
    ecols = [c for c in df.columns if c.startswith("E_")]
    names = [c[2:] for c in ecols]
    colors = component_colors(["MAC", *names])
    unit, div = energy_unit(float(df[ecols].sum(axis=1).max()) if ecols else 1.0)
    width_in = max(6.0, 0.35 * len(layers) + 3.5)
    fig = Figure(figsize=(width_in, 6.5), layout="constrained")
    ax_e, ax_t = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(layers))
    bottom = np.zeros(len(layers))
    for col, name in zip(ecols, names, strict=True):
        vals = df[col].to_numpy(float) / div
        if np.any(vals > 0):
            ax_e.bar(x, vals, bottom=bottom, color=colors[name], label=name, width=0.8)
            bottom += vals
    ax_e.set_ylabel(f"energy ({unit})")
    ax_e.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", title="component")
    comp = np.array([x_.compute_cycles for x_ in report.layers], dtype=float)
    total = np.array([x_.cycles for x_ in report.layers], dtype=float)
    ax_t.bar(x, comp, color=colors["MAC"], label="compute (MAC)", width=0.8)
    ax_t.bar(x, np.maximum(total - comp, 0.0), bottom=comp, color="#BBBBBB", width=0.8,
             label="memory stall (slowest level)", hatch="//", edgecolor="white")  # fmt: skip
    ax_t.set_ylabel("latency (cycles)")
    ax_t.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax_t.set_xticks(x)
    ax_t.set_xticklabels(layers, rotation=90, fontsize=7 if len(layers) > 20 else 9)
    ax_t.set_xlabel("layer")
    for ax, top in ((ax_e, float(bottom.max(initial=0.0))), (ax_t, float(total.max(initial=0.0)))):
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.set_ylim(0, top * 1.08 if top > 0 else 1.0)
        ax.set_xlim(-0.6, len(layers) - 0.4)
    _title(fig, f"{report.network}: energy and latency per layer", int(width_in * 11))
    return fig


# --------------------------------------------------------------------------------------------
# search --plot
# --------------------------------------------------------------------------------------------
VARIANTS = (("dense", "dense"), ("native", "no TASD"), ("plan", "TASD plan"))


def _variant_costs(report: Any) -> dict[str, dict[str, Any]]:
    """Per variant (dense / native / plan): energy by component (pJ, per layer), compute
    cycles, latency and bottleneck component per layer, the series per layer."""
    out: dict[str, dict[str, Any]] = {}
    for which, _ in VARIANTS:
        ent = report._entries(which)  # (table, option index) per layer
        energy: dict[str, list[float]] = {}
        for li, (t, i) in enumerate(ent):
            for k, v in t.energy_by_component.items():
                energy.setdefault(k, [0.0] * len(ent))[li] = float(v[i])
        lat = [{k: float(v[i]) for k, v in t.latency_by_component.items()} for t, i in ent]
        out[which] = {
            "energy": energy,
            "cycles": [float(t.cycles[i]) for t, i in ent],
            "compute": [d.get("compute", 0.0) for d in lat],
            "bottleneck": [max(d, key=d.__getitem__) if d else "compute" for d in lat],
            "series": [t.options[i] for t, i in ent],
        }
    return out


def search_figure(report: Any) -> Figure:
    """``search``: per layer, dense, the structured engine without TASD and the searched plan
    side by side. Top: latency (cycles) as compute cycles plus the cycles the bottleneck adds
    beyond them, coloured by that bottleneck component (the bar's height is the layer's
    latency). Bottom: energy by component. One colour per component in both panels; the
    series the plan chose is written under each layer.

    ``report`` is a :class:`testy_model.plan_search.SearchReport`.
    """
    costs = _variant_costs(report)
    names = list(dict.fromkeys(k for c in costs.values() for k in c["energy"]))
    colors = component_colors(["MAC", *names])
    n = len(report.tables)
    peak = max(sum(v[li] for v in c["energy"].values()) for c in costs.values() for li in range(n))
    unit, div = energy_unit(peak)
    width_in = max(7.0, 0.55 * n + 4.0)
    fig = Figure(figsize=(width_in, 7.5), layout="constrained")
    ax_t, ax_e = fig.subplots(2, 1, sharex=True)
    x = np.arange(n)
    w = 0.27
    hatches = {"dense": "", "native": "..", "plan": ""}
    edge = {"dense": "white", "native": "white", "plan": "black"}
    used: set[str] = set()
    for vi, (which, _) in enumerate(VARIANTS):
        c = costs[which]
        xs = x + (vi - 1) * w
        comp = np.array(c["compute"])
        total = np.array(c["cycles"])
        ax_t.bar(xs, comp, w, color=colors["MAC"], hatch=hatches[which],
                 edgecolor=edge[which], linewidth=0.5)  # fmt: skip
        stall = np.maximum(total - comp, 0.0)
        bcol = [colors.get(b, "#BBBBBB") for b in c["bottleneck"]]
        ax_t.bar(xs, stall, w, bottom=comp, color=bcol, hatch=hatches[which],
                 edgecolor=edge[which], linewidth=0.5)  # fmt: skip
        used.update(b for b, s in zip(c["bottleneck"], stall, strict=True) if s > 0)
        bottom = np.zeros(n)
        for name in names:
            vals = np.array(c["energy"].get(name, [0.0] * n)) / div
            if np.any(vals > 0):
                ax_e.bar(xs, vals, w, bottom=bottom, color=colors[name], hatch=hatches[which],
                         edgecolor=edge[which], linewidth=0.5)  # fmt: skip
                used.add(name)
                bottom += vals
    from matplotlib.patches import Patch

    comp_handles = [Patch(color=colors["MAC"], label="MAC / compute")] + [
        Patch(color=colors[k], label=k) for k in names if k in used and k != "MAC"
    ]
    var_handles = [
        Patch(facecolor="#DDDDDD", hatch=hatches[v], edgecolor=edge[v], label=lab)
        for v, lab in VARIANTS
    ]
    ax_t.legend(handles=var_handles, title="bars, left to right", fontsize="small",
                loc="upper left", bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    ax_e.legend(handles=comp_handles, title="component (both panels)", fontsize="small",
                loc="upper left", bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    ax_t.set_ylabel("latency (cycles)\ncompute + bottleneck's extra")
    ax_e.set_ylabel(f"energy ({unit})")
    plan_series = costs["plan"]["series"]
    labels = [
        f"{t.name}\nW {o.weights}\nA {o.activations}"
        for t, o in zip(report.tables, plan_series, strict=True)
    ]
    ax_e.set_xticks(x)
    ax_e.set_xticklabels(labels, rotation=90 if n > 12 else 0, fontsize=7 if n > 12 else 8)
    top_t = max(max(c["cycles"]) for c in costs.values())
    top_e = max(sum(v[li] for v in c["energy"].values()) for c in costs.values() for li in range(n))
    for ax, top in ((ax_t, top_t), (ax_e, top_e / div)):
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.set_ylim(0, top * 1.08 if top > 0 else 1.0)
        ax.set_xlim(-0.6, n - 0.4)
    _title(
        fig,
        f"{report.network} on {report.arch}: dense, structured engine without TASD, and the "
        f"searched plan ({report.objective}, {report.mode} budget {report.budget:g}); plan EDP "
        f"{report.ratio('dense'):.3f} of dense, {report.ratio('native'):.3f} of no-TASD",
        int(width_in * 11),
    )
    return fig


# --------------------------------------------------------------------------------------------
# pareto --plot
# --------------------------------------------------------------------------------------------
#: Axis labels of the result columns (units); energies are rescaled by :func:`energy_unit`.
AXES = {
    "cycles": "latency (cycles)",
    "seconds": "latency (s)",
    "energy_pj": "energy",
    "edp_pj_s": "EDP (pJ·s)",
    "area_mm2": "area (mm²)",
}


def time_unit(max_s: float) -> tuple[str, float]:
    """(label, divisor) that shows ``max_s`` seconds between 1 and 1000: s, ms, µs or ns."""
    for label, div in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if max_s >= div:
            return label, div
    return "ns", 1e-9


def _scaled(df: Any, col: str, peak: float | None = None) -> tuple[np.ndarray, str]:
    """A result column in a readable unit: energies in nJ..J, seconds in ns..s."""
    vals = df[col].to_numpy(float)
    top = peak if peak is not None else (float(np.nanmax(vals)) if len(vals) else 1.0)
    if col == "energy_pj" or (col.startswith("energy_") and col.endswith("_pj")):
        unit, div = energy_unit(top)
        return vals / div, f"{AXES.get(col, col[:-3])} ({unit})"
    if col == "seconds":
        unit, div = time_unit(top)
        return vals / div, f"latency ({unit})"
    return vals, AXES.get(col, col)


def pareto_figure(
    df: Any, fronts: dict[Any, Any], objectives: list[str], group: str | None
) -> Figure:
    """``pareto``: every valid point and one Pareto front per ``group`` value (e.g. weight
    sparsity: points of different sparsities are different workloads and never share a front),
    in the first two objectives; energy in µJ/mJ.

    ``fronts`` maps each group value (``None`` when ungrouped) to its front's rows.
    """
    x, y = objectives[0], objectives[1]
    fig = Figure(figsize=(7.0, 5.0), layout="constrained")
    ax = fig.subplots()
    keys = list(fronts)
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    px = float(np.nanmax(df[x].to_numpy(float))) if len(df) else 1.0
    py = float(np.nanmax(df[y].to_numpy(float))) if len(df) else 1.0
    for k in keys:
        sub = df if group is None else df[df[group] == k]
        xs, xl = _scaled(sub, x, px)
        ys, yl = _scaled(sub, y, py)
        name = "all points" if group is None else str(k)
        ax.scatter(xs, ys, s=10, alpha=0.35, color=colors[k])
        f = fronts[k].sort_values(x)
        fx, _ = _scaled(f, x, px)
        fy, _ = _scaled(f, y, py)
        n = len(f)
        label = f"{name}: front of {n} point{'s' if n != 1 else ''}"
        if len(objectives) == 2:  # a 2-D front: the staircase it bounds
            ax.step(fx, fy, where="post", color=colors[k], lw=1.2)
        ax.plot(fx, fy, "o", ms=5, color=colors[k], label=label)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.legend(loc="best", fontsize="small")
    rest = (
        f"; also minimised: {', '.join(objectives[2:])}, so front points may look dominated here"
        if len(objectives) > 2
        else ""
    )
    _title(
        fig,
        f"Pareto fronts per workload ({x} and {y} minimised{rest}); faint points: all valid "
        "design points",
        80,
    )
    return fig
