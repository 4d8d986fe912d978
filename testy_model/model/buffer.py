"""Energy and cycles of storage levels and compute from the (sparse) counts, as Timeloop's
``BufferLevel`` and ``ArithmeticUnits`` price them (``src/model/buffer.cpp``,
``src/model/arithmetic.cpp``, ``src/model/topology.cpp``).

For every level l and tensor t, per instance (B, L, T) and per action (random / gated / skipped
× read / fill / update, and the same for metadata):

- data vector accesses ``⌈words / block⌉ · ratio`` (:func:`energy.vector_accesses`);
- metadata vector accesses ``⌈Σ_rank (units·word bits) / metadata access width⌉``;
- energy ``Σ_actions vectors · e_action · utilized instances`` (:func:`energy.buffer_energy`).

Cycles: compute ``⌈(actual + gated computes) / utilized MAC units⌉``; each level
``⌈max(compute, reads/read bw, writes/write bw, (reads + writes)/shared bw)⌉`` with reads =
actual + gated reads + ⌊metadata read bits / word bits⌋ (Timeloop's integer division; writes
likewise over fills and updates), per tensor spread over its utilized instances, summed over
tensors; the design's cycles are the largest (double-buffered).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testy_model.model import energy as en
from testy_model.model import latency as lat
from testy_model.model.arrays import STORAGE_OPS, ArchArrays, op_index

KINDS = ("reads", "fills", "updates")
SPLITS = ("random", "gated", "skipped")


@dataclass(frozen=True)
class StageCounts:
    """What the pricing needs of a sparse (or term) stage, per instance.

    ``counts[kind][split]`` (B, L, T) words; ``md_bits[kind][split]`` (B, L, T) metadata bits;
    ``utilized`` (B, L, T) average utilized instances; ``ratio`` (B, L, T) vector correction;
    ``compute[split]`` (B,) computes (all units); ``mac_units`` (B,) utilized MAC units;
    ``max_instances`` (B, L, T) instances a level needs (X·Y expansion; default: utilized).
    ``actual_only``: every gated and skipped count and metadata bit is 0 and ``ratio`` is 1
    (the term stage): pricing leaves those actions out (the same numbers, fewer operations).
    """

    counts: dict[str, dict[str, np.ndarray]]
    md_bits: dict[str, dict[str, np.ndarray]]
    utilized: np.ndarray
    ratio: np.ndarray
    compute: dict[str, np.ndarray]
    mac_units: np.ndarray
    max_instances: np.ndarray | None = None
    position_util: np.ndarray | None = None
    actual_only: bool = False


@dataclass(frozen=True)
class Priced:
    """Energy (pJ) per (B, L, T) and of the MACs (B,), cycles (compute (B,), per level (B, L))."""

    energy: np.ndarray
    mac_energy: np.ndarray
    compute_cycles: np.ndarray
    level_cycles: np.ndarray


def _vector_widths(aa: ArchArrays) -> tuple[np.ndarray, np.ndarray]:
    """(..., L, 1) words per data vector and bits per metadata access of every level."""
    blk = aa.block_words if aa.block_words is not None else np.ones_like(aa.datawidth)
    md_w = aa.md_access_bits if aa.md_access_bits is not None else np.zeros_like(aa.datawidth)
    return blk[..., None], md_w[..., None]


@dataclass(frozen=True)
class _LevelArrays:
    """What :func:`price_counts` derives from the architecture alone: ``blk``/``md_w``
    (:func:`_vector_widths`) and the read, write and shared bandwidths in words per cycle
    (``bw / datawidth``; inf = unlimited)."""

    blk: np.ndarray
    md_w: np.ndarray
    read_words: np.ndarray
    write_words: np.ndarray
    shared_words: np.ndarray


_LEVEL_MEMO: dict[int, tuple[ArchArrays, _LevelArrays]] = {}


def _level_arrays(aa: ArchArrays) -> _LevelArrays:
    """:class:`_LevelArrays` of ``aa``, memoised on its identity (the memo holds it, so an
    identity cannot be reused while cached; bounded)."""
    hit = _LEVEL_MEMO.get(id(aa))
    if hit is not None and hit[0] is aa:
        return hit[1]
    blk, md_w = _vector_widths(aa)
    shared = aa.shared_bw if aa.shared_bw is not None else np.full_like(aa.read_bw, np.inf)
    out = _LevelArrays(
        blk, md_w, aa.read_bw / aa.datawidth, aa.write_bw / aa.datawidth, shared / aa.datawidth
    )
    if len(_LEVEL_MEMO) >= 64:
        _LEVEL_MEMO.clear()
    _LEVEL_MEMO[id(aa)] = (aa, out)
    return out


def action_vectors(
    counts: dict[str, dict[str, np.ndarray]],
    md_bits: dict[str, dict[str, np.ndarray]],
    block: np.ndarray,
    md_width: np.ndarray,
    ratio: np.ndarray,
    word_scale: np.ndarray,
    shape: tuple[int, ...],
    actual_only: bool = False,
) -> np.ndarray:
    """Vector accesses per instance of every Timeloop storage action (..., L, T, A):
    data ``⌈words·word_scale / block⌉ · ratio`` (:func:`energy.vector_accesses`), metadata
    ``⌈bits / md_width⌉`` (0 where the level has no metadata access width), for each of
    random / gated / skipped × read / fill / update. ``counts``/``md_bits`` are words and bits
    per instance; ``shape`` the broadcast (..., L, T) shape. ``actual_only``: the gated and
    skipped counts and bits are 0 and the ratio is 1 (:class:`StageCounts`): only the random
    actions are formed (a ratio of exactly 1 multiplies nothing away)."""
    vec = np.zeros((*shape, len(STORAGE_OPS)))
    if np.shape(block)[-1:] == (1,) and shape[-1] > 1:  # (a trailing 1 broadcasts slowly)
        block = np.repeat(block, shape[-1], axis=-1)
    # no level with a metadata access width: every metadata count stays 0 (as zeros() made it)
    has_md = bool((md_width > 0).any())
    # no accesses: ⌈0⌉ clipped at 0 is +0, times the ratio: +0 (as zeros() made it) where the
    # ratio is finite and not negative
    plain = actual_only or bool(np.all(np.isfinite(ratio) & (np.asarray(ratio) >= 0)))
    for kind in KINDS:
        for split in SPLITS[:1] if actual_only else SPLITS:
            words = counts[kind][split]
            if words.any():
                vec[..., op_index(split, kind)] = en.vector_accesses(
                    words * word_scale, block, None if actual_only else ratio
                )
            elif not plain:
                vec[..., op_index(split, kind)] = 0.0 * ratio
            bits = md_bits[kind][split]
            if not has_md or not bits.any():  # ⌈0⌉ clipped at 0 = +0, as zeros() made it
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                mv = np.where(md_width > 0, np.ceil(bits / md_width * (1 - 1e-9) - 1e-12), 0.0)
            vec[..., op_index(split, kind, metadata=True)] = np.maximum(mv, 0.0)
    return vec


def tensor_energy(
    aa: ArchArrays, level: int, words: dict[str, float], md_read_bits: float, word_scale: float
) -> float:
    """pJ of one tensor's actual accesses at one single-instance level of design point 0,
    charged exactly as :func:`price_counts` charges them (whole vectors per action, metadata
    per access width, the level's per-action energies): ``Σ_a vectors_a · e_a``, with
    ``words`` = ``{"reads", "fills", "updates"}`` in words of the tensor and ``word_scale`` =
    tensor bits / level word bits."""
    assert aa.op_energy is not None
    blk, md_w = _vector_widths(aa)
    zero = np.zeros(1)
    counts = {k: {"random": np.array([words[k]]), "gated": zero, "skipped": zero} for k in KINDS}
    md = {k: {s: zero for s in SPLITS} for k in KINDS}
    md["reads"] = {"random": np.array([md_read_bits]), "gated": zero, "skipped": zero}
    vec = action_vectors(
        counts, md, blk[0, level], md_w[0, level], np.ones(1), np.array([word_scale]), (1,)
    )
    return float(en.buffer_energy(vec, aa.op_energy[0, level], np.ones(1))[0])


def price_counts(aa: ArchArrays, st: StageCounts, word_scale: np.ndarray) -> Priced:
    """Energy and cycles of ``st`` on the design points of ``aa`` (module docstring).

    ``word_scale`` (P, L, T) = tensor word bits / level word bits (energy per tensor word
    relative to a level word, when a problem gives a tensor its own datawidth).

    Shapes broadcast: the counts (..., L, T) against the arrays of ``aa`` (..., L) — e.g. B
    candidates (B, 1, L, T) at P points (1, P, L) for a (B, P) grid (``dse.batch``).
    """
    assert aa.op_energy is not None and aa.mac_op_energy is not None
    la = _level_arrays(aa)
    blk, md_w = la.blk, la.md_w
    shape = np.broadcast_shapes(st.utilized.shape, blk.shape)
    only = st.actual_only
    vec = action_vectors(st.counts, st.md_bits, blk, md_w, st.ratio, word_scale, shape, only)
    energy = en.buffer_energy(vec, aa.op_energy, st.utilized)
    mac = en.compute_energy(
        st.compute["random"], st.compute["gated"], st.compute["skipped"], aa.mac_op_energy
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        cc = np.ceil(
            (st.compute["random"] + st.compute["gated"])
            / np.maximum(st.mac_units, 1e-300)
            * (1 - 1e-12)
        )
    dw = aa.datawidth[..., None]
    need = st.utilized if st.max_instances is None else st.max_instances
    # BufferLevel::ComputePerformance: uint64 data accesses (actual + gated) plus the metadata
    # bits in whole words (integer division), per tensor, spread from the needed X·Y instances
    # over the utilized ones: ⌈accesses / (needed / utilized)⌉
    # (actual only: the zero gated terms left out; whole() gives +0 for a sum of zeros of
    # either sign, so the accesses are the same)
    c, m = st.counts, st.md_bits
    if only and all(m[k]["random"].shape == c[k]["random"].shape == shape for k in KINDS):
        # one split: no running sum from 0 (0 + x is x but for x = −0, and whole() maps ±0
        # to +0; an addend −0 likewise), so the same accesses
        rd_d = c["reads"]["random"]
        wr_d = c["fills"]["random"] + c["updates"]["random"]
        rd_m = m["reads"]["random"]
        wr_m = m["fills"]["random"] + m["updates"]["random"]
    else:
        rd_d, wr_d, rd_m, wr_m = (np.zeros(shape) for _ in range(4))
        for split in ("random",) if only else ("random", "gated"):
            rd_d = rd_d + c["reads"][split]
            wr_d = wr_d + c["fills"][split] + c["updates"][split]
            rd_m = rd_m + m["reads"][split]
            wr_m = wr_m + m["fills"][split] + m["updates"][split]

    def whole(x: np.ndarray) -> np.ndarray:  # uint64 truncation, float noise spared
        return np.floor(np.maximum(x, 0.0) + 1e-9)

    if dw.shape[-1] == 1 and shape[-1] > 1:  # (a trailing 1 broadcasts slowly)
        dw = np.repeat(dw, shape[-1], axis=-1)
    rd = whole(rd_d) + np.floor(whole(rd_m) / dw)
    wr = whole(wr_d) + np.floor(whole(wr_m) / dw)
    if st.max_instances is None:  # needed = utilized: the ratio is exactly 1
        rd = np.ceil(rd * word_scale * (1 - 1e-12))
        wr = np.ceil(wr * word_scale * (1 - 1e-12))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((need > 0) & (st.utilized > 0), need / st.utilized, 1.0)
        rd = np.ceil(rd * word_scale / ratio * (1 - 1e-12))
        wr = np.ceil(wr * word_scale / ratio * (1 - 1e-12))

    lc = lat.level_cycles(cc[..., None], rd, wr, la.read_words, la.write_words, la.shared_words)
    return Priced(energy, mac, cc, lc)
