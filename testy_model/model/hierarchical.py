"""Hierarchical (HighLight-style) structured sparsity: containment, work and metadata.

HighLight (Wu et al., MICRO 2023; reference.md) composes a coarse N:M over blocks with a fine
N:M inside each kept block. A hierarchical pattern ``H = Nc:Mc(Nf:Mf)`` on an operand's
reduction axis means:

- the axis is cut into aligned *fine blocks* of ``Mf`` values, and the fine blocks into aligned
  *groups* of ``Mc`` fine blocks (``Mc·Mf`` values);
- in every group at most ``Nc`` fine blocks hold any non-zero (the coarse rank), and every fine
  block holds at most ``Nf`` non-zeros (the fine rank).

Its density is ``(Nc/Mc)·(Nf/Mf)``; the datapath runs such a tensor at that fraction of the dense
work (it processes ``Nf`` values of each of ``Nc`` blocks per group).

**Containment.** A term of pattern ``n:m`` (every aligned m-block holds at most n non-zeros)
*fits* H when every n:m tensor is H-compliant, i.e. both worst cases are within bounds:

1. fine: ``w_f = worst_case_per_block(Mf) <= Nf`` (the most non-zeros an aligned Mf-block of an
   n:m tensor can hold, ``NMPattern.worst_case_per_block``);
2. coarse: ``w_c <= Nc``, where ``w_c`` is the most fine blocks of one aligned group that an n:m
   tensor can make non-empty. Over the m-blocks ``b`` meeting a group window ``G`` (for every
   alignment of groups against m-blocks), an m-block can make non-empty at most
   ``min(n, fine blocks b ∩ G meets)`` fine blocks, and distinct m-blocks are independent, so
   ``w_c = min(Mc, max over windows Σ_b min(n, #fine blocks meeting b ∩ G))``.

Examples: 1:8 fits 2:4(2:4) (w_f = 1 <= 2; a 16-value group meets two 8-blocks, w_c = 2 <= 2)
but not 1:4(2:4); 1:16 fits 1:4(2:4) (w_c = 1); 2:8 needs 4:4(2:4) (w_c = 4).

**Metadata.** Per kept value, ``ceil(log2 Mf)`` bits locate it in its fine block, and each kept
fine block carries a ``ceil(log2 Mc)``-bit index of its position in the group, shared by the
``Nf`` values it keeps: ``bits = ceil(log2 Mc)/Nf + ceil(log2 Mf)`` per kept value
(2:4(2:4): 2/2 + 2 = 3 bits), unless the support states ``metadata_bits``.
"""

from __future__ import annotations

import math
from functools import lru_cache

from testy_model.spec.arch import HierarchicalPattern, OperandSparsity
from testy_model.tasd.pattern import NMPattern

Hardware = NMPattern | HierarchicalPattern


def _ceil_log2(x: int) -> int:
    return math.ceil(math.log2(x)) if x > 1 else 0


@lru_cache(maxsize=4096)
def worst_nonempty_blocks(pattern: NMPattern, fine_m: int, coarse_m: int) -> int:
    """Most of the ``coarse_m`` fine blocks (``fine_m`` values each) of one aligned group that an
    ``n:m`` tensor can make non-empty (module docstring, coarse rule). Blocks."""
    n, m = pattern.n, pattern.m
    window = fine_m * coarse_m
    worst = 0
    # group windows start at multiples of `window`; relative to the m-blocks the start offsets
    # repeat with period gcd(window, m)
    for start in range(0, m, math.gcd(window, m)):
        end = start + window
        total = 0
        first_b = start // m
        last_b = (end - 1) // m
        for b in range(first_b, last_b + 1):
            lo, hi = max(start, b * m), min(end, (b + 1) * m)
            # fine blocks (aligned to the group start) that [lo, hi) meets
            blocks = (hi - 1 - start) // fine_m - (lo - start) // fine_m + 1
            total += min(n, blocks)
        worst = max(worst, total)
    return min(coarse_m, worst)


def fits_hierarchical(pattern: NMPattern, hw: HierarchicalPattern) -> bool:
    """True when every ``pattern`` (n:m) tensor is compliant with ``hw`` (module docstring)."""
    if pattern.worst_case_per_block(hw.fine.m) > hw.fine.n:
        return False
    return worst_nonempty_blocks(pattern, hw.fine.m, hw.coarse.m) <= hw.coarse.n


def hierarchical_metadata_bits(hw: HierarchicalPattern) -> float:
    """Metadata bits per kept value: ``ceil(log2 Mc)/Nf + ceil(log2 Mf)`` (module docstring)."""
    return _ceil_log2(hw.coarse.m) / hw.fine.n + _ceil_log2(hw.fine.m)


def _fits(pattern: NMPattern, hw: Hardware) -> bool:
    if isinstance(hw, HierarchicalPattern):
        return fits_hierarchical(pattern, hw)
    return pattern.fits(hw)


@lru_cache(maxsize=4096)
def hardware_for(pattern: NMPattern | None, support: OperandSparsity) -> Hardware | None:
    """The hardware pattern a term runs on: of the support's flat ``patterns`` and
    ``hierarchical`` patterns that contain ``pattern``, the one of least density (least work);
    a tie goes to a flat pattern, then to the smaller block (fewer metadata bits per slot).
    ``None`` (dense) for a dense term or when none contains it."""
    if pattern is None or pattern.is_dense:
        return None
    cands: list[tuple[float, int, int, Hardware]] = [
        (hw.density, 0, hw.m, hw) for hw in support.patterns if _fits(pattern, hw)
    ]
    cands += [
        (hw.density, 1, hw.coarse.m * hw.fine.m, hw)
        for hw in support.hierarchical
        if _fits(pattern, hw)
    ]
    if not cands:
        return None
    return min(cands, key=lambda c: (c[0], c[1], c[2]))[3]


def term_metadata_bits(pattern: NMPattern, support: OperandSparsity) -> float:
    """Metadata bits per kept value of a term: the support's ``metadata_bits`` if stated; else
    :func:`hierarchical_metadata_bits` when the term runs on a hierarchical pattern; else the
    term's own ``ceil(log2 m)``. Bits."""
    if support.metadata_bits is not None:
        return float(support.metadata_bits)
    hw = hardware_for(pattern, support)
    if isinstance(hw, HierarchicalPattern):
        return hierarchical_metadata_bits(hw)
    return float(pattern.metadata_bits)
