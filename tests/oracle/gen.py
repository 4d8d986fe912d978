"""Seeded generator of random, valid cases in Timeloop v0.3 input format.

A case is a folder holding ``arch.yaml``, ``problem.yaml``, [``sparse_opt.yaml``], ``map.yaml``,
``ERT.yaml``, ``ART.yaml`` and ``inputs.txt`` (Timeloop's argument order), like the shared
``timeloop_v3_cases``, plus ``case.json`` (kind, seed, what it exercises).

What Timeloop v3.0.3 requires of a case, and how the generator meets it (each rule read from its
source; the function named is where Timeloop checks it):

- **Tree architecture** (``src/model/topology.cpp`` ``ParseTreeSpecs``): one ``subtree`` per
  node; a component's instances = product of the ``name[0..N-1]`` sizes above it; storage is a
  class containing DRAM/SRAM/regfile/smartbuffer/storage, compute mac/intmac/fpmac/compute;
  local lists run outer to inner. ``meshX`` must divide instances; the fan-out of a level
  is (child meshX / own meshX) × (child meshY / own meshY) (``src/mapping/arch-properties.cpp``
  ``DeriveFanouts``). We give every non-root component its cumulative meshX.
- **Width** must be a multiple of datawidth × block size (``BufferLevel::ParseSpecs``); we
  leave block size implicit (= width / datawidth; Timeloop prints a warning).
- **Mapping** (``src/mapping/parser.cpp``): per level factors must multiply to the dimension
  (we write every dimension, perfect factors); ``split`` = number of leading permutation
  dimensions on the X axis; spatial directives only at levels with a fan-out.
- **Capacity** (``BufferLevel::ComputeScalarAccesses``): Σ kept tile sizes ≤ depth × block
  size; metadata bits ≤ metadata depth × width. ``timeloop-model`` *exits with status 1*
  (``ERROR: couldn't map level X: mapped tile size N exceeds buffer capacity M``) on a
  violation: it does not evaluate over-capacity mappings. We size every depth from the mapping's
  tiles (bounding-box sizes; sometimes exactly tight), so the case is valid by construction.
- **Fan-out** (same function): spatial factors on X (Y) ≤ the level's X (Y) fan-out.
- **Formats** (``src/model/sparse-optimization-parser.cpp``, ``src/sparse-analysis/
  representation-analyzer.cpp`` ``DefineCompressionFormatModels``, ``sparse-analysis.cpp``):
  ranks outer→inner must be uncompressed (UOP/UB) then compressed (CP/B/RLE); format word bits ≤
  metadata storage width (DRAM too, so compressed DRAMs get a metadata width); a compressed
  level whose child keeps a tile > 1 needs at least the child's ranks with the same inner
  formats ("pre-tiling"); a parent compressed above an uncompressed child needs
  ``decompression_supported`` (and ``compression_supported`` for outputs) at the child; enough
  ranks for the non-trivial loops (or ``flattened-rankIDs`` covering every dimension); block
  size of a level holding a compressed tensor in 2..32 (the vector-width table).

:func:`generate` builds a case (problem, architecture and mapping from :mod:`oracle.cases`, sparse
optimizations from :mod:`oracle.sparse_gen`); :func:`generate_valid` also runs Timeloop on it and,
on the rare
refusals these rules do not foresee (rank counts after Timeloop's loop scaling), repairs the case
(more ranks / more capacity) or draws another one. :func:`oracle.negative.make_negative` breaks a
valid case (over capacity, fan-out exceeded, bad factors, metadata overflow).

Case kinds (``KINDS``): ``dense_gemm``, ``dense_conv``, ``sparse_format``, ``sparse_gating``,
``sparse_skipping``, ``spatial_skipping``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oracle.cases import (
    Arch,
    Case,
    LevelMap,
    Problem,
    _walk_components,
    dump_yaml,
    extents_at,
    mapping_yaml,
    random_arch,
    random_mapping,
    random_problem,
)
from oracle.negative import NEGATIVE_KINDS, _factors, make_negative
from oracle.sparse_gen import SparseSpec, random_actions, random_densities, random_formats

__all__ = [
    "KINDS",
    "NEGATIVE_KINDS",
    "SPARSE_KINDS",
    "Case",
    "dump_yaml",
    "generate",
    "generate_valid",
    "make_negative",
]
_ = (Arch, LevelMap, _factors)  # re-exported for the tests

KINDS: tuple[str, ...] = (
    "dense_gemm",
    "dense_conv",
    "sparse_format",
    "sparse_gating",
    "sparse_skipping",
    "spatial_skipping",
)
SPARSE_KINDS = frozenset(KINDS[2:])

# --------------------------------------------------------------------------------------------
# sizing, energies, writing
# --------------------------------------------------------------------------------------------


def size_levels(
    rng: random.Random,
    prob: Problem,
    arch: Arch,
    maps: list[LevelMap],
    formats: dict[tuple[int, str], list[dict[str, Any]]],
) -> None:
    """Depths from the mapping's tiles (sometimes exactly tight) and metadata stores for levels
    holding formats."""
    for i, lv in enumerate(arch.levels):
        ext = extents_at(prob, maps, i)
        need = sum(prob.tile_size(t, ext) for t in maps[i].keep)
        fmt_tensors = [t for t in prob.tensors if (i, t) in formats]
        if fmt_tensors:
            # the metadata store's width must be a multiple of its word (ParseSpecs asserts)
            lv.md_datawidth = rng.choice([2, 3, 4, 4, 8])
            lv.md_width = lv.md_datawidth * rng.choice([1, 2, 4, 8])
            if lv.is_dram:
                lv.md_width = lv.md_datawidth * (64 // lv.md_datawidth)
            for t in fmt_tensors:
                for r in formats[(i, t)]:
                    if "metadata-word-bits" in r and r["metadata-word-bits"] > lv.md_width:
                        r["metadata-word-bits"] = lv.md_width
        if lv.is_dram:
            continue
        slack = 1.0 if rng.random() < 0.3 else rng.choice([1.25, 1.5, 2.0, 4.0])
        lv.depth = max(1, math.ceil(need * slack / lv.block))
        if fmt_tensors:
            bits = 0
            for t in fmt_tensors:
                nr = len(formats[(i, t)])
                bits += (nr + 1) * (prob.tile_size(t, ext) + 2) * lv.md_width
            lv.md_depth = max(4, math.ceil(bits / lv.md_width))


def _r4(x: float) -> float:
    return float(f"{x:.4g}")


def ert_yaml(rng: random.Random, arch: Arch, sparse: bool) -> dict[str, Any]:
    """Random per-action energies (pJ per vector access / per compute)."""
    tables = []
    for lv in reversed(arch.levels):
        per_bit = rng.uniform(6.0, 10.0) if lv.is_dram else rng.uniform(0.005, 0.08)
        rd = _r4(per_bit * lv.width)
        acts = [("read", rd), ("write", _r4(rd * rng.uniform(0.9, 1.3)))]
        if sparse:
            md_w = lv.md_width or 8
            md_bit = per_bit * rng.uniform(0.5, 1.5)
            acts += [
                ("gated_read", _r4(rd * rng.uniform(0.0, 0.1))),
                ("gated_write", _r4(rd * rng.uniform(0.0, 0.1))),
                ("metadata_read", _r4(md_bit * md_w)),
                ("metadata_write", _r4(md_bit * md_w * rng.uniform(0.9, 1.3))),
                ("gated_metadata_read", _r4(md_bit * md_w * 0.01)),
                ("gated_metadata_write", _r4(md_bit * md_w * 0.01)),
            ]
        tables.append(
            {
                "name": lv.path,
                "actions": [{"name": n, "arguments": None, "energy": e} for n, e in acts],
            }
        )
    mac = _r4(rng.uniform(0.2, 1.2))
    macs = [("mac_random", mac)]
    if sparse:
        macs += [("mac_gated", _r4(mac * rng.uniform(0.0, 0.1))), ("mac_skipped", 0.0)]
    tables.append(
        {
            "name": arch.mac_path,
            "actions": [{"name": n, "arguments": None, "energy": e} for n, e in macs],
        }
    )
    return {"ERT": {"version": 0.3, "tables": tables}}


def art_yaml(rng: random.Random, arch: Arch) -> dict[str, Any]:
    """Random areas (µm²)."""
    tables = [
        {"name": lv.path, "area": 0 if lv.is_dram else _r4(rng.uniform(50, 5000) * lv.width)}
        for lv in reversed(arch.levels)
    ]
    tables.append({"name": arch.mac_path, "area": _r4(rng.uniform(200, 800))})
    return {"ART": {"version": 0.3, "tables": tables}}


def generate(seed: int, kind: str) -> Case:
    """One random case of ``kind`` from ``seed`` (deterministic)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    rng = random.Random(f"{kind}:{seed}")
    sparse = kind in SPARSE_KINDS
    pkind = "conv" if kind == "dense_conv" else ("gemm" if kind == "dense_gemm" else None)
    if pkind is None:
        pkind = rng.choice(["gemm", "gemm", "conv"])
    prob = random_problem(rng, pkind)
    arch = random_arch(rng, sparse)
    if kind == "spatial_skipping" and not any(lv.fanout > 1 for lv in arch.levels[:-1]):
        arch.levels[0].fan_x = rng.choice([2, 4])
    maps = random_mapping(rng, prob, arch)
    spec = SparseSpec()
    if sparse:
        prob.densities = random_densities(rng, prob)
        # a separate stream, so that this choice leaves every other draw of the case unchanged
        prob.bare_densities = random.Random(f"bare:{kind}:{seed}").random() < 0.08
        if kind == "sparse_format" or rng.random() < 0.6:
            spec.formats = random_formats(rng, prob, arch, maps)
        if kind != "sparse_format" or rng.random() < 0.5:
            spec.actions = random_actions(rng, prob, arch, maps, kind)
        if rng.random() < 0.3:
            spec.compute = [rng.choice(["gating", "skipping"])]
    size_levels(rng, prob, arch, maps, spec.formats)
    docs: dict[str, dict[str, Any]] = {
        "arch.yaml": arch.build_tree(),
        "problem.yaml": prob.to_yaml(),
    }
    if sparse:
        docs["sparse_opt.yaml"] = spec.to_yaml(arch, prob)
    docs["map.yaml"] = mapping_yaml(prob, arch, maps)
    docs["ERT.yaml"] = ert_yaml(rng, arch, sparse)
    docs["ART.yaml"] = art_yaml(rng, arch)
    fan = [f"{lv.name}:{lv.fan_x}x{lv.fan_y}" for lv in arch.levels if lv.fanout > 1]
    what = (
        f"{kind}: {pkind} {prob.dims} on {len(arch.levels)} levels "
        f"{[lv.name for lv in reversed(arch.levels)]}, fan-out {fan or 'none'}"
    )
    meta = {
        "problem": pkind,
        "levels": len(arch.levels),
        "spatial_levels": len(fan),
        "macs": math.prod(prob.dims.values()),
    }
    return Case(kind, seed, docs, what, meta)


# --------------------------------------------------------------------------------------------
# validity against the real tool
# --------------------------------------------------------------------------------------------


def _repair(case: Case, error: str) -> bool:
    """Adjust ``case`` for a Timeloop refusal the construction rules did not foresee; False if
    the refusal is not one we repair."""
    if "more compression ranks needed" in error or "does not align" in error:
        sp = case.docs.get("sparse_opt.yaml", {}).get("sparse_optimizations", {})
        for tgt in sp.get("targets", []):
            for ds in (tgt.get("representation-format") or {}).get("data-spaces", []):
                if "flattened-rankIDs" not in ds["ranks"][0]:
                    ds["ranks"].insert(0, {"format": "UOP"})
        return True
    if "exceeds buffer capacity" in error or "exceeds metadata buffer capacity" in error:
        for node in _walk_components(case.docs["arch.yaml"]):
            a = node.get("attributes", {})
            if "depth" in a:
                a["depth"] = int(a["depth"]) * 2
            if "metadata_storage_depth" in a:
                a["metadata_storage_depth"] = int(a["metadata_storage_depth"]) * 2
        return True
    return False


def generate_valid(
    seed: int,
    kind: str,
    folder: str | Path,
    run_timeloop: Callable[[Path], tuple[int, str]],
    max_draws: int = 8,
) -> tuple[Case, int]:
    """A case that Timeloop evaluates, written to ``folder``: draws ``generate(seed')`` for
    seed' = seed, seed + 100003, ... and repairs rank/capacity refusals (up to 3 times per
    draw). ``run_timeloop(folder)`` returns (exit status, error text). Returns the case and the
    number of Timeloop runs it took. Raises RuntimeError after ``max_draws`` failed draws."""
    runs = 0
    errors = []
    for draw in range(max_draws):
        case = generate(seed + draw * 100003, kind)
        for _ in range(4):
            case.write(folder)
            rc, err = run_timeloop(Path(folder))
            runs += 1
            if rc == 0:
                case.meta["draw"] = draw
                case.write(folder)
                return case, runs
            if not _repair(case, err):
                break
        errors.append(err.strip().splitlines()[-1] if err.strip() else f"rc {rc}")
    raise RuntimeError(f"no valid {kind} case from seed {seed}: {errors}")
