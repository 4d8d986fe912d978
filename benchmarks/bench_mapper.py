"""Mapper speed: median search time per distinct layer shape of a network, and a cached pass.

    python benchmarks/bench_mapper.py [--arch arch_specs/tc_dense.yaml] [--network resnet50]
                                      [--beam 16] [--patience 2] [--repeat 1]

For each distinct layer shape (bounds and strides) of the network the search runs from a cold
cache; the median, mean and max wall-clock times, and the median CPU (process) time, are printed
with the number of candidates costed (on a shared machine the CPU time is the fairer figure).
Then the whole network (every layer, repeated shapes included) is mapped twice through the
cache: the first pass searches each distinct shape once, the second is all cache hits.
Targets (issue 6): median < 50 ms per layer; a cached network < 1 s end to end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testy_model import mapper  # noqa: E402
from testy_model.spec.arch_loader import load_arch  # noqa: E402
from testy_model.zoo import get_network  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=str(ROOT / "arch_specs" / "tc_dense.yaml"))
    ap.add_argument("--network", default="resnet50")
    ap.add_argument("--beam", type=int, default=16)
    ap.add_argument("--patience", type=int, default=2, help="rounds without gain before stop")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per shape (min taken)")
    args = ap.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(args.arch)
    net = get_network(args.network)
    distinct = {}
    for layer in net.layers:
        distinct.setdefault(mapper._problem_key(layer.problem), layer)
    print(
        f"{args.network}: {len(net.layers)} layers, {len(distinct)} distinct shapes; "
        f"arch {Path(args.arch).name}; beam {args.beam}, patience {args.patience}"
    )
    times, cpus, evals = [], [], []
    for layer in distinct.values():
        best, best_cpu = float("inf"), float("inf")
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            res = mapper.find_mapping(
                layer.problem, arch, beam=args.beam, patience=args.patience, use_cache=False
            )
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        times.append(best)
        cpus.append(best_cpu)
        evals.append(res.evaluated)
        print(
            f"  {layer.name:<22} {best * 1e3:7.1f} ms wall {best_cpu * 1e3:7.1f} ms CPU "
            f"{res.evaluated:6d} candidates  {res.method:<6} EDP {res.edp:.4g} pJ·s"
        )
    print(
        f"CPU time per distinct layer: median {statistics.median(cpus) * 1e3:.1f} ms "
        "(process time: what a search costs with a core to itself)"
    )
    print(
        f"search time per distinct layer: median {statistics.median(times) * 1e3:.1f} ms, "
        f"mean {statistics.mean(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms; "
        f"median {statistics.median(evals):.0f} candidates "
        f"({statistics.median(t / e for t, e in zip(times, evals, strict=True)) * 1e6:.1f} "
        "µs each)"
    )
    mapper.clear_cache()
    t0 = time.perf_counter()
    for layer in net.layers:
        mapper.find_mapping(layer.problem, arch, beam=args.beam, patience=args.patience)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for layer in net.layers:
        mapper.find_mapping(layer.problem, arch, beam=args.beam, patience=args.patience)
    cached = time.perf_counter() - t0
    print(
        f"whole network ({len(net.layers)} layers): first pass {first:.2f} s "
        f"({len(distinct)} searches), cached pass {cached * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
