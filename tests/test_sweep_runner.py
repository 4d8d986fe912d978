"""The sweep runner: chunking, incremental parts, resume after a kill, backend-independent rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from testy_model.dse.runner import chunked, done_point_ids, parts_dir, run_points


def square_chunk(context: dict, points: list[dict]) -> list[dict]:
    """Row per point: y = scale * x**2 (a known function, so rows can be checked exactly)."""
    return [
        {"point_id": p["point_id"], "x": p["x"], "y": context["scale"] * p["x"] ** 2}
        for p in points
    ]


def _points(n: int) -> list[dict]:
    return [{"point_id": f"p{i:04d}", "x": i} for i in range(n)]


def test_chunked_covers_everything_once() -> None:
    chunks = chunked(list(range(10)), 3)
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert [x for c in chunks for x in c] == list(range(10))


def test_serial_and_local_give_identical_tables(tmp_path: Path) -> None:
    pts = _points(50)
    a = run_points(
        pts,
        square_chunk,
        {"scale": 3},
        tmp_path / "a.parquet",
        backend="serial",
        chunk_size=7,
        progress=False,
    )
    b = run_points(
        pts,
        square_chunk,
        {"scale": 3},
        tmp_path / "b.csv",
        backend="local",
        workers=2,
        chunk_size=5,
        progress=False,
    )
    assert list(a["y"]) == [3 * i * i for i in range(50)]
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert (tmp_path / "a.parquet").exists() and (tmp_path / "b.csv").exists()


def test_resume_after_kill_recomputes_nothing(tmp_path: Path) -> None:
    """A sweep killed with SIGKILL half-way keeps its finished chunks; the re-run evaluates only
    the points that have no row yet (each evaluation is logged to a file, so we can count)."""
    out = tmp_path / "res.csv"
    log = tmp_path / "evaluated.log"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        from testy_model.dse.runner import run_points

        def slow(ctx, points):
            with open({str(log)!r}, "a") as f:
                for p in points:
                    f.write(p["point_id"] + "\\n")
            time.sleep(0.15)
            return [{{"point_id": p["point_id"], "x": p["x"], "y": p["x"] * 2}} for p in points]

        pts = [{{"point_id": f"p{{i:04d}}", "x": i}} for i in range(40)]
        run_points(pts, slow, None, {str(out)!r}, backend="serial", chunk_size=2,
                   progress=False)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline and len(done_point_ids(out)) < 10:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = done_point_ids(out)
    assert 10 <= len(written) < 40, "the kill should land half-way"
    log.write_text("")
    subprocess.run([sys.executable, str(script)], check=True)
    second = set(log.read_text().split())
    assert second.isdisjoint(written), "points already written were recomputed"
    assert second | written == {f"p{i:04d}" for i in range(40)}
    table = pd.read_csv(out)
    assert list(table["y"]) == [2 * i for i in range(40)]
    assert parts_dir(out).is_dir()
