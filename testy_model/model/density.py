"""Density models of sparse tensors, vectorised over tile shapes (Sparseloop's density models).

A density model answers, for a tile of ``s`` values of a tensor of ``N`` values, the probability
that the tile holds ``k`` non-zeros, unconditionally or *given* that an enclosing tile of ``S``
values holds ``O`` (Timeloop's ``ExtraTileConstraintInfo``). Models (``src/workload/
density-models/*.cpp`` of Timeloop v3.0.3, plus this project's N:M):

- ``dense``: every value non-zero.
- ``fixed_structured`` (density d): a tile of s values holds exactly ``x = s·d`` non-zeros,
  rounded down with probability ``1 − frac(x)`` and up with ``frac(x)``; given (S, O) the
  density is ``O/S``. (``FixedStructuredDistribution::GetTileOccupancyProbability``.)
- ``hypergeometric`` (density d): ``r = ⌈d·N⌉`` non-zeros placed uniformly;
  ``P(k) = C(r, k)·C(N−r, s−k) / C(N, s)``; given (S, O): the same with N = S, r = O.
- ``bernoulli`` (density d): values independent, ``P(k) = Binomial(s, d)``; given (S, O) as
  hypergeometric.
- ``nm`` (this project's explicit N:M along the reduction axis): every aligned M-block holds
  exactly N non-zeros. A tile whose extent e along the axis covers whole blocks holds exactly
  ``s·N/M``; a tile inside one block (e < M) holds per row a hypergeometric ``Hyp(M, N, e)``
  count, rows independent: ``P(empty) = (C(M−e, N)/C(M, N))^rows``.
- ``banded`` (band width w, square 2-D tensors): exact counts of the diagonal band enumerated
  over the tile grid (``BandedDistribution``), evaluated per tile shape and cached.

Units: probabilities; shapes and occupancies in values (words).
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from testy_model.spec.workload import Density, Problem

_LANCZOS = (
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
)


def lgamma(x: np.ndarray) -> np.ndarray:
    """Vectorised ``ln Γ(x)`` for x > 0 (Lanczos, g = 7; relative error ~1e-15)."""
    x = np.asarray(x, dtype=np.float64) - 1.0
    a = np.full_like(x, _LANCZOS[0])
    for i, c in enumerate(_LANCZOS[1:], start=1):
        a = a + c / (x + i)
    t = x + 7.5
    return 0.5 * math.log(2 * math.pi) + (x + 0.5) * np.log(t) - t + np.log(a)


def log_comb(n: float | np.ndarray, k: np.ndarray) -> np.ndarray:
    """``ln C(n, k)`` (−inf where k < 0 or k > n)."""
    n = np.asarray(n, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    ok = (k >= 0) & (k <= n)
    nn, kk = np.where(ok, n, 1.0), np.where(ok, k, 0.0)
    out = lgamma(nn + 1) - lgamma(kk + 1) - lgamma(nn - kk + 1)
    return np.where(ok, out, -np.inf)


def hypergeom_pmf(
    k: np.ndarray, big_n: np.ndarray, r: float | np.ndarray, n: np.ndarray
) -> np.ndarray:
    """``P(k) = C(r, k)·C(N−r, n−k) / C(N, n)`` (0 outside the support)."""
    with np.errstate(invalid="ignore"):  # −inf − (−inf) outside the support: 0 below
        lp = log_comb(r, k) + log_comb(big_n - r, n - k) - log_comb(big_n, n)
    return np.where(np.isfinite(lp), np.exp(lp), 0.0)


_EXACT_DRAWS = 512
#: Boost's ``max_factorial<long double>``: up to this population Boost evaluates the
#: hypergeometric pdf from its table of factorials in 80-bit long double
#: (``hypergeometric_pdf_factorial_imp``)
_BOOST_MAX_FACTORIAL = 1754
_HAS_LONG_DOUBLE = np.finfo(np.longdouble).nmant >= 63


@lru_cache(maxsize=4096)
def _factorial_ld(i: int) -> np.longdouble:
    """``i!`` correctly rounded to long double (Boost's ``unchecked_factorial`` table)."""
    return np.longdouble(str(math.factorial(i)))


@lru_cache(maxsize=1 << 16)
def boost_hypergeom_pdf(x: int, r: int, n: int, big_n: int) -> float:
    """``P(x)`` of the hypergeometric distribution exactly as Boost computes it for
    ``N <= 1754`` (``boost/math/distributions/detail/hypergeometric_pdf.hpp``,
    ``hypergeometric_pdf_factorial_imp``: the factorials multiplied and divided alternately in
    long double so the running value stays near 1, then narrowed to double). Timeloop's
    ``HypergeometricDistribution::GetProbability`` calls it; its last bits decide where Timeloop
    floors ``count × probability``."""
    if x > r or x > n or n - x > big_n - r:
        return 0.0
    f = _factorial_ld
    res = f(n)
    num = (f(r), f(big_n - n), f(big_n - r))
    den = (f(big_n), f(x), f(n - x), f(r - x), f(big_n - n - r + x))
    i = j = 0
    while i < 3 or j < 5:
        while j < 5 and (res >= 1 or i >= 3):
            res /= den[j]
            j += 1
        while i < 3 and (res <= 1 or j >= 5):
            res *= num[i]
            i += 1
    return min(max(float(res), 0.0), 1.0)


def _boost_region(big_n: np.ndarray, r: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Where Boost's factorial path applies (integer arguments, N <= 1754, long double)."""
    if not _HAS_LONG_DOUBLE:
        return np.zeros(np.shape(n), bool)
    integral = (big_n == np.round(big_n)) & (r == np.round(r)) & (n == np.round(n))
    return integral & (big_n <= _BOOST_MAX_FACTORIAL) & (n >= 0) & (r >= 0) & (n <= big_n)


#: ``-ln`` of a probability that is 0.0 in double precision (e^−745.2 rounds to 0)
_UNDERFLOW_EXPONENT = 760.0


def hypergeom_empty(big_n: float | np.ndarray, r: float | np.ndarray, n: np.ndarray) -> np.ndarray:
    """``P(0) = C(N−r, n) / C(N, n)`` for n draws from N with r marked (1 when r = 0).

    For N <= 1754 Boost's own arithmetic (:func:`boost_hypergeom_pdf`, bit for bit what
    Timeloop gets); otherwise up to 512 draws the product ``Π_{i<n} (N−r−i)/(N−i)`` term by
    term, beyond via ``lgamma``; outside Boost's range, where the result underflows it is 0
    without evaluating either form: ``ln P(0) <= n·ln(1 − r/N) <= −n·r/N``, so ``n·r/N > 760``
    gives ``P(0) < e^−760``, below the least double (``e^−744.4``). Each value depends on its
    own (N, r, n) only, so rows of a batch repeated across candidates are computed once."""
    big_n, r, n = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (big_n, r, n)))
    if n.ndim >= 2 and n.size > _DEDUP_MIN:  # many candidates repeat one row: each row once
        cols = n.shape[-1]
        rows = np.concatenate([x.reshape(-1, cols) for x in (big_n, r, n)], axis=1)
        first, inv = distinct_rows(rows)
        if 2 * len(first) <= len(rows):
            u = rows[first]
            once = _hypergeom_empty(u[:, :cols], u[:, cols : 2 * cols], u[:, 2 * cols :])
            return once[inv].reshape(n.shape)
    return _hypergeom_empty(big_n, r, n)


#: below this many values :func:`hypergeom_empty` does not look for repeated rows
_DEDUP_MIN = 1 << 15


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of a 2-D array: the index of the first row of each distinct row, in
    order of first appearance, and each row's group. Rows are told apart by their bytes (exact;
    one dictionary lookup per row, so wide rows cost no lexicographic sort)."""
    slot: dict[bytes, int] = {}
    inv = np.array([slot.setdefault(row.tobytes(), len(slot)) for row in rows], dtype=np.int64)
    _, first = np.unique(inv, return_index=True)
    return first, inv


def _hypergeom_empty(big_n: np.ndarray, r: np.ndarray, n: np.ndarray) -> np.ndarray:
    """:func:`hypergeom_empty` on broadcast arrays, element by element."""
    live = n * r <= _UNDERFLOW_EXPONENT * np.maximum(big_n, 1.0)
    small = (n <= _EXACT_DRAWS) & (n >= 0)
    boost = _boost_region(big_n, r, n)
    rest = ~(small | boost) & live
    small &= live
    out = np.zeros(n.shape)
    if np.any(rest):  # the lgamma form only where neither exact form below applies
        out[rest] = hypergeom_pmf(np.zeros(int(rest.sum())), big_n[rest], r[rest], n[rest])
    if np.any(small):
        bn, rr, nn = big_n[small], r[small], n[small]
        order = np.argsort(-nn, kind="stable")  # most draws first: the i-th factor applies
        bo, left = bn[order], (bn - rr)[order]  # to a prefix (the values with n > i)
        drawing = np.searchsorted(-nn[order], -np.arange(int(nn.max())), side="left")
        prod_o = np.ones_like(nn)
        for i, k in enumerate(drawing.tolist()):
            prod_o[:k] *= np.maximum(left[:k] - i, 0.0) / np.maximum(bo[:k] - i, 1.0)
        prod = np.empty_like(prod_o)
        prod[order] = prod_o
        out = out.copy()
        out[small] = np.where(nn > bn - rr, 0.0, prod)
    if np.any(boost):
        out = out.copy()
        out[boost] = [
            boost_hypergeom_pdf(0, int(a), int(c), int(b))
            for b, a, c in zip(big_n[boost], r[boost], n[boost], strict=True)
        ]
    return out


@dataclass(frozen=True)
class DensityModel:
    """One tensor's density model (module docstring).

    Attributes:
        kind: ``dense``, ``fixed_structured``, ``hypergeometric``, ``bernoulli``, ``nm`` or
            ``banded``.
        density: expected non-zero fraction d (1 for dense).
        tensor_size: N, values of the whole tensor.
        n, m: the N:M pattern (``nm``).
        band_width: the band's half width (``banded``).
        dims: the tensor's (rows, columns) (``banded``).
    """

    kind: str = "dense"
    density: float = 1.0
    tensor_size: float = 1.0
    n: int = 0
    m: int = 1
    band_width: int = 0
    dims: tuple[int, int] = (1, 1)

    @property
    def is_dense(self) -> bool:
        """True when every value is non-zero."""
        return self.kind == "dense" or (self.kind != "banded" and self.density >= 1.0)

    @property
    def total_nonzeros(self) -> float:
        """Non-zeros of the whole tensor: ``⌈d·N⌉`` (hypergeometric), ``d·N`` otherwise."""
        if self.kind == "hypergeometric":
            return float(math.ceil(self.density * self.tensor_size - 1e-9))
        if self.kind == "banded":
            return _band_nnz(self.dims[0], self.band_width)
        return self.density * self.tensor_size

    def prob_empty(self, shape: np.ndarray) -> np.ndarray:
        """P(a tile of ``shape`` values holds no non-zero), unconditionally."""
        s = np.asarray(shape, dtype=np.float64)
        if self.is_dense:
            return np.where(s > 0, 0.0, 1.0)
        if self.kind == "fixed_structured":
            x = s * self.density
            return np.where(np.floor(x + 1e-12) == 0, 1.0 - (x - np.floor(x + 1e-12)), 0.0)
        if self.kind == "hypergeometric":
            return hypergeom_empty(self.tensor_size, self.total_nonzeros, s)
        if self.kind == "bernoulli":
            return (1.0 - self.density) ** s
        if self.kind == "nm":
            along = np.minimum(s, self.m)
            per = hypergeom_empty(float(self.m), float(self.n), along)
            return np.where(s >= self.m, 0.0, per ** np.maximum(s / np.maximum(along, 1), 1.0))
        return np.asarray(_banded_empty(self, s))

    def prob_empty_given(
        self, shape: np.ndarray, cons_shape: np.ndarray, cons_occ: np.ndarray
    ) -> np.ndarray:
        """P(a sub-tile of ``shape`` values is empty | its enclosing tile of ``cons_shape``
        values holds ``cons_occ`` non-zeros)."""
        s = np.asarray(shape, dtype=np.float64)
        big_s = np.maximum(np.asarray(cons_shape, dtype=np.float64), 1.0)
        o = np.asarray(cons_occ, dtype=np.float64)
        if self.kind in ("fixed_structured", "nm") or self.is_dense:
            x = s * o / big_s
            fl = np.floor(x + 1e-9)
            return np.where(fl == 0, 1.0 - (x - fl), 0.0)
        return hypergeom_empty(big_s, o, s)

    def support(self, shape: np.ndarray, width: int = 12) -> tuple[np.ndarray, np.ndarray]:
        """Occupancy distribution of tiles of ``shape`` values: ``(occ, prob)`` of shape
        (..., O), zero-probability padding where a tile has fewer possible counts. Supports
        wider than ``width`` standard deviations around the mean are truncated (the tails are
        below 1e-30)."""
        s = np.atleast_1d(np.asarray(shape, dtype=np.float64))
        if self.is_dense:
            return s[..., None], np.ones_like(s)[..., None]
        if self.kind in ("fixed_structured", "nm"):
            if self.kind == "nm":
                x = s * self.n / self.m
                partial = s < self.m
                if np.any(partial):
                    return self._nm_partial(s)
            else:
                x = s * self.density
            fl = np.floor(x + 1e-9)
            frac = x - fl
            return np.stack([fl, fl + 1.0], axis=-1), np.stack([1.0 - frac, frac], axis=-1)
        if self.kind == "banded":
            return _banded_support(self, s)
        if self.kind == "bernoulli":
            big_n, r = s * 0 + 1e18, None
            mean, var = s * self.density, s * self.density * (1 - self.density)
        else:
            big_n = np.full_like(s, self.tensor_size)
            r = self.total_nonzeros
            mean = s * r / big_n
            var = (
                s
                * (r / big_n)
                * (1 - r / big_n)
                * np.maximum(big_n - s, 0)
                / np.maximum(big_n - 1, 1)
            )
        lo = np.maximum(0.0, np.floor(mean - width * np.sqrt(var) - 2))
        hi = np.minimum(s, np.ceil(mean + width * np.sqrt(var) + 2))
        if r is not None:
            lo = np.maximum(lo, s + r - big_n)
            hi = np.minimum(hi, r)
        span = int(np.max(hi - lo)) + 1
        occ = lo[..., None] + np.arange(span)
        valid = occ <= hi[..., None]
        if self.kind == "bernoulli":
            lp = (
                log_comb(s[..., None], occ)
                + occ * math.log(max(self.density, 1e-300))
                + (s[..., None] - occ) * math.log(max(1 - self.density, 1e-300))
            )
            prob = np.where(np.isfinite(lp), np.exp(lp), 0.0)
        else:
            assert r is not None  # the Bernoulli model alone has no marked count
            prob = hypergeom_pmf(occ, big_n[..., None], r, s[..., None])
        prob = np.where(valid, prob, 0.0)
        total = prob.sum(axis=-1, keepdims=True)
        prob = np.where(total > 0, prob / np.where(total > 0, total, 1.0), prob)
        if self.kind == "hypergeometric":
            # Boost's values where it uses its factorial table (not normalised: Timeloop sums
            # the pdf as Boost returns it)
            assert r is not None
            rr = np.full_like(s, float(r))
            exact = _boost_region(big_n, rr, s)
            for idx in zip(*np.nonzero(exact), strict=True):
                row = occ[idx]
                prob[idx] = [
                    boost_hypergeom_pdf(int(k), int(r), int(s[idx]), int(big_n[idx])) if ok else 0.0
                    for k, ok in zip(row, valid[idx], strict=True)
                ]
        return np.where(valid, occ, 0.0), prob

    def _nm_partial(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """N:M occupancy for tiles with some inside one block: per-row ``Hyp(M, N, e)``
        convolved over the rows (whole-block tiles stay exact)."""
        m, n = self.m, self.n
        out_occ, out_p = [], []
        for size in s.reshape(-1):
            occ, p = _nm_pmf(int(size), n, m)
            out_occ.append(occ)
            out_p.append(p)
        width = max(len(o) for o in out_occ)
        occ_a = np.zeros((len(out_occ), width))
        p_a = np.zeros((len(out_occ), width))
        for i, (o, p) in enumerate(zip(out_occ, out_p, strict=True)):
            occ_a[i, : len(o)], p_a[i, : len(p)] = o, p
        return occ_a.reshape(*s.shape, width), p_a.reshape(*s.shape, width)

    def max_occupancy(self, shape: np.ndarray) -> np.ndarray:
        """The largest occupancy a tile of ``shape`` values can have (confidence 1)."""
        occ, p = self.support(shape)
        return np.where(p > 0, occ, 0.0).max(axis=-1)

    def expected_occupancy(self, shape: np.ndarray) -> np.ndarray:
        """Expected non-zeros of a tile of ``shape`` values."""
        s = np.asarray(shape, dtype=np.float64)
        if self.is_dense:
            return s
        if self.kind == "hypergeometric":
            return s * self.total_nonzeros / self.tensor_size
        if self.kind == "banded":
            return s * self.total_nonzeros / self.tensor_size
        if self.kind == "nm":
            return s * self.n / self.m
        return s * self.density


@lru_cache(maxsize=1024)
def _nm_pmf(size: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy pmf of an N:M tile of ``size`` values (rows of min(size, m) values)."""
    if size >= m:
        return np.array([size * n / m]), np.array([1.0])
    rows = 1
    e = size
    den = math.comb(m, e)
    one = np.array([math.comb(n, k) * math.comb(m - n, e - k) / den for k in range(min(n, e) + 1)])
    pmf = one
    for _ in range(rows - 1):
        pmf = np.convolve(pmf, one)
    return np.arange(len(pmf), dtype=np.float64), pmf


def _band_nnz(dim: int, width: int) -> float:
    """Non-zeros of a dim × dim matrix with a band of half width ``width``."""
    return float(dim + sum(2 * (dim - u) for u in range(1, width + 1)))


@lru_cache(maxsize=4096)
def _banded_hist(dim: int, width: int, rows: int, cols: int) -> tuple[tuple[int, float], ...]:
    """(occupancy, probability) over the aligned ``rows × cols`` tiles of a banded matrix."""
    n_r, n_c = dim // max(rows, 1), dim // max(cols, 1)
    counts: dict[int, int] = {}
    for i in range(n_r):
        r0 = i * rows
        for j in range(n_c):
            c0 = j * cols
            nnz = 0
            for r in range(r0, r0 + rows):
                lo, hi = max(c0, r - width), min(c0 + cols, r + width + 1)
                nnz += max(0, hi - lo)
            counts[nnz] = counts.get(nnz, 0) + 1
    total = n_r * n_c
    return tuple((k, v / total) for k, v in sorted(counts.items()))


def _banded_empty(model: DensityModel, s: np.ndarray) -> np.ndarray:
    """P(empty) of square-ish tiles of ``s`` values (rows = cols = √s when possible)."""
    out = np.zeros_like(s)
    for i, size in np.ndenumerate(s):
        rows = max(1, math.isqrt(int(size)))
        cols = max(1, int(size) // rows)
        hist = dict(_banded_hist(model.dims[0], model.band_width, rows, cols))
        out[i] = hist.get(0, 0.0)
    return out


def _banded_support(model: DensityModel, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy distribution of tiles of ``s`` values of a banded matrix."""
    hists = []
    for size in s.reshape(-1):
        rows = max(1, math.isqrt(int(size)))
        cols = max(1, int(size) // rows)
        hists.append(_banded_hist(model.dims[0], model.band_width, rows, cols))
    width = max(len(h) for h in hists)
    occ = np.zeros((len(hists), width))
    prob = np.zeros((len(hists), width))
    for i, h in enumerate(hists):
        for j, (k, p) in enumerate(h):
            occ[i, j], prob[i, j] = k, p
    return occ.reshape(*s.shape, width), prob.reshape(*s.shape, width)


def model_of(
    density: Density | None, tensor_size: float, dims: tuple[int, int] = (1, 1)
) -> DensityModel:
    """The :class:`DensityModel` of a spec :class:`~testy_model.spec.workload.Density` for a
    tensor of ``tensor_size`` values (``dims``: its two ranks' sizes, for ``banded``)."""
    kind = getattr(density, "kind", "dense")
    value = float(getattr(density, "value", 1.0))
    if kind == "nm":
        assert density is not None and density.pattern is not None  # Density's own check
        pat = density.pattern
        return DensityModel("nm", pat.density, float(tensor_size), pat.n, pat.m)
    if kind == "banded":
        bw = int(getattr(density, "band_width", 0) or 0)
        return DensityModel("banded", value, float(tensor_size), band_width=bw, dims=dims)
    if kind == "dense" or (value >= 1.0 and kind != "banded"):
        return DensityModel("dense", 1.0, float(tensor_size))
    if kind == "tensor":
        kind = "hypergeometric"
    return DensityModel(kind, value, float(tensor_size))


def density_models(
    problem: Problem, densities: MappingABC[str, Density] | None = None
) -> dict[str, DensityModel]:
    """Density models of every tensor of ``problem`` (``densities`` overrides
    ``problem.densities``); tensor sizes from the problem's bounds."""
    out = {}
    given = dict(getattr(problem, "densities", {}) or {})
    given.update(dict(densities or {}))
    for t in problem.tensor_names:
        size = float(problem.full_size(t))
        ranks = problem.data_space(t).projection
        bounds = problem.bounds
        ext = [sum(problem.coef(c) * (bounds[d] - 1) for d, c in r) + 1 for r in ranks]
        dims = (int(ext[0]), int(ext[-1])) if ext else (1, 1)
        out[t] = model_of(given.get(t), size, dims)
    return out
