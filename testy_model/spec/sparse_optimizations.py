"""Typed Sparseloop ``sparse_optimizations``; :mod:`testy_model.spec.sparseloop` reads them.

Sparseloop (Timeloop's sparse extension, MICRO 2022) describes what a design does with zeros, per
storage level ("target"):

- ``representation-format``: per data space, a list of ranks (listed outermost first; the last
  is Sparseloop's rank 0), matched to the tile's loops from the outer end by default
  (``rank-application-order: outer-to-inner``, Timeloop v3.0.3's default) or from the inner end
  (``inner-to-outer``), each with a format
  ``UOP`` (uncompressed offset pairs: one payload offset per coordinate + 1), ``CP`` (coordinate
  payload: one metadata coordinate per non-zero), ``B`` (bitmask: one metadata bit per coordinate),
  ``RLE`` (run length: one run per non-zero) or ``UB`` (uncompressed bitmask), and the word widths
  ``metadata-word-bits`` / ``payload-word-bits`` in bits.
- ``action-optimization``: ``gating`` (the access happens at gated cost), ``skipping`` (it does
  not happen at all), ``skipping-spatial`` (the spatial instances below the target whose
  condition tile is empty get no work), ``position-skipping`` (skip the zeros of the target
  itself), each with the data spaces it is conditioned on (``condition-on``).
- ``compute-optimization``: ``gating`` or ``skipping`` of the MACs themselves.

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Problem

RankFormatName = Literal["UOP", "CP", "B", "RLE", "UB"]


ActionType = Literal["gating", "skipping", "skipping-spatial", "position-skipping"]


FORMATS: tuple[str, ...] = ("UOP", "CP", "B", "RLE", "UB")


ACTIONS: tuple[str, ...] = ("gating", "skipping", "skipping-spatial", "position-skipping")


# --------------------------------------------------------------------------------------------
# Typed model
# --------------------------------------------------------------------------------------------
class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RankFormat(_Frozen):
    """One rank of a representation format.

    Attributes:
        format: ``UOP``, ``CP``, ``B``, ``RLE`` or ``UB``.
        metadata_word_bits: bits per metadata word (``None``: the level's metadata datawidth,
            1 for ``B``; resolved by :func:`testy_model.model.formats.adjust_word_bits`).
        payload_word_bits: bits per payload word (``None``: default, likewise).
        flattened_rank_ids: groups of problem dimensions this rank is flattened over (one rank
            takes consecutive loops of one group; ``model.formats.assign_ranks``).
    """

    format: RankFormatName
    metadata_word_bits: int | None = None
    payload_word_bits: int | None = None
    flattened_rank_ids: tuple[tuple[str, ...], ...] = ()


class DataSpaceFormat(_Frozen):
    """The representation format of one data space at one level.

    ``ranks`` are as the file lists them: outermost first, innermost (Sparseloop's "Rank 0")
    last. ``rank_application_order`` says from which end the ranks are matched to the tile's
    non-trivial loops (``model.formats.assign_ranks``): ``outer-to-inner`` (Timeloop's default)
    gives the outermost rank the outermost loop; ``inner-to-outer`` gives rank 0 the innermost.
    """

    name: str
    ranks: tuple[RankFormat, ...]
    rank_application_order: Literal["inner-to-outer", "outer-to-inner"] = "outer-to-inner"

    @property
    def ranks_inner_to_outer(self) -> tuple[RankFormat, ...]:
        """Ranks innermost first (Sparseloop's Rank 0 first)."""
        return tuple(reversed(self.ranks))


class ActionOptimization(_Frozen):
    """A gating / skipping / skipping-spatial / position-skipping of ``target``'s accesses at a
    level, conditioned on the data spaces ``condition_on`` (empty: on the target itself).

    ``group``: actions sharing a group are the ``options`` of one ``action-optimization`` entry,
    of which the model uses the one that saves the most read energy (Timeloop's
    ``DefineIneffectualReadImpact``); ``None`` = an entry of its own.
    """

    type: ActionType
    target: str
    condition_on: tuple[str, ...] = ()
    group: int | None = None


class ComputeOptimization(_Frozen):
    """Gating or skipping of the compute itself (``type``)."""

    type: Literal["gating", "skipping"]


class TargetOptimizations(_Frozen):
    """Everything ``sparse_optimizations`` says about one level (or the compute unit)."""

    name: str
    formats: tuple[DataSpaceFormat, ...] = ()
    actions: tuple[ActionOptimization, ...] = ()
    compute: tuple[ComputeOptimization, ...] = ()

    def format_of(self, tensor: str) -> DataSpaceFormat | None:
        """The representation format of ``tensor`` here, or ``None`` when uncompressed."""
        for f in self.formats:
            if f.name == tensor:
                return f
        return None


class SparseOptimizations(_Frozen):
    """All targets of a ``sparse_optimizations`` block."""

    targets: tuple[TargetOptimizations, ...] = ()
    source: str | None = None

    def target(self, name: str) -> TargetOptimizations:
        """The optimizations of level ``name`` (an empty entry when the file says nothing)."""
        for t in self.targets:
            if t.name == name:
                return t
        return TargetOptimizations(name=name)

    @property
    def is_dense(self) -> bool:
        """True when no target has a format or an optimization."""
        return all(not (t.formats or t.actions or t.compute) for t in self.targets)


def sparse_opts_from_support(
    arch: Architecture, problem: Problem, operands: Sequence[str] = ("A", "B")
) -> SparseOptimizations:
    """Sparseloop-style optimizations equivalent to this tool's ``arch.sparsity`` block, for an
    operand with N:M patterns whose problem density is below 1 (the way the study's STC
    describes its 2:4 engine):

    - at every level that may keep the operand, a fiber tree whose innermost rank is ``CP``
      with ``metadata_bits`` (default ceil(log2 M)) per kept value and whose outer ranks are
      ``UOP`` with 0-bit payloads (they cost nothing), one per level below that may keep it
      (room for the pre-tiled ranks of the child); every rank is flattened over all the
      operand's dimensions, so one rank takes all of a level's loops (metadata per kept value,
      whatever the mapping);
    - ``skipping-spatial`` (action ``skip``) or ``gating`` (action ``gate``) of the other tensors,
      conditioned on the operand, at the innermost level with a spatial fan-out (the level that
      hands work to the MAC array: the study's RF).

    ``operands``: the sparsity operands (``A`` weights, ``B`` activations) to translate.
    """
    targets: dict[str, dict[str, list[Any]]] = {
        lvl.name: {"formats": [], "actions": []} for lvl in arch.levels
    }
    fan = [i for i in range(len(arch.levels)) if arch.fanout(i) > 1]
    for op in operands:
        sup = arch.sparsity.operand(op)
        tensor = problem.weight if op == "A" else problem.activation
        if tensor is None or not sup.patterns or problem.density(tensor).value >= 1.0:
            continue
        bits = sup.metadata_bits
        if bits is None:
            bits = max(1, (max(p.m for p in sup.patterns) - 1).bit_length())
        dims = (tuple(d for d in problem.dimensions if d in problem.relevant(tensor)),)
        holders = [lvl for lvl in arch.levels if lvl.keeps(tensor)]
        for i, lvl in enumerate(holders):
            below = len(holders) - 1 - i
            ranks = (RankFormat(format="UOP", payload_word_bits=0, flattened_rank_ids=dims),) * (
                below
            ) + (RankFormat(format="CP", metadata_word_bits=bits, flattened_rank_ids=dims),)
            targets[lvl.name]["formats"].append(
                DataSpaceFormat(name=tensor, ranks=ranks, rank_application_order="inner-to-outer")
            )
        if fan:
            kind = "skipping-spatial" if sup.action == "skip" else "gating"
            for other in problem.tensor_names:
                if other != tensor:
                    targets[arch.levels[fan[-1]].name]["actions"].append(
                        ActionOptimization(type=kind, target=other, condition_on=(tensor,))
                    )
    return SparseOptimizations(
        targets=tuple(
            TargetOptimizations(name=n, formats=tuple(v["formats"]), actions=tuple(v["actions"]))
            for n, v in targets.items()
            if v["formats"] or v["actions"]
        ),
        source=arch.source,
    )
