"""Built-in per-action energy estimators (pJ): one smooth formula per component class.

Each formula is a fit (:mod:`~testy_model.estimators.fit`) through the cited reference points of
:mod:`~testy_model.estimators.reference_points` (Accelergy/CACTI-class values), at 45 nm and the
node's nominal supply, then scaled by the one node rule and the supply voltage:

    E(component, D, W, node, V) = E_45(component, D, W) · S_E(node) · (V / V_nom(node))²

with S_E and V_nom from :mod:`~testy_model.estimators.node` (Stillmaker & Baas 2017) and
V = V_nom when no voltage is given (the V² law is Accelergy's voltage scaling). Units: pJ per
action; a storage action reads or writes one row of W bits (Accelergy's access), a MAC action is
one multiply-accumulate.

E_45 by class (D rows, W bits per row, w multiplier bits):

- **SRAM** (CACTI class: ``SRAM``, ``smartbuffer_SRAM``, ``smartbuffer_metadata``, ``SRAM_MD``,
  generic ``regfile``):
  read ``0.007370307·D^0.4393879·W``, write ``0.01000256·D^0.406041·W``; fitted on 25 points
  (the width exponent reached its bound 1: Accelergy's width-linear rule).
- **RF** (Accelergy ``smartbuffer_RF``): read ``0.02302453·D^0.5192339·W^0.4526112``,
  write ``0.02129406·D^0.5214688·W^0.4897564``; 13 points.
- **register** (``aladdin_register``; a depth-1 store not declared a smartbuffer):
  read ``0.005514185·W``, write ``0.004683396·W`` (independent of D); 4 and 3 points.
- **MAC_int**: ``0.4506375·(w/8)^2.576907``; 8 points (int8 at 45/65 nm, int32 at 40 nm).
- **MAC_fp**: ``64.71874·(w/32)^2.576907`` (the integer exponent; one fp32 point).
- **DRAM**: ``pJ/bit(type)·W`` (:data:`DRAM_PJ_PER_BIT`); off-chip, so neither the node nor the
  accelerator's supply scales it.

Every exponent lies in [0, 1] for storage, so each energy is continuous and non-decreasing in D
and W, and never grows faster than the size (``E(x+1)/E(x) <= (x+1)/x``).
"""

from __future__ import annotations

import math

from testy_model.estimators.fit import Fit
from testy_model.estimators.node import (
    DEFAULT_NODE_NM,
    check_node,
    energy_scale,
    node_nm,
    nominal_vdd,
)
from testy_model.estimators.reference_points import Component, Quantity

#: Name recorded in ``StorageLevel.energy_source`` / ``ComputeUnit.energy_source`` for values
#: derived here.
TABLE_SOURCE = "built-in estimator (fits to Accelergy reference values)"

#: Storage estimator classes.
ESTIMATORS: tuple[str, ...] = ("DRAM", "register", "RF", "SRAM")

#: Rows at which a non-DRAM level without a depth (unbounded) is priced.
UNBOUNDED_DEPTH = 16384


def _f(comp: Component, action: Quantity, k: float, depth_exp: float, width_exp: float) -> Fit:
    return Fit(comp, action, math.log(k), depth_exp, width_exp)


#: The fitted E_45 formulas (module docstring), by (class, action).
ENERGY_FITS: dict[tuple[str, str], Fit] = {
    ("SRAM", "read"): _f("SRAM", "read", 0.007370307, 0.4393879, 1.0),
    ("SRAM", "write"): _f("SRAM", "write", 0.01000256, 0.406041, 1.0),
    ("RF", "read"): _f("RF", "read", 0.02302453, 0.5192339, 0.4526112),
    ("RF", "write"): _f("RF", "write", 0.02129406, 0.5214688, 0.4897564),
    ("register", "read"): _f("register", "read", 0.005514185, 0.0, 1.0),
    ("register", "write"): _f("register", "write", 0.004683396, 0.0, 1.0),
    ("MAC_int", "read"): _f("MAC_int", "read", 0.4506375, 0.0, 2.576907),
    ("MAC_fp", "read"): _f("MAC_fp", "read", 64.71874, 0.0, 2.576907),
}

#: DRAM energy in pJ per bit by type. LPDDR4: 512 pJ per 64-bit access = 8 pJ/bit (every ERT
#: above); the others are reference.md's per-bit figures.
DRAM_PJ_PER_BIT: dict[str, float] = {
    "LPDDR4": 8.0,
    "LPDDR": 40.0,
    "DDR3": 70.0,
    "GDDR5": 14.0,
    "HBM2": 3.9,
    "HMC": 4.2,
}


def energy_per_action(
    component: str,
    *,
    width: int,
    depth: int | None = 1,
    node: object = DEFAULT_NODE_NM,
    voltage: float | None = None,
    action: str = "read",
    dram_type: str | None = None,
) -> float:
    """pJ of one action of ``component`` (module docstring's equation).

    Args:
        component: ``DRAM``, ``SRAM``, ``RF``, ``register``, ``MAC_int`` or ``MAC_fp``.
        width: bits per row (storage) or multiplier operand bits (MACs), >= 1.
        depth: rows (storage; ``None`` = unbounded, priced at :data:`UNBOUNDED_DEPTH` rows).
        node: process node, anything :func:`~testy_model.estimators.node.node_nm` reads.
        voltage: supply in V; ``None`` = the node's nominal supply.
        action: ``read`` or ``write`` (MACs: ignored).
        dram_type: DRAM type (``LPDDR4`` ...), DRAM only; unknown or missing -> LPDDR4.
    """
    if width < 1 or (depth is not None and depth < 1):
        raise ValueError(f"width {width} and depth {depth}: expected positive sizes")
    if component == "DRAM":
        return dram_word_energy(dram_type, width)[0]
    nm = check_node(node_nm(node))
    act = "read" if component.startswith("MAC") else action
    key = (component, act)
    if key not in ENERGY_FITS:
        raise ValueError(
            f"no energy estimator for {component!r} action {action!r}; expected one of "
            f"{sorted({c for c, _ in ENERGY_FITS} | {'DRAM'})} and read/write"
        )
    d = UNBOUNDED_DEPTH if depth is None else depth
    e = ENERGY_FITS[key].at_45nm(((d, width),)) * energy_scale(nm)
    if voltage is not None:
        e *= (voltage / nominal_vdd(nm)) ** 2
    return e


def dram_word_energy(dram_type: str | None, datawidth: int) -> tuple[float, str]:
    """pJ per ``datawidth``-bit DRAM word: pJ/bit(type) · datawidth (read = write).

    Unknown or missing type: LPDDR4 (8 pJ/bit), the type of every Timeloop example; the returned
    source says so.
    """
    key = (dram_type or "LPDDR4").upper()
    if key in DRAM_PJ_PER_BIT:
        return DRAM_PJ_PER_BIT[key] * datawidth, f"{TABLE_SOURCE}, DRAM {key}"
    return DRAM_PJ_PER_BIT["LPDDR4"] * datawidth, f"{TABLE_SOURCE}, DRAM {key}->LPDDR4"


def estimator_class(cls: str, subclass: str, depth: int | None) -> str:
    """The storage estimator class (one of :data:`ESTIMATORS`) of a component.

    ``DRAM`` class -> DRAM; a class naming a register (``aladdin_register``) -> register;
    Accelergy's ``smartbuffer_RF`` -> RF; any other depth-1 store not declared a smartbuffer ->
    register; everything else (``smartbuffer_SRAM``, ``smartbuffer_metadata``, ``SRAM``,
    ``SRAM_MD``, a generic ``regfile``) -> SRAM. Chosen once, when the spec is loaded: a later
    depth override keeps the class (so a sweep stays on one smooth formula).
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


def mac_class(cls: str, subclass: str) -> str:
    """``MAC_fp`` when the compute class names a floating-point unit (``fpmac``), else
    ``MAC_int``."""
    low = f"{cls} {subclass}".lower()
    return "MAC_fp" if "fp" in low or "float" in low else "MAC_int"


def storage_word_energy(
    estimator: str,
    depth: int | None,
    width: int,
    datawidth: int,
    dram_type: str | None = None,
    node: object = DEFAULT_NODE_NM,
) -> tuple[float, float, str]:
    """(read, write) pJ per ``datawidth``-bit word and the source name, by estimator class.

    Equation: E_word = E_row · datawidth / width (one access moves a row of width/datawidth
    words), E_row = :func:`energy_per_action` at the node's nominal supply; DRAM per bit.
    """
    if estimator == "DRAM":
        e, src = dram_word_energy(dram_type, datawidth)
        return e, e, src
    r = energy_per_action(estimator, width=width, depth=depth, node=node, action="read")
    w = energy_per_action(estimator, width=width, depth=depth, node=node, action="write")
    per = datawidth / width  # width >= 1: checked by energy_per_action
    return r * per, w * per, f"{TABLE_SOURCE}, {estimator}"


def metadata_energy_per_bit(
    depth: int, width: int, node: object = DEFAULT_NODE_NM
) -> tuple[float, float]:
    """(read, write) pJ per metadata bit of a depth × width metadata store (0 when absent).

    Equation: E_bit = E_row / width with the SRAM formula (metadata stores are CACTI SRAMs in
    the ERTs); a depth-1 store is a register (E_row / width = 0.005514185 read, 0.004683396 write,
    pJ at 45 nm).
    """
    if depth <= 0 or width <= 0:
        return 0.0, 0.0
    cls = "register" if depth == 1 else "SRAM"
    r = energy_per_action(cls, width=width, depth=depth, node=node, action="read")
    w = energy_per_action(cls, width=width, depth=depth, node=node, action="write")
    return r / width, w / width


def mac_energy(width: int, node: object = DEFAULT_NODE_NM, component: str = "MAC_int") -> float:
    """pJ per MAC with ``width``-bit multiplier operands: :func:`energy_per_action` of
    ``MAC_int`` (or ``MAC_fp``) at the node's nominal supply."""
    return energy_per_action(component, width=width, node=node)
