"""Attribution of differences to known classes of discrepancy (``docs/oracle_report.md``).

:func:`classify_case` labels every quantity of one compared case that is beyond tolerance with
the class whose structural condition the case meets (checked on the case's own files), e.g. a
read count at a tensor's innermost keeper in a case with a spatial fan-out to the MACs is
``mac_operand_reuse``. The labels are heuristics that the minimal cases under
``tests/data/timeloop_minimal/<class>/`` demonstrate in isolation; a quantity that meets no
condition is ``unexplained``. :data:`CLASSES` describes each class (Timeloop's rule and the
project function that differs).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from oracle.compare import CaseComparison, QuantityDiff

#: class -> one-line description (the report has the rules in full)
CLASSES: dict[str, str] = {
    "mac_operand_reuse": "spatial fan-out to the MACs: Timeloop counts a tensor's accesses at its "
    "innermost keeper per change of the MAC's coordinate, not per MAC operation",
    "tile_delta": "fills/parent reads of a tile: Timeloop's delta between consecutive child "
    "tiles (sliding windows, extrapolated iterations #0/#1 of each loop)",
    "output_first_fill": "sparse path counts the first fill of every output tile (Sparseloop-2022 "
    "convention); Timeloop fills only carry partial sums back",
    "stream_counted": "a tensor a level does not keep but the mapping lists under `stream:` is "
    "counted there (Sparseloop-2022 convention); Timeloop v3.0.3 ignores `stream:`",
    "skip_gate_granularity": "skipping/gating probability: Timeloop's condition tile (target loop "
    "mold scaled to the target level's block size, fixed-structured floor/ceil occupancy)",
    "compute_optimization": "compute actual/gated/skipped: Timeloop's operand states (EZ/ENZ/NE "
    "by metadata at the operand's innermost keeper) and floor rounding",
    "action_propagation": "skipped/gated counts propagated to other levels/tensors "
    "(PropagateImpactOfExplicitlyOptimizedRead)",
    "spatial_skipping": "skipping-spatial: Timeloop's spatial-expansion reduction",
    "format_metadata": "metadata/payload units per rank of a representation format",
    "metadata_parent_elision": "a level below a level holding the tensor with metadata reads and "
    "fills only non-empty tiles (algorithmic counts x P(tile non-empty))",
    "cycles_from_compute": "cycles follow a different count of actual + gated computes",
    "cycles_bandwidth": "bandwidth throttling: Timeloop's per-level demand (ceil per instance, "
    "gated accesses and format bits included)",
    "vector_rounding": "sparse path prices fractional vectors; Timeloop ceil(count / block) per "
    "tensor and action",
    "energy_pricing": "energy differs while every count of the level agrees (other pricing)",
    "energy_from_counts": "energy follows a count of the same level that differs",
    "missing_in_ours": "a quantity Timeloop prints that the project's JSON lacks",
    "unexplained": "no class's condition holds",
}

_REL = {
    "A": "MK",
    "B": "NK",
    "Z": "MN",
    "Weights": "CMRS",
    "Inputs": "NCRSPQ",
    "Outputs": "NMPQ",
}


def _factors(text: str) -> dict[str, int]:
    out = {}
    for tok in str(text).split():
        m = re.match(r"([A-Za-z]+)\s*=?\s*(\d+)", tok)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


@dataclass
class CaseShape:
    """What the classifier needs of a case's files: storage levels inner to outer, keeps,
    loops, bandwidths, sparse optimizations."""

    levels: list[str]
    keep: dict[str, set[str]]
    temporal: dict[str, dict[str, int]]
    spatial: dict[str, dict[str, int]]
    bandwidth: set[str]
    block: dict[str, int]
    actions: dict[str, list[tuple[str, str, list[str]]]] = field(default_factory=dict)
    formats: set[tuple[str, str]] = field(default_factory=set)
    compute_opt: bool = False
    output: str = "Z"
    stream: dict[str, set[str]] = field(default_factory=dict)

    def innermost_keeper(self, tensor: str) -> str | None:
        """The innermost level keeping ``tensor``."""
        return next((lv for lv in self.levels if tensor in self.keep.get(lv, set())), None)

    @property
    def spatial_to_mac(self) -> bool:
        """A non-trivial spatial loop right above the MACs."""
        return math.prod(self.spatial.get(self.levels[0], {}).values() or [1]) > 1


def load_shape(case_dir: str | Path, level_names: list[str]) -> CaseShape:
    """Read a case folder (v0.3 files); ``level_names`` inner to outer (from the stats)."""
    d = Path(case_dir)
    mapping = yaml.safe_load((d / "map.yaml").read_text())["mapping"]
    keep: dict[str, set[str]] = {lv: set() for lv in level_names}
    prob = yaml.safe_load((d / "problem.yaml").read_text())["problem"]
    tensors = [ds["name"] for ds in prob["shape"]["data-spaces"]]
    output = next(
        (ds["name"] for ds in prob["shape"]["data-spaces"] if ds.get("read-write")), tensors[-1]
    )
    for lv in level_names:
        keep[lv] = set(tensors)
    temporal: dict[str, dict[str, int]] = {}
    spatial: dict[str, dict[str, int]] = {}
    shape_stream: dict[str, set[str]] = {}
    for e in mapping:
        t = e.get("target")
        if e.get("stream"):
            stream_of = set(e.get("stream") or [])
            shape_stream[t] = stream_of
        if e.get("type") in ("datatype", "bypass"):
            keep[t] = set(e.get("keep") or []) or (
                set(tensors) - set(e.get("bypass") or []) if e.get("bypass") else keep[t]
            )
        elif e.get("type") == "temporal":
            temporal[t] = _factors(e.get("factors", ""))
        elif e.get("type") == "spatial":
            spatial[t] = _factors(e.get("factors", ""))
    arch_txt = (d / "arch.yaml").read_text()
    arch = yaml.safe_load(arch_txt)
    bw: set[str] = set()
    block: dict[str, int] = {}

    def walk(node: dict[str, Any]) -> None:
        for c in node.get("local") or []:
            a = c.get("attributes") or {}
            name = str(c.get("name", "")).split("[")[0]
            if any(k in a for k in ("read_bandwidth", "write_bandwidth", "shared_bandwidth")):
                bw.add(name)
            w = a.get("width", a.get("data_storage_width"))
            if w and a.get("datawidth"):
                block[name] = int(w) // int(a["datawidth"])
        for s in node.get("subtree") or []:
            walk(s)

    walk(arch.get("architecture", {}))
    shape = CaseShape(level_names, keep, temporal, spatial, bw, block, output=output)
    shape.stream = shape_stream
    sp = d / "sparse_opt.yaml"
    if sp.is_file():
        opt = (yaml.safe_load(sp.read_text()) or {}).get("sparse_optimizations") or {}
        for tgt in opt.get("targets") or []:
            for ao in tgt.get("action-optimization") or []:
                for o in ao.get("options") or [ao]:
                    shape.actions.setdefault(tgt["name"], []).append(
                        (ao.get("type", ""), o.get("target", ""), list(o.get("condition-on") or []))
                    )
            for ds in (tgt.get("representation-format") or {}).get("data-spaces") or []:
                shape.formats.add((tgt["name"], ds["name"]))
            if tgt.get("compute-optimization"):
                shape.compute_opt = True
    return shape


def missing_formats(cmp: CaseComparison, level: str | None) -> list[QuantityDiff]:
    """Format quantities of ``level`` (all levels if None) that ours lacks."""
    return [
        x
        for x in cmp.diffs
        if ".format_" in x.name
        and x.rel is None
        and (level is None or x.name.startswith(level + "."))
    ]


def _label(d: QuantityDiff, shape: CaseShape, kind_of_case: str, cmp: CaseComparison) -> str:
    if d.rel is None:
        return "missing_in_ours"
    parts = d.name.split(".")
    if parts[0] == "compute":
        return "compute_optimization" if shape.compute_opt or shape.actions else "unexplained"
    if parts[0] == "cycles":
        comp = {x.name: x for x in cmp.diffs if x.name.startswith("compute.")}
        actual, gated = comp.get("compute.actual"), comp.get("compute.gated")
        alg = comp.get("compute.algorithmic")
        if actual is not None and not actual.within_tolerance:
            return "cycles_from_compute"
        if gated is not None and gated.timeloop:
            return "cycles_from_compute"  # gated computes take cycles
        if actual is not None and alg is not None and (actual.timeloop or 0) < (alg.timeloop or 0):
            return "cycles_from_compute"  # only actual + gated computes take cycles
        return "cycles_bandwidth" if shape.bandwidth else "unexplained"
    if parts[0] == "energy_pj" or (len(parts) == 2 and parts[1] == "energy_pj"):
        level = parts[0] if len(parts) == 2 else None
        counts = [
            x
            for x in cmp.diffs
            if (level is None or x.name.startswith(level + "."))
            and len(x.name.split(".")) >= 3
            and x.rel is not None
        ]
        if any(not x.within_tolerance for x in counts if ".format_" not in x.name):
            return "energy_from_counts"
        if any(".format_" in x.name and x.timeloop for x in counts + missing_formats(cmp, level)):
            return "format_metadata"
        if kind_of_case not in ("dense_gemm", "dense_conv"):
            blocks = [shape.block.get(lv, 1) for lv in ([level] if level else shape.levels)]
            if max(blocks) > 1:
                return "vector_rounding"
        return "energy_pricing"
    level, tensor, what = parts[0], parts[1], ".".join(parts[2:])
    if d.timeloop is None and tensor in shape.stream.get(level, set()):
        return "stream_counted"
    if what.startswith("format_"):
        return "format_metadata"
    kind = what.split(".")[0]
    split = what.split(".")[1] if "." in what else ""
    acts = [a for lv_acts in shape.actions.values() for a in lv_acts]
    spatial_targets = {a[1] for a in acts if a[0] == "skipping-spatial"}
    if tensor in spatial_targets and (split or kind == "reads"):
        return "spatial_skipping"
    more = (d.ours or 0) > (d.timeloop or 0)
    dense_case = kind_of_case in ("dense_gemm", "dense_conv")
    if tensor == shape.output and kind == "fills" and more and not dense_case:
        return "output_first_fill"
    targets = {a[1] for a in acts}
    if split in ("skipped", "gated") or (tensor in targets and kind in ("reads", "updates")):
        lv_acts = [a for a in shape.actions.get(level, []) if a[1] == tensor]
        if lv_acts and shape.block.get(level, 1) > 1:
            return "skip_gate_granularity"
        if lv_acts:
            return "skip_gate_granularity"
        return "action_propagation"
    if kind in ("reads", "fills") and (level, tensor) not in shape.formats and more:
        outer = shape.levels[shape.levels.index(level) + 1 :] if level in shape.levels else []
        if any((lv, tensor) in shape.formats for lv in outer):
            return "metadata_parent_elision"
    inner = shape.innermost_keeper(tensor)
    if shape.spatial_to_mac and inner == level and kind in ("reads", "updates"):
        return "mac_operand_reuse"
    if kind == "fills" or (kind == "reads" and inner != level):
        return "tile_delta"
    if tensor == shape.output and kind in ("reads", "updates") and inner != level:
        return "tile_delta"
    if shape.actions:
        return "action_propagation"
    return "unexplained"


def classify_case(
    cmp: CaseComparison, case_dir: str | Path, level_names: list[str], threshold: float = 0.01
) -> dict[str, list[str]]:
    """``{class: [quantity, ...]}`` for the quantities of ``cmp`` beyond ``threshold`` (relative;
    missing ones included)."""
    shape = load_shape(case_dir, level_names)
    out: dict[str, list[str]] = {}
    for d in cmp.diffs + cmp.extra:
        if d.bucket == "timeloop_invalid":
            continue
        if d.rel is not None and abs(d.rel) <= threshold:
            continue
        if d.rel is None and d.name.split(".")[-1] in ("algorithmic",):
            continue  # not in the JSON contract yet: reported as coverage, not as a cause
        out.setdefault(_label(d, shape, cmp.kind, cmp), []).append(d.name)
    return out


def tally(per_case: dict[str, dict[str, list[str]]]) -> Counter[str]:
    """How many cases each class explains part of."""
    c: Counter[str] = Counter()
    for classes in per_case.values():
        c.update(classes.keys())
    return c
