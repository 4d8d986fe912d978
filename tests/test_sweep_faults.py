"""Sweeps under faults: SIGKILL of the main process, a damaged part file, Ctrl-C.

The sweep is real (the 2:4 tensor core with a TASD unit, the tiny CNN, 16 points); a wrapper
around the chunk evaluator blocks (sleeps an hour) on every point from position 6 on, so the
state at the fault is known exactly: points 0..5 written, both workers busy. No assertion is on a
duration: a process that is still there after the hang guard (``GUARD_S``) fails the test, and
"stops at once" is shown by the process ending while its in-flight work would take an hour.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from testy_model.dse import sweep
from testy_model.dse.explore import clear_caches
from testy_model.dse.runner import SweepWarning, done_point_ids, parts_dir

ROOT = Path(__file__).resolve().parents[1]
#: Hang guard (seconds) for waiting on processes; never an assertion on speed.
GUARD_S = 120.0
FINISHED = 6  # points before the blocked ones

SWEEP = """sweep:
  arch: {arch}
  grid:
    levels.SMEM.depth: [1024, 2048, 4096, 8192]
    levels.DRAM.read_bandwidth: [8, 16]
    compute.clock_ghz: [0.8, 1.0]
  networks: [{net}]
  weight_sparsity: [0.5]
  plan: "W=2:4,A=dense"
  mapper: false
"""

RUNNER = """
import signal, sys, time
# A sweep started from a terminal has Python's Ctrl-C handler; a test run launched in the
# background (`cmd &` in a script, nohup) inherits SIGINT ignored, which Python keeps: restore it.
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
import testy_model.dse.explore as ex
from testy_model.dse.explore import evaluate_chunk, expand_points, load_sweep

spec = load_sweep({sweep!r})
order = {{p["point_id"]: i for i, p in enumerate(expand_points(spec))}}

def blocking_chunk(ctx, points):
    if max(order[p["point_id"]] for p in points) >= {finished}:
        time.sleep(3600)  # work that would take an hour
    rows = evaluate_chunk(ctx, points)
    with open({log!r}, "a") as f:
        f.write("".join(p["point_id"] + "\\n" for p in points))
    return rows

ex.evaluate_chunk = blocking_chunk  # sweep() hands this to the pool
{call}
"""


def _write_sweep(tmp: Path) -> Path:
    f = tmp / "sweep.yaml"
    f.write_text(
        SWEEP.format(
            arch=ROOT / "arch_specs/stc_2of4_tasd.yaml",
            net=ROOT / "examples/networks/tiny_cnn.yaml",
        )
    )
    return f


def _start(tmp: Path, sweep_file: Path, call: str) -> tuple[subprocess.Popen, Path]:
    log = tmp / "evaluated.log"
    script = tmp / "run.py"
    script.write_text(
        textwrap.dedent(
            RUNNER.format(sweep=str(sweep_file), finished=FINISHED, log=str(log), call=call)
        )
    )
    # output to files, not pipes: a leftover worker holding a pipe must not hang the test
    with (tmp / "stdout.txt").open("w") as o, (tmp / "stderr.txt").open("w") as e:
        proc = subprocess.Popen(
            [sys.executable, str(script)], start_new_session=True, stdout=o, stderr=e
        )
    return proc, log


def _wait_for_points(out: Path, proc: subprocess.Popen, n: int) -> None:
    deadline = time.monotonic() + GUARD_S
    while len(done_point_ids(out)) < n:
        assert proc.poll() is None, "the sweep ended early"
        assert time.monotonic() < deadline, "hang guard: the first points never arrived"
        time.sleep(0.2)


def _session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            pids.append(int(d.name))
    return pids


def _wait_gone(sid: int) -> list[int]:
    deadline = time.monotonic() + GUARD_S
    left = _session_processes(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _session_processes(sid)
    return left


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_sigkill_truncated_part_resume_equals_uninterrupted(tmp_path: Path) -> None:
    """SIGKILL the sweep's main process while both pool workers are busy: no process of the
    killed sweep is left; a part file truncated afterwards is reported in one line and its
    points recomputed; the rerun finishes by itself and equals an uninterrupted run."""
    sweep_file = _write_sweep(tmp_path)
    out = tmp_path / "res.parquet"
    call = f"ex.sweep(spec, {str(out)!r}, backend='local', workers=2, chunk_size=2, progress=False)"
    proc, _ = _start(tmp_path, sweep_file, call)
    _wait_for_points(out, proc, FINISHED)
    workers = [p for p in _session_processes(proc.pid) if p != proc.pid]
    assert len(workers) >= 2, "the pool's workers should be running"
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, as a crash or OOM kill would
    proc.wait()
    left = _wait_gone(proc.pid)
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert left == [], "processes of the killed sweep are still alive"
    assert not out.exists()
    parts = sorted(parts_dir(out).glob("chunk-*.parquet"))
    assert len(parts) == FINISHED // 2
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[: len(data) // 2])  # a crash outside the runner damaged it

    clear_caches()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = sweep(sweep_file, out, backend="local", workers=2, progress=False)
    notes = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    assert len(notes) == 1 and parts[1].name in notes[0] and "\n" not in notes[0]
    assert "computed again" in notes[0]
    clear_caches()
    fresh = sweep(sweep_file, tmp_path / "fresh.parquet", backend="serial", progress=False)
    assert len(resumed) == 16
    pd.testing.assert_frame_equal(resumed, fresh)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_ctrl_c_stops_at_once_and_keeps_every_finished_point(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) to ``testy-model sweep`` while both workers are in hour-long work: the
    command ends (so it did not wait for them) with exit code 130 and one line saying how many
    points are kept; every point whose evaluation finished is in the parts; no process is left;
    the rerun completes the table."""
    sweep_file = _write_sweep(tmp_path)
    out = tmp_path / "res.csv"
    call = (
        "from testy_model.cli import app\n"
        f"app(['sweep', {str(sweep_file)!r}, '--out', {str(out)!r}, '--workers', '2', "
        "'--chunk-size', '2', '--no-progress'], prog_name='testy-model')"
    )
    proc, log = _start(tmp_path, sweep_file, call)
    _wait_for_points(out, proc, FINISHED)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal sends it to the whole process group
    try:
        proc.wait(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("hang guard: the sweep did not stop on Ctrl-C")
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"interrupted: {FINISHED} of 16 points kept")
    left = _wait_gone(proc.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
    finished = set(log.read_text().split())
    assert finished == done_point_ids(out) and len(finished) == FINISHED

    clear_caches()
    table = sweep(sweep_file, out, backend="serial", progress=False)
    assert len(table) == 16 and table["valid"].all()


def _square(context: int, points: list[dict]) -> list[dict]:
    """Row per point: y = context · x² (a known function, so rows can be checked exactly)."""
    return [{"point_id": p["point_id"], "x": p["x"], "y": context * p["x"] ** 2} for p in points]


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a table"])
def test_unreadable_part_is_reported_and_recomputed(tmp_path: Path, damage: str) -> None:
    """A part emptied, truncated or overwritten by a crash outside the runner used to stop every
    resume ("Parquet magic bytes not found"); now one warning line names it and its points are
    computed again, so the table equals an undamaged run."""
    from testy_model.dse.runner import run_points

    pts = [{"point_id": f"p{i:03d}", "x": i} for i in range(20)]
    out = tmp_path / "r.parquet"
    first = run_points(pts, _square, 3, out, backend="serial", chunk_size=4, progress=False)
    parts = sorted(parts_dir(out).glob("chunk-*.parquet"))
    data = parts[2].read_bytes()
    parts[2].write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                          "not a table": b"hello"}[damage])  # fmt: skip
    (parts_dir(out) / "chunk-0000004-0000007.parquet.123.456.tmp").write_bytes(b"half")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = run_points(pts, _square, 3, out, backend="serial", chunk_size=4, progress=False)
    notes = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    assert len(notes) == 1 and parts[2].name in notes[0] and "\n" not in notes[0]
    pd.testing.assert_frame_equal(again, first)
    assert list(again["y"]) == [3 * i * i for i in range(20)]
    assert not list(parts_dir(out).glob("*.tmp"))
