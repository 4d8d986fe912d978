"""Per-level statistics of one design, the way Timeloop / Sparseloop print them, from the cost
core (``testy-model study``, the Sparseloop artifact's case folders).

This module prices nothing itself: :func:`evaluate_inputs` calls :func:`~testy_model.model.cost.
price` (the one cost core, with the files' ``sparse_optimizations`` and the chosen
:class:`~testy_model.spec.conventions.Conventions`) and lays its arrays out per level and tensor:
per utilized instance, the algorithmic / actual / gated / skipped reads, fills and updates,
metadata and payload units per rank (innermost first), metadata bits, energy (pJ, all
instances); per level, its bandwidth cycles and throttling; the compute's actual / gated /
skipped MACs. Loading is ``spec.timeloop_inputs`` (``load_case``, ``load_timeloop_files``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from testy_model.model.cost import NestCost, price
from testy_model.model.nest import nests_from_mapping
from testy_model.spec.accelergy import EnergyTable, apply_ert
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.mapping import Mapping
from testy_model.spec.sparseloop import SparseOptimizations, sparse_opts_from_support
from testy_model.spec.timeloop_inputs import TimeloopInputs, load_case
from testy_model.spec.workload import Problem

#: the study's default: the Sparseloop MICRO 2022 artifact's counting
STUDY_CONVENTIONS = Conventions.SPARSELOOP_2022


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccessCounts(_Model):
    """Words of one access kind, per utilized instance."""

    algorithmic: float
    actual: float
    gated: float
    skipped: float


class TensorLevelStats(_Model):
    """One tensor at one level: per-instance reads, fills, updates (actual/gated/skipped), format
    metadata and payload units per rank (innermost first), metadata bits, utilized instances
    and energy (pJ, all instances)."""

    tile: float
    format: str
    utilized_instances: float
    reads: AccessCounts
    fills: AccessCounts
    updates: AccessCounts
    metadata_reads: list[float] = Field(default_factory=list)
    metadata_fills: list[float] = Field(default_factory=list)
    payload_reads: list[float] = Field(default_factory=list)
    payload_fills: list[float] = Field(default_factory=list)
    metadata_read_bits: float = 0.0
    metadata_fill_bits: float = 0.0
    energy_pj: float


class LevelStats(_Model):
    """One storage level: utilized instances (most of any tensor), bandwidth cycles,
    throttling (``min(1, compute cycles / level cycles)``), energy (pJ)."""

    name: str
    datawidth: int = 8
    utilized_instances: float
    cycles: float
    throttling: float
    energy_pj: float
    tensors: dict[str, TensorLevelStats]


class ComputeStats(_Model):
    """MACs (totals): algorithmic, actual, gated, skipped; utilized units; cycles; energy (pJ)."""

    algorithmic: float
    actual: float
    gated: float
    skipped: float
    utilized_instances: float
    cycles: float
    energy_pj: float


class StudyReport(_Model):
    """Cycles, energy (pJ), per-level and compute statistics of one design."""

    case: str
    conventions: str = STUDY_CONVENTIONS.value
    cycles: float
    energy_pj: float
    compute: ComputeStats
    levels: list[LevelStats]
    clock_ghz: float = 1.0
    valid: bool = True

    @property
    def energy_uj(self) -> float:
        """Total energy in µJ."""
        return self.energy_pj * 1e-6

    @property
    def seconds(self) -> float:
        """Latency in seconds: cycles / (clock GHz × 1e9)."""
        return self.cycles / (self.clock_ghz * 1e9)

    def level(self, name: str) -> LevelStats:
        """Statistics of level ``name``."""
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"no level {name!r}")

    def to_json(self) -> str:
        """The report as JSON text."""
        return json.dumps(self.model_dump(), indent=2)


def _format_name(opts: SparseOptimizations | None, level: str, tensor: str) -> tuple[str, int]:
    if opts is None:
        return "", 0
    for f in opts.target(level).formats:
        if f.name == tensor:
            return "-".join(r.format for r in f.ranks), len(f.ranks)
    return "", 0


def report_from_cost(
    cost: NestCost,
    arch: Architecture,
    opts: SparseOptimizations | None,
    name: str,
    conventions: Conventions,
    row: int = 0,
) -> StudyReport:
    """Lay row ``row`` of ``cost`` out per level and tensor (module docstring)."""
    d = cost.dense
    assert d is not None and d.held is not None and cost.utilized is not None
    util = np.broadcast_to(cost.utilized, cost.reads.shape)[row]
    streamed = d.streamed[row] if d.streamed is not None else np.zeros_like(d.held[row])
    split = {"actual": "random", "gated": "gated", "skipped": "skipped"}
    e_t = cost.energy_by_tensor
    demand = cost.level_demand_cycles
    compute_cycles = float(np.broadcast_to(cost.compute_cycles, cost.cycles.shape)[row])
    levels = []
    for li, lname in enumerate(cost.level_names):
        lvl = arch.levels[li]
        tens: dict[str, TensorLevelStats] = {}
        for ti, t in enumerate(cost.tensor_names):
            if not (d.held[row, li, ti] or streamed[li, ti]):
                continue
            acc = {}
            for kind in ("reads", "fills", "updates"):
                vals = {s: float(cost.splits[kind][k][row, li, ti]) for s, k in split.items()}
                acc[kind] = AccessCounts(algorithmic=float(getattr(d, kind)[row, li, ti]), **vals)
            fmt, n_r = _format_name(opts, lname, t)
            md: dict[str, list[float]] = {}
            if cost.sparse is not None and n_r:
                for kind in ("reads", "fills"):
                    f = cost.sparse.fmt[kind]["random"][row, li, ti, :n_r]
                    md[f"metadata_{kind}"] = [float(x) for x in f[:, 0]]
                    md[f"payload_{kind}"] = [float(x) for x in f[:, 1]]
            dw = float(lvl.datawidth)
            tens[t] = TensorLevelStats(
                tile=float(d.tile[row, li, ti]),
                format=fmt,
                utilized_instances=float(util[li, ti]),
                **acc,
                **md,
                metadata_read_bits=float(cost.metadata_reads[row, li, ti] * dw),
                metadata_fill_bits=float(cost.metadata_fills[row, li, ti] * dw),
                energy_pj=float(e_t[row, li, ti]) if e_t is not None else 0.0,
            )
        cyc = float(demand[row, li]) if demand is not None else 0.0
        levels.append(
            LevelStats(
                name=lname,
                datawidth=lvl.datawidth,
                utilized_instances=max([x.utilized_instances for x in tens.values()] or [0.0]),
                cycles=cyc,
                throttling=min(1.0, compute_cycles / cyc) if cyc > 0 else 1.0,
                energy_pj=float(cost.energy_by_component[lname][row]),
                tensors=tens,
            )
        )
    cs = cost.compute_split
    pick = lambda x: float(np.broadcast_to(x, cost.cycles.shape)[row])  # noqa: E731
    sc = cost.sparse
    units = float(np.asarray(sc.mac_units).reshape(-1)[row]) if sc is not None else None
    return StudyReport(
        case=name,
        conventions=conventions.value,
        cycles=pick(cost.cycles),
        energy_pj=pick(cost.energy_pj),
        compute=ComputeStats(
            algorithmic=pick(cost.macs),
            actual=pick(cs["random"]),
            gated=pick(cs["gated"]),
            skipped=pick(cs["skipped"]),
            utilized_instances=units if units is not None else float(d.mac_units[row]),
            cycles=compute_cycles,
            energy_pj=pick(cost.energy_by_component["MAC"]),
        ),
        levels=levels,
        clock_ghz=arch.compute.clock_ghz,
        valid=bool(pick(cost.valid)),
    )


def evaluate_inputs(
    inputs: TimeloopInputs,
    conventions: Conventions | str | None = STUDY_CONVENTIONS,
    name: str = "case",
) -> StudyReport:
    """Price loaded Timeloop / Sparseloop inputs (architecture, problem, mapping,
    ``sparse_optimizations``) with the cost core and lay the result out per level."""
    if inputs.problem is None or inputs.mapping is None:
        from testy_model.errors import SpecError

        missing = "problem" if inputs.problem is None else "mapping"
        raise SpecError(f"the inputs hold no {missing!r} block (expected one in the files)")
    conv = Conventions.parse(conventions)
    nests = nests_from_mapping(inputs.mapping, inputs.arch, inputs.problem)
    cost = price(inputs.problem, inputs.arch, nests, sparse=inputs.sparse, conventions=conv)
    return report_from_cost(cost, inputs.arch, inputs.sparse, name, conv)


def evaluate_case(
    case_dir: str | Path, conventions: Conventions | str | None = STUDY_CONVENTIONS
) -> StudyReport:
    """Load (``spec.timeloop_inputs.load_case``) and evaluate a Sparseloop case folder."""
    return evaluate_inputs(load_case(case_dir), conventions, name=str(case_dir))


def evaluate_spec(
    arch: Architecture,
    problem: Problem,
    mapping: Mapping,
    *,
    sparse_opts: SparseOptimizations | None = None,
    ert: EnergyTable | None = None,
    conventions: Conventions | str | None = STUDY_CONVENTIONS,
    name: str = "spec",
) -> StudyReport:
    """Evaluate a design in this tool's own specs: ``sparse_opts`` defaults to
    :func:`sparse_opts_from_support` of ``arch.sparsity``; ``ert`` overrides the energies."""
    opts = sparse_opts if sparse_opts is not None else sparse_opts_from_support(arch, problem)
    if ert is not None:
        arch = apply_ert(arch, ert)
    conv = Conventions.parse(conventions)
    nests = nests_from_mapping(mapping, arch, problem)
    cost = price(problem, arch, nests, sparse=opts, conventions=conv)
    return report_from_cost(cost, arch, opts, name, conv)
