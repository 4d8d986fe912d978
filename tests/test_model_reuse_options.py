"""The two counting options of ``model.reuse.dense_counts`` (stream mask, first output fill),
against a case derived by hand.

GEMM Z[m,n] += A[m,k]·B[n,k] with M = 2, N = 4, K = 2 (16 MACs). Levels (outer to inner):
DRAM (keeps A, B, Z), GLB (keeps A, Z; B bypasses), BUF (keeps B, Z; A bypasses); 2 MACs.
Loops: DRAM temporal M2; GLB temporal N2 and a spatial N2 (2 BUF instances); BUF temporal K2.
Extents: BUF {M1, N1, K2}; GLB {M1, N4, K2}; DRAM {M2, N4, K2}. T_all = 2·2·2 = 8 per MAC.

Hand derivation (per instance):
- B at BUF: tile N1·K2 = 2. Above: DRAM M2 (outer), GLB N2 (the innermost relevant loop);
  each N step moves 2 rows of a 1-row span (no overlap), M2 outside refetches:
  W = 2·(2 + 1·2) = 8 fills; D = 2·N2 = 4. Reads by the MACs: T_all = 8 (no fan-out below).
- B streamed at GLB: its holder below is BUF (W 8), reached across the N2 fan-out, which is
  relevant to B: reads = fills = 8·2 = 16. DRAM reads 16 either way (8·2 without the stream).
- A at GLB: tile M1·K2 = 2, M2 above: fills 4. MAC reads: 8 per GLB instance (the N2 fan-out
  is irrelevant to A: multicast). A streamed at BUF: reads = fills = T_all = 8; GLB's reads of A
  stay 8 (8 BUF demand × S_rel 1).
- Z at BUF: tile 1; above M2 (outer), N2 (innermost relevant, step 2 on a 1-span): W = 2·(1+1)
  = 4, D = 1·M2·N2 = 4; MAC updates 8, reads (8 − 4) = 4 (first writes read nothing).
  Fills: Timeloop W − D = 0; artifact convention (first fill counted) W = 4.
- Z at GLB: tile N4·M1 = 4, M2 above: W = D = 8. Updates from BUF 4·2 = 8, reads (4−4)·2 = 0.
  Fills 0 (Timeloop) or 8 (first fill). DRAM: updates 8, reads 0.
"""

from __future__ import annotations

import numpy as np

from testy_model.model import LoopNests, dense_counts
from testy_model.spec import gemm

A, B, Z = 0, 1, 2
DRAM, GLB, BUF = 0, 1, 2
M, N, K = 0, 1, 2


def _nests() -> LoopNests:
    temporal = np.ones((1, 3, 3), dtype=np.int64)
    spatial = np.ones((1, 3, 3), dtype=np.int64)
    temporal[0, DRAM, M] = 2
    temporal[0, GLB, N] = 2
    spatial[0, GLB, N] = 2
    temporal[0, BUF, K] = 2
    order = np.tile(np.arange(3, dtype=np.int64), (1, 3, 1))
    keep = np.array([[[1, 1, 1], [1, 0, 1], [0, 1, 1]]], dtype=bool)
    return LoopNests(temporal=temporal, spatial=spatial, order=order, keep=keep)


def _stream() -> np.ndarray:
    st = np.zeros((3, 3), dtype=bool)
    st[GLB, B] = True
    st[BUF, A] = True
    return st


def test_default_is_timeloop_counting() -> None:
    c = dense_counts(gemm(2, 4, 2), _nests())
    assert c.instances[0].tolist() == [1, 1, 2]
    assert (c.fills[0, BUF, B], c.reads[0, BUF, B]) == (8, 8)
    assert (c.reads[0, GLB, B], c.fills[0, GLB, B]) == (0, 0)  # bypassed, not counted
    assert c.reads[0, DRAM, B] == 16
    assert (c.fills[0, GLB, A], c.reads[0, GLB, A], c.reads[0, DRAM, A]) == (4, 8, 4)
    assert (c.reads[0, BUF, A], c.fills[0, BUF, A]) == (0, 0)
    assert (c.updates[0, BUF, Z], c.reads[0, BUF, Z], c.fills[0, BUF, Z]) == (8, 4, 0)
    assert (c.updates[0, GLB, Z], c.reads[0, GLB, Z], c.fills[0, GLB, Z]) == (8, 0, 0)
    assert (c.updates[0, DRAM, Z], c.reads[0, DRAM, Z]) == (8, 0)
    assert c.distinct is not None
    assert (c.distinct[0, BUF, Z], c.distinct[0, GLB, Z], c.distinct[0, BUF, B]) == (4, 8, 4)


def test_streams_are_ignored_under_timeloop_conventions() -> None:
    base = dense_counts(gemm(2, 4, 2), _nests())
    c = dense_counts(gemm(2, 4, 2), _nests(), stream=_stream())
    assert np.array_equal(c.reads, base.reads) and np.array_equal(c.fills, base.fills)


def test_stream_and_first_fill_options() -> None:
    base = dense_counts(gemm(2, 4, 2), _nests())
    c = dense_counts(gemm(2, 4, 2), _nests(), stream=_stream(), conventions="sparseloop-2022")
    # streamed levels count their pass-through accesses
    assert (c.reads[0, GLB, B], c.fills[0, GLB, B]) == (16, 16)
    assert (c.reads[0, BUF, A], c.fills[0, BUF, A]) == (8, 8)
    # ... and the levels above are unchanged
    assert c.reads[0, DRAM, B] == 16 and c.reads[0, GLB, A] == 8
    # first fills of output tiles
    assert (c.fills[0, BUF, Z], c.fills[0, GLB, Z]) == (4, 8)
    # every other count is the same as Timeloop's
    same = np.ones_like(c.reads, dtype=bool)
    same[0, GLB, B] = same[0, BUF, A] = False
    assert np.array_equal(c.reads[same], base.reads[same])
    assert np.array_equal(c.updates, base.updates)
    same[0, BUF, Z] = same[0, GLB, Z] = False
    assert np.array_equal(c.fills[same], base.fills[same])


def test_stream_of_a_kept_tensor_changes_nothing() -> None:
    st = np.zeros((3, 3), dtype=bool)
    st[GLB, A] = True  # GLB keeps A already
    c = dense_counts(gemm(2, 4, 2), _nests(), stream=st)
    base = dense_counts(gemm(2, 4, 2), _nests())
    assert np.array_equal(c.reads, base.reads) and np.array_equal(c.fills, base.fills)
