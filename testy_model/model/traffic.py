"""Per-level traffic of every tensor before bypass (rules 2 and 3 of
:mod:`testy_model.model.reuse`): the words entering each level, the reads it serves its child,
the words it delivers over its fan-out and those its children pass over links.

Each child level is computed once per distinct row of what it depends on (:func:`child_rows`:
a mapper batch repeats the loops above a level across keep/bypass variants and inner moves),
and the tensors whose data spaces have the same number of ranks are priced together, stacked
along the batch axis, with the storage child levels 1..L−1 stacked too (one numpy call per
step instead of one per tensor and level). The counts are integer arithmetic (exact in
float64), so a row's counts do not depend on the rows priced with it (nor on how many loops
its frame is padded to). Counts are words of a tensor per instance of a level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testy_model.model.arrayops import all_last, prod_axis, rep, stack_first
from testy_model.model.links import _HASH, _first_rows
from testy_model.model.nest import LoopNests
from testy_model.model.steps import (
    FanRows,
    StepSequence,
    _FanBase,
    _spatial_content,
    _step_frame,
    _StepFrame,
    suffix_frames,
    temporal_deltas,
)

#: per tensor: ``(W, content, weighted, links)``, each (B, L)
Traffic = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ChildRows:
    """The rows the traffic above child level c is computed on (:func:`child_rows`): ``rows``
    (U,) one row per distinct key (None: every row), ``inv`` (B,) each row's group and
    ``frame`` their step frame (the innermost child's; None for the storage children, whose
    frames are stacked in :attr:`Children.storage`)."""

    rows: np.ndarray | None
    inv: np.ndarray | None
    frame: _StepFrame | None

    def take(self, a: np.ndarray) -> np.ndarray:
        """``a`` (B, ...) on the distinct rows."""
        return a if self.rows is None else a[self.rows]

    def put(self, a: np.ndarray) -> np.ndarray:
        """``a`` (U, ...) back on every row."""
        return a if self.inv is None else a[self.inv]

    def size(self, n_b: int) -> int:
        """U, the number of distinct rows (``n_b``: B)."""
        return n_b if self.rows is None else len(self.rows)


@dataclass(frozen=True)
class Children:
    """:class:`ChildRows` of every child level c = 1..L (``levels[c−1]``) and ``storage``, the
    step frames of the storage children c = 1..L−1 stacked along the rows (level by level,
    each on its distinct rows; None when L = 1)."""

    levels: list[ChildRows]
    storage: _StepFrame | None


def child_rows(nests: LoopNests, ext: np.ndarray) -> Children:
    """:class:`Children` of ``nests``: rows are grouped by everything the traffic above child
    c depends on (:func:`_key_parts`; a mapper batch repeats them across keep/bypass variants
    and inner moves). The innermost child's frame is built
    (:func:`~testy_model.model.steps._step_frame`); the others are its suffixes, built at once
    (:func:`~testy_model.model.steps.suffix_frames`)."""
    n_b, n_l = nests.batch, nests.n_levels
    groups = _level_groups(nests, ext) if n_b >= 64 else [None] * n_l
    inner = groups[-1]
    full = _step_frame(nests, ext, n_l, None if inner is None else inner[0])
    levels = [ChildRows(None, None, None) if g is None else ChildRows(*g, None) for g in groups]
    levels[-1] = ChildRows(levels[-1].rows, levels[-1].inv, full)
    if n_l == 1:
        return Children(levels, None)
    ats = []
    for g in groups[:-1]:
        rows = np.arange(n_b) if g is None else g[0]
        ats.append(rows if inner is None else inner[1][rows])  # each row's inner-frame row
    return Children(levels, suffix_frames(full, ats, range(1, n_l)))


def _key_parts(nests: LoopNests, ext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the traffic above each child level c depends on, as two arrays of integers (held
    exactly as float64): ``prefix`` (B, L·3D), whose first ``c·3D`` columns are the factors
    and orders of levels ``0..c−1``, and ``own`` (B, L, K), whose row ``c−1`` holds the
    extents ``E_c`` (the extents ``E_1..E_{c−1}`` follow from them and the factors: ``E_j =
    E_c·Π_{j≤k<c} t_k·s_k``, exact integers; ``E_L = 1``), level c−1's spatial order, X
    split and directives, and c's ``no_reuse`` (0 below the innermost level)."""
    n_b, n_l, n_d = nests.temporal.shape
    prefix = np.empty((n_b, n_l, 3, n_d))  # filled in place: one pass per part
    prefix[:, :, 0] = nests.temporal
    prefix[:, :, 1] = nests.spatial
    prefix[:, :, 2] = nests.order
    n_m = sum(m is not None for m in (nests.no_link, nests.no_multicast, nests.no_reuse))
    n_t = nests.keep.shape[2]
    own = np.zeros((n_b, n_l, 2 * n_d + 1 + n_t * n_m))
    own[:, :, :n_d] = ext[:, 1:]
    own[:, :, n_d : 2 * n_d] = nests.spatial_positions()
    own[:, :, 2 * n_d] = nests.x_split()
    at = 2 * n_d + 1
    for name in ("no_link", "no_multicast"):
        m = getattr(nests, name)
        if m is not None:
            own[:, :, at : at + n_t] = m
            at += n_t
    if nests.no_reuse is not None:
        own[:, :-1, at : at + n_t] = nests.no_reuse[:, 1:]
    return prefix.reshape(n_b, -1), own


def _level_hashes(prefix: np.ndarray, own: np.ndarray) -> np.ndarray:
    """(B, L) a random-projection hash of :func:`_key_parts` of every child level c (column
    c−1): the prefix's levels accumulated level by level, plus the level's own part (weights
    per level and column; equal parts hash equal)."""
    n_b, n_l, n_k = own.shape
    n_p = prefix.shape[1] // n_l
    w = _HASH[: n_l * (n_p + n_k)].reshape(n_l, n_p + n_k)
    per = np.einsum("blk,lk->bl", prefix.reshape(n_b, n_l, n_p), w[:, :n_p])
    return np.cumsum(per, axis=1) + np.einsum("blk,lk->bl", own, w[:, n_p:])


def _level_groups(nests: LoopNests, ext: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per child level: ``(rows, inv)`` of the distinct :func:`_key_parts` (hashed, then
    checked exactly; a collision falls back to an exact grouping), or None where fewer than
    20 % of the rows repeat."""
    n_b, n_l = nests.batch, nests.n_levels
    prefix, own = _key_parts(nests, ext)
    n_p = prefix.shape[1] // n_l
    hashes = _level_hashes(prefix, own)
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n_l
    inner: np.ndarray | None = None  # one row per distinct innermost key, once checked
    pre_at, own_at = prefix, own
    for c in range(n_l, 0, -1):
        first, inv = _unique_1d(hashes[:, c - 1])
        rep = first[inv]
        # rows of one innermost group share every outer key and hash: checking their
        # representatives checks them all
        r = rep if inner is None else rep[inner]
        if not (  # (the shapes agree: r has one row per row of pre_at / own_at)
            bool((prefix[r, : c * n_p] == pre_at[:, : c * n_p]).all())
            and bool((own[r, c - 1] == own_at[:, c - 1]).all())
        ):
            first, inv = _first_rows(np.concatenate([prefix[:, : c * n_p], own[:, c - 1]], axis=1))
        if c == n_l:
            inner = first
            pre_at, own_at = prefix[inner], own[inner]
        out[c - 1] = (first, inv) if len(first) < 0.8 * n_b else None
    return out


def _unique_1d(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of a 1-D array: the index of one element per distinct value (the
    first, in value order) and each element's group."""
    order = np.argsort(h, kind="stable")
    hs = h[order]
    new = np.empty(len(h), dtype=bool)
    new[:1] = True
    np.not_equal(hs[1:], hs[:-1], out=new[1:])
    inv = np.empty(len(h), dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return order[new], inv


def stacked_sequence(projs: Sequence[np.ndarray], fr: _StepFrame) -> StepSequence:
    """The :class:`StepSequence` of n tensors with projections ``projs`` (each (R, D), one R)
    over one step frame, stacked along the batch axis (tensor-major: rows ``i·U .. i·U+U−1``
    are tensor i's), loops ordered inner to outer (level, then permutation position). A loop
    (k, d) moves tensor i's tile by ``proj_i[:, d]·stride``, stride ``E_{k+1}[d]·spatial[k, d]``
    (the frame's ``st``); ``tau_j = step_j − Σ_{i<j} step_i``."""
    n = len(projs)
    n_u = fr.f.shape[0]
    # loop-major (J, nU, R): the running sum over the loops is one contiguous add per loop (the
    # order cumsum adds in: the same sums), tau is handed on as a (nU, J, R) view
    r = projs[0].shape[0]  # (repeated along R: a trailing 1 would broadcast slowly)
    sw = (fr.st * fr.active).T[..., None].repeat(r, axis=-1)
    dim = fr.dim.T
    step = np.concatenate([p.T.take(dim, axis=0) * sw for p in projs], axis=1)
    run = np.empty_like(step)  # Σ_{i<=j} step_i
    run[0] = step[0]
    for j in range(1, len(step)):
        np.add(run[j - 1], step[j], out=run[j])
    run -= step
    tau_t = np.subtract(step, run, out=run)  # step_j − Σ_{i<j} step_i
    tau = tau_t.transpose(1, 0, 2)
    j1 = rep(fr.j1, n)
    tau1 = tau_t[j1, np.arange(n * n_u)]
    same = rep(fr.active, n)
    same &= all_last(tau_t == tau1).T  # (one comparison of every rank, ANDed along R)

    weights = (rep(fr.weights[0], n), rep(fr.weights[1], n), rep(fr.weights[2], n))
    return StepSequence(
        rep(fr.f, n), tau, j1, rep(fr.has, n), rep(fr.outer, n), same, tau1, weights
    )


def level_traffic(
    projs: Sequence[np.ndarray],
    tws: Sequence[np.ndarray],
    spans: Sequence[np.ndarray],
    fans: Sequence[tuple[np.ndarray, ...]],
    masks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
    children: Children,
    base: _FanBase,
) -> list[Traffic]:
    """Per level, before bypass: ``(W, content, weighted, links)`` (B, L) of each of n tensors
    whose projections ``projs`` share R (priced stacked).

    ``W_l`` words entering an instance of l (rule 2); ``content_l`` the reads an instance of l
    serves its tiling child (l+1, or the compute below L−1); ``weighted_l`` the words it
    delivers to its children; ``links_l`` the words its children pass over links (rule 3).
    Per tensor: ``tws`` (B, L+1) tiles and ``spans`` (B, L+1, R) (:func:`~testy_model.model.
    reuse.tile_words`), ``fans`` ``(F, G)`` (:func:`~testy_model.model.steps.spatial_structure`),
    ``masks`` = (no_reuse, no_link, no_multicast), each (B, L), the mapping's directives
    (None: none);
    ``children`` the :func:`child_rows` of the child levels; ``base`` the fan-outs'
    tensor-independent part (:func:`~testy_model.model.steps._fan_base`).

    The storage children c = 1..L−1 are priced in one pass, their distinct rows stacked
    (tensor-major, then level; :attr:`Children.storage`): every step is row by row, and the
    sums over a frame's loops add exact integers, so padding the levels' frames to one width
    changes no count."""
    n = len(projs)
    n_b, n_l = tws[0].shape[0], tws[0].shape[1] - 1
    out = np.zeros((4, n, n_b, n_l))  # (W, content, weighted, links) per tensor
    for i in range(n):
        out[0, i, :, 0] = tws[i][:, 0]
    if children.storage is not None:
        _storage_children(
            projs, tws, spans, fans, masks, children.levels[:-1], children.storage, base, out
        )
    ch = children.levels[-1]
    k = n_l - 1
    assert ch.frame is not None

    def stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([ch.take(a) for a in arrays])

    if masks is None:
        args = (np.zeros(n * ch.size(n_b), dtype=bool),) * 2
    else:
        args = (stack([m[1][:, k] for m in masks]), stack([m[2][:, k] for m in masks]))
    f_all = stack([f[0][:, k] for f in fans])
    res: tuple[np.ndarray, ...]
    if not ((f_all >= 2) & ~args[0]).any():
        g = stack([f[1][:, k] for f in fans])
        res = _compute_child(ch.frame, f_all, g, n)
    else:
        seq = stacked_sequence(projs, ch.frame)
        one = np.ones(len(seq.f))
        sizes = (one, one, np.ones_like(seq.f))
        fan_k = _fan_rows(projs, fans, base, [ch], [k])
        res = _spatial_content(seq, sizes, True, fan_k, *args)
    for j, x in enumerate(res):
        out[j + 1, :, :, k] = ch.put(x.reshape(n, -1).T).T
    return [(out[0, i], out[1, i], out[2, i], out[3, i]) for i in range(n)]


def _storage_children(
    projs: Sequence[np.ndarray],
    tws: Sequence[np.ndarray],
    spans: Sequence[np.ndarray],
    fans: Sequence[tuple[np.ndarray, ...]],
    masks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
    children: Sequence[ChildRows],
    fr: _StepFrame,
    base: _FanBase,
    out: np.ndarray,
) -> None:
    """:func:`level_traffic` of the storage children c = 1..len(children) (parent k = c−1),
    written into ``out`` (4, n, B, L): the n tensors' distinct rows of every child level
    stacked (tensor-major, then level) over their stacked frame ``fr``."""
    n = len(projs)
    n_b = out.shape[2]
    levels = range(1, len(children) + 1)
    sizes = [ch.size(n_b) for ch in children]
    b_of, k_of = _stacked_rows(children, [c - 1 for c in levels], n_b)

    def stack(arrays: Sequence[np.ndarray], below: int) -> np.ndarray:
        """Each tensor's ``a[b, k + below]`` (a (B, L(+1), ...)) on the distinct rows of
        every child level (parent k), stacked (tensor-major, then level)."""
        return np.concatenate([a[b_of, k_of + below] for a in arrays])

    seq = stacked_sequence(projs, fr)
    fan = _fan_rows(projs, fans, base, children, [c - 1 for c in levels], (b_of, k_of))
    if masks is None:  # no directive
        no_link = no_mc = no_reuse = np.zeros(n * sum(sizes), dtype=bool)
    else:
        no_link = stack([m[1] for m in masks], 0)
        no_mc = stack([m[2] for m in masks], 0)
        no_reuse = stack([m[0] for m in masks], 1)
    t_c = stack(tws, 1)
    w_c, diff1 = temporal_deltas(seq, stack(spans, 1))
    if masks is not None:  # no_temporal_reuse: every step refetches the whole tile
        full = prod_axis(np.where(seq.f >= 2, seq.f, 1.0), 1) * t_c
        w_c = np.where(no_reuse, full, w_c)
        diff1 = np.where(no_reuse & seq.has, t_c, diff1)
        dj = np.where(seq.same | no_reuse[:, None], diff1[:, None], t_c[:, None])
    else:  # (the same choices with no_reuse all False)
        dj = np.where(seq.same, diff1[:, None], t_c[:, None])
    res = (w_c, *_spatial_content(seq, (t_c, diff1, dj), False, fan, no_link, no_mc))
    # each row's column in the stacked rows of every child level: (C, B), one gather per part
    ends = np.cumsum([0, *sizes])
    at = (
        stack_first([np.arange(n_b) if ch.inv is None else ch.inv for ch in children])
        + ends[:-1, None]
    )
    n_c = len(children)
    for j, x in enumerate(res):
        lo = 1 if j == 0 else 0  # W is child c's column, the others its parent's (c − 1)
        out[j, :, :, lo : lo + n_c] = x.reshape(n, -1)[:, at].transpose(0, 2, 1)


def _fan_rows(
    projs: Sequence[np.ndarray],
    fans: Sequence[tuple[np.ndarray, ...]],
    base: _FanBase,
    children: Sequence[ChildRows],
    ks: Sequence[int],
    stacked: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, FanRows]:
    """The fan-outs ``(F, G, rows)`` of parent levels ``ks`` on the distinct rows of their
    ``children``, the n tensors stacked (tensor-major, then level; as
    :func:`_storage_children` stacks them; :func:`~testy_model.model.steps.spatial_structure`);
    ``rows`` gives the radices, offsets and mesh row lengths of the stacked rows asked for
    (:class:`~testy_model.model.steps.FanRows`: only the rows whose steps may go over links
    need them). ``stacked``: the children's :func:`_stacked_rows`, when the caller has them."""
    n_b = base.spa.shape[0]
    b_of, k_of = _stacked_rows(children, ks, n_b) if stacked is None else stacked
    n_u = len(b_of)
    return (
        np.concatenate([f[0][b_of, k_of] for f in fans]),
        np.concatenate([f[1][b_of, k_of] for f in fans]),
        FanRows(base, stack_first([p.T for p in projs]), b_of, k_of, n_u),
    )


def _stacked_rows(
    children: Sequence[ChildRows], ks: Sequence[int], n_b: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(b_of, k_of)`` (U,): the batch row and parent level of each distinct row of the
    ``children`` (parent levels ``ks``), stacked level by level."""
    b_of = np.concatenate([np.arange(n_b) if ch.rows is None else ch.rows for ch in children])
    k_of = np.concatenate([np.full(ch.size(n_b), k) for k, ch in zip(ks, children, strict=True)])
    return b_of, k_of


def _compute_child(
    fr: _StepFrame, f_all: np.ndarray, g: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(content, weighted, links)`` (n·U,) of the innermost level's fan-out to the compute
    for n stacked tensors when no step can go over links (no fan-out of 2 or more, or no
    links): every delta is the operand itself (``|D| = 1``), so (rule 3) ``content = G·(1 +
    moved)`` reads and ``weighted = F·(1 + moved)`` deliveries, with ``moved = w_first +
    Σ_j w_after_j + Σ_j w_type_j`` the sampled steps' weights of the frame ``fr`` (shared by
    the tensors; :func:`~testy_model.model.steps._spatial_content` with point children)."""
    w_first, w_after, w_type = fr.weights
    moved = rep((w_first + w_after.sum(axis=1)) + w_type.sum(axis=1), n)
    return g + g * moved, f_all + f_all * moved, np.zeros(len(g))
