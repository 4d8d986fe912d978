"""The result of evaluating a network: per-layer and total costs, tables, JSON, CSV, plots.

JSON contract (stable; :meth:`Report.to_json`)::

    {"network": str, "arch": str, "plan": str,
     "total": {"cycles", "seconds", "energy_pj", "edp_pj_s",
               "dense_cycles", "dense_energy_pj", "speedup", "energy_ratio"},
     "layers": [{"name", "plan", "cycles", "seconds", "energy_pj", "edp_pj_s", "utilisation",
                 "macs", "effective_macs", "speedup", "energy_ratio", "valid",
                 "energy_by_component": {COMPONENT: pJ},
                 "accesses": {LEVEL: {TENSOR: {"reads", "fills", "updates",
                                               "metadata_reads"}}}}]}

``conventions`` (top level) names the counting conventions (``timeloop`` or
``sparseloop-2022``). Layers priced by the sparse stage (Sparseloop ``sparse_optimizations``, or
an engine's ``sparsity:`` support) add, beside each of ``reads``/``fills``/``updates`` (which
are then the *actual* accesses), a ``reads_split``/``fills_split``/``updates_split``
``{"actual", "gated", "skipped"}``, and a layer-level ``compute_split`` ``{"actual", "gated",
"skipped"}`` (MACs).

Units: cycles of the accelerator clock; seconds; energy in pJ; EDP in pJ·s. ``accesses`` are
totals over the level's used instances, in words of the tensor's datawidth (metadata converted
to words of that datawidth); tensors are named as in the problem (A, B, Z for GEMMs; Weights,
Inputs, Outputs for convolutions); "updates" are partial-sum writes from below, as Timeloop
counts them. ``speedup`` = dense cycles / cycles and ``energy_ratio`` = energy / dense energy,
against the same network run dense on the same engine with the same mappings. The network runs
its layers one after another: total cycles = Σ layer cycles; total EDP = total energy × total
seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Accesses = dict[str, dict[str, dict[str, float]]]


@dataclass(frozen=True)
class LayerResult:
    """Costs of one layer (units in the module docstring)."""

    name: str
    plan: str
    cycles: float
    seconds: float
    energy_pj: float
    energy_by_component: dict[str, float]
    accesses: Accesses
    utilisation: float
    macs: float
    effective_macs: float
    compute_cycles: float
    dense_cycles: float
    dense_energy_pj: float
    valid: bool
    terms: tuple[str, ...] = field(default=())
    density_sources: dict[str, str] = field(default_factory=dict)
    compute_split: dict[str, float] | None = None

    @property
    def density_source(self) -> str:
        """Where the layer's kept densities came from: ``measured`` (real tensors of every
        decomposed operand), ``expected`` (closed form), or ``mixed``."""
        vals = set(self.density_sources.values())
        if vals == {"measured"}:
            return "measured"
        return "mixed" if "measured" in vals else "expected"

    @property
    def edp_pj_s(self) -> float:
        """Energy-delay product, pJ·s."""
        return self.energy_pj * self.seconds

    @property
    def speedup(self) -> float:
        """Dense cycles / cycles."""
        return self.dense_cycles / self.cycles if self.cycles else float("nan")

    @property
    def energy_ratio(self) -> float:
        """Energy / dense energy."""
        return self.energy_pj / self.dense_energy_pj if self.dense_energy_pj else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The layer's entry of the JSON contract."""
        return {
            "name": self.name,
            "plan": self.plan,
            "cycles": self.cycles,
            "seconds": self.seconds,
            "energy_pj": self.energy_pj,
            "edp_pj_s": self.edp_pj_s,
            "utilisation": self.utilisation,
            "macs": self.macs,
            "effective_macs": self.effective_macs,
            "speedup": self.speedup,
            "energy_ratio": self.energy_ratio,
            "valid": self.valid,
            "density_source": self.density_source,
            "density_sources": dict(self.density_sources),
            "energy_by_component": dict(self.energy_by_component),
            "accesses": self.accesses,
            **({"compute_split": dict(self.compute_split)} if self.compute_split else {}),
        }


@dataclass(frozen=True)
class Report:
    """Per-layer results of one network on one architecture under one plan."""

    network: str
    arch: str
    plan: str
    clock_ghz: float
    layers: tuple[LayerResult, ...]
    conventions: str = "timeloop"

    @property
    def cycles(self) -> float:
        """Σ layer cycles (layers run in topological order, one after another)."""
        return float(sum(x.cycles for x in self.layers))

    @property
    def seconds(self) -> float:
        """Σ layer seconds."""
        return float(sum(x.seconds for x in self.layers))

    @property
    def energy_pj(self) -> float:
        """Σ layer energy, pJ."""
        return float(sum(x.energy_pj for x in self.layers))

    @property
    def edp_pj_s(self) -> float:
        """Total energy × total seconds, pJ·s."""
        return self.energy_pj * self.seconds

    @property
    def dense_cycles(self) -> float:
        """Σ dense-baseline cycles."""
        return float(sum(x.dense_cycles for x in self.layers))

    @property
    def dense_energy_pj(self) -> float:
        """Σ dense-baseline energy, pJ."""
        return float(sum(x.dense_energy_pj for x in self.layers))

    @property
    def speedup(self) -> float:
        """Dense cycles / cycles of the whole network."""
        return self.dense_cycles / self.cycles if self.cycles else float("nan")

    @property
    def energy_ratio(self) -> float:
        """Energy / dense energy of the whole network."""
        return self.energy_pj / self.dense_energy_pj if self.dense_energy_pj else float("nan")

    def layer(self, name: str) -> LayerResult:
        """The result of layer ``name``."""
        for x in self.layers:
            if x.name == name:
                return x
        raise KeyError(f"no layer {name!r} in the report")

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract as plain data (module docstring)."""
        return {
            "network": self.network,
            "arch": self.arch,
            "plan": self.plan,
            "conventions": self.conventions,
            "total": {
                "cycles": self.cycles,
                "seconds": self.seconds,
                "energy_pj": self.energy_pj,
                "edp_pj_s": self.edp_pj_s,
                "dense_cycles": self.dense_cycles,
                "dense_energy_pj": self.dense_energy_pj,
                "speedup": self.speedup,
                "energy_ratio": self.energy_ratio,
            },
            "layers": [x.to_dict() for x in self.layers],
        }

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        """JSON text of :meth:`to_dict`; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per layer (scalar columns plus ``E_<component>``)."""
        import pandas as pd

        rows = []
        for x in self.layers:
            row = {
                "layer": x.name,
                "plan": x.plan,
                "cycles": x.cycles,
                "seconds": x.seconds,
                "energy_pj": x.energy_pj,
                "edp_pj_s": x.edp_pj_s,
                "utilisation": x.utilisation,
                "macs": x.macs,
                "effective_macs": x.effective_macs,
                "speedup": x.speedup,
                "energy_ratio": x.energy_ratio,
                "valid": x.valid,
                "density_source": x.density_source,
            }
            row.update({f"E_{k}": v for k, v in x.energy_by_component.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def table(self) -> Any:
        """A rich Table of the layers and the totals."""
        from rich.table import Table

        t = Table(title=f"{self.network} on {self.arch} (plan {self.plan})")
        for col in (
            "layer",
            "plan",
            "cycles",
            "energy (µJ)",
            "EDP (pJ·s)",
            "util",
            "speed-up",
            "energy ratio",
        ):
            t.add_column(col, justify="left" if col in ("layer", "plan") else "right")
        for x in self.layers:
            t.add_row(
                x.name + ("" if x.valid else " (invalid)"),
                x.plan,
                f"{x.cycles:,.0f}",
                f"{x.energy_pj / 1e6:,.3f}",
                f"{x.edp_pj_s:.4g}",
                f"{x.utilisation:.1%}",
                f"{x.speedup:.2f}×",
                f"{x.energy_ratio:.3f}",
            )
        t.add_section()
        t.add_row(
            "total",
            "",
            f"{self.cycles:,.0f}",
            f"{self.energy_pj / 1e6:,.3f}",
            f"{self.edp_pj_s:.4g}",
            "",
            f"{self.speedup:.2f}×",
            f"{self.energy_ratio:.3f}",
        )
        return t

    def plot_breakdown(self, ax: Any = None) -> Any:
        """Per-layer stacked bars; returns the figure.

        With no ``ax``: two panels sharing the layer axis, ``axes[0]`` energy by component (µJ)
        and ``axes[1]`` latency (cycles) split into compute cycles and the cycles the slowest
        level adds beyond them (``cycles − compute_cycles``, memory-bound stall). With ``ax``:
        the energy panel only, drawn into ``ax``.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        df = self.to_frame().set_index("layer")
        cols = [c for c in df.columns if c.startswith("E_")]
        data = df[cols] / 1e6
        data.columns = [c[2:] for c in cols]
        lat_ax = None
        if ax is None:
            fig, (ax, lat_ax) = plt.subplots(
                2, 1, sharex=True, figsize=(max(4.0, 0.4 * len(df) + 2), 6.0)
            )
        else:
            fig = ax.figure
        data.plot.bar(stacked=True, ax=ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        ax.set_ylabel("energy (µJ)")
        ax.set_title(f"{self.network}: energy by component")
        if lat_ax is not None:
            import pandas as pd

            comp = [x.compute_cycles for x in self.layers]
            stall = [max(0.0, x.cycles - x.compute_cycles) for x in self.layers]
            lat = pd.DataFrame({"compute": comp, "memory stall": stall}, index=df.index)
            lat.plot.bar(stacked=True, ax=lat_ax)
            lat_ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
            lat_ax.set_ylabel("latency (cycles)")
            lat_ax.set_xlabel("layer")
            lat_ax.set_title(f"{self.network}: latency")
        else:
            ax.set_xlabel("layer")
        fig.tight_layout()
        return fig
