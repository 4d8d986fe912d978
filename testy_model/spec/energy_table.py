"""Built-in 45 nm per-action energy table with Accelergy-style scaling.

Source: the Accelergy reference outputs of the Timeloop/Accelergy exercises (45 nm), as collected
in the project's ``reference.md`` ("Per-action energies, 45 nm"). Scaling follows Accelergy's
table-based estimators: energy per access grows **linearly with width** and as
**(depth ratio)^0.78 with depth**.

Units: every function returns **pJ per word** (one ``datawidth``-bit scalar access), the unit of
``StorageLevel.read_energy``, except :func:`metadata_energy_per_bit` (pJ per metadata bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Name recorded in ``StorageLevel.energy_source`` for values derived here.
TABLE_SOURCE = "45nm table (reference.md, Accelergy exercises), width-linear, depth^0.78"

#: Accelergy's depth-scaling exponent.
DEPTH_EXPONENT = 0.78

#: DRAM energy in pJ per bit by type. LPDDR4: 512 pJ per 64-bit access = 8 pJ/bit; the others
#: are the per-bit figures of the same table (reference.md).
DRAM_PJ_PER_BIT: dict[str, float] = {
    "LPDDR4": 8.0,
    "LPDDR": 40.0,
    "DDR3": 70.0,
    "GDDR5": 14.0,
    "HBM2": 3.9,
    "HMC": 4.2,
}

#: Register energy per bit (16-b register: 0.144 pJ = 0.009 pJ/bit), read and write alike.
REGISTER_PJ_PER_BIT = 0.009

#: int8 MAC (8x8 multiply, 16-b add), pJ per MAC, 45 nm.
INT8_MAC_PJ = 0.315


@dataclass(frozen=True)
class SramEntry:
    """One measured SRAM-like macro: ``depth`` rows of ``width`` bits; pJ per row access."""

    name: str
    depth: int
    width: int
    read: float
    write: float


#: SRAM-like entries of the 45 nm table (pJ per access of one ``width``-bit row).
SRAM_TABLE: tuple[SramEntry, ...] = (
    SramEntry("SRAM 16384x64 (128 KB, 32 banks)", 16384, 64, 32.38, 26.16),
    SramEntry("SRAM 2048x256 (64 KB, 4 banks)", 2048, 256, 51.87, 66.31),
    SramEntry("SRAM 8192x256 (256 KB)", 8192, 256, 124.7, 118.1),
    SramEntry("metadata SRAM 8192x64", 8192, 64, 25.95, 19.73),
    SramEntry("scratchpad 192x16", 192, 16, 0.68, 1.58),
    SramEntry("register file 128x24", 128, 24, 3.09, 2.88),
)


def nearest_sram(depth: int, width: int) -> SramEntry:
    """The table entry closest to ``depth`` x ``width`` in log space.

    Distance = |ln(depth/d_ref)| + |ln(width/w_ref)|; ties go to the earlier entry.
    """
    return min(
        SRAM_TABLE,
        key=lambda e: abs(math.log(depth / e.depth)) + abs(math.log(width / e.width)),
    )


def sram_row_energy(depth: int, width: int) -> tuple[float, float, SramEntry]:
    """Read and write pJ per ``width``-bit row of a ``depth``-row SRAM.

    Equation: E = E_ref · (width / width_ref) · (depth / depth_ref)^0.78, from the nearest entry.
    """
    ref = nearest_sram(depth, width)
    scale = (width / ref.width) * (depth / ref.depth) ** DEPTH_EXPONENT
    return ref.read * scale, ref.write * scale, ref


def sram_word_energy(depth: int, width: int, datawidth: int) -> tuple[float, float, str]:
    """Read and write pJ per ``datawidth``-bit word of a depth x width SRAM, and the source.

    Equation: E_word = E_row · datawidth / width (a row holds width/datawidth words, one access
    moves a row), i.e. E_ref · (datawidth / width_ref) · (depth / depth_ref)^0.78.
    """
    read, write, ref = sram_row_energy(depth, width)
    per = datawidth / width
    return read * per, write * per, f"{TABLE_SOURCE}, from {ref.name}"


def register_word_energy(datawidth: int) -> float:
    """pJ per access of a ``datawidth``-bit register: 0.009 pJ/bit · datawidth (read = write)."""
    return REGISTER_PJ_PER_BIT * datawidth


def dram_word_energy(dram_type: str | None, datawidth: int) -> tuple[float, str]:
    """pJ per ``datawidth``-bit DRAM word: pJ/bit(type) · datawidth (read = write).

    Unknown or missing type: LPDDR4 (8 pJ/bit), the type of every Timeloop example.
    Raises ``KeyError`` never: unknown types fall back and say so in the returned source.
    """
    key = (dram_type or "LPDDR4").upper()
    if key in DRAM_PJ_PER_BIT:
        return DRAM_PJ_PER_BIT[key] * datawidth, f"{TABLE_SOURCE}, DRAM {key}"
    return DRAM_PJ_PER_BIT["LPDDR4"] * datawidth, f"{TABLE_SOURCE}, DRAM {key}->LPDDR4"


def metadata_energy_per_bit(depth: int, width: int) -> tuple[float, float]:
    """Read/write pJ per metadata bit of a depth x width metadata store (0 when absent).

    Equation: E_bit = E_row / width, E_row scaled from the nearest SRAM entry as above; a
    depth-1 store is a register (0.009 pJ/bit).
    """
    if depth <= 0 or width <= 0:
        return 0.0, 0.0
    if depth == 1:
        return REGISTER_PJ_PER_BIT, REGISTER_PJ_PER_BIT
    read, write, _ = sram_row_energy(depth, width)
    return read / width, write / width


def mac_energy(datawidth: int) -> float:
    """pJ per MAC for ``datawidth``-bit integer operands.

    Equation: 0.315 · (datawidth / 8)^2 (int8 MAC from the table; a multiplier's energy grows with
    the product of its operand widths, which dominates the MAC). 8 bits -> 0.315 pJ.
    """
    return INT8_MAC_PJ * (datawidth / 8) ** 2
