"""The sweeps' shared mapper (issue 8): one candidate set per layer shape priced at many
design points at once (:func:`candidate_nests`, :func:`best_per_point`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from testy_model.errors import MappingError
from testy_model.mapper.candidates import (
    Candidates,
    MappingResult,
    _cand_hash,
    _concat,
    _reorder,
    to_mapping,
    to_nests,
)
from testy_model.mapper.context import (
    Evaluator,
    Objective,
    _context,
    _Ctx,
    _result,
    layer_evaluator,
)
from testy_model.mapper.fit import check_feasible, valid_mask
from testy_model.mapper.search import (
    _EXHAUSTIVE_LIMIT,
    _beam_search,
    _best,
    _exhaustive,
    _random_candidates,
)
from testy_model.mapper.space import (
    ArchIndex,
    ProblemIndex,
    allowed_orders,
    factors_from_exps,
    index_arch,
    keep_options,
    space_size,
)
from testy_model.mapper.templates import (
    _templates,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Problem


def candidate_nests(
    problem: Problem,
    arch_structure: Architecture,
    *,
    limit: int = 20000,
    seed: int = 0,
    densities: dict[str, Any] | None = None,
    search_at: Sequence[Architecture] = (),
    objective: Objective = "edp",
) -> Candidates:
    """Candidate mappings for every design point sharing ``arch_structure``'s levels, fan-outs
    and keep/bypass (capacities are ignored here: :func:`best_per_point` filters by each point's).

    Every factorisation × order when the space has at most ``limit`` candidates, else ``limit``
    seeded random ones (plus, per point, the templates added by :func:`best_per_point`).
    ``search_at``: design points (same structure) at which the mapper's own search runs
    (:func:`find_mapping`'s settings); every candidate it costs there joins the set, so that
    :func:`best_per_point` at those points is never worse than :func:`find_mapping`, and points
    near them get locally good candidates. Duplicates are dropped (first kept).
    """
    unbounded = arch_structure.model_copy(
        update={
            "levels": tuple(lv.model_copy(update={"depth": None}) for lv in arch_structure.levels)
        }
    )
    ctx = _context(problem, unbounded, "edp", None, densities, evaluator=lambda *a: None)
    if space_size(ctx.pi, ctx.ai, len(ctx.orders)) * len(keep_options(ctx.pi, ctx.ai)) <= limit:
        parts = [_exhaustive(ctx)]
    else:
        parts = [_random_candidates(ctx, limit, seed)]
    for arch in search_at:
        sctx = _context(problem, arch, objective, None, densities, None)
        found: list[Candidates] = []
        if (
            space_size(sctx.pi, sctx.ai, len(sctx.orders)) * len(keep_options(sctx.pi, sctx.ai))
            <= _EXHAUSTIVE_LIMIT
        ):
            found.append(_exhaustive(sctx))
        else:
            _beam_search(sctx, 16, 512, 40, seed, 4, 2, collect=found)
        parts += [_reorder(f, ctx.orders) for f in found]
    cand = _concat(parts, ctx.orders)
    return cand.take(np.sort(np.unique(_cand_hash(cand), return_index=True)[1]))


@dataclass(frozen=True)
class _PointView:
    """What :func:`to_mapping` needs of a design point: its problem and architecture index."""

    pi: ProblemIndex
    ai: ArchIndex


def _structure_signature(ai: ArchIndex) -> tuple:
    """Everything of an :class:`ArchIndex` that decides which candidates are valid (so design
    points with equal signatures share one validity mask)."""
    arrays = (
        ai.capacity,
        ai.word_bits,
        ai.datawidth,
        ai.fanout,
        ai.fan_x,
        ai.fan_y,
        ai.keep_may,
        ai.keep_must,
        ai.t_fix,
        ai.t_max,
        ai.s_fix,
        ai.s_max,
        ai.x_ok,
        ai.y_ok,
    )
    return (ai.names, ai.perm, *((x.shape, x.tobytes()) for x in arrays))


def _take_points(aa: Any, idx: np.ndarray) -> Any:
    """The model's ``ArchArrays`` with one row per entry of ``idx`` (design point numbers)."""
    return dataclasses.replace(
        aa,
        **{
            f.name: getattr(aa, f.name)[idx]
            for f in dataclasses.fields(aa)
            if isinstance(getattr(aa, f.name), np.ndarray)
        },
    )


def best_per_point(
    problem: Problem,
    archs: Sequence[Architecture],
    candidates: Candidates,
    *,
    objective: Objective = "edp",
    densities: dict[str, Any] | None = None,
    evaluator: Evaluator | None = None,
    templates: bool = True,
    max_pairs: int = 400_000,
    conventions: Any = None,
) -> list[MappingResult]:
    """For each design point in ``archs`` (same level structure as the one ``candidates`` came
    from, see :func:`candidate_nests`), the best of the shared candidates that fit it, plus its
    three templates (``templates=True``), and its cost.

    Batched, with no Python loop over points or candidates in the pricing:

    1. points with equal capacities, word sizes and constraints form a group that shares one
       validity mask over the candidates (the mapper's own rules: fan-out, mesh, constraints,
       both capacity rules, allowed orders) and one set of templates;
    2. the candidates' loop nests (and the model's dense traffic) are computed once;
    3. every (point, valid candidate) pair is priced, ``max_pairs`` pairs per numpy pass: the
       cost core's stage of the candidates (one ``price`` call at the first point) against the
       points' numbers (:func:`testy_model.dse.batch.pair_cost`: the core's ``price_counts``,
       ``stage_totals`` and ``capacity_fits`` on (candidate, point) grids);
    4. per point the least objective wins (EDP in pJ·s = energy × cycles / clock; energy pJ;
       latency cycles), ties going to the lower EDP, then energy, then templates before shared
       candidates, then candidate order; the winners are priced once more, all points in one
       ``evaluate_terms`` call, so the reported numbers are the model's.

    ``conventions``: the counting conventions every price call uses (default ``timeloop``).
    A custom ``evaluator`` is called once per point instead (it gets one Architecture; e.g.
    :func:`layer_evaluator`, the slow reference the batched pricing is tested against).

    Raises:
        MappingError: naming the first point at which nothing fits.
    """
    from testy_model.model.arrays import arch_arrays

    if not archs:
        return []
    t0 = time.perf_counter()
    if evaluator is not None:
        return [_best_one(problem, a, candidates, objective, densities, evaluator) for a in archs]
    # the term stage, as the batched grid pricing (dse.batch.candidate_features) prices
    term_stage = layer_evaluator(problem, archs[0], densities, None, conventions, support=False)
    ctx0 = _context(problem, archs[0], objective, None, densities, term_stage)
    pi, L = ctx0.pi, len(ctx0.ai.names)
    shared = _reorder(candidates, ctx0.orders)
    # group points by what decides validity; one index, mask and template set per group
    groups: dict[tuple, list[int]] = {}
    index: dict[tuple, ArchIndex] = {}
    for p, arch in enumerate(archs):
        ai = index_arch(arch, problem, pi)
        key = _structure_signature(ai)
        groups.setdefault(key, []).append(p)
        index.setdefault(key, ai)
    parts, plan = [], []
    n_tmpl = 0
    F_sh = factors_from_exps(pi, shared.exps)
    for key, pts in groups.items():
        ai, first = index[key], archs[pts[0]]
        if ai.names != ctx0.ai.names:
            raise MappingError(
                f"design point {first.name!r} has levels {list(ai.names)}; expected "
                f"{list(ctx0.ai.names)}"
            )
        try:
            check_feasible(pi, ai, first)
        except MappingError as e:
            raise MappingError(
                f"design point {first.name!r} (point {pts[0]}): {e.problem}",
                file=e.file,
                key_path=e.key_path,
            ) from None
        allowed = allowed_orders(pi, ai, ctx0.orders)
        ok = valid_mask(pi, ai, F_sh[:, :L], F_sh[:, L:], shared.keep)
        ok &= np.all(allowed[np.arange(L), shared.order_idx], axis=-1)
        tm = np.zeros(0, dtype=np.int64)
        if templates:
            ctx = _context(problem, first, objective, None, densities, lambda *a: None)
            t_cand = _reorder(_templates(ctx), ctx0.orders)
            parts.append(t_cand)
            tm = np.arange(n_tmpl, n_tmpl + len(t_cand))
            n_tmpl += len(t_cand)
        plan.append((key, np.array(pts, dtype=np.int64), tm, np.nonzero(ok)[0]))
    # pool: every group's templates first, then the shared candidates (the tie-break order)
    pool = _concat([*parts, shared], ctx0.orders)
    nests = to_nests(pi, ctx0.ai, pool)
    aa = arch_arrays(list(archs))
    chosen = np.full(len(archs), -1, dtype=np.int64)
    n_pairs = np.zeros(len(archs), dtype=np.int64)
    for _key, at, tm, ok in plan:
        cols = np.concatenate([tm, n_tmpl + ok])
        n_pairs[at] = cols.size
        if cols.size:
            chosen[at] = _price_features(
                problem, ctx0, nests, aa, at, cols, objective, max_pairs, conventions
            )
    bad = np.nonzero(chosen < 0)[0]
    if bad.size:
        arch = archs[int(bad[0])]
        raise MappingError(
            f"no shared candidate of {problem.name!r} fits design point {arch.name!r} (point "
            f"{int(bad[0])}) under the model; expected larger buffers or more candidates",
            file=arch.source,
        )
    # the winners, priced by the model in one call (one row per point)
    cost = ctx0.evaluator(
        problem, aa, nests.select(chosen), ctx0.terms
    )  # P points against P nests: row p = point p
    cyc = np.asarray(cost.cycles, dtype=np.float64)
    energy = np.asarray(cost.energy_pj, dtype=np.float64)
    edp = np.asarray(cost.edp, dtype=np.float64)
    elapsed = (time.perf_counter() - t0) / len(archs)
    key_of = {int(p): key for key, pts, _, _ in plan for p in pts}
    memo: dict[tuple, Mapping] = {}
    out = []
    for p, arch in enumerate(archs):
        mk = (key_of[p], int(chosen[p]))
        if mk not in memo:
            memo[mk] = to_mapping(_PointView(pi, index[mk[0]]), arch, pool, mk[1])
        out.append(
            MappingResult(
                mapping=memo[mk],
                cycles=float(cyc[p]),
                energy_pj=float(energy[p]),
                edp=float(edp[p]),
                objective=objective,
                evaluated=int(n_pairs[p]),
                search_s=elapsed,
                method="shared-candidates",
            )
        )
    return out


def _first_best(obj: np.ndarray, edp: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Per column of (N, P) score arrays, the first row with the least objective, ties broken
    by EDP then energy; -1 where every row is +inf (invalid)."""
    tie = obj == obj.min(axis=0)
    e2 = np.where(tie, edp, np.inf)
    tie &= e2 == e2.min(axis=0)
    n2 = np.where(tie, energy, np.inf)
    tie &= n2 == n2.min(axis=0)
    best = np.argmax(tie, axis=0)
    return np.where(np.isfinite(obj.min(axis=0)), best, -1)


def _price_features(
    problem: Problem,
    ctx0: _Ctx,
    nests: Any,
    aa: Any,
    pts: np.ndarray,
    cols: np.ndarray,
    objective: str,
    max_pairs: int,
    conventions: Any = None,
) -> np.ndarray:
    """Best pool index per point of ``pts`` among ``cols`` (see :func:`best_per_point`, step
    3); -1 where none is valid."""
    from testy_model.dse import batch as db

    feats = db.candidate_features(
        problem,
        _take_points(aa, pts[:1]),
        nests.select(cols),
        ctx0.terms,
        conventions=conventions,
    )
    out = np.empty(pts.size, dtype=np.int64)
    step = max(1, max_pairs // cols.size)
    for lo in range(0, pts.size, step):
        sub = pts[lo : lo + step]
        pa = _take_points(aa, sub)
        c = db.pair_cost(feats, pa, grid=True)  # (N, p)
        seconds = c.cycles / (pa.clock_ghz[None, :] * 1e9)
        edp = c.energy_pj * seconds
        obj = {"edp": edp, "energy": c.energy_pj, "latency": c.cycles}[objective]
        bad = ~c.valid | ~np.isfinite(obj)
        best = _first_best(
            np.where(bad, np.inf, obj),
            np.where(bad, np.inf, edp),
            np.where(bad, np.inf, c.energy_pj),
        )
        out[lo : lo + sub.size] = np.where(best >= 0, cols[np.maximum(best, 0)], -1)
    return out


def _best_one(
    problem: Problem,
    arch: Architecture,
    candidates: Candidates,
    objective: str,
    densities: dict[str, Any] | None,
    evaluator: Evaluator,
) -> MappingResult:
    """:func:`best_per_point` for one point with a custom evaluator (one call per point)."""
    t0 = time.perf_counter()
    ctx = _context(problem, arch, objective, None, densities, evaluator)
    fits = _reorder(candidates, ctx.orders)
    fits = fits.take(np.nonzero(ctx.valid(fits))[0])
    pool = _concat([_templates(ctx), fits], ctx.orders)
    best = _best(ctx.cost(pool))
    return _result(ctx, pool.take(best[:1]), t0, "shared-candidates")
