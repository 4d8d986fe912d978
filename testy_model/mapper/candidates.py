"""Candidate mappings in exponent form and their conversions: :class:`Candidates`, the
model's loop nests (:func:`to_nests`) and Timeloop-style mappings (:func:`to_mapping`), the
operand terms the mapper sizes tiles for, and candidate hashing/concatenation."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from testy_model.errors import MappingError
from testy_model.mapper.fit import mesh_layout
from testy_model.mapper.space import ArchIndex, ProblemIndex, factors_from_exps
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import LevelMapping, Mapping
from testy_model.spec.workload import Density, Problem


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
        """The sub-set at the integer indices ``idx`` (``ndarray.take``: the same rows as
        fancy indexing, without its per-call overhead)."""
        return Candidates(
            self.exps.take(idx, axis=0),
            self.order_idx.take(idx, axis=0),
            self.keep.take(idx, axis=0),
            self.orders,
        )


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
    order = cand.orders.take(cand.order_idx, axis=0)
    spatial = np.ascontiguousarray(F[:, L:])
    # laid out once per distinct spatial row (mesh_layout is row-wise; few distinct rows)
    flat = spatial.reshape(len(spatial), -1)
    first, inv = _row_classes(spatial, flat @ _hash_weights(flat.shape[1]))
    spatial_order, split = mesh_layout(ai, spatial.take(first, axis=0))
    spatial_order, split = spatial_order.take(inv, axis=0), split.take(inv, axis=0)
    return LoopNests(
        temporal=np.ascontiguousarray(F[:, :L]),
        spatial=spatial,
        order=order,
        keep=np.ascontiguousarray(cand.keep),
        spatial_order=spatial_order,
        split=split,
    )


def _row_classes(rows: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inv)``: one row per distinct hash ``h`` (``first``, any of its rows) and each
    row's class, so that ``rows[first[inv]]`` is ``rows``. Rows sharing a hash are checked to
    be equal; after a collision every row is its own class."""
    n = len(h)
    perm = np.argsort(h)  # any order: the rows of one hash are checked equal
    srt = h[perm]
    new = np.ones(n, dtype=bool)
    np.not_equal(srt[1:], srt[:-1], out=new[1:])
    cls = np.cumsum(new) - 1
    first = perm[new]
    dup = np.nonzero(~new)[0]
    if dup.size and not np.array_equal(
        rows.take(perm[dup], axis=0), rows.take(first[cls[dup]], axis=0)
    ):
        ident = np.arange(n)
        return ident, ident
    inv = np.empty(n, dtype=np.intp)
    inv[perm] = cls
    return first, inv


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
    return _hash_parts(cand) + _order_hash(cand, cand.order_idx)


def _hash_weights_of(cand: Candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weights of :func:`_cand_hash`'s exponent, order and keep parts, shaped as
    ``exps`` (S, D, P), ``order_idx`` (L,) and ``keep`` (L, T) of one candidate."""
    return _split_weights(cand.exps.shape[1:], cand.order_idx.shape[1], cand.keep.shape[1:])


@functools.lru_cache(maxsize=64)
def _split_weights(
    e_shape: tuple[int, ...], no: int, k_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_hash_weights_of` for these shapes (views of :func:`_hash_weights`, read-only)."""
    ne, nk = math.prod(e_shape), math.prod(k_shape)
    w = _hash_weights(ne + no + nk)
    return w[:ne].reshape(e_shape), w[ne : ne + no], w[ne + no :].reshape(k_shape)


def _hash_parts(cand: Candidates) -> np.ndarray:
    """(B,) the exponent and keep parts of :func:`_cand_hash` (all but the loop orders':
    :func:`_order_hash`), wrapping int64 sums."""
    n = len(cand)
    w_e = _hash_weights_of(cand)[0]
    # integer matmuls wrap modulo 2^64 like the elementwise products and sums (same value in
    # any summation order), without the (n, width) int64 temporaries
    h = cand.exps.reshape(n, w_e.size) @ w_e.reshape(-1)
    h += _keep_part(cand)
    return h


def _keep_part(cand: Candidates) -> np.ndarray:
    """(B,) the keep part of :func:`_hash_parts` (a wrapping int64 matmul; :func:`_hash_parts`
    less it is the exponent part)."""
    w_k = _hash_weights_of(cand)[2]
    return cand.keep.reshape(len(cand), w_k.size) @ w_k.reshape(-1)


def _order_hash(cand: Candidates, order_idx: np.ndarray) -> np.ndarray:
    """(B,) the order part of :func:`_cand_hash` for the (B, L) ``order_idx`` (the candidates'
    own or their canonical ones)."""
    return order_idx @ _hash_weights_of(cand)[1]


def _gather(parts: Sequence[tuple[Candidates, np.ndarray]], orders: np.ndarray) -> Candidates:
    """The rows ``idx`` of each ``(candidates, idx)`` part, concatenated: ``_concat`` of the
    parts' ``take(idx)``, each array gathered once into its place."""
    sizes = [len(i) for _, i in parts]
    ends = np.cumsum(sizes).tolist()
    fields = []
    for name in ("exps", "order_idx", "keep"):
        first = getattr(parts[0][0], name)
        out = np.empty((ends[-1], *first.shape[1:]), dtype=first.dtype)
        for (c, idx), end, n in zip(parts, ends, sizes, strict=True):
            np.take(getattr(c, name), idx, axis=0, out=out[end - n : end])
        fields.append(out)
    return Candidates(fields[0], fields[1], fields[2], orders)


def _concat(parts: Sequence[Candidates], orders: np.ndarray) -> Candidates:
    return Candidates(
        np.concatenate([p.exps for p in parts]),
        np.concatenate([p.order_idx for p in parts]),
        np.concatenate([p.keep for p in parts]),
        orders,
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


def _reorder(cand: Candidates, orders: np.ndarray) -> Candidates:
    """``cand`` with its order indices re-expressed as rows of ``orders`` (same loop orders)."""
    if cand.orders.shape == orders.shape and np.array_equal(cand.orders, orders):
        return Candidates(cand.exps, cand.order_idx, cand.keep, orders)
    hit = np.all(cand.orders[:, None, :] == orders[None, :, :], axis=-1)  # (O_c, O)
    if not hit.any(axis=1).all():
        raise MappingError("design points order their loops differently; expected one structure")
    return Candidates(cand.exps, np.argmax(hit, axis=1)[cand.order_idx], cand.keep, orders)
