"""Wall time of each study notebook executed top to bottom (nbclient, as tests/test_notebooks.py
runs them), figures written to a temporary folder. Target: the four together < 5 min on 2 cores.

    python benchmarks/bench_notebooks.py [NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "tests"))

from test_notebooks import redirect_figures  # noqa: E402  (the tests' own redirection)


def run_notebook(path: Path, figures: Path) -> float:
    """Execute one notebook with ``FIG`` redirected to ``figures``; return its wall time (s)."""
    nb = nbformat.read(path, as_version=4)
    redirect_figures(nb, figures)
    t0 = time.perf_counter()
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="notebook stems (default: all)")
    args = ap.parse_args()
    paths = [NOTEBOOKS / f"{n}.ipynb" for n in args.names] or sorted(NOTEBOOKS.glob("*.ipynb"))
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            s = run_notebook(p, Path(tmp))
            total += s
            print(f"{p.stem}: {s:.1f} s")
    print(f"total: {total:.1f} s")


if __name__ == "__main__":
    main()
