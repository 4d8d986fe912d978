"""Running the real Timeloop v3.0.3 ``timeloop-model`` on a case folder.

The binary is looked up in ``$TIMELOOP_MODEL``, then in the shared tools folder next to the
project (``../shared/tools/timeloop-v3.0.3/timeloop-model`` relative to the repository root,
which is how every worktree sees ``/work/shared``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from oracle.stats import RunStats, parse_stats_file

REPO = Path(__file__).resolve().parents[2]
_CANDIDATES = (
    REPO.parent / "shared" / "tools" / "timeloop-v3.0.3" / "timeloop-model",
    REPO.parents[1] / "shared" / "tools" / "timeloop-v3.0.3" / "timeloop-model",
    Path("/work/shared/tools/timeloop-v3.0.3/timeloop-model"),
)


def timeloop_binary() -> Path | None:
    """Path of ``timeloop-model`` (None when not installed here)."""
    env = os.environ.get("TIMELOOP_MODEL")
    if env:
        return Path(env)
    for c in _CANDIDATES:
        if c.is_file():
            return c
    found = shutil.which("timeloop-model")
    return Path(found) if found else None


@dataclass
class TimeloopRun:
    """Exit status, the last lines of its output, and the parsed stats (None on failure)."""

    rc: int
    message: str
    stats: RunStats | None


def case_input_files(case_dir: Path) -> list[str]:
    """Input file names in Timeloop's order (``inputs.txt``, else the standard set)."""
    listed = case_dir / "inputs.txt"
    if listed.is_file():
        return listed.read_text().split()
    names = ["arch.yaml", "problem.yaml", "sparse_opt.yaml", "map.yaml", "ERT.yaml", "ART.yaml"]
    return [n for n in names if (case_dir / n).is_file()]


def run_timeloop(
    case_dir: str | Path, out_dir: str | Path | None = None, timeout: float = 60.0
) -> TimeloopRun:
    """Run ``timeloop-model`` on the case (outputs into ``out_dir``, a temporary folder if
    None) and parse its ``timeloop-model.stats.txt``."""
    exe = timeloop_binary()
    if exe is None:
        raise FileNotFoundError("timeloop-model not found (set $TIMELOOP_MODEL)")
    case_dir = Path(case_dir)
    with tempfile.TemporaryDirectory(prefix="oracle_tl_") as tmp:
        out = Path(out_dir) if out_dir is not None else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        stats_path = out / "timeloop-model.stats.txt"
        if stats_path.exists():
            stats_path.unlink()
        try:
            proc = subprocess.run(
                [str(exe), *case_input_files(case_dir), "-o", str(out)],
                cwd=case_dir,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return TimeloopRun(124, f"timeout after {timeout} s", None)
        text = (proc.stdout or "") + (proc.stderr or "")
        if proc.returncode != 0 or not stats_path.is_file():
            lines = [ln for ln in text.splitlines() if ln.strip()]
            errs = [ln for ln in lines if "ERROR" in ln or "rror" in ln or "Assert" in ln]
            msg = "\n".join((errs or lines)[-3:])
            return TimeloopRun(proc.returncode or 1, msg, None)
        stats = parse_stats_file(stats_path)
        stats.warnings = sorted({ln.strip() for ln in text.splitlines() if "arning" in ln})[:20]
        return TimeloopRun(0, "", stats)
