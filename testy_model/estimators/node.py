"""One process-node parser and one node-scaling rule for energy and area.

Source of every number here: A. Stillmaker and B. Baas, "Scaling equations for the accurate
prediction of CMOS device performance from 180 nm to 7 nm", Integration, the VLSI Journal 58
(2017) 74-81, doi:10.1016/j.vlsi.2017.02.002 (numbers only):

- **Area** (their area-scaling table, the row of 45 nm): the area of a design at node n relative to
  the same design at 45 nm, :data:`AREA_VS_45NM`.
- **Energy** (their per-node energy fits, HP devices for 45 nm and below): energy per operation
  at node n and supply V is proportional to ``F_n(V) = a_n·V² + b_n·V + c_n``,
  :data:`ENERGY_POLY`. Evaluated at each node's nominal supply :data:`NOMINAL_VDD` (the PTM /
  PTM-MG nominal voltages the fits were made for) and divided by ``F_45(1.0 V)``, it gives the
  energy of one action at node n relative to 45 nm, each at its nominal voltage.

Rule (both quantities): ``S(n) = exp(interp(ln n; ln n_k, ln S(n_k)))``, log-log linear
interpolation between the table's nodes (continuous and increasing in n, because the table is);
nodes outside 7-180 nm raise :class:`SpecError` (outside the paper's range).
The table's own entries are reproduced exactly: ``S_A(7 nm) = 0.059``, ``S_A(65 nm) = 1.5``.
"""

from __future__ import annotations

import itertools
import math
import re

from testy_model.errors import SpecError

#: Node (nm) assumed when no technology is given.
DEFAULT_NODE_NM = 45.0

#: Stillmaker & Baas area table, 45 nm row: area at node n / area at 45 nm.
AREA_VS_45NM: dict[int, float] = {
    180: 19.0,
    130: 6.4,
    90: 2.8,
    65: 1.5,
    45: 1.0,
    32: 0.46,
    20: 0.21,
    16: 0.19,
    14: 0.17,
    10: 0.1,
    7: 0.059,
}

#: Stillmaker & Baas energy fits F_n(V) = a·V² + b·V + c (arbitrary common unit), HP sets for
#: 45 nm and below (their corrigendum checks two of them: HP 32 nm at 0.9 V gives 0.4571 and
#: 65 nm at 1.3 V gives 2.604).
ENERGY_POLY: dict[int, tuple[float, float, float]] = {
    180: (0.0, 24.64, -17.98),
    130: (7.171, -6.709, 2.904),
    90: (4.762, -4.781, 2.092),
    65: (3.755, -4.398, 1.975),
    45: (1.018, -0.3107, 0.1539),
    32: (0.8367, -0.4341, 0.1701),
    20: (0.373, -0.1582, 0.04104),
    16: (0.2958, -0.1241, 0.03024),
    14: (0.2363, -0.09675, 0.02239),
    10: (0.2068, -0.09311, 0.02375),
    7: (0.1776, -0.09097, 0.02447),
}

#: Nominal supply voltage (V) per node: PTM bulk (180-32 nm) and PTM-MG HP (20-7 nm) model
#: cards, the devices the energy fits above were made from.
NOMINAL_VDD: dict[int, float] = {
    180: 1.8,
    130: 1.3,
    90: 1.2,
    65: 1.1,
    45: 1.0,
    32: 0.9,
    20: 0.9,
    16: 0.85,
    14: 0.8,
    10: 0.75,
    7: 0.7,
}

MIN_NODE_NM = float(min(AREA_VS_45NM))
MAX_NODE_NM = float(max(AREA_VS_45NM))

_UNIT_NM = {"nm": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3, "m": 1e9}
_NODE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(nm|um|µm|μm|m)?\s*$")


def node_nm(technology: object) -> float:
    """Process node in nm from a technology value.

    Accepted: ``"45nm"``, ``"45 nm"``, ``45``, ``45.0``, ``"7nm"``, ``"0.045um"`` /
    ``"0.045 µm"``, ``"45e-9m"``; a bare number >= 1 is nm, a bare number below 1e-6 is metres
    (``45e-9``). ``None`` or ``""`` -> 45 nm (:data:`DEFAULT_NODE_NM`). Anything else (``"fast"``,
    ``"45xm"``, ``0``, ``-7``, ``0.045`` without a unit) raises :class:`SpecError`.
    """
    if technology is None or (isinstance(technology, str) and not technology.strip()):
        return DEFAULT_NODE_NM
    expected = "expected a process node like '45nm', '7 nm', 45 or '0.045um'"
    if isinstance(technology, bool):
        raise SpecError(f"technology {technology!r}: {expected}")
    if isinstance(technology, (int, float)):
        value, unit = float(technology), None
    elif isinstance(technology, str):
        m = _NODE_RE.match(technology)
        if m is None:
            raise SpecError(f"technology {technology!r}: {expected}")
        value, unit = float(m.group(1)), m.group(2)
    else:
        raise SpecError(f"technology {technology!r}: {expected}")
    if unit is not None:
        nm = value * _UNIT_NM[unit]
    elif value >= 1.0:
        nm = value
    elif 0.0 < value < 1e-6:
        nm = value * 1e9
    else:
        raise SpecError(f"technology {technology!r}: {expected} (a bare number is nm when >= 1)")
    if not math.isfinite(nm) or nm <= 0:
        raise SpecError(f"technology {technology!r}: {expected} (a positive size)")
    return nm


def check_node(nm: float) -> float:
    """``nm`` itself when the scaling table covers it (7-180 nm), else :class:`SpecError`."""
    if not MIN_NODE_NM <= nm <= MAX_NODE_NM:
        raise SpecError(
            f"process node {nm:g} nm is outside the {MIN_NODE_NM:g}-{MAX_NODE_NM:g} nm range of "
            "the node-scaling table (Stillmaker & Baas 2017); expected a node in that range"
        )
    return nm


def _loglog(table: dict[int, float], nm: float) -> float:
    """Log-log linear interpolation of ``table`` at ``nm`` (exact at the table's nodes)."""
    check_node(nm)
    nodes = sorted(table)
    if nm in table:
        return table[int(nm)]
    for lo, hi in itertools.pairwise(nodes):
        if lo <= nm <= hi:
            t = math.log(nm / lo) / math.log(hi / lo)
            return math.exp((1 - t) * math.log(table[lo]) + t * math.log(table[hi]))
    raise AssertionError("unreachable: check_node bounds the node")  # pragma: no cover


def energy_factor_at(nm: int, vdd: float) -> float:
    """Stillmaker & Baas energy fit of table node ``nm`` at supply ``vdd`` (V):
    ``F = a·V² + b·V + c`` (relative units; only ratios are used)."""
    a, b, c = ENERGY_POLY[nm]
    return a * vdd * vdd + b * vdd + c


#: Energy per action at each table node (its nominal V) relative to 45 nm at 1.0 V.
ENERGY_VS_45NM: dict[int, float] = {
    n: energy_factor_at(n, NOMINAL_VDD[n]) / energy_factor_at(45, NOMINAL_VDD[45])
    for n in ENERGY_POLY
}


def area_scale(nm: float) -> float:
    """Area at node ``nm`` relative to 45 nm, ``S_A(nm)`` (module docstring; 1.0 at 45 nm)."""
    return _loglog(AREA_VS_45NM, nm)


def energy_scale(nm: float) -> float:
    """Energy per action at node ``nm`` (its nominal supply) relative to 45 nm at 1.0 V,
    ``S_E(nm) = F_nm(V_nom(nm)) / F_45(1.0 V)`` interpolated log-log (module docstring)."""
    return _loglog(ENERGY_VS_45NM, nm)


def nominal_vdd(nm: float) -> float:
    """Nominal supply (V) at node ``nm``: :data:`NOMINAL_VDD`, log-log interpolated between
    table nodes."""
    return _loglog(NOMINAL_VDD, nm)
