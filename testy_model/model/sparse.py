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
from testy_model.model.density import DensityModel
from testy_model.model.formats import FormatLayout, RankSpec, assign_ranks, metadata_units
from testy_model.model.loops import LoopTable
from testy_model.model.reuse import DenseCounts, projection_matrix, tile_words
from testy_model.model.saf import SafTarget, action_probability, spatial_skipping
from testy_model.spec.sparseloop import SparseOptimizations
from testy_model.spec.workload import Problem

SPLITS = ("random", "gated", "skipped")
KINDS = ("reads", "fills", "updates")


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
    metadata, else its size); ``mac_units`` (B,) average utilized MAC units.
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
    rel = proj.any(axis=0)
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
    units (B, R), payload units (B, R)) of tiles of ``tile`` (B,) values (module step 1)."""
    occ, p = model.support(np.maximum(tile, 1.0))
    p0 = np.where(occ == 0, p, 0.0).sum(axis=-1)
    cond = parent_md & (p0 > 0) & (p0 < 1)
    scale = np.where(cond, 1.0 - p0, 1.0)
    p = np.where(
        cond[:, None], np.where(occ == 0, 0.0, p / np.where(cond, 1 - p0, 1.0)[:, None]), p
    )
    exp_occ = (p * occ).sum(axis=-1)
    if model.kind == "nm":
        # this project's model: no float excess over a full tile (Timeloop's own models keep
        # their noise, which its floors then see)
        exp_occ = np.minimum(exp_occ, np.maximum(tile, 1.0))
    dens = exp_occ / np.maximum(tile, 1.0)
    if layout is None:
        z = np.zeros((tile.shape[0], 0))
        return dens, exp_occ, scale, z, z
    md, pl = metadata_units(layout, model, tile, occ)
    return dens, exp_occ, scale, (p[..., None] * md).sum(axis=1), (p[..., None] * pl).sum(axis=1)


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
    counts, fmt_s, left = _combine(problem, dense, density, has_md, fmt, saf, out_idx, n_ranks)
    pos_skip = _position_skipped(problem, level_names, opts)
    compute = _compute_split(
        problem, dense, density, has_md, left, opts, compute_name, models, pos_skip
    )
    pos_util = _position_utilization(problem, dense, table, models, pos_skip)
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
    )


@dataclass
class SafState:
    """Which (B, L, T) accesses are gated / skipped / spatially skipped, with probability."""

    gate: np.ndarray
    skip: np.ndarray
    spatial: np.ndarray
    p: np.ndarray
    p_spatial: np.ndarray


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
    st = SafState(*(np.zeros(shape, bool) for _ in range(3)), np.zeros(shape), np.zeros(shape))
    rows = np.arange(n_b)

    def comp_at(name: str, a: object) -> bool:
        f = opts.target(name).format_of(a.target)  # type: ignore[attr-defined]
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


def _combine(
    problem: Problem,
    dense: DenseCounts,
    density: np.ndarray,
    has_md: np.ndarray,
    fmt: dict[str, np.ndarray],
    saf: SafState,
    out_idx: int,
    n_ranks: np.ndarray,
) -> tuple[dict, dict, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Actual / gated / skipped counts and format units (module step 4). Returns
    ``(counts, fmt, (computes left, optimized operand (B, T), its probability (B, T)))``."""
    assert dense.child is not None
    n_b, n_l, n_t = dense.reads.shape
    rows = np.arange(n_b)
    counts = {k: {s: np.zeros((n_b, n_l, n_t)) for s in SPLITS} for k in KINDS}
    fmts = {k: {s: np.zeros_like(fmt[k]) for s in SPLITS} for k in KINDS}
    mx = {}
    for k in KINDS:
        x = getattr(dense, k).astype(np.float64)
        red = x - np.floor(x * (1.0 - density))
        if k == "updates":
            red[:, :, [i for i in range(n_t) if i != out_idx]] = x[
                :, :, [i for i in range(n_t) if i != out_idx]
            ]
        mx[k] = np.where(has_md[None], red, x)
        counts[k]["random"] = mx[k].copy()
    mxf = {k: fmt[k].copy() for k in KINDS}
    for k in KINDS:
        fmts[k]["random"] = mxf[k].copy()
    done = np.zeros((n_b, n_l, n_t), bool)
    computes = dense.macs.astype(np.float64).copy()
    gs = np.zeros((n_b, n_t), bool)
    gs_p = np.zeros((n_b, n_t))
    any_saf = saf.gate | saf.skip | saf.spatial
    for ti in range(n_t):
        is_out = ti == out_idx
        for li in range(n_l):
            rows_l = any_saf[:, li, ti]
            if not rows_l.any():
                continue
            p = np.where(saf.spatial[:, li, ti], saf.p_spatial[:, li, ti], saf.p[:, li, ti])
            active = rows_l.copy()
            for m in range(li + 1, n_l):
                a = active[:, None]
                for k in KINDS:
                    x = mx[k][:, m, ti]
                    mx[k][:, m, ti] = np.where(active, x - np.floor(x * p), x)
                if has_md[m, ti] and n_ranks[li, ti] == 1:
                    for k in ("fills", "reads"):
                        x = mxf[k][:, m, ti, 0, :]
                        mxf[k][:, m, ti, 0, :] = np.where(a, x - np.floor(x * p[:, None]), x)
                local = active & any_saf[:, m, ti]
                if local.any():
                    p_m = np.where(saf.spatial[:, m, ti], saf.p_spatial[:, m, ti], saf.p[:, m, ti])
                    eff = 1.0 - (1.0 - p_m) / np.maximum(1.0 - p, 1e-300)
                    _finalize(counts, fmts, mx, mxf, m, ti, local, bug=True)
                    apply = local & ~saf.spatial[:, m, ti]
                    _local_saf(
                        counts, fmts, mx, mxf, dense, saf, m, ti, apply, eff, is_out, n_ranks
                    )
                    done[:, m, ti] |= local
                    active &= ~local
            fin = rows_l & ~done[:, li, ti]
            if fin.any():
                _finalize(counts, fmts, mx, mxf, li, ti, fin, bug=False)
                apply = fin & ~saf.spatial[:, li, ti]
                _local_saf(counts, fmts, mx, mxf, dense, saf, li, ti, apply, p, is_out, n_ranks)
                done[:, li, ti] |= fin
            if not is_out:
                computes = np.where(active, computes - np.floor(computes * p), computes)
                gs[:, ti] |= active
                gs_p[:, ti] = np.where(active, np.round(p * 1e6) / 1e6, gs_p[:, ti])
    plain = ~(saf.gate | saf.skip)
    for k in KINDS:
        counts[k]["random"] = np.where(plain, mx[k], counts[k]["random"])
        fmts[k]["random"] = np.where(plain[..., None, None], mxf[k], fmts[k]["random"])
    del rows
    return counts, fmts, (computes, gs, gs_p)


def _finalize(counts, fmts, mx, mxf, m, ti, rows, bug: bool) -> None:
    """Copy the running maxima of (m, t) into the actual counts for ``rows``; with ``bug``
    the metadata reads take the metadata updates, as Timeloop's combiner does for a level
    reached from an optimization above."""
    for k in KINDS:
        counts[k]["random"][:, m, ti] = np.where(
            rows, mx[k][:, m, ti], counts[k]["random"][:, m, ti]
        )
        src = "updates" if (bug and k == "reads") else k
        fmts[k]["random"][:, m, ti] = np.where(
            rows[:, None, None], mxf[src][:, m, ti], fmts[k]["random"][:, m, ti]
        )


def _local_saf(counts, fmts, mx, mxf, dense, saf, m, ti, rows, p, is_out, n_ranks) -> None:
    """Split the reads and updates of (m, t) into gated or skipped with probability ``p``
    (``ApplyLocalStorageSAFImpact``)."""
    if not rows.any():
        return
    kind = np.where(saf.gate[:, m, ti], "gated", "skipped")
    x = mx["reads"][:, m, ti]
    d_r = np.ceil(x * p) if is_out else np.floor(x * p)
    u = mx["updates"][:, m, ti]
    d_u = np.floor(u * p)
    for split in ("gated", "skipped"):
        sel = rows & (kind == split)
        counts["reads"][split][:, m, ti] += np.where(sel, d_r, 0.0)
        counts["updates"][split][:, m, ti] += np.where(sel, d_u, 0.0)
    counts["reads"]["random"][:, m, ti] = np.where(
        rows, x - d_r, counts["reads"]["random"][:, m, ti]
    )
    counts["updates"]["random"][:, m, ti] = np.where(
        rows, u - d_u, counts["updates"]["random"][:, m, ti]
    )
    child = dense.child[:, m, ti]
    n_l = n_ranks.shape[0]
    n_child = np.where(child < n_l, n_ranks[np.minimum(child, n_l - 1), ti], n_ranks[m, ti])
    r_idx = np.arange(fmts["reads"]["random"].shape[3])
    use = rows[:, None] & (r_idx[None, :] < n_child[:, None])
    for k in ("reads", "updates"):
        cur = fmts[k]["random"][:, m, ti]
        delta = np.floor(cur * p[:, None, None])
        delta = np.where(use[..., None], delta, 0.0)
        fmts[k]["random"][:, m, ti] = cur - delta
        for split in ("gated", "skipped"):
            sel = (kind == split)[:, None, None]
            fmts[k][split][:, m, ti] += np.where(sel, delta, 0.0)


def _compute_split(
    problem: Problem,
    dense: DenseCounts,
    density: np.ndarray,
    has_md: np.ndarray,
    left: tuple[np.ndarray, np.ndarray, np.ndarray],
    opts: SparseOptimizations,
    compute_name: str,
    models: dict[str, DensityModel],
    pos_skip: dict[int, tuple[int, bool]] | None = None,
) -> dict[str, np.ndarray]:
    """Actual / gated / skipped computes of two-operand MACs (module step 5). An operand's
    density is its model's expected occupancy of one value (``GetExpectedOperandDensities``),
    its metadata that of its innermost holder."""
    assert dense.held is not None
    total, gs, gs_p = left
    inputs = [problem.tensor_names.index(t) for t in problem.inputs]
    n_b, n_l, _ = dense.reads.shape
    gate = skip = False
    for co in opts.target(compute_name).compute:
        gate |= co.type == "gating"
        skip |= co.type == "skipping"
    states = []
    for ti in inputs[:2]:
        # the innermost holder's density and metadata (Timeloop scans from the innermost level)
        held = dense.held[:, :, ti]
        inner = n_l - 1 - np.argmax(held[:, ::-1], axis=1)
        one = float(models[problem.tensor_names[ti]].expected_occupancy(np.array(1.0)))
        d = np.full(n_b, np.round(one * 1e6) / 1e6)
        md = has_md[inner, ti]
        states.append((d, md))
    pos = pos_skip or {}
    for ti, (d, _md) in zip(inputs[:2], list(states), strict=False):
        if pos.get(ti, (0, False))[1]:  # compressed: no storage skipping removed its zeros
            total = total - np.floor(total * (1.0 - d) + 1e-9)
    if len(states) < 2:
        return {"random": total, "gated": np.zeros(n_b), "skipped": np.zeros(n_b)}
    (da, ma), (db, mb) = states
    a_gs = gs[:, inputs[0]] & (inputs[0] not in pos)
    b_gs = gs[:, inputs[1]] & (inputs[1] not in pos)
    pa, pb = gs_p[:, inputs[0]], gs_p[:, inputs[1]]
    # condition an operand on the other's non-empty probability when the other is optimized
    da_c = np.where(b_gs, da / np.maximum(1.0 - pb, 1e-300), da)
    db_c = np.where(a_gs, db / np.maximum(1.0 - pa, 1e-300), db)
    # position-skipped operands only ever reach the compute at non-zero positions
    if inputs[0] in pos:
        da_c, ma = np.ones(n_b), True
    if inputs[1] in pos:
        db_c, mb = np.ones(n_b), True
    a = _operand_states(da_c, ma)
    b = _operand_states(db_c, mb)
    enz_enz = a[0] * b[0]
    zero_pair = a[0] * b[1] + a[1] * b[0] + a[1] * b[1]
    missing = a[0] * b[2] + a[2] * b[0] + a[1] * b[2] + a[2] * b[1]
    none = a[2] * b[2]
    gated = (zero_pair + (missing if not skip else 0.0)) * total if gate else 0.0 * total
    skipped = missing * total if skip else 0.0 * total
    random = (
        total - np.floor(skipped + 1e-9) - np.floor(gated + 1e-9) - np.floor(none * total + 1e-9)
    )
    del enz_enz
    return {"random": random, "gated": np.floor(gated + 1e-9), "skipped": np.floor(skipped + 1e-9)}


def _operand_states(d: np.ndarray, md: bool | np.ndarray) -> tuple[np.ndarray, ...]:
    """(exists non-zero, exists zero, does not exist) probabilities of one operand: a zero is
    not stored when the operand carries metadata."""
    d = np.clip(d, 0.0, 1.0)
    md = np.asarray(md)
    return d, np.where(md, 0.0, 1.0 - d), np.where(md, 1.0 - d, 0.0)


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


def _position_skipped(
    problem: Problem, level_names: tuple[str, ...], opts: SparseOptimizations
) -> dict[int, tuple[int, bool]]:
    """Operands with a ``position-skipping`` (Sparseloop 2022: skipping the operand's own
    zeros): tensor index -> (level, whether the level keeps it compressed)."""
    out: dict[int, tuple[int, bool]] = {}
    for li, name in enumerate(level_names):
        tgt = opts.target(name)
        for a in tgt.actions:
            if a.type != "position-skipping" or a.target not in problem.tensor_names:
                continue
            f = tgt.format_of(a.target)
            comp = f is not None and any(r.format in ("CP", "B", "RLE") for r in f.ranks)
            out[problem.tensor_names.index(a.target)] = (li, comp)
    return out


def _position_utilization(
    problem: Problem,
    dense: DenseCounts,
    table: LoopTable,
    models: dict[str, DensityModel],
    pos_skip: dict[int, tuple[int, bool]],
) -> np.ndarray:
    """(B,) fraction of the MACs a position-skipping fan-out keeps busy (Sparseloop's
    position-space tiling): the non-zeros of t's tile at the skipping level are dealt to the
    S_t instances below it (S_t = Π spatial factors indexing t), taking ⌈occ/S_t⌉ rounds, so
    ``u_t = E[occ / (⌈occ/S_t⌉·S_t) | occ > 0]`` and ``u = Π_t u_t``; compute cycles divide by u.
    """
    n_b = dense.reads.shape[0]
    util = np.ones(n_b)
    for ti, (li, _comp) in pos_skip.items():
        t = problem.tensor_names[ti]
        rel = projection_matrix(problem, t).any(axis=0)
        slots = [k for k in table.level_slots(li) if table.spatial[k]]
        fan = np.ones(n_b)
        for k in slots:
            fan *= np.where(rel[table.dim[:, k]], table.bound[:, k], 1.0)
        tile = dense.tile[:, li, ti]
        occ, p = models[t].support(np.maximum(tile, 1.0))
        live = (occ >= 1) & (p > 0)
        rounds = np.ceil(occ / fan[:, None]) * fan[:, None]
        frac = np.where(live, occ / np.where(live, rounds, 1.0), 0.0)
        mass = np.where(live, p, 0.0).sum(axis=-1)
        u = np.where(mass > 0, (frac * p).sum(axis=-1) / np.where(mass > 0, mass, 1.0), 1.0)
        util *= np.where(fan >= 2, u, 1.0)
    return util
