"""Benchmark: the command line as a user meets it, one whole process per run.

Prints
- ``testy-model --help``: median CPU time (user + system, s) and wall time over the runs;
- a one-case ``testy-model eval FILES`` against ``timeloop-model FILES -o DIR`` on the same
  Timeloop v3.0.3 case (``../shared/timeloop_v3_cases/<case>``, its ``inputs.txt`` order): median
  wall and CPU time of each and the ratio ours / timeloop-model (target: <= 1.0);
- the floor: a process that only imports the libraries ``eval`` needs at all (numpy, networkx,
  pydantic, PyYAML, typer, rich) and defines one pydantic model, which no change inside this
  package can go below.

Python's bytecode is compiled into a temporary ``PYTHONPYCACHEPREFIX`` by one warm-up run of each
command (an environment with ``PYTHONDONTWRITEBYTECODE`` would otherwise recompile the package on
every run), so the figures are those of an installed package. CPU time is the children's
``getrusage``; on a shared machine it is the fairer figure, wall time the one a user waits.

    python benchmarks/bench_cli.py [--runs 7] [--case a03_STC_M256-K2304-N196_Ad0.5]
        [--shared ../shared]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MAIN = "import sys; from testy_model.cli import main; sys.argv[0] = 'testy-model'; main()"
_FLOOR_LIBS = "numpy, networkx, pydantic, yaml, typer, rich.console, rich.table"
#: The floor also defines one pydantic model: pydantic imports its machinery on first use.
_FLOOR = f"import {_FLOOR_LIBS}\nclass _M(pydantic.BaseModel):\n    x: int = 0"


def shared_dir(given: str | None) -> Path:
    """The shared folder: ``--shared``, else the first of ``ROOT/../shared`` and ``/work/shared``
    that holds ``timeloop_v3_cases``."""
    candidates = [Path(given)] if given else [ROOT.parent / "shared", Path("/work/shared")]
    for c in candidates:
        if (c / "timeloop_v3_cases").is_dir():
            return c
    raise SystemExit(f"no timeloop_v3_cases under {', '.join(map(str, candidates))}")


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd`` to completion (output discarded); ``(wall s, user + system CPU s)``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = proc.stderr.decode()[-500:]
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def median_run(cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``runs`` runs after one warm-up run."""
    run_once(cmd, cwd, env)
    walls, cpus = zip(*(run_once(cmd, cwd, env) for _ in range(runs)), strict=True)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--case", default="a03_STC_M256-K2304-N196_Ad0.5")
    parser.add_argument("--shared", default=None)
    args = parser.parse_args()
    shared = shared_dir(args.shared)
    case = shared / "timeloop_v3_cases" / args.case
    files = (case / "inputs.txt").read_text().split()
    timeloop = shared / "tools" / "timeloop-v3.0.3" / "timeloop-model"

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        py = [sys.executable, "-c"]
        help_wall, help_cpu = median_run([*py, _MAIN, "--help"], Path(tmp), env, args.runs)
        ours_wall, ours_cpu = median_run([*py, _MAIN, "eval", *files], case, env, args.runs)
        floor_wall, floor_cpu = median_run([*py, _FLOOR], Path(tmp), env, args.runs)
        out = Path(tmp) / "timeloop"
        out.mkdir()
        tl = [str(timeloop), *files, "-o", str(out)]
        tl_wall, tl_cpu = median_run(tl, case, env, args.runs)

    print(f"runs per figure: {args.runs} (medians); case {args.case}")
    print(f"testy-model --help:     CPU {help_cpu:.3f} s, wall {help_wall:.3f} s (target < 0.5)")
    print(f"testy-model eval:       CPU {ours_cpu:.3f} s, wall {ours_wall:.3f} s")
    print(f"timeloop-model:         CPU {tl_cpu:.3f} s, wall {tl_wall:.3f} s")
    print(f"eval / timeloop-model:  wall {ours_wall / tl_wall:.2f}x, CPU {ours_cpu / tl_cpu:.2f}x")
    print(f"import floor ({_FLOOR_LIBS}, one pydantic model): CPU {floor_cpu:.3f} s, "
          f"wall {floor_wall:.3f} s = {floor_wall / tl_wall:.2f}x timeloop-model")  # fmt: skip


if __name__ == "__main__":
    main()
