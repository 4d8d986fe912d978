"""Closed-form expected kept density of every TASD term when only a density is known.

Model (``design.md``, "Closed-form statistics"). The non-zeros ``X`` of one aligned ``M``-block are

* ``bernoulli``: ``X ~ Binomial(M, d)`` (every value non-zero independently with probability d);
* ``hypergeometric``: ``X ~ Hypergeometric(T, K, M)`` with population ``T = tensor_size`` values of
  which ``K = round(d * T)`` are non-zero, ``M`` drawn (a tensor with exactly K non-zeros).

For a run of consecutive terms sharing one ``M`` (greedy by magnitude, see ``decompose.py``), with
``S_i = N_1 + ... + N_{i-1}`` the values the earlier terms of the run took, term ``i`` keeps

    E[kept_i] = sum_x P(X = x) * min(max(x - S_i, 0), N_i)        (non-zeros per block)

and its kept density is ``E[kept_i] / M`` (a fraction of all values of the tensor). This is exact
for any i.i.d. magnitudes, because greedy selection in a block depends only on the count there.

Mixed ``M`` across terms. The count ``Y`` left in a block of the previous run (pmf over
``0..M_prev``) is carried to the next run's block size ``M'``:

* ``M' | M_prev``: the remaining values sit at uniformly random positions of their block (the
  kept ones are the top magnitudes, which are independent of positions), so an ``M'``-sub-block
  holds ``Y' ~ Hypergeometric(M_prev, Y, M')``. Exact for the marginal of each sub-block.
* ``M_prev | M'``: an ``M'``-block is ``g = M'/M_prev`` blocks of the previous run, taken as
  independent, so ``Y'`` is the ``g``-fold convolution of the pmf. Exact for ``bernoulli``;
  for ``hypergeometric`` it neglects the (small, order ``M'/T``) dependence between blocks.
* otherwise (neither divides the other): the remaining values are taken as i.i.d. with the
  remaining density ``r = E[Y] / M_prev``, so ``Y' ~ Binomial(M', r)``. An approximation.

Two runs where one ``M`` divides the other are therefore exact (``bernoulli``); a third run
after a change of ``M`` inherits the approximation that sibling blocks are independent. The
Monte-Carlo agreement is measured in ``tests/test_stats.py`` (decompositions of random tensors,
densities 0.1..0.9): within 0.001 absolute for ``2:8+1:4``, ``1:4+2:8``, ``2:16+1:4``,
``1:4+1:16``, ``2:8+1:4+1:8``; up to 0.006 for ``1:3+1:4`` (neither M divides the other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from testy_model.tasd.pattern import NMPattern, TasdSeries

__all__ = [
    "ExpectedKept",
    "block_count_pmf",
    "expected_kept",
    "expected_mass_kept",
    "order_stat_moments",
]

Distribution = Literal["bernoulli", "hypergeometric"]


@dataclass(frozen=True, eq=False)
class ExpectedKept:
    """Expected kept densities (fractions of all values, dimensionless).

    Attributes:
        series: the series (``dense`` is one ``1:1`` term keeping every non-zero).
        density: the effective input density, shape ``S`` (``K/T`` for ``hypergeometric``).
        terms: shape ``(k, *S)``: expected density kept by each term.
        residual: shape ``S``: ``density - terms.sum(0)``, the expected density dropped.
    """

    series: TasdSeries
    density: np.ndarray
    terms: np.ndarray
    residual: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """Total expected kept density, ``terms.sum(0)`` (shape ``S``)."""
        return self.terms.sum(axis=0)

    @property
    def kept_fraction(self) -> np.ndarray:
        """Expected kept fraction of the non-zeros, ``kept / density`` (1 where density is 0)."""
        d = self.density
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d > 0, self.kept / np.where(d > 0, d, 1.0), 1.0)


def _log_choose(n: np.ndarray, x: int) -> np.ndarray:
    """log C(n, x) for an array ``n`` of non-negative integers (as floats); ``-inf`` where n < x.

    ``log C(n, x) = sum_{t=0}^{x-1} log(n - t) - log(x!)``.
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.full(n.shape, -math.lgamma(x + 1), dtype=np.float64)
    valid = n >= x
    for t in range(x):
        out += np.log(np.where(valid, n - t, 1.0))
    return np.where(valid, out, -np.inf)


def _binomial_pmf(m: int, d: np.ndarray) -> np.ndarray:
    """P(X = x), X ~ Binomial(m, d): ``C(m, x) d^x (1-d)^(m-x)``; shape ``(*d.shape, m + 1)``."""
    x = np.arange(m + 1)
    coef = np.array([math.comb(m, int(v)) for v in x], dtype=np.float64)
    dd = d[..., None]
    return coef * dd**x * (1.0 - dd) ** (m - x)


def _hypergeometric_pmf(m: int, k: np.ndarray, t: int) -> np.ndarray:
    """P(X = x), X ~ Hypergeometric(population t, successes k, draws m):
    ``C(k, x) C(t - k, m - x) / C(t, m)``; shape ``(*k.shape, m + 1)``."""
    log_total = _log_choose(np.array(t), m)
    cols = [np.exp(_log_choose(k, x) + _log_choose(t - k, m - x) - log_total) for x in range(m + 1)]
    return np.stack(cols, axis=-1)


def _split_matrix(m_prev: int, m_new: int) -> np.ndarray:
    """``H[y, y'] = P(Y' = y' | Y = y)`` for a uniformly random y-subset of ``m_prev`` positions
    seen through ``m_new`` of them: ``C(y, y') C(m_prev - y, m_new - y') / C(m_prev, m_new)``."""
    h = np.zeros((m_prev + 1, m_new + 1), dtype=np.float64)
    total = math.comb(m_prev, m_new)
    for y in range(m_prev + 1):
        for yp in range(min(y, m_new) + 1):
            h[y, yp] = math.comb(y, yp) * math.comb(m_prev - y, m_new - yp) / total
    return h


def _convolve_power(pmf: np.ndarray, g: int) -> np.ndarray:
    """pmf of the sum of ``g`` independent copies (last axis is the count)."""
    out = pmf
    for _ in range(g - 1):
        a, b = out.shape[-1], pmf.shape[-1]
        nxt = np.zeros((*pmf.shape[:-1], a + b - 1), dtype=np.float64)
        for j in range(b):
            nxt[..., j : j + a] += out * pmf[..., j : j + 1]
        out = nxt
    return out


def _check_density(density: np.ndarray | float) -> np.ndarray:
    d = np.asarray(density, dtype=np.float64)
    if not np.all(np.isfinite(d)) or np.any(d < 0) or np.any(d > 1):
        raise ValueError(f"density {density!r} must lie in [0, 1] (a fraction of non-zero values)")
    return d


def block_count_pmf(
    m: int,
    density: np.ndarray | float,
    distribution: Distribution = "bernoulli",
    tensor_size: int | None = None,
) -> np.ndarray:
    """pmf of the non-zeros ``X`` of one ``m``-block, shape ``(*density.shape, m + 1)``.

    ``bernoulli``: ``Binomial(m, d)``; ``hypergeometric``: ``Hypergeometric(T, round(d T), m)``
    with ``T = tensor_size`` (required, an integer >= m).
    """
    d = _check_density(density)
    if distribution == "bernoulli":
        return _binomial_pmf(m, d)
    if distribution == "hypergeometric":
        t = _check_tensor_size(tensor_size, m)
        return _hypergeometric_pmf(m, np.rint(d * t), t)
    raise ValueError(
        f"unknown distribution {distribution!r}, expected 'bernoulli' or 'hypergeometric'"
    )


def _check_tensor_size(tensor_size: int | None, m: int) -> int:
    if isinstance(tensor_size, bool) or not isinstance(tensor_size, (int, np.integer)):
        raise ValueError(
            f"tensor_size {tensor_size!r}: the hypergeometric distribution needs the number of "
            "values of the tensor (an integer)"
        )
    if tensor_size < m:
        raise ValueError(f"tensor_size {tensor_size} must be at least the block size M = {m}")
    return int(tensor_size)


def _carry(pmf: np.ndarray, m_prev: int, m_new: int) -> np.ndarray:
    """pmf of the remaining count in an ``m_new``-block from that in an ``m_prev``-block."""
    if m_prev % m_new == 0:
        return pmf @ _split_matrix(m_prev, m_new)
    if m_new % m_prev == 0:
        return _convolve_power(pmf, m_new // m_prev)
    r = (pmf @ np.arange(m_prev + 1)) / m_prev
    return _binomial_pmf(m_new, np.clip(r, 0.0, 1.0))


def expected_kept(
    series: TasdSeries | NMPattern | str,
    density: np.ndarray | float,
    distribution: Distribution = "bernoulli",
    tensor_size: int | None = None,
) -> ExpectedKept:
    """Expected kept density of every term and of the residual (see the module docstring).

    Args:
        series: the TASD series (``"2:8+1:8"``, an :class:`NMPattern`, ``"dense"``).
        density: density (fraction of non-zero values, in [0, 1]); any array shape ``S``.
        distribution: ``"bernoulli"`` or ``"hypergeometric"``.
        tensor_size: number of values ``T`` of the tensor (``hypergeometric`` only).

    Returns:
        :class:`ExpectedKept` with ``terms`` of shape ``(k, *S)`` and ``residual`` of shape ``S``.

    Raises:
        ValueError: bad series, density outside [0, 1], unknown distribution, bad tensor_size.
    """
    ser = TasdSeries.parse(series)
    d = _check_density(density)
    patterns = ser.terms or (NMPattern(1, 1),)
    m0 = patterns[0].m
    if distribution == "hypergeometric":
        t = _check_tensor_size(tensor_size, max(p.m for p in patterns))
        d = np.rint(d * t) / t
    pmf = block_count_pmf(m0, d, distribution, tensor_size)

    kept: list[np.ndarray] = []
    m_cur = m0
    i = 0
    while i < len(patterns):
        m = patterns[i].m
        if m != m_cur:
            pmf = _carry(pmf, m_cur, m)
            m_cur = m
        x = np.arange(m + 1)
        s = 0
        while i < len(patterns) and patterns[i].m == m:
            n = patterns[i].n
            kept.append(pmf @ np.clip(x - s, 0, n).astype(np.float64) / m)
            s += n
            i += 1
        # what this run leaves: Y = max(X - S, 0), as a pmf over 0..m
        left = np.zeros_like(pmf)
        for v in range(m + 1):
            left[..., max(v - s, 0)] += pmf[..., v]
        pmf = left
    terms = np.stack(kept, axis=0)
    return ExpectedKept(ser, d, terms, d - terms.sum(axis=0))


# ---------------------------------------------------------------------------------------------
# Expected kept fraction of the magnitude mass (L1 or squared), i.i.d. magnitudes, one M

Magnitude = Literal["halfnormal", "uniform", "exponential"]


def order_stat_moments(n_max: int, power: int, magnitude: Magnitude = "halfnormal") -> np.ndarray:
    """``mu[n, r] = E[Y_(r:n)^power]``: moment of the r-th largest (r = 1..n) of n i.i.d.
    magnitudes Y, for n = 0..n_max; shape ``(n_max + 1, n_max + 1)``, zero where r = 0 or r > n.

    The r-th largest of n has density ``n!/((r-1)!(n-r)!) F^(n-r) (1-F)^(r-1) f``. Closed forms:

    * ``uniform`` (Y ~ U(0, 1)): it is Beta(a = n+1-r, b = r): ``E[Y] = a/(n+1)``,
      ``E[Y^2] = a(a+1)/((n+1)(n+2))``;
    * ``exponential`` (rate 1): it is ``sum_{j=r}^{n} E_j / j`` (Renyi), so
      ``E[Y] = H = sum_{j=r}^{n} 1/j`` and ``E[Y^2] = sum_{j=r}^{n} 1/j^2 + H^2``;
    * ``halfnormal`` (|N(0, 1)|, the magnitudes of Gaussian weights): no closed form; the
      integral is evaluated by the trapezoidal rule on y in [0, 12] (20,001 points; measured
      error < 1e-7).

    The kept mass fractions below are scale-free, so the scale of Y does not matter.
    """
    if power not in (1, 2):
        raise ValueError(f"power {power!r}: expected 1 (L1 mass) or 2 (squared mass)")
    mu = np.zeros((n_max + 1, n_max + 1), dtype=np.float64)
    if magnitude == "uniform":
        for n in range(1, n_max + 1):
            a = n + 1 - np.arange(1, n + 1, dtype=np.float64)
            mu[n, 1 : n + 1] = a / (n + 1) if power == 1 else a * (a + 1) / ((n + 1) * (n + 2))
        return mu
    if magnitude == "exponential":
        for n in range(1, n_max + 1):
            inv = 1.0 / np.arange(1, n + 1, dtype=np.float64)
            h1 = np.cumsum(inv[::-1])[::-1]  # h1[r-1] = sum_{j=r}^{n} 1/j
            h2 = np.cumsum((inv * inv)[::-1])[::-1]
            mu[n, 1 : n + 1] = h1 if power == 1 else h2 + h1 * h1
        return mu
    if magnitude == "halfnormal":
        y = np.linspace(0.0, 12.0, 20_001)
        f = math.sqrt(2.0 / math.pi) * np.exp(-0.5 * y * y)
        cdf = np.array([math.erf(v / math.sqrt(2.0)) for v in y])
        for n in range(1, n_max + 1):
            for r in range(1, n + 1):
                coef = math.factorial(n) / (math.factorial(r - 1) * math.factorial(n - r))
                dens = coef * cdf ** (n - r) * (1.0 - cdf) ** (r - 1) * f
                g = y**power * dens  # trapezoidal rule on the uniform grid y
                mu[n, r] = float(((g[1:] + g[:-1]) * np.diff(y)).sum() / 2.0)
        return mu
    raise ValueError(
        f"unknown magnitude law {magnitude!r}, expected 'halfnormal', 'uniform' or 'exponential'"
    )


def expected_mass_kept(
    series: TasdSeries | NMPattern | str,
    density: np.ndarray | float,
    power: int = 1,
    magnitude: Magnitude = "halfnormal",
    distribution: Distribution = "bernoulli",
    tensor_size: int | None = None,
) -> np.ndarray:
    """Expected fraction of the mass ``sum |a|^power`` kept by each term, shape ``(k, *S)``.

    For one ``M`` (all terms share it), X non-zeros per block with pmf ``P(x)`` (as in
    :func:`expected_kept`) and magnitudes i.i.d. with moments ``mu[n, r]``
    (:func:`order_stat_moments`), term i keeps the ranks ``S_i+1 .. S_i+N_i``:

        fraction_i = sum_x P(x) sum_{r=S_i+1}^{min(S_i+N_i, x)} mu[x, r] / (E[X] * E[Y^power])

    a ratio of expectations (the large-tensor limit). ``power=1`` gives the kept L1 fraction;
    with ``power=2``, ``sqrt(1 - sum_i fraction_i)`` is the expected relative Frobenius error.
    Where the density is 0 the fractions are 0. Mixed-M series raise ``ValueError``.
    """
    ser = TasdSeries.parse(series)
    patterns = ser.terms or (NMPattern(1, 1),)
    ms = {p.m for p in patterns}
    if len(ms) != 1:
        raise ValueError(
            f"series {ser}: the expected kept mass is only available when all terms share one M"
        )
    m = patterns[0].m
    pmf = block_count_pmf(m, density, distribution, tensor_size)
    mu = order_stat_moments(m, power, magnitude)
    mean_y = mu[1, 1]
    x = np.arange(m + 1)
    total = (pmf @ x.astype(np.float64)) * mean_y
    out = []
    s = 0
    for p in patterns:
        ranks = np.zeros((m + 1, m + 1))
        ranks[:, s + 1 : s + p.n + 1] = 1.0
        per_x = (mu * ranks).sum(axis=1)  # sum_{r=S+1}^{S+N} mu[x, r] (zero for r > x)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(total > 0, (pmf @ per_x) / np.where(total > 0, total, 1.0), 0.0))
        s += p.n
    return np.stack(out, axis=0)
