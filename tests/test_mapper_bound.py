"""The beam search's step estimate (``mapper.bound``): hand-derived constants and estimates, the
dense engine's cycle-per-step floor it rests on, and that skipping what it rules out leaves the
search's result unchanged."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from testy_model.mapper.bound import ENERGY_MARGIN, StepBound, temporal_steps
from testy_model.mapper.context import _context
from testy_model.mapper.search import _beam_search
from testy_model.mapper.space import factors_from_exps
from testy_model.spec import gemm
from testy_model.spec.arch_loader import load_arch

ROOT = Path(__file__).resolve().parents[1]


def test_temporal_steps_multiplies_the_temporal_slots_only() -> None:
    # L = 2 levels, D = 2 dims: temporal slots [[2, 3], [4, 1]], spatial [[8, 1], [1, 5]];
    # the steps are 2·3·4·1 = 24 (the spatial 8 and 5 run in parallel)
    F = np.array([[[2, 3], [4, 1], [8, 1], [1, 5]]])
    assert temporal_steps(F, 2).tolist() == [24.0]


def _cost(compute, cycles, seconds) -> SimpleNamespace:
    return SimpleNamespace(
        compute_cycles=np.array(compute, dtype=float),
        cycles=np.array(cycles, dtype=float),
        seconds=np.array(seconds, dtype=float),
    )


def test_edp_estimate_from_hand_derived_constants() -> None:
    # two priced nests of T = 2·3 = 6 and 4·1 = 4 steps (one level, two dims), compute cycles
    # 6 and 8 (work ratios 1 and 2), latencies 12 and 8 cycles at 1 GHz (12 and 8 ns):
    # seconds per step = (s / cycles)·(compute / T) = 1e-9·1 and 1e-9·2, so σ = 1e-9 s;
    # energies 100 and 200 pJ give E_min = 100 pJ; a candidate of 10 steps is estimated at
    # m·100·1e-9·10 = m·1e-6 pJ·s
    b = StepBound("edp")
    b.observe(np.array([[[2, 3]], [[4, 1]]]), _cost([6, 8], [12, 8], [12e-9, 8e-9]))
    b.update((np.array([1.2e-6, 1.6e-6]), np.array([1.2e-6, 1.6e-6]), np.array([100.0, 200.0])))
    assert b.energy == 100.0
    assert b.per_step == pytest.approx(1e-9, rel=1e-12)
    assert b.lower(np.array([10.0]))[0] == pytest.approx(ENERGY_MARGIN * 1e-6, rel=1e-12)


def test_latency_estimate_reads_compute_cycles_not_latency() -> None:
    # a bandwidth-bound nest: T = 8 steps, compute 8 cycles, latency 40 cycles; ρ is the
    # compute cycles per step, 1 (not 40 / 8 = 5), so 10 steps estimate 10 cycles
    b = StepBound("latency")
    b.observe(np.array([[[8, 1]]]), _cost([8], [40], [40e-9]))
    assert b.per_step == 1.0
    assert b.lower(np.array([10.0, 3.0])).tolist() == [10.0, 3.0]


def test_no_estimate_for_energy_without_prices_or_compute_cycles() -> None:
    assert StepBound("edp").lower(np.array([5.0])).tolist() == [0.0]
    b = StepBound("energy")
    b.observe(np.array([[[4]]]), _cost([4], [4], [4e-9]))
    one = np.array([1.0])
    b.update((one, one, one))
    assert b.lower(np.array([1e9])).tolist() == [0.0]
    # an evaluator whose cost lacks the compute cycles: nothing is known, nothing skipped
    c = StepBound("latency")
    c.observe(np.array([[[4]]]), SimpleNamespace(cycles=np.array([4.0])))
    assert c.lower(np.array([1e9])).tolist() == [0.0]


@pytest.fixture(scope="module")
def tc_dense():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(ROOT / "arch_specs" / "tc_dense.yaml")


def test_dense_engine_takes_a_cycle_per_step(tc_dense) -> None:
    # the estimate's floor ρ = 1 on a dense engine: every candidate the search prices for
    # ResNet-50's layer3 3x3 convolution (as a GEMM) takes at least one cycle per temporal step
    ctx = _context(gemm(256, 196, 2304), tc_dense, "edp", None, None, None)
    _beam_search(ctx, 16, 512, 40, 0, 4, 2)
    L = len(ctx.ai.names)
    n = 0
    for batch, totals in ctx.priced:
        steps = temporal_steps(factors_from_exps(ctx.pi, batch.exps), L)
        fin = np.isfinite(totals[0])
        assert np.all(totals[0][fin] >= steps[fin])
        n += int(fin.sum())
    assert n > 1000


@pytest.mark.parametrize("shape", [(64, 3136, 576), (256, 196, 2304), (1000, 1, 2048)])
def test_skipping_by_the_estimate_keeps_the_result(tc_dense, shape) -> None:
    # the search with the estimate (and its other savings) ends with the same best mapping and
    # score as the one that prices every candidate, and prices fewer
    ctx = _context(gemm(*shape), tc_dense, "edp", None, None, None)
    fast, fast_s = _beam_search(ctx, 16, 512, 40, 0, 4, 2)
    n_fast = ctx.evaluated
    slow, slow_s = _beam_search(ctx, 16, 512, 40, 0, 4, 2, skip_repeats=False)
    assert fast_s[0][0] == slow_s[0][0]
    assert np.array_equal(fast.exps[0], slow.exps[0])
    assert n_fast < ctx.evaluated - n_fast
