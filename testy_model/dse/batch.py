"""Pricing B candidate mappings at P design points at once: the sweep's shared mapper.

A sweep evaluates one network at many design points that share a level *structure* (level
names, instances, fan-outs, keep/bypass, constraints, datawidths, sparsity support) and differ in
*numbers* (capacities, bandwidths, per-action energies, leakage, clock, TASD-unit rates). For one
layer shape the candidate mappings (loop nests) are therefore the same at every point; what a
point changes is which candidates fit and what each costs. So, per (structure, layer shape):

1. the candidates are generated once (``mapper.candidate_nests``, capacities ignored) and their
   point-independent quantities are computed once by **one** call of the model's batched core
   (:func:`testy_model.model.cost.evaluate_terms` at a representative point):
   :class:`CandidateFeatures`;
2. every (candidate b, point p) pair is then priced by the cost core's own pricing
   (:func:`testy_model.model.buffer.price_counts` on the counts the core produced, the
   *stage*), broadcasting candidates (B, 1, ·) against point numbers (1, P, ·):

   - level energy ``Σ_t Σ_action vectors·e_action·utilized instances`` (pJ; vector accesses of
     the level's block, per-action energies, metadata accesses), MAC energy
     ``actual·e_random + gated·e_gated + skipped·e_skipped``, compute and per-level cycles
     (Timeloop's slow-down) — exactly what ``evaluate_terms`` computes at that point;
   - cycles, TASD-unit and leakage energy and the total: the core's
     :func:`~testy_model.model.cost.stage_totals` (the function ``price`` forms them with);
   - valid when the candidate's fan-out and factors are valid and every level holds its tiles:
     the core's :func:`~testy_model.model.cost.capacity_fits`;

3. per point, the candidate with the least objective (``edp`` = pJ·cycles, ``energy`` pJ,
   ``latency`` cycles; first index on ties) is chosen. This equals evaluating every candidate at
   every point with ``evaluate_terms`` (tested row by row), at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from testy_model.model import energy as en
from testy_model.model.arrays import ArchArrays
from testy_model.model.buffer import KINDS, SPLITS, StageCounts, price_counts
from testy_model.model.cost import (
    NestCost,
    OperandTerm,
    capacity_fits,
    evaluate_terms,
    stage_totals,
)
from testy_model.model.nest import LoopNests
from testy_model.spec.conventions import Conventions
from testy_model.spec.workload import Problem

#: (candidate × point) pairs priced per numpy pass; bounds temporary memory (~100 MB).
PAIRS_PER_PASS = 400_000
OBJECTIVES: tuple[str, ...] = ("edp", "energy", "latency")


@dataclass(frozen=True)
class CandidateFeatures:
    """Point-independent quantities of B candidate mappings of one layer (shapes (B, L) or (B,)).

    Attributes:
        read_words / write_words: words read out of / written into each level, all used
            instances, counted in the level's words (tensor words × tensor bits / level bits).
        md_read_bits / md_write_bits: metadata bits read / written per level, all instances.
        read_bits / write_bits: bits read / written per instance (data + metadata).
        held_bits: data bits each level must hold per instance (compressed tiles).
        held_md_bits: metadata bits each level must hold per instance (in the level's separate
            metadata storage when it has one, else beside the data, as the model checks).
        compute_cycles: cycles of the MAC array (Π temporal factors × work ratio).
        effective_macs / mac_slots: MACs on kept non-zeros / MACs the hardware issues.
        base_valid: fan-out and factorisation valid (capacity is checked per point).
        counts / md_bits: (B, 3 kinds, 3 splits, L, T) the core's per-instance words and
            metadata bits (reads, fills, updates × actual, gated, skipped).
        utilized / ratio: (B, L, T) utilized instances and vector-access correction.
        computes: (B, 3) actual, gated, skipped computes; mac_units: (B,) utilized MACs.
        tasd_values: activation values the TASD unit decomposes (per layer, count).
        level_names: the levels, outermost first.
        word_scale: (L, T) tensor word bits / level word bits.
    """

    read_words: np.ndarray
    write_words: np.ndarray
    md_read_bits: np.ndarray
    md_write_bits: np.ndarray
    read_bits: np.ndarray
    write_bits: np.ndarray
    held_bits: np.ndarray
    held_md_bits: np.ndarray
    compute_cycles: np.ndarray
    effective_macs: np.ndarray
    mac_slots: np.ndarray
    base_valid: np.ndarray
    counts: np.ndarray
    md_bits: np.ndarray
    utilized: np.ndarray
    ratio: np.ndarray
    computes: np.ndarray
    mac_units: np.ndarray
    tasd_values: float
    level_names: tuple[str, ...]
    word_scale: np.ndarray

    def __len__(self) -> int:
        return int(self.read_words.shape[0])

    def take(self, idx: np.ndarray) -> CandidateFeatures:
        """The candidates at ``idx``."""
        arrays = {k: getattr(self, k)[idx] for k in _ARRAYS}
        return CandidateFeatures(
            **arrays,
            tasd_values=self.tasd_values,
            level_names=self.level_names,
            word_scale=self.word_scale,
        )

    def stage(self, lead: tuple[slice | None, ...] = ()) -> StageCounts:
        """The candidates' counts as the core's :class:`StageCounts` (``lead`` indexes the
        leading axis, e.g. ``(slice(None), None)`` for a (B, 1, ...) grid)."""
        ix = lead or (slice(None),)
        return StageCounts(
            counts={
                k: {s: self.counts[(*ix, ki, si)] for si, s in enumerate(SPLITS)}
                for ki, k in enumerate(KINDS)
            },
            md_bits={
                k: {s: self.md_bits[(*ix, ki, si)] for si, s in enumerate(SPLITS)}
                for ki, k in enumerate(KINDS)
            },
            utilized=self.utilized[ix],
            ratio=self.ratio[ix],
            compute={s: self.computes[(*ix, si)] for si, s in enumerate(SPLITS)},
            mac_units=self.mac_units[ix],
        )


_ARRAYS = (
    "read_words",
    "write_words",
    "md_read_bits",
    "md_write_bits",
    "read_bits",
    "write_bits",
    "held_bits",
    "held_md_bits",
    "compute_cycles",
    "effective_macs",
    "mac_slots",
    "base_valid",
    "counts",
    "md_bits",
    "utilized",
    "ratio",
    "computes",
    "mac_units",
)


def concat_features(a: CandidateFeatures, b: CandidateFeatures) -> CandidateFeatures:
    """The candidates of ``a`` followed by those of ``b`` (same layer and operand terms)."""
    arrays = {k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in _ARRAYS}
    return CandidateFeatures(
        **arrays, tasd_values=a.tasd_values, level_names=a.level_names, word_scale=a.word_scale
    )


def _scale(terms: Sequence[OperandTerm]) -> tuple[float, float]:
    """Σ_i d_i (stored values per dense word) and Σ_i d_i·b_i (metadata bits per dense word)."""
    s = float(sum(float(np.max(t.density)) for t in terms))
    m = float(sum(float(np.max(t.density)) * float(np.max(t.metadata_bits)) for t in terms))
    return s, m


def candidate_features(
    problem: Problem,
    structure: ArchArrays,
    nests: LoopNests,
    terms: MappingABC[str, Sequence[OperandTerm]] | None = None,
    tasd_values: float = 0.0,
    *,
    conventions: Conventions | str | None = None,
) -> CandidateFeatures:
    """Features of ``nests`` (B candidates) for the layer with operand ``terms``.

    One call of ``evaluate_terms`` at ``structure`` (a P = 1 :class:`ArchArrays` of the shared
    structure; its numbers do not matter) gives the per-instance traffic; the rest is bookkeeping
    of words and bits (module docstring). ``terms`` as in ``evaluate_terms`` (missing = dense);
    ``conventions``: the counting conventions (default ``timeloop``).
    """
    terms = dict(terms or {})
    cost = evaluate_terms(
        problem, structure, nests, terms, tasd_values=tasd_values, conventions=conventions
    )
    tensors = problem.tensor_names
    dwl = structure.datawidth[0]  # (L,) level word bits
    dw = np.stack(
        [np.full_like(dwl, problem.datawidths.get(t, 0.0)) for t in tensors], axis=-1
    )  # (L, T)
    dw = np.where(dw > 0, dw, dwl[:, None])
    word_scale = dw / dwl[:, None]
    inst = cost.instances[:, :, None]  # (B, L, 1) used instances
    writes = cost.fills + cost.updates
    md_r = cost.metadata_reads * dw  # bits per instance
    md_w = cost.metadata_fills * dw
    sm = np.array([_scale(terms.get(t, [OperandTerm()])) for t in tensors])  # (T, 2)
    out_i = tensors.index(problem.output)
    sm[out_i] = (1.0, 0.0)  # outputs are dense
    keep = nests.keep.copy()
    keep[:, 0, :] = True
    tile = cost.dense.tile if cost.dense is not None else np.zeros_like(cost.reads)
    held = (keep * tile * (sm[:, 0] * dw)).sum(-1)
    held_md = (keep * tile * sm[:, 1]).sum(-1)
    blk = structure.block_words
    blk = (blk[0] if blk is not None else np.ones_like(dwl))[:, None]  # (L, 1) words per row

    def charged(x: np.ndarray) -> np.ndarray:  # whole vectors, as evaluate_terms charges them
        return en.whole_vector_words(x * word_scale, blk) * inst

    return CandidateFeatures(
        read_words=charged(cost.reads).sum(-1),
        write_words=(charged(cost.fills) + charged(cost.updates)).sum(-1),
        md_read_bits=(md_r * inst).sum(-1),
        md_write_bits=(md_w * inst).sum(-1),
        read_bits=(cost.reads * dw + md_r).sum(-1),
        write_bits=(writes * dw + md_w).sum(-1),
        held_bits=held,
        held_md_bits=held_md,
        compute_cycles=np.asarray(cost.compute_cycles, dtype=np.float64).copy(),
        effective_macs=np.asarray(cost.effective_macs, dtype=np.float64).copy(),
        mac_slots=np.asarray(cost.mac_slots, dtype=np.float64).copy(),
        base_valid=np.asarray(cost.valid_fanout & cost.valid_factors).copy(),
        **_stage_arrays(cost, len(nests)),
        tasd_values=float(tasd_values),
        level_names=structure.level_names,
        word_scale=word_scale,
    )


def _stage_arrays(cost: NestCost, n_b: int) -> dict[str, np.ndarray]:
    """The priced stage of ``cost`` as packed (B, ...) arrays (:class:`CandidateFeatures`)."""
    st = cost.stage
    assert st is not None
    shape = cost.reads.shape

    def full(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), shape)

    counts = np.stack(
        [np.stack([full(st.counts[k][s]) for s in SPLITS], axis=1) for k in KINDS], axis=1
    )
    md = np.stack(
        [np.stack([full(st.md_bits[k][s]) for s in SPLITS], axis=1) for k in KINDS], axis=1
    )
    comp = np.stack(
        [np.broadcast_to(np.asarray(st.compute[s], dtype=np.float64), (n_b,)) for s in SPLITS],
        axis=1,
    )
    return {
        "counts": counts.copy(),
        "md_bits": md.copy(),
        "utilized": full(st.utilized).copy(),
        "ratio": full(st.ratio).copy(),
        "computes": comp.copy(),
        "mac_units": np.broadcast_to(np.asarray(st.mac_units, dtype=np.float64), (n_b,)).copy(),
    }


@dataclass(frozen=True)
class PairCost:
    """Costs of (candidate, point) pairs, arrays of one broadcast shape S (module docstring).

    ``cycles`` (cycles), ``energy_pj`` (pJ), ``components`` (pJ per level name, ``MAC``,
    ``TASD_unit``, ``leakage``), ``valid`` (bool).
    """

    cycles: np.ndarray
    energy_pj: np.ndarray
    components: dict[str, np.ndarray]
    valid: np.ndarray


def pair_cost(f: CandidateFeatures, aa: ArchArrays, grid: bool) -> PairCost:
    """Price candidates ``f`` at the points of ``aa``.

    ``grid=True``: every candidate at every point, shape (B, P). ``grid=False``: candidate i at
    point i (B = P), shape (P,). Equations in the module docstring.
    """

    def fe(x: np.ndarray) -> np.ndarray:  # feature -> broadcast shape
        return x[:, None] if grid else x

    def pa(x: np.ndarray) -> np.ndarray:  # point number -> broadcast shape
        return x[None] if grid else x

    md_cap = None if aa.md_capacity_bits is None else pa(aa.md_capacity_bits)
    if grid:
        import dataclasses

        def point_axis(x: np.ndarray) -> np.ndarray:
            # numbers shared by every point (the structure's block sizes, word widths) keep one
            # row, so the per-candidate vector counts are computed once, not per point
            return x[:1][None] if np.all(x == x[:1]) else x[None]

        # field name -> its point axis (Any: dataclasses.replace checks each field's type)
        axes: dict[str, Any] = {
            k: point_axis(getattr(aa, k))
            for k in (
                "datawidth",
                "read_bw",
                "write_bw",
                "shared_bw",
                "block_words",
                "md_access_bits",
                "op_energy",
                "mac_op_energy",
            )
            if getattr(aa, k) is not None
        }
        view = dataclasses.replace(aa, **axes)
        stage = f.stage((slice(None), None))
    else:
        view, stage = aa, f.stage()
    pr = price_counts(view, stage, f.word_scale)
    tot = stage_totals(aa, pr, f.tasd_values, pa)  # the cost core's totals (model.cost)
    cycles, comps, total = tot.cycles, tot.components, tot.energy_pj
    fits = capacity_fits(fe(f.held_bits), fe(f.held_md_bits), pa(aa.capacity_bits), md_cap)
    valid = fe(f.base_valid) & fits
    return PairCost(cycles=cycles, energy_pj=total, components=comps, valid=valid)


def objective_of(cycles: np.ndarray, energy_pj: np.ndarray, objective: str) -> np.ndarray:
    """The mapper's per-layer objective: ``edp`` = pJ·cycles, ``energy`` pJ, ``latency`` cycles."""
    if objective == "edp":
        return energy_pj * cycles
    if objective == "energy":
        return energy_pj
    if objective == "latency":
        return cycles
    raise ValueError(f"objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")


def best_candidates(
    f: CandidateFeatures, aa: ArchArrays, objective: str = "edp"
) -> tuple[np.ndarray, np.ndarray]:
    """Per point of ``aa``: index of the best valid candidate (-1 when none fits) and its
    objective value (inf when none fits). Candidates × points are priced in passes of at most
    :data:`PAIRS_PER_PASS` pairs; no Python loop runs over candidates."""
    p = aa.points
    best = np.full(p, -1, dtype=np.int64)
    score = np.full(p, np.inf)
    # candidates that fit none of these points can never be chosen: leave them out (exact)
    cap = aa.capacity_bits.max(axis=0) * (1 + 1e-9)
    alive = np.flatnonzero(f.base_valid & (f.held_bits <= cap).all(axis=1))  # data alone
    if alive.size == 0:
        return best, score
    sub_f = f.take(alive)
    step = max(1, PAIRS_PER_PASS // alive.size)
    for lo in range(0, p, step):
        sl = slice(lo, min(p, lo + step))
        c = pair_cost(sub_f, points_of(aa, sl), grid=True)
        obj = objective_of(c.cycles, c.energy_pj, objective)
        obj = np.where(c.valid & np.isfinite(obj), obj, np.inf)
        i = np.argmin(obj, axis=0)
        v = obj[i, np.arange(obj.shape[1])]
        best[sl] = np.where(np.isfinite(v), alive[i], -1)
        score[sl] = v
    return best, score


def points_of(aa: ArchArrays, sl: slice | np.ndarray) -> ArchArrays:
    """The design points of ``aa`` at ``sl`` (same structure)."""
    import dataclasses

    return dataclasses.replace(
        aa,
        **{
            fld.name: getattr(aa, fld.name)[sl]
            for fld in dataclasses.fields(aa)
            if isinstance(getattr(aa, fld.name), np.ndarray)
        },
    )


def chosen_cost(f: CandidateFeatures, aa: ArchArrays, chosen: np.ndarray) -> PairCost:
    """Costs of candidate ``chosen[p]`` at point p (shape (P,)); ``chosen = -1`` gives NaN
    costs and ``valid = False``."""
    ok = chosen >= 0
    c = pair_cost(f.take(np.where(ok, chosen, 0)), aa, grid=False)
    nan = np.where(ok, 1.0, np.nan)
    return PairCost(
        cycles=c.cycles * nan,
        energy_pj=c.energy_pj * nan,
        components={k: v * nan for k, v in c.components.items()},
        valid=c.valid & ok,
    )
