"""Representation formats: which loops each rank covers, and metadata per tile (Sparseloop).

A tensor held at a level in a format (``UOP``, ``CP``, ``B``, ``RLE``, ``UB`` per rank, rank 0
innermost) is a fiber tree over the tile's loops. Timeloop v3.0.3 builds it in
``src/sparse-analysis/representation-analyzer.cpp``:

1. **Loops of the tile** (``DefineCompressionFormatModels``): the loops, trivial ones included, of
   the level and of the levels below it that bypass the tensor, whose dimension indexes the
   tensor, inner to outer. Unless the level must *pre-tile* (compressed, with a child holder
   keeping more than one value), the innermost loop of each dimension absorbs the extent of the
   levels below (``loop.end ×= Π bounds below``).
2. **Ranks** (``ApplyRanksOuterToInner`` by default, ``ApplyRanksInnerToOuter`` for
   ``rank-application-order: inner-to-outer``): each rank takes the next non-trivial loop from
   its side, plus, when the rank has ``flattened-rankIDs``, the following loops whose dimension is
   in the same flattening group (or trivial). Ranks left over are empty; non-trivial loops left
   over mean the format has too few ranks. Pre-tiling puts the child's ranks innermost.
3. **Fiber shape** of a rank: the tensor's words in the box of its loops; the *element* of rank r
   is the box at rank r−1's first assigned loop (rank 0: one value), as Timeloop records it.
4. **Occupancy given a data tile of S values holding O non-zeros**
   (``GetMetaDataTileOccupancyGivenDataTile`` and the format models in
   ``src/workload/format-models/``), ranks outer to inner, with F_r = Π fiber shapes above r,
   e_r = P(element of r empty | S, O), c_r = P(tile of r empty | S, O)::

       fibers = F_r·(1 − c_r)
       UOP: payload = fibers·(f_r + 1)                       metadata 0
       CP:  metadata = payload = fibers·⌈f_r·(1 − e_r)⌉
       RLE: metadata = payload = fibers·f_r·(1 − e_r)
       B:   metadata = fibers·f_r, payload = fibers·⌈f_r·(1 − e_r)⌉
       UB:  metadata = payload = F_r·f_r

   A rank with f_r = 1 (except the outermost, or rank 0 for inner-to-outer) holds nothing, and
   the innermost non-empty rank's payload is the data itself (0 metadata payload).

Word bits: a rank's ``metadata-word-bits`` / ``payload-word-bits`` as given (``B`` metadata: 1 by
default), otherwise the level's ``metadata_datawidth``; a width that does not divide the level's
metadata storage width is rounded up to one that does (``AdjustFormatWordBits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from testy_model.model.density import DensityModel
from testy_model.spec.sparseloop import DataSpaceFormat

COMPRESSED = frozenset({"CP", "B", "RLE"})


def adjust_word_bits(bits: int | None, default: int, storage_width: int) -> int:
    """Word bits of a rank field: ``bits`` or ``default`` when not given, rounded up to the next
    width dividing ``storage_width`` (within 2×) as Timeloop does."""
    b = default if bits is None else int(bits)
    if b and storage_width and storage_width % b:
        for cand in range(b, 2 * b):
            if storage_width % cand == 0:
                return cand
    return b


@dataclass(frozen=True)
class RankSpec:
    """One rank: format name, word bits, flattening groups (dimension indices)."""

    format: str
    md_bits: int
    pl_bits: int
    groups: tuple[tuple[int, ...], ...] = ()


def rank_specs(
    fmt: DataSpaceFormat, dims: tuple[str, ...], default_md_bits: int, md_storage_width: int
) -> tuple[RankSpec, ...]:
    """The ranks of ``fmt`` innermost first, with resolved word bits (module docstring)."""
    out = []
    for r in fmt.ranks_inner_to_outer:
        md_default = 1 if r.format == "B" else default_md_bits
        out.append(
            RankSpec(
                format=r.format,
                md_bits=adjust_word_bits(r.metadata_word_bits, md_default, md_storage_width),
                pl_bits=adjust_word_bits(r.payload_word_bits, default_md_bits, md_storage_width),
                groups=tuple(
                    tuple(dims.index(d) for d in g if d in dims) for g in r.flattened_rank_ids
                ),
            )
        )
    return tuple(out)


@lru_cache(maxsize=65536)
def assign_ranks(
    loops: tuple[tuple[int, float], ...],
    ranks: tuple[RankSpec, ...],
    inner_to_outer: bool,
    first_rank: int,
) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...], bool]:
    """Map loops (``(dim, bound)`` inner to outer) to ranks ``first_rank..R−1`` (module step 2).

    Returns ``(members, anchor, ok)``: per rank the indices of its loops (empty for a dummy
    rank), the index of the loop whose box is the rank's subtile (−1: the innermost loop of the
    list; −2: one value), and whether every non-trivial loop found a rank.
    """
    n_r = len(ranks)
    members: dict[int, tuple[int, ...]] = {}
    anchor: dict[int, int] = {}
    n = len(loops)
    trivial = [b <= 1 for _, b in loops]
    if inner_to_outer:
        i, r = 0, first_rank - 1
        while r < n_r - 1 and i < n:
            while i < n and trivial[i]:
                i += 1
            if i >= n:
                break
            r += 1
            rule = _rule(ranks[r], loops[i][0])
            if ranks[r].groups and rule is None:
                members[r], anchor[r] = (), -2
                continue
            mem, anchor[r] = [i], i
            i += 1
            while i < n and (trivial[i] or (rule is not None and loops[i][0] in rule)):
                if not trivial[i]:
                    mem.append(i)
                i += 1
            members[r] = tuple(mem)
        while r < n_r - 1:
            r += 1
            members[r], anchor[r] = (), -1
        ok = all(trivial[j] for j in range(i, n))
    else:
        i, r = n - 1, n_r
        while r > first_rank and i >= 0:
            while i >= 0 and trivial[i]:
                i -= 1
            if i < 0:
                break
            r -= 1
            rule = _rule(ranks[r], loops[i][0])
            if ranks[r].groups and rule is None:
                members[r], anchor[r] = (), -1
                continue
            mem, anchor[r] = [i], i
            i -= 1
            while i >= 0 and (trivial[i] or (rule is not None and loops[i][0] in rule)):
                if not trivial[i]:
                    mem.append(i)
                i -= 1
            members[r] = tuple(mem)
        while r > first_rank:
            r -= 1
            members[r], anchor[r] = (), -1
        ok = all(trivial[j] for j in range(0, i + 1))
    rng = range(first_rank, n_r)
    return tuple(members[r] for r in rng), tuple(anchor[r] for r in rng), ok


def _rule(rank: RankSpec, dim: int) -> tuple[int, ...] | None:
    """The flattening group of ``rank`` containing ``dim`` (None when none or no groups)."""
    for g in rank.groups:
        if dim in g:
            return g
    return None


@dataclass(frozen=True)
class FormatLayout:
    """Per-row fiber tree of one tensor at one level (module steps 1–3).

    ``fiber`` (B, R) fiber shapes; ``subtile`` (B, R+1) Timeloop's metadata subtiles (entry r is
    the element of rank r, entry R the box of the outermost rank); ``empty`` (B, R) ranks that
    hold nothing; ``ok`` (B,) enough ranks.
    """

    ranks: tuple[RankSpec, ...]
    fiber: np.ndarray
    subtile: np.ndarray
    empty: np.ndarray
    ok: np.ndarray
    inner_to_outer: bool

    @property
    def element(self) -> np.ndarray:
        """(B, R) words of each rank's element (the box below it)."""
        return self.subtile[:, :-1]

    @property
    def compressed(self) -> bool:
        """True when a rank is compressed (CP, B, RLE)."""
        return any(r.format in COMPRESSED for r in self.ranks)


def metadata_units(
    layout: FormatLayout,
    model: DensityModel,
    tile: np.ndarray,
    occ: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(metadata units, payload units), each (B, O, R), of a data tile of ``tile`` (B,) values
    holding ``occ`` (B, O) non-zeros (module step 4)."""
    n_r = len(layout.ranks)
    s = tile[:, None]
    md = np.zeros((*occ.shape, n_r))
    pl = np.zeros((*occ.shape, n_r))
    fibers_above = np.ones(occ.shape)
    cur = np.broadcast_to(s, occ.shape)
    for r in range(n_r - 1, -1, -1):
        f = layout.fiber[:, r][:, None]
        nxt = layout.element[:, r][:, None]
        p_cur = model.prob_empty_given(cur, s, occ)
        p_nxt = model.prob_empty_given(np.broadcast_to(nxt, occ.shape), s, occ)
        fibers = fibers_above * (1.0 - p_cur)
        fmt = layout.ranks[r].format
        if fmt == "UOP":
            m_r, p_r = np.zeros(occ.shape), fibers * (f + 1.0)
        elif fmt == "CP":
            m_r = np.ceil(f * (1.0 - p_nxt)) * fibers
            p_r = m_r
        elif fmt == "RLE":
            m_r = f * (1.0 - p_nxt) * fibers
            p_r = m_r
        elif fmt == "B":
            m_r = fibers * f
            p_r = fibers * np.ceil(f * (1.0 - p_nxt))
        else:  # UB
            m_r = fibers_above * f
            p_r = m_r
        empty = layout.empty[:, r][:, None]
        md[..., r] = np.where(empty, 0.0, m_r)
        pl[..., r] = np.where(empty, 0.0, p_r)
        fibers_above = fibers_above * f
        cur = np.broadcast_to(nxt, occ.shape)
    # the innermost non-empty rank's payload is the data itself
    nonempty = (md > 0) | (pl > 0)
    first = np.argmax(nonempty, axis=-1)
    has = np.asarray(nonempty.any(axis=-1))
    idx = np.arange(n_r)
    pl = np.where((idx == first[..., None]) & has[..., None], 0.0, pl)
    return md, pl
