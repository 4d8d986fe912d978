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

A network evaluated as a graph (``model.graph_eval``) adds, beside ``layers`` (the GEMM-like
layers, unchanged)::

     "operators": [{"name", "op", "source", "cycles", "seconds", "energy_pj", "edp_pj_s",
                    "element_ops", "words_read": {LEVEL: words}, "words_written": {LEVEL: words},
                    "energy_by_component": {COMPONENT: pJ}}],
     "tensors": [{"producer", "consumers", "words", "level", "output", "dram_reads",
                  "dram_writes", "dram_energy_pj", "onchip_reads", "onchip_writes"}],
     "fusion": {"policy": "none|fit", "level": LEVEL|null, "resident_tensors": n,
                "dram_energy_saved_pj": pJ}

and to ``total``: ``gemm_energy_pj``, ``non_gemm_energy_pj``, ``non_gemm_cycles``,
``non_gemm_energy_share``, ``non_gemm_cycles_share``, ``between_layer_dram_words``,
``between_layer_dram_energy_pj``, ``skipped_operators`` (names of operators counted as traffic
only). ``tensors`` lists every tensor between operators (views resolved): the words its producer
writes to and its consumers read from the outermost level (DRAM) as each operator's model
counts them (GEMM layers: their own DRAM accesses of that operand; other operators: the tensor's
values), or, when fusion keeps it on chip, the same accesses at ``level``.

Units: cycles of the accelerator clock; seconds; energy in pJ; EDP in pJ·s. ``accesses`` are
totals over the level's used instances, in words of the tensor's datawidth (metadata converted
to words of that datawidth); tensors are named as in the problem (A, B, Z for GEMMs; Weights,
Inputs, Outputs for convolutions); "updates" are partial-sum writes from below, as Timeloop
counts them. ``speedup`` = dense cycles / cycles and ``energy_ratio`` = energy / dense energy,
against the same network run dense on the same engine with the same mappings (and the same
fusion policy). The network runs its operators one after another: total cycles = Σ layer cycles
+ Σ operator cycles; total EDP = total energy × total seconds.
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
    #: bandwidth cycles of each level and of the TASD unit (the terms of the latency max)
    level_cycles: dict[str, float] = field(default_factory=dict)
    tasd_cycles: float = 0.0
    #: the problem's shape (``conv2D``, ``gemm_ABZ``, ``bgemm_ABZ``, ...), "" when unknown
    kind: str = ""

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
class OperatorResult:
    """Costs of one non-GEMM operator (``model.elementwise``; units in the module docstring).

    ``words_read``/``words_written``: level -> words; ``element_ops``: element operations;
    ``dense_cycles``/``dense_energy_pj``: the same operator in the dense baseline (equal unless
    fusion keeps different tensors on chip there)."""

    name: str
    op: str
    cycles: float
    seconds: float
    energy_pj: float
    energy_by_component: dict[str, float]
    words_read: dict[str, float]
    words_written: dict[str, float]
    element_ops: float
    dense_cycles: float
    dense_energy_pj: float
    source: str | None = None

    @property
    def edp_pj_s(self) -> float:
        """Energy-delay product, pJ·s."""
        return self.energy_pj * self.seconds

    def to_dict(self) -> dict[str, Any]:
        """The operator's entry of the JSON contract."""
        return {
            "name": self.name,
            "op": self.op,
            "source": self.source,
            "cycles": self.cycles,
            "seconds": self.seconds,
            "energy_pj": self.energy_pj,
            "edp_pj_s": self.edp_pj_s,
            "element_ops": self.element_ops,
            "words_read": dict(self.words_read),
            "words_written": dict(self.words_written),
            "energy_by_component": dict(self.energy_by_component),
        }


@dataclass(frozen=True)
class TensorTraffic:
    """One tensor between operators: the words moved to and from where it lives.

    ``dram_writes``: words its producer writes to the outermost level (a GEMM layer's DRAM
    updates and fills of its output); ``dram_reads``: words read back from there (its consumers'
    DRAM reads of the operand it feeds, in proportion to its share of that operand, plus a GEMM
    producer's partial-sum read-back); ``dram_energy_pj`` = reads·e_read + writes·e_write of
    that level (per word). When fusion keeps it in ``level`` the same accesses are
    ``onchip_reads``/``onchip_writes`` and the DRAM ones are 0."""

    producer: str
    consumers: tuple[str, ...]
    words: int
    level: str
    output: bool
    dram_reads: float
    dram_writes: float
    dram_energy_pj: float
    onchip_reads: float = 0.0
    onchip_writes: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The tensor's entry of the JSON contract."""
        return {
            "producer": self.producer,
            "consumers": list(self.consumers),
            "words": self.words,
            "level": self.level,
            "output": self.output,
            "dram_reads": self.dram_reads,
            "dram_writes": self.dram_writes,
            "dram_energy_pj": self.dram_energy_pj,
            "onchip_reads": self.onchip_reads,
            "onchip_writes": self.onchip_writes,
        }


@dataclass(frozen=True)
class FusionSummary:
    """The fusion policy of a graph evaluation (``model.fusion``): ``policy`` none|fit, the
    on-chip ``level``, how many tensors stayed there, and the DRAM energy that saved (pJ,
    Σ over the network's operators of DRAM energy without fusion − with it)."""

    policy: str = "none"
    level: str | None = None
    resident_tensors: int = 0
    dram_energy_saved_pj: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The ``fusion`` entry of the JSON contract."""
        return {
            "policy": self.policy,
            "level": self.level,
            "resident_tensors": self.resident_tensors,
            "dram_energy_saved_pj": self.dram_energy_saved_pj,
        }


@dataclass(frozen=True)
class Report:
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
    def edp_pj_s(self) -> float:
        """Total energy × total seconds, pJ·s."""
        return self.energy_pj * self.seconds

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

    @property
    def speedup(self) -> float:
        """Dense cycles / cycles of the whole network."""
        return self.dense_cycles / self.cycles if self.cycles else float("nan")

    @property
    def energy_ratio(self) -> float:
        """Energy / dense energy of the whole network."""
        return self.energy_pj / self.dense_energy_pj if self.dense_energy_pj else float("nan")

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
