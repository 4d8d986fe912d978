"""One search's context: the problem and architecture as arrays, the objective, and the
cost core pricing candidates exactly as ``eval`` prices the layer (:func:`layer_evaluator`)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from testy_model.errors import MappingError
from testy_model.mapper.candidates import (
    Candidates,
    MappingResult,
    _row_classes,
    _scale_md,
    operand_terms,
    to_mapping,
    to_nests,
)
from testy_model.mapper.fit import (
    _all_last,
    capacity_fits,
    capacity_mask,
    check_feasible,
    structure_mask,
)
from testy_model.mapper.space import (
    ArchIndex,
    ProblemIndex,
    allowed_orders,
    canonical_orders,
    factors_from_exps,
    index_arch,
    index_problem,
    keep_options,
    order_classes,
    tile_extents,
    tile_words,
)
from testy_model.spec.arch import Architecture, LevelConstraints
from testy_model.spec.conventions import Conventions
from testy_model.spec.workload import Density, Problem

Objective = Literal["edp", "energy", "latency"]


TemplateKind = Literal["weight", "output", "input"]


#: ``evaluator(problem, arch, nests, terms) -> cost`` with ``cycles``, ``energy_pj``, ``edp``
#: and ``valid`` arrays of shape (B,) (``terms`` as from :func:`operand_terms`). Defaults to the
#: model's ``evaluate_terms``.
Evaluator = Callable[..., Any]


_OBJECTIVES: tuple[str, ...] = ("edp", "energy", "latency")


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
    #: every costed batch and its (cycles, energy, edp) (:func:`_result` reads the winner's)
    priced: list[tuple[Candidates, np.ndarray]] = field(default_factory=list)
    #: :meth:`keep_choices`, once built
    keeps: np.ndarray | None = None

    def keep_choices(self) -> np.ndarray:
        """:func:`keep_options` of ``pi`` and ``ai``, built on first use (read-only)."""
        if self.keeps is None:
            self.keeps = keep_options(self.pi, self.ai)
            self.keeps.setflags(write=False)
        return self.keeps

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
        cost = self.evaluator(self.problem, arch, nests, self.terms)
        totals = np.stack(
            [np.asarray(getattr(cost, k), dtype=np.float64) for k in ("cycles", "energy_pj", "edp")]
        )
        if totals.shape == (3, len(cand)):
            self.priced.append((cand, totals))
        return _score(cost, self.objective)

    def valid(self, cand: Candidates, factors: np.ndarray | None = None) -> np.ndarray:
        """(B,) bool: fan-out, mesh, constraints, capacity and allowed loop orders hold."""
        return self.valid_parts(cand, factors)[1]

    def valid_parts(
        self, cand: Candidates, factors: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(structure, valid)``, both (B,) bool: :func:`structure_mask` and allowed loop
        orders hold; and :func:`capacity_mask` too (:meth:`valid`)."""
        L = len(self.ai.names)
        F = factors_from_exps(self.pi, cand.exps) if factors is None else factors
        struct = structure_mask(self.pi, self.ai, F[:, :L], F[:, L:])
        struct &= self.orders_allowed(cand.order_idx)
        ok = struct.copy()
        if ok.any():
            rows = np.nonzero(ok)[0]
            Fr, keep = F.take(rows, axis=0), cand.keep.take(rows, axis=0)
            ok[rows] = capacity_mask(self.pi, self.ai, Fr[:, :L], Fr[:, L:], keep)
        return struct, ok

    def orders_allowed(self, order_idx: np.ndarray) -> np.ndarray:
        """(B,) bool: every level's loop order of the (B, L) ``order_idx`` is allowed there
        (``allowed[l, order_idx[:, l]]`` for all l, gathered flat)."""
        L, n_o = self.allowed.shape
        return _all_last(self.allowed.reshape(-1).take(order_idx + np.arange(L) * n_o))

    def valid_shared(
        self, cand: Candidates, e_hash: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`valid_parts` with the factors, the structure test and the tile words
        computed once per distinct exponent row (rows that differ only in loop orders or keep
        bits share them; :func:`_row_classes` by ``e_hash``, the rows' exponent hashes). Every
        test is row-wise: the same results.

        Returns ``(structure, valid, inv, factors, words)``: (B,) bool each; (B,) each row's
        class; per class its (U, 2L, D) :func:`factors_from_exps` and (U, L, T)
        :func:`tile_words` (zero where the structure test fails): row i's are
        ``factors[inv[i]]`` and ``words[inv[i]]``."""
        first, inv = _row_classes(cand.exps, e_hash)
        L = len(self.ai.names)
        Fu = factors_from_exps(self.pi, cand.exps.take(first, axis=0))
        su = structure_mask(self.pi, self.ai, Fu[:, :L], Fu[:, L:])
        struct = su.take(inv) & self.orders_allowed(cand.order_idx)
        ok = struct.copy()
        words = np.zeros((len(first), L, len(self.pi.tensors)))
        if ok.any():
            rows = np.nonzero(ok)[0]
            ut = np.nonzero(su)[0]  # the tile words of the distinct rows that may fit
            words[ut] = tile_words(self.pi, tile_extents(Fu[ut, :L], Fu[ut, L:]))
            w_rows, k_rows = words.take(inv[rows], axis=0), cand.keep.take(rows, axis=0)
            ok[rows] = capacity_fits(self.pi, self.ai, w_rows, k_rows)
        return struct, ok, inv, Fu, words


def arch_hash(arch: Architecture) -> str:
    """A stable digest of everything in ``arch`` (SHA-1 of its canonical repr)."""
    return hashlib.sha1(repr(arch).encode()).hexdigest()


def _problem_key(problem: Problem) -> tuple:
    """The shape of ``problem`` (:meth:`Problem.shape_key`, not its name) and, last, its
    densities."""
    return (problem.shape_key(), tuple(sorted((t, repr(d)) for t, d in problem.densities.items())))


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


#: :func:`_model_arch` per Architecture (keyed by identity, the architecture held so the key
#: stays its own; at most 64 entries)
_ARCH_ARRAYS: dict[int, tuple[Architecture, Any]] = {}


def _model_arch(arch: Architecture) -> Any:
    """The cost core's arrays of ``arch`` (``model.arrays.arch_arrays``), built once per
    architecture (a frozen model: the same numbers for every search on it)."""
    hit = _ARCH_ARRAYS.get(id(arch))
    if hit is not None and hit[0] is arch:
        return hit[1]
    from testy_model.model.arrays import arch_arrays

    if len(_ARCH_ARRAYS) >= 64:
        _ARCH_ARRAYS.clear()
    aa = arch_arrays(arch)
    _ARCH_ARRAYS[id(arch)] = (arch, aa)
    return aa


def _skip_problem(problem: Problem, densities: dict[str, Any] | None) -> Problem:
    """The problem whose densities decide spatial skipping (:attr:`ArchIndex.instances`): its
    own, or, with explicit ``densities`` (a plan's terms), only those given as a
    :class:`Density` (others dense: a TASD series or a float gets no skipping allowance, the
    conservative space)."""
    if densities is None:
        return problem
    kept = {t: d for t, d in densities.items() if isinstance(d, Density)}
    return problem.model_copy(update={"densities": kept})


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
    seen = _skip_problem(problem, densities)
    ai = index_arch(arch, seen, pi, constraints, sparse_opts=sparse)
    try:
        check_feasible(pi, ai, arch)
    except MappingError:
        # metadata counted with the data overflows a level (e.g. a full fixed-slot series in a
        # one-word register): hold it in the levels' separate metadata storage, the model's rule
        ai = index_arch(arch, seen, pi, constraints, md_apart=True, sparse_opts=sparse)
        check_feasible(pi, ai, arch)
    orders = canonical_orders(pi, ai.perm)
    allowed = allowed_orders(pi, ai, orders)
    model_arch = _model_arch(arch) if evaluator is None else None
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


def _priced_totals(ctx: _Ctx, cand: Candidates) -> np.ndarray | None:
    """(cycles, energy, edp) of candidate 0 as its search batch priced it (the cost core
    prices each row on its own, so a batch row is the row priced alone), or None when it was
    not costed in this context."""
    w = cand.take(np.array([0]))
    for batch, totals in reversed(ctx.priced):
        n = len(batch)
        hit = np.all(batch.order_idx == w.order_idx, axis=1)
        hit &= np.all(batch.keep.reshape(n, -1) == w.keep.reshape(1, -1), axis=1)
        hit &= np.all(batch.exps.reshape(n, -1) == w.exps.reshape(1, -1), axis=1)
        rows = np.nonzero(hit)[0]
        if rows.size:
            return totals[:, rows[0]]
    return None


def _result(ctx: _Ctx, cand: Candidates, t0: float, method: str) -> MappingResult:
    totals = _priced_totals(ctx, cand)
    if totals is None:
        arch = ctx.arch if ctx.model_arch is None else ctx.model_arch
        cost = ctx.evaluator(
            ctx.problem, arch, to_nests(ctx.pi, ctx.ai, cand.take(np.array([0]))), ctx.terms
        )
        totals = np.array(
            [np.asarray(getattr(cost, k))[0] for k in ("cycles", "energy_pj", "edp")],
            dtype=np.float64,
        )
    return MappingResult(
        mapping=to_mapping(ctx, ctx.arch, cand, 0),
        cycles=float(totals[0]),
        energy_pj=float(totals[1]),
        edp=float(totals[2]),
        objective=ctx.objective,
        evaluated=ctx.evaluated,
        search_s=time.perf_counter() - t0,
        method=method,
    )
