"""Numeric architecture parameters as arrays, so one model call covers many design points.

:class:`ArchArrays` holds every number the cost model reads from an :class:`Architecture` as an
array with a leading design-point axis P (``(P, L)`` per level, ``(P,)`` for the compute unit).
Design points must share the level structure (names, order); their capacities, bandwidths,
energies, instances and clocks may differ. P broadcasts against the B mappings of a
:class:`~testy_model.model.nest.LoopNests` (P = 1 or P = B).

Units: capacity (data, and separate metadata storage) in bits per instance; bandwidth in
bits/cycle per instance (``inf`` = unlimited); energies in pJ per word of the level's datawidth;
metadata energies in pJ per bit; leakage in pJ/cycle per instance; clock in GHz.

Per-action energies (``op_energy``, pJ per vector access; ``mac_op_energy``, pJ per compute)
follow Timeloop's actions (``STORAGE_OPS``, ``COMPUTE_OPS``): a level whose energies come from an
Accelergy ERT resolves each action through the ERT's actions in Timeloop's priority order
(``storageOperationMappings`` in ``include/model/topology.hpp``; an unlisted data action costs
the ERT's most expensive action, an unlisted metadata/gated/skipped one 0). Otherwise a read
vector costs ``read_energy × block``, a fill or update ``write_energy × block``, gated and
skipped data actions 0, and a metadata access ``metadata energy per bit × its width`` (the
metadata energy falls back to ``read_energy / datawidth`` only when it is not given).

The clock is not free: the energies here are the spec's at its operating point. A spec's
energies and leakage hold at its nominal clock (``ComputeUnit.nominal_clock_ghz``); at another
clock the voltage-frequency rule (:func:`testy_model.estimators.voltage.energy_factors`) gives
the supply, and every on-chip dynamic energy (storage, metadata and per-action energies of
non-DRAM levels, MAC and gated-MAC energies and the compute actions, TASD-unit energy per value)
is multiplied by ``k_dyn = (V/V_nom)²`` and every on-chip leakage by ``k_leak =
(V/V_nom)·(f_nom/f)``. DRAM is off-chip (its own supply): unscaled. At the nominal clock both
factors are exactly 1. ``ArchArrays.replace`` takes numbers as given (no voltage rescaling; the
per-action energies follow changed per-word energies, ``_rederive_actions``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from testy_model.errors import SpecError
from testy_model.estimators.voltage import energy_factors
from testy_model.spec.arch import Architecture, ComputeUnit, SparsitySupport, StorageLevel, TasdUnit

#: Timeloop's storage actions (``tiling::storageOperationTypes``) and their ERT priority lists.
STORAGE_OPS: dict[str, tuple[str, ...]] = {
    "random_read": ("random_read", "read"),
    "random_fill": ("random_fill", "write"),
    "random_update": ("random_update", "random_fill", "write"),
    "gated_read": ("gated_read", "idle", "read"),
    "gated_fill": ("gated_fill", "gated_write", "idle", "write"),
    "gated_update": ("gated_update", "gated_write", "idle", "write"),
    "skipped_read": ("skipped_read", "gated_read", "idle", "read"),
    "skipped_fill": ("skipped_fill", "skipped_write", "gated_write", "idle", "write"),
    "skipped_update": ("skipped_update", "skipped_write", "gated_write", "idle", "write"),
    "random_metadata_read": ("random_metadata_read", "metadata_read", "metadata_idle", "idle"),
    "gated_metadata_read": ("gated_metadata_read", "metadata_idle", "metadata_read"),
    "skipped_metadata_read": ("skipped_metadata_read", "metadata_idle", "metadata_read"),
    "random_metadata_fill": ("random_metadata_fill", "metadata_write", "metadata_idle", "idle"),
    "gated_metadata_fill": (
        "gated_metadata_fill",
        "gated_metadata_write",
        "metadata_idle",
        "metadata_write",
    ),
    "skipped_metadata_fill": (
        "skipped_metadata_fill",
        "skipped_metadata_write",
        "metadata_idle",
        "metadata_write",
    ),
    "random_metadata_update": ("random_metadata_update", "metadata_write", "metadata_idle", "idle"),
    "gated_metadata_update": (
        "gated_metadata_update",
        "gated_metadata_write",
        "metadata_idle",
        "metadata_write",
    ),
    "skipped_metadata_update": (
        "skipped_metadata_update",
        "skipped_metadata_write",
        "metadata_idle",
        "metadata_write",
    ),
}
#: Timeloop's compute actions (``arithmeticOperationMappings``).
COMPUTE_OPS: dict[str, tuple[str, ...]] = {
    "random": ("mac_random", "mult_random", "mac", "mult", "compute"),
    "gated": ("mac_gated", "mult_gated", "compute_gated", "mac", "mult", "compute"),
    "skipped": (
        "mac_skipped",
        "mult_skipped",
        "compute_skipped",
        "mac_gated",
        "mult_gated",
        "compute_gated",
        "mac",
        "mult",
        "compute",
    ),
}


def op_index(split: str, kind: str, metadata: bool = False) -> int:
    """Index in ``STORAGE_OPS`` of e.g. ``("gated", "reads")``: ``gated_read``."""
    name = f"{split}_{'metadata_' if metadata else ''}{kind[:-1]}"
    return list(STORAGE_OPS).index(name)


def action_energies(level: StorageLevel) -> np.ndarray:
    """pJ per vector access of every action of ``STORAGE_OPS`` (module docstring)."""
    out = np.zeros(len(STORAGE_OPS))
    if level.ert_actions:
        ert = dict(level.ert_actions)
        top = max(ert.values()) if ert else 0.0
        for i, (op, names) in enumerate(STORAGE_OPS.items()):
            hit = next((ert[n] for n in names if n in ert), None)
            out[i] = (
                hit
                if hit is not None
                else (top if op.startswith("random_") and "metadata" not in op else 0.0)
            )
        return out
    blk = level.block_size
    md_r = level.metadata_read_energy
    md_w = level.metadata_write_energy
    md_r = level.read_energy / level.datawidth if md_r is None else md_r
    md_w = level.write_energy / level.datawidth if md_w is None else md_w
    width = level.metadata_width or level.width
    for i, op in enumerate(STORAGE_OPS):
        if op == "random_read":
            out[i] = level.read_energy * blk
        elif op in ("random_fill", "random_update"):
            out[i] = level.write_energy * blk
        elif op == "random_metadata_read":
            out[i] = md_r * width
        elif op in ("random_metadata_fill", "random_metadata_update"):
            out[i] = md_w * width
    return out


def compute_energies(compute: ComputeUnit) -> np.ndarray:
    """pJ per random / gated / skipped compute (``COMPUTE_OPS``)."""
    if compute.ert_actions:
        ert = dict(compute.ert_actions)
        out = []
        for split, names in COMPUTE_OPS.items():
            hit = next((ert[n] for n in names if n in ert), None)
            out.append(
                hit if hit is not None else (compute.mac_energy if split == "random" else 0.0)
            )
        return np.array(out)
    gated = 0.0 if compute.gated_mac_energy is None else compute.gated_mac_energy
    return np.array([compute.mac_energy, gated, compute.skipped_mac_energy])


def metadata_access_bits(level: StorageLevel) -> float:
    """Bits moved by one metadata access: the metadata storage width; without a separate
    metadata storage, the data row width for this project's own specs and 0 (never charged, as
    Timeloop) for a level described by an ERT."""
    if level.metadata_width:
        return float(level.metadata_width)
    return 0.0 if level.ert_actions else float(level.width)


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
    #: (P, L, len(STORAGE_OPS)) pJ per vector access of each Timeloop storage action.
    op_energy: np.ndarray | None = None
    #: (P, 3) pJ per random / gated / skipped compute.
    mac_op_energy: np.ndarray | None = None
    #: (P, L) bits moved by one metadata access (0: metadata never charged).
    md_access_bits: np.ndarray | None = None
    #: (P, L) default metadata word bits (Timeloop's ``metadata_datawidth``).
    md_word_bits: np.ndarray | None = None
    #: (P, L) metadata storage width in bits (0: none).
    md_width: np.ndarray | None = None
    #: (P, L) shared read+write bandwidth, bits/cycle per instance (inf = unlimited).
    shared_bw: np.ndarray | None = None
    #: (P, L) physical X fan-out below each level (mesh row length for link transfers).
    fanout_x: np.ndarray | None = None
    #: (L,) the architecture fans out below the level (Timeloop adds spatial loops there).
    arch_spatial: tuple[bool, ...] = ()
    #: name of the compute unit (a ``sparse_optimizations`` target).
    compute_name: str = "MAC"

    @property
    def md_energy_per_bit(self) -> tuple[np.ndarray, np.ndarray]:
        """(read, write) metadata energy, pJ per bit, (P, L): the level's metadata energy
        (an explicit 0 stays 0), or where none is given (NaN) its data word energy spread over
        the word, ``e / datawidth``."""
        md_r = np.where(
            np.isnan(self.md_read_energy), self.read_energy / self.datawidth, self.md_read_energy
        )
        md_w = np.where(
            np.isnan(self.md_write_energy),
            self.write_energy / self.datawidth,
            self.md_write_energy,
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
        fixed: dict[str, Any] = {}  # field name -> new value (Any: the fields' types differ)
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
        new = dataclasses.replace(self, **fixed)
        p = max(
            int(np.shape(getattr(new, f.name))[0])
            for f in dataclasses.fields(new)
            if isinstance(getattr(new, f.name), np.ndarray)
        )
        out: dict[str, Any] = {}
        for f in dataclasses.fields(new):
            v = getattr(new, f.name)
            if isinstance(v, np.ndarray):
                shape = (p, *v.shape[1:])
                if v.ndim == 2 and v.shape[1] == 1:
                    shape = (p, len(self.level_names))
                out[f.name] = np.broadcast_to(v, shape).astype(np.float64)
        res = dataclasses.replace(new, **out)
        return _rederive_actions(self, res, set(arrays))


def _rederive_actions(old: ArchArrays, new: ArchArrays, given: set[str]) -> ArchArrays:
    """After :meth:`ArchArrays.replace`: the per-action energies follow the per-word ones that
    changed (a read energy ×2 doubles the random-read action), unless the actions were given.

    Each derived action scales by new / old of its per-word (per-bit) energy; where the old one
    was 0 it becomes the new energy × block (metadata: × metadata access bits). The MAC actions
    follow ``mac_energy`` and ``gated_mac_energy`` the same way."""
    if new.op_energy is None or "op_energy" in given:
        return new
    p = new.points
    op = np.broadcast_to(new.op_energy, (p, *new.op_energy.shape[1:])).copy()
    blk = new.block_words if new.block_words is not None else np.ones_like(new.datawidth)
    mdb = new.md_access_bits if new.md_access_bits is not None else np.zeros_like(new.datawidth)
    old_md, new_md = old.md_energy_per_bit, new.md_energy_per_bit
    pairs = (
        (old.read_energy, new.read_energy, blk, ("random_read",)),
        (old.write_energy, new.write_energy, blk, ("random_fill", "random_update")),
        (old_md[0], new_md[0], mdb, ("random_metadata_read",)),
        (old_md[1], new_md[1], mdb, ("random_metadata_fill", "random_metadata_update")),
    )
    names = list(STORAGE_OPS)
    changed = False
    for before, after, unit, ops in pairs:
        b = np.broadcast_to(before, after.shape)
        if np.array_equal(b, after):
            continue
        changed = True
        for o in ops:
            i = names.index(o)
            with np.errstate(divide="ignore", invalid="ignore"):
                op[:, :, i] = np.where(b != 0, op[:, :, i] * after / b, after * unit)
    mac = new.mac_op_energy
    if mac is not None and "mac_op_energy" not in given:
        mac = (
            np.broadcast_to(mac, (p, mac.shape[-1])).copy()
            if mac.ndim == 2
            else np.tile(mac, (p, 1))
        )
        for col, before, after in (
            (0, old.mac_energy, new.mac_energy),
            (1, old.gated_mac_energy, new.gated_mac_energy),
        ):
            b = np.broadcast_to(before, after.shape)
            if np.array_equal(b, after):
                continue
            changed = True
            with np.errstate(divide="ignore", invalid="ignore"):
                mac[:, col] = np.where(b != 0, mac[:, col] * after / b, after)
    if not changed:
        return new
    return dataclasses.replace(new, op_energy=op, mac_op_energy=mac)


def _fanout_x(arch: Architecture, index: int) -> float:
    """Physical X fan-out below level ``index``: child mesh X / own mesh X."""
    child = arch.levels[index + 1].mesh_x if index + 1 < len(arch.levels) else arch.compute.mesh_x
    return max(1.0, child / arch.levels[index].mesh_x)


def _one(arch: Architecture) -> dict[str, np.ndarray]:
    lv = arch.levels
    n_l = len(lv)
    from testy_model.estimators.tasd_unit import tasd_unit_numbers

    tu = tasd_unit_numbers(arch.tasd_unit or TasdUnit(), arch.compute.datawidth, arch.technology)
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
        "md_read_energy": np.array(
            [np.nan if x.metadata_read_energy is None else x.metadata_read_energy for x in lv],
            dtype=np.float64,
        )
        * dyn,
        "md_write_energy": np.array(
            [np.nan if x.metadata_write_energy is None else x.metadata_write_energy for x in lv],
            dtype=np.float64,
        )
        * dyn,
        "leakage": np.array([x.leakage for x in lv], dtype=np.float64) * leak,
        "instances": np.array([x.instances for x in lv], dtype=np.float64),
        "fanout": np.array([arch.fanout(i) for i in range(n_l)], dtype=np.float64),
        "md_capacity_bits": np.array(
            [float(x.metadata_depth) * float(x.metadata_width) for x in lv], dtype=np.float64
        ),
        "block_words": np.array([float(x.block_size) for x in lv], dtype=np.float64),
        "op_energy": np.stack([action_energies(x) for x in lv]) * dyn[:, None],
        "mac_op_energy": compute_energies(c) * k_dyn,
        "md_access_bits": np.array([metadata_access_bits(x) for x in lv], dtype=np.float64),
        "md_word_bits": np.array([float(x.metadata_datawidth) for x in lv], dtype=np.float64),
        "md_width": np.array([float(x.metadata_width) for x in lv], dtype=np.float64),
        "shared_bw": np.array([x.shared_bandwidth or np.inf for x in lv], dtype=np.float64),
        "fanout_x": np.array([_fanout_x(arch, i) for i in range(n_l)], dtype=np.float64),
        "mac_instances": np.array(float(c.instances)),
        "mac_energy": np.array(c.mac_energy) * k_dyn,
        "gated_mac_energy": np.array(0.0 if c.gated_mac_energy is None else c.gated_mac_energy)
        * k_dyn,
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
        arch_spatial=tuple(archs[0].fanout(i) > 1 for i in range(len(names))),
        compute_name=archs[0].compute.name,
        **stacked,
    )
