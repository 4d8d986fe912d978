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
