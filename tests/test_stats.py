"""Tests of the closed-form expected kept densities: hand-derived cases and Monte-Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from testy_model.tasd import ExpectedKept, block_count_pmf, decompose, expected_kept
from testy_model.tasd.stats import expected_mass_kept, order_stat_moments

# --------------------------------------------------------------------------------------------
# Hand-derived cases


def test_hand_1_4_bernoulli_half() -> None:
    # X ~ Bin(4, 1/2); 1:4 keeps min(X, 1) per block: E = P(X >= 1) = 1 - (1/2)^4 = 15/16
    # density = 15/16 / 4 = 15/64; residual = 1/2 - 15/64 = 17/64
    e = expected_kept("1:4", 0.5)
    assert isinstance(e, ExpectedKept)
    assert e.terms.shape == (1,)
    assert e.terms[0] == pytest.approx(15 / 64)
    assert e.residual == pytest.approx(17 / 64)


def test_hand_2_4_plus_1_4_bernoulli_half() -> None:
    # pmf of Bin(4, 1/2) = [1, 4, 6, 4, 1] / 16
    # term 1 (S=0, N=2): E[min(X, 2)] = (0*1 + 1*4 + 2*(6+4+1)) / 16 = 26/16 -> density 26/64
    # term 2 (S=2, N=1): E[min(max(X-2, 0), 1)] = P(X >= 3) = 5/16 -> density 5/64
    # residual: E[max(X-3, 0)] / 4 = (1/16) / 4 = 1/64
    e = expected_kept("2:4+1:4", 0.5)
    np.testing.assert_allclose(e.terms, [26 / 64, 5 / 64])
    assert e.residual == pytest.approx(1 / 64)
    assert e.kept == pytest.approx(31 / 64)
    assert e.kept_fraction == pytest.approx((31 / 64) / 0.5)


def test_hand_hypergeometric_small_tensor() -> None:
    # T = 8 values, K = round(0.5 * 8) = 4 non-zeros, a 4-block draws 4:
    # P(X = 0) = C(4,0) C(4,4) / C(8,4) = 1/70; 1:4 keeps P(X >= 1) = 69/70 -> density 69/280
    e = expected_kept("1:4", 0.5, "hypergeometric", tensor_size=8)
    assert e.terms[0] == pytest.approx(69 / 280)
    pmf = block_count_pmf(4, 0.5, "hypergeometric", tensor_size=8)
    # P(X = x) = C(4,x) C(4,4-x) / 70 = [1, 16, 36, 16, 1] / 70
    np.testing.assert_allclose(pmf, np.array([1, 16, 36, 16, 1]) / 70)
    # the effective density is K/T: 0.3 * 8 = 2.4 -> K = 2 -> 0.25
    assert expected_kept("1:4", 0.3, "hypergeometric", tensor_size=8).density == 0.25


def test_hand_mixed_m_convolution() -> None:
    # 1:2 + 1:4 at d = 1/2. Term 1: P(X >= 1) for X ~ Bin(2, 1/2) = 3/4 per 2-block -> 3/8.
    # Left per 2-block: 1 with probability P(X = 2) = 1/4. A 4-block is two 2-blocks, so term 2
    # keeps P(at least one is full) = 1 - (3/4)^2 = 7/16 per 4-block -> 7/64.
    e = expected_kept("1:2+1:4", 0.5)
    np.testing.assert_allclose(e.terms, [3 / 8, 7 / 64])


def test_hand_mixed_m_split() -> None:
    # 2:4 + 1:2 at d = 1/2. Term 1 = 26/64 (as above). Left per 4-block: Y = 1 w.p. 4/16
    # (X = 3), Y = 2 w.p. 1/16 (X = 4), at uniformly random positions. A half (2 of the 4
    # positions) holds the one left value w.p. C(1,1)C(3,1)/C(4,2) = 1/2, and at least one of
    # two left values w.p. 1 - C(2,2)/C(4,2) = 5/6. Term 2 keeps min(Y', 1) per 2-block:
    # 4/16 * 1/2 + 1/16 * 5/6 = 17/96 -> density 17/192.
    e = expected_kept("2:4+1:2", 0.5)
    np.testing.assert_allclose(e.terms, [26 / 64, 17 / 192])


def test_dense_and_edges() -> None:
    d = np.array([0.0, 0.3, 1.0])
    e = expected_kept("dense", d)
    np.testing.assert_allclose(e.terms, [d])
    np.testing.assert_allclose(e.residual, 0.0, atol=1e-15)
    # density 0 keeps nothing; density 1 keeps exactly N/M per term
    e = expected_kept("2:8+1:8", np.array([0.0, 1.0]))
    np.testing.assert_allclose(e.terms, [[0.0, 2 / 8], [0.0, 1 / 8]])
    np.testing.assert_allclose(e.residual, [0.0, 5 / 8])
    np.testing.assert_allclose(e.kept_fraction, [1.0, 3 / 8])


def test_vectorised_over_density_arrays() -> None:
    d = np.linspace(0.0, 1.0, 6).reshape(3, 2)
    e = expected_kept("2:8+1:4", d)
    assert e.terms.shape == (2, 3, 2) and e.residual.shape == (3, 2)
    for idx in np.ndindex(d.shape):
        one = expected_kept("2:8+1:4", float(d[idx]))
        np.testing.assert_allclose(e.terms[(slice(None), *idx)], one.terms, rtol=1e-12)
    # the pmf sums to one for both distributions
    np.testing.assert_allclose(block_count_pmf(16, d).sum(-1), 1.0)
    np.testing.assert_allclose(block_count_pmf(16, d, "hypergeometric", 100).sum(-1), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"density": 1.5}, "must lie in \\[0, 1\\]"),
        ({"density": -0.1}, "must lie in \\[0, 1\\]"),
        ({"density": float("nan")}, "must lie in \\[0, 1\\]"),
        ({"density": 0.5, "distribution": "poisson"}, "unknown distribution 'poisson'"),
        ({"density": 0.5, "distribution": "hypergeometric"}, "needs the number of values"),
        ({"density": 0.5, "distribution": "hypergeometric", "tensor_size": 4}, "at least"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expected_kept("2:8", **kwargs)


def test_bad_series() -> None:
    with pytest.raises(ValueError, match="invalid TASD series"):
        expected_kept("2:8+", 0.5)


# --------------------------------------------------------------------------------------------
# Monte-Carlo on random tensors decomposed by `decompose` (>= 10^6 blocks per M and distribution)

_DENSITIES = np.round(np.linspace(0.05, 0.95, 10), 2)
_BLOCKS_PER_DENSITY = 100_000  # 10 densities -> 10^6 blocks per (M, distribution)
_SERIES_FOR_M = {4: "1:4+1:4+1:4", 8: "2:8+1:8+2:8", 16: "2:16+4:16+1:16"}


def _mc_kept_density(a: np.ndarray, series: str, groups: int) -> np.ndarray:
    """Kept density of each term per row group of ``a`` (equal groups of rows): (k, groups)."""
    d = decompose(a, series)
    idx = d.index.reshape(groups, -1)
    k = d.n_terms
    counts = np.stack([np.count_nonzero(idx == i + 1, axis=1) for i in range(k)])
    return counts / idx.shape[1]


@pytest.mark.parametrize("m", [4, 8, 16])
def test_monte_carlo_bernoulli(m: int) -> None:
    rng = np.random.default_rng(100 + m)
    series = _SERIES_FOR_M[m]
    # one row group per density; u ~ U(0,1) i.i.d.: value = u where u < d (non-zero with
    # probability d; the non-zero magnitudes are i.i.d. U(0, d), continuous)
    u = rng.random((len(_DENSITIES), _BLOCKS_PER_DENSITY * m), dtype=np.float32)
    a = np.where(u < _DENSITIES[:, None].astype(np.float32), u, np.float32(0))
    mc = _mc_kept_density(a, series, len(_DENSITIES))
    closed = expected_kept(series, _DENSITIES).terms
    np.testing.assert_allclose(mc, closed, atol=0.005, rtol=0)
    # sharper than the bound: measured agreement is within 0.002 at these sample sizes
    assert np.abs(mc - closed).max() < 0.002


@pytest.mark.parametrize("m", [4, 8, 16])
def test_monte_carlo_hypergeometric(m: int) -> None:
    rng = np.random.default_rng(200 + m)
    series = _SERIES_FOR_M[m]
    t = 32  # small tensors, so that the hypergeometric law differs visibly from the binomial
    per_density = _BLOCKS_PER_DENSITY * m // t  # tensors per density
    k = np.rint(_DENSITIES * t).astype(int)
    # each row is one tensor of T = 32 values with exactly K non-zeros at random positions
    base = (np.arange(t)[None, :] < np.repeat(k, per_density)[:, None]).astype(np.float32)
    mask = rng.permuted(base, axis=1)
    a = mask * rng.random(mask.shape, dtype=np.float32)
    a[(mask > 0) & (a == 0)] = 1.0  # keep every drawn position non-zero
    mc = _mc_kept_density(a, series, len(_DENSITIES))
    closed = expected_kept(series, _DENSITIES, "hypergeometric", tensor_size=t).terms
    np.testing.assert_allclose(mc, closed, atol=0.005, rtol=0)
    # the test tells the two laws apart: the Monte-Carlo is much closer to the hypergeometric
    # closed form than the binomial one (same effective density K/T) is
    binom = expected_kept(series, k / t).terms
    assert np.abs(mc - closed).max() < 0.5 * np.abs(binom - closed).max()


@pytest.mark.parametrize(
    ("series", "tol"),
    [
        ("2:8+1:4", 0.002),  # M' | M: exact marginal split
        ("1:4+2:8", 0.002),  # M | M': exact convolution (bernoulli)
        ("2:8+1:4+1:8", 0.003),  # third run: sibling blocks taken as independent
        ("1:3+1:4", 0.01),  # neither divides: i.i.d. approximation, measured up to ~0.006
    ],
)
def test_monte_carlo_mixed_m(series: str, tol: float) -> None:
    rng = np.random.default_rng(sum(map(ord, series)))
    densities = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    u = rng.random((len(densities), 240_000), dtype=np.float32)  # 60,000 4-blocks per density
    a = np.where(u < densities[:, None].astype(np.float32), u, np.float32(0))
    mc = _mc_kept_density(a, series, len(densities))
    closed = expected_kept(series, densities).terms
    np.testing.assert_allclose(mc, closed, atol=tol, rtol=0)


def test_closed_form_matches_decomposition_counts_blockwise() -> None:
    # The formula's premise, checked exactly: with one M, term i keeps min(max(X - S_i, 0), N_i)
    # in every block, X = that block's non-zeros.
    rng = np.random.default_rng(3)
    a = rng.standard_normal((200, 64))
    a[rng.random(a.shape) < 0.6] = 0.0
    d = decompose(a, "2:8+1:8+3:8")
    x = np.count_nonzero(a.reshape(-1, 8), axis=1)
    idx = d.index.reshape(-1, 8)
    s = 0
    for i, n in enumerate((2, 1, 3), start=1):
        np.testing.assert_array_equal((idx == i).sum(axis=1), np.clip(x - s, 0, n))
        s += n
    assert math.isclose(float(x.mean()) / 8, np.count_nonzero(a) / a.size)


# --------------------------------------------------------------------------------------------
# Expected kept mass (L1 / squared) for i.i.d. magnitudes


def test_hand_mass_uniform_and_exponential() -> None:
    # uniform, 1:4 at d = 1: the largest of 4 U(0,1) has mean 4/5; a block holds 4 * 1/2 = 2
    # -> kept L1 fraction 0.4; squared: E[max^2] = 4/6 (Beta(4,1)), total 4 * 1/3 -> 0.5
    assert expected_mass_kept("1:4", 1.0, magnitude="uniform")[0] == pytest.approx(0.4)
    assert expected_mass_kept("1:4", 1.0, 2, "uniform")[0] == pytest.approx(0.5)
    # exponential, 1:2 at d = 1: E[max of 2] = 1 + 1/2 = 1.5, total 2 -> 0.75;
    # E[max^2] = (1 + 1/4) + 1.5^2 = 3.5, total E[Y^2] * 2 = 4 -> 0.875
    assert expected_mass_kept("1:2", 1.0, magnitude="exponential")[0] == pytest.approx(0.75)
    assert expected_mass_kept("1:2", 1.0, 2, "exponential")[0] == pytest.approx(0.875)
    # d = 0.5, uniform, 1:2: X ~ Bin(2, 1/2) = [1/4, 1/2, 1/4]; kept = 1/2 * 1/2 + 1/4 * 2/3
    # = 5/12; total E[X] * 1/2 = 1/2 -> 5/6
    assert expected_mass_kept("1:2", 0.5, magnitude="uniform")[0] == pytest.approx(5 / 6)


def test_halfnormal_moments_identities() -> None:
    # sum over r of E[Y_(r:n)] = n E[Y] = n sqrt(2/pi); E[Y^2] = 1 for |N(0,1)|
    mu1 = order_stat_moments(16, 1)
    mu2 = order_stat_moments(16, 2)
    for n in (1, 4, 16):
        assert mu1[n, 1 : n + 1].sum() == pytest.approx(n * math.sqrt(2 / math.pi), rel=1e-7)
        assert mu2[n, 1 : n + 1].sum() == pytest.approx(n, rel=1e-7)
    # order statistics decrease with rank
    assert np.all(np.diff(mu1[8, 1:9]) < 0)
    # a series keeping everything keeps the whole mass
    np.testing.assert_allclose(expected_mass_kept("4:8+4:8", [0.3, 1.0]).sum(0), 1.0)
    np.testing.assert_allclose(expected_mass_kept("2:8", 0.0), [0.0])


def test_mass_monte_carlo_gaussian() -> None:
    # Gaussian tensors: kept L1 fraction and relative Frobenius error of a real decomposition
    rng = np.random.default_rng(11)
    for d in (0.1, 0.5, 0.9):
        a = rng.standard_normal((200, 4000))
        a[rng.random(a.shape) >= d] = 0.0
        dec = decompose(a, "2:8+1:8")
        l1 = expected_mass_kept("2:8+1:8", d)
        np.testing.assert_allclose(dec.kept_l1_fraction, l1, atol=0.005)
        err = math.sqrt(1.0 - float(expected_mass_kept("2:8+1:8", d, power=2).sum()))
        assert dec.rel_error == pytest.approx(err, abs=0.005)


def test_mass_rejects_mixed_m_and_bad_args() -> None:
    with pytest.raises(ValueError, match="share one M"):
        expected_mass_kept("2:8+1:4", 0.5)
    with pytest.raises(ValueError, match="power 3"):
        expected_mass_kept("2:8", 0.5, power=3)
    with pytest.raises(ValueError, match="unknown magnitude law 'cauchy'"):
        expected_mass_kept("2:8", 0.5, magnitude="cauchy")  # type: ignore[arg-type]
