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

:func:`generate` builds a case; :func:`generate_valid` also runs Timeloop on it and, on the rare
refusals these rules do not foresee (rank counts after Timeloop's loop scaling), repairs the case
(more ranks / more capacity) or draws another one. :func:`negative_cases` writes invalid cases
(over capacity, fan-out exceeded, bad factors, metadata overflow) with what Timeloop does.

Case kinds (``KINDS``): ``dense_gemm``, ``dense_conv``, ``sparse_format``, ``sparse_gating``,
``sparse_skipping``, ``spatial_skipping``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
# problem
# --------------------------------------------------------------------------------------------


@dataclass
class Problem:
    """A GEMM or a 7-D convolution: dimension sizes, coefficients, tensor projections."""

    kind: str  # "gemm" | "conv"
    dims: dict[str, int]
    coeffs: dict[str, int] = field(default_factory=dict)
    densities: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: write fixed-structured densities as bare numbers (``A: 0.5``), which Timeloop reads as
    #: fixed-structured (``workload.cpp``: a non-map density gets the default distribution)
    bare_densities: bool = False

    @property
    def tensors(self) -> list[str]:
        """Data-space names in Timeloop's order (the read-write one last)."""
        return ["A", "B", "Z"] if self.kind == "gemm" else ["Weights", "Inputs", "Outputs"]

    @property
    def output(self) -> str:
        """The read-write data space."""
        return self.tensors[-1]

    def tensor_dims(self, t: str) -> list[str]:
        """Dimensions a tensor's projection uses."""
        if self.kind == "gemm":
            return {"A": ["M", "K"], "B": ["N", "K"], "Z": ["M", "N"]}[t]
        return {
            "Weights": ["C", "M", "R", "S"],
            "Inputs": ["N", "C", "R", "S", "P", "Q"],
            "Outputs": ["N", "M", "P", "Q"],
        }[t]

    def tile_size(self, t: str, ext: dict[str, int]) -> int:
        """Bounding-box size of tensor ``t`` over an operation box of extents ``ext``."""
        if self.kind == "conv" and t == "Inputs":
            c = self.coeffs
            w = (ext["P"] - 1) * c["Wstride"] + (ext["R"] - 1) * c["Wdilation"] + 1
            h = (ext["Q"] - 1) * c["Hstride"] + (ext["S"] - 1) * c["Hdilation"] + 1
            return ext["N"] * ext["C"] * w * h
        return math.prod(ext[d] for d in self.tensor_dims(t))

    def to_yaml(self) -> dict[str, Any]:
        """The ``problem:`` document."""
        if self.kind == "gemm":
            shape = {
                "name": "MatrixMultiply",
                "dimensions": ["M", "N", "K"],
                "data-spaces": [
                    {"name": "A", "projection": [[["M"]], [["K"]]]},
                    {"name": "B", "projection": [[["N"]], [["K"]]]},
                    {"name": "Z", "projection": [[["M"]], [["N"]]], "read-write": True},
                ],
            }
        else:
            shape = {
                "name": "CNN_Layer",
                "dimensions": ["C", "M", "R", "S", "N", "P", "Q"],
                "coefficients": [
                    {"name": n, "default": 1}
                    for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")
                ],
                "data-spaces": [
                    {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
                    {
                        "name": "Inputs",
                        "projection": [
                            [["N"]],
                            [["C"]],
                            [["R", "Wdilation"], ["P", "Wstride"]],
                            [["S", "Hdilation"], ["Q", "Hstride"]],
                        ],
                    },
                    {
                        "name": "Outputs",
                        "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]],
                        "read-write": True,
                    },
                ],
            }
        inst: dict[str, Any] = dict(self.dims)
        inst.update(self.coeffs)
        if self.densities:
            inst["densities"] = {
                t: (
                    d
                    if self.bare_densities and dist == "fixed-structured"
                    else {"distribution": dist, "density": d}
                )
                for t, (dist, d) in self.densities.items()
            }
        return {"problem": {"shape": shape, "instance": inst}}


def _factorable(rng: random.Random, lo: int, hi: int) -> int:
    """A size in [lo, hi] with small prime factors (more mapping choices)."""
    choices = [n for n in range(lo, hi + 1) if all(p in (2, 3, 5, 7) for p in _primes(n))]
    return rng.choice(choices)


def _primes(n: int) -> list[int]:
    """Prime factors of n with multiplicity (n >= 1)."""
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def random_problem(rng: random.Random, kind: str) -> Problem:
    """A small GEMM (``kind`` ``gemm``) or convolution (``conv``)."""
    if kind == "gemm":
        dims = {
            "M": _factorable(rng, 1, 24),
            "N": _factorable(rng, 1, 24),
            "K": _factorable(rng, 2, 32),
        }
        return Problem("gemm", dims)
    dims = {
        "C": rng.choice([1, 2, 3, 4, 6, 8]),
        "M": rng.choice([1, 2, 4, 6, 8, 12]),
        "R": rng.choice([1, 2, 3, 3]),
        "S": rng.choice([1, 2, 3, 3]),
        "N": rng.choice([1, 1, 1, 2, 3]),
        "P": rng.choice([1, 2, 3, 4, 5, 6, 7, 8]),
        "Q": rng.choice([1, 2, 3, 4, 6, 7]),
    }
    coeffs = {
        "Wstride": rng.choice([1, 1, 1, 2]),
        "Hstride": rng.choice([1, 1, 1, 2]),
        "Wdilation": rng.choice([1, 1, 1, 1, 2]),
        "Hdilation": rng.choice([1, 1, 1, 1, 2]),
    }
    return Problem("conv", dims, coeffs)


# --------------------------------------------------------------------------------------------
# architecture
# --------------------------------------------------------------------------------------------

#: (class, subclass) choices of inner storage levels
_INNER_CLASSES: tuple[tuple[str, str | None], ...] = (
    ("SRAM", None),
    ("regfile", None),
    ("smartbuffer_SRAM", None),
    ("smartbuffer_RF", None),
    ("storage", "SRAM_MD"),
    ("storage", "regfile_metadata"),
)


@dataclass
class Level:
    """One storage level (index 0 innermost)."""

    name: str
    cls: str
    subclass: str | None
    datawidth: int
    width: int
    depth: int | None = None  # None: DRAM (unbounded)
    read_bw: float | None = None
    write_bw: float | None = None
    fan_x: int = 1  # fan-out to its child on X
    fan_y: int = 1
    md_width: int = 0  # metadata storage width (bits); 0: none
    md_depth: int | None = None
    md_datawidth: int | None = None
    decompression: bool = False
    compression: bool = False
    # filled by build_tree
    instances: int = 1
    mesh_x: int = 1
    path: str = ""

    @property
    def block(self) -> int:
        """Words per vector access (width / datawidth)."""
        return self.width // self.datawidth

    @property
    def is_dram(self) -> bool:
        """The outermost, unbounded level."""
        return self.depth is None

    @property
    def fanout(self) -> int:
        """Children per instance."""
        return self.fan_x * self.fan_y


@dataclass
class Arch:
    """Storage levels (index 0 innermost) and the MAC's class."""

    levels: list[Level]
    mac_class: str = "intmac"
    mac_datawidth: int = 8
    mac_instances: int = 1
    mac_mesh_x: int = 1
    mac_path: str = ""

    def build_tree(self) -> dict[str, Any]:
        """The v0.3 ``architecture:`` document; sets instances, meshX and ERT paths."""
        root: dict[str, Any] = {"name": "system", "attributes": {"technology": "45nm"}}
        node = root
        path = "system"
        inst, mx = 1, 1
        node["local"] = []
        for li in range(len(self.levels) - 1, -1, -1):
            lv = self.levels[li]
            lv.instances, lv.mesh_x, lv.path = inst, mx, f"{path}.{lv.name}"
            node["local"].append(self._level_yaml(lv))
            if lv.fanout > 1:
                sub: dict[str, Any] = {"name": f"U{li}[0..{lv.fanout - 1}]", "local": []}
                node["subtree"] = [sub]
                node = sub
                path = f"{path}.U{li}[0..{lv.fanout - 1}]"
                inst *= lv.fanout
                mx *= lv.fan_x
        self.mac_instances, self.mac_mesh_x, self.mac_path = inst, mx, f"{path}.mac"
        mac_attrs: dict[str, Any] = {
            "multiplier_width": self.mac_datawidth,
            "adder_width": 2 * self.mac_datawidth,
            "datawidth": self.mac_datawidth,
        }
        if inst > 1:
            mac_attrs["meshX"] = mx
        node["local"].append({"name": "mac", "class": self.mac_class, "attributes": mac_attrs})
        return {"architecture": {"version": 0.3, "subtree": [root]}}

    @staticmethod
    def _level_yaml(lv: Level) -> dict[str, Any]:
        a: dict[str, Any] = {}
        if lv.is_dram:
            a["type"] = "LPDDR4"
        else:
            a["depth"] = lv.depth
        a["width"] = lv.width
        a["datawidth"] = lv.datawidth
        if lv.md_width:
            if lv.md_depth is not None:
                a["metadata_storage_depth"] = lv.md_depth
            a["metadata_storage_width"] = lv.md_width
            if lv.md_datawidth is not None:
                a["metadata_datawidth"] = lv.md_datawidth
        if lv.read_bw is not None:
            a["read_bandwidth"] = lv.read_bw
        if lv.write_bw is not None:
            a["write_bandwidth"] = lv.write_bw
        if lv.decompression:
            a["decompression_supported"] = True
        if lv.compression:
            a["compression_supported"] = True
        if lv.instances > 1:
            a["meshX"] = lv.mesh_x
        out: dict[str, Any] = {"name": lv.name, "class": lv.cls}
        if lv.subclass:
            out["subclass"] = lv.subclass
        out["attributes"] = a
        return out


def random_arch(rng: random.Random, sparse: bool) -> Arch:
    """2–4 storage levels, DRAM outermost, fan-out at one or two levels (depths set later)."""
    n = rng.choice([2, 3, 3, 4])
    levels: list[Level] = []
    names = {0: ["RF", "Reg", "LB"], 1: ["PEBuf", "LBuf", "Scratch"], 2: ["GLB", "SMEM"]}
    for i in range(n - 1):
        cls, sub = rng.choice(_INNER_CLASSES)
        dw = rng.choice([8, 8, 16])
        blocks = [1, 1, 2, 4] if not sparse else [1, 1, 2, 4, 8]
        if i == n - 2 and n > 2:
            blocks = [1, 2, 4, 8] if not sparse else [1, 2, 4, 8, 16]
        b = rng.choice(blocks)
        lv = Level(
            name=f"{rng.choice(names[min(i, 2)])}{i}",
            cls=cls,
            subclass=sub,
            datawidth=dw,
            width=dw * b,
            depth=1,
        )
        if rng.random() < 0.35:
            lv.read_bw = float(rng.choice([1, 2, 3, 4, 8]))
        if rng.random() < 0.35:
            lv.write_bw = float(rng.choice([1, 2, 3, 4, 8]))
        levels.append(lv)
    dw = rng.choice([8, 16])
    dram = Level("DRAM", "DRAM", None, dw, 64, depth=None)
    if rng.random() < 0.25:
        dram.read_bw = float(rng.choice([4, 8, 16]))
        dram.write_bw = dram.read_bw
    levels.append(dram)
    # fan-out at one or two levels (never above the DRAM: one DRAM instance)
    spatial_levels = rng.sample(range(n - 1), k=min(n - 1, rng.choice([0, 1, 1, 2])))
    if n - 1 >= 1 and rng.random() < 0.2:
        spatial_levels.append(n - 1)  # DRAM feeding several buffers directly
    for li in set(spatial_levels):
        fx = rng.choice([1, 2, 2, 3, 4, 4, 8])
        fy = rng.choice([1, 1, 1, 2, 4]) if rng.random() < 0.4 else 1
        if fx * fy == 1:
            fx = 2
        levels[li].fan_x, levels[li].fan_y = fx, fy
    return Arch(levels=levels, mac_class=rng.choice(["intmac", "intmac", "mac", "fpmac"]))


# --------------------------------------------------------------------------------------------
# mapping
# --------------------------------------------------------------------------------------------


@dataclass
class LevelMap:
    """One level's loops: temporal factors + permutation (inner to outer), spatial factors on X
    and Y + permutation, kept tensors."""

    temporal: dict[str, int]
    t_perm: list[str]
    sx: dict[str, int]
    sy: dict[str, int]
    keep: list[str]


def random_mapping(rng: random.Random, prob: Problem, arch: Arch) -> list[LevelMap]:
    """Random factorisation of every dimension over temporal and spatial loops of every level,
    random permutations and bypass choices (DRAM keeps everything)."""
    dims = list(prob.dims)
    n = len(arch.levels)
    maps = [
        LevelMap({d: 1 for d in dims}, rng.sample(dims, len(dims)), {}, {}, []) for _ in range(n)
    ]
    cap = {(i, ax): getattr(arch.levels[i], f"fan_{ax}") for i in range(n) for ax in "xy"}
    use_spatial = rng.random()
    for d in dims:
        for p in _primes(prob.dims[d]):
            slots: list[tuple[int, str]] = []
            for i in range(n):
                slots.append((i, "t"))
                for ax in "xy":
                    other = maps[i].sy if ax == "x" else maps[i].sx
                    # one axis per dimension and level (a spatial permutation lists it once)
                    if d in other or cap[(i, ax)] % p != 0:
                        continue
                    if rng.random() < 0.5 + use_spatial:
                        slots += [(i, ax)] * 2
            i, kind = rng.choice(slots)
            if kind == "t":
                maps[i].temporal[d] *= p
            else:
                sp = maps[i].sx if kind == "x" else maps[i].sy
                sp[d] = sp.get(d, 1) * p
                cap[(i, kind)] //= p
    for i, lm in enumerate(maps):
        if i == n - 1:
            lm.keep = list(prob.tensors)
        else:
            lm.keep = [t for t in prob.tensors if rng.random() < 0.7]
            if not lm.keep:
                lm.keep = [rng.choice(prob.tensors)]
    return maps


def extents_at(prob: Problem, maps: list[LevelMap], level: int) -> dict[str, int]:
    """Per-dimension extent of the loops at and inside storage level ``level``."""
    ext = {d: 1 for d in prob.dims}
    for i in range(level + 1):
        lm = maps[i]
        for d in prob.dims:
            ext[d] *= lm.temporal[d] * lm.sx.get(d, 1) * lm.sy.get(d, 1)
    return ext


def mapping_yaml(prob: Problem, arch: Arch, maps: list[LevelMap]) -> dict[str, Any]:
    """The ``mapping:`` document (datatype directives first, then loops inner to outer)."""
    out: list[dict[str, Any]] = []
    for i, lv in enumerate(arch.levels):
        lm = maps[i]
        out.append(
            {
                "target": lv.name,
                "type": "datatype",
                "keep": list(lm.keep),
                "bypass": [t for t in prob.tensors if t not in lm.keep],
            }
        )
    for i, lv in enumerate(arch.levels):
        lm = maps[i]
        if lv.fanout > 1:
            xs = [d for d in prob.dims if lm.sx.get(d, 1) > 1]
            ys = [d for d in prob.dims if d not in xs]
            fac = {d: lm.sx.get(d, 1) * lm.sy.get(d, 1) for d in prob.dims}
            out.append(
                {
                    "target": lv.name,
                    "type": "spatial",
                    "factors": " ".join(f"{d}{fac[d]}" for d in prob.dims),
                    "permutation": "".join(xs + ys),
                    "split": len(xs),
                }
            )
        out.append(
            {
                "target": lv.name,
                "type": "temporal",
                "factors": " ".join(f"{d}{lm.temporal[d]}" for d in prob.dims),
                "permutation": "".join(lm.t_perm),
            }
        )
    return {"mapping": out}


def keepers(maps: list[LevelMap], t: str) -> list[int]:
    """Storage levels keeping tensor ``t``, innermost first."""
    return [i for i, lm in enumerate(maps) if t in lm.keep]


# --------------------------------------------------------------------------------------------
# sparse optimizations
# --------------------------------------------------------------------------------------------

_UNCOMPRESSED = ("UOP", "UB")
_COMPRESSED = ("CP", "B", "RLE")


@dataclass
class SparseSpec:
    """Formats per (level, tensor) as rank dicts (outer to inner), action optimizations per
    level, compute optimization."""

    formats: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)
    actions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    compute: list[str] = field(default_factory=list)

    def to_yaml(self, arch: Arch, prob: Problem) -> dict[str, Any]:
        """The ``sparse_optimizations:`` document (levels outer to inner)."""
        targets = []
        for li in range(len(arch.levels) - 1, -1, -1):
            entry: dict[str, Any] = {"name": arch.levels[li].name}
            ds = [
                {"name": t, "ranks": self.formats[(li, t)]}
                for t in prob.tensors
                if (li, t) in self.formats
            ]
            if ds:
                entry["representation-format"] = {"data-spaces": ds}
            if li in self.actions:
                entry["action-optimization"] = self.actions[li]
            if len(entry) > 1:
                targets.append(entry)
        if self.compute:
            targets.append(
                {"name": "mac", "compute-optimization": [{"type": c} for c in self.compute]}
            )
        return {"sparse_optimizations": {"targets": targets}}


def _nontrivial_loops(
    prob: Problem, maps: list[LevelMap], t: str, top: int, bottom: int
) -> list[str]:
    """Dimensions of the non-trivial loops of levels ``top``..``bottom`` relevant to ``t``,
    outer to inner (per level: temporal outer to inner, then spatial)."""
    rel = set(prob.tensor_dims(t))
    out: list[str] = []
    for i in range(top, bottom - 1, -1):
        lm = maps[i]
        out += [d for d in reversed(lm.t_perm) if d in rel and lm.temporal[d] > 1]
        out += [d for d in prob.dims if d in rel and lm.sx.get(d, 1) * lm.sy.get(d, 1) > 1]
    return out


def _rank(fmt: str, rng: random.Random, md_bits_choices: tuple[int, ...]) -> dict[str, Any]:
    r: dict[str, Any] = {"format": fmt}
    if fmt != "UB" and rng.random() < 0.25:
        r["metadata-word-bits"] = rng.choice(md_bits_choices)
    return r


def random_formats(
    rng: random.Random, prob: Problem, arch: Arch, maps: list[LevelMap]
) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """Representation formats for some tensors along their keeper chains (see module doc)."""
    formats: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for t in prob.tensors:
        if rng.random() < (0.3 if t == prob.output else 0.7):
            continue
        chain = keepers(maps, t)  # inner first
        # compressed from some keeper up to the outermost one: an uncompressed level above a
        # compressed child aborts Timeloop (storage-optimization-combiner.cpp
        # CalculateDecompressionCompressionCost: on-chip compression is not modelled)
        lo = rng.randrange(len(chain))
        comp = chain[lo:]
        flat_all = rng.random() < 0.35
        flat_dims = prob.tensor_dims(t) if rng.random() < 0.5 else list(prob.dims)
        child_ranks: list[dict[str, Any]] | None = None
        for li in comp:
            ci = chain.index(li)
            child = chain[ci - 1] if ci > 0 else None
            bottom = child + 1 if child is not None else 0
            loops = _nontrivial_loops(prob, maps, t, li, bottom)
            if child_ranks is not None:
                # pre-tiling: new outer (uncompressed) ranks above the child's own ranks
                n_new = 1 if flat_all else max(1, len(loops))
                new = [{"format": rng.choice(_UNCOMPRESSED)} for _ in range(n_new)]
                if flat_all:
                    new[0] = {"format": "UOP", "flattened-rankIDs": [list(flat_dims)]}
                ranks = new + [dict(r) for r in child_ranks]
            elif flat_all:
                nr = rng.choice([1, 2, 2, 3])
                ranks = [
                    {
                        "format": "UOP" if k < nr - 1 else rng.choice(_COMPRESSED),
                        "flattened-rankIDs": [list(flat_dims)],
                    }
                    for k in range(nr)
                ]
            else:
                # one rank per non-trivial loop (+1 for an uncompressed child's single rank,
                # sometimes a spare), compressed ranks inside uncompressed ones
                total = max(1, len(loops)) + (1 if child is not None else 0)
                total += 1 if rng.random() < 0.25 else 0
                n_comp = rng.randint(1, total)
                fmts = [rng.choice(_UNCOMPRESSED) for _ in range(total - n_comp)]
                fmts += [rng.choice(_COMPRESSED) for _ in range(n_comp)]
                ranks = [_rank(f, rng, (2, 3, 4, 5, 8)) for f in fmts]
            formats[(li, t)] = ranks
            child_ranks = ranks
        # uncompressed keeper right below a compressed one must decompress (and compress
        # outputs on the way up)
        if lo > 0:
            below = arch.levels[chain[lo - 1]]
            below.decompression = True
            if t == prob.output:
                below.compression = True
    # metadata word bits: fixed per level later (needs the level's metadata width)
    return formats


def random_densities(rng: random.Random, prob: Problem) -> dict[str, tuple[str, float]]:
    """Fixed-structured or hypergeometric densities for the operands (sometimes the output)."""
    out: dict[str, tuple[str, float]] = {}
    for t in prob.tensors:
        if t == prob.output and rng.random() < 0.8:
            continue
        if rng.random() < 0.2:
            continue
        dist = rng.choice(["fixed-structured", "fixed-structured", "hypergeometric"])
        out[t] = (dist, rng.choice([0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9]))
    return out


def random_actions(
    rng: random.Random, prob: Problem, arch: Arch, maps: list[LevelMap], kind: str
) -> dict[int, list[dict[str, Any]]]:
    """Gating / skipping / spatial skipping directives, each on a level at or below a keeper of
    its target."""
    acts: dict[int, list[dict[str, Any]]] = {}
    typ = {"sparse_gating": "gating", "sparse_skipping": "skipping"}.get(kind)
    n_opts = rng.choice([1, 1, 2, 3])
    for _ in range(n_opts):
        t = rng.choice(prob.tensors)
        others = [x for x in prob.tensors if x != t and x != prob.output] or [
            x for x in prob.tensors if x != t
        ]
        cond = rng.sample(others, k=rng.choice([1, 1, 2]) if len(others) > 1 else 1)
        if kind == "spatial_skipping":
            spatial = [i for i, lv in enumerate(arch.levels) if lv.fanout > 1]
            if not spatial:
                typ_here = "skipping"
                li = rng.choice(keepers(maps, t))
            else:
                typ_here = "skipping-spatial"
                li = rng.choice(spatial)
        else:
            typ_here = typ or "gating"
            if kind == "sparse_format":
                typ_here = rng.choice(["gating", "skipping"])
            li = rng.choice(keepers(maps, t))
        acts.setdefault(li, []).append(
            {"type": typ_here, "options": [{"target": t, "condition-on": cond}]}
        )
    if kind == "spatial_skipping" and rng.random() < 0.5:
        # a temporal skipping as well, so spatial cases mix both
        t = rng.choice(prob.tensors)
        li = rng.choice(keepers(maps, t))
        cond = [x for x in prob.tensors if x != t][:1]
        acts.setdefault(li, []).append(
            {"type": "skipping", "options": [{"target": t, "condition-on": cond}]}
        )
    return acts


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


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, keys in insertion order."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(doc: dict[str, Any]) -> str:
    """YAML text as Timeloop's parser expects it."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


@dataclass
class Case:
    """A generated case before writing: its documents and description."""

    kind: str
    seed: int
    docs: dict[str, dict[str, Any]]  # file name -> document
    what: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        """Input files in Timeloop's argument order."""
        order = ["arch.yaml", "problem.yaml", "sparse_opt.yaml", "map.yaml", "ERT.yaml"]
        return [f for f in [*order, "ART.yaml"] if f in self.docs]

    def write(self, folder: str | Path) -> Path:
        """Write the case folder (files, ``inputs.txt``, ``case.json``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, doc in self.docs.items():
            (folder / name).write_text(dump_yaml(doc))
        (folder / "inputs.txt").write_text(" ".join(self.inputs) + "\n")
        info = {"kind": self.kind, "seed": self.seed, "what": self.what, **self.meta}
        info["input_files"] = self.inputs
        (folder / "case.json").write_text(json.dumps(info, indent=1) + "\n")
        return folder


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


def _walk_components(arch_doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        out.extend(node.get("local") or [])
        for s in node.get("subtree") or []:
            walk(s)

    for s in arch_doc["architecture"]["subtree"]:
        walk(s)
    return out


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


# --------------------------------------------------------------------------------------------
# negative cases
# --------------------------------------------------------------------------------------------

#: how each negative case breaks a valid one
NEGATIVE_KINDS: tuple[str, ...] = (
    "over_capacity",
    "fanout_exceeded",
    "factors_mismatch",
    "metadata_over_capacity",
)


def _fanout_below(arch_doc: dict[str, Any], level: str) -> int:
    """Instances of the subtree right below the node whose local list holds ``level``."""

    def walk(node: dict[str, Any]) -> int | None:
        names = [c.get("name") for c in node.get("local") or []]
        subs = node.get("subtree") or []
        if level in names:
            if not subs:
                return 1
            name = str(subs[0].get("name", ""))
            if "[" in name:
                lo, hi = name[name.index("[") + 1 : name.index("]")].split("..")
                return int(hi) - int(lo) + 1
            return 1
        for s in subs:
            r = walk(s)
            if r is not None:
                return r
        return None

    for s in arch_doc["architecture"]["subtree"]:
        r = walk(s)
        if r is not None:
            return r
    raise ValueError(f"no level {level!r}")


def _factors(text: str) -> dict[str, int]:
    out = {}
    for tok in text.split():
        i = next(k for k, ch in enumerate(tok) if ch.isdigit())
        out[tok[:i]] = int(tok[i:])
    return out


def make_negative(valid_folder: str | Path, how: str, out_folder: str | Path) -> Path:
    """Copy a valid case and break it ``how`` (see :data:`NEGATIVE_KINDS`); ValueError when
    this case cannot be broken that way.

    - ``over_capacity``: the innermost bounded level holding tiles gets one vector less than
      its tiles need (from the case's recorded ``timeloop.json`` utilized capacities);
    - ``fanout_exceeded``: temporal factors of a spatial level move to its spatial loops
      (tiles unchanged) until they exceed its fan-out;
    - ``factors_mismatch``: one temporal factor doubled;
    - ``metadata_over_capacity``: a metadata store of depth 1.
    """
    from oracle.stats import RunStats

    src, dst = Path(valid_folder), Path(out_folder)
    docs = {p.name: yaml.safe_load(p.read_text()) for p in src.glob("*.yaml")}
    arch_comps = _walk_components(docs["arch.yaml"])
    mapping = docs["map.yaml"]["mapping"]
    if how == "over_capacity":
        st = RunStats.from_json(src / "timeloop.json")
        for lv in st.levels:
            comp = next((c for c in arch_comps if c.get("name") == lv.name), None)
            a = (comp or {}).get("attributes", {})
            if "depth" not in a:
                continue
            need = sum(t.tile_size or 0 for t in lv.tensors.values())
            block = int(a["width"]) // int(a["datawidth"])
            if need > block:
                a["depth"] = math.ceil(need / block) - 1
                break
        else:
            raise ValueError("no bounded level with more than one vector of tiles")
    elif how == "fanout_exceeded":
        for d in mapping:
            if d["type"] != "spatial":
                continue
            fan = _fanout_below(docs["arch.yaml"], d["target"])
            temporal = next(
                x for x in mapping if x["type"] == "temporal" and x["target"] == d["target"]
            )
            sf, tf = _factors(d["factors"]), _factors(temporal["factors"])
            if math.prod(sf.values()) * math.prod(tf.values()) <= fan:
                continue
            for dim in tf:
                while tf[dim] > 1 and math.prod(sf.values()) <= fan:
                    p = _primes(tf[dim])[0]
                    tf[dim] //= p
                    sf[dim] *= p
            d["factors"] = " ".join(f"{k}{v}" for k, v in sf.items())
            d["split"] = len(d["permutation"])
            temporal["factors"] = " ".join(f"{k}{v}" for k, v in tf.items())
            break
        else:
            raise ValueError("no spatial level with enough temporal factors to overload")
    elif how == "factors_mismatch":
        for d in mapping:
            if d["type"] == "temporal":
                f = _factors(d["factors"])
                k = next(iter(f))
                f[k] *= 2
                d["factors"] = " ".join(f"{a}{b}" for a, b in f.items())
                break
    elif how == "metadata_over_capacity":
        for c in arch_comps:
            a = c.get("attributes", {})
            if "metadata_storage_depth" in a:
                a["metadata_storage_depth"] = 1
                break
        else:
            raise ValueError("no metadata store")
    else:
        raise ValueError(f"unknown negative kind {how!r}")
    dst.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (dst / name).write_text(dump_yaml(doc))
    (dst / "inputs.txt").write_text((src / "inputs.txt").read_text())
    info = json.loads((src / "case.json").read_text())
    info["negative"] = how
    (dst / "case.json").write_text(json.dumps(info, indent=1) + "\n")
    return dst
