"""Mapper search cost split: the cost core's pricing versus the search skeleton around it.

    python benchmarks/bench_mapper_skeleton.py [--arch arch_specs/tc_dense.yaml]
                                               [--network resnet50] [--repeat 3]
                                               [--compare OTHER_CHECKOUT]

For each distinct layer shape of the network, ``find_mapping`` runs from a cold cache (beam 16,
patience 2, as ``bench_mapper.py``) and its CPU (process) time is split into the time spent in
the cost core's ``model.cost.price`` (wrapped with a process-time timer) and the rest, the
skeleton (start pool, neighbourhoods, dedup, validity, selection, loop nests). Per repeat it
prints the mean total, pricing and skeleton CPU ms per search and the median total, with the
candidates priced summed over the layers (the same search prices the same candidates).

``--compare DIR`` alternates runs of this checkout and of another checkout ``DIR`` (each in a
fresh interpreter, importing that tree's ``testy_model``), so both see the same machine load;
the candidate totals must agree when the two make the same searches.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(root: Path, arch_path: str, network: str, repeat: int) -> None:
    """Run the searches with ``root``'s ``testy_model`` and print one line per repeat."""
    sys.path.insert(0, str(root))
    import testy_model.model.cost as cost_mod
    from testy_model.graph.zoo import get_network
    from testy_model.mapper import beam as mapper
    from testy_model.spec.arch_loader import load_arch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(arch_path)
    distinct = {}
    for layer in get_network(network).layers:
        distinct.setdefault(mapper._problem_key(layer.problem), layer)
    spent = [0.0]
    price = cost_mod.price

    def timed_price(*args: object, **kw: object) -> object:
        c0 = time.process_time()
        try:
            return price(*args, **kw)
        finally:
            spent[0] += time.process_time() - c0

    cost_mod.price = timed_price  # layer_evaluator imports price when it builds the stage
    for _ in range(repeat):
        totals, priced, evaluated = [], [], 0
        for layer in distinct.values():
            spent[0] = 0.0
            c0 = time.process_time()
            res = mapper.find_mapping(layer.problem, arch, beam=16, patience=2, use_cache=False)
            totals.append(time.process_time() - c0)
            priced.append(spent[0])
            evaluated += res.evaluated
        n = len(totals)
        total, pricing = sum(totals) / n * 1e3, sum(priced) / n * 1e3
        print(
            f"{root.name:<12} per search: total {total:6.2f} ms CPU, pricing {pricing:6.2f}, "
            f"skeleton {total - pricing:6.2f}; median total {statistics.median(totals) * 1e3:6.1f}"
            f" ms; {evaluated} candidates over {n} layers"
        )


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments; measure here, or alternate with ``--compare``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=str(ROOT / "arch_specs" / "tc_dense.yaml"))
    ap.add_argument("--network", default="resnet50")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compare", default=None, help="another checkout to alternate with")
    ap.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compare is None:
        measure(Path(args.root), args.arch, args.network, args.repeat)
        return
    for _ in range(args.repeat):
        for root in (ROOT, Path(args.compare).resolve()):
            cmd = [sys.executable, __file__, "--root", str(root), "--repeat", "1"]
            cmd += ["--arch", args.arch, "--network", args.network]
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
