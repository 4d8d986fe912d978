"""Sliding-window halo reuse across a loop, with and without an irrelevant loop inside it,
derived by hand (Timeloop's counting; reference: eyeriss_like / simple_output_stationary, see
tests/test_reference_timeloop.py).

1-D convolution Outputs[m, q] += Weights[m, s] · Inputs[q + s], M = 2, Q = 8, S = 3 (C = N = P =
R = 1, stride 1). Levels: DRAM (0) above BUF (1), both keep every tensor, one MAC.
BUF loops: Q4, S3, so its Inputs tile spans (4 − 1) + (3 − 1) + 1 = 6 words. DRAM loops: Q2 and
M2, in two orders. A Q step moves the window by 4 of its 6 words (2 overlap).

- M2 outside Q2 (Q innermost at DRAM): the halo is reused within each m:
  fills = 2 · (6 + (2 − 1) · 4) = 20 words.
- Q2 outside M2 (M innermost at DRAM, irrelevant to Inputs): the tile stays resident across M,
  but Timeloop refetches the whole tile at each Q step (no halo credit):
  fills = 6 + (2 − 1) · 6 = 12 words (the old overlap rule would give 6 + 4 = 10).
"""

from __future__ import annotations

import numpy as np

from testy_model.model import LoopNests, dense_counts
from testy_model.spec.workload import conv2d


def _counts(m_inner: bool) -> float:
    prob = conv2d(c=1, m=2, p=1, q=8, r=1, s=3)
    dims = list(prob.dimensions)
    nd = len(dims)
    tem = np.ones((1, 2, nd), dtype=np.int64)
    spa = np.ones((1, 2, nd), dtype=np.int64)
    qi, mi, si = dims.index("Q"), dims.index("M"), dims.index("S")
    tem[0, 0, qi], tem[0, 0, mi] = 2, 2
    tem[0, 1, qi], tem[0, 1, si] = 4, 3
    # order: position in the permutation, 0 = innermost
    order = np.tile(np.arange(nd, dtype=np.int64), (1, 2, 1))
    order[0, 0, mi], order[0, 0, qi] = (0, 1) if m_inner else (1, 0)
    others = [d for d in range(nd) if d not in (mi, qi)]
    order[0, 0, others] = np.arange(2, nd)
    keep = np.ones((1, 2, len(prob.tensor_names)), dtype=bool)
    c = dense_counts(prob, LoopNests(temporal=tem, spatial=spa, order=order, keep=keep))
    return float(c.fills[0, 1, prob.tensor_names.index("Inputs")])


def test_halo_credited_when_window_loop_is_innermost() -> None:
    assert _counts(m_inner=False) == 20


def test_halo_lost_with_irrelevant_loop_inside() -> None:
    assert _counts(m_inner=True) == 12
