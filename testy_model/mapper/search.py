"""Analytical mapping search: a good Timeloop-style mapping for one problem in milliseconds.

Pipeline (:func:`find_mapping`):

1. flatten the problem and architecture to arrays (:mod:`testy_model.mapper.space`) and raise a
   :class:`MappingError` when not even one word of each kept tensor fits a level;
2. if the space (factorisations × reuse-distinct loop orders) is at most ``exhaustive_limit``,
   enumerate it, prune by fan-out/constraints/capacity, and cost every survivor;
3. otherwise run a deterministic beam search: the start pool is the three templates (weight-,
   output-, input-stationary), the templates under every keep/bypass choice that fits, and
   ``n_random`` seeded random factorisations (invalid ones dropped). Each round costs, in one batch,
   every unseen valid neighbour of the beam: one prime factor (or its square) of one dimension moved
   between two slots, a dimension's whole factor at one slot moved to another, one level's loop
   order changed, one tensor's keep/bypass toggled at one level, and, for the ``compound`` best
   members, factor moves that overflow a buffer repaired by one keep/bypass toggle. The beam keeps
   the ``beam`` best distinct-cost candidates, at most ``per_keep`` per keep/bypass choice
   (diversity). The phase ends when the round's neighbourhood is empty (all seen or invalid), or
   ``patience`` rounds in a row do not improve the best objective, or ``max_rounds`` rounds have
   run. A second phase then goes on from the final beam with the same moves plus, for the best
   member (once), the rotations through a full spatial array: one factor of one dimension enters the
   array while the same factor of another leaves it (:func:`_rotations`; single moves cannot cross
   the valley between two full arrays), until it ends the same way; the beam keeps its best, so the
   result is never worse than the first phase's (the search without rotations, ``rotate=False``).
   Work the model would repeat is skipped, without changing what is found (the same mappings as
   without it on ResNet-50's distinct layers and five BERT GEMMs on every shipped engine):
   candidates are identified by their canonical form (loop orders that agree on each level's
   non-unit loops cost the same: :func:`~testy_model.mapper.space.order_classes`), so an equivalent
   of a candidate already seen is neither checked nor costed; a beam member is expanded once
   (again only when it first leads the beam, for the repair moves), since its valid neighbours are
   all seen after; and once the beam is full, a neighbour whose estimate from its temporal steps
   (:mod:`~testy_model.mapper.bound`) exceeds the worst member's objective is not priced (it
   could not enter the beam);
4. the winner (lowest objective; ties broken by EDP, then energy, then generation order, so the
   result is deterministic) is turned into a :class:`~testy_model.spec.mapping.Mapping`.

Candidates are costed by the cost core exactly as ``eval`` prices the layer
(:func:`~testy_model.mapper.context.layer_evaluator`; B candidates per numpy call).
Results are cached by (problem shape, densities, architecture hash, objective, constraints), so a
network with repeated layer shapes costs one search per distinct shape.

Objectives: ``edp`` (pJ·s: the model's energy × latency in seconds), ``energy`` (pJ),
``latency`` (cycles).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from testy_model.errors import MappingError
from testy_model.mapper.bound import StepBound, temporal_steps
from testy_model.mapper.candidates import (
    Candidates,
    MappingResult,
    _cand_hash,
    _concat,
    _gather,
    _hash_parts,
    _keep_part,
    _order_hash,
)
from testy_model.mapper.context import (
    Evaluator,
    Objective,
    _context,
    _Ctx,
    _problem_key,
    _result,
    arch_hash,
)
from testy_model.mapper.moves import (
    _lead,
    _moves,
    _neighbours,
    _repair_keep,
)
from testy_model.mapper.pool import (  # noqa: F401  (old import paths)
    _CHUNK,
    _EXHAUSTIVE_LIMIT,
    _best,
    _canonical,
    _close,
    _exhaustive,
    _in_sorted,
    _keep_hash,
    _keep_variants,
    _random_candidates,
    _select,
)
from testy_model.mapper.rotations import _rotated
from testy_model.mapper.space import (
    space_size,
)
from testy_model.mapper.templates import (
    _templates,
)
from testy_model.spec.arch import Architecture, LevelConstraints
from testy_model.spec.conventions import Conventions
from testy_model.spec.workload import Problem

#: stale rounds that end the rotation phase (a leader's rotations are offered once, when it
#: first leads; one stale round means the last leader's rotations found nothing better)
_ROTATION_PATIENCE = 1


@dataclass
class _Beam:
    """The beam search's state between rounds: the beam (best first), its scores and
    canonical hashes, the sorted hashes of every candidate checked, and the sets of hashes of
    the members expanded (``done``), expanded while leading (``done_lead``, their
    over-capacity neighbours offered for repair too) and whose rotations were offered
    (``done_rot``)."""

    cur: Candidates
    scores: tuple[np.ndarray, np.ndarray, np.ndarray]
    h: np.ndarray
    seen: np.ndarray
    done: set[int] = field(default_factory=set)
    done_lead: set[int] = field(default_factory=set)
    done_rot: set[int] = field(default_factory=set)


def _start(ctx: _Ctx, n_random: int, seed: int, canon: Any) -> tuple[Candidates, np.ndarray]:
    """The start pool (templates, their keep/bypass variants, ``n_random`` random
    factorisations), first of each canonical form, and its hashes."""
    tmpl = _templates(ctx)
    starts = [tmpl, _keep_variants(ctx, tmpl), _random_candidates(ctx, n_random, seed)]
    pool = _concat(starts, ctx.orders)
    ph = _cand_hash(canon(ctx, pool))
    first = np.sort(np.unique(ph, return_index=True)[1])
    return pool.take(first), ph[first]


def _expand(
    ctx: _Ctx, st: _Beam, moves: tuple[np.ndarray, ...], compound: int, rotating: bool, every: bool
) -> tuple[Candidates, np.ndarray]:
    """The round's neighbourhood: the single moves of each member not expanded yet (again for
    the ``compound`` best when they first lead), ``every``: of all members (no skipping); in
    the rotation phase also the leader's rotations when it first leads (:func:`_rotated`).
    With their :func:`_hash_parts`."""
    hs = st.h.tolist()  # a few members: Python sets
    grow = [
        every or h not in st.done or (i < compound and h not in st.done_lead)
        for i, h in enumerate(hs)
    ]
    st.done.update(h for h, g in zip(hs, grow, strict=True) if g)
    st.done_lead.update(h for h, g in zip(hs[: max(compound, 0)], grow, strict=False) if g)
    rows = np.array([i for i, g in enumerate(grow) if g], dtype=np.intp)
    nb, nh = _neighbours(ctx, st.cur.take(rows), moves)
    if rotating:  # rotations through a full array, from the leader when it first leads
        first = hs[:1] if hs and hs[0] not in st.done_rot else []  # the leader, once
        st.done_rot.update(first)
        rt = _rotated(ctx, st.cur.take(np.arange(len(first))), moves[7:])
        nb, nh = _concat([nb, rt], ctx.orders), np.concatenate([nh, _hash_parts(rt)])
    return nb, nh


def _unseen(
    ctx: _Ctx, st: _Beam, nb: Candidates, nh: np.ndarray, canon: Any, compound: int
) -> tuple[Candidates, np.ndarray, np.ndarray]:
    """The valid neighbours not checked before (identified by their canonical form: the first
    generated keeps its own order, so that a later factor move can make use of it; ``nh``:
    their :func:`_hash_parts`), with the over-capacity ones from the ``compound`` best members
    repaired by one keep/bypass toggle (:func:`_repair_keep`); their factors and hashes. Marks
    them seen, with the invalid ones tried for repair (other invalid ones may be repaired
    later, from a leading member)."""
    h = nh + _order_hash(nb, canon(ctx, nb).order_idx)  # _cand_hash of the canonical forms
    # only unseen candidates are checked and costed: the first of each unseen hash
    new = np.nonzero(~_in_sorted(h, st.seen))[0]
    idx = new[np.sort(np.unique(h[new], return_index=True)[1])]
    nb, h = nb.take(idx), h[idx]
    struct, ok, inv, F, words = ctx.valid_shared(nb, nh[idx] - _keep_part(nb))
    bad = np.nonzero(~ok)[0]
    lead = np.zeros(len(nb), dtype=bool)
    lead[bad] = _lead(nb, st.cur, compound, bad)
    lr = np.nonzero(lead)[0]
    Fl, wl = F.take(inv[lr], axis=0), words.take(inv[lr], axis=0)
    repaired, rF = _repair_keep(ctx, nb.take(lr), Fl, struct[lr], wl)
    rh = _cand_hash(canon(ctx, repaired))
    ridx = np.zeros(0, dtype=np.intp)
    if rh.size:  # the first of each, not seen and not among this round's valid ones
        ridx = np.sort(np.unique(rh, return_index=True)[1])
        ridx = ridx[~_in_sorted(rh[ridx], st.seen) & ~_in_sorted(rh[ridx], np.sort(h[ok]))]
    st.seen = np.sort(np.concatenate([st.seen, h[ok | lead], rh[ridx]]))
    keep = np.nonzero(ok)[0]
    nb = _gather([(nb, keep), (repaired, ridx)], ctx.orders)
    F = np.concatenate([F.take(inv[keep], axis=0), rF.take(ridx, axis=0)])
    return nb, F, np.concatenate([h[keep], rh[ridx]])


def _limits(st: _Beam, nb: Candidates, beam: int, per_keep: int) -> np.ndarray:
    """(len(nb),) the objective above which each candidate cannot enter the beam
    (:func:`_select`): the worst member's once the beam is full, and, where the candidate's
    keep/bypass group already has ``per_keep`` members, the ``per_keep``-th best of them (those
    stay ahead of it in its group); +inf where neither holds."""
    lim = np.full(len(nb), st.scores[0][-1] if len(st.cur) >= beam else np.inf)
    members: dict[int, list[int]] = {}  # keep hash -> beam positions, best first
    for i, g in enumerate(_keep_hash(st.cur.keep).tolist()):
        members.setdefault(g, []).append(i)
    full = {g: m[per_keep - 1] for g, m in members.items() if len(m) >= per_keep}
    if full:
        gn = _keep_hash(nb.keep)
        for g, i in full.items():
            hit = gn == g
            lim[hit] = np.minimum(lim[hit], st.scores[0][i])
    return lim


def _beam_search(
    ctx: _Ctx,
    beam: int,
    n_random: int,
    max_rounds: int,
    seed: int,
    per_keep: int = 2,
    patience: int = 2,
    compound: int = 2,
    collect: list[Candidates] | None = None,
    skip_repeats: bool = True,
    rotate: bool = True,
) -> tuple[Candidates, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The beam search of :func:`find_mapping` (module docstring, step 3): the final beam,
    best first, and its scores. ``collect``: a list that receives every valid candidate
    checked (priced, or skipped by the bound). ``skip_repeats=False`` turns off the savings
    (canonical identification, expanding a member once, the step bound), for tests that they
    do not change the result. ``rotate``: when the search without rotations ends
    (``patience``, ``max_rounds`` or an exhausted neighbourhood), it goes on from its final
    beam offering each leader's rotations through a full array as well (:func:`_rotations`,
    once per leader) until it stalls again: the result is never worse than the search without
    rotations, which it extends."""
    bound = StepBound(ctx.objective)
    inner = ctx.evaluator

    def watched(problem: Any, arch: Any, nests: Any, terms: Any, **kw: Any) -> Any:
        cost = inner(problem, arch, nests, terms, **kw)
        bound.observe(np.asarray(nests.temporal), cost)
        return cost

    ctx.evaluator = watched  # the bound reads the compute cycles of what is priced
    try:
        return _search(
            ctx,
            bound,
            beam,
            n_random,
            max_rounds,
            seed,
            per_keep,
            patience,
            compound,
            collect,
            skip_repeats,
            rotate,
        )
    finally:
        ctx.evaluator = inner


def _search(
    ctx: _Ctx,
    bound: StepBound,
    beam: int,
    n_random: int,
    max_rounds: int,
    seed: int,
    per_keep: int,
    patience: int,
    compound: int,
    collect: list[Candidates] | None,
    skip_repeats: bool,
    rotate: bool,
) -> tuple[Candidates, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`_beam_search`'s rounds, with ``bound`` kept up to date by its pricing."""
    canon = _canonical if skip_repeats else (lambda c, x: x)
    pool, ph = _start(ctx, n_random, seed, canon)
    scores = ctx.cost(pool)
    if collect is not None:
        collect.append(pool)
    L = len(ctx.ai.names)
    bound.update(scores)
    order = _select(pool, scores, beam, per_keep)
    st = _Beam(pool.take(order), tuple(s[order] for s in scores), ph[order], np.sort(ph))
    moves = _moves(ctx)
    stale, rounds, rotating = 0, 0, False  # rotating: the second phase
    while True:
        if rounds >= max_rounds or stale >= (_ROTATION_PATIENCE if rotating else patience):
            if not rotate or rotating:
                break
            rotating, rounds, stale = True, 0, 0
        rounds += 1
        nb, nh = _expand(ctx, st, moves, compound, rotating, not skip_repeats)
        nb, F, h = _unseen(ctx, st, nb, nh, canon, compound)
        if len(nb) == 0:  # the neighbourhood of the beam is exhausted
            if not rotate or rotating:
                break
            rotating, rounds, stale = True, 0, 0
            continue
        if collect is not None:
            collect.append(nb)
        if skip_repeats:  # skip what cannot enter the beam (a full beam or keep group)
            lim = _limits(st, nb, beam, per_keep)
            fit = np.nonzero(bound.lower(temporal_steps(F, L)) <= lim)[0]
            nb, F, h = nb.take(fit), F.take(fit, axis=0), h[fit]
        nb_s = ctx.cost(nb, F)
        bound.update(nb_s)
        both = _concat([st.cur, nb], ctx.orders)
        both_s = tuple(np.concatenate([x, y]) for x, y in zip(st.scores, nb_s, strict=True))
        order = _select(both, both_s, beam, per_keep)
        improved = both_s[0][order[0]] < st.scores[0][0] * (1 - 1e-12)
        st.cur, st.scores = both.take(order), tuple(s[order] for s in both_s)
        st.h = np.concatenate([st.h, h])[order]
        stale = 0 if improved else stale + 1  # `patience` stale rounds end a phase
    return st.cur, st.scores


_CACHE: dict[tuple, MappingResult] = {}


def clear_cache() -> None:
    """Forget every cached search result."""
    _CACHE.clear()


def cache_size() -> int:
    """Number of cached search results."""
    return len(_CACHE)


def find_mapping(
    problem: Problem,
    arch: Architecture,
    objective: Objective = "edp",
    constraints: dict[str, LevelConstraints] | None = None,
    densities: dict[str, Any] | None = None,
    *,
    evaluator: Evaluator | None = None,
    exhaustive_limit: int = _EXHAUSTIVE_LIMIT,
    beam: int | None = None,
    n_random: int = 512,
    max_rounds: int = 40,
    seed: int = 0,
    per_keep: int | None = None,
    patience: int = 2,
    use_cache: bool = True,
    rotate: bool = True,
    sparse: Any = None,
    conventions: Any = None,
) -> MappingResult:
    """The best mapping found for ``problem`` on ``arch`` and its cost.

    Candidates are priced by the cost core exactly as ``eval`` prices the layer
    (:func:`layer_evaluator`), so the returned totals are ``eval``'s of the returned mapping.

    Args:
        problem: the layer (any Timeloop-style problem; GEMMs via :func:`gemm`).
        arch: the architecture (capacities, fan-outs, keep/bypass and constraints respected).
        objective: ``edp`` (pJ·s), ``energy`` (pJ) or ``latency`` (cycles).
        constraints: level name -> :class:`LevelConstraints` replacing that level's own.
        densities: tensor -> kept density (float or :class:`Density`) overriding the problem's;
            capacities then hold compressed tiles. A TASD plan's terms share this one mapping.
        evaluator: cost function (default: :func:`layer_evaluator`, the cost core as ``eval``
            prices the layer).
        exhaustive_limit: enumerate the space when it has at most this many candidates
            (factorisations × order combinations, before pruning); otherwise beam search.
        beam, n_random, max_rounds, seed: beam search width (default 16; 32 where the engine
            skips an operand's zeros spatially, :attr:`ArchIndex.instances`: spatial factors
            may then exceed the fan-out, a larger space), random starts, round cap, seed.
        per_keep: at most this many beam members share one keep/bypass choice (default 4; 8
            with spatial skipping, as ``beam``).
        patience: stop after this many rounds without improvement.
        rotate: also offer the beam leader's rotations through a full array
            (:func:`_rotations`): finds mappings single moves cannot reach from a fully used
            array (BERT's attention products, most ResNet-50 layers); False: single moves only.
        use_cache: reuse an earlier result for the same (shape, densities, arch, objective,
            constraints, search settings, pricing).
        sparse: Sparseloop ``sparse_optimizations`` to price with (the sparse stage), as
            ``eval`` takes them from Timeloop/Sparseloop input files.
        conventions: counting conventions (``timeloop`` default, or ``sparseloop-2022``).

    Raises:
        MappingError: when no valid mapping exists (a level too small for one word of each
            tensor it must keep), or bad objective/constraints.
    """
    # explicit ``densities`` replace the problem's own, so those then stay out of the key
    # (otherwise the same dense search would miss the cache once per weight sparsity)
    pkey = _problem_key(problem) if densities is None else _problem_key(problem)[:-1]
    key = (
        pkey,
        None if densities is None else repr(sorted(densities.items())),
        arch_hash(arch),
        objective,
        repr(sorted((constraints or {}).items())),
        exhaustive_limit,
        beam,
        n_random,
        max_rounds,
        seed,
        per_keep,
        patience,
        rotate,
        evaluator,
        None if sparse is None else sparse.model_dump_json(),
        Conventions.parse(conventions).value,
    )
    if use_cache and key in _CACHE:
        return _CACHE[key]
    t0 = time.perf_counter()
    ctx = _context(problem, arch, objective, constraints, densities, evaluator, sparse, conventions)
    wide = ctx.ai.instances is not None  # spatial skipping: factors beyond the fan-out
    beam = (32 if wide else 16) if beam is None else beam
    per_keep = (8 if wide else 4) if per_keep is None else per_keep
    size = space_size(ctx.pi, ctx.ai, len(ctx.orders)) * len(ctx.keep_choices())
    if size <= exhaustive_limit:
        cand = _exhaustive(ctx)
        parts = [
            ctx.cost(cand.take(np.arange(i, min(i + _CHUNK, len(cand)))))
            for i in range(0, len(cand), _CHUNK)
        ]
        scores = tuple(np.concatenate([p[k] for p in parts]) for k in range(3)) if parts else None
        method = "exhaustive"
    else:
        cand, scores = _beam_search(
            ctx, beam, n_random, max_rounds, seed, per_keep, patience, rotate=rotate
        )
        method = "beam"
    if len(cand) == 0 or scores is None:
        raise MappingError(
            f"no valid mapping of {problem.name!r} on {arch.name!r} under its capacities, "
            "fan-outs and constraints",
            file=arch.source,
        )
    best = _best(scores)
    if not np.isfinite(scores[0][best[0]]):
        raise MappingError(
            f"no mapping of {problem.name!r} on {arch.name!r} that the model accepts as valid",
            file=arch.source,
        )
    result = _result(ctx, cand.take(best[:1]), t0, method)
    if use_cache:
        _CACHE[key] = result
    return result
