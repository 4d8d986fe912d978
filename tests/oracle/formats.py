"""Word bits of each rank of each representation format in a case, as Timeloop v3.0.3 resolves
them (to turn its printed per-rank unit counts into bits; the stats file does not print bits).

Rules (``src/model/sparse-optimization-parser.cpp`` ``ParsePerRankSpec`` /
``AdjustFormatWordBits``; ``src/workload/format-models/*.cpp`` ``ParseSpecs``):

- a rank's ``metadata-word-bits`` / ``payload-word-bits`` default to "unspecified", except the
  bitmask format ``B`` whose metadata word is 1 bit; ``UB`` ignores both keys;
- unspecified -> the level's ``metadata_datawidth`` (or ``metadata_word_bits``; 0 if absent);
- a specified width that does not divide the level's ``metadata_storage_width`` is raised to the
  next width that does (searching up to twice the value; "adjust representation format word
  bits" warning), e.g. 3 -> 4 bits in a 4- or 8-bit-wide metadata store;
- a width above ``metadata_storage_width`` aborts Timeloop.

Ranks are listed outer to inner in the file; Timeloop numbers them inner to outer (rank 0 is the
last one listed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def _arch_levels(arch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{component name: attributes}`` of a v0.3 architecture tree (attributes inherited)."""
    out: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any], inherited: dict[str, Any]) -> None:
        attrs = {**inherited, **(node.get("attributes") or {})}
        for comp in node.get("local") or []:
            name = str(comp.get("name", "")).split("[")[0]
            out[name] = {**attrs, **(comp.get("attributes") or {})}
        for sub in node.get("subtree") or []:
            walk(sub, attrs)

    walk(arch.get("architecture", arch), {})
    return out


def adjust_word_bits(specified: int | None, default: int, storage_width: int) -> int:
    """Timeloop's effective word bits of one metadata/payload word (see module docstring)."""
    if specified is None:
        bits = default
    elif specified != 0 and storage_width % specified != 0:
        bits = specified
        while bits < specified * 2 and storage_width % bits != 0:
            bits += 1
    else:
        bits = specified
    if bits > storage_width:
        raise ValueError(f"format word bits {bits} > metadata storage width {storage_width}")
    return bits


def format_word_bits(case_dir: str | Path) -> dict[tuple[str, str], list[list[int]]]:
    """``{(level, tensor): [[metadata_bits, payload_bits] per rank, rank 0 innermost]}`` for
    every representation format in the case's sparse_opt.yaml (empty for a dense case)."""
    case_dir = Path(case_dir)
    sp = case_dir / "sparse_opt.yaml"
    if not sp.is_file():
        return {}
    arch = yaml.safe_load((case_dir / "arch.yaml").read_text()) or {}
    levels = _arch_levels(arch)
    opt = (yaml.safe_load(sp.read_text()) or {}).get("sparse_optimizations") or {}
    out: dict[tuple[str, str], list[list[int]]] = {}
    for tgt in opt.get("targets") or []:
        rf = tgt.get("representation-format")
        if not rf:
            continue
        attrs = levels.get(tgt["name"], {})
        default = int(attrs.get("metadata_datawidth", attrs.get("metadata_word_bits", 0)))
        width = int(attrs.get("metadata_storage_width", 0))
        for ds in rf.get("data-spaces") or []:
            ranks = []
            for r in reversed(ds.get("ranks") or []):
                fmt = str(r.get("format", "")).lower()
                md = r.get("metadata-word-bits")
                pl = r.get("payload-word-bits")
                if fmt == "ub":
                    md = pl = None
                elif fmt == "b" and md is None:
                    md = 1
                ranks.append(
                    [
                        adjust_word_bits(None if md is None else int(md), default, width),
                        adjust_word_bits(None if pl is None else int(pl), default, width),
                    ]
                )
            out[(tgt["name"], ds["name"])] = ranks
    return out
