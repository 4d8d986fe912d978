"""Analytical mapping search: a good Timeloop-style mapping for one problem in milliseconds.

Pipeline (:func:`find_mapping`):

1. flatten the problem and architecture to arrays (:mod:`testy_model.mapper.space`) and raise a
   :class:`MappingError` when not even one word of each kept tensor fits a level;
2. if the space (factorisations × reuse-distinct loop orders) is at most ``exhaustive_limit``,
   enumerate it, prune by fan-out/constraints/capacity, and cost every survivor;
3. otherwise run a deterministic beam search: the start pool is the three templates (weight-,
   output-, input-stationary), the templates under every keep/bypass choice that fits, and
   ``n_random`` seeded random factorisations (invalid ones dropped). Each round costs, in one
   batch, every unseen valid neighbour of the beam: one prime factor (or its square) of one
   dimension moved between two slots, a dimension's whole factor at one slot moved to another,
   one level's loop order changed, one tensor's keep/bypass toggled at one level, and, for the
   ``compound`` best members, factor moves that overflow a buffer repaired by one keep/bypass
   toggle. The beam keeps the ``beam`` best distinct-cost candidates, at most ``per_keep`` per
   keep/bypass choice (diversity). Early exits: the round's neighbourhood is empty (all seen or
   invalid), or ``patience`` rounds in a row do not improve the best objective, or
   ``max_rounds`` rounds have run. Work the model would repeat is skipped, without changing
   what is found (the same mappings as without it on ResNet-50's distinct layers and five BERT
   GEMMs on every shipped engine): candidates are identified by their canonical form (loop
   orders that agree on each level's non-unit loops cost the same:
   :func:`~testy_model.mapper.space.order_classes`), so an equivalent of a candidate already
   seen is neither checked nor costed; and a beam member is expanded once (again only when it
   first leads the beam, for the repair moves), since its valid neighbours are all seen after;
4. the winner (lowest objective; ties broken by EDP, then energy, then generation order, so the
   result is deterministic) is turned into a :class:`~testy_model.spec.mapping.Mapping`.

Candidates are costed by the model's vectorised ``evaluate_terms`` (B candidates per numpy call).
Results are cached by (problem shape, densities, architecture hash, objective, constraints), so a
network with repeated layer shapes costs one search per distinct shape.

Objectives: ``edp`` (pJ·s: the model's energy × latency in seconds), ``energy`` (pJ),
``latency`` (cycles).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from testy_model.errors import MappingError
from testy_model.mapper.space import (
    ArchIndex,
    ProblemIndex,
    allowed_orders,
    canonical_order_idx,
    canonical_orders,
    capacity_mask,
    check_feasible,
    enumerate_factorisations,
    factors_from_exps,
    index_arch,
    index_problem,
    keep_options,
    mesh_layout,
    order_classes,
    slot_mask,
    space_size,
    structure_mask,
    valid_mask,
)
from testy_model.spec.arch import Architecture, LevelConstraints
from testy_model.spec.conventions import Conventions
from testy_model.spec.mapping import LevelMapping, Mapping
from testy_model.spec.workload import Density, Problem

Objective = Literal["edp", "energy", "latency"]
TemplateKind = Literal["weight", "output", "input"]
#: ``evaluator(problem, arch, nests, terms) -> cost`` with ``cycles``, ``energy_pj``, ``edp``
#: and ``valid`` arrays of shape (B,) (``terms`` as from :func:`operand_terms`). Defaults to the
#: model's ``evaluate_terms``.
Evaluator = Callable[..., Any]

_OBJECTIVES: tuple[str, ...] = ("edp", "energy", "latency")
_CHUNK = 16384  # candidates per evaluate call in exhaustive mode
_EXHAUSTIVE_LIMIT = 4096  # find_mapping's default exhaustive_limit


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingResult:
    """A mapping and its cost under the model.

    Attributes:
        mapping: the mapping (Timeloop-style, one LevelMapping per level, outermost first).
        cycles: latency in cycles; energy_pj: energy in pJ; edp: energy × seconds in pJ·s.
        objective: what was minimised (``edp``, ``energy`` or ``latency``).
        evaluated: candidates costed by the model during the search.
        search_s: wall-clock seconds of the search (0 for a cache hit's own lookup).
        method: ``exhaustive``, ``beam`` or ``template:<kind>``.
    """

    mapping: Mapping
    cycles: float
    energy_pj: float
    edp: float
    objective: str
    evaluated: int
    search_s: float
    method: str


@dataclass(frozen=True)
class Candidates:
    """Candidate mappings of one problem in exponent form (see :mod:`mapper_space`).

    Attributes:
        exps: (B, 2L, D, P) int8 prime exponents per slot (temporal slots then spatial slots).
        order_idx: (B, L) int64 index into ``orders`` per level.
        keep: (B, L, T) bool, level l holds tensor t (else bypassed).
        orders: (O, D) int64 loop orders (position of each dim, 0 = innermost).
    """

    exps: np.ndarray
    order_idx: np.ndarray
    keep: np.ndarray
    orders: np.ndarray

    def __len__(self) -> int:
        return int(self.exps.shape[0])

    def take(self, idx: np.ndarray) -> Candidates:
        """The sub-set at ``idx``."""
        return Candidates(self.exps[idx], self.order_idx[idx], self.keep[idx], self.orders)


# -- evaluation glue ----------------------------------------------------------------------------


def layer_evaluator(
    problem: Problem,
    arch: Architecture,
    densities: dict[str, Any] | None = None,
    sparse: Any = None,
    conventions: Any = None,
    *,
    support: bool | None = None,
) -> Evaluator:
    """The cost core's pricing of ``problem`` as ``eval`` prices it, as an evaluator
    ``(problem, arch, nests, terms) -> NestCost`` (:func:`testy_model.model.cost.price`).

    The stage is ``eval``'s rule (:func:`testy_model.model.evaluate.layer_sparse_opts`): the
    sparse stage with ``sparse`` (Sparseloop ``sparse_optimizations``) when given, or, when no
    ``densities`` override the problem's (no TASD plan), with the engine's ``sparsity:`` support
    where it applies to an N:M or fixed-structured operand; otherwise the term stage with the
    ``terms`` the search passes (:func:`operand_terms`). ``support=False``: never the
    engine's support (the term stage unless ``sparse`` is given; ``None``: as above).
    ``conventions``: the counting conventions (``spec.conventions``; default ``timeloop``).
    Keywords (``counts``, ``tasd_values``, ``bounds``) pass through to ``price``.
    """
    from testy_model.model.cost import price
    from testy_model.model.evaluate import layer_sparse_opts
    from testy_model.spec.workload import Layer

    conv = Conventions.parse(conventions)
    layer = Layer(name=problem.name, problem=problem)
    opts = layer_sparse_opts(layer, arch, densities is None if support is None else support, sparse)
    if opts is not None:

        def sparse_stage(prob: Problem, aa: Any, nests: Any, terms: Any, **kw: Any) -> Any:
            return price(prob, aa, nests, sparse=opts, conventions=conv, **kw)

        return sparse_stage

    def term_stage(prob: Problem, aa: Any, nests: Any, terms: Any, **kw: Any) -> Any:
        return price(prob, aa, nests, terms=terms or {}, conventions=conv, **kw)

    return term_stage


def operand_terms(
    problem: Problem, arch: Architecture, densities: dict[str, Any] | None = None
) -> dict[str, list[Any]]:
    """Per input tensor, the list of terms the model prices (one shared mapping for all terms).

    ``densities`` (default: the problem's own densities) maps a tensor to a kept density (float),
    a :class:`Density` (``nm`` becomes an N:M term with its metadata bits), a model
    ``OperandTerm``, or a list of those (a TASD series whose terms stream through one mapping).
    Dense tensors are left out (the model treats them as one dense term).
    """
    from testy_model.model.cost import OperandTerm, nm_term

    src: dict[str, Any] = dict(densities) if densities is not None else dict(problem.densities)
    weight = problem.weight or problem.inputs[0]
    out: dict[str, list[Any]] = {}
    for t, v in src.items():
        if t not in problem.inputs:
            raise MappingError(
                f"density given for {t!r}; expected an input tensor of {list(problem.inputs)}"
            )
        support = arch.sparsity.A if t == weight else arch.sparsity.B
        items = v if isinstance(v, list) else [v]
        terms = []
        for x in items:
            if isinstance(x, Density):
                if x.kind == "dense":
                    continue
                if x.nm_pattern is not None:
                    terms.append(nm_term(x.nm_pattern, support=support))
                else:
                    terms.append(OperandTerm(density=x.value))
            elif isinstance(x, (int, float)):
                terms.append(OperandTerm(density=float(x)))
            else:
                terms.append(x)
        if terms:
            out[t] = terms
    return out


def _scale_md(terms: dict[str, list[Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Stored values and metadata bits per dense word, per tensor: Σ d_i and Σ d_i·b_i."""
    scale = {t: float(sum(np.max(x.density) for x in ts)) for t, ts in terms.items()}
    md = {
        t: float(sum(np.max(x.density) * np.max(x.metadata_bits) for x in ts))
        for t, ts in terms.items()
    }
    return scale, md


def to_nests(
    pi: ProblemIndex, ai: ArchIndex, cand: Candidates, factors: np.ndarray | None = None
) -> Any:
    """The model's ``LoopNests`` for the candidates: temporal/spatial (B,L,D) factors, order
    (B,L,D) positions (0 = innermost), keep (B,L,T), and the spatial loops' order and X/Y split
    as :func:`to_mapping` writes them (:func:`mesh_layout`). ``factors``: the candidates'
    :func:`factors_from_exps` when already computed."""
    from testy_model.model.nest import LoopNests

    L = len(ai.names)
    F = factors_from_exps(pi, cand.exps) if factors is None else factors
    order = cand.orders[cand.order_idx]
    spatial = np.ascontiguousarray(F[:, L:])
    spatial_order, split = mesh_layout(ai, spatial)
    return LoopNests(
        temporal=np.ascontiguousarray(F[:, :L]),
        spatial=spatial,
        order=order,
        keep=np.ascontiguousarray(cand.keep),
        spatial_order=spatial_order,
        split=split,
    )


def _score(cost: Any, objective: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(objective, edp, energy) arrays; invalid candidates score +inf."""
    edp = np.asarray(cost.edp, dtype=np.float64)
    energy = np.asarray(cost.energy_pj, dtype=np.float64)
    obj = {"edp": edp, "energy": energy, "latency": np.asarray(cost.cycles, dtype=np.float64)}[
        objective
    ]
    valid = np.asarray(getattr(cost, "valid", np.ones_like(obj, dtype=bool)), dtype=bool)
    bad = ~valid | ~np.isfinite(obj)
    return np.where(bad, np.inf, obj), np.where(bad, np.inf, edp), np.where(bad, np.inf, energy)


@dataclass
class _Ctx:
    problem: Problem
    arch: Architecture
    pi: ProblemIndex
    ai: ArchIndex
    orders: np.ndarray
    allowed: np.ndarray
    terms: dict[str, list[Any]]
    evaluator: Evaluator
    objective: str
    evaluated: int = 0
    #: what the evaluator gets as the architecture (the model's ArchArrays, built once, for the
    #: default evaluator; else the Architecture itself)
    model_arch: Any = None
    #: canonical loop orders (:func:`order_classes`), or None
    canon: np.ndarray | None = None

    def cost(
        self, cand: Candidates, factors: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score candidates in one model call (objective, edp, energy), all (B,)."""
        if len(cand) == 0:
            z = np.zeros(0)
            return z, z, z
        self.evaluated += len(cand)
        nests = to_nests(self.pi, self.ai, cand, factors)
        arch = self.arch if self.model_arch is None else self.model_arch
        return _score(self.evaluator(self.problem, arch, nests, self.terms), self.objective)

    def valid(self, cand: Candidates, factors: np.ndarray | None = None) -> np.ndarray:
        """(B,) bool: fan-out, mesh, constraints, capacity and allowed loop orders hold."""
        L = len(self.ai.names)
        F = factors_from_exps(self.pi, cand.exps) if factors is None else factors
        ok = valid_mask(self.pi, self.ai, F[:, :L], F[:, L:], cand.keep)
        return ok & np.all(self.allowed[np.arange(L), cand.order_idx], axis=-1)


# -- templates --------------------------------------------------------------------------------


def _stationary_tensor(problem: Problem, kind: str) -> str:
    inputs = problem.inputs
    if kind == "output":
        return problem.output
    if kind == "weight":
        return problem.weight or inputs[0]
    if kind == "input":
        return problem.activation or inputs[-1]
    raise MappingError(f"unknown template kind {kind!r}, expected weight, output or input")


def _order_index(orders: np.ndarray, first: Sequence[int], D: int) -> int:
    """Index of the canonical order that puts dims ``first`` innermost (declaration order)."""
    seq = [*first, *[d for d in range(D) if d not in first]]
    pos = np.zeros(D, dtype=np.int64)
    pos[seq] = np.arange(D)
    hit = np.nonzero(np.all(orders == pos, axis=1))[0]
    return int(hit[0]) if hit.size else 0


def _base_exps(pi: ProblemIndex, ai: ArchIndex) -> np.ndarray:
    """(2L, D, P) start point: fixed factors placed, the rest of every bound at the outermost
    temporal slot. Raises MappingError when a fixed factor does not divide its bound."""
    L, D, P = len(ai.names), len(pi.dims), pi.primes.size
    E = np.zeros((2 * L, D, P), dtype=np.int8)  # exponents <= 62: int8 keeps batches small
    E[0] = pi.exps
    for s, fixed in [(s, ai.t_fix[s]) for s in range(L)] + [(L + s, ai.s_fix[s]) for s in range(L)]:
        for d in range(D):
            f = int(fixed[d])
            if f <= 1:
                continue
            for p_i, p in enumerate(pi.primes):
                while f % int(p) == 0:
                    f //= int(p)
                    E[s, d, p_i] += 1
                    E[0, d, p_i] -= 1
            if f != 1 or np.any(E[0, d] < 0):
                raise MappingError(
                    f"constraint fixes factor {int(fixed[d])} for {pi.dims[d]!r} at level "
                    f"{ai.names[s % L]!r}, which does not divide the bound {int(pi.bounds[d])}",
                    key_path=f"levels[{ai.names[s % L]}].constraints",
                )
    return E


def _fill_trials(
    ctx: _Ctx, E: np.ndarray, slot: int, dims: Sequence[int], open_: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]] | None:
    """The trials of one :func:`_templates` fill step: every split of the remaining prime
    exponents of ``dims`` moved from the outermost slot into ``slot`` (every sub-vector of each
    dimension's remaining exponents, crossed over the dims: Π_d Π_p (e_dp + 1) trials; past 2,000
    the remaining dims are left to a further step). ``open_``: :func:`slot_mask`.

    Returns ``(trials (n, 2L, D, P), product of the moved factors (n,), smallest moved factor
    (n,), the dims left over)``, or None when nothing can move.
    """
    P = ctx.pi.primes.size
    dims = [d for d in dims if open_[slot, d] and open_[0, d] and E[0, d].sum() > 0]
    per_dim: list[np.ndarray] = []
    total = 1
    for d in dims:
        sub = np.indices(tuple(int(x) + 1 for x in E[0, d])).reshape(P, -1).T  # (n_d, P)
        if per_dim and total * len(sub) > 2000:
            break
        total *= len(sub)
        per_dim.append(sub)
    if not per_dim:
        return None
    grid = np.indices(tuple(len(x) for x in per_dim)).reshape(len(per_dim), -1)
    n = grid.shape[1]
    trial = np.repeat(E[None], n, axis=0)
    moved = np.ones((n, len(per_dim)))
    primes = ctx.pi.primes.astype(np.float64)
    for j, d in enumerate(dims[: len(per_dim)]):
        take = per_dim[j][grid[j]]  # (n, P)
        trial[:, 0, d] -= take
        trial[:, slot, d] += take
        moved[:, j] = np.prod(primes**take, axis=-1)
    return trial, moved.prod(axis=1), moved.min(axis=1), dims[len(per_dim) :]


def _template_setup(ctx: _Ctx, kind: str) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """(order index per level, keep (L, T), dims relevant / irrelevant to the stationary tensor)
    of the ``kind`` template (see :func:`_templates`)."""
    pi, ai = ctx.pi, ctx.ai
    L, D = len(ai.names), len(pi.dims)
    t = pi.tensors.index(_stationary_tensor(ctx.problem, kind))
    rel = [d for d in range(D) if pi.relevant[t, d]]
    irr = [d for d in range(D) if not pi.relevant[t, d]]
    o = _order_index(ctx.orders, irr, D)
    oi = np.array(
        [o if ctx.allowed[lv, o] else int(np.argmax(ctx.allowed[lv])) for lv in range(L)],
        dtype=np.int64,
    )
    # keep: must-keeps, then the stationary tensor, then the others, while one word of each fits
    keep = ai.keep_must.copy()
    for lv in range(1, L):
        for u in [t, *[u for u in range(len(pi.tensors)) if u != t]]:
            if ai.keep_may[lv, u] and not keep[lv, u]:
                trial = keep[lv].copy()
                trial[u] = True
                if np.sum(trial * ai.word_bits[lv]) <= ai.capacity[lv] * (1 + 1e-9):
                    keep[lv] = trial
    return oi, keep, rel, irr


def _templates(ctx: _Ctx, kinds: Sequence[str] = ("weight", "output", "input")) -> Candidates:
    """Exponent-form templates, one per kind: the ``kind`` tensor stays in the innermost level
    that keeps it.

    Construction: spatial fan-outs (innermost first) are filled with the stationary tensor's
    relevant dims, then any dim; temporal levels from the innermost outwards are filled with the
    stationary tensor's relevant dims, then its irrelevant dims (the reuse loops); every level
    orders the dims irrelevant to the stationary tensor innermost, so its tile is reused across
    them; the remainder of each bound stays at the outermost level.

    Each fill step moves as much of its dims from the outermost slot into the step's slot as
    stays valid: of the trials of :func:`_fill_trials`, the valid one with the largest product
    of moved factors wins, ties going to the most balanced (largest smallest factor), then the
    first generated. The kinds run side by side: one validity check per step for all of them.
    """
    ai = ctx.ai
    L = len(ai.names)
    setup = [_template_setup(ctx, k) for k in kinds]
    open_ = slot_mask(ai)
    E = [_base_exps(ctx.pi, ai) for _ in kinds]
    steps: list[tuple[int, int]] = []  # (slot, 0 = relevant dims / 1 = irrelevant dims)
    for lv in reversed(range(L)):
        if ai.fanout[lv] > 1:
            steps += [(L + lv, 0), (L + lv, 1)]
    for lv in reversed(range(1, L)):
        steps += [(lv, 0), (lv, 1)]
    for slot, which in steps:
        pending = {k: setup[k][2 + which] for k in range(len(kinds))}
        while pending:
            trials = {k: _fill_trials(ctx, E[k], slot, dims, open_) for k, dims in pending.items()}
            live = [k for k, tr in trials.items() if tr is not None]
            if not live:
                break
            sizes = [trials[k][0].shape[0] for k in live]  # type: ignore[index]
            ok_all = ctx.valid(
                Candidates(
                    np.concatenate([trials[k][0] for k in live]),  # type: ignore[index]
                    np.repeat(np.stack([setup[k][0] for k in live]), sizes, axis=0),
                    np.repeat(np.stack([setup[k][1] for k in live]), sizes, axis=0),
                    ctx.orders,
                )
            )
            pending = {}
            for k, ok in zip(live, np.split(ok_all, np.cumsum(sizes)[:-1]), strict=True):
                trial, prod, low, rest = trials[k]  # type: ignore[misc]
                if ok.any():
                    score = np.where(ok, prod, -1.0)
                    E[k] = trial[np.lexsort((np.arange(ok.size), -low, -score))[0]]
                if rest:
                    pending[k] = rest
    return Candidates(
        np.stack(E),
        np.stack([s[0] for s in setup]),
        np.stack([s[1] for s in setup]),
        ctx.orders,
    )


def _template_candidate(ctx: _Ctx, kind: str) -> Candidates:
    """The template of one ``kind`` (see :func:`_templates`)."""
    return _templates(ctx, (kind,))


# -- search ----------------------------------------------------------------------------------


def _hash(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash per int64 row (fixed odd random weights, wrapping sums), for fast
    de-duplication; a collision (probability ~ n^2 / 2^64) only drops one candidate."""
    w = _hash_weights(rows.shape[1])
    with np.errstate(over="ignore"):
        return (rows * w).sum(axis=1)


@functools.lru_cache(maxsize=64)
def _hash_weights(width: int) -> np.ndarray:
    """The ``width`` fixed odd random int64 weights of :func:`_hash` (seeded, read-only)."""
    w = np.random.default_rng(20251125).integers(1, 2**62, size=width) | 1
    w.setflags(write=False)
    return w


def _unique_first(rows: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of each distinct row."""
    _, idx = np.unique(_hash(rows), return_index=True)
    return np.sort(idx)


def _rows(cand: Candidates) -> np.ndarray:
    """One int64 row per candidate (exponents, order indices, keep bits), for de-duplication."""
    n = len(cand)
    return np.concatenate(
        [
            cand.exps.reshape(n, int(np.prod(cand.exps.shape[1:]))),
            cand.order_idx,
            cand.keep.reshape(n, int(np.prod(cand.keep.shape[1:]))).astype(np.int64),
        ],
        axis=1,
    )


def _cand_hash(cand: Candidates) -> np.ndarray:
    """``_hash(_rows(cand))`` without building the rows: the weighted sum is split into its
    exponent, order and keep parts (same wrapping int64 arithmetic, same value)."""
    n = len(cand)
    ne = int(np.prod(cand.exps.shape[1:]))
    no = cand.order_idx.shape[1]
    nk = int(np.prod(cand.keep.shape[1:]))
    w = _hash_weights(ne + no + nk)
    with np.errstate(over="ignore"):
        h = (cand.exps.reshape(n, ne) * w[:ne]).sum(axis=1)
        h += (cand.order_idx * w[ne : ne + no]).sum(axis=1)
        h += (cand.keep.reshape(n, nk) * w[ne + no :]).sum(axis=1)
    return h


def _concat(parts: Sequence[Candidates], orders: np.ndarray) -> Candidates:
    return Candidates(
        np.concatenate([p.exps for p in parts]),
        np.concatenate([p.order_idx for p in parts]),
        np.concatenate([p.keep for p in parts]),
        orders,
    )


def _exhaustive(ctx: _Ctx) -> Candidates:
    """Every valid (factorisation, allowed order per level, keep/bypass choice), deduplicated
    where a level has at most one non-unit loop (its order cannot matter)."""
    L = len(ctx.ai.names)
    E = enumerate_factorisations(ctx.pi, ctx.ai).astype(np.int8)
    keeps = keep_options(ctx.pi, ctx.ai)
    per_level = [np.nonzero(ctx.allowed[lv])[0] for lv in range(L)]
    combos = np.array(np.meshgrid(*per_level, indexing="ij")).reshape(L, -1).T
    n_f, n_o = E.shape[0], combos.shape[0]
    exps = np.repeat(E, n_o, axis=0)
    oi = np.tile(combos, (n_f, 1))
    # canonicalise: where a level has <= 1 non-unit temporal loop, its order is irrelevant
    F = factors_from_exps(ctx.pi, exps)[:, :L]
    trivial = np.sum(F > 1, axis=-1) <= 1
    first = np.array([p[0] for p in per_level])
    oi = np.where(trivial, first, oi)
    _, idx = np.unique(
        np.concatenate([exps.reshape(len(exps), -1), oi], axis=1), axis=0, return_index=True
    )
    idx = np.sort(idx)
    exps, oi = exps[idx], oi[idx]
    n_k = keeps.shape[0]
    cand = Candidates(
        np.repeat(exps, n_k, axis=0),
        np.repeat(oi, n_k, axis=0),
        np.tile(keeps, (len(exps), 1, 1)),
        ctx.orders,
    )
    return cand.take(np.nonzero(ctx.valid(cand))[0])


def _moves(ctx: _Ctx) -> tuple[np.ndarray, ...]:
    """All single-prime moves (from slot a, to slot b, dim d, prime p), each as an (M,) array,
    then the distinct (a, b, d) of the whole-factor jumps, as three (J,) arrays."""
    open_ = slot_mask(ctx.ai)
    S, D = open_.shape
    P = ctx.pi.primes.size
    a, b, d, p = np.meshgrid(np.arange(S), np.arange(S), np.arange(D), np.arange(P), indexing="ij")
    a, b, d, p = a.ravel(), b.ravel(), d.ravel(), p.ravel()
    keep = (a != b) & open_[a, d] & open_[b, d] & (ctx.pi.exps[d, p] > 0)
    a, b, d, p = a[keep], b[keep], d[keep], p[keep]
    # the distinct (a, b, d) triples (in hash order): the jump moves
    first = np.unique(_hash(np.stack([a, b, d], axis=1)), return_index=True)[1]
    return a, b, d, p, a[first], b[first], d[first]


def _neighbours(ctx: _Ctx, beam: Candidates, moves: tuple[np.ndarray, ...]) -> Candidates:
    """Every candidate one move away from a beam member: one prime factor (or its square) of one
    dimension moved between slots; the whole factor of one dimension at one slot moved to
    another (a jump over plateaus); one level's loop order changed; one tensor's keep/bypass
    toggled at one level."""
    a, b, d, p, ja, jb, jd = moves
    K, M = len(beam), a.size
    parts = []
    if M:
        k = np.repeat(np.arange(K), M)
        m = np.tile(np.arange(M), K)
        ok = beam.exps[k, a[m], d[m], p[m]] > 0
        k, m = k[ok], m[ok]
        exps = beam.exps[k].copy()
        r = np.arange(k.size)
        exps[r, a[m], d[m], p[m]] -= 1
        exps[r, b[m], d[m], p[m]] += 1
        parts.append(Candidates(exps, beam.order_idx[k], beam.keep[k], ctx.orders))
        # the same moves with the prime squared (where two of it are there to move)
        two = exps[r, a[m], d[m], p[m]] > 0
        exps2 = exps[two]
        r2 = np.arange(exps2.shape[0])
        exps2[r2, a[m][two], d[m][two], p[m][two]] -= 1
        exps2[r2, b[m][two], d[m][two], p[m][two]] += 1
        parts.append(Candidates(exps2, beam.order_idx[k[two]], beam.keep[k[two]], ctx.orders))
        # jumps: all of dimension d's factor at slot a moves to slot b (one per (a, b, d))
        J = ja.size
        k = np.repeat(np.arange(K), J)
        m = np.tile(np.arange(J), K)
        moved = beam.exps[k, ja[m], jd[m]]  # (n, P)
        ok = (moved.sum(axis=1) > 1) & (ctx.ai.t_fix.shape[0] > 0)
        k, m, moved = k[ok], m[ok], moved[ok]
        exps = beam.exps[k].copy()
        r = np.arange(k.size)
        exps[r, ja[m], jd[m]] -= moved
        exps[r, jb[m], jd[m]] += moved
        parts.append(Candidates(exps, beam.order_idx[k], beam.keep[k], ctx.orders))
    lv, o = np.nonzero(ctx.allowed)
    k = np.repeat(np.arange(K), lv.size)
    j = np.tile(np.arange(lv.size), K)
    oi = beam.order_idx[k].copy()
    oi[np.arange(k.size), lv[j]] = o[j]
    parts.append(Candidates(beam.exps[k], oi, beam.keep[k], ctx.orders))
    # keep/bypass toggles of one tensor at one level
    lv, t = np.nonzero(ctx.ai.keep_may & ~ctx.ai.keep_must)
    if lv.size:
        k = np.repeat(np.arange(K), lv.size)
        j = np.tile(np.arange(lv.size), K)
        keep = beam.keep[k].copy()
        r = np.arange(k.size)
        keep[r, lv[j], t[j]] = ~keep[r, lv[j], t[j]]
        parts.append(Candidates(beam.exps[k], beam.order_idx[k], keep, ctx.orders))
    return _concat(parts, ctx.orders)


def _lead(nb: Candidates, cur: Candidates, compound: int) -> np.ndarray:
    """(len(nb),) bool: the neighbour descends from one of the ``compound`` best beam members
    (identified by its keep choice and order, which a factor move leaves unchanged)."""
    if compound <= 0 or len(cur) == 0:
        return np.zeros(len(nb), dtype=bool)

    def key(c: Candidates) -> np.ndarray:
        n = len(c)
        keep = c.keep.reshape(n, int(np.prod(c.keep.shape[1:]))).astype(np.int64)
        return _hash(np.concatenate([c.order_idx, keep], axis=1))

    lead = cur.take(np.arange(min(compound, len(cur))))
    return np.isin(key(nb), key(lead))


def _repair_keep(ctx: _Ctx, bad: Candidates, F: np.ndarray) -> tuple[Candidates, np.ndarray]:
    """Compound moves: each over-capacity neighbour (fan-out, mesh and constraints fine) with one
    tensor's keep/bypass toggled at one level (a bigger tile fits once some tensor is bypassed,
    or kept elsewhere); the ones that then fit, and their factors (``F``: those of ``bad``)."""
    lv, t = np.nonzero(ctx.ai.keep_may & ~ctx.ai.keep_must)
    empty = bad.take(np.zeros(0, dtype=np.int64))
    if lv.size == 0 or len(bad) == 0:
        return empty, F[:0]
    L = len(ctx.ai.names)
    ok = structure_mask(ctx.pi, ctx.ai, F[:, :L], F[:, L:])
    ok &= np.all(ctx.allowed[np.arange(L), bad.order_idx], axis=-1)
    bad, F = bad.take(np.nonzero(ok)[0]), F[ok]
    if len(bad) == 0:
        return empty, F[:0]
    k = np.repeat(np.arange(len(bad)), lv.size)
    j = np.tile(np.arange(lv.size), len(bad))
    keep = bad.keep[k].copy()
    r = np.arange(k.size)
    keep[r, lv[j], t[j]] = ~keep[r, lv[j], t[j]]
    out = Candidates(bad.exps[k], bad.order_idx[k], keep, ctx.orders)
    fits = capacity_mask(ctx.pi, ctx.ai, F[k, :L], F[k, L:], keep)
    return out.take(np.nonzero(fits)[0]), F[k[fits]]


def _random_candidates(ctx: _Ctx, n: int, seed: int) -> Candidates:
    """``n`` seeded random factorisations: each prime power of each dim spread uniformly over
    its open slots (multinomial), with uniformly random allowed orders; invalid ones dropped."""
    rng = np.random.default_rng(seed)
    pi, ai = ctx.pi, ctx.ai
    L = len(ai.names)
    base = _base_exps(pi, ai)
    open_ = slot_mask(ai)
    exps = np.repeat(base[None], n, axis=0)
    for d in range(len(pi.dims)):
        slots = np.nonzero(open_[:, d])[0]
        for p in range(pi.primes.size):
            e = int(base[0, d, p])
            if e == 0 or slots.size == 0:
                continue
            exps[:, 0, d, p] -= e
            draw = rng.multinomial(e, np.full(slots.size, 1.0 / slots.size), size=n)
            exps[:, slots, d, p] += draw
    oi = np.stack([rng.choice(np.nonzero(ctx.allowed[lv])[0], size=n) for lv in range(L)], axis=1)
    keeps = keep_options(pi, ai)
    keep = keeps[rng.integers(0, len(keeps), size=n)]
    cand = Candidates(exps, oi.astype(np.int64), keep, ctx.orders)
    return cand.take(np.nonzero(ctx.valid(cand))[0])


def _best(scores: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Candidate indices sorted best first: objective, then EDP, energy, position."""
    obj, edp, energy = scores
    return np.lexsort((np.arange(obj.size), energy, edp, obj))


def _select(
    cand: Candidates, scores: tuple[np.ndarray, ...], beam: int, per_keep: int
) -> np.ndarray:
    """Indices of the ``beam`` best candidates, at most ``per_keep`` per keep/bypass choice (so
    alternative bypass structures stay in the beam while their factors are tuned)."""
    order = _best(scores)
    order = order[np.isfinite(scores[0][order])]
    if order.size == 0:  # no candidate has a finite cost
        return order
    # equal (objective, EDP, energy) = equivalent for the model: keep the first of each
    trip = np.stack([s[order] for s in scores], axis=1)
    same = np.r_[False, np.all(np.isclose(trip[1:], trip[:-1], rtol=1e-12, atol=0), axis=1)]
    order = order[~same]
    _, group = np.unique(
        _hash(cand.keep.reshape(len(cand), int(np.prod(cand.keep.shape[1:]))).astype(np.int64)),
        return_inverse=True,
    )
    group = group.ravel()[order]
    # rank of each candidate within its group, in best-first order
    first = np.argsort(group, kind="stable")
    g_sorted = group[first]
    starts = np.r_[0, np.nonzero(np.diff(g_sorted))[0] + 1]
    rank = np.empty_like(group)
    rank[first] = np.arange(group.size) - np.repeat(starts, np.diff(np.r_[starts, group.size]))
    return order[rank < per_keep][:beam]


def _keep_variants(ctx: _Ctx, cand: Candidates) -> Candidates:
    """Each candidate under every keep/bypass choice of :func:`keep_options` (valid ones)."""
    keeps = keep_options(ctx.pi, ctx.ai)
    n, k = len(cand), len(keeps)
    out = Candidates(
        np.repeat(cand.exps, k, axis=0),
        np.repeat(cand.order_idx, k, axis=0),
        np.tile(keeps, (n, 1, 1)),
        ctx.orders,
    )
    return out.take(np.nonzero(ctx.valid(out))[0])


def _canonical(ctx: _Ctx, cand: Candidates) -> Candidates:
    """The candidates with each level's loop order replaced by its canonical equivalent
    (:func:`canonical_order_idx`: same relative order of the non-unit loops, same costs)."""
    if ctx.canon is None or len(cand) == 0:
        return cand
    L = len(ctx.ai.names)
    nonunit = np.any(cand.exps[:, :L] > 0, axis=-1)  # (B, L, D): temporal factor above 1
    oi = canonical_order_idx(ctx.canon, nonunit, cand.order_idx)
    return Candidates(cand.exps, oi, cand.keep, cand.orders)


def _in_sorted(x: np.ndarray, sorted_: np.ndarray) -> np.ndarray:
    """(len(x),) bool: ``x`` occurs in the ascending array ``sorted_`` (binary search)."""
    if sorted_.size == 0:
        return np.zeros(x.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_, x), sorted_.size - 1)
    return sorted_[pos] == x


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
) -> tuple[Candidates, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The beam search of :func:`find_mapping` (module docstring, step 3): the final beam,
    best first, and its scores. ``collect``: a list that receives every costed batch.
    ``skip_repeats=False`` turns off the two savings (canonical identification, expanding a
    member once), for tests that they do not change the result."""
    canon = _canonical if skip_repeats else (lambda c, x: x)
    tmpl = _templates(ctx)
    starts = [tmpl, _keep_variants(ctx, tmpl), _random_candidates(ctx, n_random, seed)]
    pool = _concat(starts, ctx.orders)
    ph = _cand_hash(canon(ctx, pool))
    first = np.sort(np.unique(ph, return_index=True)[1])
    pool, ph = pool.take(first), ph[first]
    scores = ctx.cost(pool)
    if collect is not None:
        collect.append(pool)
    seen = np.sort(ph)  # kept sorted for _in_sorted
    order = _select(pool, scores, beam, per_keep)
    cur, cur_s, cur_h = pool.take(order), tuple(s[order] for s in scores), ph[order]
    moves = _moves(ctx)
    stale = 0
    # beam members already expanded (their valid neighbours are all in `seen`), and those
    # expanded while leading (their over-capacity neighbours were offered for repair too)
    done = np.zeros(0, dtype=np.int64)
    done_lead = np.zeros(0, dtype=np.int64)
    for _ in range(max_rounds):
        top = np.arange(len(cur)) < compound
        grow = ~np.isin(cur_h, done) | (top & ~np.isin(cur_h, done_lead)) | (not skip_repeats)
        done = np.concatenate([done, cur_h[grow]])
        done_lead = np.concatenate([done_lead, cur_h[grow & top]])
        nb = _neighbours(ctx, cur.take(np.nonzero(grow)[0]), moves)
        # candidates are identified by their canonical form (model-equivalent loop orders
        # collapse to one; the first generated keeps its own order, so that a later factor
        # move can make use of it)
        h = _cand_hash(canon(ctx, nb))
        _, idx = np.unique(h, return_index=True)
        idx = np.sort(idx)
        idx = idx[~_in_sorted(h[idx], seen)]  # only unseen candidates are checked and costed
        nb, h = nb.take(idx), h[idx]
        F = factors_from_exps(ctx.pi, nb.exps)
        ok = ctx.valid(nb, F)
        lead = ~ok & _lead(nb, cur, compound)
        repaired, rF = _repair_keep(ctx, nb.take(np.nonzero(lead)[0]), F[lead])
        rh = _cand_hash(canon(ctx, repaired))
        _, ridx = np.unique(rh, return_index=True)
        ridx = np.sort(ridx)
        ridx = ridx[~_in_sorted(rh[ridx], seen) & ~np.isin(rh[ridx], h[ok])]
        # invalid candidates already tried for repair join `seen`; other invalid ones may be
        # repaired later, once they come from a leading beam member
        seen = np.sort(np.concatenate([seen, h[ok | lead], rh[ridx]]))
        nb = _concat([nb.take(np.nonzero(ok)[0]), repaired.take(ridx)], ctx.orders)
        if len(nb) == 0:
            break  # early exit: the neighbourhood of the beam is exhausted
        nb_s = ctx.cost(nb, np.concatenate([F[ok], rF[ridx]]))
        if collect is not None:
            collect.append(nb)
        both = _concat([cur, nb], ctx.orders)
        both_s = tuple(np.concatenate([x, y]) for x, y in zip(cur_s, nb_s, strict=True))
        both_h = np.concatenate([cur_h, h[ok], rh[ridx]])
        order = _select(both, both_s, beam, per_keep)
        improved = both_s[0][order[0]] < cur_s[0][0] * (1 - 1e-12)
        cur, cur_s, cur_h = both.take(order), tuple(s[order] for s in both_s), both_h[order]
        stale = 0 if improved else stale + 1
        if stale >= patience:
            break  # early exit: `patience` rounds found nothing better than the best so far
    return cur, cur_s


# -- public API -------------------------------------------------------------------------------

_CACHE: dict[tuple, MappingResult] = {}


def clear_cache() -> None:
    """Forget every cached search result."""
    _CACHE.clear()


def cache_size() -> int:
    """Number of cached search results."""
    return len(_CACHE)


def arch_hash(arch: Architecture) -> str:
    """A stable digest of everything in ``arch`` (SHA-1 of its canonical repr)."""
    return hashlib.sha1(repr(arch).encode()).hexdigest()


def _problem_key(problem: Problem) -> tuple:
    """The shape of ``problem``: dims, bounds, projections, coefficients (not its name)."""
    return (
        problem.dimensions,
        tuple(problem.bounds[d] for d in problem.dimensions),
        tuple((ds.name, ds.projection, ds.read_write) for ds in problem.data_spaces),
        tuple(sorted(problem.coefficients.items())),
        tuple(sorted(problem.datawidths.items())),
        tuple(sorted((t, repr(d)) for t, d in problem.densities.items())),
    )


_CANON: dict[tuple, np.ndarray | None] = {}


def _order_classes(orders: np.ndarray, allowed: np.ndarray) -> np.ndarray | None:
    """:func:`order_classes`, memoised on the (orders, allowed) arrays (layers of one network
    share them), at most 256 entries."""
    key = (orders.shape, orders.tobytes(), allowed.shape, allowed.tobytes())
    if key not in _CANON:
        if len(_CANON) >= 256:
            _CANON.clear()
        _CANON[key] = order_classes(orders, allowed)
    return _CANON[key]


def _context(
    problem: Problem,
    arch: Architecture,
    objective: str,
    constraints: dict[str, LevelConstraints] | None,
    densities: dict[str, Any] | None,
    evaluator: Evaluator | None,
    sparse: Any = None,
    conventions: Any = None,
) -> _Ctx:
    if objective not in _OBJECTIVES:
        raise MappingError(f"unknown objective {objective!r}, expected one of {list(_OBJECTIVES)}")
    terms = operand_terms(problem, arch, densities)
    pi = index_problem(problem, *_scale_md(terms))
    ai = index_arch(arch, problem, pi, constraints, sparse_opts=sparse)
    try:
        check_feasible(pi, ai, arch)
    except MappingError:
        # metadata counted with the data overflows a level (e.g. a full fixed-slot series in a
        # one-word register): hold it in the levels' separate metadata storage, the model's rule
        ai = index_arch(arch, problem, pi, constraints, md_apart=True, sparse_opts=sparse)
        check_feasible(pi, ai, arch)
    orders = canonical_orders(pi, ai.perm)
    allowed = allowed_orders(pi, ai, orders)
    model_arch = None
    if evaluator is None:
        from testy_model.model.arrays import arch_arrays

        model_arch = arch_arrays(arch)
    return _Ctx(
        problem=problem,
        arch=arch,
        pi=pi,
        ai=ai,
        orders=orders,
        allowed=allowed,
        terms=terms,
        evaluator=evaluator
        or layer_evaluator(problem, arch, densities, sparse=sparse, conventions=conventions),
        objective=objective,
        model_arch=model_arch,
        canon=_order_classes(orders, allowed),
    )


def to_mapping(ctx_or_pi: Any, arch: Architecture, cand: Candidates, i: int = 0) -> Mapping:
    """The :class:`Mapping` of candidate ``i`` (permutations inner to outer, as Timeloop)."""
    pi, ai = ctx_or_pi.pi, ctx_or_pi.ai
    L = len(ai.names)
    F = factors_from_exps(pi, cand.exps[i])
    order = cand.orders[cand.order_idx[i]]
    s_order, s_split = mesh_layout(ai, F[None, L:])  # the layout to_nests prices
    levels = []
    for lv in range(L):
        temporal = {d: int(F[lv, j]) for j, d in enumerate(pi.dims) if F[lv, j] > 1}
        perm = tuple(pi.dims[j] for j in np.argsort(order[lv], kind="stable"))
        spatial = {d: int(F[L + lv, j]) for j, d in enumerate(pi.dims) if F[L + lv, j] > 1}
        used = [j for j in np.argsort(s_order[0, lv], kind="stable") if F[L + lv, j] > 1]
        sp_dims = [pi.dims[j] for j in used]
        split = int(s_split[0, lv]) if spatial else None
        keep = tuple(t for t, k in zip(pi.tensors, cand.keep[i, lv], strict=True) if k)
        bypass = tuple(t for t in pi.tensors if t not in keep)
        levels.append(
            LevelMapping(
                target=ai.names[lv],
                temporal=temporal,
                temporal_permutation=perm,
                spatial=spatial,
                spatial_permutation=tuple(sp_dims),
                split=split,
                keep=keep,
                bypass=bypass,
            )
        )
    return Mapping(levels=tuple(levels), source="testy_model.mapper")


def template_mapping(
    problem: Problem,
    arch: Architecture,
    kind: TemplateKind,
    *,
    densities: dict[str, Any] | None = None,
    constraints: dict[str, LevelConstraints] | None = None,
) -> Mapping:
    """A weight-, output- or input-stationary mapping (``kind`` = ``weight|output|input``) that
    fits ``arch``; see :func:`_template_candidate` for the construction. No cost model needed."""
    ctx = _context(problem, arch, "edp", constraints, densities, evaluator=lambda *a: None)
    return to_mapping(ctx, arch, _template_candidate(ctx, kind))


def evaluate_template(
    problem: Problem,
    arch: Architecture,
    kind: TemplateKind,
    *,
    objective: Objective = "edp",
    densities: dict[str, Any] | None = None,
    evaluator: Evaluator | None = None,
    sparse: Any = None,
    conventions: Any = None,
) -> MappingResult:
    """The template mapping of ``kind`` and its cost (``method = "template:<kind>"``; pricing as
    in :func:`find_mapping`)."""
    t0 = time.perf_counter()
    ctx = _context(problem, arch, objective, None, densities, evaluator, sparse, conventions)
    cand = _template_candidate(ctx, kind)
    ctx.evaluated = 1
    return _result(ctx, cand, t0, f"template:{kind}")


def _result(ctx: _Ctx, cand: Candidates, t0: float, method: str) -> MappingResult:
    arch = ctx.arch if ctx.model_arch is None else ctx.model_arch
    cost = ctx.evaluator(
        ctx.problem, arch, to_nests(ctx.pi, ctx.ai, cand.take(np.array([0]))), ctx.terms
    )
    return MappingResult(
        mapping=to_mapping(ctx, ctx.arch, cand, 0),
        cycles=float(np.asarray(cost.cycles)[0]),
        energy_pj=float(np.asarray(cost.energy_pj)[0]),
        edp=float(np.asarray(cost.edp)[0]),
        objective=ctx.objective,
        evaluated=ctx.evaluated,
        search_s=time.perf_counter() - t0,
        method=method,
    )


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
    size = space_size(ctx.pi, ctx.ai, len(ctx.orders)) * len(keep_options(ctx.pi, ctx.ai))
    if size <= exhaustive_limit:
        cand = _exhaustive(ctx)
        parts = [
            ctx.cost(cand.take(np.arange(i, min(i + _CHUNK, len(cand)))))
            for i in range(0, len(cand), _CHUNK)
        ]
        scores = tuple(np.concatenate([p[k] for p in parts]) for k in range(3)) if parts else None
        method = "exhaustive"
    else:
        cand, scores = _beam_search(ctx, beam, n_random, max_rounds, seed, per_keep, patience)
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


# -- sweeps (issue 8) -----------------------------------------------------------------------------


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


def _reorder(cand: Candidates, orders: np.ndarray) -> Candidates:
    """``cand`` with its order indices re-expressed as rows of ``orders`` (same loop orders)."""
    if cand.orders.shape == orders.shape and np.array_equal(cand.orders, orders):
        return Candidates(cand.exps, cand.order_idx, cand.keep, orders)
    hit = np.all(cand.orders[:, None, :] == orders[None, :, :], axis=-1)  # (O_c, O)
    if not hit.any(axis=1).all():
        raise MappingError("design points order their loops differently; expected one structure")
    return Candidates(cand.exps, np.argmax(hit, axis=1)[cand.order_idx], cand.keep, orders)


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
    for _key, pts, tm, ok in plan:
        cols = np.concatenate([tm, n_tmpl + ok])
        n_pairs[pts] = cols.size
        if cols.size:
            chosen[pts] = _price_features(
                problem, ctx0, nests, aa, pts, cols, objective, max_pairs, conventions
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
