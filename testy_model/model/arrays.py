"""Numeric architecture parameters as arrays, so one model call covers many design points.

:class:`ArchArrays` holds every number the cost model reads from an :class:`Architecture` as an
array with a leading design-point axis P (``(P, L)`` per level, ``(P,)`` for the compute unit).
Design points must share the level structure (names, order); their capacities, bandwidths,
energies, instances and clocks may differ. P broadcasts against the B mappings of a
:class:`~testy_model.model.nest.LoopNests` (P = 1 or P = B).

Units: capacity (data, and separate metadata storage) in bits per instance; bandwidth in
bits/cycle per instance (``inf`` = unlimited); energies in pJ per word of the level's datawidth;
metadata energies in pJ per bit; leakage in pJ/cycle per instance; clock in GHz.

The clock is not free: the energies here are the spec's at its operating point. A spec's
energies and leakage hold at its nominal clock (``ComputeUnit.nominal_clock_ghz``); at another
clock the voltage-frequency rule (:func:`testy_model.estimators.voltage.energy_factors`) gives
the supply, and every on-chip dynamic energy (storage and metadata energies of non-DRAM levels,
MAC and gated-MAC energies, TASD-unit energy per value) is multiplied by ``k_dyn = (V/V_nom)²``
and every on-chip leakage by ``k_leak = (V/V_nom)·(f_nom/f)``. DRAM is off-chip (its own supply):
unscaled. At the nominal clock both factors are exactly 1. ``ArchArrays.replace`` takes numbers
as given (no rescaling).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testy_model.errors import SpecError
from testy_model.estimators.voltage import energy_factors
from testy_model.spec.arch import Architecture, SparsitySupport, TasdUnit


@dataclass(frozen=True)
class ArchArrays:
    """Numbers of P design points sharing one level structure (see module docstring)."""

    level_names: tuple[str, ...]
    capacity_bits: np.ndarray  # (P, L)
    datawidth: np.ndarray  # (P, L) bits per word
    read_bw: np.ndarray  # (P, L) bits/cycle/instance
    write_bw: np.ndarray  # (P, L)
    read_energy: np.ndarray  # (P, L) pJ/word
    write_energy: np.ndarray  # (P, L) pJ/word
    md_read_energy: np.ndarray  # (P, L) pJ/bit
    md_write_energy: np.ndarray  # (P, L) pJ/bit
    leakage: np.ndarray  # (P, L) pJ/cycle/instance
    instances: np.ndarray  # (P, L)
    fanout: np.ndarray  # (P, L) spatial fan-out below each level
    mac_instances: np.ndarray  # (P,)
    mac_energy: np.ndarray  # (P,) pJ/MAC
    gated_mac_energy: np.ndarray  # (P,) pJ/gated MAC
    mac_leakage: np.ndarray  # (P,) pJ/cycle/MAC
    clock_ghz: np.ndarray  # (P,)
    tasd_count: np.ndarray  # (P,) units
    tasd_cycles_per_block: np.ndarray  # (P,)
    tasd_block: np.ndarray  # (P,) values per block
    tasd_energy_per_value: np.ndarray  # (P,) pJ/value
    has_tasd_unit: bool
    sparsity: SparsitySupport
    #: (P, L) bits of a level's separate metadata storage per instance (metadata_depth ×
    #: metadata_width; 0 = metadata shares the data storage). None = 0 everywhere.
    md_capacity_bits: np.ndarray | None = None
    #: (P, L) words per row (vector) of each level, width // datawidth (Timeloop's block size);
    #: energy is charged per whole vector (``energy.whole_vector_words``). None = 1 everywhere.
    block_words: np.ndarray | None = None

    @property
    def md_energy_per_bit(self) -> tuple[np.ndarray, np.ndarray]:
        """(read, write) metadata energy, pJ per bit, (P, L): the level's metadata energy,
        or where that is 0 its data word energy spread over the word, ``e / datawidth``."""
        md_r = np.where(
            self.md_read_energy > 0, self.md_read_energy, self.read_energy / self.datawidth
        )
        md_w = np.where(
            self.md_write_energy > 0, self.md_write_energy, self.write_energy / self.datawidth
        )
        return md_r, md_w

    @property
    def points(self) -> int:
        """P, the number of design points."""
        return int(self.capacity_bits.shape[0])

    def replace(self, **arrays: object) -> ArchArrays:
        """A copy with some fields replaced; every array is then broadcast to (P, L) or (P,).

        For a per-level field, a 1-D array of length L is one value per level (for every
        point); a 1-D array of another length is one value per design point.
        """
        fixed: dict[str, object] = {}
        for k, v in arrays.items():
            cur = getattr(self, k)
            if isinstance(cur, np.ndarray):
                a = np.asarray(v, dtype=np.float64)
                if cur.ndim == 2 and a.ndim == 1 and a.shape[0] == cur.shape[1]:
                    a = a[None, :]
                elif cur.ndim == 2 and a.ndim == 1:
                    a = a[:, None]
                fixed[k] = a
            else:
                fixed[k] = v
        new = dataclasses.replace(self, **fixed)  # type: ignore[arg-type]
        p = max(
            int(np.shape(getattr(new, f.name))[0])
            for f in dataclasses.fields(new)
            if isinstance(getattr(new, f.name), np.ndarray)
        )
        out: dict[str, object] = {}
        for f in dataclasses.fields(new):
            v = getattr(new, f.name)
            if isinstance(v, np.ndarray):
                shape = (p, *v.shape[1:]) if v.ndim == 1 else (p, v.shape[1])
                if v.ndim == 2 and v.shape[1] == 1:
                    shape = (p, len(self.level_names))
                out[f.name] = np.broadcast_to(v, shape).astype(np.float64)
        return dataclasses.replace(new, **out)  # type: ignore[arg-type]


def _one(arch: Architecture) -> dict[str, np.ndarray]:
    lv = arch.levels
    n_l = len(lv)
    tu = arch.tasd_unit or TasdUnit()
    c = arch.compute
    k_dyn, k_leak = energy_factors(c.clock_ghz, c.nominal_clock_ghz or c.clock_ghz)
    on_chip = np.array([x.kind != "DRAM" for x in lv])
    dyn = np.where(on_chip, k_dyn, 1.0)  # (L,) voltage factor of each level's dynamic energy
    leak = np.where(on_chip, k_leak, 1.0)
    return {
        "capacity_bits": np.array([x.capacity_bits for x in lv], dtype=np.float64),
        "datawidth": np.array([x.datawidth for x in lv], dtype=np.float64),
        "read_bw": np.array([x.read_bandwidth or np.inf for x in lv], dtype=np.float64),
        "write_bw": np.array([x.write_bandwidth or np.inf for x in lv], dtype=np.float64),
        "read_energy": np.array([x.read_energy for x in lv], dtype=np.float64) * dyn,
        "write_energy": np.array([x.write_energy for x in lv], dtype=np.float64) * dyn,
        "md_read_energy": np.array([x.metadata_read_energy for x in lv], dtype=np.float64) * dyn,
        "md_write_energy": np.array([x.metadata_write_energy for x in lv], dtype=np.float64) * dyn,
        "leakage": np.array([x.leakage for x in lv], dtype=np.float64) * leak,
        "instances": np.array([x.instances for x in lv], dtype=np.float64),
        "fanout": np.array([arch.fanout(i) for i in range(n_l)], dtype=np.float64),
        "md_capacity_bits": np.array(
            [float(x.metadata_depth) * float(x.metadata_width) for x in lv], dtype=np.float64
        ),
        "block_words": np.array([float(x.block_size) for x in lv], dtype=np.float64),
        "mac_instances": np.array(float(c.instances)),
        "mac_energy": np.array(c.mac_energy) * k_dyn,
        "gated_mac_energy": np.array(c.gated_mac_energy) * k_dyn,
        "mac_leakage": np.array(c.leakage) * k_leak,
        "clock_ghz": np.array(c.clock_ghz),
        "tasd_count": np.array(float(tu.count)),
        "tasd_cycles_per_block": np.array(tu.cycles_per_block),
        "tasd_block": np.array(float(tu.block)),
        "tasd_energy_per_value": np.array(tu.energy_per_value) * k_dyn,
    }


def arch_arrays(archs: Architecture | Sequence[Architecture] | ArchArrays) -> ArchArrays:
    """Stack one or many architectures with identical level names into :class:`ArchArrays`.

    The sparsity support and TASD-unit presence are taken from the first (they are structural).
    Raises :class:`SpecError` when the level structures differ.
    """
    if isinstance(archs, ArchArrays):
        return archs
    if isinstance(archs, Architecture):
        archs = [archs]
    if not archs:
        raise SpecError("arch_arrays needs at least one architecture")
    names = archs[0].level_names
    for a in archs[1:]:
        if a.level_names != names:
            raise SpecError(
                f"design point {a.name!r} has levels {list(a.level_names)}; expected the same "
                f"levels as {archs[0].name!r}: {list(names)}"
            )
    parts = [_one(a) for a in archs]
    stacked = {k: np.stack([p[k] for p in parts]) for k in parts[0]}
    return ArchArrays(
        level_names=names,
        has_tasd_unit=archs[0].tasd_unit is not None,
        sparsity=archs[0].sparsity,
        **stacked,
    )
