"""Weight-, output- and input-stationary template mappings (the search's start pool and a
baseline): :func:`template_mapping`, :func:`evaluate_template`."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from testy_model.errors import MappingError
from testy_model.mapper.candidates import (
    Candidates,
    MappingResult,
    to_mapping,
)
from testy_model.mapper.context import (
    Evaluator,
    Objective,
    TemplateKind,
    _context,
    _Ctx,
    _result,
)
from testy_model.mapper.space import ArchIndex, ProblemIndex, slot_mask
from testy_model.spec.arch import Architecture, LevelConstraints
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Problem


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
    ctx: _Ctx, E: np.ndarray, slot: int, dims: Sequence[int] | np.ndarray, open_: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]] | None:
    """The trials of one :func:`_templates` fill step: every split of the remaining prime
    exponents of ``dims`` moved from the outermost slot into ``slot`` (every sub-vector of each
    dimension's remaining exponents, crossed over the dims: Π_d Π_p (e_dp + 1) trials; past 2,000
    the remaining dims are left to a further step). ``open_``: :func:`slot_mask`.

    Returns ``(trials (n, 2L, D, P), product of the moved factors (n,), smallest moved factor
    (n,), the dims left over)``, or None when nothing can move.
    """
    left = E[0].tolist()  # (D, P) exponents still at the outermost slot, as Python ints
    o_slot, o_top = open_[slot].tolist(), open_[0].tolist()
    dims = [d for d in dims if o_slot[d] and o_top[d] and sum(left[d]) > 0]
    primes = tuple(ctx.pi.primes.tolist())
    per_dim: list[tuple[np.ndarray, np.ndarray]] = []
    total = 1
    for d in dims:
        sub = _splits(tuple(left[d]), primes)  # (n_d, P) and their factors
        if per_dim and total * len(sub[0]) > 2000:
            break
        total *= len(sub[0])
        per_dim.append(sub)
    if not per_dim:
        return None
    grid = _grid(tuple(len(x[0]) for x in per_dim))
    n = grid.shape[1]
    trial = np.repeat(E[None], n, axis=0)
    moved = np.ones((n, len(per_dim)))
    for j, d in enumerate(dims[: len(per_dim)]):
        take = per_dim[j][0].take(grid[j], axis=0)  # (n, P)
        trial[:, 0, d] -= take
        trial[:, slot, d] += take
        moved[:, j] = per_dim[j][1].take(grid[j])
    return trial, moved.prod(axis=1), moved.min(axis=1), dims[len(per_dim) :]


@functools.lru_cache(maxsize=1024)
def _splits(left: tuple[int, ...], primes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every sub-vector of the prime exponents ``left`` (Π_p (e_p + 1) rows of P, the first
    prime's exponent varying slowest) and the factor each makes, ``Π_p prime_p ** e_p`` (float;
    both read-only)."""
    sub = np.indices(tuple(x + 1 for x in left)).reshape(len(left), -1).T  # (n_d, P)
    prod = np.prod(np.array(primes, dtype=np.float64) ** sub, axis=-1)
    sub.setflags(write=False)
    prod.setflags(write=False)
    return sub, prod


@functools.lru_cache(maxsize=256)
def _grid(sizes: tuple[int, ...]) -> np.ndarray:
    """(len(sizes), Π sizes) every combination of one index per size (``np.indices``, the last
    varying fastest; read-only)."""
    grid = np.indices(sizes).reshape(len(sizes), -1)
    grid.setflags(write=False)
    return grid


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
            found = {k: _fill_trials(ctx, E[k], slot, dims, open_) for k, dims in pending.items()}
            trials = {k: tr for k, tr in found.items() if tr is not None}
            live = list(trials)
            if not live:
                break
            sizes = [trials[k][0].shape[0] for k in live]
            ok_all = ctx.valid(
                Candidates(
                    np.concatenate([trials[k][0] for k in live]),
                    np.repeat(np.stack([setup[k][0] for k in live]), sizes, axis=0),
                    np.repeat(np.stack([setup[k][1] for k in live]), sizes, axis=0),
                    ctx.orders,
                )
            )
            pending = {}
            ends = list(itertools.accumulate(sizes))  # each kind's slice of ok_all
            for k, end, size in zip(live, ends, sizes, strict=True):
                ok = ok_all[end - size : end]
                trial, prod, low, rest = trials[k]
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
