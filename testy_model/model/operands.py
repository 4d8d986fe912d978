"""Operands as sums of structured terms (TASD): the term stage of the cost core.

A layer whose operand is a TASD series (terms of N:M patterns) runs every term under one
mapping. How terms share data (reference.md: "the dataflow keeps the other operand and the
partial sums stationary while the terms of one operand stream through, so the terms share
them"): the term index is an extra innermost loop below every storage level, so the stationary
operand and the partial sums move once per layer and each term of a decomposed operand moves
once at its own kept density and metadata::

    words(t, l) = dense_words(t, l) · Σ_i d_{t,i}
    metadata bits(t, l) = dense_words(t, l) · Σ_i d_{t,i}·b_{t,i}

with d the kept density and b the metadata bits per kept value of term i. The engine issues
``slots = MACs · Σ_i Σ_j r_{A,i}·r_{B,j}`` computes (r = hardware work ratio p/q of the pattern
a term runs on); ``effective = MACs · Σ_i z_{A,i} · Σ_j z_{B,j}`` of them have two non-zero
operands (actual), with z the term's non-zero fraction (``OperandTerm.nonzero``; its kept
density d for a coordinate term, less than d for a fixed-slot term whose slots hold zeros); the
other ``slots − effective`` are gated. Outputs are dense.

Units: words of the tensor's datawidth and metadata bits, per instance; computes over all units.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testy_model.model import latency as lat
from testy_model.model.arrays import ArchArrays
from testy_model.model.buffer import KINDS, StageCounts
from testy_model.model.hierarchical import term_metadata_bits
from testy_model.model.reuse import DenseCounts
from testy_model.spec.arch import OperandSparsity
from testy_model.spec.workload import Problem
from testy_model.tasd.pattern import NMPattern

ArrayLike = float | np.ndarray


@dataclass(frozen=True)
class OperandTerm:
    """Format of one term of one operand.

    Attributes:
        density: kept fraction of the dense tensor's values (0..1), scalar or (B,).
        metadata_bits: metadata bits per kept value (0 for dense).
        pattern: the term's N:M pattern (decides the hardware work ratio), or None.
        work: explicit hardware work ratio (overrides the one derived from ``pattern``).
        nonzero: fraction of the dense tensor's values that are non-zero in this term's slots
            (effective MACs); ``None`` = ``density``. A fixed-slot N:M term stores and moves
            ``density`` = p/q of the values (its slots) but only ``nonzero`` of them are
            non-zero; the issued slots that hold zeros are gated MACs.
    """

    density: ArrayLike = 1.0
    metadata_bits: ArrayLike = 0.0
    pattern: NMPattern | None = None
    work: ArrayLike | None = None
    nonzero: ArrayLike | None = None


def nm_term(
    pattern: NMPattern | str,
    density: ArrayLike | None = None,
    support: OperandSparsity | None = None,
) -> OperandTerm:
    """An N:M term: kept density (default n/m, i.e. full blocks) and metadata bits per kept value
    (``model.hierarchical.term_metadata_bits``: the support's ``metadata_bits`` if set, else the
    hierarchical pattern's when the term runs on one, else ceil(log2 m))."""
    p = NMPattern.parse(pattern)
    bits = term_metadata_bits(p, support) if support is not None else float(p.metadata_bits)
    return OperandTerm(
        density=p.density if density is None else density,
        metadata_bits=bits,
        pattern=p,
    )


def as_term(v: object) -> OperandTerm:
    """An :class:`OperandTerm` from a term, a density or ``(density, bits, pattern)``."""
    if isinstance(v, OperandTerm):
        return v
    if isinstance(v, (int, float, np.ndarray)):
        return OperandTerm(density=v)
    if isinstance(v, tuple):
        return OperandTerm(*v)
    raise TypeError(
        f"expected OperandTerm, density or (density, metadata_bits, pattern); got {v!r}"
    )


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _support(problem: Problem, aa: ArchArrays, tensor: str) -> OperandSparsity:
    """The sparsity support of ``tensor``: A (weight) or B (activation) of the engine."""
    weight = problem.weight or problem.inputs[0]
    return aa.sparsity.A if tensor == weight else aa.sparsity.B


def _term_work(x: OperandTerm, sup: OperandSparsity) -> np.ndarray:
    """A term's hardware work ratio: its ``work``, else :func:`latency.work_ratio` of its
    pattern and density (that function's cache hashes its arguments: an array density, which
    cannot be hashed, goes to the uncached function)."""
    if x.work is not None:
        return _arr(x.work)
    if isinstance(x.density, np.ndarray):
        return _arr(lat.work_ratio.__wrapped__(x.pattern, x.density, sup))
    return _arr(lat.work_ratio(x.pattern, x.density, sup))


@dataclass(frozen=True)
class TermScaling:
    """Per tensor: value scale ``Σ d`` and metadata bits per dense word ``Σ d·b`` (B?, T); the
    work ratio ``Σ_i Σ_j r_Ai·r_Bj`` and the effective fraction ``Π Σ d`` (B?,)."""

    scale: np.ndarray
    md_bits: np.ndarray
    work: np.ndarray
    effective: np.ndarray


def term_scaling(
    problem: Problem, aa: ArchArrays, terms: MappingABC[str, Sequence[object]] | None
) -> TermScaling:
    """The sums of the module docstring for ``terms`` (input tensor -> terms; missing = dense).

    Raises ValueError when a term is given for the output or an unknown tensor."""
    tensors = problem.tensor_names
    terms_t = {t: [as_term(v) for v in vs] for t, vs in (terms or {}).items()}
    for t in terms_t:
        if t not in tensors or t == problem.output:
            raise ValueError(f"terms given for {t!r}; expected an input tensor of {list(tensors)}")
    scale, mdb = [], []
    work = np.ones(1)
    eff = np.ones(1)
    for t in tensors:
        ts = terms_t.get(t, [OperandTerm()])
        scale.append(sum(_arr(x.density) for x in ts))
        mdb.append(sum(_arr(x.density) * _arr(x.metadata_bits) for x in ts))
        if t == problem.output:
            continue
        sup = _support(problem, aa, t)
        r = sum(_term_work(x, sup) for x in ts)
        work = work * r
        eff = eff * sum(_arr(x.density if x.nonzero is None else x.nonzero) for x in ts)
    scale_a = np.stack(np.broadcast_arrays(*scale), axis=-1)
    mdb_a = np.stack(np.broadcast_arrays(*mdb), axis=-1)
    if scale_a.ndim == 1:
        scale_a, mdb_a = scale_a[None], mdb_a[None]
    return TermScaling(scale_a, mdb_a, work, eff)


def term_stage(dense: DenseCounts, ts: TermScaling, out_idx: int) -> StageCounts:
    """Stage counts of a layer of TASD terms (module docstring): every access actual."""
    # (repeated along L: a (P, 1, T) operand would make numpy step 3 elements at a time)
    n_l = dense.reads.shape[1]
    s3 = np.repeat(ts.scale[:, None, :], n_l, axis=1)
    m3 = np.repeat(ts.md_bits[:, None, :], n_l, axis=1)
    counts: dict[str, dict[str, np.ndarray]] = {}
    md: dict[str, dict[str, np.ndarray]] = {}
    z: np.ndarray | None = None  # one zero array for every gated / skipped count
    for kind in KINDS:
        x = getattr(dense, kind)
        words = x * np.ones_like(s3) if kind == "updates" else x * s3
        z = np.zeros_like(words) if z is None else z
        bits = z if kind == "updates" else x * m3
        counts[kind] = {"random": words, "gated": z, "skipped": z}
        md[kind] = {"random": bits, "gated": z, "skipped": z}
    shape = counts["reads"]["random"].shape
    # (repeated, not a broadcast view: the pricing multiplies by it)
    util = np.repeat(dense.instances[:, :, None], shape[-1], axis=2)
    if util.shape != shape:
        util = np.broadcast_to(dense.instances[:, :, None], shape)
    macs = dense.macs
    effective = macs * ts.effective
    slots = macs * ts.work
    return StageCounts(
        counts=counts,
        md_bits=md,
        utilized=util,
        ratio=np.ones(shape),
        compute={
            "random": effective * np.ones_like(slots),
            "gated": np.maximum(slots - effective, 0.0),
            "skipped": np.zeros_like(slots * effective),
        },
        mac_units=dense.mac_units,
        actual_only=True,
    )
