"""Built-in area estimators (µm²), one smooth formula per component class, and the area of a
design.

Each formula is a fit (:mod:`~testy_model.estimators.fit`) through the cited ART areas of
:mod:`~testy_model.estimators.reference_points` at 45 nm, scaled by the one node rule
(:func:`~testy_model.estimators.node.area_scale`, Stillmaker & Baas 2017):

    A(component, D, W, node) = A_45(component, D, W) · S_A(node)      [µm² per instance]

A_45 by class (D rows, W bits per row, w multiplier bits):

- **SRAM**: ``1.087942·D·W`` (both exponents reached their bound 1: area per bit constant;
  16 ART points, compound data + metadata entries fitted as the sum of their two arrays);
- **RF**: ``4.234451·D^0.8067126·W^0.9622345`` (10 points);
- **register**: ``3.228057·D·W`` (3 points);
- **MAC_int**: ``773.6783·(w/8)^2`` (4 int8 points; the exponent 2 of an array multiplier's w²
  cells, as the points hold one width only); **MAC_fp**: the integer rule at the same width
  (no published fp area point: an underestimate);
- **DRAM**: 0 (off-chip).

A level's area: ``instances · (A(D, W) + A(D_md, W_md))`` (its separate metadata storage: a
register when one row deep, else the level's class, SRAM for a register level), or
``instances · area_um2`` when the spec or an Accelergy ART gives ``area_um2`` (0 means 0;
``None`` means estimate).
The TASD units: ``tasd_unit.area_mm2`` when given, else 2 % of the base engine's on-chip area (the
method's paper reports about 2 % area for its decomposition units, reference.md).
"""

from __future__ import annotations

import math

from testy_model.estimators.fit import Fit
from testy_model.estimators.node import DEFAULT_NODE_NM, area_scale, check_node, node_nm
from testy_model.spec.arch import Architecture, ComputeUnit, StorageLevel

#: Fraction of the base engine's area that the TASD units add when no area is given.
TASD_AREA_FRACTION = 0.02

#: The fitted A_45 formulas (module docstring), by class.
AREA_FITS: dict[str, Fit] = {
    "SRAM": Fit("SRAM", "area", math.log(1.087942), 1.0, 1.0),
    "RF": Fit("RF", "area", math.log(4.234451), 0.8067126, 0.9622345),
    "register": Fit("register", "area", math.log(3.228057), 0.0, 1.0),
    "MAC_int": Fit("MAC_int", "area", math.log(773.6783), 0.0, 2.0),
}


def area(component: str, *, width: int, depth: int = 1, node: object = DEFAULT_NODE_NM) -> float:
    """µm² of one instance of ``component`` (module docstring's equation).

    Args:
        component: ``DRAM``, ``SRAM``, ``RF``, ``register``, ``MAC_int`` or ``MAC_fp``.
        width: bits per row (storage) or multiplier operand bits (MACs), >= 1.
        depth: rows (storage), >= 1.
        node: process node, anything :func:`~testy_model.estimators.node.node_nm` reads.
    """
    if width < 1 or depth < 1:
        raise ValueError(f"width {width} and depth {depth}: expected positive sizes")
    if component == "DRAM":
        return 0.0
    key = "MAC_int" if component == "MAC_fp" else component
    if key not in AREA_FITS:
        raise ValueError(
            f"no area estimator for {component!r}; expected one of "
            f"{sorted([*AREA_FITS, 'MAC_fp', 'DRAM'])}"
        )
    return AREA_FITS[key].at_45nm(((depth, width),)) * area_scale(check_node(node_nm(node)))


def level_class(level: StorageLevel) -> str:
    """The estimator class of ``level``: the one chosen when it was loaded, else DRAM for DRAM,
    register for a depth-1 store, SRAM otherwise."""
    if level.estimator is not None:
        return level.estimator
    if level.kind == "DRAM":
        return "DRAM"
    return "register" if level.depth == 1 else "SRAM"


def level_area_um2(level: StorageLevel, technology: object = "45nm") -> float:
    """Total area of all instances of ``level`` (µm²); 0 for DRAM and unbounded levels."""
    if level.area_um2 is not None:
        return level.instances * level.area_um2
    cls = level_class(level)
    if cls == "DRAM" or level.depth is None:
        return 0.0
    one = area(cls, width=level.width, depth=level.depth, node=technology)
    if level.metadata_depth > 0 and level.metadata_width > 0:
        md_cls = "register" if level.metadata_depth == 1 else "SRAM" if cls == "register" else cls
        one += area(md_cls, width=level.metadata_width, depth=level.metadata_depth, node=technology)
    return level.instances * one


def mac_area_um2(compute: ComputeUnit, technology: object = "45nm") -> float:
    """Area of one MAC unit (µm²): ``area_um2`` when given, else the MAC estimator at the
    multiplier width (``multiplier_width``, else ``datawidth``)."""
    if compute.area_um2 is not None:
        return compute.area_um2
    width = compute.multiplier_width or compute.datawidth
    return area(compute.estimator, width=width, node=technology)


def area_breakdown_mm2(arch: Architecture) -> dict[str, float]:
    """Area by component in mm²: each storage level, ``mac``, ``tasd_unit`` and ``total``."""
    out: dict[str, float] = {}
    for level in arch.levels:
        out[level.name] = level_area_um2(level, arch.technology) / 1e6
    out["mac"] = arch.compute.instances * mac_area_um2(arch.compute, arch.technology) / 1e6
    base = sum(out.values())
    t = arch.tasd_unit
    if t is None:
        out["tasd_unit"] = 0.0
    else:
        out["tasd_unit"] = t.area_mm2 if t.area_mm2 is not None else TASD_AREA_FRACTION * base
    out["total"] = sum(out.values())
    return out


def area_mm2(arch: Architecture) -> float:
    """Total on-chip area in mm² (see :func:`area_breakdown_mm2`)."""
    return area_breakdown_mm2(arch)["total"]
