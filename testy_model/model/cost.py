"""The batched cost core: traffic, latency and energy of B loop nests × P design points.

``evaluate_nests`` prices one term-GEMM; ``evaluate_terms`` prices a layer whose operands are TASD
series (several term-GEMMs under one mapping). Everything is vectorised over the batch (no Python
loop over mappings, MACs or tiles; loops over levels and tensors only).

How terms share data (reference.md: "the dataflow keeps the other operand and the partial sums
stationary while the terms of one operand stream through, so the terms share them"): the term
index is modelled as an extra innermost loop below every storage level. Hence, at every level,
the stationary operand and the partial sums move once per layer, exactly as for a single GEMM,
and each term of a decomposed operand moves once at its own kept density and metadata:

    words(t, l) = dense_words(t, l) · Σ_i d_{t,i}
    metadata bits(t, l) = dense_words(t, l) · Σ_i d_{t,i}·b_{t,i}

with d the kept density and b the metadata bits per kept value of term i. Compute runs every
term pair: ``cycles = T_all · Σ_i Σ_j r_{A,i}·r_{B,j}`` (r = hardware work ratio p/q), effective
MACs ``= MACs · Σ_i d_{A,i} · Σ_j d_{B,j}`` (so the terms' MACs add up to the kept non-zeros'
work). Outputs are dense.

Units: counts in words of the tensor's datawidth, per instance (``*_total`` over instances);
cycles; energy pJ; seconds; EDP pJ·s.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from testy_model.model import energy as en
from testy_model.model import latency as lat
from testy_model.model.arrays import ArchArrays, arch_arrays
from testy_model.model.hierarchical import term_metadata_bits
from testy_model.model.nest import LoopNests
from testy_model.model.reuse import DenseCounts, dense_counts
from testy_model.spec.arch import Architecture, OperandSparsity
from testy_model.spec.validate import effective_spatial_factors
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


def _as_term(v: object) -> OperandTerm:
    if isinstance(v, OperandTerm):
        return v
    if isinstance(v, (int, float, np.ndarray)):
        return OperandTerm(density=v)
    if isinstance(v, tuple):
        return OperandTerm(*v)
    raise TypeError(
        f"expected OperandTerm, density or (density, metadata_bits, pattern); got {v!r}"
    )


@dataclass(frozen=True)
class NestCost:
    """Costs of B mappings (arrays along B; see module docstring for units).

    ``reads``/``fills``/``updates``/``metadata_reads`` are per instance (Timeloop's convention);
    ``metadata_reads`` are in words of the tensor's datawidth (bits / datawidth); ``instances``
    gives the used instances per level and the ``*_total`` properties multiply them in.
    """

    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    metadata_reads: np.ndarray
    metadata_fills: np.ndarray
    instances: np.ndarray
    compute_cycles: np.ndarray
    level_cycles: np.ndarray
    tasd_cycles: np.ndarray
    cycles: np.ndarray
    cycles_serial: np.ndarray
    seconds: np.ndarray
    energy_pj: np.ndarray
    energy_by_component: dict[str, np.ndarray]
    macs: np.ndarray
    effective_macs: np.ndarray
    mac_slots: np.ndarray
    utilisation: np.ndarray
    valid: np.ndarray
    valid_capacity: np.ndarray
    valid_fanout: np.ndarray
    valid_factors: np.ndarray
    edp: np.ndarray
    level_names: tuple[str, ...] = ()
    tensor_names: tuple[str, ...] = ()
    dense: DenseCounts | None = field(default=None, repr=False)

    @property
    def reads_total(self) -> np.ndarray:
        """(B, L, T) reads summed over the used instances."""
        return self.reads * self.instances[:, :, None]

    @property
    def fills_total(self) -> np.ndarray:
        """(B, L, T) fills summed over the used instances."""
        return self.fills * self.instances[:, :, None]

    @property
    def updates_total(self) -> np.ndarray:
        """(B, L, T) updates summed over the used instances."""
        return self.updates * self.instances[:, :, None]


def fanout_ok(problem: Problem, aa: ArchArrays, nests: LoopNests) -> np.ndarray:
    """(B,) True where every level's spatial factors fit its fan-out:
    ``Π_d eff_spatial[l, d] <= fanout[l]`` for every level l (instances), with the effective
    factors of ``spec.validate.effective_spatial_factors`` (the validator's rule 3: along the
    axis of an N:M operand whose zeros the engine skips, a factor f occupies only
    ``worst_case_per_block(f)`` instances, e.g. K32 of a 2:4 operand needs 16)."""
    eff = effective_spatial_factors(nests.spatial, aa, problem, aa.level_names)  # type: ignore[arg-type]
    return (eff.prod(axis=2) <= aa.fanout).all(axis=1)


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def evaluate_nests(
    problem: Problem,
    arch: Architecture | ArchArrays | Sequence[Architecture],
    nests: LoopNests,
    densities: MappingABC[str, object] | None = None,
) -> NestCost:
    """Cost of one term-GEMM under B mappings (and P design points, broadcast with B).

    ``densities``: tensor -> :class:`OperandTerm` (or a density, or ``(density, metadata_bits,
    pattern)``); missing tensors are dense.
    """
    terms = {t: [_as_term(v)] for t, v in (densities or {}).items()}
    return evaluate_terms(problem, arch, nests, terms)


def _operand_support(problem: Problem, aa: ArchArrays, tensor: str) -> OperandSparsity:
    """The sparsity support of ``tensor``: A (weight) or B (activation) of the engine."""
    weight = problem.weight or problem.inputs[0]
    return aa.sparsity.A if tensor == weight else aa.sparsity.B


def evaluate_terms(
    problem: Problem,
    arch: Architecture | ArchArrays | Sequence[Architecture],
    nests: LoopNests,
    terms: MappingABC[str, Sequence[object]] | None = None,
    *,
    tasd_values: ArrayLike = 0.0,
    bounds: np.ndarray | None = None,
    counts: DenseCounts | None = None,
) -> NestCost:
    """Cost of a layer whose input operands are sums of terms, under one shared mapping.

    Args:
        problem: the layer (its dimensions, projections and tensors; bounds for the check).
        arch: one architecture, several (design points) or prepared :class:`ArchArrays`.
        nests: B loop nests (B broadcasts with the P design points).
        terms: input tensor -> list of :class:`OperandTerm` (missing = one dense term).
        tasd_values: activation values decomposed at run time by the TASD unit (per layer).
        bounds: (B, D) problem bounds per batch row (default: ``problem.bounds``).
        counts: precomputed :func:`dense_counts` of ``nests`` (reused across densities).
    """
    aa = arch_arrays(arch)
    cnt = counts if counts is not None else dense_counts(problem, nests)
    tensors = problem.tensor_names
    n_l = nests.n_levels
    if n_l != len(aa.level_names):
        raise ValueError(
            f"loop nests have {n_l} levels but the architecture has {len(aa.level_names)}"
        )
    terms = {t: [_as_term(v) for v in vs] for t, vs in (terms or {}).items()}
    for t in terms:
        if t not in tensors or t == problem.output:
            raise ValueError(f"terms given for {t!r}; expected an input tensor of {list(tensors)}")
    # per-tensor value scale Σ d_i and metadata bits per dense word Σ d_i·b_i, and work Σ r_i
    scale, mdb = [], []
    work = np.ones(1)
    eff = np.ones(1)
    for t in tensors:
        ts = terms.get(t, [OperandTerm()])
        scale.append(sum(_arr(x.density) for x in ts))
        mdb.append(sum(_arr(x.density) * _arr(x.metadata_bits) for x in ts))
        if t == problem.output:
            continue
        sup = _operand_support(problem, aa, t)
        r = sum(
            _arr(x.work) if x.work is not None else _arr(lat.work_ratio(x.pattern, x.density, sup))
            for x in ts
        )
        work = work * r
        eff = eff * sum(_arr(x.density if x.nonzero is None else x.nonzero) for x in ts)
    scale_a = np.stack(np.broadcast_arrays(*scale), axis=-1)  # (B?, T)
    mdb_a = np.stack(np.broadcast_arrays(*mdb), axis=-1)
    if scale_a.ndim == 1:
        scale_a, mdb_a = scale_a[None], mdb_a[None]
    s3 = scale_a[:, None, :]  # (B, 1, T)
    m3 = mdb_a[:, None, :]

    reads = cnt.reads * s3
    fills = cnt.fills * s3
    updates = cnt.updates * np.ones_like(s3)
    md_reads_bits = cnt.reads * m3
    md_fills_bits = cnt.fills * m3
    inst = cnt.instances[:, :, None]

    # datawidth of each tensor at each level: problem datawidth, else the level's (P, L, T)
    dwl = aa.datawidth[:, :, None]
    dw = np.stack(
        [
            np.full_like(aa.datawidth, problem.datawidths[t])
            if t in problem.datawidths
            else aa.datawidth
            for t in tensors
        ],
        axis=-1,
    )
    word_scale = dw / dwl  # energy per tensor word relative to a level word
    md_r, md_w = aa.md_energy_per_bit
    # whole vectors: each tensor's reads, fills and updates per instance round up to rows
    blk = (aa.block_words if aa.block_words is not None else np.ones_like(aa.datawidth))[:, :, None]

    def charged(x: np.ndarray) -> np.ndarray:
        return en.whole_vector_words(x * word_scale, blk) * inst

    lvl_energy = en.storage_energy(
        reads=charged(reads).sum(-1),
        writes=(charged(fills) + charged(updates)).sum(-1),
        md_read_bits=(md_reads_bits * inst).sum(-1),
        md_write_bits=(md_fills_bits * inst).sum(-1),
        e_read=aa.read_energy,
        e_write=aa.write_energy,
        e_md_read=md_r,
        e_md_write=md_w,
    )  # (B, L)

    # latency
    read_bits = (reads * dw + md_reads_bits).sum(-1)
    write_bits = ((fills + updates) * dw + md_fills_bits).sum(-1)
    level_cycles = lat.bandwidth_cycles(read_bits, write_bits, aa.read_bw, aa.write_bw)
    compute = lat.compute_cycles(cnt.temporal_iterations, work)
    tv = _arr(tasd_values)
    tasd_cyc = np.where(
        tv > 0,
        lat.tasd_unit_cycles(tv, aa.tasd_block, aa.tasd_cycles_per_block, aa.tasd_count),
        0.0,
    )
    cycles = lat.overlapped_latency(compute, level_cycles, tasd_cyc)
    serial = lat.serial_latency(compute, level_cycles, tasd_cyc)
    seconds = cycles / (aa.clock_ghz * 1e9)

    # energy
    macs = cnt.macs
    effective = macs * eff
    slots = macs * work
    e_mac = en.mac_energy(effective, slots, aa.mac_energy, aa.gated_mac_energy)
    e_tasd = en.tasd_unit_energy(tv, aa.tasd_energy_per_value) * np.ones_like(cycles)
    e_leak = en.leakage_energy(cycles, aa.leakage, aa.instances, aa.mac_leakage, aa.mac_instances)
    comps: dict[str, np.ndarray] = {name: lvl_energy[:, i] for i, name in enumerate(aa.level_names)}
    comps["MAC"] = e_mac * np.ones_like(cycles)
    comps["TASD_unit"] = e_tasd
    comps["leakage"] = e_leak * np.ones_like(cycles)
    total = sum(comps.values())

    # validity
    valid_fanout = fanout_ok(problem, aa, nests)
    keep = nests.keep.copy()
    keep[:, 0, :] = True
    data_bits = (keep * cnt.tile * s3 * dw).sum(-1)
    md_bits = (keep * cnt.tile * m3).sum(-1)
    md_cap = aa.md_capacity_bits if aa.md_capacity_bits is not None else np.zeros(1)
    # metadata sits in a level's separate metadata storage when it has one, else with the data
    valid_capacity = (
        (data_bits + np.where(md_cap > 0, 0.0, md_bits) <= aa.capacity_bits * (1 + 1e-9))
        & (np.where(md_cap > 0, md_bits <= md_cap * (1 + 1e-9), True))
    ).all(axis=1)
    b = (
        np.array([[problem.bounds[d] for d in problem.dimensions]])
        if bounds is None
        else np.asarray(bounds)
    )
    prod = (nests.temporal * nests.spatial).prod(axis=1)
    valid_factors = (prod == b).all(axis=1) & nests.keep[:, 0, :].all(axis=1)
    valid = valid_fanout & valid_capacity & valid_factors
    util = slots / (aa.mac_instances * cycles)
    shape = np.broadcast_shapes(cycles.shape, total.shape)
    return NestCost(
        reads=reads,
        fills=fills,
        updates=updates,
        metadata_reads=md_reads_bits / dw,
        metadata_fills=md_fills_bits / dw,
        instances=cnt.instances,
        compute_cycles=np.broadcast_to(compute, shape),
        level_cycles=level_cycles,
        tasd_cycles=np.broadcast_to(tasd_cyc, shape),
        cycles=np.broadcast_to(cycles, shape),
        cycles_serial=np.broadcast_to(serial, shape),
        seconds=np.broadcast_to(seconds, shape),
        energy_pj=np.broadcast_to(total, shape),
        energy_by_component={k: np.broadcast_to(v, shape) for k, v in comps.items()},
        macs=np.broadcast_to(macs, shape),
        effective_macs=np.broadcast_to(effective, shape),
        mac_slots=np.broadcast_to(slots, shape),
        utilisation=np.broadcast_to(util, shape),
        valid=np.broadcast_to(valid, shape),
        valid_capacity=np.broadcast_to(valid_capacity, shape),
        valid_fanout=np.broadcast_to(valid_fanout, shape),
        valid_factors=np.broadcast_to(valid_factors, shape),
        edp=np.broadcast_to(total * seconds, shape),
        level_names=aa.level_names,
        tensor_names=tensors,
        dense=cnt,
    )
