"""The sparse stage: formats, occupancy, gating/skipping splits and compute (Sparseloop).

Runs on the dense per-instance counts of :mod:`~testy_model.model.reuse` and reproduces
``sparse::PerformSparseProcessing`` of Timeloop v3.0.3 (``src/sparse-analysis/``), per B row:

1. **Occupancy** (``CalculateExpectedOccupancy``): for every tensor t at every holder l, the
   occupancy distribution of its tile (density model), the expected density ``d_tl`` and data
   occupancy; when the parent holder keeps metadata and a tile can be empty, empty tiles are
   never sent: the level's utilized instances scale by ``1 − P(empty)`` and the distribution is
   conditioned on a non-empty tile. Metadata units per rank are the expectation over the
   occupancy of :func:`~testy_model.model.formats.metadata_units`.
2. **Metadata accesses** (``CalculateExpectedMetaDataAccesses``): per rank,
   ``⌈units · (reads or fills or updates) / tile⌉`` metadata and payload units.
3. **Gating / skipping** probabilities (:mod:`~testy_model.model.saf`) and spatial skipping.
4. **Combination** (``CombineStorageOptimizationImpact``): a level keeping metadata moves
   ``n − ⌊n·(1 − d)⌋`` of its dense reads, fills and (outputs) updates; a gating/skipping of t
   with probability p at level l removes ``⌊x·p⌋`` of every count x of t at the levels below l
   down to the next level with its own optimization of t (which then splits with
   ``p' = 1 − (1 − p_own)/(1 − p)``); at the optimized level the reads split into
   ``⌊reads·p⌋`` (⌈·⌉ for outputs) gated/skipped and the rest actual, updates likewise with ⌊·⌋.
   An input optimized with no optimization below removes ``⌊computes·p⌋`` computes.
5. **Compute** (``CalculateFineGrainedComputeAccesses2Operand``): each operand exists-non-zero
   with its density (conditioned on the other's non-empty probability when both are optimized),
   exists-zero (uncompressed) or not-exists (compressed); pairs with a zero are gated under
   ``compute-optimization: gating``, pairs missing an operand skipped under ``skipping``.

Counts are words per instance; metadata in units of the format's words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from testy_model.model import energy as en
from testy_model.model.density import DensityModel, distinct_rows
from testy_model.model.formats import FormatLayout, RankSpec, assign_ranks, metadata_units
from testy_model.model.loops import LoopTable
from testy_model.model.reuse import DenseCounts, projection_matrix, tile_words
from testy_model.model.saf import SafTarget, action_probability, spatial_skipping
from testy_model.model.sparse_combine import (
    KINDS,
    SafState,
    combine,
    compute_split,
    position_skipped,
    position_utilization,
)
from testy_model.spec.sparseloop import ActionOptimization, SparseOptimizations
from testy_model.spec.workload import Problem


@dataclass(frozen=True)
class LevelParams:
    """Per-level numbers the sparse stage needs, (L,) each: words per vector (block), default
    metadata word bits, metadata storage width (bits), read energy per vector (pJ, to choose
    between action options), whether the architecture fans out below the level."""

    block: np.ndarray
    md_word_bits: np.ndarray
    md_width: np.ndarray
    read_energy: np.ndarray
    arch_spatial: np.ndarray


@dataclass
class SparseCounts:
    """Result of :func:`sparse_counts` (per instance; module docstring).

    ``counts[kind][split]`` (B, L, T) words; ``fmt[kind][split]`` (B, L, T, R, 2) metadata and
    payload units per rank (R = most ranks of any format); ``fmt_bits[kind][split]`` (B, L, T)
    bits; ``density`` (B, L, T) expected tile density; ``occupancy`` (B, L, T) expected data
    words of a tile and ``md_bits`` its expected metadata bits; ``utilized`` (B, L, T) average
    utilized instances; ``compute[split]`` (B,) computes over all units; ``ok`` (B,) formats
    have enough ranks; ``ratio`` (B, L, T) vector-access correction of compressed tiles;
    ``capacity`` (B, L, T) words a tile reserves (its largest possible occupancy when it carries
    metadata, else its size); ``mac_units`` (B,) average utilized MAC units; ``n_ranks`` (L, T)
    ranks of each level's format of each tensor (0: none).
    """

    counts: dict[str, dict[str, np.ndarray]]
    fmt: dict[str, dict[str, np.ndarray]]
    fmt_bits: dict[str, dict[str, np.ndarray]]
    density: np.ndarray
    occupancy: np.ndarray
    md_bits: np.ndarray
    utilized: np.ndarray
    compute: dict[str, np.ndarray]
    ok: np.ndarray
    has_md: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    compressed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    ratio: np.ndarray = field(default_factory=lambda: np.ones(1))
    capacity: np.ndarray = field(default_factory=lambda: np.zeros(1))
    mac_units: np.ndarray = field(default_factory=lambda: np.ones(1))
    max_instances: np.ndarray = field(default_factory=lambda: np.ones(1))
    mac_need: np.ndarray | None = None
    need_xy: np.ndarray | None = None
    n_ranks: np.ndarray | None = None
    position_util: np.ndarray = field(default_factory=lambda: np.ones(1))


def _holder_above(held: np.ndarray) -> np.ndarray:
    """(B, L) index of the next holder above each level (−1: none)."""
    n_b, n_l = held.shape
    out = np.full((n_b, n_l), -1, dtype=np.int64)
    last = np.full(n_b, -1, dtype=np.int64)
    for lvl in range(n_l):
        out[:, lvl] = last
        last = np.where(held[:, lvl], lvl, last)
    return out


def _layouts(
    problem: Problem,
    t: str,
    ti: int,
    ranks_of: dict[int, tuple[RankSpec, ...]],
    order_of: dict[int, bool],
    table: LoopTable,
    dense: DenseCounts,
    ext: np.ndarray,
) -> dict[int, FormatLayout]:
    """Fiber-tree layouts of ``t`` at every level (``formats`` module steps 1–3), inner to
    outer; a level without a format is one rank flattening all its loops."""
    assert dense.held is not None and dense.child is not None
    n_b, n_l = dense.tile.shape[:2]
    proj = projection_matrix(problem, t)
    rel = np.asarray(proj.any(axis=0))
    sizes = tile_words(proj, table.mold)[0]  # (B, K)
    flat = (RankSpec("UOP", 0, 0, (tuple(range(len(problem.dimensions))),)),)
    out: dict[int, FormatLayout] = {}
    for lvl in range(n_l - 1, -1, -1):
        ranks = ranks_of.get(lvl, flat)
        i2o = order_of.get(lvl, False) if lvl in ranks_of else False
        n_r = len(ranks)
        fiber = np.ones((n_b, n_r))
        sub = np.ones((n_b, n_r + 1))
        ok = np.ones(n_b, bool)
        first_ok = np.ones(n_b, bool)
        compressed = lvl in ranks_of and any(r.format in ("CP", "B", "RLE") for r in ranks)
        for b in range(n_b):
            if not dense.held[b, lvl, ti]:
                continue
            c = int(dense.child[b, lvl, ti])
            slots = [
                k
                for k in range(table.dim.shape[1])
                if lvl <= table.level[k] < c and rel[table.dim[b, k]]
            ]
            pre = compressed and c < n_l and dense.tile[b, c, ti] > 1 and c in out
            first = len(out[c].ranks) if pre else 0
            dim_size = np.ones(len(rel)) if pre or c >= n_l else ext[b, c].copy()
            key = []
            for k in slots:
                d = int(table.dim[b, k])
                key.append((d, float(table.bound[b, k] * dim_size[d])))
                dim_size[d] = 1.0
            if first > n_r:
                first_ok[b] = False
                continue
            members, anchors, good = assign_ranks(tuple(key), ranks, i2o, first)
            ok[b] = good
            if pre:
                fiber[b, :first] = out[c].fiber[b, :first]
                sub[b, : first + 1] = out[c].subtile[b, : first + 1]
            for r, (mem, anc) in enumerate(zip(members, anchors, strict=True), start=first):
                box = np.ones(len(rel))
                for j in mem:
                    box[key[j][0]] *= key[j][1]
                fiber[b, r] = tile_words(proj, box)[0]
                if anc >= 0:
                    sub[b, r + 1] = sizes[b, slots[anc]]
                elif anc == -1 and slots:
                    sub[b, r + 1] = sizes[b, slots[0]]
        top = 0 if i2o else n_r - 1
        empty = (fiber == 1) & (np.arange(n_r) != top)
        ok &= first_ok
        out[lvl] = FormatLayout(ranks, fiber, sub, empty, ok, i2o)
    return out


def _occupancy(
    model: DensityModel,
    tile: np.ndarray,
    parent_md: np.ndarray,
    layout: FormatLayout | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(expected density, expected occupancy, replication factor scale, expected metadata
    units (B, R), payload units (B, R)) of tiles of ``tile`` (B,) values (module step 1).

    Each row depends on its own tile, parent flag and layout only (a wider support of the batch
    pads a row with zero-probability occupancies, which add 0 to its sums), so rows repeated
    across the B mappings are computed once."""
    rows = [tile, parent_md]
    if layout is not None:
        rows += [layout.fiber, layout.subtile, layout.empty]
    key = np.concatenate([np.asarray(x, np.float64).reshape(len(tile), -1) for x in rows], 1)
    first, inv = distinct_rows(key)
    if len(first) == len(tile):
        return _occupancy_rows(model, tile, parent_md, layout)
    sub = None
    if layout is not None:
        sub = FormatLayout(
            layout.ranks,
            layout.fiber[first],
            layout.subtile[first],
            layout.empty[first],
            layout.ok[first],
            layout.inner_to_outer,
        )
    dens, exp_occ, scale, md, pl = _occupancy_rows(model, tile[first], parent_md[first], sub)
    return dens[inv], exp_occ[inv], scale[inv], md[inv], pl[inv]


def _occupancy_rows(
    model: DensityModel,
    tile: np.ndarray,
    parent_md: np.ndarray,
    layout: FormatLayout | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_occupancy` of every row."""
    occ, p = model.support(np.maximum(tile, 1.0))
    p0 = np.where(occ == 0, p, 0.0).sum(axis=-1)
    cond = parent_md & (p0 > 0) & (p0 < 1)
    scale = np.where(cond, 1.0 - p0, 1.0)
    p = np.where(
        cond[:, None], np.where(occ == 0, 0.0, p / np.where(cond, 1 - p0, 1.0)[:, None]), p
    )
    # Timeloop accumulates p·k from the smallest occupancy up, one term at a time
    exp_occ = np.cumsum(p * occ, axis=-1)[..., -1]
    if model.kind == "nm":
        # this project's model: no float excess over a full tile (Timeloop's own models keep
        # their noise, which its floors then see)
        exp_occ = np.minimum(exp_occ, np.maximum(tile, 1.0))
    dens = exp_occ / np.maximum(tile, 1.0)
    if layout is None:
        z = np.zeros((tile.shape[0], 0))
        return dens, exp_occ, scale, z, z
    md, pl = metadata_units(layout, model, tile, occ)
    return (
        dens,
        exp_occ,
        scale,
        np.cumsum(p[..., None] * md, axis=1)[:, -1],
        np.cumsum(p[..., None] * pl, axis=1)[:, -1],
    )


def sparse_counts(
    problem: Problem,
    dense: DenseCounts,
    table: LoopTable,
    ext: np.ndarray,
    level_names: tuple[str, ...],
    compute_name: str,
    opts: SparseOptimizations,
    models: dict[str, DensityModel],
    params: LevelParams,
    inst_xy: np.ndarray | None = None,
) -> SparseCounts:
    """The sparse stage of B mappings (module docstring). ``inst_xy`` (B, L+1, 2): X/Y
    instances of every level and the compute (spatial skipping)."""
    assert dense.held is not None and dense.child is not None
    tensors = problem.tensor_names
    n_b, n_l, n_t = dense.reads.shape
    out_idx = tensors.index(problem.output)
    held = dense.held
    has_md = np.zeros((n_l, n_t), bool)
    comp = np.zeros((n_l, n_t), bool)
    ranks_of: list[dict[int, tuple[RankSpec, ...]]] = [{} for _ in tensors]
    order_of: list[dict[int, bool]] = [{} for _ in tensors]
    from testy_model.model.formats import rank_specs

    for li, name in enumerate(level_names):
        for f in opts.target(name).formats:
            if f.name not in tensors:
                continue
            ti = tensors.index(f.name)
            rs = rank_specs(
                f, problem.dimensions, int(params.md_word_bits[li]), int(params.md_width[li])
            )
            ranks_of[ti][li] = rs
            order_of[ti][li] = f.rank_application_order == "inner-to-outer"
            has_md[li, ti] = True
            comp[li, ti] = any(r.format in ("CP", "B", "RLE") for r in rs)
    r_max = max([1] + [len(r) for d in ranks_of for r in d.values()])
    shape = (n_b, n_l, n_t)
    density = np.ones(shape)
    occupancy = dense.tile * held
    md_bits = np.zeros(shape)
    util = np.broadcast_to(dense.instances[:, :, None], shape).copy()
    fmt = {k: np.zeros((*shape, r_max, 2)) for k in KINDS}
    ok = np.ones(n_b, bool)
    ratio = np.ones(shape)
    capacity = dense.tile * held
    parent = np.stack([_holder_above(held[:, :, ti]) for ti in range(n_t)], axis=2)
    for ti, t in enumerate(tensors):
        lays = _layouts(problem, t, ti, ranks_of[ti], order_of[ti], table, dense, ext)
        for li in range(n_l):
            h = held[:, li, ti]
            if not h.any():
                continue
            lay = lays[li] if has_md[li, ti] else None
            if lay is not None:
                ok &= lay.ok | ~h
            par = parent[:, li, ti]
            parent_md = np.where(par >= 0, has_md[np.maximum(par, 0), ti], False)
            tile = dense.tile[:, li, ti]
            d, o, sc, md_u, pl_u = _occupancy(models[t], tile, parent_md & h, lay)
            density[:, li, ti] = np.where(h, d, 1.0)
            occupancy[:, li, ti] = np.where(h, np.where(comp[li, ti], o, tile), 0.0)
            util[:, li, ti] *= np.where(h, sc, 1.0)
            if lay is None:
                continue
            occ, prob = models[t].support(np.maximum(tile, 1.0))
            top = np.where(prob > 0, occ, 0.0).max(axis=-1)
            capacity[:, li, ti] = np.where(h, top, 0.0)
            if comp[li, ti]:
                blk = np.full(n_b, params.block[li])
                r = en.compressed_vector_ratio(tile, blk, d, occ, prob)
                ratio[:, li, ti] = np.where(h, r, 1.0)
            rs = lay.ranks
            bits = (md_u * [r.md_bits for r in rs] + pl_u * [r.pl_bits for r in rs]).sum(axis=1)
            md_bits[:, li, ti] = np.where(h, np.ceil(bits - 1e-9), 0.0)
            for kind in KINDS:
                per_tile = getattr(dense, kind)[:, li, ti] / np.maximum(tile, 1.0)
                # Timeloop's own rounding: ⌈units · ratio⌉ with no slack (its float noise kept)
                fmt[kind][:, li, ti, : len(rs), 0] = np.ceil(md_u * per_tile[:, None])
                fmt[kind][:, li, ti, : len(rs), 1] = np.ceil(pl_u * per_tile[:, None])
    saf = _saf_probabilities(
        problem, dense, table, level_names, opts, models, params, occupancy, parent
    )
    mac_units = dense.mac_units.astype(np.float64)
    need = np.broadcast_to(dense.instances[:, :, None], shape).copy()
    mac_need = dense.mac_units.astype(np.float64)
    need_xy = None if inst_xy is None else np.repeat(inst_xy[:, :, None, :], n_t, axis=2)
    spatial_acts: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
    for li, name in enumerate(level_names):
        for a in opts.target(name).actions:
            if a.type == "skipping-spatial" and a.target in tensors:
                spatial_acts.setdefault(li, []).append((a.target, a.condition_on or (a.target,)))
    if spatial_acts:
        xy = inst_xy if inst_xy is not None else np.ones((n_b, n_l + 1, 2))
        ss = spatial_skipping(problem, table, held, has_md, models, spatial_acts, xy)
        util = dense.instances[:, :, None] * ss.ratio[:, :n_l, :]
        mac_units = (dense.mac_units[:, None] * ss.ratio[:, n_l, :]).max(axis=1)
        saf.spatial = ss.mask
        saf.p_spatial = ss.p
        need = ss.max_instances[:, :n_l, :]
        mac_need = ss.max_instances[:, n_l, :].max(axis=1)
        need_xy = ss.max_xy
    n_ranks = np.zeros((n_l, n_t), dtype=np.int64)
    for ti in range(n_t):
        for li, rs in ranks_of[ti].items():
            n_ranks[li, ti] = len(rs)
    counts, fmt_s, left = combine(problem, dense, density, has_md, fmt, saf, out_idx, n_ranks)
    pos_skip = position_skipped(problem, level_names, opts)
    compute = compute_split(
        problem, dense, density, has_md, left, opts, compute_name, models, pos_skip
    )
    pos_util = position_utilization(problem, dense, table, models, pos_skip)
    fmt_bits = _format_bits(fmt_s, ranks_of, n_l)
    return SparseCounts(
        counts,
        fmt_s,
        fmt_bits,
        density,
        occupancy,
        md_bits,
        util,
        compute,
        ok,
        has_md,
        comp,
        ratio=ratio,
        capacity=capacity,
        mac_units=mac_units,
        max_instances=need,
        position_util=pos_util,
        mac_need=mac_need,
        need_xy=need_xy,
        n_ranks=n_ranks,
    )


def _saf_probabilities(
    problem: Problem,
    dense: DenseCounts,
    table: LoopTable,
    level_names: tuple[str, ...],
    opts: SparseOptimizations,
    models: dict[str, DensityModel],
    params: LevelParams,
    occupancy: np.ndarray,
    parent: np.ndarray,
) -> SafState:
    """Gating and skipping probabilities at the targets' holders (module step 3)."""
    assert dense.held is not None and dense.child is not None
    tensors = problem.tensor_names
    shape = dense.reads.shape
    n_b = shape[0]
    st = SafState(
        np.zeros(shape, bool),
        np.zeros(shape, bool),
        np.zeros(shape, bool),
        np.zeros(shape),
        np.zeros(shape),
    )
    rows = np.arange(n_b)

    def comp_at(name: str, a: ActionOptimization) -> bool:
        f = opts.target(name).format_of(a.target)
        return f is not None and any(r.format in ("CP", "B", "RLE") for r in f.ranks)

    for kind in ("gating", "skipping"):
        for li, name in enumerate(level_names):
            acts = [
                a
                for a in opts.target(name).actions
                if a.type == kind
                or (kind == "skipping" and a.type == "position-skipping" and not comp_at(name, a))
            ]
            groups: dict[object, list] = {}
            for i, a in enumerate(acts):
                groups.setdefault(a.group if a.group is not None else ("own", i), []).append(a)
            for group in groups.values():
                best_s = np.full(n_b, -1.0)
                best = None
                for a in group:
                    if a.target not in tensors:
                        continue
                    ti = tensors.index(a.target)
                    held = dense.held[:, li, ti]
                    h = np.where(held, li, parent[:, li, ti])
                    if np.any(h < 0):
                        continue
                    child = dense.child[rows, h, ti]
                    conds = a.condition_on or (a.target,)
                    if a.type == "position-skipping":
                        conds = (a.target,)
                    p = action_probability(
                        problem,
                        table,
                        a.target,
                        tuple(conds),
                        SafTarget(h, child),
                        params.block,
                        models,
                    )
                    sav = params.read_energy[h] / params.block[h] * occupancy[rows, h, ti] * p
                    take = sav >= best_s
                    best_s = np.where(take, sav, best_s)
                    if best is None:
                        best = (np.full(n_b, ti), h, p)
                    else:
                        best = (
                            np.where(take, ti, best[0]),
                            np.where(take, h, best[1]),
                            np.where(take, p, best[2]),
                        )
                if best is None:
                    continue
                ti_a, h_a, p_a = best
                _set_saf(st, kind, rows, h_a, ti_a, p_a)
    return st


def _set_saf(
    st: SafState, kind: str, rows: np.ndarray, h: np.ndarray, ti: np.ndarray, p: np.ndarray
) -> None:
    """Record one action's probability at (h, t) per row; an existing gating/skipping there is
    replaced only by a larger probability (``DefineIneffectualReadImpact``)."""
    exists = st.gate[rows, h, ti] | st.skip[rows, h, ti]
    replace = ~exists | (st.p[rows, h, ti] < p)
    mine = st.gate if kind == "gating" else st.skip
    other = st.skip if kind == "gating" else st.gate
    other[rows, h, ti] = np.where(replace & exists, False, other[rows, h, ti])
    mine[rows, h, ti] = np.where(replace, True, mine[rows, h, ti])
    st.p[rows, h, ti] = np.where(replace, p, st.p[rows, h, ti])


def _format_bits(
    fmt: dict[str, dict[str, np.ndarray]],
    ranks_of: list[dict[int, tuple[RankSpec, ...]]],
    n_l: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Format bits (B, L, T) per kind and split: Σ_r md_r·md_bits_r + pl_r·pl_bits_r."""
    first = fmt["reads"]["random"]
    n_t, r_max = first.shape[2], first.shape[3]
    wb = np.zeros((n_l, n_t, r_max, 2))
    for ti, d in enumerate(ranks_of):
        for li, rs in d.items():
            for r, spec in enumerate(rs):
                wb[li, ti, r] = (spec.md_bits, spec.pl_bits)
    return {k: {s: (v * wb[None]).sum(axis=(3, 4)) for s, v in fmt[k].items()} for k in fmt}
