"""Benchmark: a 1,000-point design-space sweep of ResNet-50 with the mapper on, on every core.

The sweep (``examples/sweeps/resnet50_1000.yaml``) varies five numbers of the 2:4 sparse tensor
core with a TASD unit — SMEM depth, RF depth, DRAM and SMEM read bandwidth, clock frequency —
over 5 × 5 × 4 × 2 × 5 = 1,000 points, ResNet-50 (54 layers, 24 distinct shapes) at 80 %
unstructured weight sparsity under a fixed TASD weight plan. Every point maps every layer (the
shared-candidate mapper of :mod:`testy_model.dse`) and sums the network.

Prints wall seconds and points per second for a cold run (fresh worker processes: each builds
its candidate mappings once), and a check that a second, resumed run recomputes nothing.
Target (issue 8): under 60 s on this machine's two cores.

    python benchmarks/bench_sweep.py [--backend local|dask|serial] [--workers N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from testy_model.dse import expand_points, load_sweep, sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "examples" / "sweeps" / "resnet50_1000.yaml"


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default=str(SWEEP))
    parser.add_argument("--backend", default="local")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", default=None, help="folder for the results (default: a temp dir)")
    args = parser.parse_args()

    spec = load_sweep(args.sweep)
    n = len(expand_points(spec))
    tmp = Path(args.out or tempfile.mkdtemp(prefix="bench_sweep_"))
    out = tmp / "results.parquet"
    for p in (out, out.with_name(out.name + ".parts")):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    workers = args.workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    df = sweep(args.sweep, out, backend=args.backend, workers=workers, progress=False)
    cold = time.perf_counter() - t0
    t1 = time.perf_counter()
    again = sweep(args.sweep, out, backend=args.backend, workers=workers, progress=False)
    resumed = time.perf_counter() - t1
    print(f"sweep: {args.sweep}")
    print(
        f"points: {n} ({int(df['valid'].sum())} valid), backend {args.backend}, {workers} workers"
    )
    print(f"cold run: {cold:.1f} s = {n / cold:.1f} points/s (target: < 60 s)")
    print(f"re-run (all points already written): {resumed:.2f} s, identical: {df.equals(again)}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
