"""Sparseloop-style closed forms (testy_model.model.sparse), each against a hand derivation."""

from __future__ import annotations

import math

import pytest

from testy_model.model.sparse import (
    LevelView,
    Loop,
    conditional_prob_empty,
    dense_level_counts,
    fixed_structured_pattern,
    fold_shapes,
    format_occupancy,
    level_cycles,
    prob_empty,
    prob_empty_hypergeometric,
    prob_empty_nm,
    skip_probability,
    sparse_level_counts,
    throttle,
)
from testy_model.spec.sparseloop import (
    ActionOptimization,
    DataSpaceFormat,
    RankFormat,
    SparseOptimizations,
    TargetOptimizations,
)
from testy_model.spec.workload import Density, gemm


def test_hypergeometric_empty_probability_by_hand() -> None:
    # 2 non-zeros among 4 values; a tile of 2 is empty when both picks are zeros:
    # C(2,2)/C(4,2) = 1/6. A tile of 3 cannot avoid both non-zeros: 0.
    assert float(prob_empty_hypergeometric(4, 2, 2)) == pytest.approx(1 / 6)
    assert float(prob_empty_hypergeometric(4, 2, 3)) == 0.0
    # 1 non-zero of 10, tile of 4: C(9,4)/C(10,4) = 126/210 = 0.6.
    assert float(prob_empty_hypergeometric(10, 1, 4)) == pytest.approx(0.6)


def test_nm_empty_probability_by_hand() -> None:
    # 2:4: one value is zero with P = C(3,2)/C(4,2) = 3/6; an aligned pair is empty only when
    # both non-zeros sit in the other pair: C(2,2)/C(4,2) = 1/6; a whole block never is.
    assert float(prob_empty_nm(2, 4, 1, 1)) == pytest.approx(0.5)
    assert float(prob_empty_nm(2, 4, 2, 1)) == pytest.approx(1 / 6)
    assert float(prob_empty_nm(2, 4, 4, 1)) == 0.0
    # two independent rows, one value each: 0.5^2.
    assert float(prob_empty_nm(2, 4, 1, 2)) == pytest.approx(0.25)


def test_prob_empty_dispatch() -> None:
    # Bernoulli d = 0.3, 3 values: 0.7^3 = 0.343.
    assert prob_empty(Density(kind="bernoulli", density=0.3), 3, 1, 100) == pytest.approx(0.343)
    assert prob_empty(Density(), 5, 1, 100) == 0.0
    # 2:4 tile of 64 values along M (1 along K): 64 rows of 0.5 each.
    d = Density(kind="nm", pattern="2:4")
    assert prob_empty(d, 64, 1, 1024) == pytest.approx(0.5**64)
    assert prob_empty(d, 32, 32, 1024) == 0.0


def test_skip_and_conditional_probabilities() -> None:
    # conditioned on two tensors, each empty half the time, independent: 1 - 0.5·0.5.
    assert skip_probability([0.5, 0.5]) == pytest.approx(0.75)
    assert skip_probability([]) == 0.0
    # a value empty w.p. 0.5 inside a tile empty w.p. 0.2, given the tile is not empty:
    # (0.5 - 0.2) / 0.8 = 0.375; the tile itself given non-empty: 0.
    assert conditional_prob_empty(0.5, 0.2) == pytest.approx(0.375)
    assert conditional_prob_empty(0.5, 0.5) == 0.0


def test_fixed_structured_patterns() -> None:
    assert fixed_structured_pattern(0.5) == (2, 4)
    assert fixed_structured_pattern(0.25) == (1, 4)
    assert fixed_structured_pattern(0.33333) == (1, 3)
    assert fixed_structured_pattern(1.0) is None


def test_format_occupancy_matches_sparseloop_smem_capacity() -> None:
    # The STC study's SMEM holds an A tile of M256 x K1024 with ranks (inner to outer) of shapes
    # K32 (RF spatial), M16 (RF spatial), K32 (RF temporal), M4 (SMEM spatial), M4 (SMEM temporal),
    # format UOP UOP UOP UOP CP (file order, outermost first). Sparseloop's reference_stats.txt
    # prints the "Max utilized Repr format storage capacity" as (metadata, payload):
    #   Rank 0 (131072, 0), Rank 1 (0, 8704), Rank 2 (0, 528), Rank 3 (0, 20), Rank 4 (0, 5).
    # By hand: CP rank 0: 8192 fibers x 32 coordinates x density 0.5 = 131072;
    # UOP rank r: f_r fibers x (s_r + 1) offsets: 512 x 17, 16 x 33, 4 x 5, 1 x 5.
    fmt = DataSpaceFormat(
        name="A",
        ranks=(
            *(RankFormat(format="UOP", payload_word_bits=0) for _ in range(4)),
            RankFormat(format="CP", metadata_word_bits=2),
        ),
    )
    occ = format_occupancy(fmt, [32, 16, 32, 4, 4], {1: 0.5})
    assert [o.format for o in occ] == ["CP", "UOP", "UOP", "UOP", "UOP"]
    assert occ[0].metadata_words == 131072
    assert occ[0].metadata_bits == 2
    assert [o.payload_words for o in occ[1:]] == [8704, 528, 20, 5]


def test_bitmask_and_default_bits() -> None:
    # B over one rank of 8 coordinates, values empty w.p. 0.5 each, fiber of 8 empty w.p. 0.5^8:
    # metadata bits = 8 x (1 - 1/256); default width 1 bit. CP default: ceil(log2 8) = 3 bits.
    fb = DataSpaceFormat(name="B", ranks=(RankFormat(format="B"),))
    o = format_occupancy(fb, [8], {1: 0.5, 8: 0.5**8})[0]
    assert o.metadata_words == pytest.approx(8 * (1 - 1 / 256))
    assert o.metadata_bits == 1
    fc = DataSpaceFormat(name="B", ranks=(RankFormat(format="CP"),))
    assert format_occupancy(fc, [8], {1: 0.5})[0].metadata_bits == 3


def test_fold_shapes() -> None:
    assert fold_shapes([2, 3, 4], 2) == [2, 12]
    assert fold_shapes([2, 3, 4], 2, "outer-to-inner") == [6, 4]
    assert fold_shapes([2, 3], 4) == [2, 3]


def test_bandwidth_and_throttle() -> None:
    # 1000 words read at 10 words/cycle = 100 cycles; 300 written at 2 = 150 cycles -> 150.
    assert level_cycles(1000, 300, 10, 2) == 150
    assert level_cycles(1000, 300, None, None) == 0
    # compute needs 100 cycles, the level 150: it runs at 100/150 of the demanded rate.
    assert throttle(100, 150) == pytest.approx(2 / 3)
    assert throttle(100, 50) == 1.0


# A toy nest: GEMM M=2, N=2, K=2 (8 MACs). DRAM keeps A, B, Z; BUF keeps A and Z (bypasses B).
# Loops outer to inner: DRAM temporal M2; BUF temporal N2, K2.
TOY_LOOPS = [Loop(0, False, "M", 2), Loop(1, False, "N", 2), Loop(1, False, "K", 2)]
TOY_LEVELS = [
    LevelView(name="DRAM", keep=frozenset("ABZ")),
    LevelView(name="BUF", keep=frozenset("AZ")),
]


def test_dense_counts_by_hand() -> None:
    prob = gemm(2, 2, 2)
    dc = dense_level_counts(prob, TOY_LEVELS, TOY_LOOPS)
    buf, dram = dc.counts[1], dc.counts[0]
    # A at BUF: tile = K2 x M1 = 2 words; the loop above (M2) is relevant -> 2 visits -> 4 fills;
    # every MAC reads its A from BUF: 8 reads. DRAM reads what BUF fills: 4.
    assert (buf["A"].tile, buf["A"].fills, buf["A"].reads) == (2, 4, 8)
    assert dram["A"].reads == 4
    # B bypasses BUF: each of the 8 MACs reads B from DRAM.
    assert dram["B"].reads == 8 and "B" not in buf
    # Z at BUF: tile = N2 = 2 words, 2 visits -> 4 fills; 8 updates (one per MAC); distinct
    # outputs = 2 x 2 = 4, so read-modify-write reads = 8 - 4 = 4.
    assert (buf["Z"].fills, buf["Z"].updates, buf["Z"].reads) == (4, 8, 4)
    # DRAM Z: updated with each drained tile (4 words), never read back (first touches only).
    assert (dram["Z"].updates, dram["Z"].reads) == (4, 0)


def test_sparse_counts_gating_by_hand() -> None:
    # Same nest with A 2:4 on K (K = 4 now: 16 MACs, loops M2 / N2, K4), CP format for A at BUF
    # and gating of B conditioned on A at BUF (B is served from DRAM).
    prob = gemm(2, 2, 4, densities={"A": Density(kind="nm", pattern="2:4")})
    loops = [Loop(0, False, "M", 2), Loop(1, False, "N", 2), Loop(1, False, "K", 4)]
    opts = SparseOptimizations(
        targets=(
            TargetOptimizations(
                name="BUF",
                formats=(
                    DataSpaceFormat(
                        name="A", ranks=(RankFormat(format="CP", metadata_word_bits=2),)
                    ),
                ),
                actions=(ActionOptimization(type="gating", target="B", condition_on=("A",)),),
            ),
        )
    )
    dc = dense_level_counts(prob, TOY_LEVELS, loops)
    sp = sparse_level_counts(prob, TOY_LEVELS, dc, opts, "MAC")
    a = sp.levels[1]["A"]
    # A at BUF moves compressed: 16 algorithmic reads x 0.5 = 8 actual; fills 8 x 0.5 = 4;
    # one 2-bit CP coordinate per kept value: 8 reads x 2 bits = 16 metadata bits.
    assert (a.reads.algorithmic, a.reads.actual, a.fills.actual) == (16, 8, 4)
    assert a.metadata_read_bits == pytest.approx(16)
    # B from DRAM: each of the 16 reads pairs with one A value, zero w.p. 0.5 -> 8 gated.
    b = sp.levels[0]["B"]
    assert (b.reads.actual, b.reads.gated, b.reads.skipped) == (8, 8, 0)
    # MACs: gated when their A is zero (8), the rest effective. Compute cycles count the
    # effective MACs only (8 on one MAC unit), as Sparseloop does: its 04.2.1-eyeriss-like-gating
    # reference reports mac cycles 1,054,311 = 164,472,423 actual computes / 156 instances,
    # while the gated reads still cost bandwidth at their level (tests/test_reference_sparseloop).
    assert (sp.compute.actual, sp.compute.gated, sp.compute.skipped) == (8, 8, 0)
    assert sp.compute_cycles == 8
    assert math.isclose(sum([sp.compute.actual, sp.compute.gated]), 16)
