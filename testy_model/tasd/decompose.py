"""Greedy TASD decomposition of real numpy arrays along one axis, with its metrics.

Definition (``design.md``, "Decomposition (greedy)"). For a series ``N1:M1 + N2:M2 + ...`` and an
array ``A`` split along ``axis`` into aligned blocks of ``M_i`` consecutive values (the last block
of a ragged axis is padded with zeros), term ``i`` keeps, in every ``M_i``-block, the ``N_i``
non-zeros of largest magnitude among the values that terms ``1..i-1`` left; ties are broken by the
lowest index along ``axis``. The residual ``R`` is what no term kept, so

    A = T_1 + T_2 + ... + T_k + R          (exactly; the supports are disjoint)

Zeros are never kept (a term keeps at most ``N_i`` non-zeros per block, fewer when the block has
fewer). The ``dense`` series is treated as one ``1:1`` term that keeps every non-zero. Magnitudes
of integer and bool arrays are compared as float64, exact for integers up to 2^53 in magnitude
(larger ones may round to a tie, then broken by index).

Algorithm (vectorised, no loop over blocks). For a run of consecutive terms with the same ``M``
the rank of every element within its block,

    rank_j = #{q : |a_q| > |a_j|} + #{q < j : |a_q| = |a_j|}      (0-based, dimensionless)

is computed with ``M(M-1)/2`` vectorised pairwise comparisons over a ``(M, blocks)`` layout, where
values already taken (and zeros) get magnitude 0 so every eligible value ranks ahead of them. With
``C_i = N_1 + ... + N_i`` the cumulative counts of the run, an eligible value of rank ``r`` goes
to the term ``i`` with ``C_{i-1} <= r < C_i``: greedy top-``N_1`` takes ranks ``0..N_1-1``, and the
remaining values keep their relative order, so their rank among what is left is ``r - N_1``.
For ``M > 32`` a stable argsort per block gives the same ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from testy_model.tasd.pattern import NMPattern, TasdSeries

__all__ = ["Decomposition", "decompose", "is_compliant"]

_PAIRWISE_MAX_M = 32
_MAX_TERMS = 255
_CHUNK_VALUES = 1 << 17


def _as_real_array(array: Any, name: str = "array") -> np.ndarray:
    """Return ``array`` as a real numeric ndarray; ``ValueError`` for complex or non-numeric."""
    arr = np.asarray(array)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(
            f"{name} has dtype {arr.dtype}, expected a real numeric array (int, float or bool)"
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} has complex dtype {arr.dtype}, expected a real numeric array")
    return arr


def _normalise_axis(axis: int, ndim: int) -> int:
    """Map a possibly negative ``axis`` to ``0..ndim-1``; ``ValueError`` when out of range."""
    if ndim == 0:
        raise ValueError("array is 0-dimensional; expected at least one axis to decompose along")
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis!r} is out of range for an array of {ndim} dimension(s)")
    return int(axis) % ndim


def _magnitude(arr: np.ndarray) -> np.ndarray:
    """|arr| as floats: floating dtypes keep their precision, ints and bools become float64."""
    if np.issubdtype(arr.dtype, np.floating):
        return np.abs(arr)
    return np.abs(arr.astype(np.float64))


def _rows(arr: np.ndarray, axis: int, length: int) -> np.ndarray:
    """View/copy ``arr`` as a C-contiguous 2-D ``(rows, length)`` array with ``axis`` last and the
    last axis zero-padded from ``arr.shape[axis]`` to ``length`` values (no copy when ``arr`` is
    C-contiguous, ``axis`` is last and no padding is needed)."""
    moved = np.moveaxis(arr, axis, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    pad = length - rows.shape[1]
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), dtype=rows.dtype)], axis=1)
    return np.ascontiguousarray(rows)


def _block_ranks_pairwise(key_t: np.ndarray) -> np.ndarray:
    """Ranks (uint8) of the ``(M, blocks)`` magnitudes ``key_t`` within each block (column).

    ``rank[j] = #{q : key[q] > key[j]} + #{q < j : key[q] == key[j]}``, built as ``rank[q] = q``
    then, for every pair ``j < q``, ``g = key[q] > key[j]``: ``rank[j] += g`` and
    ``rank[q] -= g`` (``q`` loses one rank for each earlier value it strictly beats).
    """
    m = key_t.shape[0]
    rank = np.empty(key_t.shape, dtype=np.uint8)
    for q in range(m):
        rank[q].fill(q)
    gt = np.empty(key_t.shape[1], dtype=np.bool_)
    gt_u8 = gt.view(np.uint8)
    for j in range(m):
        for q in range(j + 1, m):
            np.greater(key_t[q], key_t[j], out=gt)
            rank[j] += gt_u8
            rank[q] -= gt_u8
    return rank


def _block_ranks_argsort(key_t: np.ndarray) -> np.ndarray:
    """Same ranks as :func:`_block_ranks_pairwise` (as int64) via a stable argsort (large M)."""
    order = np.argsort(-key_t, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(key_t.shape[0])[:, None], axis=0)
    return rank


def _assign_run(values: np.ndarray, m: int, ns: list[int], key_dtype: np.dtype) -> np.ndarray:
    """Term index (uint8, 1-based within the run, 0 = not kept) of a run of ``N_i:m`` terms.

    ``values`` is ``(rows, L)``; values that may not be kept are 0. A ragged ``L`` is padded with
    zeros to a multiple of ``m`` (and the index cut back to ``L``). The blocks are processed in
    chunks of about 2^17 values so that the transposed magnitudes, their ranks and the index of
    one chunk stay in cache (a cache-blocking loop, not a loop over blocks).
    """
    rows, length = values.shape
    padded = -(-length // m) * m
    if padded != length:
        values = np.concatenate([values, np.zeros((rows, padded - length), values.dtype)], axis=1)
    blocks = rows * padded // m
    src = values.reshape(blocks, m)
    out = np.empty((blocks, m), dtype=np.uint8)
    cum = [int(c) for c in np.cumsum(ns)]
    k = len(ns)
    chunk = max(1, _CHUNK_VALUES // m)
    key_t = np.empty((m, min(chunk, blocks)), dtype=key_dtype)
    mask = np.empty(key_t.shape, dtype=np.bool_)
    idx_t = np.empty(key_t.shape, dtype=np.uint8)
    for start in range(0, blocks, chunk):
        stop = min(start + chunk, blocks)
        width = stop - start
        kt, mk, it = key_t[:, :width], mask[:, :width], idx_t[:, :width]
        np.abs(src[start:stop].T, out=kt, dtype=key_dtype)
        peak = kt.max()
        if not np.isfinite(peak):
            bad = "NaN" if np.isnan(peak) else "inf"
            raise ValueError(f"array contains {bad} values; expected only finite numbers")
        rank = _block_ranks_pairwise(kt) if m <= _PAIRWISE_MAX_M else _block_ranks_argsort(kt)
        # idx = k*[r < C_k] - sum_{i<k} [r < C_i]: a value in term j (C_{j-1} <= r < C_j) has
        # [r < C_i] = 1 exactly for i >= j, giving k - (k - j) = j; ranks >= C_k give 0.
        np.less(rank, cum[-1], out=mk)
        np.multiply(mk.view(np.uint8), np.uint8(k), out=it)
        for c in cum[:-1]:
            np.less(rank, c, out=mk)
            it -= mk.view(np.uint8)
        np.greater(kt, 0, out=mk)  # zeros (and values taken by earlier runs) are never kept
        it *= mk.view(np.uint8)
        dst = out[start:stop]
        for j in range(m):  # strided write-back of the transposed chunk, one block slot at a time
            dst[:, j] = it[j]
    return out.reshape(rows, padded)[:, :length]


def _runs(terms: tuple[NMPattern, ...]) -> list[tuple[int, list[int]]]:
    """Split the series into maximal runs of consecutive terms sharing one M: ``[(M, [N...])]``."""
    runs: list[tuple[int, list[int]]] = []
    for t in terms:
        if runs and runs[-1][0] == t.m:
            runs[-1][1].append(t.n)
        else:
            runs.append((t.m, [t.n]))
    return runs


@dataclass(frozen=True, eq=False)
class Decomposition:
    """The result of :func:`decompose`: ``array = term(1) + ... + term(k) + residual()``.

    Attributes:
        array: the decomposed array: a read-only view of the caller's array, not a copy (do not
            modify the original while the decomposition is in use).
        series: the series used (``dense`` is recorded as given; its one term is ``1:1``).
        axis: the (non-negative) axis the blocks run along.
        index: per-element term index, uint8, same shape as ``array``: 0 = residual, i = term i.
    """

    array: np.ndarray
    series: TasdSeries
    axis: int
    index: np.ndarray = field(repr=False)

    @property
    def patterns(self) -> tuple[NMPattern, ...]:
        """The patterns of the terms (``(1:1,)`` for the dense series)."""
        return self.series.terms or (NMPattern(1, 1),)

    @property
    def n_terms(self) -> int:
        """Number of terms k."""
        return len(self.patterns)

    def term(self, i: int) -> np.ndarray:
        """Term ``i`` (1-based) as a new array: ``array`` where ``index == i``, else 0."""
        if not isinstance(i, (int, np.integer)) or not 1 <= i <= self.n_terms:
            raise ValueError(f"term index {i!r} out of range, expected 1..{self.n_terms}")
        return np.where(self.index == i, self.array, np.zeros((), dtype=self.array.dtype))

    def terms(self) -> list[np.ndarray]:
        """All terms, in series order."""
        return [self.term(i) for i in range(1, self.n_terms + 1)]

    def residual(self) -> np.ndarray:
        """What no term kept: ``array`` where ``index == 0``, else 0."""
        return np.where(self.index == 0, self.array, np.zeros((), dtype=self.array.dtype))

    def approximation(self) -> np.ndarray:
        """Sum of all terms, ``array - residual`` (the values some term kept)."""
        return np.where(self.index != 0, self.array, np.zeros((), dtype=self.array.dtype))

    @cached_property
    def _sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Per index value ``v = 0..k``: non-zero count, L1 mass ``sum |a|`` and squared mass
        ``sum (a / peak)^2`` (float64, ``peak = max |a|``: scaled so that neither subnormal
        values underflow to 0 nor huge ones overflow when squared; every ratio of squared masses
        is unchanged by the scale) of the values with ``index == v``; and the total non-zeros.

        Accumulated over cache-sized chunks of the flattened array (a cache-blocking loop).
        """
        values = np.ravel(self.array)
        flat_idx = self.index.ravel()
        k1 = self.n_terms + 1
        counts = np.zeros(k1, dtype=np.int64)
        l1 = np.zeros(k1, dtype=np.float64)
        sq = np.zeros(k1, dtype=np.float64)
        nnz = 0
        peak = 0.0
        for start in range(0, values.size, _CHUNK_VALUES):
            chunk = values[start : start + _CHUNK_VALUES]
            if chunk.size:
                peak = max(peak, float(np.max(np.abs(chunk, dtype=np.float64))))
        peak = peak if peak > 0 else 1.0
        for start in range(0, values.size, _CHUNK_VALUES):
            mag = np.abs(values[start : start + _CHUNK_VALUES], dtype=np.float64)
            idx = flat_idx[start : start + _CHUNK_VALUES]
            nnz += int(np.count_nonzero(mag))
            counts += np.bincount(idx, minlength=k1)
            for v in range(k1):
                sel = mag * (idx == v)
                l1[v] += sel.sum()
                sel /= peak  # division: 1 / a subnormal peak would overflow
                sel *= sel
                sq[v] += sel.sum()
        counts[0] = nnz - int(counts[1:].sum())  # residual non-zeros (index 0 also holds zeros)
        return counts, l1, sq, nnz

    @property
    def total_nnz(self) -> int:
        """Non-zeros of ``array`` (count)."""
        return self._sums[3]

    @property
    def kept_nnz(self) -> tuple[int, ...]:
        """Non-zeros kept by each term (count); ``sum(kept_nnz) + residual_nnz == total_nnz``."""
        return tuple(int(c) for c in self._sums[0][1:])

    @property
    def residual_nnz(self) -> int:
        """Non-zeros left in the residual (count)."""
        return int(self._sums[0][0])

    @property
    def kept_nnz_fraction(self) -> tuple[float, ...]:
        """Per term: kept non-zeros / non-zeros of ``array`` (0 for an all-zero array)."""
        nnz = self.total_nnz
        return tuple(c / nnz if nnz else 0.0 for c in self.kept_nnz)

    @property
    def kept_l1_fraction(self) -> tuple[float, ...]:
        """Per term: sum |T_i| / sum |A| (dimensionless; 0 for an all-zero array)."""
        l1 = self._sums[1]
        total = float(l1.sum())
        return tuple(float(v) / total if total else 0.0 for v in l1[1:])

    @property
    def rel_error_cumulative(self) -> tuple[float, ...]:
        """After terms 1..i: ||A - T_1 - ... - T_i||_F / ||A||_F (dimensionless; 0 if A == 0).

        The squared norm of what terms ``> i`` and the residual hold, over the total, square-rooted.
        """
        sq = self._sums[2]
        total = float(sq.sum())
        if total == 0.0:
            return tuple(0.0 for _ in range(self.n_terms))
        left = [float(sq[0]) + float(sq[i + 1 :].sum()) for i in range(1, self.n_terms + 1)]
        return tuple(math.sqrt(max(v, 0.0) / total) for v in left)

    @property
    def rel_error(self) -> float:
        """||R||_F / ||A||_F after all terms (dimensionless; 0 for an all-zero array)."""
        return self.rel_error_cumulative[-1]

    def metrics(self) -> dict[str, Any]:
        """Plain-data summary (JSON-ready) of the per-term metrics."""
        return {
            "series": str(self.series),
            "axis": self.axis,
            "shape": list(self.array.shape),
            "total_nnz": self.total_nnz,
            "terms": [
                {
                    "term": i + 1,
                    "pattern": str(p),
                    "kept_nnz": self.kept_nnz[i],
                    "kept_nnz_fraction": self.kept_nnz_fraction[i],
                    "kept_l1_fraction": self.kept_l1_fraction[i],
                    "rel_error_after": self.rel_error_cumulative[i],
                }
                for i, p in enumerate(self.patterns)
            ],
            "residual_nnz": self.residual_nnz,
            "rel_error": self.rel_error,
        }


def decompose(array: Any, series: TasdSeries | NMPattern | str, axis: int = -1) -> Decomposition:
    """Greedy TASD decomposition of a real array along ``axis`` (see the module docstring).

    Args:
        array: any real numeric array (int, float or bool), any rank >= 1.
        series: a :class:`TasdSeries`, an :class:`NMPattern` or a string such as ``"2:8+1:8"``.
        axis: the axis the N:M blocks run along (the GEMM reduction axis); negative counts from
            the end.

    Returns:
        A :class:`Decomposition` holding one uint8 term index per element.

    Raises:
        ValueError: non-numeric/complex array, NaN or inf values, bad axis, bad series, or more
            than 255 terms.
    """
    arr = _as_real_array(array)
    ser = TasdSeries.parse(series)
    ax = _normalise_axis(axis, arr.ndim)
    patterns = ser.terms or (NMPattern(1, 1),)
    if len(patterns) > _MAX_TERMS:
        raise ValueError(f"series {ser} has {len(patterns)} terms, at most {_MAX_TERMS} supported")
    view = arr.view()
    view.flags.writeable = False

    moved_shape = (*(s for d, s in enumerate(arr.shape) if d != ax), arr.shape[ax])
    if arr.size == 0:
        index = np.zeros(arr.shape, dtype=np.uint8)
        return Decomposition(view, ser, ax, index)

    length = arr.shape[ax]
    values = _rows(arr, ax, length)
    key_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)

    index_rows: np.ndarray | None = None
    first = 1
    for m, ns in _runs(patterns):
        run_idx = _assign_run(values, m, ns, key_dtype)
        if index_rows is None:
            index_rows = run_idx
        else:
            taken = run_idx > 0
            index_rows[taken] = run_idx[taken] + np.uint8(first - 1)
        first += len(ns)
        if first <= len(patterns):  # later runs only see what earlier terms left
            values = np.where(index_rows > 0, np.zeros((), dtype=values.dtype), values)
    assert index_rows is not None
    index = np.moveaxis(index_rows.reshape(moved_shape), -1, ax)
    return Decomposition(view, ser, ax, np.ascontiguousarray(index))


def is_compliant(array: Any, pattern: NMPattern | str, axis: int = -1) -> bool:
    """True when every aligned M-block of ``array`` along ``axis`` holds at most N non-zeros.

    A ragged last block is padded with zeros (so it is judged on the values it has).
    """
    arr = _as_real_array(array)
    pat = NMPattern.parse(pattern)
    ax = _normalise_axis(axis, arr.ndim)
    if arr.size == 0:
        return True
    length = arr.shape[ax]
    padded = -(-length // pat.m) * pat.m
    nz = _rows(arr != 0, ax, padded)
    per_block = nz.reshape(-1, pat.m).sum(axis=1, dtype=np.int64)
    return bool((per_block <= pat.n).all())
