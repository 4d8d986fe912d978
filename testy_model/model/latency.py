"""Latency formulas (cycles), each in one place with its equation and units.

Compute: a term GEMM of pattern n:m on an operand whose hardware runs p:q patterns executes on the
smallest listed p:q that contains n:m (``NMPattern.fits``) at ``p/q`` of the dense work, or on a
hierarchical (HighLight) pattern that contains it at that pattern's density when that is less
(``model.hierarchical``); with no containing pattern it runs dense (ratio 1). An engine that
skips arbitrary zeros (``unstructured``) runs at the operand's kept density; a ``gate`` action
saves no cycles.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from testy_model.model.hierarchical import hardware_for
from testy_model.spec.arch import OperandSparsity
from testy_model.tasd.pattern import NMPattern


@lru_cache(maxsize=4096)
def work_ratio(
    pattern: NMPattern | None, density: float | np.ndarray, support: OperandSparsity
) -> float | np.ndarray:
    """Fraction of the dense MAC work (and cycles) the engine spends on one operand term.

    Equation: the density of the least-dense containing hardware pattern, flat ``p/q`` or
    hierarchical ``(Nc/Mc)·(Nf/Mf)`` (``model.hierarchical.hardware_for``); ``density`` when
    the engine skips unstructured zeros and no pattern applies; 1 otherwise, and 1 for a
    ``gate`` action (gating saves energy, not cycles). Dimensionless.
    """
    if support.action == "gate":
        return 1.0
    hw = hardware_for(pattern, support)
    if hw is not None:
        return hw.density
    if support.unstructured:
        d = np.minimum(1.0, density)
        return float(d) if np.ndim(d) == 0 else d
    return 1.0


def compute_cycles(temporal_iterations: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Compute cycles = Π temporal factors × Σ_terms work ratio (cycles).

    ``temporal_iterations`` is the dense cycle count of one term (MACs / (MAC units × spatial
    utilisation), i.e. the product of all temporal loop bounds); ``work`` the summed per-term
    work ratios (``Σ_i Σ_j r_Ai·r_Bj``).
    """
    return temporal_iterations * work


def bandwidth_cycles(
    read_bits: np.ndarray, write_bits: np.ndarray, read_bw: np.ndarray, write_bw: np.ndarray
) -> np.ndarray:
    """Cycles a level needs to move its traffic:
    ``ceil(max(read bits / read bw, write bits / write bw))``.

    Bits per instance over bits/cycle per instance; an unlimited (``inf``) bandwidth costs 0.
    Whole cycles, as Timeloop counts them: its sparse_tensor_core_like reference moves 65 DRAM
    words at 32 words/cycle in 3 cycles (throttling 0.49), not 2.03.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(np.isinf(read_bw), 0.0, read_bits / read_bw)
        w = np.where(np.isinf(write_bw), 0.0, write_bits / write_bw)
    # round up; the relative slack keeps float noise (3.0000000000004) at 3
    return np.ceil(np.maximum(r, w) * (1.0 - 1e-12))


def tasd_unit_cycles(
    values: np.ndarray, block: np.ndarray, cycles_per_block: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Cycles to decompose ``values`` activations at run time: ceil(values/block)·c_blk / units."""
    return np.ceil(values / block) * cycles_per_block / count


def overlapped_latency(compute: np.ndarray, levels: np.ndarray, tasd: np.ndarray) -> np.ndarray:
    """Double-buffered latency: max(compute, every level's bandwidth cycles, TASD unit) (cycles)."""
    return np.maximum(np.maximum(compute, levels.max(axis=-1)), tasd)


def serial_latency(compute: np.ndarray, levels: np.ndarray, tasd: np.ndarray) -> np.ndarray:
    """Non-overlapped latency: compute + Σ level bandwidth cycles + TASD unit (cycles)."""
    return compute + levels.sum(axis=-1) + tasd


def level_cycles(
    compute: np.ndarray,
    read_words: np.ndarray,
    write_words: np.ndarray,
    read_bw: np.ndarray,
    write_bw: np.ndarray,
    shared_bw: np.ndarray,
) -> np.ndarray:
    """Cycles of one level (``BufferLevel::ComputePerformance``): with the demanded words per
    compute cycle ``u = Σ_t words_t / compute`` (reads, writes, and both for shared bandwidth),
    the level slows the compute down by ``slowdown = min(1, bw / u)`` and takes
    ``cycles = ⌈compute / slowdown⌉`` — ``⌈max(compute, reads/read_bw, ...)⌉``, evaluated in
    Timeloop's floating-point order (so its rounding is reproduced).

    ``read_words``/``write_words`` (..., T) words per instance of each tensor; ``compute`` (...);
    bandwidths words/cycle (inf = unlimited). Returns cycles (...)."""
    c = np.asarray(compute, dtype=np.float64)
    n_t = read_words.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if n_t == 0:
            ur = np.zeros(np.broadcast_shapes(c.shape, read_words.shape[:-1]))
            uw = np.zeros_like(ur)
        else:  # (from the first term, not 0 + it: the same but where it is −0, and u is only
            # compared with a bandwidth >= 0 and divided into one where it exceeds it)
            ur = read_words[..., 0] / c
            uw = write_words[..., 0] / c
        for t in range(1, n_t):
            ur = ur + read_words[..., t] / c
            uw = uw + write_words[..., t] / c
        slow = np.where(read_bw < ur, np.minimum(1.0, read_bw / ur), 1.0)
        slow = np.where(write_bw < uw, np.minimum(slow, write_bw / uw), slow)
        slow = np.where(shared_bw < uw + ur, np.minimum(slow, shared_bw / (uw + ur)), slow)
        cyc = np.ceil(c / slow)
    return np.where(c > 0, cyc, 0.0)
