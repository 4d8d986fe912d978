"""Benchmark: greedy TASD decomposition of a 4096x4096 float32 matrix, 70% random sparsity.

Prints the median wall time (ms) of ``decompose(W, "2:8+1:8")`` (the per-element term index),
of the same plus all metrics (``Decomposition.metrics()``), and of one ``np.abs(W).sum()`` pass,
all measured in the same run, and the ratios. Target (issue 2): decomposition <= 8x one pass.

    python benchmarks/bench_decompose.py [--repeats 7] [--size 4096] [--series 2:8+1:8]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from testy_model.tasd import decompose


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after one warm-up run, in ms."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--series", default="2:8+1:8")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    w = rng.standard_normal((args.size, args.size), dtype=np.float32)
    w[rng.random(w.shape) < 0.7] = 0.0

    t_pass = median_ms(lambda: np.abs(w).sum(), args.repeats)
    t_dec = median_ms(lambda: decompose(w, args.series), args.repeats)
    t_all = median_ms(lambda: decompose(w, args.series).metrics(), args.repeats)
    print(f"matrix {args.size}x{args.size} float32, 70% random sparsity, series {args.series}")
    print(f"np.abs(W).sum():          {t_pass:8.1f} ms")
    print(f"decompose (term index):   {t_dec:8.1f} ms   ratio {t_dec / t_pass:5.2f}x")
    print(f"decompose + all metrics:  {t_all:8.1f} ms   ratio {t_all / t_pass:5.2f}x")


if __name__ == "__main__":
    main()
