"""Tests of the greedy TASD decomposition: hand-derived cases, a naive reference, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testy_model.tasd import Decomposition, NMPattern, TasdSeries, decompose, is_compliant

# --------------------------------------------------------------------------------------------
# An independent, deliberately naive reference: per row, per block, sort by (-|x|, index).


def _reference_index(a: np.ndarray, series: str, axis: int) -> np.ndarray:
    patterns = TasdSeries.parse(series).terms or (NMPattern(1, 1),)
    moved = np.moveaxis(np.asarray(a), axis, -1)
    rows = moved.reshape(-1, moved.shape[-1]) if moved.size else moved.reshape(0, 0)
    index = np.zeros(rows.shape, dtype=np.uint8)
    for r in range(rows.shape[0]):
        for term_id, p in enumerate(patterns, start=1):
            for start in range(0, rows.shape[1], p.m):
                block = range(start, min(start + p.m, rows.shape[1]))
                eligible = [j for j in block if rows[r, j] != 0 and index[r, j] == 0]
                eligible.sort(key=lambda j: (-abs(float(rows[r, j])), j))
                for j in eligible[: p.n]:
                    index[r, j] = term_id
    return np.moveaxis(index.reshape(moved.shape), -1, axis)


# --------------------------------------------------------------------------------------------
# Hand-derived cases


def test_hand_2_4_of_a_1x8_row() -> None:
    a = np.array([[0.5, -3.0, 0.0, 2.0, 1.0, 1.0, -1.0, 4.0]])
    # block 0 = [0.5, -3, 0, 2]: magnitudes 0.5, 3, 0, 2 -> keep -3 (j=1) and 2 (j=3)
    # block 1 = [1, 1, -1, 4]: keep 4 (j=7), then a three-way tie at |1|: lowest index j=4
    d = decompose(a, "2:4")
    np.testing.assert_array_equal(d.term(1), [[0, -3, 0, 2, 1, 0, 0, 4]])
    np.testing.assert_array_equal(d.residual(), [[0.5, 0, 0, 0, 0, 1, -1, 0]])
    np.testing.assert_array_equal(d.index, [[0, 1, 0, 1, 1, 0, 0, 1]])
    # non-zeros: 7, kept 4; L1: total 0.5+3+2+1+1+1+4 = 12.5, kept 3+2+1+4 = 10 -> 0.8
    # Frobenius: ||A||^2 = 0.25+9+4+1+1+1+16 = 32.25, ||R||^2 = 0.25+1+1 = 2.25
    assert d.total_nnz == 7 and d.kept_nnz == (4,) and d.residual_nnz == 3
    assert d.kept_nnz_fraction == pytest.approx((4 / 7,))
    assert d.kept_l1_fraction == pytest.approx((0.8,))
    assert d.rel_error == pytest.approx(math.sqrt(2.25 / 32.25))
    assert d.axis == 1 and d.n_terms == 1


def test_hand_2_8_plus_1_8_of_a_2x8_matrix() -> None:
    a = np.array(
        [
            [1.0, -5.0, 2.0, 0.0, 3.0, -4.0, 0.0, 0.5],
            [0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    # row 0: 2:8 keeps -5 (j=1), -4 (j=5); 1:8 then keeps 3 (j=4); residual 1, 2, 0.5
    # row 1: 2:8 keeps 7 (only one non-zero); 1:8 finds only zeros and keeps nothing
    d = decompose(a, "2:8+1:8")
    np.testing.assert_array_equal(d.index, [[0, 1, 0, 0, 2, 1, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(d.term(2), [[0, 0, 0, 0, 3, 0, 0, 0], [0] * 8])
    assert d.kept_nnz == (3, 1)
    assert d.residual_nnz == 3
    # L1 total = 1+5+2+3+4+0.5+7 = 22.5; term 1 = 5+4+7 = 16; term 2 = 3
    assert d.kept_l1_fraction == pytest.approx((16 / 22.5, 3 / 22.5))
    assert d.kept_nnz_fraction == pytest.approx((3 / 7, 1 / 7))
    # squares: total 1+25+4+9+16+0.25+49 = 104.25; left after term 1: 1+4+9+0.25 = 14.25;
    # after term 2: 1+4+0.25 = 5.25
    assert d.rel_error_cumulative == pytest.approx(
        (math.sqrt(14.25 / 104.25), math.sqrt(5.25 / 104.25))
    )
    m = d.metrics()
    assert m["terms"][1]["pattern"] == "1:8" and m["terms"][1]["kept_nnz"] == 1
    assert m["rel_error"] == pytest.approx(math.sqrt(5.25 / 104.25))


def test_hand_ragged_last_block() -> None:
    # length 6 with 1:4: blocks [1, 2, 3, 4] and [-6, 5, (0), (0)] (padded with zeros)
    # -> keep 4 (j=3) and -6 (j=4)
    d = decompose(np.array([1.0, 2.0, 3.0, 4.0, -6.0, 5.0]), "1:4")
    np.testing.assert_array_equal(d.index, [0, 0, 0, 1, 1, 0])
    # 3:4 on [0, 0, 9, 1, 0] along axis 0 of a column: blocks [0, 0, 9, 1] and [0, (0), (0), (0)]:
    # only the two non-zeros are kept (padding and zeros never count), the last block keeps none
    col = np.array([[0.0], [0.0], [9.0], [1.0], [0.0]])
    d = decompose(col, "3:4", axis=0)
    np.testing.assert_array_equal(d.index[:, 0], [0, 0, 1, 1, 0])
    assert d.kept_nnz == (2,) and d.rel_error == 0.0


def test_hand_ties_lowest_index_first() -> None:
    a = np.array([2.0, -2.0, 2.0, 2.0])
    # all magnitudes 2: 2:4 takes j=0,1; then 1:4 takes j=2; j=3 is the residual
    d = decompose(a, "2:4+1:4")
    np.testing.assert_array_equal(d.index, [1, 1, 2, 0])
    # a tie of a zero with nothing: [0, 0, 0, 3] with 2:4 keeps only j=3
    np.testing.assert_array_equal(decompose(np.array([0, 0, 0, 3]), "2:4").index, [0, 0, 0, 1])


def test_hand_mixed_m_series() -> None:
    a = np.arange(10.0) - 4.0  # [-4, -3, -2, -1, 0, 1, 2, 3, 4, 5]
    # 1:4 blocks: [-4..-1] -> -4 (j=0); [0..3] -> 3 (j=7); [4, 5, pad, pad] -> 5 (j=9)
    # 1:8 on what is left, blocks [0..7] -> -3 (j=1); [8, 9, pad...] -> 4 (j=8)
    d = decompose(a, "1:4+1:8")
    np.testing.assert_array_equal(d.index, [1, 2, 0, 0, 0, 0, 0, 1, 2, 1])


def test_hand_3d_along_middle_axis() -> None:
    a = np.zeros((2, 4, 3))
    a[1, :, 2] = [1.0, -9.0, 4.0, 4.0]  # along axis 1: 2:4 keeps -9 (j=1) and the first 4 (j=2)
    d = decompose(a, "2:4", axis=1)
    assert d.axis == 1
    np.testing.assert_array_equal(d.index[1, :, 2], [0, 1, 1, 0])
    assert d.index.sum() == 2
    assert d.index.shape == a.shape


def test_dense_series_keeps_everything() -> None:
    a = np.array([[1.0, 0.0, -2.0], [0.0, 3.0, 0.0]])
    d = decompose(a, "dense")
    assert d.patterns == (NMPattern(1, 1),)
    np.testing.assert_array_equal(d.term(1), a)
    assert d.kept_nnz == (3,) and d.rel_error == 0.0


def test_integer_bool_and_half_dtypes() -> None:
    # int8: |-128| overflows in int8; the magnitude is taken in float64, so -128 ranks first
    d = decompose(np.array([1, -128, 127, 0], dtype=np.int8), "1:4")
    np.testing.assert_array_equal(d.index, [0, 1, 0, 0])
    assert d.term(1).dtype == np.int8
    np.testing.assert_array_equal(d.term(1), [0, -128, 0, 0])
    # bool: all True values tie; 2:4 keeps the two lowest indices among the True ones
    d = decompose(np.array([False, True, True, True]), "2:4")
    np.testing.assert_array_equal(d.index, [0, 1, 1, 0])
    d = decompose(np.array([0.5, -0.25, 2.0, 1.0], dtype=np.float16), "1:2")
    np.testing.assert_array_equal(d.index, [1, 0, 1, 0])


def test_all_zero_and_empty_arrays() -> None:
    d = decompose(np.zeros((3, 8)), "2:8+1:8")
    assert d.kept_nnz == (0, 0) and d.total_nnz == 0
    assert d.kept_l1_fraction == (0.0, 0.0) and d.rel_error == 0.0
    d = decompose(np.zeros((0, 8)), "2:8")
    assert d.index.shape == (0, 8) and d.kept_nnz == (0,)


def test_large_m_uses_same_semantics_as_small_m() -> None:
    # M = 64 goes through the argsort path, M = 32 through pairwise ranks: both must match the
    # naive reference, with ties (integers in -3..3) included.
    rng = np.random.default_rng(7)
    a = rng.integers(-3, 4, size=(5, 150)).astype(np.float32)
    for series in ("5:64+3:64", "5:32+3:32", "7:64+1:4"):
        d = decompose(a, series)
        np.testing.assert_array_equal(d.index, _reference_index(a, series, -1))


def test_result_is_read_only_view_and_frozen() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0])
    d = decompose(a, "2:4")
    assert isinstance(d, Decomposition)
    with pytest.raises(ValueError):
        d.array[0] = 5.0
    with pytest.raises(AttributeError):
        d.axis = 0  # type: ignore[misc]
    assert d.index.dtype == np.uint8


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.array([1.0, np.nan, 0.0, 1.0]), "NaN"),
        (np.array([1.0, np.inf, 0.0, 1.0]), "inf"),
        (np.array([1.0, -np.inf]), "inf"),
        (np.array([1 + 2j, 0j]), "complex"),
        (np.array(["a", "b"]), "expected a real numeric array"),
        (np.array([object(), 1], dtype=object), "expected a real numeric array"),
        (np.float64(3.0), "0-dimensional"),
    ],
)
def test_bad_arrays_raise_clear_value_errors(array: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decompose(array, "2:4")


def test_nan_in_a_later_chunk_is_found() -> None:
    a = np.ones((1000, 512), dtype=np.float32)  # several cache chunks of 2^17 values
    a[-1, -1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        decompose(a, "2:8")


def test_bad_axis_series_and_term_index() -> None:
    a = np.ones((2, 4))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        decompose(a, "2:4", axis=2)
    with pytest.raises(ValueError, match="invalid TASD series '2:4\\+'"):
        decompose(a, "2:4+")
    d = decompose(a, "2:4")
    with pytest.raises(ValueError, match=r"expected 1\.\.1"):
        d.term(2)
    with pytest.raises(ValueError, match=r"expected 1\.\.1"):
        d.term(0)


# --------------------------------------------------------------------------------------------
# is_compliant


def test_is_compliant_hand_cases() -> None:
    assert is_compliant(np.array([0, 1, 0, 1, 1, 0, 0, 1]), "2:4")  # 2 per 4-block
    assert not is_compliant(np.array([1, 1, 1, 0, 0, 0, 0, 0]), "2:4")  # 3 in block 0
    assert not is_compliant(np.array([1, 1, 1, 0, 0, 0, 0, 0]), "2:8")
    assert is_compliant(np.array([1, 1, 1, 0, 0, 0, 0, 0]), "3:8")
    # ragged: [0, 0, 0, 0 | 1, 1] with 1:4 -> the padded last block holds 2 > 1
    assert not is_compliant(np.array([0, 0, 0, 0, 1, 1]), "1:4")
    # axis matters: each column of [[1, 1], [1, 1], [0, 0], [0, 0]] is 2:4, each row is not 1:2
    m = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    assert is_compliant(m, "2:4", axis=0)
    assert not is_compliant(m, "1:2", axis=1)
    assert is_compliant(np.zeros((0, 3)), "1:4")
    with pytest.raises(ValueError, match="invalid N:M pattern"):
        is_compliant(m, "5:4")


# --------------------------------------------------------------------------------------------
# Properties (hypothesis): random shapes, axes, densities, series; values with many ties

_pattern = st.sampled_from([1, 2, 3, 4, 8, 16]).flatmap(
    lambda m: st.integers(1, m).map(lambda n: NMPattern(n, m))
)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[np.ndarray, TasdSeries, int]:
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 19), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    density = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**32 - 1))
    ties = draw(st.booleans())
    rng = np.random.default_rng(seed)
    if ties:
        values = rng.integers(-3, 4, size=shape).astype(np.float64)
    else:
        values = rng.standard_normal(shape)
    values[rng.random(shape) >= density] = 0.0
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    series = TasdSeries(tuple(draw(st.lists(_pattern, min_size=1, max_size=3))))
    return values.astype(dtype), series, axis


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(_cases())
def test_properties_of_the_decomposition(case: tuple[np.ndarray, TasdSeries, int]) -> None:
    a, series, axis = case
    d = decompose(a, series, axis=axis)
    terms = d.terms()
    residual = d.residual()
    # equals the naive reference exactly
    np.testing.assert_array_equal(d.index, _reference_index(a, str(series), axis))
    # disjoint supports (terms and residual)
    support = np.stack([t != 0 for t in [*terms, residual]])
    assert support.sum(axis=0).max(initial=0) <= 1
    # exact reconstruction
    total = residual.copy()
    for t in terms:
        total = total + t
    np.testing.assert_array_equal(total, a)
    # every term is compliant with its pattern and keeps only non-zeros
    for p, t, kept in zip(d.patterns, terms, d.kept_nnz, strict=True):
        assert is_compliant(t, p, axis=axis)
        assert int(np.count_nonzero(t)) == kept
    assert sum(d.kept_nnz) + d.residual_nnz == np.count_nonzero(a)
    # kept L1 mass non-decreasing, Frobenius error non-increasing as terms are added
    cum_l1 = np.cumsum(d.kept_l1_fraction)
    assert np.all(np.diff(cum_l1) >= 0)
    errs = np.array(d.rel_error_cumulative)
    assert np.all(np.diff(errs) <= 1e-12)
    assert d.rel_error == pytest.approx(
        float(np.linalg.norm(residual.astype(np.float64)) / np.linalg.norm(a.astype(np.float64)))
        if np.any(a)
        else 0.0
    )


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(_cases(), st.sampled_from([1, 2, 4, 8]), st.integers(1, 3))
def test_series_reaching_m_keeps_everything(
    case: tuple[np.ndarray, TasdSeries, int], m: int, k: int
) -> None:
    a, _, axis = case
    # split M into k positive parts (k <= M), e.g. M = 8, k = 3 -> 6 + 1 + 1
    k = min(k, m)
    ns = [m - (k - 1)] + [1] * (k - 1)
    series = TasdSeries(tuple(NMPattern(n, m) for n in ns))
    d = decompose(a, series, axis=axis)
    assert not np.any(d.residual())
    assert d.residual_nnz == 0 and d.rel_error == 0.0
    assert sum(d.kept_l1_fraction) == pytest.approx(1.0 if np.any(a) else 0.0)
