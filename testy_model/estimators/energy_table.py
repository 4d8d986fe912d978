"""Built-in per-action energy table with Accelergy-style scaling, one rule per estimator class.

Sources (facts, numbers only): the Accelergy energy reference tables (``ERT_summary.yaml``) of the
Timeloop/Accelergy exercises, repository ``Accelergy-Project/timeloop-accelergy-exercises``, files
``workspace/example_designs/example_designs/<design>/ref_outputs/default_problem/
timeloop-mapper.ERT_summary.yaml`` (commits ac42b269 / 09545d3f, the ERTs of the reference runs
of commit 67b75f24) for the designs simple_weight_stationary, eyeriss_like (65 nm), simba_like and
sparse_tensor_core_like (45 nm), plus the project's ``reference.md`` table.

Estimator classes (as Accelergy picks its plug-in from the component class):

- **DRAM** (CactiDRAM): pJ/bit by type x datawidth; LPDDR4 512 pJ per 64-bit access.
- **register** (``aladdin_register``, or any depth-1 store not declared a smartbuffer): read
  0.009 pJ/bit, write 0 (the ERT of simple_weight_stationary prices a 16-b register read at
  0.144 pJ and its write at 0.0).
- **SRAM** (CactiSRAM: ``smartbuffer_SRAM``, ``smartbuffer_metadata``, ``SRAM``): nearest table
  macro, energy per row **linear in width** and **(depth ratio)^0.78**.
- **RF** (Accelergy's ``smartbuffer_RF``, built by Accelergy from library flip-flop cells plus one
  address comparator per row, at least 64 rows): nearest table macro, energy per row **linear
  in width** and **linear in the effective depth** D' = max(depth, 64). Evidence for the depth
  exponent 1: simba_like's PEInputBuffer 8192x64 reads at 242.047 pJ and PEWeightBuffer 4096x64
  at 121.334 pJ, a ratio 1.995 for a depth ratio 2 (exponent log2 1.995 = 0.996); the ERTs list
  comparator[1..max(depth, 64)] among each RF's primitives.
- **MAC** (intmac): int8 MAC 0.315 pJ at 45 nm, 0.207692 pJ at 65 nm; x (datawidth/8)^2.

Process node: every entry carries the node (nm) it was estimated at; a lookup uses the entries of
the design's node when there are any, else the 45 nm entries (no cross-node scaling).

Units: every ``*_word_energy`` returns **pJ per word** (one ``datawidth``-bit scalar access), the
unit of ``StorageLevel.read_energy``; row energies are pJ per access of one ``width``-bit row;
:func:`metadata_energy_per_bit` returns pJ per metadata bit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: Name recorded in ``StorageLevel.energy_source`` for values derived here.
TABLE_SOURCE = "built-in table (Accelergy ERTs of the Timeloop exercises)"

#: Accelergy's SRAM depth-scaling exponent.
DEPTH_EXPONENT = 0.78

#: Rows below which an Accelergy RF still builds 64 comparators (ERTs: comparator[1..64] for
#: depths 1, 12 and 16).
RF_MIN_ROWS = 64

#: Node (nm) used when the design's node has no entry.
DEFAULT_NODE = 45

#: Estimator classes, as tags in the source string (so a re-derivation can find the class).
ESTIMATORS: tuple[str, ...] = ("DRAM", "register", "RF", "SRAM")

#: DRAM energy in pJ per bit by type. LPDDR4: 512 pJ per 64-bit access = 8 pJ/bit (every ERT
#: above); the others are the per-bit figures of reference.md.
DRAM_PJ_PER_BIT: dict[str, float] = {
    "LPDDR4": 8.0,
    "LPDDR": 40.0,
    "DDR3": 70.0,
    "GDDR5": 14.0,
    "HBM2": 3.9,
    "HMC": 4.2,
}

#: Register read energy per bit (16-b aladdin_register read: 0.144 pJ = 0.009 pJ/bit).
REGISTER_PJ_PER_BIT = 0.009
#: Register write energy per bit (the same ERT: write 0.0).
REGISTER_WRITE_PJ_PER_BIT = 0.0

#: int8 MAC (8x8 multiply, 16-b add), pJ per MAC by node (nm): simple_weight_stationary,
#: simba_like, sparse_tensor_core_like ERTs (45 nm) 0.315; eyeriss_like ERT (65 nm) 0.207692.
INT8_MAC_PJ: dict[int, float] = {45: 0.315, 65: 0.207692}


@dataclass(frozen=True)
class SramEntry:
    """One estimated macro: ``depth`` rows of ``width`` bits at ``node`` nm; pJ per row access.

    ``datawidth`` (bits per word) only matters for RF entries, as a tie-breaker between macros of
    the same geometry (0 = not recorded).
    """

    name: str
    depth: int
    width: int
    read: float
    write: float
    node: int = 45
    datawidth: int = 0


#: CactiSRAM macros (pJ per access of one ``width``-bit row).
SRAM_TABLE: tuple[SramEntry, ...] = (
    SramEntry("SRAM 16384x64 (128 KB, 32 banks)", 16384, 64, 32.38, 26.16),
    SramEntry("SRAM 2048x256 (64 KB, 4 banks)", 2048, 256, 51.87, 66.31),
    SramEntry("SRAM 8192x256 (256 KB)", 8192, 256, 124.7, 118.1),
    SramEntry("metadata SRAM 8192x64", 8192, 64, 25.95, 19.73),
    SramEntry("scratchpad 192x16", 192, 16, 0.68, 1.58),
    SramEntry("register file 128x24", 128, 24, 3.09, 2.88),
    # sparse_tensor_core_like ERT, LRF (smartbuffer_metadata, CactiSRAM) 1x8
    SramEntry("SRAM 1x8 (STC LRF)", 1, 8, 0.01674, 0.024774),
    # eyeriss_like ERT, shared_glb 16384x64, 32 banks, 65 nm
    SramEntry("SRAM 16384x64 (65 nm)", 16384, 64, 18.183829, 14.137929, node=65),
)

#: Accelergy RF macros (smartbuffer_RF), pJ per row access, from the ERTs named in each entry.
RF_TABLE: tuple[SramEntry, ...] = (
    SramEntry("RF 8192x64 (simba PEInputBuffer)", 8192, 64, 242.046772, 241.470772, 45, 8),
    SramEntry("RF 4096x64 (simba PEWeightBuffer)", 4096, 64, 121.333633, 120.757633, 45, 8),
    SramEntry("RF 128x24 (simba PEAccuBuffer)", 128, 24, 3.073534, 2.857534, 45, 24),
    SramEntry("RF 1x512 (simba PEWeightRegs)", 1, 512, 0.257632, 0.077872, 45, 8),
    SramEntry("RF 2048x8 (STC RF)", 2048, 8, 15.205133, 15.133133, 45, 8),
    SramEntry("RF 12x16 (eyeriss ifmap_spad)", 12, 16, 0.202442, 0.176713, 65, 8),
    SramEntry("RF 192x16 (eyeriss weights_spad)", 192, 16, 1.976602, 1.881657, 65, 8),
    SramEntry("RF 16x16 (eyeriss psum_spad)", 16, 16, 0.2513, 0.2191, 65, 16),
)


def node_nm(technology: str | None) -> int:
    """Process node in nm from a technology string (``"45nm"`` -> 45); missing -> 45."""
    if not technology:
        return DEFAULT_NODE
    m = re.search(r"(\d+(?:\.\d+)?)", str(technology))
    return round(float(m.group(1))) if m else DEFAULT_NODE


def _entries(table: tuple[SramEntry, ...], node: int) -> tuple[SramEntry, ...]:
    """Entries of ``node``, else those of the default node."""
    same = tuple(e for e in table if e.node == node)
    return same or tuple(e for e in table if e.node == DEFAULT_NODE)


def rf_rows(depth: int) -> int:
    """Effective RF depth D' = max(depth, 64) (rows of comparators Accelergy builds)."""
    return max(depth, RF_MIN_ROWS)


def _nearest(
    table: tuple[SramEntry, ...], depth: int, width: int, datawidth: int, rf: bool
) -> SramEntry:
    """Entry closest in log space: |ln(D/D_ref)| + |ln(W/W_ref)| (+ datawidth tie-break).

    For RF entries D is the effective depth :func:`rf_rows`. Ties go to the earlier entry.
    """

    def dist(e: SramEntry) -> float:
        d, dr = (rf_rows(depth), rf_rows(e.depth)) if rf else (depth, e.depth)
        x = abs(math.log(d / dr)) + abs(math.log(width / e.width))
        if e.datawidth and datawidth:
            x += 1e-3 * abs(math.log(datawidth / e.datawidth))
        return x

    return min(table, key=dist)


def nearest_sram(depth: int, width: int, node: int = DEFAULT_NODE) -> SramEntry:
    """The CactiSRAM entry (of ``node``) closest to ``depth`` x ``width`` in log space."""
    return _nearest(_entries(SRAM_TABLE, node), depth, width, 0, rf=False)


def sram_row_energy(
    depth: int, width: int, node: int = DEFAULT_NODE
) -> tuple[float, float, SramEntry]:
    """Read and write pJ per ``width``-bit row of a ``depth``-row SRAM (CactiSRAM class).

    Equation: E = E_ref · (width / width_ref) · (depth / depth_ref)^0.78, nearest entry.
    """
    ref = nearest_sram(depth, width, node)
    scale = (width / ref.width) * (depth / ref.depth) ** DEPTH_EXPONENT
    return ref.read * scale, ref.write * scale, ref


def sram_word_energy(
    depth: int, width: int, datawidth: int, node: int = DEFAULT_NODE
) -> tuple[float, float, str]:
    """Read and write pJ per ``datawidth``-bit word of a depth x width SRAM, and the source.

    Equation: E_word = E_row · datawidth / width (one access moves a row of width/datawidth
    words), i.e. E_ref · (datawidth / width_ref) · (depth / depth_ref)^0.78.
    """
    read, write, ref = sram_row_energy(depth, width, node)
    per = datawidth / width
    return read * per, write * per, f"{TABLE_SOURCE}, SRAM from {ref.name}"


def rf_row_energy(
    depth: int, width: int, datawidth: int = 0, node: int = DEFAULT_NODE
) -> tuple[float, float, SramEntry]:
    """Read and write pJ per ``width``-bit row of an Accelergy register file (RF class).

    Equation: E = E_ref · (width / width_ref) · (D' / D'_ref), D' = max(depth, 64), from the
    nearest RF entry of ``node`` (distance on D' and width, datawidth as tie-break).
    """
    ref = _nearest(_entries(RF_TABLE, node), depth, width, datawidth, rf=True)
    scale = (width / ref.width) * (rf_rows(depth) / rf_rows(ref.depth))
    return ref.read * scale, ref.write * scale, ref


def rf_word_energy(
    depth: int, width: int, datawidth: int, node: int = DEFAULT_NODE
) -> tuple[float, float, str]:
    """Read and write pJ per ``datawidth``-bit word of an RF: E_row · datawidth / width."""
    read, write, ref = rf_row_energy(depth, width, datawidth, node)
    per = datawidth / width
    return read * per, write * per, f"{TABLE_SOURCE}, RF from {ref.name}"


def register_word_energy(datawidth: int) -> float:
    """pJ per read of a ``datawidth``-bit register: 0.009 pJ/bit · datawidth."""
    return REGISTER_PJ_PER_BIT * datawidth


def register_write_energy(datawidth: int) -> float:
    """pJ per write of a ``datawidth``-bit register: 0.0 pJ/bit · datawidth (Accelergy ERT)."""
    return REGISTER_WRITE_PJ_PER_BIT * datawidth


def dram_word_energy(dram_type: str | None, datawidth: int) -> tuple[float, str]:
    """pJ per ``datawidth``-bit DRAM word: pJ/bit(type) · datawidth (read = write).

    Unknown or missing type: LPDDR4 (8 pJ/bit), the type of every Timeloop example; the returned
    source says so (never raises).
    """
    key = (dram_type or "LPDDR4").upper()
    if key in DRAM_PJ_PER_BIT:
        return DRAM_PJ_PER_BIT[key] * datawidth, f"{TABLE_SOURCE}, DRAM {key}"
    return DRAM_PJ_PER_BIT["LPDDR4"] * datawidth, f"{TABLE_SOURCE}, DRAM {key}->LPDDR4"


def estimator_class(cls: str, subclass: str, depth: int | None) -> str:
    """The estimator class (one of :data:`ESTIMATORS`) of a storage component.

    ``DRAM`` class -> DRAM; a class naming a register (``aladdin_register``) -> register;
    Accelergy's ``smartbuffer_RF`` (flip-flop RF) -> RF; any other depth-1 store not declared a
    smartbuffer -> register; everything else (``smartbuffer_SRAM``, ``smartbuffer_metadata``,
    ``SRAM``, a generic ``regfile``) -> SRAM, the CACTI-like rule.
    """
    low = f"{cls} {subclass}".lower()
    if cls.upper() == "DRAM":
        return "DRAM"
    if "register" in low:
        return "register"
    if "smartbuffer_rf" in low:
        return "RF"
    if depth == 1 and "smartbuffer" not in low:
        return "register"
    return "SRAM"


def estimator_of_source(source: str) -> str:
    """The estimator class recorded in a source string made here (default SRAM)."""
    if ", DRAM " in source:
        return "DRAM"
    if ", register" in source:
        return "register"
    if ", RF from" in source:
        return "RF"
    return "SRAM"


def storage_word_energy(
    estimator: str,
    depth: int | None,
    width: int,
    datawidth: int,
    dram_type: str | None = None,
    node: int = DEFAULT_NODE,
) -> tuple[float, float, str]:
    """(read, write) pJ per word and the source, by estimator class (module docstring).

    A non-DRAM level without depth is unbounded and priced as a 16384-row macro.

    Raises:
        ValueError: a depth (when given), width or datawidth below 1, naming it.
    """
    _check_sizes(depth=depth, width=width, datawidth=datawidth)
    if estimator == "DRAM":
        e, src = dram_word_energy(dram_type, datawidth)
        return e, e, src
    if estimator == "register":
        return (
            register_word_energy(datawidth),
            register_write_energy(datawidth),
            f"{TABLE_SOURCE}, register per bit",
        )
    d = depth if depth is not None else 16384
    if estimator == "RF":
        return rf_word_energy(d, width, datawidth, node)
    return sram_word_energy(d, width, datawidth, node)


def _check_sizes(**sizes: int | None) -> None:
    """Every size given must be an integer >= 1 (``None``: not given / unbounded)."""
    for name, v in sizes.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} {v!r}: expected an integer >= 1")


def metadata_energy_per_bit(
    depth: int, width: int, node: int = DEFAULT_NODE
) -> tuple[float, float]:
    """Read/write pJ per metadata bit of a depth x width metadata store (0 when absent).

    Equation: E_bit = E_row / width, E_row of the SRAM rule (metadata stores are CactiSRAM in
    the ERTs); a depth-1 store is a register (0.009 pJ/bit read and write).
    """
    if depth <= 0 or width <= 0:
        return 0.0, 0.0
    if depth == 1:
        return REGISTER_PJ_PER_BIT, REGISTER_PJ_PER_BIT
    read, write, _ = sram_row_energy(depth, width, node)
    return read / width, write / width


def mac_energy(datawidth: int, node: int = DEFAULT_NODE) -> float:
    """pJ per MAC for ``datawidth``-bit integer operands at ``node`` nm.

    Equation: E_int8(node) · (datawidth / 8)^2 (a multiplier's energy grows with the product of
    its operand widths, which dominates the MAC). 8 bits: 0.315 pJ at 45 nm, 0.207692 at 65 nm;
    a node without an entry uses 45 nm.
    """
    _check_sizes(datawidth=datawidth)
    return INT8_MAC_PJ.get(node, INT8_MAC_PJ[DEFAULT_NODE]) * (datawidth / 8) ** 2
