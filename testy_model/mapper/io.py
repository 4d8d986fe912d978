"""Write a :class:`Mapping` as Timeloop-style mapping YAML (what ``load_mapping`` reads back).

The output is a ``mapping:`` list with, per level (outermost first), a ``datatype`` entry (keep
and bypass lists, when the mapping states them), a ``temporal`` entry (``factors`` like
``"M=4 N=1 K=16"`` covering every dimension, ``permutation`` inner to outer) and, where the level
has spatial loops, a ``spatial`` entry (factors, permutation, ``split``). Written with
``yaml.safe_dump``, so it loads with ``yaml.safe_load``.
"""

from __future__ import annotations

from typing import Any

import yaml

from testy_model.spec.mapping import Mapping


def mapping_entries(mapping: Mapping, dims: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The ``mapping:`` list entries of ``mapping`` (dims: order of the factor strings; default
    the order of each level's permutation, then any other dims named)."""
    out: list[dict[str, Any]] = []
    for lm in mapping.levels:
        names = list(dims or ())
        for d in (*lm.temporal_permutation, *lm.temporal, *lm.spatial):
            if d not in names:
                names.append(d)
        if lm.keep is not None or lm.bypass:
            entry: dict[str, Any] = {"target": lm.target, "type": "datatype"}
            if lm.keep is not None:
                entry["keep"] = list(lm.keep)
            entry["bypass"] = list(lm.bypass)
            out.append(entry)
        temporal = {
            "target": lm.target,
            "type": "temporal",
            "factors": " ".join(f"{d}={lm.temporal_factor(d)}" for d in names),
        }
        if lm.temporal_permutation:
            temporal["permutation"] = "".join(lm.temporal_permutation)
        out.append(temporal)
        if lm.spatial:
            sp_names = list(lm.spatial_permutation) + [
                d for d in lm.spatial if d not in lm.spatial_permutation
            ]
            spatial: dict[str, Any] = {
                "target": lm.target,
                "type": "spatial",
                "factors": " ".join(f"{d}={lm.spatial_factor(d)}" for d in sp_names),
                "permutation": "".join(sp_names),
            }
            if lm.split is not None:
                spatial["split"] = int(lm.split)
            out.append(spatial)
    return out


def dump_mapping(mapping: Mapping, dims: tuple[str, ...] | None = None, header: str = "") -> str:
    """Timeloop-style YAML text of ``mapping``; ``header`` lines are written as ``#`` comments.

    Permutation strings concatenate dimension names, so they round-trip through the loader only
    for one-letter dimension names (every GEMM and conv problem here); longer names are written
    as lists instead.
    """
    entries = mapping_entries(mapping, dims)
    for e in entries:
        perm = e.get("permutation")
        if perm is not None:
            parts = _perm_parts(e, mapping)
            if any(len(p) != 1 for p in parts):
                e["permutation"] = parts
    text = yaml.safe_dump({"mapping": entries}, sort_keys=False, default_flow_style=None)
    comments = "".join(f"# {line}\n" for line in header.splitlines()) if header else ""
    return comments + text


def _perm_parts(entry: dict[str, Any], mapping: Mapping) -> list[str]:
    lm = mapping.level(entry["target"])
    if entry["type"] == "temporal":
        return list(lm.temporal_permutation)
    return list(lm.spatial_permutation) + [d for d in lm.spatial if d not in lm.spatial_permutation]
