"""Closed-form area model of an architecture (µm² unless stated otherwise).

Sources (45 nm, Accelergy/CACTI figures as the Sparseloop sparse-tensor-core study's ``ART.yaml``
reports them, ``../shared/sparseloop_stc_study/*/STC-RF2x-24-bandwidth/ART.yaml``):

- large SRAM (``SMEM``: 8192×256 b data + 8192×64 b metadata = 2,621,440 bits) 2,604,256 µm²
  → 0.9934 µm² per bit;
- small SRAM register file (``RF``: 2048×8 b = 16,384 bits) 23,384 µm² → 1.4272 µm² per bit;
- one-word register (``LRF``: 8 b data + 8 b metadata = 16 bits) 95.68 µm² → 5.98 µm² per bit;
- int8 MAC 332.25 µm² per unit (scaled linearly with operand width for other widths).

Equations:
    A_level = instances · bits · a_bit(bits),
              bits = depth·width + metadata_depth·metadata_width
    a_bit(bits) = 5.98 if bits <= 64, 1.4272 if bits <= 65,536, else 0.9934   (µm²/bit at 45 nm)
    A_mac   = instances · 332.25 · (datawidth / 8)
    A_tasd  = tasd_unit.area_mm2 · 10⁶ when given, else count × one unit's parts
              (``estimators.tasd_unit``: comparators, registers, index encoder)
    scaled to another node by (node / 45 nm)², the ideal-scaling rule.
A level whose ``area_um2`` is set (from a spec or an Accelergy ART) uses that value per instance.
DRAM is off-chip: area 0.
"""

from __future__ import annotations

import re

from testy_model.spec.arch import Architecture, StorageLevel

#: µm² per bit at 45 nm by storage size class (see module docstring for the derivation).
REGISTER_UM2_PER_BIT = 95.68 / 16
SMALL_SRAM_UM2_PER_BIT = 23384.0 / (2048 * 8)
LARGE_SRAM_UM2_PER_BIT = 2604256.0 / (8192 * 256 + 8192 * 64)
#: µm² per int8 MAC at 45 nm.
MAC8_UM2 = 332.25


def node_scale(technology: str) -> float:
    """Area scale factor (node / 45 nm)² for a technology string like ``"45nm"`` or ``"7 nm"``.

    Unknown strings scale by 1 (45 nm assumed).
    """
    match = re.search(r"(\d+(?:\.\d+)?)\s*nm", technology or "")
    return (float(match.group(1)) / 45.0) ** 2 if match else 1.0


def um2_per_bit(bits: float) -> float:
    """Area per bit (µm², 45 nm) for a storage of ``bits`` bits per instance."""
    if bits <= 64:
        return REGISTER_UM2_PER_BIT
    if bits <= 65536:
        return SMALL_SRAM_UM2_PER_BIT
    return LARGE_SRAM_UM2_PER_BIT


def level_area_um2(level: StorageLevel, technology: str = "45nm") -> float:
    """Total area of all instances of ``level`` (µm²); 0 for DRAM and unbounded levels."""
    if level.kind == "DRAM" or level.depth is None:
        return 0.0
    if level.area_um2 > 0:
        return level.instances * level.area_um2
    bits = level.depth * level.width + level.metadata_depth * level.metadata_width
    return level.instances * bits * um2_per_bit(bits) * node_scale(technology)


def area_breakdown_mm2(arch: Architecture) -> dict[str, float]:
    """Area by component in mm²: each storage level, ``mac``, ``tasd_unit`` and ``total``."""
    out: dict[str, float] = {}
    for level in arch.levels:
        out[level.name] = level_area_um2(level, arch.technology) / 1e6
    c = arch.compute
    per_mac = (
        c.area_um2 if c.area_um2 > 0 else MAC8_UM2 * c.datawidth / 8 * node_scale(arch.technology)
    )
    out["mac"] = c.instances * per_mac / 1e6
    if arch.tasd_unit is not None:  # from its parts unless the spec gives it
        from testy_model.estimators.tasd_unit import tasd_unit_numbers

        t = tasd_unit_numbers(arch.tasd_unit, c.datawidth, arch.technology)
        out["tasd_unit"] = t.area_mm2
    else:
        out["tasd_unit"] = 0.0
    out["total"] = sum(out.values())
    return out


def area_mm2(arch: Architecture) -> float:
    """Total on-chip area in mm² (see :func:`area_breakdown_mm2`)."""
    return area_breakdown_mm2(arch)["total"]
