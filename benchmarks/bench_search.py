"""Wall time of README's main command (the ResNet-50 TASD search on stc_2of4_tasd, 80 % sparse,
budget 0.05) in a fresh interpreter: imports, mapper (one mapping per layer shape and candidate
class) and search included. Target: < 10 s.

    python benchmarks/bench_search.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cmd = [sys.executable, "-c", "from testy_model.cli import main; main()", "search",
           "--arch", str(ROOT / "arch_specs" / "stc_2of4_tasd.yaml"), "--network", "resnet50",
           "--weight-sparsity", "0.8", "--budget", "0.05", "-q"]  # fmt: skip
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        print(f"README main command: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
