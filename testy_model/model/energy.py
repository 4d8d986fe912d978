"""Energy formulas (pJ), each in one place with its equation and units."""

from __future__ import annotations

import numpy as np


def storage_energy(
    reads: np.ndarray,
    writes: np.ndarray,
    md_read_bits: np.ndarray,
    md_write_bits: np.ndarray,
    e_read: np.ndarray,
    e_write: np.ndarray,
    e_md_read: np.ndarray,
    e_md_write: np.ndarray,
) -> np.ndarray:
    """pJ of one level: reads·e_read + writes·e_write + metadata bits × pJ/bit.

    ``reads``/``writes`` are total words (all instances), energies pJ per word; metadata is in
    bits with energies in pJ per bit.
    """
    return reads * e_read + writes * e_write + md_read_bits * e_md_read + md_write_bits * e_md_write


def whole_vector_words(words: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Words charged when a level moves ``words`` words per instance in ``block``-word vectors.

    Equation (Timeloop: a partly filled vector access costs a whole vector):
    W_charged = block · ceil(words / block) for block > 1, else ``words`` unchanged (so
    fractional expected counts of word-wide levels stay continuous). Units: words of the
    level's datawidth, per instance; apply per tensor and per action (reads, fills, updates).
    A relative slack of 1e-9 keeps float noise (64.0000000001 words) from adding a vector.
    Example: 65 words in 32-word vectors -> 32 · ceil(2.03) = 96 words.
    """
    w = np.asarray(words, dtype=np.float64)
    b = np.asarray(block, dtype=np.float64)
    safe = np.maximum(b, 1.0)
    rounded = safe * np.ceil(w / safe * (1 - 1e-9) - 1e-12)
    return np.where(b > 1, np.maximum(rounded, 0.0), w)


def mac_energy(
    effective: np.ndarray, slots: np.ndarray, e_mac: np.ndarray, e_gated: np.ndarray
) -> np.ndarray:
    """pJ of the MAC array: effective MACs × e_mac + (slots − effective) × e_gated.

    ``slots`` are the MACs the hardware issues (dense work × p/q); the issued MACs whose operand
    is a zero are gated; work the hardware skips entirely costs nothing.
    """
    return effective * e_mac + np.maximum(slots - effective, 0.0) * e_gated


def tasd_unit_energy(values: np.ndarray, e_value: np.ndarray) -> np.ndarray:
    """pJ of run-time activation decomposition: values examined × pJ per value."""
    return values * e_value


def leakage_energy(
    cycles: np.ndarray,
    level_leak: np.ndarray,
    level_instances: np.ndarray,
    mac_leak: np.ndarray,
    mac_instances: np.ndarray,
) -> np.ndarray:
    """pJ leaked: cycles × (Σ_l leakage_l·instances_l + leakage_mac·MAC units)."""
    return cycles * ((level_leak * level_instances).sum(axis=-1) + mac_leak * mac_instances)


#: threshold table of Timeloop's ``BufferLevel::VectorWidthCoefficientTable`` (block size ->
#: per-density-decile threshold on tile / block) for compressed tiles.
VECTOR_WIDTH_THRESHOLDS: dict[int, tuple[float, ...]] = {
    2: (251, 125, 84, 63, 51, 42, 36, 32, 28, 1),
    4: (375, 188, 125, 94, 75, 63, 54, 47, 42, 1),
    8: (438, 219, 146, 110, 88, 73, 63, 55, 49, 1),
    16: (469, 235, 157, 118, 94, 79, 67, 59, 52, 1),
    32: (485, 243, 162, 122, 97, 81, 70, 61, 52, 1),
}


def vector_accesses(scalar: np.ndarray, block: np.ndarray, ratio: np.ndarray | None) -> np.ndarray:
    """Vector accesses of ``scalar`` word accesses per instance in ``block``-word vectors:
    ``⌈scalar / block⌉ · ratio`` (``BufferLevel::ComputeVectorAccesses``; ``ratio`` corrects
    compressed tiles, :func:`compressed_vector_ratio`; None = 1). A relative slack of 1e-9
    keeps float noise from adding a vector. Units: vector accesses per instance."""
    b = np.maximum(np.asarray(block, dtype=np.float64), 1.0)
    v = np.asarray(np.asarray(scalar) / b)  # then in place: the same operations, fewer copies
    v *= 1 - 1e-9
    v -= 1e-12
    np.ceil(v, out=v)
    np.maximum(v, 0, out=v)  # (what .clip(min=0) computes)
    return v if ratio is None else v * ratio


def compressed_vector_ratio(
    tile: np.ndarray, block: np.ndarray, density: np.ndarray, occ: np.ndarray, prob: np.ndarray
) -> np.ndarray:
    """Correction of the vector accesses of a compressed tile (``ComputeVectorAccesses``):
    when the block is > 1, the density d < 1 and the table threshold for (block, decile of d)
    exceeds ``tile / block``, ``ratio = Σ_{k≥1} ⌈k/block⌉·P(k) / (tile·d/block)``; else 1.
    ``occ``/``prob`` (..., O) are the tile's occupancy distribution. Dimensionless."""
    out = np.ones_like(np.asarray(tile, dtype=np.float64))
    for blk, table in VECTOR_WIDTH_THRESHOLDS.items():
        sel = (block == blk) & (density < 1.0) & (tile > 0)
        if not np.any(sel):
            continue
        idx = np.where(density >= 0.1, np.floor(density / 0.1) - 1, 0).astype(int).clip(0, 9)
        thr = np.asarray(table)[idx]
        use = sel & (thr > tile / blk)
        total = (np.ceil(occ / blk) * prob * (occ >= 1)).sum(axis=-1)
        naive = tile * density / blk
        out = np.where(use & (naive > 0), total / np.where(naive > 0, naive, 1.0), out)
    return out


def buffer_energy(vectors: np.ndarray, op_energy: np.ndarray, utilized: np.ndarray) -> np.ndarray:
    """pJ of each tensor at each level: ``Σ_op vectors_op · e_op · utilized instances``
    (``BufferLevel::ComputeBufferEnergy`` × ``StorageEnergy``). ``vectors`` (..., L, T, A)
    vector accesses per instance, ``op_energy`` (..., L, A) pJ per access of each level,
    ``utilized`` (..., L, T) average instances; leading axes broadcast (a (B, 1) batch of
    candidates against (1, P) design points costs one matrix product per level)."""
    return np.matmul(vectors, op_energy[..., None])[..., 0] * utilized


def compute_energy(
    random: np.ndarray, gated: np.ndarray, skipped: np.ndarray, e_ops: np.ndarray
) -> np.ndarray:
    """pJ of the MACs: random·e_random + gated·e_gated + skipped·e_skipped (``e_ops`` (..., 3))."""
    return random * e_ops[..., 0] + gated * e_ops[..., 1] + skipped * e_ops[..., 2]
