"""Sparseloop's closed-form sparse model: density models, format sizes, gating/skipping, throttling.

Sparseloop (MICRO 2022) is analytical: from a per-tensor *density model* it derives, for every tile
a level moves, the probability that the tile is empty and its expected occupancy; from those, the
share of each access kind that is **actual** (happens), **gated** (happens at gated cost, still
takes its cycle) or **skipped** (does not happen), and the metadata a representation format adds.
This module holds those formulas as pure functions, plus :func:`sparse_level_counts`, which runs
them on top of the dense per-level counts of one mapping (Timeloop v0.3's counting conventions,
as the Sparseloop artifact's ``reference_stats.txt`` shows them; see :func:`dense_level_counts`).

Units: counts are scalar words (or metadata/payload words) **summed over all instances** of a
level unless a name says ``per_instance``; energies pJ; cycles are clock cycles.

Density models, for a tile of ``s`` values of a tensor of ``T`` values with density ``d``:

- ``dense``: P(empty) = 0 (for s >= 1).
- ``bernoulli``: every value non-zero independently: P(empty) = (1 − d)^s.
- ``hypergeometric`` (Sparseloop's ``hypergeometric``): exactly D = round(d·T) non-zeros placed
  uniformly: P(empty) = C(T − D, s) / C(T, s) = Π_{i<s} (T − D − i)/(T − i).
- ``nm`` (N:M along the pattern axis; Sparseloop's ``fixed-structured``): a tile spanning ``e``
  values along the axis inside one aligned M-block, and ``r`` such rows, is empty with
  P = [C(M − e, N) / C(M, N)]^r for e < M, and 0 when e >= M (every M-block holds N >= 1).
  This is exact for aligned tiles.

Skipping: a target access conditioned on data spaces C is skipped (or gated) with probability
``p = 1 − Π_{c∈C} (1 − P(c's slice for that access is empty))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from testy_model.model.nest import LoopNests, unit_nests
from testy_model.model.reuse import dense_counts
from testy_model.spec.problem_loader import (  # one reading, defined by the spec loader
    fixed_structured_pattern as fixed_structured_pattern,
)
from testy_model.spec.sparseloop import DataSpaceFormat, SparseOptimizations
from testy_model.spec.workload import Density, Problem

# --------------------------------------------------------------------------------------------
# Density models
# --------------------------------------------------------------------------------------------


def prob_empty_hypergeometric(total: int, nonzeros: int, size: np.ndarray | int) -> np.ndarray:
    """P(a tile of ``size`` values holds no non-zero) when ``nonzeros`` of ``total`` values are
    non-zero, placed uniformly at random (hypergeometric, drawing without replacement).

    Equation: P = C(T − D, s) / C(T, s) = exp(lnΓ(T−D+1) − lnΓ(T−D−s+1) − lnΓ(T+1) + lnΓ(T−s+1)),
    and 0 when s > T − D. Dimensionless.
    """
    s = np.asarray(size, dtype=float)
    t, dnz = float(total), float(nonzeros)
    out = np.zeros_like(s)
    ok = s <= t - dnz
    lg = np.vectorize(math.lgamma, otypes=[float])
    if np.any(ok):
        so = s[ok]
        out[ok] = np.exp(lg(t - dnz + 1) - lg(t - dnz - so + 1) - lg(t + 1) + lg(t - so + 1))
    return out


def prob_empty_nm(n: int, m: int, along: np.ndarray | int, rows: np.ndarray | int) -> np.ndarray:
    """P(a tile is empty) for an N:M tensor: ``rows`` independent M-blocks each contributing an
    aligned run of ``along`` values (along the pattern axis).

    Equation: P = [C(M − e, N) / C(M, N)]^rows for e < M; 0 for e >= M. Dimensionless.
    """
    e = np.minimum(np.asarray(along, dtype=int), m)
    r = np.asarray(rows, dtype=float)
    per = np.array([math.comb(m - k, n) / math.comb(m, n) for k in range(m + 1)])
    return per[e] ** r


def prob_empty(density: Density, size: float, along: float, total: int) -> float:
    """P(a tile of ``size`` values, ``along`` of them on the pattern axis per row, is empty)
    under ``density`` (see the module docstring for each model). ``total`` = tensor size."""
    if size <= 0:
        return 1.0
    kind = density.kind
    if kind == "dense" or density.value >= 1.0:
        return 0.0
    if density.value <= 0.0:
        return 1.0
    if kind == "nm" and density.pattern is not None:
        pat = density.pattern
        rows = size / max(along, 1.0)
        return float(prob_empty_nm(pat.n, pat.m, int(along), rows))
    if kind == "hypergeometric":
        return float(prob_empty_hypergeometric(total, round(density.value * total), int(size)))
    return float((1.0 - density.value) ** size)


def skip_probability(p_empty: Sequence[float]) -> float:
    """P(an access is skipped/gated) when conditioned on several data spaces whose slices are
    empty with the given probabilities (independent): ``1 − Π (1 − p_i)``."""
    return float(1.0 - np.prod(1.0 - np.asarray(p_empty, dtype=float))) if p_empty else 0.0


def conditional_prob_empty(p_sub: float, p_cond: float) -> float:
    """P(sub-tile empty | enclosing condition tile non-empty) = (P(sub) − P(cond)) / (1 − P(cond)),
    for a sub-tile inside the condition tile (the sub-tile is empty whenever the tile is)."""
    if p_cond >= 1.0:
        return 1.0
    return max(0.0, (p_sub - p_cond) / (1.0 - p_cond))


# --------------------------------------------------------------------------------------------
# Representation formats
# --------------------------------------------------------------------------------------------


def rank_word_bits(fmt: str, shape: int, tile: int) -> tuple[int, int]:
    """Default (metadata, payload) word bits of one rank when the file does not give them:
    CP and RLE ceil(log2 shape) metadata; B and UB 1 metadata bit; UOP ceil(log2(tile + 1))
    payload bits. Bits."""
    lg = max(1, math.ceil(math.log2(max(shape, 2))))
    if fmt in ("CP", "RLE"):
        return lg, 0
    if fmt in ("B", "UB"):
        return 1, 0
    return 0, max(1, math.ceil(math.log2(tile + 1)))


def fold_shapes(shapes: Sequence[int], ranks: int, order: str = "inner-to-outer") -> list[int]:
    """Assign loop factors (inner to outer) to ``ranks`` ranks: ``inner-to-outer`` keeps the
    inner loops one per rank and multiplies the surplus outer ones into the outermost rank;
    ``outer-to-inner`` folds the surplus inner loops into the innermost rank."""
    s = [int(x) for x in shapes]
    if len(s) <= ranks or ranks < 1:
        return s
    if order == "outer-to-inner":
        k = len(s) - ranks + 1
        return [int(np.prod(s[:k])), *s[k:]]
    return [*s[: ranks - 1], int(np.prod(s[ranks - 1 :]))]


@dataclass(frozen=True)
class RankOccupancy:
    """Metadata and payload words of one rank, per tile (expected), and their word widths."""

    format: str
    shape: int
    metadata_words: float
    payload_words: float
    metadata_bits: int
    payload_bits: int


def format_occupancy(
    fmt: DataSpaceFormat,
    shapes: Sequence[int],
    p_empty_of: AbcMapping[int, float] | None = None,
) -> list[RankOccupancy]:
    """Expected metadata/payload words per tile for a format whose ranks (inner to outer) have
    fiber shapes ``shapes``.

    With ``e_r = Π_{j<r} s_j`` values under one coordinate of rank r, ``f_r = Π_{j>r} s_j`` fibers
    of rank r, and q_r = 1 − P(e_r values empty):
        UOP: payload = f_r·(s_r + 1) offsets (0 for a rank of shape 1), metadata 0;
        CP, RLE: metadata = payload = f_r·s_r·q_r (one coordinate per non-empty element);
        B: metadata = f_r·s_r·(1 − P(fiber of e_r·s_r values empty)) (a bit per coordinate of
        each non-empty fiber); UB: metadata = f_r·s_r.
    ``p_empty_of`` maps a value count to P(that many values empty) (missing: 0). Words per tile.
    """
    pe = dict(p_empty_of or {})
    ranks = fmt.ranks_inner_to_outer
    out = []
    tile = int(np.prod(shapes)) if len(shapes) else 1
    for r, rank in enumerate(ranks):
        s = int(shapes[r]) if r < len(shapes) else 1
        e = int(np.prod(shapes[:r])) if r else 1
        f = int(np.prod(shapes[r + 1 :])) if r + 1 < len(shapes) else 1
        q = 1.0 - pe.get(e, 0.0)
        md_d, pl_d = rank_word_bits(rank.format, s, tile)
        md_b = rank.metadata_word_bits if rank.metadata_word_bits is not None else md_d
        pl_b = rank.payload_word_bits if rank.payload_word_bits is not None else pl_d
        if rank.format == "UOP":
            md, pl = 0.0, float(f * (s + 1)) if s > 1 else 0.0
        elif rank.format in ("CP", "RLE"):
            md = pl = f * s * q
        elif rank.format == "B":
            md, pl = f * s * (1.0 - pe.get(e * s, 0.0)), 0.0
        else:  # UB
            md, pl = float(f * s), 0.0
        out.append(RankOccupancy(rank.format, s, md, pl, md_b, pl_b))
    return out


# --------------------------------------------------------------------------------------------
# Loop nests and dense counts (Timeloop v0.3 / Sparseloop artifact conventions)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loop:
    """One loop of a mapping: at storage ``level`` (0 = outermost), temporal or spatial."""

    level: int
    spatial: bool
    dim: str
    factor: int


@dataclass(frozen=True)
class LevelView:
    """What the sparse model needs of one storage level.

    Attributes:
        name: level name; keep: tensors it holds; stream: tensors that pass through it when
            bypassed (the artifact's ``stream:``; counted as reads = fills).
        read_bw / write_bw: words per cycle per instance (``None`` = unlimited).
        datawidth: bits per data word.
    """

    name: str
    keep: frozenset[str]
    stream: frozenset[str] = frozenset()
    read_bw: float | None = None
    write_bw: float | None = None
    datawidth: int = 8


@dataclass
class TensorCounts:
    """Totals over all instances of a level for one tensor (words)."""

    tile: int = 0
    reads: float = 0.0
    fills: float = 0.0
    updates: float = 0.0
    distinct: float = 0.0
    held: bool = False


@dataclass
class DenseLevelCounts:
    """Dense (algorithmic) counts of a mapping: ``counts[level][tensor]`` and the compute."""

    counts: list[dict[str, TensorCounts]]
    mapped_instances: list[int]
    compute_instances: int
    macs: int
    loops: tuple[Loop, ...]


def _extent(loops: Sequence[Loop], dims: Sequence[str], pred) -> dict[str, int]:
    ext = dict.fromkeys(dims, 1)
    for lp in loops:
        if pred(lp):
            ext[lp.dim] *= lp.factor
    return ext


def loops_to_nests(
    problem: Problem, levels: Sequence[LevelView], loops: Sequence[Loop]
) -> tuple[LoopNests, np.ndarray]:
    """The loop list (outer to inner) and level views as B = 1 :class:`LoopNests` and an
    (L, T) ``stream`` mask for :func:`~testy_model.model.reuse.dense_counts`.

    A level's temporal loops keep their order (the first listed is the outermost); repeated
    loops of one dimension at one level multiply into one factor at the innermost position.
    """
    dims = problem.dimensions
    tensors = problem.tensor_names
    n_l, n_d = len(levels), len(dims)
    temporal, spatial, order = unit_nests(n_l, n_d)
    for li in range(n_l):
        inner_first: list[int] = []
        for lp in reversed([x for x in loops if x.level == li]):
            di = dims.index(lp.dim)
            (spatial if lp.spatial else temporal)[0, li, di] *= lp.factor
            if not lp.spatial and di not in inner_first:
                inner_first.append(di)
        rest = [d for d in range(n_d) if d not in inner_first]
        for pos, di in enumerate(inner_first + rest):
            order[0, li, di] = pos
    keep = np.array([[[t in lv.keep for t in tensors] for lv in levels]], dtype=bool)
    stream = np.array([[t in lv.stream for t in tensors] for lv in levels], dtype=bool)
    nests = LoopNests(temporal=temporal, spatial=spatial, order=order, keep=keep)
    return nests, stream


def dense_level_counts(
    problem: Problem,
    levels: Sequence[LevelView],
    loops: Sequence[Loop],
    *,
    output_first_fill: bool = True,
) -> DenseLevelCounts:
    """Algorithmic per-level counts (totals over instances, words) as the Sparseloop artifact's
    Timeloop counts them: the model core's :func:`~testy_model.model.reuse.dense_counts` with
    the artifact's two conventions switched on (``stream`` levels counted, first fills of
    output tiles counted), converted from per-instance counts to totals:
    ``count_total = count_per_instance × instances_l``. Loops are given outer to inner; a
    level's spatial loops sit below its temporal loops.

    ``output_first_fill=False`` switches the second convention off (Timeloop v0.4 / newer
    Sparseloop counting: only fills that carry partial sums back).

    A tensor is listed at a level when the level keeps it or streams it; ``held`` tells which.
    ``distinct`` is ``D_l × instances_l`` (distinct words over all instances).
    """
    nests, stream = loops_to_nests(problem, levels, loops)
    dc = dense_counts(problem, nests, stream=stream, output_first_fill=output_first_fill)
    inst = dc.instances[0]
    dist = dc.distinct if dc.distinct is not None else np.zeros_like(dc.tile)
    counts: list[dict[str, TensorCounts]] = []
    for li, lv in enumerate(levels):
        row: dict[str, TensorCounts] = {}
        for ti, t in enumerate(problem.tensor_names):
            if li > 0 and t not in lv.keep and t not in lv.stream:
                continue
            row[t] = TensorCounts(
                tile=round(float(dc.tile[0, li, ti])),
                reads=float(dc.reads[0, li, ti] * inst[li]),
                fills=float(dc.fills[0, li, ti] * inst[li]),
                updates=float(dc.updates[0, li, ti] * inst[li]),
                distinct=float(dist[0, li, ti] * inst[li]),
                held=li == 0 or t in lv.keep,
            )
        counts.append(row)
    return DenseLevelCounts(
        counts=counts,
        mapped_instances=[round(float(x)) for x in inst],
        compute_instances=round(float(dc.mac_units[0])),
        macs=problem.macs,
        loops=tuple(loops),
    )


# --------------------------------------------------------------------------------------------
# Sparse post-processing
# --------------------------------------------------------------------------------------------


@dataclass
class AccessSplit:
    """Actual / gated / skipped words of one access kind (totals over instances)."""

    algorithmic: float = 0.0
    actual: float = 0.0
    gated: float = 0.0
    skipped: float = 0.0


@dataclass
class SparseTensorLevel:
    """Sparse counts of one tensor at one level (totals over utilized instances).

    ``metadata_reads``/``metadata_fills`` are metadata-bit totals and payload-bit totals
    (``*_bits``) so energy is bits × pJ/bit; ``*_words`` keep the per-rank word counts.
    """

    reads: AccessSplit = field(default_factory=AccessSplit)
    fills: AccessSplit = field(default_factory=AccessSplit)
    updates: AccessSplit = field(default_factory=AccessSplit)
    metadata_read_words: list[float] = field(default_factory=list)
    metadata_fill_words: list[float] = field(default_factory=list)
    payload_read_words: list[float] = field(default_factory=list)
    payload_fill_words: list[float] = field(default_factory=list)
    metadata_read_bits: float = 0.0
    metadata_fill_bits: float = 0.0
    tile: int = 0
    format: str = "none"


@dataclass
class SparseCounts:
    """Result of :func:`sparse_level_counts`."""

    levels: list[dict[str, SparseTensorLevel]]
    utilized_instances: list[float]
    compute: AccessSplit
    compute_utilized: float
    compute_cycles: float


def split_access(
    alg: float, used: float, density: float, p_skip: float, p_gate: float
) -> AccessSplit:
    """Split ``alg`` algorithmic words (total) into actual / gated / skipped.

    Equations: base = alg·used (the fraction ``used`` of instances that get work at all);
    moved = base·density (density < 1 only for compressed formats);
    skipped = moved·p_skip; gated = moved·(1 − p_skip)·p_gate;
    actual = moved·(1 − p_skip)·(1 − p_gate). Words.
    """
    base = alg * used
    moved = base * density
    return AccessSplit(
        base, moved * (1 - p_skip) * (1 - p_gate), moved * (1 - p_skip) * p_gate, moved * p_skip
    )


def _slice_extents(
    loops: Sequence[Loop], dims: Sequence[str], holder: int, exclude: frozenset[str]
) -> dict[str, int]:
    """Extents of the loops below holder ``holder``'s temporal loops (its spatial loops and all
    inner levels), over dimensions not in ``exclude`` (1 elsewhere)."""
    ext = dict.fromkeys(dims, 1)
    for lp in loops:
        if (lp.level > holder or (lp.level == holder and lp.spatial)) and lp.dim not in exclude:
            ext[lp.dim] *= lp.factor
    return ext


def _pattern_axis(problem: Problem, tensor: str) -> str | None:
    red = [
        d
        for d in problem.dimensions
        if d in problem.relevant(tensor) and d in problem.reduction_dims()
    ]
    return red[0] if red else None


def tile_prob_empty(problem: Problem, tensor: str, ext: AbcMapping[str, int]) -> float:
    """P(the tile of ``tensor`` spanning extents ``ext`` is empty) under the problem's density."""
    size = problem.tile_size(tensor, dict(ext))
    axis = _pattern_axis(problem, tensor)
    along = ext.get(axis, 1) if axis else 1
    return prob_empty(problem.density(tensor), size, along, problem.full_size(tensor))


def sparse_level_counts(
    problem: Problem,
    levels: Sequence[LevelView],
    dense: DenseLevelCounts,
    opts: SparseOptimizations,
    compute_name: str = "MAC",
) -> SparseCounts:
    """Split every dense count into actual / gated / skipped and add format metadata.

    Rules (d_t = density of t; P(·) from :func:`tile_prob_empty`; counts are totals):

    1. ``skipping-spatial`` at level s conditioned on C: a child instance below s whose C-tile
       (loops below s's spatial loops) is empty gets no work, so every level below s and the
       MACs keep a fraction ``u_s = Π_{c∈C} (1 − P(c child-tile empty))`` of their counts and
       instances (the rest vanish: neither gated nor skipped, as Sparseloop reports it). For a
       condition tensor c below s, tiles are known non-empty: densities become d_c/(1 − P_c).
       Each target T's deliveries across s (at T's nearest holder h at or above s) are skipped
       with probability P(c-slice of one delivery empty), the slice spanning h's spatial loops
       and everything below over dimensions irrelevant to T.
    2. ``skipping``/``gating`` at l of target T conditioned on C (or ``position-skipping``: on
       T itself): reads (and, for the output, updates) of T at l are skipped/gated with
       p = 1 − Π_c (1 − P(c-slice empty)), the slice as in rule 1 with h = l. A tensor that has
       a compressed format at l is not skipped again on its own zeros.
    3. A representation format for t at l: data words move compressed, actual = algorithmic ×
       d_t (conditional density below spatial skipping); metadata/payload words per tile from
       :func:`format_occupancy`, times (accesses / tile).
    4. Compute: MACs × u (all spatial skipping above) are performed or gated/skipped: skipped
       with p = 1 − Π_c d_c over conditions of skipping actions on the operands at their
       innermost holder (and ``compute-optimization: skipping``: all operands); gated likewise.
       Compute cycles = (actual + gated MACs) / (MAC units × u).
    """
    dims = problem.dimensions
    nl = len(levels)
    loops = dense.loops
    names = [lv.name for lv in levels]
    inputs = problem.inputs
    out = problem.output
    # effective (conditional) densities and instance fractions per level
    u = [1.0] * (nl + 1)  # index nl = compute
    cond_p: list[dict[str, float]] = [{} for _ in range(nl + 1)]  # P(cond tile empty) conditioned
    spatial_targets: list[tuple[int, str, tuple[str, ...]]] = []
    for s, lv in enumerate(levels):
        tgt = opts.target(lv.name)
        conds: set[str] = set()
        for act in tgt.actions:
            if act.type == "skipping-spatial":
                c = act.condition_on or (act.target,)
                conds.update(c)
                spatial_targets.append((s, act.target, tuple(c)))
        if not conds:
            continue
        ext = _extent(loops, dims, lambda lp, s=s: lp.level > s)
        frac = 1.0
        pc = {}
        for c in sorted(conds):
            p = tile_prob_empty(problem, c, ext)
            pc[c] = p
            frac *= 1.0 - p
        for below in range(s + 1, nl + 1):
            u[below] *= frac
            for c, p in pc.items():
                cond_p[below][c] = max(cond_p[below].get(c, 0.0), p)

    def density_at(t: str, li: int) -> float:
        d = problem.density(t).value
        p = cond_p[li].get(t, 0.0)
        return d / (1.0 - p) if p < 1.0 else 0.0

    def p_empty_at(t: str, li: int, ext: AbcMapping[str, int]) -> float:
        p = tile_prob_empty(problem, t, ext)
        pc = cond_p[li].get(t)
        return conditional_prob_empty(p, pc) if pc is not None else p

    result: list[dict[str, SparseTensorLevel]] = [{} for _ in range(nl)]
    skip_reads: dict[tuple[int, str], float] = {}
    gate_reads: dict[tuple[int, str], float] = {}

    def holder_at_or_above(t: str, s: int) -> int | None:
        for li in range(s, -1, -1):
            if t in dense.counts[li]:
                return li
        return None

    # rule 1, deliveries across a spatially skipping level
    for s, target, conds in spatial_targets:
        h = holder_at_or_above(target, s)
        if h is None:
            continue
        ext = _slice_extents(loops, dims, h, problem.relevant(target))
        p = skip_probability([p_empty_at(c, h, ext) for c in conds if c != target])
        key = (h, target)
        skip_reads[key] = skip_probability([skip_reads.get(key, 0.0), p])
    # rule 2
    for li, lv in enumerate(levels):
        tgt = opts.target(lv.name)
        for act in tgt.actions:
            if act.type not in ("skipping", "gating", "position-skipping"):
                continue
            h = li if act.target in dense.counts[li] else holder_at_or_above(act.target, li)
            if h is None:
                continue
            conds = act.condition_on or (act.target,)
            ext = _slice_extents(loops, dims, h, problem.relevant(act.target))
            ps = []
            for c in conds:
                if c == act.target and opts.target(levels[h].name).format_of(c) is not None:
                    continue
                ext_c = ext if c != act.target else dict.fromkeys(dims, 1)
                ps.append(p_empty_at(c, h, ext_c))
            p = skip_probability(ps)
            book = gate_reads if act.type == "gating" else skip_reads
            book[(h, act.target)] = skip_probability([book.get((h, act.target), 0.0), p])

    # per level per tensor
    for li, lv in enumerate(levels):
        tgt = opts.target(lv.name)
        for t, tc in dense.counts[li].items():
            st = SparseTensorLevel(tile=tc.tile)
            fmt = tgt.format_of(t)
            dens = density_at(t, li) if fmt is not None else 1.0
            ps = skip_reads.get((li, t), 0.0)
            pg = gate_reads.get((li, t), 0.0)

            st.reads = split_access(tc.reads, u[li], dens, ps, pg)
            st.fills = split_access(tc.fills, u[li], dens, 0.0, 0.0)
            st.updates = split_access(
                tc.updates, u[li], dens, ps if t == out else 0.0, pg if t == out else 0.0
            )
            if fmt is not None:
                st.format = " ".join(r.format.lower() for r in fmt.ranks)
                rel = problem.relevant(t)
                shapes = [
                    lp.factor
                    for lp in reversed(loops)
                    if lp.level >= li and lp.dim in rel and lp.factor > 1
                ]
                shapes = fold_shapes(shapes, len(fmt.ranks), fmt.rank_application_order)
                counts_needed = {
                    int(np.prod(shapes[:r])) if r else 1 for r in range(len(shapes) + 1)
                }
                axis = _pattern_axis(problem, t)
                pe: dict[int, float] = {}
                for cnt in counts_needed:
                    # sub-tiles are the innermost loops: along-axis extent from those loops
                    along = 1
                    acc = 1
                    for lp in reversed(loops):
                        if lp.level >= li and lp.dim in rel and lp.factor > 1 and acc < cnt:
                            acc *= lp.factor
                            if lp.dim == axis:
                                along *= lp.factor
                    p = prob_empty(problem.density(t), cnt, along, problem.full_size(t))
                    pc = cond_p[li].get(t)
                    pe[cnt] = conditional_prob_empty(p, pc) if pc is not None else p
                occ = format_occupancy(fmt, shapes, pe)
                tile = max(tc.tile, 1)
                r_acc = st.reads.algorithmic / tile * (1 - ps)
                f_acc = st.fills.algorithmic / tile
                st.metadata_read_words = [o.metadata_words * r_acc for o in occ]
                st.metadata_fill_words = [o.metadata_words * f_acc for o in occ]
                st.payload_read_words = [o.payload_words * r_acc for o in occ]
                st.payload_fill_words = [o.payload_words * f_acc for o in occ]
                st.metadata_read_bits = (
                    sum(
                        o.metadata_words * o.metadata_bits + o.payload_words * o.payload_bits
                        for o in occ
                    )
                    * r_acc
                )
                st.metadata_fill_bits = (
                    sum(
                        o.metadata_words * o.metadata_bits + o.payload_words * o.payload_bits
                        for o in occ
                    )
                    * f_acc
                )
            result[li][t] = st

    # compute
    skip_c: set[str] = set()
    gate_c: set[str] = set()
    for t in inputs:
        holders = [li for li in range(nl) if t in dense.counts[li]]
        if not holders:
            continue
        for li in range(holders[-1], nl):  # the innermost holder and the levels below it
            for act in opts.target(names[li]).actions:
                if act.target != t or act.type == "skipping-spatial":
                    continue
                conds = act.condition_on or (t,)
                (gate_c if act.type == "gating" else skip_c).update(conds)
    for co in opts.target(compute_name).compute:
        (gate_c if co.type == "gating" else skip_c).update(inputs)
    one = dict.fromkeys(dims, 1)
    p_skip = skip_probability([p_empty_at(c, nl, one) for c in sorted(skip_c)])
    p_gate = skip_probability([p_empty_at(c, nl, one) for c in sorted(gate_c - skip_c)])
    base = dense.macs * u[nl]
    comp = AccessSplit(
        algorithmic=float(dense.macs),
        actual=base * (1 - p_skip) * (1 - p_gate),
        gated=base * (1 - p_skip) * p_gate,
        skipped=base * p_skip,
    )
    utilized = dense.compute_instances * u[nl]
    # compute cycles: effective MACs per utilized unit; gated MACs take no compute cycle
    # (Sparseloop's 04.2.1 reference: mac cycles = actual computes / instances), their
    # operand reads still cost bandwidth at their levels (sparseloop_study.evaluate_loaded)
    cycles = comp.actual / utilized if utilized > 0 else 0.0
    util_inst = [dense.mapped_instances[li] * u[li] for li in range(nl)]
    return SparseCounts(result, util_inst, comp, utilized, cycles)


def level_cycles(
    reads_words: float, write_words: float, read_bw: float | None, write_bw: float | None
) -> float:
    """Cycles a level instance needs to move its words: max(reads/read_bw, writes/write_bw)
    (words, words per cycle; unlimited bandwidth -> 0)."""
    c = 0.0
    if read_bw:
        c = max(c, reads_words / read_bw)
    if write_bw:
        c = max(c, write_words / write_bw)
    return c


def throttle(compute_cycles: float, level_cycles_: float) -> float:
    """Sparseloop's per-level slowdown: min(1, bandwidth / demanded words per compute cycle)
    = min(1, compute_cycles / level_cycles). Dimensionless."""
    if level_cycles_ <= 0:
        return 1.0
    return min(1.0, compute_cycles / level_cycles_)
