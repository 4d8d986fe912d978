"""The mapping search space of one problem on one architecture, as numpy arrays.

A candidate mapping is held in *exponent form*: ``E[s, d, p]`` is the exponent of the p-th prime
(of the union of the primes of all bounds) in the factor of dimension d at slot s. Slots
``0..L-1`` are the temporal loops of storage level l (0 = outermost, DRAM); slots ``L..2L-1`` are
the spatial loops of level l (over the fan-out below it). A factor is ``Π_p prime_p ** E[s,d,p]``
and a complete candidate satisfies ``Σ_s E[s,d,p] = e_{d,p}`` (the exponent of prime p in the
bound of d): every bound is fully factorised. Loop orders are indices into a short list of
canonical permutations (see :func:`canonical_orders`). Keep/bypass choices are (L, T) bools:
a level holds what it must (level 0 everything; a level's ``keep`` list), never what the
architecture bypasses, and the search decides the rest (see :func:`keep_options`).

Everything here is a pure function of (problem, architecture) and vectorised over candidates;
the only Python loops run over levels, dimensions, primes or tensors (a handful each).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from testy_model.errors import MappingError

# the loop orders live in mapper/orders.py; their former import path stays valid
from testy_model.mapper.orders import allowed_orders as allowed_orders
from testy_model.mapper.orders import canonical_order_idx as canonical_order_idx
from testy_model.mapper.orders import canonical_orders as canonical_orders
from testy_model.mapper.orders import order_classes as order_classes
from testy_model.spec.arch import Architecture, LevelConstraints
from testy_model.spec.workload import Problem

#: Sentinel "no bound" used in the factor-bound arrays.
UNBOUNDED = np.iinfo(np.int64).max


def prime_factors(n: int) -> dict[int, int]:
    """Prime factorisation of ``n >= 1`` as ``{prime: exponent}`` (``{}`` for 1)."""
    if n < 1:
        raise ValueError(f"cannot factorise {n}: bounds must be >= 1")
    out: dict[int, int] = {}
    p = 2
    while p * p <= n:
        while n % p == 0:
            out[p] = out.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        out[n] = out.get(n, 0) + 1
    return out


@dataclass(frozen=True)
class ProblemIndex:
    """A problem flattened to arrays.

    Attributes:
        dims: dimension names (problem order, D of them).
        tensors: tensor names (data-space order, T of them).
        bounds: (D,) int64 bounds.
        primes: (P,) int64 distinct primes of all bounds (P >= 1: ``[2]`` when every bound is 1).
        exps: (D, P) int64 exponent of each prime in each bound.
        relevant: (T, D) bool, dimension d indexes tensor t.
        ranks: per tensor, a tuple of ranks, each a tuple of (dim index, coefficient).
        scale: (T,) float, stored values per dense word (Σ of the kept densities of its terms;
            1 = dense).
        md_bits: (T,) float, metadata bits per dense word (Σ density·bits per kept value).
    """

    dims: tuple[str, ...]
    tensors: tuple[str, ...]
    bounds: np.ndarray
    primes: np.ndarray
    exps: np.ndarray
    relevant: np.ndarray
    ranks: tuple[tuple[tuple[tuple[int, int], ...], ...], ...]
    scale: np.ndarray
    md_bits: np.ndarray


def index_problem(
    problem: Problem,
    scale: dict[str, float] | None = None,
    md_bits: dict[str, float] | None = None,
) -> ProblemIndex:
    """Flatten ``problem`` to arrays; ``scale``/``md_bits`` (tensor -> stored values and metadata
    bits per dense word) default to 1 and 0 (dense)."""
    dims = tuple(problem.dimensions)
    tensors = tuple(problem.tensor_names)
    bounds = np.array([problem.bounds[d] for d in dims], dtype=np.int64)
    facs = [prime_factors(int(b)) for b in bounds]
    primes = sorted({p for f in facs for p in f}) or [2]
    exps = np.array([[f.get(p, 0) for p in primes] for f in facs], dtype=np.int64).reshape(
        len(dims), len(primes)
    )
    relevant = np.array(
        [[d in problem.relevant(t) for d in dims] for t in tensors], dtype=bool
    ).reshape(len(tensors), len(dims))
    ranks = tuple(
        tuple(
            tuple((dims.index(d), problem.coef(c)) for d, c in rank)
            for rank in problem.data_space(t).projection
        )
        for t in tensors
    )
    sc = np.array([(scale or {}).get(t, 1.0) for t in tensors], dtype=np.float64)
    md = np.array([(md_bits or {}).get(t, 0.0) for t in tensors], dtype=np.float64)
    return ProblemIndex(
        dims, tensors, bounds, np.array(primes, dtype=np.int64), exps, relevant, ranks, sc, md
    )


@dataclass(frozen=True)
class ArchIndex:
    """The parts of an architecture the search needs, as arrays (L levels, D dims, T tensors).

    Attributes:
        names: level names, outermost first.
        capacity: (L,) float bits per instance (``inf`` for unbounded levels).
        word_bits: (L, T) float bits level l stores per dense word of tensor t:
            ``scale_t · datawidth(l, t) + md_bits_t`` (compressed values plus metadata).
        datawidth: (L, T) float bits per word of tensor t at level l (the problem's datawidth
            for t if given, else the level's).
        fanout: (L,) int64 spatial fan-out below each level.
        fan_x / fan_y: (L,) int64 the fan-out's mesh in X (``mesh_x`` of the level below over
            this level's) and Y (fan-out / X); 0 where the meshes do not divide (then only the
            total fan-out is checked, as ``spec.validate`` does).
        keep_may: (L, T) bool, level l may hold tensor t (not bypassed by the architecture).
        keep_must: (L, T) bool, level l must hold t: level 0 holds everything, and a level whose
            ``keep`` list is given (a Timeloop dataspace ``keep`` constraint) holds those tensors.
            Other tensors are kept or bypassed as the search decides.
        t_fix / s_fix: (L, D) int64 fixed temporal / spatial factor (0 = free).
        t_max / s_max: (L, D) int64 upper bound of the factor (``UNBOUNDED`` = none).
        perm: per level, the fixed temporal permutation (inner to outer) or ``()``.
        x_ok / y_ok: (L, D) bool, dimension d may have a spatial factor above 1 along the X / Y
            axis of level l's fan-out (False where that axis's constraints fix it to 1; all True
            without per-axis constraints). See :func:`axis_constraints`.
    """

    names: tuple[str, ...]
    capacity: np.ndarray
    word_bits: np.ndarray
    datawidth: np.ndarray
    fanout: np.ndarray
    fan_x: np.ndarray
    fan_y: np.ndarray
    keep_may: np.ndarray
    keep_must: np.ndarray
    t_fix: np.ndarray
    t_max: np.ndarray
    s_fix: np.ndarray
    s_max: np.ndarray
    perm: tuple[tuple[str, ...], ...]
    x_ok: np.ndarray
    y_ok: np.ndarray
    #: (L,) bits of each level's separate metadata storage per instance (0: metadata beside the
    #: data, counted in ``word_bits``); None = 0 everywhere.
    md_capacity: np.ndarray | None = None
    #: spatial factors as instances (:func:`effective_spatial`): ``(values (V,), table
    #: (V, L, D))``, the instances a factor ``values[v]`` of dim d occupies below level l where
    #: the engine skips an N:M operand's zeros spatially along d; None: factors are instances.
    instances: tuple[np.ndarray, np.ndarray] | None = None


def axis_constraints(
    c: LevelConstraints, dims: tuple[str, ...]
) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(whole-level spatial factor constraints, (D,) X allowed, (D,) Y allowed) of one level.

    Without per-axis constraints (``spatial_factors_x``/``_y`` both None) this is
    ``(spatial_factors, all True, all True)``. With them, a dimension fixed to 1 on one axis
    only stays free on the other (Timeloop applies each container's constraints to its own
    loops): it is dropped from the whole-level dict and marked not allowed on that axis. A
    dimension fixed to 1 on both axes, and every other entry (fixed factors above 1, upper
    bounds, entries of the level's own constraints), stay whole-level constraints.
    """
    D = len(dims)
    x_ok, y_ok = np.ones(D, dtype=bool), np.ones(D, dtype=bool)
    if c.spatial_factors_x is None and c.spatial_factors_y is None:
        return dict(c.spatial_factors), x_ok, y_ok
    fx, fy = c.spatial_factors_x or {}, c.spatial_factors_y or {}
    whole = dict(c.spatial_factors)
    for i, d in enumerate(dims):
        one_x, one_y = fx.get(d) == 1, fy.get(d) == 1
        if whole.get(d) == 1 and (one_x != one_y):
            del whole[d]
            x_ok[i], y_ok[i] = not one_x, not one_y
    return whole, x_ok, y_ok


def _bounds_from(
    factors: dict[str, int], dims: tuple[str, ...], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """(fix, max) arrays from a Timeloop-style factor constraint (>0 fixed, <0 upper bound)."""
    fix = np.zeros(len(dims), dtype=np.int64)
    mx = np.full(len(dims), UNBOUNDED, dtype=np.int64)
    for d, v in factors.items():
        if d not in dims:
            raise MappingError(
                f"constraint names dimension {d!r}, expected one of {list(dims)}", key_path=where
            )
        if v > 0:
            fix[dims.index(d)] = v
        elif v < 0:
            mx[dims.index(d)] = -v
    return fix, mx


def _instance_table(arch: Architecture, problem: Problem, sparse_opts: Any) -> Any:
    """:func:`testy_model.mapper.fit.instance_table` (imported here: fit builds on this
    module)."""
    from testy_model.mapper.fit import instance_table

    return instance_table(arch, problem, sparse_opts)


def index_arch(
    arch: Architecture,
    problem: Problem,
    pi: ProblemIndex,
    constraints: dict[str, LevelConstraints] | None = None,
    md_apart: bool = False,
    sparse_opts: Any = None,
) -> ArchIndex:
    """Flatten ``arch`` for ``problem``; ``constraints`` (level name -> constraints) replace the
    architecture's own constraints for the named levels. ``md_apart``: metadata of a level with
    a separate metadata storage is held there (the model's capacity rule, ``md_capacity``)
    instead of being counted with the data (the default, a conservative space).
    ``sparse_opts``: the Sparseloop optimizations priced, whose ``skipping-spatial`` lets a
    spatial factor exceed the fan-out (:func:`instance_table`)."""
    dims = tuple(problem.dimensions)
    tensors = tuple(problem.tensor_names)
    constraints = dict(constraints or {})
    unknown = set(constraints) - set(arch.level_names)
    if unknown:
        raise MappingError(
            f"constraints name unknown level(s) {sorted(unknown)}; levels are "
            f"{list(arch.level_names)}",
            file=arch.source,
        )
    L = len(arch.levels)
    fanout = np.array([arch.fanout(i) for i in range(L)], dtype=np.int64)
    below_x = [lv.mesh_x for lv in arch.levels[1:]] + [arch.compute.mesh_x]
    fan_x = np.array(
        [
            bx // lv.mesh_x if bx % lv.mesh_x == 0 else 0
            for bx, lv in zip(below_x, arch.levels, strict=True)
        ],
        dtype=np.int64,
    )
    fan_y = np.where(fan_x > 0, np.maximum(1, fanout // np.maximum(fan_x, 1)), 0)
    dw = np.array(
        [[problem.datawidths.get(t, lvl.datawidth) for t in tensors] for lvl in arch.levels],
        dtype=np.float64,
    ).reshape(L, len(tensors))
    t_fix = np.zeros((L, len(dims)), dtype=np.int64)
    s_fix = np.zeros_like(t_fix)
    t_max = np.full_like(t_fix, UNBOUNDED)
    s_max = np.full_like(t_fix, UNBOUNDED)
    perms: list[tuple[str, ...]] = []
    x_ok = np.ones((L, len(dims)), dtype=bool)
    y_ok = np.ones_like(x_ok)
    for i, lvl in enumerate(arch.levels):
        c = constraints.get(lvl.name, lvl.constraints)
        where = f"levels[{lvl.name}].constraints"
        t_fix[i], t_max[i] = _bounds_from(c.temporal_factors, dims, where + ".temporal")
        whole, x_ok[i], y_ok[i] = axis_constraints(c, dims)
        if fan_x[i] == 0:  # mesh unknown: per-axis constraints cannot be told apart
            whole, x_ok[i], y_ok[i] = dict(c.spatial_factors), True, True
        s_fix[i], s_max[i] = _bounds_from(whole, dims, where + ".spatial")
        perm = tuple(d for d in c.temporal_permutation if d in dims)
        perms.append(perm)
    keep_may = np.array(
        [[i == 0 or lvl.keeps(t) for t in tensors] for i, lvl in enumerate(arch.levels)],
        dtype=bool,
    ).reshape(L, len(tensors))
    keep_must = np.array(
        [
            [i == 0 or (lvl.keep is not None and lvl.keeps(t)) for t in tensors]
            for i, lvl in enumerate(arch.levels)
        ],
        dtype=bool,
    ).reshape(L, len(tensors))
    md_cap = np.array(
        [
            float(lvl.metadata_depth * lvl.metadata_width) if md_apart else 0.0
            for lvl in arch.levels
        ],
        dtype=np.float64,
    )
    return ArchIndex(
        names=arch.level_names,
        capacity=np.array([lvl.capacity_bits for lvl in arch.levels], dtype=np.float64),
        # metadata in a level's separate metadata storage takes none of its data capacity
        # (the model's capacity rule; checked against md_capacity instead)
        word_bits=pi.scale * dw + (md_cap == 0)[:, None] * pi.md_bits,
        md_capacity=md_cap,
        datawidth=dw,
        fanout=fanout,
        fan_x=fan_x,
        fan_y=fan_y,
        keep_may=keep_may,
        keep_must=keep_must,
        t_fix=t_fix,
        t_max=t_max,
        s_fix=s_fix,
        s_max=s_max,
        perm=tuple(perms),
        instances=_instance_table(arch, problem, sparse_opts),
        x_ok=x_ok,
        y_ok=y_ok,
    )


# -- factors, tiles, validity ------------------------------------------------------------------


def factors_from_exps(pi: ProblemIndex, E: np.ndarray) -> np.ndarray:
    """Factors ``Π_p prime_p ** E[..., p]``: (..., S, D, P) exponents -> (..., S, D) int64,
    looked up in :func:`_factor_table` (the values of :func:`_factors_exp`, which computes
    exponents outside it) at the mixed-radix index ``Σ_p E[..., p] · r^p``."""
    r = int(pi.exps.max(initial=0)) + 1
    table = _factor_table(tuple(pi.primes.tolist()), r)
    P = pi.primes.size
    if table is None or E.shape[-1] != P or E.dtype.kind not in "iu" or E.size == 0:
        return _factors_exp(pi.primes, E)
    if E.dtype == np.int8:  # one check of 0 <= E < r: negatives read as >= 128 unsigned
        inside = int(E.view(np.uint8).max()) < r
    else:
        inside = int(E.min()) >= 0 and int(E.max()) < r
    if not inside:
        return _factors_exp(pi.primes, E)
    small = table.size <= 2**15  # int16 indices: fewer bytes to add
    idx: np.ndarray = E[..., 0].astype(np.int16 if small else np.intp)
    for i in range(1, P):
        idx += E[..., i] * (np.int16(r**i) if small else np.intp(r**i))
    return table.take(idx)


def _factors_exp(primes: np.ndarray, E: np.ndarray) -> np.ndarray:
    """:func:`factors_from_exps` computed: ``rint(exp(Σ_p E·log p))``, exact for factors far
    below 2^53 (the sum over the few primes unrolled, left to right)."""
    logp = np.log(primes.astype(np.float64))
    s = E[..., 0] * logp[0]
    for i in range(1, logp.size):
        s = s + E[..., i] * logp[i]
    return np.rint(np.exp(s)).astype(np.int64)


@functools.lru_cache(maxsize=64)
def _factor_table(primes: tuple[int, ...], r: int) -> np.ndarray | None:
    """(r^P,) :func:`_factors_exp` of every exponent vector ``e`` (each ``e_p < r``) at index
    ``Σ_p e_p · r^p`` (read-only); None past 2^20 entries, or where its largest entry
    ``Π_p p^(r-1)`` would pass 2^53 (not exact in float64: such factors are computed)."""
    if r ** len(primes) > 2**20 or (r - 1) * sum(math.log2(p) for p in primes) >= 53:
        return None
    grid = np.indices((r,) * len(primes)).reshape(len(primes), -1)[::-1].T  # e_0 varies fastest
    table = _factors_exp(np.array(primes, dtype=np.int64), grid.astype(np.int8))
    table.setflags(write=False)
    return table


def tile_extents(temporal: np.ndarray, spatial: np.ndarray) -> np.ndarray:
    """Per-instance tile extent of each dimension at each level, (B, L, D).

    Equation: ``ext[l, d] = Π_{l' >= l} temporal[l', d] · spatial[l', d]``: level l holds the data
    of its own loops and of everything below it, including the spatial loops that spread its tile
    over its children.
    """
    per = temporal * spatial
    # the running product from the innermost level out, one level at a time (L is small)
    out = np.empty_like(per)
    n = per.shape[-2]
    if n:
        out[..., n - 1, :] = per[..., n - 1, :]
    for lv in range(n - 2, -1, -1):
        np.multiply(out[..., lv + 1, :], per[..., lv, :], out=out[..., lv, :])
    return out


def tile_words(pi: ProblemIndex, extents: np.ndarray) -> np.ndarray:
    """Dense words of each tensor in a tile of the given extents: (B, L, D) -> (B, L, T) float.

    Equation (Timeloop projection): ``Π_ranks (Σ_terms coef·(ext_d − 1) + 1)`` words.
    """
    out = np.empty((*extents.shape[:-1], len(pi.tensors)), dtype=np.float64)
    # in float (integers far below 2^53: the same values as in int64); ext − 1 once if needed
    ext = extents.astype(np.float64)
    less: np.ndarray | None = None
    for t, ranks in enumerate(pi.ranks):
        size = None
        for rank in ranks:
            if len(rank) == 1 and rank[0][1] == 1:  # 1 + 1·(ext_d − 1) = ext_d
                span = ext[..., rank[0][0]]
            else:
                less = ext - 1.0 if less is None else less
                terms = None
                for d, c in rank:  # 1 + c0·less_d0 + c1·less_d1 + ..., left to right
                    term = less[..., d] if c == 1 else c * less[..., d]  # 1·x = x exactly
                    terms = (1.0 if terms is None else terms) + term
                span = np.ones(extents.shape[:-1]) if terms is None else terms
            size = span if size is None else size * span
        out[..., t] = 1.0 if size is None else size
    return out


def held_bits(pi: ProblemIndex, ai: ArchIndex, words: np.ndarray) -> np.ndarray:
    """Bits a level stores for tiles of ``words`` dense words, as the model counts them:
    ``words · (scale_t · datawidth(l, t) + md_bits_t)`` (compressed values plus metadata).
    (..., L, T) -> (..., L, T)."""
    return words * ai.word_bits


def held_words(pi: ProblemIndex, words: np.ndarray) -> np.ndarray:
    """Words a level stores for tiles of ``words`` dense words, as ``spec.validate`` counts
    them: ``ceil(words · scale_t)`` (compressed values rounded up, metadata stored apart)."""
    return np.ceil(words * pi.scale - 1e-9)


def slot_mask(ai: ArchIndex) -> np.ndarray:
    """(S=2L, D) bool: slot s may hold a factor > 1 for dimension d (spatial slots need a fan-out
    above 1; fixed factors of 1 close a slot)."""
    L = len(ai.names)
    m = np.ones((2 * L, ai.t_fix.shape[1]), dtype=bool)
    m[L:] &= (ai.fanout > 1)[:, None]
    m[:L] &= (ai.t_fix != 1) & (ai.t_max != 1)
    m[L:] &= (ai.s_fix != 1) & (ai.s_max != 1)
    return m


# -- exhaustive enumeration --------------------------------------------------------------------


def _compositions(total: int, parts: int) -> np.ndarray:
    """All ways to write ``total`` as an ordered sum of ``parts`` non-negative integers: (C, parts).
    C = binom(total + parts − 1, parts − 1) (stars and bars)."""
    if parts == 0:
        return np.zeros((1 if total == 0 else 0, 0), dtype=np.int64)
    rows = []
    for bars in itertools.combinations(range(total + parts - 1), parts - 1):
        edges = (-1, *bars, total + parts - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(parts)])
    return np.array(rows, dtype=np.int64).reshape(-1, parts)


def dim_chains(pi: ProblemIndex, ai: ArchIndex, d: int) -> np.ndarray:
    """Every distribution of dimension d's prime exponents over its open slots: (C, S, P)."""
    mask = slot_mask(ai)[:, d]
    open_slots = np.nonzero(mask)[0]
    S, P = mask.size, pi.primes.size
    per_prime = []
    for p in range(P):
        comp = _compositions(int(pi.exps[d, p]), open_slots.size)
        full = np.zeros((comp.shape[0], S), dtype=np.int64)
        full[:, open_slots] = comp
        per_prime.append(full)
    grids = np.meshgrid(*[np.arange(len(c)) for c in per_prime], indexing="ij")
    idx = [g.ravel() for g in grids]
    return np.stack([per_prime[p][idx[p]] for p in range(P)], axis=-1)


def space_size(pi: ProblemIndex, ai: ArchIndex, n_orders: int) -> int:
    """Size of the unpruned space: Π_d (chains of d) · n_orders^L (no enumeration needed)."""
    mask = slot_mask(ai)
    n = 1
    for d in range(len(pi.dims)):
        k = int(mask[:, d].sum())
        for p in range(pi.primes.size):
            n *= math.comb(int(pi.exps[d, p]) + k - 1, k - 1) if k else int(pi.exps[d, p] == 0)
    return n * n_orders ** len(ai.names)


def enumerate_factorisations(pi: ProblemIndex, ai: ArchIndex) -> np.ndarray:
    """Every factorisation (all dims jointly) that passes :func:`valid_mask` when each level keeps
    only what it must (the loosest capacity test): (C, S, D, P)."""
    from testy_model.mapper.fit import valid_mask  # fit builds on this module

    chains = [dim_chains(pi, ai, d) for d in range(len(pi.dims))]
    grids = np.meshgrid(*[np.arange(len(c)) for c in chains], indexing="ij")
    E = np.stack([chains[d][g.ravel()] for d, g in enumerate(grids)], axis=2)
    L = len(ai.names)
    F = factors_from_exps(pi, E)
    keep = np.broadcast_to(ai.keep_must, (E.shape[0], *ai.keep_must.shape))
    return E[valid_mask(pi, ai, F[:, :L], F[:, L:], keep)]


def keep_options(pi: ProblemIndex, ai: ArchIndex) -> np.ndarray:
    """Every keep/bypass choice: (K, L, T) bool, each level keeping its must-keep tensors plus
    any subset of the others it may keep, such that one word of each kept tensor fits.
    Count before the fit test: Π_l 2^(free tensors of l)."""
    L = ai.keep_may.shape[0]
    free = ai.keep_may & ~ai.keep_must
    per_level = []
    for lv in range(L):
        idx = np.nonzero(free[lv])[0]
        bits = (np.arange(2**idx.size)[:, None] >> np.arange(idx.size)) & 1
        opts = np.repeat(ai.keep_must[lv][None], bits.shape[0], axis=0)
        opts[:, idx] = bits.astype(bool)
        fits = np.sum(opts * ai.word_bits[lv], axis=-1) <= ai.capacity[lv] * (1 + 1e-9)
        per_level.append(opts[fits])
    grids = np.meshgrid(*[np.arange(len(o)) for o in per_level], indexing="ij")
    return np.stack([per_level[lv][g.ravel()] for lv, g in enumerate(grids)], axis=1)
