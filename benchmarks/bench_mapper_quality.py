"""Mapper quality and cost per layer: mapped EDP, energy, cycles, candidates priced, CPU time.

    python benchmarks/bench_mapper_quality.py [--set resnet-tc] [--out now.json]
                                              [--compare base.json] [--rotate/--no-rotate]

Sets: ``resnet-tc`` (ResNet-50's distinct layers on tc_dense, the speed target's set), ``all``
(ResNet-50's distinct layers on tc_dense, stc_2of4_tasd and s2ta_tasd, and BERT-base's distinct
layers on stc_2of4_tasd). Each search runs from a cold cache (``use_cache=False``); the CPU time
is process time (fair on a shared machine). ``--out`` writes the rows as JSON; ``--compare``
reads an earlier ``--out`` file and prints, per row, the EDP ratio (now / then), whether the
chosen mapping is the same, and the geometric mean of the EDP ratios with the worst row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testy_model.graph.zoo import get_network  # noqa: E402
from testy_model.mapper.context import _problem_key  # noqa: E402
from testy_model.mapper.search import find_mapping  # noqa: E402
from testy_model.spec.arch_loader import load_arch  # noqa: E402

_SETS: dict[str, list[tuple[str, str]]] = {
    "resnet-tc": [("resnet50", "tc_dense")],
    "all": [
        ("resnet50", "tc_dense"),
        ("resnet50", "stc_2of4_tasd"),
        ("resnet50", "s2ta_tasd"),
        ("bert-base", "stc_2of4_tasd"),
    ],
}


def run(pairs: list[tuple[str, str]], rotate: bool) -> list[dict[str, Any]]:
    """One row per (network, engine, distinct layer): the search's result and its cost."""
    rows = []
    for network, engine in pairs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arch = load_arch(ROOT / "arch_specs" / f"{engine}.yaml")
        distinct: dict[Any, Any] = {}
        for layer in get_network(network).layers:
            distinct.setdefault(_problem_key(layer.problem), layer)
        for layer in distinct.values():
            c0 = time.process_time()
            res = find_mapping(layer.problem, arch, use_cache=False, rotate=rotate)
            cpu = time.process_time() - c0
            digest = hashlib.sha1(res.mapping.model_dump_json().encode()).hexdigest()[:12]
            rows.append(
                {
                    "key": f"{network}/{engine}/{layer.name}",
                    "edp": res.edp,
                    "energy_pj": res.energy_pj,
                    "cycles": res.cycles,
                    "evaluated": res.evaluated,
                    "cpu_ms": cpu * 1e3,
                    "method": res.method,
                    "mapping": digest,
                }
            )
            print(
                f"{rows[-1]['key']:<48} {cpu * 1e3:7.1f} ms {res.evaluated:6d} cand "
                f"EDP {res.edp:.6g} {digest}",
                flush=True,
            )
    return rows


def summary(rows: list[dict[str, Any]]) -> None:
    """Median CPU ms and candidates per (network, engine)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["key"].rsplit("/", 1)[0], []).append(r)
    for g, rs in groups.items():
        print(
            f"{g:<28} median {statistics.median(r['cpu_ms'] for r in rs):7.1f} ms CPU, "
            f"median {statistics.median(r['evaluated'] for r in rs):7.0f} candidates, "
            f"{len(rs)} layers"
        )


def compare(rows: list[dict[str, Any]], base: list[dict[str, Any]]) -> None:
    """EDP ratio now / then per row, same-mapping flags, geometric mean and worst row."""
    then = {r["key"]: r for r in base}
    ratios = []
    for r in rows:
        b = then.get(r["key"])
        if b is None:
            continue
        q = r["edp"] / b["edp"]
        ratios.append((q, r["key"]))
        flag = "same" if r["mapping"] == b["mapping"] else "DIFF"
        if flag == "DIFF" or q != 1.0:
            print(f"  {r['key']:<48} EDP x{q:.4f} {flag}  cand {b['evaluated']}->{r['evaluated']}")
    if ratios:
        gm = math.exp(sum(math.log(q) for q, _ in ratios) / len(ratios))
        worst = max(ratios)
        same = sum(
            1 for r in rows if r["key"] in then and r["mapping"] == then[r["key"]]["mapping"]
        )
        print(
            f"geomean EDP ratio {gm:.5f} over {len(ratios)} rows; worst x{worst[0]:.4f} "
            f"({worst[1]}); {same} identical mappings"
        )
        for g in sorted({k.rsplit("/", 1)[0] for _, k in ratios}):
            sub = [q for q, k in ratios if k.startswith(g + "/")]
            gg = math.exp(sum(math.log(q) for q in sub) / len(sub))
            print(f"  {g:<28} geomean {gg:.5f} worst x{max(sub):.4f}")


def main(argv: list[str] | None = None) -> None:
    """Run the set, print the table, optionally write / compare JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="resnet-tc", choices=sorted(_SETS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--compare", default=None)
    ap.add_argument("--no-rotate", action="store_true")
    args = ap.parse_args(argv)
    rows = run(_SETS[args.set], rotate=not args.no_rotate)
    summary(rows)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    if args.compare:
        compare(rows, json.loads(Path(args.compare).read_text()))


if __name__ == "__main__":
    main()
