"""The sparse stage's last steps (:mod:`~testy_model.model.sparse`, module steps 4–5): combining
the dense counts with the formats and the gating/skipping probabilities into actual / gated /
skipped counts (``CombineStorageOptimizationImpact`` of Timeloop v3.0.3's
``src/sparse-analysis/storage-optimization-combiner.cpp``), the compute split
(``compute-gs-analyzer.cpp``) and Sparseloop 2022's position skipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testy_model.model.density import DensityModel
from testy_model.model.loops import LoopTable
from testy_model.model.reuse import DenseCounts, projection_matrix
from testy_model.spec.sparseloop import SparseOptimizations
from testy_model.spec.workload import Problem

SPLITS = ("random", "gated", "skipped")
KINDS = ("reads", "fills", "updates")
#: kind -> split -> (B, L, T[, ...]) array: the counts and format units :func:`combine` fills
_Split = dict[str, dict[str, np.ndarray]]


@dataclass
class SafState:
    """Which (B, L, T) accesses are gated / skipped / spatially skipped, with probability."""

    gate: np.ndarray
    skip: np.ndarray
    spatial: np.ndarray
    p: np.ndarray
    p_spatial: np.ndarray


def combine(
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


def _finalize(
    counts: _Split,
    fmts: _Split,
    mx: dict[str, np.ndarray],
    mxf: dict[str, np.ndarray],
    m: int,
    ti: int,
    rows: np.ndarray,
    bug: bool,
) -> None:
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


def _local_saf(
    counts: _Split,
    fmts: _Split,
    mx: dict[str, np.ndarray],
    mxf: dict[str, np.ndarray],
    dense: DenseCounts,
    saf: SafState,
    m: int,
    ti: int,
    rows: np.ndarray,
    p: np.ndarray,
    is_out: bool,
    n_ranks: np.ndarray,
) -> None:
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
    assert dense.child is not None
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


def compute_split(
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


def position_skipped(
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


def position_utilization(
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
        rel = np.asarray(projection_matrix(problem, t).any(axis=0))
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
