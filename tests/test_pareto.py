"""Pareto front against a brute-force definition of dominance."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from testy_model.dse.pareto import pareto, pareto_mask


def brute_force(a: np.ndarray) -> np.ndarray:
    """Row i is on the front iff no j has a_j <= a_i everywhere and a_j < a_i somewhere."""
    n = len(a)
    out = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if np.all(a[j] <= a[i]) and np.any(a[j] < a[i]):
                out[i] = False
                break
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 4),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_matches_brute_force(n: int, k: int, seed: int, discrete: bool) -> None:
    rng = np.random.default_rng(seed)
    # discrete values force ties and duplicate rows, the hard cases
    a = rng.integers(0, 4, size=(n, k)).astype(float) if discrete else rng.random((n, k))
    np.testing.assert_array_equal(pareto_mask(a), brute_force(a))


def test_hand_case_and_maximize() -> None:
    # (latency, energy): (1,5) and (5,1) trade off; (2,2) beats (3,3) and is on the front;
    # (3,3) is dominated by (2,2).
    df = pd.DataFrame({"lat": [1, 5, 2, 3], "energy": [5, 1, 2, 3], "perf": [1, 5, 2, 3]})
    assert list(pareto(df, ["lat", "energy"]).index) == [0, 1, 2]
    # maximising perf while minimising energy: (perf 5, energy 1) dominates every other row
    assert list(pareto(df, ["perf", "energy"], maximize=["perf"]).index) == [1]


def test_missing_column_is_named() -> None:
    df = pd.DataFrame({"lat": [1.0]})
    try:
        pareto(df, ["lat", "edp"])
    except KeyError as err:
        assert "edp" in str(err)
    else:
        raise AssertionError("expected KeyError")
