"""Building blocks of a generated case: the problem, the architecture tree, the mapping, and
the :class:`Case` that writes Timeloop v0.3 files (see :mod:`oracle.gen` for the validity rules
they meet)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


def _walk_components(arch_doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        out.extend(node.get("local") or [])
        for s in node.get("subtree") or []:
            walk(s)

    for s in arch_doc["architecture"]["subtree"]:
        walk(s)
    return out
