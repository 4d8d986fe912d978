"""Bit-for-bit fingerprints of the mapper's pricing, to check that a speed-up of the cost core
changes no number.

    python benchmarks/fingerprint_pricing.py record OUT.json [--quick]
    python benchmarks/fingerprint_pricing.py compare A.json B.json

``record`` runs ``find_mapping`` (no cache) on every distinct layer of ResNet-50, BERT-base,
ViT-B/16 and the LLaMA block on tc_dense, stc_2of4_tasd and s2ta_tasd (ResNet-50 on tc_dense
also for the energy and latency objectives), and three ResNet-50 layers with 2:4 weights on
stc_2of4 (the sparse stage), and writes per search: the chosen mapping, its totals (float hex)
and the candidate count, and a SHA-1 of every priced batch's cost arrays (cycles, energy, EDP,
validity, reads/fills/updates, metadata, level cycles, energy by tensor, utilized instances).
``--quick``: ResNet-50 on the three engines only. ``compare`` exits 1 when any search differs.
Run ``record`` on the code before and after a change, then ``compare``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import testy_model.model.cost as cost_mod  # noqa: E402
from testy_model.graph.zoo import get_network  # noqa: E402
from testy_model.mapper import beam as mapper  # noqa: E402
from testy_model.spec.arch_loader import load_arch  # noqa: E402
from testy_model.spec.workload import Density  # noqa: E402

FIELDS = ("cycles", "energy_pj", "edp", "valid", "reads", "fills", "updates", "metadata_reads",
          "metadata_fills", "level_cycles", "energy_by_tensor", "utilized")  # fmt: skip
BATCHES: list[str] = []
_price = cost_mod.price


def _fingerprinted(*args: Any, **kwargs: Any) -> Any:
    """``price``, recording a SHA-1 of the bytes of its cost arrays."""
    out = _price(*args, **kwargs)
    h = hashlib.sha1()
    for f in FIELDS:
        x = getattr(out, f)
        if x is not None:
            x = np.ascontiguousarray(x)
            h.update(f"{f}{x.shape}".encode())
            h.update(x.tobytes())
    BATCHES.append(h.hexdigest())
    return out


def _search(problem: Any, arch: Any, objective: str = "edp") -> dict[str, Any]:
    start = len(BATCHES)
    r = mapper.find_mapping(problem, arch, objective=objective, use_cache=False)  # type: ignore[arg-type]
    tot = [r.cycles.hex(), r.energy_pj.hex(), r.edp.hex()]
    return {"map": repr(r.mapping), "tot": tot, "n": r.evaluated, "batches": BATCHES[start:]}


def record(out: Path, quick: bool) -> None:
    """Fingerprint the searches (module docstring) into ``out``."""
    cost_mod.price = _fingerprinted  # type: ignore[assignment]
    warnings.simplefilter("ignore")
    nets = ["resnet50"] if quick else ["resnet50", "bert-base", "vit-b16", "llama-block"]
    res: dict[str, Any] = {}
    c0 = time.process_time()
    for name in ("tc_dense", "stc_2of4_tasd", "s2ta_tasd"):
        arch = load_arch(ROOT / "arch_specs" / f"{name}.yaml")
        for net in nets:
            layers = {mapper._problem_key(x.problem): x for x in get_network(net).layers}
            full = not quick and net == "resnet50" and name == "tc_dense"
            for layer in layers.values():
                for obj in ("edp", "energy", "latency") if full else ("edp",):
                    res[f"{name}/{net}/{layer.name}/{obj}"] = _search(layer.problem, arch, obj)
    if not quick:
        arch = load_arch(ROOT / "arch_specs" / "stc_2of4.yaml")
        nm = Density(kind="nm", pattern="2:4", density=0.5)
        layers = {mapper._problem_key(x.problem): x for x in get_network("resnet50").layers}
        for layer in list(layers.values())[1:4]:
            dens = {**layer.problem.densities, "Weights": nm}
            res[f"sparse/{layer.name}"] = _search(
                layer.problem.model_copy(update={"densities": dens}), arch
            )
    out.write_text(json.dumps(res, indent=0))
    print(
        f"{len(res)} searches, {len(BATCHES)} priced batches, "
        f"{time.process_time() - c0:.1f} s CPU -> {out}"
    )


def compare(a: Path, b: Path) -> int:
    """Number of searches whose fingerprints differ between two records (printed)."""
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    if x.keys() != y.keys():
        print("the records hold different searches")
        return 1
    bad = [k for k in x if x[k] != y[k]]
    n = sum(len(v["batches"]) for v in x.values())
    print(f"{len(x)} searches, {n} priced batches compared; {len(bad)} differ")
    for k in bad[:10]:
        print(" ", k, {f: x[k][f] == y[k][f] for f in ("map", "tot", "n", "batches")})
    return len(bad)


def main(argv: list[str] | None = None) -> None:
    """Command line (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--quick", action="store_true")
    cmp = sub.add_parser("compare")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "record":
        record(args.out, args.quick)
    else:
        sys.exit(1 if compare(args.a, args.b) else 0)


if __name__ == "__main__":
    main()
