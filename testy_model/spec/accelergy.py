"""Accelergy energy and area tables (ERT / ART) and their application to an architecture.

An ERT (``ERT.yaml``, Accelergy v0.3) lists, per component, the energy of each action in pJ
*per action*: for storage one action moves one vector of ``block_size = width / datawidth``
words (``read``, ``write``, ``gated_read``, ...), and ``metadata_read``/``metadata_write`` move
one row of the metadata storage (``metadata_storage_width`` bits); for compute one action is one
MAC (``mac_random``, ``mac_gated``, ``mac_skipped``). An ART (``ART.yaml``) gives the area of one
instance of each component in µm².

Component names are full paths (``system.SM.Subpartition[0..3].PE[0..255].MAC``); they are matched
to this tool's level names by the last path element with the bracket range stripped (``MAC``).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testy_model.spec.arch import Architecture
from testy_model.spec.sparseloop import MarkedYaml, load_yaml_marked

_RANGE_RE = re.compile(r"\[[^\]]*\]$")
_DOT_OUTSIDE_BRACKETS = re.compile(r"\.(?![^\[]*\])")


def short_name(component: str) -> str:
    """Last path element without its bracket range: ``a.b[0..3].MAC[0..255]`` -> ``MAC``."""
    last = _DOT_OUTSIDE_BRACKETS.split(component)[-1]
    return _RANGE_RE.sub("", last)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class EnergyTable(_Frozen):
    """Per-component per-action energies (pJ per action), keyed by short component name.

    Attributes:
        actions: short name -> action name -> pJ per action.
        full_names: short name -> the full component path in the file.
        source: the file it came from.
    """

    actions: dict[str, dict[str, float]] = Field(default_factory=dict)
    full_names: dict[str, str] = Field(default_factory=dict)
    source: str | None = None

    def energy(self, component: str, action: str, default: float = 0.0) -> float:
        """pJ of one ``action`` of ``component`` (``default`` when the table lacks it)."""
        return self.actions.get(component, {}).get(action, default)

    def has(self, component: str) -> bool:
        """True when the table has an entry for ``component`` (short name)."""
        return component in self.actions


class AreaTable(_Frozen):
    """Per-component area of one instance (µm²), keyed by short component name."""

    areas: dict[str, float] = Field(default_factory=dict)
    full_names: dict[str, str] = Field(default_factory=dict)
    source: str | None = None

    def area(self, component: str, default: float = 0.0) -> float:
        """µm² of one instance of ``component``."""
        return self.areas.get(component, default)


def _tables(doc: MarkedYaml, top: str) -> tuple[tuple[Any, ...], list[Any]]:
    data = doc.data
    if not isinstance(data, dict) or top not in data:
        raise doc.error((), f"expected a top-level {top!r} mapping (an Accelergy {top} file)")
    body = data[top]
    if not isinstance(body, dict) or not isinstance(body.get("tables"), list):
        raise doc.error((top,), "expected 'tables:' holding a list of components")
    return (top, "tables"), body["tables"]


def _number(doc: MarkedYaml, value: object, path: tuple[Any, ...], what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise doc.error(path, f"expected a non-negative number for {what}, got {value!r}")
    return float(value)


def load_ert(path: str | Path) -> EnergyTable:
    """Load an Accelergy ERT: per component, per action, pJ per action.

    When an action is listed several times (different ``arguments``), the largest energy is
    taken, as Timeloop does (``Topology::Specs::ParseAccelergyERT``).

    Raises:
        SpecError: not an ERT, or an entry without a name or with a non-numeric energy.
    """
    doc = load_yaml_marked(path)
    base, tables = _tables(doc, "ERT")
    actions: dict[str, dict[str, float]] = {}
    full: dict[str, str] = {}
    for i, entry in enumerate(tables):
        epath = (*base, i)
        if not isinstance(entry, dict) or "name" not in entry:
            raise doc.error(epath, "each ERT entry needs a 'name' and 'actions'")
        name = str(entry["name"])
        acts: dict[str, list[float]] = {}
        for j, act in enumerate(entry.get("actions") or []):
            apath = (*epath, "actions", j)
            if not isinstance(act, dict) or "name" not in act or "energy" not in act:
                raise doc.error(apath, "each action needs 'name' and 'energy' (pJ)")
            acts.setdefault(str(act["name"]), []).append(
                _number(doc, act["energy"], (*apath, "energy"), "an energy in pJ")
            )
        short = short_name(name)
        actions[short] = {k: max(v) for k, v in acts.items()}
        full[short] = name
    return EnergyTable(actions=actions, full_names=full, source=doc.file)


def load_art(path: str | Path) -> AreaTable:
    """Load an Accelergy ART: per component, area of one instance in µm².

    Raises:
        SpecError: not an ART, or an entry without a name or a numeric area.
    """
    doc = load_yaml_marked(path)
    base, tables = _tables(doc, "ART")
    areas: dict[str, float] = {}
    full: dict[str, str] = {}
    for i, entry in enumerate(tables):
        epath = (*base, i)
        if not isinstance(entry, dict) or "name" not in entry or "area" not in entry:
            raise doc.error(epath, "each ART entry needs 'name' and 'area' (µm²)")
        short = short_name(str(entry["name"]))
        areas[short] = _number(doc, entry["area"], (*epath, "area"), "an area in µm²")
        full[short] = str(entry["name"])
    return AreaTable(areas=areas, full_names=full, source=doc.file)


def missing_components(arch: Architecture, names: set[str] | dict[str, Any]) -> list[str]:
    """Names of the architecture's levels and compute unit that ``names`` has no entry for."""
    comps = [*arch.level_names, arch.compute.name]
    return [c for c in comps if c not in names]


def apply_ert(arch: Architecture, ert: EnergyTable) -> Architecture:
    """Return ``arch`` with its energies taken from ``ert``.

    Per storage level (equations, units):
        read_energy  [pJ/word] = ERT read  [pJ/vector] / block_size [words/vector]
        write_energy [pJ/word] = ERT write [pJ/vector] / block_size
        metadata_read_energy  [pJ/bit] = ERT metadata_read  [pJ/row] / metadata_width [bits/row]
        metadata_write_energy [pJ/bit] = ERT metadata_write [pJ/row] / metadata_width
    Compute: mac_energy = ``mac_random`` [pJ/MAC], gated_mac_energy = ``mac_gated``.
    The ERT is authoritative for a component it lists: the model resolves each Timeloop action
    (gated, skipped and metadata ones included) through the listed actions in Timeloop's
    priority order (``model.arrays.action_energies``), so the per-word fields above only
    summarise it. Components without an entry keep their energies; a ``UserWarning`` names them.
    """
    missing = missing_components(arch, ert.actions)
    if missing:
        warnings.warn(
            f"ERT {ert.source or ''} has no entry for architecture component(s) {missing}; "
            "they keep their built-in energies",
            UserWarning,
            stacklevel=2,
        )
    src = f"ERT {ert.source}" if ert.source else "ERT"
    levels = []
    for lvl in arch.levels:
        if not ert.has(lvl.name):
            levels.append(lvl)
            continue
        a = ert.actions[lvl.name]
        mdw = lvl.metadata_width
        upd: dict[str, Any] = {
            "energy_source": src,
            "read_energy": a.get("read", 0.0) / lvl.block_size,
            "write_energy": a.get("write", 0.0) / lvl.block_size,
            "metadata_read_energy": (
                a["metadata_read"] / mdw if mdw and "metadata_read" in a else None
            ),
            "metadata_write_energy": (
                a["metadata_write"] / mdw if mdw and "metadata_write" in a else None
            ),
            "ert_actions": tuple(sorted(a.items())),
        }
        levels.append(lvl.model_copy(update=upd))
    compute = arch.compute
    if ert.has(compute.name):
        a = ert.actions[compute.name]
        upd = {
            "energy_source": src,
            "mac_energy": a.get("mac_random", a.get("mac", 0.0)),
            "gated_mac_energy": a.get("mac_gated"),
            "ert_actions": tuple(sorted(a.items())),
        }
        compute = compute.model_copy(update=upd)
    return arch.model_copy(update={"levels": tuple(levels), "compute": compute})


def apply_art(arch: Architecture, art: AreaTable) -> Architecture:
    """Return ``arch`` with per-instance areas (µm²) from ``art``; warns naming components
    without an entry."""
    missing = missing_components(arch, art.areas)
    if missing:
        warnings.warn(
            f"ART {art.source or ''} has no entry for architecture component(s) {missing}",
            UserWarning,
            stacklevel=2,
        )
    levels = tuple(
        lvl.model_copy(update={"area_um2": art.area(lvl.name)}) if lvl.name in art.areas else lvl
        for lvl in arch.levels
    )
    compute = arch.compute
    if compute.name in art.areas:
        compute = compute.model_copy(update={"area_um2": art.area(compute.name)})
    return arch.model_copy(update={"levels": levels, "compute": compute})
