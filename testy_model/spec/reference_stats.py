"""What Timeloop / Sparseloop printed: ``parse_reference_stats`` reads a ``*.stats.txt``
(``reference_stats.txt`` of the Sparseloop artifact's cases, ``timeloop-model.stats.txt``): total
cycles and energy, per level and tensor the per-instance scalar reads / fills / updates (the
actual ones where Sparseloop prints them), and each level's energy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from testy_model.errors import SpecError

_LEVEL_RE = re.compile(r"^=== (\S+) ===\s*$")
_TENSOR_RE = re.compile(r"^    (\w+)( \(Streamed\))?:\s*$")
_ENERGY_RE = re.compile(r"^\s+Energy \(total\)\s*:\s*([0-9.eE+-]+) pJ")
_STAT_RE = re.compile(
    r"^\s+(Actual scalar|Scalar) (reads|fills|updates) \(per-instance\)\s*:\s*([0-9.eE+-]+)"
)


def parse_reference_stats(path: str | Path) -> dict[str, Any]:
    """Read what Timeloop/Sparseloop printed (``reference_stats.txt``): total cycles, energy (µJ)
    and, per level and tensor, the actual scalar reads/fills/updates per instance, and energies.

    Returns ``{"cycles": int, "energy_uj": float, "levels": {level: {tensor: {"reads": .., "fills":
    .., "updates": ..}}}, "level_energy_pj": {level or "MAC": pJ}}`` (level energies: the sum of
    the per-tensor "Energy (total)" lines; network energies are not included).
    Raises :class:`SpecError` when the summary is missing.
    """
    p = Path(path)
    levels: dict[str, dict[str, dict[str, float]]] = {}
    level = tensor = None
    cycles = energy = None
    energies: dict[str, float] = {}
    for line in p.read_text().splitlines():
        if line.startswith("Networks"):
            level = tensor = None
        m = _LEVEL_RE.match(line)
        if m:
            level, tensor = m.group(1), None
            levels.setdefault(level, {})
            continue
        m = _TENSOR_RE.match(line)
        if m and level is not None:
            tensor = m.group(1)
            levels[level].setdefault(tensor, {})
            continue
        m = _STAT_RE.match(line)
        if m and level is not None and tensor is not None:
            levels[level][tensor][m.group(2)] = float(m.group(3))
            continue
        m = _ENERGY_RE.match(line)
        if m and level is not None:
            energies[level] = energies.get(level, 0.0) + float(m.group(1))
            continue
        if line.startswith("Cycles:"):
            cycles = int(line.split(":")[1])
        elif line.startswith("Energy:"):
            energy = float(line.split(":")[1].split()[0])
    if cycles is None or energy is None:
        raise SpecError(
            "no 'Cycles:'/'Energy:' summary (expected a Timeloop stats file)", file=str(p)
        )
    return {
        "cycles": cycles,
        "energy_uj": energy,
        "levels": {k: v for k, v in levels.items() if v},
        "level_energy_pj": energies,
    }
