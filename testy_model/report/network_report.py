"""The report of one network evaluation (:class:`Report`): totals over its layers, operators
and tensors, and the same as tables, JSON, a DataFrame and plots. Units and the JSON contract:
:mod:`testy_model.report`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testy_model.report.records import (
    CostTotals,
    FusionSummary,
    LayerResult,
    OperatorResult,
    TensorTraffic,
)


@dataclass(frozen=True)
class Report(CostTotals):
    """Per-layer results of one network on one architecture under one plan, and (for a graph)
    its non-GEMM operators and the tensors between them."""

    network: str
    arch: str
    plan: str
    clock_ghz: float
    layers: tuple[LayerResult, ...]
    conventions: str = "timeloop"
    operators: tuple[OperatorResult, ...] = ()
    tensors: tuple[TensorTraffic, ...] = ()
    fusion: FusionSummary = field(default_factory=FusionSummary)

    @property
    def cycles(self) -> float:
        """Σ layer cycles + Σ operator cycles (run one after another)."""
        return float(sum(x.cycles for x in self.layers) + self.non_gemm_cycles)

    @property
    def seconds(self) -> float:
        """Σ layer seconds + Σ operator seconds."""
        return float(sum(x.seconds for x in self.layers) + sum(x.seconds for x in self.operators))

    @property
    def energy_pj(self) -> float:
        """Σ layer energy + Σ operator energy, pJ."""
        return self.gemm_energy_pj + self.non_gemm_energy_pj

    @property
    def gemm_energy_pj(self) -> float:
        """Σ energy of the GEMM-like layers, pJ."""
        return float(sum(x.energy_pj for x in self.layers))

    @property
    def non_gemm_energy_pj(self) -> float:
        """Σ energy of the non-GEMM operators, pJ."""
        return float(sum(x.energy_pj for x in self.operators))

    @property
    def non_gemm_cycles(self) -> float:
        """Σ cycles of the non-GEMM operators."""
        return float(sum(x.cycles for x in self.operators))

    @property
    def non_gemm_energy_share(self) -> float:
        """Non-GEMM energy / total energy (0 when there are no operators)."""
        total = self.energy_pj
        return self.non_gemm_energy_pj / total if total else 0.0

    @property
    def non_gemm_cycles_share(self) -> float:
        """Non-GEMM cycles / total cycles."""
        total = self.cycles
        return self.non_gemm_cycles / total if total else 0.0

    @property
    def between_layer_dram_words(self) -> float:
        """Σ over tensors between operators of DRAM reads + writes, words."""
        return float(sum(t.dram_reads + t.dram_writes for t in self.tensors))

    @property
    def between_layer_dram_energy_pj(self) -> float:
        """Σ over tensors between operators of their DRAM energy, pJ (per word)."""
        return float(sum(t.dram_energy_pj for t in self.tensors))

    @property
    def skipped_operators(self) -> tuple[str, ...]:
        """Operators of unknown kind, counted as traffic only."""
        return tuple(x.name for x in self.operators if x.op == "unknown")

    def dominant(self, k: int = 5, by: str = "energy") -> list[tuple[str, float]]:
        """The ``k`` layers or operators with the largest share of energy (``by="energy"``)
        or cycles (``by="cycles"``): ``[(name, share), ...]``, shares of the network total."""
        key = "energy_pj" if by == "energy" else "cycles"
        total = self.energy_pj if by == "energy" else self.cycles
        nodes: tuple[LayerResult | OperatorResult, ...] = (*self.layers, *self.operators)
        rows = [(x.name, float(getattr(x, key))) for x in nodes]
        rows.sort(key=lambda r: (-r[1], r[0]))
        return [(n, v / total if total else 0.0) for n, v in rows[:k]]

    @property
    def dense_cycles(self) -> float:
        """Σ dense-baseline cycles (layers and operators)."""
        ops = sum(x.dense_cycles for x in self.operators)
        return float(sum(x.dense_cycles for x in self.layers) + ops)

    @property
    def dense_energy_pj(self) -> float:
        """Σ dense-baseline energy (layers and operators), pJ."""
        ops = sum(x.dense_energy_pj for x in self.operators)
        return float(sum(x.dense_energy_pj for x in self.layers) + ops)

    def graph_summary(self, k: int = 5) -> list[str]:
        """Plain-text lines on the graph's non-GEMM operators, the tensors between operators,
        fusion, skipped operators and the operators that dominate energy (for the CLI)."""
        lines = []
        if self.operators:
            kinds: dict[str, int] = {}
            for x in self.operators:
                kinds[x.op] = kinds.get(x.op, 0) + 1
            text = ", ".join(f"{n} {c}" for n, c in sorted(kinds.items(), key=lambda i: -i[1]))
            lines.append(
                f"non-GEMM operators: {len(self.operators)} ({text}): "
                f"{self.non_gemm_energy_pj / 1e6:,.3f} µJ ({self.non_gemm_energy_share:.1%} of "
                f"energy), {self.non_gemm_cycles:,.0f} cycles ({self.non_gemm_cycles_share:.1%})"
            )
        if self.tensors:
            lines.append(
                f"between-layer tensors: {len(self.tensors)}; DRAM traffic "
                f"{self.between_layer_dram_words:,.0f} words, "
                f"{self.between_layer_dram_energy_pj / 1e6:,.3f} µJ"
            )
        f = self.fusion
        if f.policy != "none":
            lines.append(
                f"fusion {f.policy} into {f.level}: {f.resident_tensors} tensor(s) stay on chip; "
                f"DRAM energy −{f.dram_energy_saved_pj / 1e6:,.3f} µJ"
            )
        if self.skipped_operators:
            lines.append(f"skipped (counted as traffic only): {', '.join(self.skipped_operators)}")
        top = ", ".join(f"{n} {share:.1%}" for n, share in self.dominant(k))
        lines.append(f"operators that dominate energy: {top}")
        if self.operators:
            by_kind = ", ".join(f"{n} {v:.1%}" for n, v in self.energy_by_kind()[:k])
            lines.append(f"energy by operator kind: {by_kind}")
        return lines

    def energy_by_kind(self) -> list[tuple[str, float]]:
        """Share of the total energy per operator kind (a layer's problem shape, ``conv2D``,
        ``gemm_ABZ``, ``bgemm_ABZ``, or an operator's kind), largest first."""
        total = self.energy_pj or 1.0
        out: dict[str, float] = {}
        for x in self.layers:
            out[x.kind or "layer"] = out.get(x.kind or "layer", 0.0) + x.energy_pj
        for o in self.operators:
            out[o.op] = out.get(o.op, 0.0) + o.energy_pj
        return sorted(((k, v / total) for k, v in out.items()), key=lambda r: (-r[1], r[0]))

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
                "gemm_energy_pj": self.gemm_energy_pj,
                "non_gemm_energy_pj": self.non_gemm_energy_pj,
                "non_gemm_cycles": self.non_gemm_cycles,
                "non_gemm_energy_share": self.non_gemm_energy_share,
                "non_gemm_cycles_share": self.non_gemm_cycles_share,
                "between_layer_dram_words": self.between_layer_dram_words,
                "between_layer_dram_energy_pj": self.between_layer_dram_energy_pj,
                "skipped_operators": list(self.skipped_operators),
            },
            "layers": [x.to_dict() for x in self.layers],
            "operators": [x.to_dict() for x in self.operators],
            "tensors": [x.to_dict() for x in self.tensors],
            "fusion": self.fusion.to_dict(),
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
        if self.operators:
            t.add_section()
            t.add_row(
                f"non-GEMM ({len(self.operators)} operators)",
                "",
                f"{self.non_gemm_cycles:,.0f}",
                f"{self.non_gemm_energy_pj / 1e6:,.3f}",
                "",
                "",
                "",
                "",
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
        """Per-layer bars; returns the matplotlib figure (no pyplot, no backend change).

        With no ``ax``: :func:`testy_model.plots.breakdown_figure` (energy by component in µJ/mJ
        above, latency as compute cycles plus memory stall below, one colour per component).
        With ``ax``: the energy panel only, drawn into ``ax``.
        """
        from testy_model.plots import breakdown_figure, component_colors, energy_unit

        if ax is None:
            return breakdown_figure(self)
        df = self.to_frame().set_index("layer")
        cols = [c for c in df.columns if c.startswith("E_")]
        unit, div = energy_unit(float(df[cols].sum(axis=1).max()) if cols else 1.0)
        data = df[cols] / div
        data.columns = [c[2:] for c in cols]
        colors = component_colors(["MAC", *data.columns])
        data.plot.bar(stacked=True, ax=ax, color=[colors[c] for c in data.columns])
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        ax.set_ylabel(f"energy ({unit})")
        ax.set_title(f"{self.network}: energy by component")
        ax.set_xlabel("layer")
        return ax.figure
