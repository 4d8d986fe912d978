"""The cost core: traffic, latency and energy of B loop nests × P design points, in one place.

:func:`price` is the one pipeline every entry point uses (``eval``, ``study``, the mapper,
``search``, ``sweep``, ``evaluate_points``), vectorised over the batch (no Python loop over
mappings, MACs or tiles on the dense path):

1. dense per-level counts (:mod:`~testy_model.model.reuse`, Timeloop v3.0.3's nest analysis,
   under the chosen :class:`~testy_model.spec.conventions.Conventions`);
2. a stage that turns them into actual / gated / skipped accesses, metadata and computes: the
   **sparse stage** (:mod:`~testy_model.model.sparse`, Sparseloop's formats, density models and
   gating / skipping, from ``sparse_optimizations``) or the **term stage**
   (:mod:`~testy_model.model.operands`, operands as sums of structured TASD terms);
3. pricing (:mod:`~testy_model.model.buffer`): vector accesses, per-action energies, level
   slow-downs and cycles; plus the TASD unit and leakage.

``evaluate_terms`` and ``evaluate_nests`` are :func:`price` with terms.

Units: counts in words of the tensor's datawidth, per instance (``*_total`` over the utilized
instances); cycles; energy pJ; seconds; EDP pJ·s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from testy_model.model import energy as en
from testy_model.model import latency as lat
from testy_model.model.arrayops import prod_axis
from testy_model.model.arrays import ArchArrays, arch_arrays
from testy_model.model.buffer import StageCounts, price_counts
from testy_model.model.density import density_models
from testy_model.model.loops import instances_xy, loop_table
from testy_model.model.nest import LoopNests
from testy_model.model.operands import (
    OperandTerm,
    TermScaling,
    as_term,
    nm_term,
    term_scaling,
    term_stage,
)
from testy_model.model.reuse import DenseCounts, dense_counts, extents
from testy_model.model.sparse import LevelParams, SparseCounts, sparse_counts
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.sparseloop import SparseOptimizations
from testy_model.spec.validate import _skipped_axes, effective_spatial_factors
from testy_model.spec.workload import Density, Problem

ArrayLike = float | np.ndarray

__all__ = [
    "NestCost",
    "OperandTerm",
    "StageTotals",
    "capacity_fits",
    "evaluate_nests",
    "evaluate_terms",
    "fanout_ok",
    "nm_term",
    "price",
    "stage_totals",
]


@dataclass(frozen=True)
class NestCost:
    """Costs of B mappings (arrays along B; see module docstring for units).

    ``reads``/``fills``/``updates`` are the *actual* accesses per instance (Timeloop's
    convention); ``splits[kind][split]`` gives actual (``random``), ``gated`` and ``skipped``;
    ``metadata_reads``/``metadata_fills`` are metadata bits / datawidth; ``utilized`` the average
    utilized instances per level and tensor (``*_total`` multiply them in); ``compute_split`` the
    actual / gated / skipped computes; ``energy_by_tensor`` (B, L, T) pJ; ``level_demand_cycles``
    (B, L) each level's bandwidth cycles (``level_cycles`` keeps only those above the compute);
    ``stage`` the counts that were priced and ``word_scale`` (P, L, T) tensor / level word bits
    (``buffer.price_counts(aa, stage, word_scale)`` prices them at other design points).
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
    splits: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    utilized: np.ndarray | None = field(default=None, repr=False)
    compute_split: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    sparse: SparseCounts | None = field(default=None, repr=False)
    energy_by_tensor: np.ndarray | None = field(default=None, repr=False)
    level_demand_cycles: np.ndarray | None = field(default=None, repr=False)
    stage: StageCounts | None = field(default=None, repr=False)
    word_scale: np.ndarray | None = field(default=None, repr=False)

    def _util(self) -> np.ndarray:
        if self.utilized is not None:
            return self.utilized
        return self.instances[:, :, None]

    @property
    def reads_total(self) -> np.ndarray:
        """(B, L, T) reads summed over the utilized instances."""
        return self.reads * self._util()

    @property
    def fills_total(self) -> np.ndarray:
        """(B, L, T) fills summed over the utilized instances."""
        return self.fills * self._util()

    @property
    def updates_total(self) -> np.ndarray:
        """(B, L, T) updates summed over the utilized instances."""
        return self.updates * self._util()


def fanout_ok(problem: Problem, aa: ArchArrays, nests: LoopNests) -> np.ndarray:
    """(B,) True where every level's spatial factors fit its fan-out:
    ``Π_d eff_spatial[l, d] <= fanout[l]`` for every level l (instances), with the effective
    factors of ``spec.validate.effective_spatial_factors`` (the validator's rule 3: along the
    axis of an N:M operand whose zeros the engine skips, a factor f occupies only
    ``worst_case_per_block(f)`` instances, e.g. K32 of a 2:4 operand needs 16)."""
    if _pair(problem, aa).plain_fanout and nests.spatial.dtype == np.int64:
        eff = nests.spatial  # no skipped axis: the effective factors are the factors
    else:
        eff = effective_spatial_factors(nests.spatial, aa, problem, aa.level_names)
    return np.asarray((prod_axis(eff, 2) <= aa.fanout).all(axis=1))


@dataclass(frozen=True)
class _PairArrays:
    """What :func:`price` derives from the problem and the architecture alone: ``dw`` (P, L, T)
    each tensor's word bits at each level, ``word_scale`` = ``dw`` / level word bits,
    ``plain_fanout`` no level skips a structured operand's zeros spatially (the effective
    spatial factors are the factors), ``terms`` the memoised :func:`term_scaling` by terms."""

    dw: np.ndarray
    word_scale: np.ndarray
    plain_fanout: bool
    terms: dict[tuple[Any, ...], TermScaling]


_PAIR_MEMO: dict[tuple[int, int], tuple[Problem, ArchArrays, _PairArrays]] = {}


def _pair(problem: Problem, aa: ArchArrays) -> _PairArrays:
    """:class:`_PairArrays` of ``problem`` on ``aa``, memoised on their identities (frozen
    specs; the memo holds both, so an identity cannot be reused while cached; bounded)."""
    key = (id(problem), id(aa))
    hit = _PAIR_MEMO.get(key)
    if hit is not None and hit[0] is problem and hit[1] is aa:
        return hit[2]
    dwl = aa.datawidth[:, :, None]
    dw = np.stack(
        [
            np.full_like(aa.datawidth, problem.datawidths[t])
            if t in problem.datawidths
            else aa.datawidth
            for t in problem.tensor_names
        ],
        axis=-1,
    )
    plain = all(not _skipped_axes(aa, problem, level, None) for level in aa.level_names)
    out = _PairArrays(dw, dw / dwl, plain, {})
    out.dw.flags.writeable = False  # shared through the memo
    out.word_scale.flags.writeable = False
    if len(_PAIR_MEMO) >= 64:
        _PAIR_MEMO.clear()
    _PAIR_MEMO[key] = (problem, aa, out)
    return out


def _terms_key(terms: MappingABC[str, Sequence[object]] | None) -> tuple[Any, ...] | None:
    """A hashable key of ``terms`` when every term is given by numbers and patterns (None:
    not memoisable, e.g. an array density)."""
    if not terms:
        return ()
    key: list[Any] = []
    for t, vs in terms.items():
        for v in vs:
            x = as_term(v)
            vals = (x.density, x.metadata_bits, x.work, x.nonzero)
            if not all(y is None or type(y) in (float, int) for y in vals):
                return None
            key.append((t, *vals, x.pattern))
        key.append((t,))
    return tuple(key)


def _term_scaling(
    problem: Problem, aa: ArchArrays, terms: MappingABC[str, Sequence[object]] | None
) -> TermScaling:
    """:func:`term_scaling`, memoised per problem and architecture on the terms' numbers
    (:func:`_terms_key`)."""
    key = _terms_key(terms)
    if key is None:
        return term_scaling(problem, aa, terms)
    memo = _pair(problem, aa).terms
    hit = memo.get(key)
    if hit is None:
        hit = term_scaling(problem, aa, terms)
        for a in (hit.scale, hit.md_bits, hit.work, hit.effective):
            a.flags.writeable = False  # shared through the memo
        if len(memo) >= 64:
            memo.clear()
        memo[key] = hit
    return hit


@dataclass(frozen=True)
class StageTotals:
    """What a priced stage costs in total (:func:`stage_totals`): ``cycles``, ``tasd_cycles``
    (cycles), ``components`` (pJ per level, ``MAC``, ``TASD_unit``, ``leakage``) and their sum
    ``energy_pj``, all broadcast to the shape of ``cycles``."""

    cycles: np.ndarray
    tasd_cycles: np.ndarray
    components: dict[str, np.ndarray]
    energy_pj: np.ndarray


def stage_totals(
    aa: ArchArrays,
    pr: Any,
    tasd_values: ArrayLike,
    point: Callable[[np.ndarray], np.ndarray] = lambda x: x,
) -> StageTotals:
    """Latency and energy of a priced stage (``pr``: :func:`~testy_model.model.buffer.
    price_counts`) on the design points of ``aa`` — the one place these totals are formed.

    Equations: TASD unit cycles ``= tasd_unit_cycles(values)`` (0 without values); ``cycles =
    overlapped_latency(compute, level cycles, TASD cycles)`` (``model.latency``); energy (pJ)
    ``= Σ_l level_l + MAC + values·e_value + cycles·(Σ_l leak_l·instances_l + leak_mac·MACs)``
    (``model.energy``), summed in that order. ``point`` maps a per-point array of ``aa`` onto
    the shape of ``pr``'s arrays (identity when candidates broadcast with points; ``x[None]``
    for a (B, P) grid, :func:`testy_model.dse.batch.pair_cost`).
    """
    tv = _arr(tasd_values)
    tasd_cyc = (
        np.where(
            tv > 0,
            lat.tasd_unit_cycles(tv, aa.tasd_block, aa.tasd_cycles_per_block, aa.tasd_count),
            0.0,
        )
        if (tv > 0).any()
        else np.zeros_like(aa.tasd_count, dtype=np.float64)
    )
    cycles = lat.overlapped_latency(pr.compute_cycles, pr.level_cycles, point(tasd_cyc))
    level_e = pr.energy.sum(axis=-1)  # (..., L)
    ones = np.ones_like(cycles)
    same = level_e.shape[:-1] == cycles.shape  # (no broadcast view needed)
    comps: dict[str, np.ndarray] = {
        name: level_e[..., i] if same else np.broadcast_to(level_e[..., i], cycles.shape)
        for i, name in enumerate(aa.level_names)
    }
    comps["MAC"] = pr.mac_energy * ones
    comps["TASD_unit"] = point(en.tasd_unit_energy(tv, aa.tasd_energy_per_value)) * ones
    comps["leakage"] = en.leakage_energy(
        cycles, point(aa.leakage), point(aa.instances), point(aa.mac_leakage),
        point(aa.mac_instances),
    ) * ones  # fmt: skip
    total = sum(comps.values())
    return StageTotals(
        cycles=cycles,
        tasd_cycles=point(tasd_cyc) * ones,  # (x·1 is x, bit for bit)
        components=comps,
        energy_pj=np.asarray(total),
    )


def capacity_fits(
    data_bits: np.ndarray,
    md_bits: np.ndarray,
    capacity_bits: np.ndarray,
    md_capacity_bits: np.ndarray | None,
) -> np.ndarray:
    """The capacity rule, per level then all levels (last axis): data bits (plus the metadata
    bits where the level has no separate metadata storage) ``<= capacity``, and metadata bits
    ``<=`` the metadata storage where there is one (``md_capacity > 0``); 1e-9 relative slack.
    Bits per instance; shapes broadcast."""
    md_cap = md_capacity_bits if md_capacity_bits is not None else np.zeros(1)
    data_ok = data_bits + np.where(md_cap > 0, 0.0, md_bits) <= capacity_bits * (1 + 1e-9)
    md_ok = np.where(md_cap > 0, md_bits <= md_cap * (1 + 1e-9), True)
    return np.asarray((data_ok & md_ok).all(axis=-1))


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def evaluate_nests(
    problem: Problem,
    arch: Architecture | ArchArrays | Sequence[Architecture],
    nests: LoopNests,
    densities: MappingABC[str, object] | None = None,
    *,
    conventions: Conventions | str | None = None,
) -> NestCost:
    """Cost of one term-GEMM under B mappings (and P design points, broadcast with B).

    ``densities``: tensor -> :class:`OperandTerm` (or a density, or ``(density, metadata_bits,
    pattern)``); missing tensors are dense.
    """
    terms = {t: [as_term(v)] for t, v in (densities or {}).items()}
    return evaluate_terms(problem, arch, nests, terms, conventions=conventions)


def evaluate_terms(
    problem: Problem,
    arch: Architecture | ArchArrays | Sequence[Architecture],
    nests: LoopNests,
    terms: MappingABC[str, Sequence[object]] | None = None,
    *,
    tasd_values: ArrayLike = 0.0,
    bounds: np.ndarray | None = None,
    counts: DenseCounts | None = None,
    conventions: Conventions | str | None = None,
) -> NestCost:
    """Cost of a layer whose input operands are sums of terms, under one shared mapping
    (:func:`price` with the term stage).

    Args:
        problem: the layer (its dimensions, projections and tensors; bounds for the check).
        arch: one architecture, several (design points) or prepared :class:`ArchArrays`.
        nests: B loop nests (B broadcasts with the P design points).
        terms: input tensor -> list of :class:`OperandTerm` (missing = one dense term).
        tasd_values: activation values decomposed at run time by the TASD unit (per layer).
        bounds: (B, D) problem bounds per batch row (default: ``problem.bounds``).
        counts: precomputed :func:`dense_counts` of ``nests`` (reused across densities).
        conventions: counting conventions (default ``timeloop``).
    """
    return price(
        problem,
        arch,
        nests,
        terms=terms or {},
        tasd_values=tasd_values,
        bounds=bounds,
        counts=counts,
        conventions=conventions,
    )


def price(
    problem: Problem,
    arch: Architecture | ArchArrays | Sequence[Architecture],
    nests: LoopNests,
    *,
    sparse: SparseOptimizations | None = None,
    densities: MappingABC[str, Density] | None = None,
    terms: MappingABC[str, Sequence[object]] | None = None,
    conventions: Conventions | str | None = None,
    tasd_values: ArrayLike = 0.0,
    bounds: np.ndarray | None = None,
    counts: DenseCounts | None = None,
) -> NestCost:
    """The cost of B mappings of ``problem`` on P design points (module docstring).

    Args:
        problem: the layer.
        arch: one architecture, several (design points) or prepared :class:`ArchArrays`.
        nests: B loop nests (B broadcasts with P).
        sparse: Sparseloop ``sparse_optimizations`` (formats, gating / skipping, compute
            optimizations): the sparse stage runs with the tensors' density models.
        densities: tensor -> :class:`Density` overriding ``problem.densities`` (sparse stage).
        terms: input tensor -> TASD terms (the term stage; used when ``sparse`` is None).
        conventions: ``timeloop`` (default) or ``sparseloop-2022``.
        tasd_values: activation values the TASD unit decomposes at run time (per layer).
        bounds: (B, D) problem bounds per row (default ``problem.bounds``), for validity.
        counts: precomputed dense counts of ``nests`` under the same conventions.
    """
    aa = arch_arrays(arch)
    conv = Conventions.parse(conventions)
    if nests.n_levels != len(aa.level_names):
        raise ValueError(
            f"loop nests have {nests.n_levels} levels but the architecture has "
            f"{len(aa.level_names)}"
        )
    fx = aa.fanout_x[0] if aa.fanout_x is not None else None
    cnt = (
        counts
        if counts is not None
        else dense_counts(problem, nests, conventions=conv, fanout_x=fx)
    )
    out_idx = problem.tensor_names.index(problem.output)
    sc: SparseCounts | None = None
    if sparse is not None:
        sc = _sparse(problem, aa, nests, cnt, sparse, densities)
        stage = StageCounts(
            counts=sc.counts,
            md_bits=sc.fmt_bits,
            utilized=sc.utilized,
            ratio=sc.ratio,
            compute=sc.compute,
            mac_units=sc.mac_units,
            max_instances=sc.max_instances,
            position_util=sc.position_util,
        )
        data_words = sc.capacity
        md_words = sc.md_bits
        effective = sc.compute["random"]
    else:
        ts = _term_scaling(problem, aa, terms)
        stage = term_stage(cnt, ts, out_idx)
        n_l = cnt.tile.shape[1]  # (repeated along L: a trailing-axis broadcast is slow)
        data_words = cnt.tile * np.repeat(ts.scale[:, None, :], n_l, axis=1)
        md_words = cnt.tile * np.repeat(ts.md_bits[:, None, :], n_l, axis=1)
        effective = stage.compute["random"]
    return _assemble(
        problem, aa, nests, cnt, stage, sc, data_words, md_words, effective, tasd_values, bounds
    )


def _sparse(
    problem: Problem,
    aa: ArchArrays,
    nests: LoopNests,
    cnt: DenseCounts,
    opts: SparseOptimizations,
    densities: MappingABC[str, Density] | None,
) -> SparseCounts:
    """Run the sparse stage with the first design point's structural numbers."""
    assert aa.op_energy is not None
    blk = aa.block_words if aa.block_words is not None else np.ones_like(aa.datawidth)
    params = LevelParams(
        block=blk[0],
        md_word_bits=(aa.md_word_bits if aa.md_word_bits is not None else 0 * aa.datawidth)[0],
        md_width=(aa.md_width if aa.md_width is not None else 0 * aa.datawidth)[0],
        read_energy=aa.op_energy[0, :, 0],
        arch_spatial=np.array(aa.arch_spatial or [True] * len(aa.level_names)),
    )
    table = loop_table(nests, params.arch_spatial)
    models = density_models(problem, densities)
    return sparse_counts(
        problem,
        cnt,
        table,
        extents(nests),
        aa.level_names,
        aa.compute_name,
        opts,
        models,
        params,
        instances_xy(nests),
    )


def _assemble(
    problem: Problem,
    aa: ArchArrays,
    nests: LoopNests,
    cnt: DenseCounts,
    stage: StageCounts,
    sc: SparseCounts | None,
    data_words: np.ndarray,
    md_words: np.ndarray,
    effective: np.ndarray,
    tasd_values: ArrayLike,
    bounds: np.ndarray | None,
) -> NestCost:
    """Price ``stage`` and assemble the :class:`NestCost` (energy by component, TASD unit,
    leakage, validity)."""
    tensors = problem.tensor_names
    pa = _pair(problem, aa)
    dw = pa.dw
    pr = price_counts(aa, stage, pa.word_scale)
    compute = pr.compute_cycles
    tv = _arr(tasd_values)
    tot = stage_totals(aa, pr, tv)
    cycles, tasd_cyc, comps, total = tot.cycles, tot.tasd_cycles, tot.components, tot.energy_pj
    bw_cycles = np.where(pr.level_cycles > compute[..., None], pr.level_cycles, 0.0)
    serial = lat.serial_latency(compute, bw_cycles, tasd_cyc)
    seconds = cycles / (aa.clock_ghz * 1e9)
    if sc is None:
        valid_fanout = fanout_ok(problem, aa, nests)
    else:
        # Timeloop's check after spatial skipping (buffer.cpp / arithmetic.cpp ``Evaluate``: the
        # mapped instances of each level, reduced where children get no work, fit the hardware)
        need_l = np.asarray(sc.max_instances).max(axis=-1)
        need_c = sc.mac_need if sc.mac_need is not None else cnt.mac_units
        valid_fanout = (need_l <= aa.instances * (1 + 1e-9)).all(axis=1) & (
            need_c <= aa.mac_instances * (1 + 1e-9)
        )
        if sc.need_xy is not None and aa.fanout_x is not None:
            # storage-gs-analyzer.cpp ``SummarizeAndPropagateSpatialCapacityReduction``: per
            # tensor, fan-out X (Y) of level l = needed X (Y) of its child / its own, truncated
            # to an integer, within the hardware's fan-out X (Y)
            nx = sc.need_xy
            fan = np.floor(nx[:, 1:] / np.maximum(nx[:, :-1], 1e-300) * (1 + 1e-12))
            hx = aa.fanout_x[:, :, None]
            hy = (aa.fanout / aa.fanout_x)[:, :, None]
            valid_fanout = valid_fanout & (
                (fan[..., 0] <= hx * (1 + 1e-9)) & (fan[..., 1] <= hy * (1 + 1e-9))
            ).all(axis=(1, 2))
    keep = nests.keep.copy()
    keep[:, 0, :] = True
    data_bits = (keep * data_words * dw).sum(-1)
    md_bits = (keep * md_words).sum(-1)
    valid_capacity = capacity_fits(data_bits, md_bits, aa.capacity_bits, aa.md_capacity_bits)
    if sc is not None:
        valid_capacity = valid_capacity & sc.ok
    b = (
        np.array([[problem.bounds[d] for d in problem.dimensions]])
        if bounds is None
        else np.asarray(bounds)
    )
    prod = prod_axis(nests.temporal * nests.spatial, 1)
    valid_factors = (prod == b).all(axis=1) & nests.keep[:, 0, :].all(axis=1)
    valid = valid_fanout & valid_capacity & valid_factors
    slots = stage.compute["random"] + stage.compute["gated"]
    util = slots / (aa.mac_instances * cycles)
    shape = np.broadcast_shapes(cycles.shape, total.shape)

    def bc(x: np.ndarray) -> np.ndarray:
        return x if getattr(x, "shape", None) == shape else np.broadcast_to(x, shape)

    st = stage.counts
    return NestCost(
        reads=st["reads"]["random"],
        fills=st["fills"]["random"],
        updates=st["updates"]["random"],
        metadata_reads=stage.md_bits["reads"]["random"] / dw,
        metadata_fills=stage.md_bits["fills"]["random"] / dw,
        instances=cnt.instances,
        compute_cycles=bc(compute),
        level_cycles=bw_cycles,
        tasd_cycles=bc(tasd_cyc),
        cycles=bc(cycles),
        cycles_serial=bc(serial),
        seconds=bc(seconds),
        energy_pj=bc(total),
        energy_by_component={k: bc(v) for k, v in comps.items()},
        macs=bc(cnt.macs),
        effective_macs=bc(effective),
        mac_slots=bc(slots),
        utilisation=bc(util),
        valid=bc(valid),
        valid_capacity=bc(valid_capacity),
        valid_fanout=bc(valid_fanout),
        valid_factors=bc(valid_factors),
        edp=bc(total * seconds),
        level_names=aa.level_names,
        tensor_names=tensors,
        dense=cnt,
        splits=st,
        utilized=np.asarray(stage.utilized),
        compute_split=stage.compute,
        sparse=sc,
        energy_by_tensor=pr.energy,
        level_demand_cycles=pr.level_cycles,
        stage=stage,
        word_scale=pa.word_scale,
    )
