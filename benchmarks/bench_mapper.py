"""Mapper speed: median search time per distinct layer shape of a network, and a cached pass.

    python benchmarks/bench_mapper.py [--arch arch_specs/tc_dense.yaml] [--network resnet50]
                                      [--beam 16] [--patience 2] [--repeat 1] [--points 1000]

For each distinct layer shape (bounds and strides) of the network the search runs from a cold
cache; the median, mean and max wall-clock times, and the median CPU (process) time, are printed
with the number of candidates costed (on a shared machine the CPU time is the fairer figure).
Then the whole network (every layer, repeated shapes included) is mapped twice through the
cache: the first pass searches each distinct shape once, the second is all cache hits.
Targets (issue 6): median < 50 ms per layer; a cached network < 1 s end to end.

With ``--points N`` (N > 0) it also times a sweep's shared mapper on one layer shape (ResNet-50's
layer3 3x3 convolution as a GEMM, M=256 N=196 K=2304): N design points that differ in the
SMEM depth (1024/2048/4096/8192 words, cycled) and SMEM read energy (seeded, ×0.5..2);
candidates from ``candidate_nests`` (2,000 random ones plus the mapper's search at one point per
SMEM depth), then ``best_per_point`` over all N points in one batch; it prints both times and
how many point searches the batch replaces.
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

from testy_model.graph.zoo import get_network  # noqa: E402
from testy_model.mapper import beam as mapper  # noqa: E402
from testy_model.spec.arch import Architecture  # noqa: E402
from testy_model.spec.arch_loader import load_arch  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=str(ROOT / "arch_specs" / "tc_dense.yaml"))
    ap.add_argument("--network", default="resnet50")
    ap.add_argument("--beam", type=int, default=16)
    ap.add_argument("--patience", type=int, default=2, help="rounds without gain before stop")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per shape (min taken)")
    ap.add_argument("--points", type=int, default=0, help="also time best_per_point at N points")
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
    if args.points > 0:
        bench_points(arch, args.points)


def bench_points(arch: Architecture, n: int) -> None:
    """Time candidate generation and one batched ``best_per_point`` over ``n`` design points."""
    import numpy as np

    from testy_model.spec import gemm

    rng = np.random.default_rng(0)
    depths = (1024, 2048, 4096, 8192)

    def point(i: int) -> Architecture:
        e = float(rng.uniform(0.5, 2.0))
        levels = tuple(
            lv.model_copy(update={"depth": depths[i % 4], "read_energy": lv.read_energy * e})
            if lv.name == "SMEM"
            else lv
            for lv in arch.levels
        )
        return arch.model_copy(update={"name": f"p{i}", "levels": levels})

    points = [point(i) for i in range(n)]
    p = gemm(256, 196, 2304)
    t0, c0 = time.perf_counter(), time.process_time()
    cands = mapper.candidate_nests(p, arch, limit=2000, search_at=points[:4])
    t1, c1 = time.perf_counter(), time.process_time()
    res = mapper.best_per_point(p, points, cands)
    t2, c2 = time.perf_counter(), time.process_time()
    pairs = sum(r.evaluated for r in res)
    print(
        f"best_per_point, {n} points x 1 shape: candidates {len(cands)} in {t1 - t0:.2f} s "
        f"wall / {c1 - c0:.2f} s CPU (4 searches); batch of {pairs} (point, candidate) pairs "
        f"in {t2 - t1:.2f} s wall / {c2 - c1:.2f} s CPU, instead of {n} searches"
    )


if __name__ == "__main__":
    main()
