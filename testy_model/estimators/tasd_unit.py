"""The TASD unit from its parts: area, energy per value examined and cycles per block.

The unit (MLSys 2025 TASD, arXiv 2403.07953; reference.md: "small units that decompose
activation tiles on the fly, up to M cycles per block; about 16 such units hide that latency on
an N:8 engine") selects, in every M-block of an activation, its N largest magnitudes (the
greedy decomposition's first term; later terms take the next N from what is left, in the same
pass). Modelled as a streaming top-N insertion unit that examines one value per cycle:

- ``N`` comparators of ``w + 1`` bits (magnitude against each kept entry, sign-magnitude),
- ``N`` registers of ``w + ceil(log2 M)`` bits (each kept value with its index in the block),
- an index counter / encoder of ``ceil(log2 M)`` bits,

with ``w`` the activation word width, ``N`` the largest ``n`` of the patterns it feeds and
``M`` their block size. Per unit:

    cycles per block  = M                                   (one value per cycle)
    energy per value  = N·(w+1)·e_cmp + (w + c)·e_reg + c·e_reg      (pJ)
    area              = N·(w+1)·a_cmp + N·(w + c)·a_reg + c·a_reg    (µm²)

with ``c = ceil(log2 M)``: every value is compared with the N kept entries, written into the
kept list at most once, and counted. Constants (45 nm; scaled to another node by the ideal
rules, energy ∝ node, area ∝ node²):

- ``e_reg`` = 0.009 pJ per register bit (reference.md, Accelergy's 16-b register, 0.144 pJ);
- ``e_cmp`` = 0.21 pJ / 32 bits = 0.00656 pJ per comparator bit (reference.md, Aladdin's 40 nm
  32-b adder: a magnitude comparator is a subtractor);
- ``a_reg`` = 5.98 µm² per register bit (``estimators.area.REGISTER_UM2_PER_BIT``, from the
  Sparseloop STC study's ART: the 16-bit LRF, 95.68 µm²);
- ``a_cmp`` = 4.256 µm² per comparator bit (one full-adder cell, FA_X1 of the NanGate 45 nm
  Open Cell Library).

A unit count ``k`` decomposes ``k`` values per cycle, so ``V`` activation values take
``ceil(V/M)·M/k`` cycles (``model.latency.tasd_unit_cycles``), hidden under the compute cycles
when that is less; the area grows as ``k`` units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from testy_model.estimators.area import REGISTER_UM2_PER_BIT, node_scale
from testy_model.estimators.energy_table import REGISTER_PJ_PER_BIT, node_nm
from testy_model.spec.arch import TasdUnit

#: pJ per comparator bit at 45 nm: Aladdin's 32-b adder, 0.21 pJ (reference.md) / 32.
COMPARATOR_PJ_PER_BIT = 0.21 / 32
#: µm² per comparator bit at 45 nm: one full-adder cell (NanGate 45 nm Open Cell Library FA_X1).
COMPARATOR_UM2_PER_BIT = 4.256


@dataclass(frozen=True)
class TasdUnitCost:
    """One TASD unit's cost: ``cycles_per_block`` (cycles), ``energy_per_value`` (pJ per value
    examined), ``area_um2`` (µm² per unit), and its parts (``parts``: name -> (pJ/value, µm²))."""

    cycles_per_block: float
    energy_per_value: float
    area_um2: float
    parts: dict[str, tuple[float, float]]


def tasd_unit_cost(
    select: int, block: int, datawidth: int, technology: str = "45nm"
) -> TasdUnitCost:
    """Cost of one top-``select`` unit over ``block``-value blocks of ``datawidth``-bit values
    at ``technology`` (equations and constants in the module docstring).

    Hand check (2:4 engine, int8, 45 nm): c = 2; energy = 2·9·0.0065625 + 10·0.009 + 2·0.009 =
    0.118125 + 0.09 + 0.018 = 0.226125 pJ per value; area = 2·9·4.256 + 2·10·5.98 + 2·5.98 =
    76.608 + 119.6 + 11.96 = 208.168 µm²; 4 cycles per block.
    """
    if select < 1 or block < 1 or datawidth < 1:
        raise ValueError(f"select {select}, block {block}, datawidth {datawidth}: expected >= 1")
    c = math.ceil(math.log2(block)) if block > 1 else 0
    e_scale = node_nm(technology) / 45.0
    a_scale = node_scale(technology)
    cmp_bits = select * (datawidth + 1)
    parts = {
        "comparators": (
            cmp_bits * COMPARATOR_PJ_PER_BIT * e_scale,
            cmp_bits * COMPARATOR_UM2_PER_BIT * a_scale,
        ),
        "kept registers": (
            (datawidth + c) * REGISTER_PJ_PER_BIT * e_scale,
            select * (datawidth + c) * REGISTER_UM2_PER_BIT * a_scale,
        ),
        "index encoder": (c * REGISTER_PJ_PER_BIT * e_scale, c * REGISTER_UM2_PER_BIT * a_scale),
    }
    return TasdUnitCost(
        cycles_per_block=float(block),
        energy_per_value=sum(e for e, _ in parts.values()),
        area_um2=sum(a for _, a in parts.values()),
        parts=parts,
    )


@dataclass(frozen=True)
class TasdUnitNumbers:
    """The numbers the model uses for an engine's TASD units: given in the spec, else derived
    (:func:`tasd_unit_cost`). ``area_mm2`` is all units together."""

    count: int
    block: int
    select: int
    cycles_per_block: float
    energy_per_value: float
    area_mm2: float
    derived: tuple[str, ...]
    cost: TasdUnitCost


def tasd_unit_numbers(unit: TasdUnit, datawidth: int, technology: str) -> TasdUnitNumbers:
    """Spec values where given, else the parts' (``derived`` names which were derived)."""
    cost = tasd_unit_cost(unit.top_n, unit.block, datawidth, technology)
    derived = tuple(
        k for k in ("cycles_per_block", "energy_per_value", "area_mm2") if getattr(unit, k) is None
    )
    return TasdUnitNumbers(
        count=unit.count,
        block=unit.block,
        select=unit.top_n,
        cycles_per_block=(
            cost.cycles_per_block if unit.cycles_per_block is None else unit.cycles_per_block
        ),
        energy_per_value=(
            cost.energy_per_value if unit.energy_per_value is None else unit.energy_per_value
        ),
        area_mm2=unit.count * cost.area_um2 / 1e6 if unit.area_mm2 is None else unit.area_mm2,
        derived=derived,
        cost=cost,
    )
