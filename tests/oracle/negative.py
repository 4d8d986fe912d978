"""Negative cases: valid generated cases broken on purpose, to record what Timeloop does with
them (it exits with status 1 and an ``ERROR: couldn't map level ...`` line) and to check that
the project refuses them too."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from oracle.cases import _primes, _walk_components, dump_yaml

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
