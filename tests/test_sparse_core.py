"""The sparse stage of the cost core (density models, formats, gating, the compute split), each
against a hand derivation (and, for tests/data/hand_gating, Timeloop v3.0.3's own printout of
the same files: every count below is what ``timeloop-model`` prints for them).
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from testy_model.model.cost import price
from testy_model.model.density import (
    DensityModel,
    boost_hypergeom_pdf,
    hypergeom_empty,
)
from testy_model.model.nest import nests_from_mapping
from testy_model.spec.timeloop_inputs import load_timeloop_files

DATA = Path(__file__).parent / "data"


def test_hypergeometric_empty_probability_by_hand() -> None:
    # 2 non-zeros among 4 values; a tile of 2 is empty when both picks are zeros:
    # C(2,2)/C(4,2) = 1/6. A tile of 3 cannot avoid both non-zeros: 0.
    assert float(hypergeom_empty(4, 2, 2)) == pytest.approx(1 / 6)
    assert float(hypergeom_empty(4, 2, 3)) == 0.0
    # 1 non-zero of 10, tile of 4: C(9,4)/C(10,4) = 126/210 = 0.6.
    assert float(hypergeom_empty(10, 1, 4)) == pytest.approx(0.6)
    # beyond Boost's factorial table (N > 1754) the product form: 1 of 2000, tile 1: 1999/2000
    assert float(hypergeom_empty(2000, 1, 1)) == pytest.approx(0.9995)


def test_boost_pdf_is_exact_to_the_last_bit_where_timeloop_floors() -> None:
    # P(0) for 2 draws from 336 values with 135 non-zeros = C(201,2)/C(336,2) = 40200/112560
    # = 5/14. Boost (Timeloop's pdf) returns the double just above 5/14, so Timeloop's
    # 1344 − floor(1344 · (1 − (1 − p))) = 864 computes; the naive product (201/336)·(200/335)
    # lands just below and would give 865.
    p = boost_hypergeom_pdf(0, 135, 2, 336)
    assert Fraction(p) == pytest.approx(Fraction(5, 14), rel=1e-15)
    assert 1344 - np.floor(1344 * (1 - (1 - p))) == 864
    assert 1344 - np.floor(1344 * (1 - (1 - (201 / 336) * (200 / 335)))) == 865
    # a whole pmf sums to 1
    tot = sum(boost_hypergeom_pdf(k, 7, 5, 20) for k in range(6))
    assert tot == pytest.approx(1.0, abs=1e-15)


def test_density_models_by_hand() -> None:
    # Bernoulli d = 0.3, 3 values: 0.7^3 = 0.343.
    assert float(DensityModel("bernoulli", 0.3, 100).prob_empty(np.array([3.0]))[0]) == (
        pytest.approx(0.343)
    )
    # 2:4 along the reduction axis: one value is zero w.p. C(3,2)/C(4,2) = 1/2, an aligned
    # pair w.p. C(2,2)/C(4,2) = 1/6, a whole block never
    nm = DensityModel("nm", 0.5, 64, n=2, m=4)
    got = nm.prob_empty(np.array([1.0, 2.0, 4.0]))
    assert got.tolist() == pytest.approx([0.5, 1 / 6, 0.0])
    # fixed-structured 0.5: a tile of 3 holds 1.5 → 1 or 2 with probability 1/2 each; a tile
    # of 1 is empty half the time
    fs = DensityModel("fixed_structured", 0.5, 64)
    occ, p = fs.support(np.array([3.0]))
    assert occ[0].tolist() == [1.0, 2.0] and p[0].tolist() == [0.5, 0.5]
    assert float(fs.prob_empty(np.array([1.0]))[0]) == 0.5
    # hypergeometric 0.9 of 60: r = 54; the whole tensor holds exactly 54
    hy = DensityModel("hypergeometric", 0.9, 60)
    occ, p = hy.support(np.array([60.0]))
    assert float((occ * p).sum()) == 54.0


def _hand_case():
    d = DATA / "hand_gating"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ti = load_timeloop_files(
            [d / f for f in ("arch.yaml", "problem.yaml", "sparse_opt.yaml", "map.yaml")]
        )
    assert ti.problem is not None and ti.mapping is not None
    n = nests_from_mapping(ti.mapping, ti.arch, ti.problem)
    return ti, price(ti.problem, ti.arch, n, sparse=ti.sparse)


def test_gating_and_compressed_counts_by_hand() -> None:
    """GEMM M2 N2 K4 (16 MACs); A fixed-structured 0.5, CP (2-bit) at BUF, UOP-CP at DRAM;
    BUF keeps everything; gating of B at BUF conditioned on A; BUF loops K4 N2 (inner to outer),
    DRAM M2."""
    _, c = _hand_case()
    lv = {n: i for i, n in enumerate(c.level_names)}
    tn = {n: i for i, n in enumerate(c.tensor_names)}
    buf, dram = lv["BUF"], lv["DRAM"]

    def get(kind: str, split: str, li: int, t: str) -> float:
        return float(c.splits[kind][split][0, li, tn[t]])

    # A at BUF: a tile of K4 = 4 words, 2 non-zeros; 16 algorithmic reads (one per MAC) →
    # 16 − ⌊16·(1 − 0.5)⌋ = 8 actual; fills 8 → 4 (Timeloop: 16 / 8, 8 / 4)
    assert float(c.dense.reads[0, buf, tn["A"]]) == 16
    assert (get("reads", "random", buf, "A"), get("fills", "random", buf, "A")) == (8, 4)
    # its CP rank: one 2-bit coordinate per kept value read / filled (Timeloop: (8, 0), (4, 0))
    fmt = c.sparse.fmt
    assert fmt["reads"]["random"][0, buf, tn["A"], 0].tolist() == [8, 0]
    assert fmt["fills"]["random"][0, buf, tn["A"], 0].tolist() == [4, 0]
    # B at BUF: each of the 16 reads pairs with one A value, zero w.p. 1/2 → ⌊16 · 1/2⌋ = 8
    # gated, 8 actual; its fills are not gated (8)
    assert (get("reads", "random", buf, "B"), get("reads", "gated", buf, "B")) == (8, 8)
    assert get("fills", "random", buf, "B") == 8
    # the gating at the innermost level removes the MACs of the zero A values: 16 − 8 = 8
    # actual, none gated (Timeloop: Actual Computes 8, Gated 0), 8 compute cycles
    cs = c.compute_split
    assert (float(cs["random"][0]), float(cs["gated"][0]), float(cs["skipped"][0])) == (8, 0, 0)
    assert float(c.cycles[0]) == 8
    # Z: 16 updates, 16 − 4 distinct = 12 reads (Timeloop conventions: no first-fill read)
    assert (get("updates", "random", buf, "Z"), get("reads", "random", buf, "Z")) == (16, 12)
    # DRAM A: 8 algorithmic reads → 4 actual; UOP payload over M2: 2 + 1 = 3 offsets
    assert get("reads", "random", dram, "A") == 4
    assert fmt["reads"]["random"][0, dram, tn["A"], 1].tolist() == [0, 3]
    assert fmt["reads"]["random"][0, dram, tn["A"], 0].tolist() == [4, 0]
