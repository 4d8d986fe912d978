"""Link transfers between neighbouring children of a spatial fan-out (Timeloop v3.0.3's
``NestAnalysis::ComputeNetworkLinkTransfers``), for :mod:`~testy_model.model.reuse`.

At a step of the temporal loops above a fan-out, a child whose new data its mesh neighbour held
at the previous step gets it over the link between them instead of from the parent. With ``λ``
such children and ``ρ`` distinct offsets among the others, the parent reads ``ρ·|delta|``
instead of ``G·|delta|`` whenever ``ρ < G``, and delivers ``(F − λ)·|delta|``. Whether a child
can be linked depends only on the fan-out (radices, offsets, mesh row length) and the step's
translation, so the children are enumerated once per distinct (fan-out, translation) of a batch
and the results memoised; a translation equal to no neighbour difference is ruled out without
enumerating (:func:`_link_steps`, :func:`_may_link`), and before that, cheaply, one farther
along a rank than any two children's offsets differ (:func:`_within_reach`: most steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from testy_model.model.arrayops import all_last


class FanOutRows(Protocol):
    """The fan-outs of a stack of rows (``steps.FanRows``), formed for the rows asked for."""

    def at(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(radix (H, D), offset (H, D, R), h_size (H,))`` of sorted ``rows``."""
        ...

    def reach(self, rows: np.ndarray) -> np.ndarray:
        """(H, R) ``Σ_j (r_j − 1)·|v_j|`` of sorted ``rows`` (:func:`_within_reach`)."""
        ...

    @property
    def n_dims(self) -> int:
        """D, the number of problem dimensions (spatial loops per fan-out)."""
        ...


def link_adjustments(
    sel: np.ndarray,
    check: np.ndarray,
    w: np.ndarray,
    delta: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray],
    fan: FanOutRows,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the rows ``sel`` of a fan-out with steps that may go over links: ``(Δ parent reads,
    deliveries saved, link transfers)`` (len(sel),), summed over the step groups.

    ``check`` (S, K) the step groups that may link, ``w`` (S, K) their weight × delta size,
    ``delta`` (S, K, R) their translations; ``counts`` = (G, F, no-multicast) of all B rows
    and ``fan`` their fan-outs (:class:`FanOutRows`; radices and offsets are formed only for
    the rows with steps that are not out of reach, :func:`_within_reach`)."""
    g, f_all, no_multicast = counts
    g_s, f_s, mc_off = g[sel], f_all[sel], no_multicast[sel]
    # a tensor irrelevant to the whole fan-out (G = 1): every child has a neighbour with the
    # same (zero) offset, so a step that leaves the tensor in place goes over links
    plain = (g_s == 1) & ~mc_off
    moves = delta[:, :, 0] != 0  # the step moves the tensor (R is small: one rank at a time)
    for r_i in range(1, delta.shape[2]):
        moves |= delta[:, :, r_i] != 0
    simple = check & plain[:, None] & ~moves
    lam = np.where(simple, f_s[:, None], 0.0)  # (S, K): λ and ρ of every step group
    rho = np.where(simple, 0.0, g_s[:, None])
    hb, hk = (check & ~plain[:, None]).nonzero()  # (the simple ones are plain)
    d_h = delta[hb, hk]
    if hb.size and fan.n_dims <= _MAX_CARRY_DIMS:
        urows, at = _distinct(sel[hb])  # hb is sorted (np.nonzero order), sel too
        near = _within_reach(fan.reach(urows), at, d_h)
        hb, hk, d_h = hb[near], hk[near], d_h[near]
    if hb.size:
        urows, at = _distinct(sel[hb])  # the fan-outs of the distinct rows at stake
        radix, offset, h_size = fan.at(urows)
        ok = _may_link(_fanout_steps(radix, offset, h_size, at), d_h)
        hb, hk, at = hb[ok], hk[ok], at[ok]
    if hb.size:
        # one enumeration per distinct (fan-out, step) among the rows (a mapper batch repeats
        # a handful of spatial structures thousands of times)
        n_d = radix.shape[1]
        # trivial loops (radix 1) play no part: their offsets stay out of the key
        offs = np.where(radix[at][..., None] >= 2, offset[at], 0.0)
        key = np.concatenate(
            [
                radix[at],
                offs.reshape(len(at), -1),
                h_size[at, None],
                delta[hb, hk],
                mc_off[hb, None].astype(np.float64),
            ],
            axis=1,
        )
        uniq, inv = _unique_rows(key)
        res = _mesh_links_batch(uniq, n_d)
        lam[hb, hk] = res[inv, 0]
        rho[hb, hk] = res[inv, 1]
    link = check & (rho < g_s[:, None])
    moved = (w * np.where(link, lam, 0.0)).sum(axis=1)
    return (w * np.where(link, rho - g_s[:, None], 0.0)).sum(axis=1), moved, moved


def _distinct(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct, inverse)`` of sorted (non-decreasing) ``rows``, without a sort."""
    first = np.empty(len(rows), dtype=bool)
    first[:1] = True
    np.not_equal(rows[1:], rows[:-1], out=first[1:])
    return rows[first], np.cumsum(first) - 1


def _within_reach(reach: np.ndarray, at: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """(H,) False where the step ``delta`` (H, R) of fan-out ``at`` (H,) is farther than any
    two children's offsets differ, so no child can take it from a neighbour (a necessary
    condition of :func:`_may_link`, checked first because it is cheap): two children's
    offsets differ by ``Σ_j δ_j·v_j`` with ``|δ_j| <= r_j − 1`` (radices r, offsets v of the
    loops), so a rank's difference is at most ``reach = Σ_j (r_j − 1)·|v_j|`` (U, R) (an
    exact integer); compared on the rounded vectors :func:`_vec_hash` hashes. (Not used with
    more than :data:`_MAX_CARRY_DIMS` loops, whose fan-outs may be enumerated.)"""
    lim = reach[at] + 0.5
    far = np.abs(delta.round())
    return all_last(far <= lim)


def _link_steps(
    radix: np.ndarray, offset: np.ndarray, h_size: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per fan-out (B rows): the hashes (B, m + 2^(m−1)) of every offset difference between
    mesh neighbours (a superset; NaN where none; m = the most loops of radix >= 2 in a row),
    and (B,) whether the fan-out is left to enumeration (only with more than
    :data:`_MAX_CARRY_DIMS` such loops).

    With the fan-out's loops in order (radices r_j, offsets v_j; trivial ones have r = 1 and
    contribute nothing), child e+1 differs from e by ``v_j − Σ_{i<j} (r_i − 1)·v_i`` (j = the
    carry length); child e+h (h = the mesh row length) by :func:`_vertical_steps`. Vectors are
    hashed by a random projection of their rounded coordinates (data-space offsets are
    integers, so equal vectors hash equal)."""
    live = radix >= 2
    # trivial loops (a digit that is always 0) play no part: each row's live loops first
    m = max(int(live.sum(axis=1).max()), 1) if len(radix) else 1
    if m < radix.shape[1]:
        first = np.argsort(~live, axis=1, kind="stable")[:, :m]
        radix = np.take_along_axis(radix, first, axis=1)
        offset = np.take_along_axis(offset, first[..., None], axis=1)
        live = radix >= 2
    rr = np.where(live, radix, 1.0)
    v = np.where(live[..., None], offset, 0.0)
    step = (rr - 1.0)[..., None] * v
    cum = np.cumsum(step, axis=1) - step  # Σ_{i<j} (r_i − 1)·v_i
    proj = _HASH[: offset.shape[2]]
    horiz = np.where(live, _vec_hash(v - cum, proj), np.nan)
    if radix.shape[1] > _MAX_CARRY_DIMS:
        return horiz, rr.prod(axis=1) > h_size
    vert = _vertical_steps(rr, v, h_size, proj)
    return np.concatenate([horiz, vert], axis=1), np.zeros(len(radix), dtype=bool)


#: fan-outs with more dimensions than this are enumerated (2^(D−1) carry patterns otherwise)
_MAX_CARRY_DIMS = 10


def _vertical_steps(rr: np.ndarray, v: np.ndarray, h: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """(B, 2^(D−1)) hashes of the offset differences ``off(e+h) − off(e)`` a child can have
    with its mesh neighbour one row on (NaN for carry patterns that cannot occur, or without
    a second row). In the mixed radix of the loops (radices ``rr`` (B, D), offsets ``v``
    (B, D, R)), adding h (digits h_i) to e carries c_{i+1} ∈ {0, 1} out of digit i, so
    ``off(e+h) − off(e) = Σ_i h_i·v_i + Σ_{i≥1} c_i·(v_i − r_{i−1}·v_{i−1})`` (c_0 = c_D = 0);
    a carry out of digit i is possible only when ``h_i + c_i ≥ 1`` and its absence only when
    ``h_i + c_i ≤ r_i − 1``. Every actual difference is one of these (integer arithmetic)."""
    n_d = rr.shape[1]
    before = np.cumprod(rr, axis=1) / rr  # Π_{i<j} r_i
    digits = np.floor(h[:, None] / before) % rr  # (B, D) h in the mixed radix
    pats = ((np.arange(2 ** (n_d - 1))[:, None] >> np.arange(n_d - 1)) & 1).astype(np.float64)
    zero = np.zeros((len(pats), 1))
    carry = np.concatenate([zero, pats, zero], axis=1)  # (M, D+1): c_0 .. c_D
    s = digits[:, None, :] + carry[None, :, :-1]  # (B, M, D)
    ok = np.where(carry[None, :, 1:] == 1, s >= 1, s <= rr[:, None, :] - 1).all(axis=2)
    ok &= (rr.prod(axis=1) > h)[:, None]
    w = v[:, 1:] - rr[:, :-1, None] * v[:, :-1]  # (B, D−1, R)
    base = (digits[..., None] * v).sum(axis=1)  # (B, R)
    cand = base[:, None, :] + pats @ w  # (B, M, R), exact small integers
    return np.where(ok, _vec_hash(cand, proj), np.nan)


def _vec_hash(x: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """Random projection of vectors (..., R) of integer coordinates (data-space offsets):
    ``Σ_r round(x_r)·proj_r`` summed rank by rank (the same operations whatever the shape, so
    equal vectors hash equal, exactly, and ``−v`` hashes to minus ``v``'s hash)."""
    xr = np.round(x)
    h = xr[..., 0] * proj[0]
    for r in range(1, x.shape[-1]):
        h = h + xr[..., r] * proj[r]
    return h


def _fanout_steps(
    radix: np.ndarray, offset: np.ndarray, h_size: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_link_steps` of the fan-outs of ``rows`` (H,) (indices into the B rows), computed
    once per distinct fan-out (a batch repeats a handful): ``(hashes (H, m), irregular (H,))``,
    each row's neighbour-difference hashes (NaN where none; compacted to the first ``m``
    columns when grouped)."""
    if rows.size < 64:  # small batches (eval): every row's own fan-out, no grouping
        return _link_steps(radix[rows], offset[rows], h_size[rows])
    first = np.r_[True, rows[1:] != rows[:-1]] if np.all(rows[1:] >= rows[:-1]) else None
    if first is None:
        urows, rinv = np.unique(rows, return_inverse=True)
    else:  # sorted rows (np.nonzero order): distinct ones without a sort
        urows, rinv = rows[first], np.cumsum(first) - 1
    n_d = radix.shape[1]
    rad = radix[urows]
    offs = np.where(rad[..., None] >= 2, offset[urows], 0.0)  # trivial loops play no part
    key = np.concatenate([rad, offs.reshape(len(urows), -1), h_size[urows, None]], axis=1)
    su, sinv = _unique_rows(key)
    hashes, irregular = _link_steps(su[:, :n_d], su[:, n_d:-1].reshape(len(su), n_d, -1), su[:, -1])
    # NaN (no neighbour difference) sorts last: keep the columns that hold a hash somewhere
    hashes = np.sort(hashes, axis=1)
    m = int((~np.isnan(hashes)).sum(axis=1).max()) if hashes.size else 0
    idx = sinv[rinv]
    return hashes[:, :m][idx], irregular[idx]


def _may_link(steps: tuple[np.ndarray, np.ndarray], delta: np.ndarray) -> np.ndarray:
    """(H,) False where no child of a fan-out can take the step's ``delta`` (H, R) from a mesh
    neighbour (``steps`` = the fan-outs' hashes and irregularity per step,
    :func:`_fanout_steps`), so the step needs no :func:`_mesh_links_group`; True where it may
    (or the mesh is irregular)."""
    c, irregular = steps
    hd = _vec_hash(delta, _HASH[: delta.shape[1]])[:, None]
    hit = np.any((c == hd) | (c == -hd), axis=1)
    return hit | irregular


_HASH = np.random.default_rng(12345).standard_normal(4096)
_ROW_CACHE: dict[bytes, tuple[float, float]] = {}


def _unique_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique rows, inverse)`` of a 2-D float array (:func:`_first_rows`)."""
    first, inv = _first_rows(key)
    return key[first], inv


def _first_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)``: an index of one row per distinct row of a 2-D float array and each
    row's group, via a random projection (one 1-D sort instead of a lexicographic one); rows
    that collide are told apart by ``np.unique``."""
    h = key @ _HASH[: key.shape[1]]
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    if np.array_equal(key[first][inv], key):
        return first, inv
    _, first, inv2 = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return first, inv2.reshape(-1)


def _mesh_links_batch(rows: np.ndarray, n_d: int) -> np.ndarray:
    """``(λ, ρ)`` (U, 2) of packed rows (radix (D), offsets (D·R), h_size, delta (R),
    no-multicast flag; :func:`_spatial_content`): :func:`_mesh_links_group` over the deltas of
    each distinct fan-out, memoised on the rows' bytes."""
    n_r = (rows.shape[1] - n_d - 2) // (n_d + 1)
    s_end = n_d + n_d * n_r + 1
    out = np.zeros((len(rows), 2))
    keys = [r.tobytes() for r in rows]
    miss = []
    for i, k in enumerate(keys):
        hit = _ROW_CACHE.get(k)
        if hit is None:
            miss.append(i)
        else:
            out[i] = hit
    if not miss:
        return out
    if len(_ROW_CACHE) > 262144:
        _ROW_CACHE.clear()
    m = np.array(miss)
    struct = np.concatenate([rows[m, :s_end], rows[m, -1:]], axis=1)
    su, sinv = _unique_rows(struct)
    order = np.argsort(sinv, kind="stable")
    bounds = np.searchsorted(sinv[order], np.arange(len(su) + 1))
    for g in range(len(su)):
        sel = m[order[bounds[g] : bounds[g + 1]]]
        res = _mesh_links_group(su[g], rows[sel, s_end : s_end + n_r], n_d, n_r)
        out[sel] = res
        for i, r in zip(sel, res, strict=True):
            _ROW_CACHE[keys[i]] = (float(r[0]), float(r[1]))
    return out


@dataclass(frozen=True)
class _Fanout:
    """The children of one packed fan-out (:func:`_children`): ``cls`` (n,) the class of equal
    data-space offsets (rounded to 1e-9) and ``n_c`` their number; ``diffs`` (U, R) the distinct
    offset differences ``off_n − off_e`` between a child e and a grid neighbour n, and ``reach``
    (U, n) bool, child e has a neighbour at difference u (over the four grid directions)."""

    cls: np.ndarray
    n_c: int
    diffs: np.ndarray
    reach: np.ndarray


_CHILD_CACHE: dict[bytes, _Fanout] = {}


def _children(struct: np.ndarray, n_d: int, n_r: int) -> _Fanout:
    """:class:`_Fanout` of one packed fan-out ``struct`` (:func:`_mesh_links_group`), each
    child's offset from its mixed-radix index (innermost loop fastest) and grid position
    ``(e mod h_size, e div h_size)``; memoised on the struct's bytes (bounded)."""
    key = struct.tobytes()
    hit = _CHILD_CACHE.get(key)
    if hit is not None:
        return hit
    radix = struct[:n_d]
    offs = struct[n_d : n_d + n_d * n_r].reshape(n_d, n_r)
    h_size = int(struct[n_d + n_d * n_r])
    keep = radix >= 2
    rad = radix[keep].astype(np.int64)
    n = int(np.prod(rad)) if rad.size else 1
    rest = np.arange(n)
    off = np.zeros((n, n_r))
    for r, v in zip(rad, offs[keep], strict=True):
        off += np.outer(rest % r, v)
        rest //= r
    first, cls = _first_rows(np.round(off, 9))
    e = np.arange(n)
    col = e % h_size
    diff_rows, child = [], []
    for step, ok in (
        (-1, col > 0),
        (1, (col < h_size - 1) & (e + 1 < n)),
        (-h_size, e >= h_size),
        (h_size, e + h_size < n),
    ):
        at = np.nonzero(ok)[0]
        diff_rows.append(off[at + step] - off[at])
        child.append(at)
    diff = np.concatenate(diff_rows)
    kid = np.concatenate(child)
    if diff.shape[0]:
        u_first, u_inv = _first_rows(diff)
        diffs = diff[u_first]
    else:
        u_inv, diffs = np.zeros(0, dtype=np.int64), np.zeros((0, n_r))
    reach = np.zeros((len(diffs), n), dtype=bool)
    reach[u_inv, kid] = True
    if len(_CHILD_CACHE) > 65536:
        _CHILD_CACHE.clear()
    _CHILD_CACHE[key] = _Fanout(cls, len(first), diffs, reach)
    return _CHILD_CACHE[key]


def _mesh_links_group(struct: np.ndarray, deltas: np.ndarray, n_d: int, n_r: int) -> np.ndarray:
    """``(λ, ρ)`` (K, 2) of one spatial fan-out (packed ``struct``: radix, offsets, h_size, the
    no-multicast flag last) for K step translations ``deltas`` (K, R) at once
    (``NestAnalysis::ComputeNetworkLinkTransfers``): λ the children (mixed-radix linear index
    e, innermost loop fastest; grid position ``(e mod h_size, e div h_size)``) whose current
    delta equals a grid neighbour's previous one (``off_n − off_e == delta``), ρ the number of
    distinct offsets among the other children (all of them without multicast). The test runs
    once per distinct neighbour difference (:class:`_Fanout`)."""
    multicast = not bool(struct[-1])
    fo = _children(struct, n_d, n_r)
    tol = 1e-8 + 1e-5 * np.abs(deltas)[:, None, :]  # np.isclose(a, delta)
    match = np.all(np.abs(fo.diffs[None] - deltas[:, None, :]) <= tol, axis=2)  # (K, U)
    linked = np.zeros((len(deltas), fo.reach.shape[1]), dtype=bool)
    for u in np.nonzero(match.any(axis=0))[0]:
        linked |= match[:, u, None] & fo.reach[u][None]
    lam = linked.sum(axis=1).astype(np.float64)
    free = ~linked
    if not multicast:
        return np.stack([lam, free.sum(axis=1).astype(np.float64)], axis=1)
    seen = np.zeros((len(free), fo.n_c), dtype=bool)  # (K, classes): a free child holds it
    k_idx, child = np.nonzero(free)
    seen[k_idx, fo.cls[child]] = True
    rho = seen.sum(axis=1).astype(np.float64)
    return np.stack([lam, rho], axis=1)
