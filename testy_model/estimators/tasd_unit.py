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
kept list at most once, and counted. Constants (per bit, at 45 nm unless noted; every one scaled
to the architecture's node by the estimators' node rules, ``estimators.node``: energy
``S_E(node)``, area ``S_A(node)``, Stillmaker & Baas 2017):

- ``e_reg``, ``a_reg``: the built-in register estimator (``estimators.energy`` write action and
  ``estimators.area``, fits through Accelergy's ``aladdin_register`` values): 0.004683 pJ and
  3.228 µm² per bit;
- ``e_cmp`` = 0.21 pJ / 32 bits at 40 nm (reference.md, Aladdin's 32-b adder: a magnitude
  comparator is a subtractor), brought to the node by ``S_E(node) / S_E(40 nm)``;
- ``a_cmp`` = 4.256 µm² per comparator bit (one full-adder cell, FA_X1 of the NanGate 45 nm Open
  Cell Library).

A unit count ``k`` decomposes ``k`` values per cycle, so ``V`` activation values take
``ceil(V/M)·M/k`` cycles (``model.latency.tasd_unit_cycles``), hidden under the compute cycles
when that is less; the area grows as ``k`` units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from testy_model.estimators.area import area
from testy_model.estimators.energy import energy_per_action
from testy_model.estimators.node import area_scale, check_node, energy_scale, node_nm
from testy_model.spec.arch import TasdUnit

#: pJ per comparator bit at 40 nm: Aladdin's 32-b adder, 0.21 pJ (reference.md) / 32.
COMPARATOR_PJ_PER_BIT_40NM = 0.21 / 32
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

    Hand check (2:4 engine, int8, 45 nm; c = 2): energy = 2·9·0.0065625·S_E(45)/S_E(40) +
    0.004683396·10 + 0.004683396·2 pJ per value; area = 2·9·4.256 + 2·10·3.228057 +
    2·3.228057 = 76.608 + 64.56114 + 6.456114 = 147.625254 µm²; 4 cycles per block.
    """
    if select < 1 or block < 1 or datawidth < 1:
        raise ValueError(f"select {select}, block {block}, datawidth {datawidth}: expected >= 1")
    c = math.ceil(math.log2(block)) if block > 1 else 0
    nm = check_node(node_nm(technology))
    cmp_bits = select * (datawidth + 1)
    e_cmp = COMPARATOR_PJ_PER_BIT_40NM * energy_scale(nm) / energy_scale(40.0)
    a_cmp = COMPARATOR_UM2_PER_BIT * area_scale(nm)

    def reg(bits: int) -> tuple[float, float]:  # (pJ per write, µm²) of a `bits`-bit register
        if bits < 1:
            return 0.0, 0.0
        e = energy_per_action("register", width=bits, node=nm, action="write")
        return e, area("register", width=bits, node=nm)

    kept_e, kept_a = reg(datawidth + c)
    idx_e, idx_a = reg(c)
    parts = {
        "comparators": (cmp_bits * e_cmp, cmp_bits * a_cmp),
        "kept registers": (kept_e, select * kept_a),
        "index encoder": (idx_e, idx_a),
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
