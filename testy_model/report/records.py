"""Result records of an evaluation: one GEMM-like layer (:class:`LayerResult`), one non-GEMM
operator (:class:`OperatorResult`), one tensor between operators (:class:`TensorTraffic`) and
the fusion policy's summary (:class:`FusionSummary`). Units and the JSON contract:
:mod:`testy_model.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Accesses = dict[str, dict[str, dict[str, float]]]


class _Totals(Protocol):
    """What :class:`CostTotals` reads: a record's totals and its dense baseline's."""

    @property
    def cycles(self) -> float: ...
    @property
    def seconds(self) -> float: ...
    @property
    def energy_pj(self) -> float: ...
    @property
    def dense_cycles(self) -> float: ...
    @property
    def dense_energy_pj(self) -> float: ...


class CostTotals:
    """Energy-delay product, speed-up and energy ratio against the dense baseline, for a layer, an
    operator or a whole network."""

    @property
    def edp_pj_s(self: _Totals) -> float:
        """Energy-delay product: energy × seconds, pJ·s."""
        return self.energy_pj * self.seconds

    @property
    def speedup(self: _Totals) -> float:
        """Dense cycles / cycles (dimensionless; NaN for zero cycles)."""
        return self.dense_cycles / self.cycles if self.cycles else float("nan")

    @property
    def energy_ratio(self: _Totals) -> float:
        """Energy / dense energy (dimensionless; NaN for a zero dense energy)."""
        return self.energy_pj / self.dense_energy_pj if self.dense_energy_pj else float("nan")


@dataclass(frozen=True)
class LayerResult(CostTotals):
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
class OperatorResult(CostTotals):
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
