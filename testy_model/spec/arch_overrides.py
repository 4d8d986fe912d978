"""Dotted overrides on a loaded :class:`Architecture` (``--set levels.SMEM.depth=4096``): the
typed model's fields, the derived ``array.pes=N`` (:func:`scale_pes`), bandwidths in the file's
words/cycle, and the re-derivation of estimated energies an override made stale
(:func:`_rederive`)."""

from __future__ import annotations

import math

from pydantic import ValidationError

from testy_model.errors import SpecError
from testy_model.estimators import energy as et
from testy_model.estimators.node import node_nm
from testy_model.spec.arch import Architecture
from testy_model.spec.arch_levels import derive_energies
from testy_model.spec.located import did_you_mean
from testy_model.spec.overrides import apply_overrides, parse_override


def _rederive(old: Architecture, new: Architecture) -> Architecture:
    """Re-derive the estimated energies an override made stale: a level's data energies when
    its geometry (depth, width, datawidth, kind) or the process node changed, the MAC energy
    when the node or the multiplier width changed. Energies written in the spec or taken from
    an ERT (``energy_source`` not the estimators'), or changed by the override itself, stay.
    (Estimated metadata energies are kept as loaded.)"""
    node = node_nm(new.technology)
    moved = node != node_nm(old.technology)
    levels = []
    for lo, ln in zip(old.levels, new.levels, strict=False):
        geom = (lo.depth, lo.width, lo.datawidth, lo.kind)
        same_e = (lo.read_energy, lo.write_energy) == (ln.read_energy, ln.write_energy)
        changed = moved or geom != (ln.depth, ln.width, ln.datawidth, ln.kind)
        if ln.energy_source.startswith(et.TABLE_SOURCE) and same_e and changed:
            if ln.kind == "DRAM":
                per_bit = lo.read_energy / lo.datawidth
                r = w = per_bit * ln.datawidth
                src = ln.energy_source
            else:
                r, w, src = derive_energies(
                    ln.kind, ln.depth, ln.width, ln.datawidth, None, ln.estimator, node
                )
            ln = ln.model_copy(update={"read_energy": r, "write_energy": w, "energy_source": src})
        levels.append(ln)
    if len(new.levels) != len(old.levels):
        return new
    c_old, c = old.compute, new.compute
    width = c.multiplier_width or c.datawidth
    if (
        c.energy_source == et.TABLE_SOURCE
        and c.mac_energy == c_old.mac_energy
        and (moved or width != (c_old.multiplier_width or c_old.datawidth))
    ):
        c = c.model_copy(update={"mac_energy": et.mac_energy(width, node, c.estimator)})
    return new.model_copy(update={"levels": tuple(levels), "compute": c})


#: The derived override key that resizes the PE array (see :func:`scale_pes`).
PES_KEY = "array.pes"


def _pe_block(arch: Architecture) -> tuple[int, int, int]:
    """(first scaled level index, instances P above the array, X mesh of that parent).

    The scaled block is the innermost run of levels whose ``instances`` equal the compute
    unit's; its parent is the level just outside it (P = its instances). When no level has
    fewer instances than the compute unit (no fan-out anywhere), the block is empty and the
    parent is the design as a whole (P = 1, X mesh 1)."""
    old = arch.compute.instances
    first = len(arch.levels)
    while first > 0 and arch.levels[first - 1].instances == old:
        first -= 1
    if first == 0:
        return len(arch.levels), 1, 1
    parent = arch.levels[first - 1]
    return first, parent.instances, parent.mesh_x


def scale_pes(arch: Architecture, pes: object) -> Architecture:
    """Resize the PE array: the derived override ``array.pes=N`` (N MAC units in all).

    Definition (instances are totals over the whole design, as in :mod:`~testy_model.spec.arch`):
    let C be the compute unit's instances and the *PE block* the innermost run of storage levels
    whose instances equal C (in ``stc_2of4_tasd.yaml``: ``LRF``, C = 1024); its parent is the
    level just outside the block (``RF``, P = 4 instances). Then

    - ``compute.instances = N`` and every level of the PE block gets ``instances = N``
      (peak MACs per cycle = N);
    - the fan-out below the parent becomes f = N / P (was C / P), so N must be a positive
      multiple of P, else :class:`SpecError` naming the valid values;
    - its X split: the old X fan-out fx = mesh_x(block) / mesh_x(parent) is kept when it
      divides f (growth goes to Y), else it becomes gcd(f, fx);
      ``mesh_x = mesh_x(parent) · fx`` for the block and the compute unit.

    With no fan-out anywhere (every level has C instances) the block is empty: only the compute
    unit scales, P = 1. Estimated energies do not depend on instances, so none is re-derived.
    """
    first, parent_inst, parent_mx = _pe_block(arch)
    if isinstance(pes, bool) or not isinstance(pes, int) or pes < 1 or pes % parent_inst:
        if parent_inst == 1:
            expected = "a positive integer (valid values: 1, 2, 3, ...)"
        else:
            parent = arch.levels[first - 1].name
            multiples = ", ".join(str(parent_inst * k) for k in (1, 2, 3, 4))
            expected = (
                f"a positive integer multiple of the {parent_inst} instances of level "
                f"{parent!r} above the PE array (valid values: {multiples}, ...)"
            )
        raise SpecError(
            f"override {PES_KEY}={pes!r}: expected {expected}",
            key_path=PES_KEY,
        )
    old_mx = arch.compute.mesh_x
    old_fx = max(1, old_mx // parent_mx)
    fan = pes // parent_inst
    fx = old_fx if fan % old_fx == 0 else math.gcd(fan, old_fx)
    mesh_x = parent_mx * fx
    levels = tuple(
        lv.model_copy(update={"instances": pes, "mesh_x": mesh_x}) if i >= first else lv
        for i, lv in enumerate(arch.levels)
    )
    compute = arch.compute.model_copy(update={"instances": pes, "mesh_x": mesh_x})
    try:
        return Architecture.model_validate({**dict(arch), "levels": levels, "compute": compute})
    except ValidationError as err:  # pragma: no cover - the construction keeps divisibility
        msg = str(err.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        raise SpecError(f"override {PES_KEY}={pes}: {msg}", key_path=PES_KEY) from None


#: Level fields given in words per cycle in files and overrides (stored in bits per cycle).
BANDWIDTH_FIELDS = ("read_bandwidth", "write_bandwidth")


def _bandwidth_override(arch: Architecture, parts: list[str], value: object, text: str) -> str:
    """The override ``levels.L.read_bandwidth=V`` (V in words/cycle, the file's unit) as the
    typed model's bits/cycle: ``V · datawidth(L)``; ``null`` keeps it unlimited."""
    head = parts[1]
    names = [lv.name for lv in arch.levels]
    if head in names:
        level = arch.levels[names.index(head)]
    elif head.lstrip("-").isdigit() and -len(names) <= int(head) < len(names):
        level = arch.levels[int(head)]
    else:
        raise SpecError(
            f"override {text!r}: no level {head!r}{did_you_mean(head, names)}; levels are {names}"
        )
    if value is None:
        return f"levels.{level.name}.{parts[2]}=null"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SpecError(
            f"override {text!r}: expected a bandwidth > 0 in words/cycle (or null for unlimited)"
        )
    return f"levels.{level.name}.{parts[2]}={float(value) * level.datawidth!r}"


def apply_arch_overrides(arch: Architecture, overrides: list[str] | None) -> Architecture:
    """``arch`` with dotted ``KEY.PATH=VALUE`` overrides applied, as ``load_arch`` does.

    Keys are the typed model's fields (``levels.SMEM.depth=4096``, ``compute.instances=512``,
    ``sparsity.A.patterns=[1:4,2:4]``; see :func:`~testy_model.spec.yaml_io.apply_overrides`)
    plus the derived key ``array.pes=N`` (:func:`scale_pes`: compute and PE-block instances
    together). Bandwidths (``levels.L.read_bandwidth`` / ``write_bandwidth``) are in **words per
    cycle**, the unit of architecture files, converted with the level's datawidth (after every
    other override, so a datawidth set in the same call counts). Overrides apply in order;
    consecutive plain ones are validated together, so ``compute.instances`` and
    ``levels.LRF.instances`` may be changed in one go. Afterwards estimated energies of every
    level whose geometry (depth, width, datawidth, kind) changed, and of every level and the MAC
    when ``technology`` changed, are re-derived by the same estimator class (pJ per word;
    :func:`_rederive`). Raises :class:`SpecError`.
    """
    if not overrides:
        return arch
    new: Architecture = arch
    plain: list[str] = []
    bandwidths: list[tuple[list[str], object, str]] = []

    def flush() -> None:
        nonlocal new
        if plain:
            got = apply_overrides(new, plain)
            if not isinstance(got, Architecture):  # pragma: no cover - keeps the type
                raise SpecError("overrides did not produce an architecture")
            new = got
            plain.clear()

    for text in overrides:
        parts, value = parse_override(text)
        if ".".join(parts) == PES_KEY:
            flush()
            new = scale_pes(new, value)
        elif len(parts) == 3 and parts[0] == "levels" and parts[2] in BANDWIDTH_FIELDS:
            bandwidths.append((parts, value, text))
        else:
            plain.append(text)
    flush()
    if bandwidths:
        plain.extend(_bandwidth_override(new, p, v, t) for p, v, t in bandwidths)
        flush()
    return _rederive(arch, new)
