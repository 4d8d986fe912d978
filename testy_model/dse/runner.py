"""Running a sweep's points in parallel, incrementally, resumably, and safely under faults.

The runner knows nothing about the cost model: it takes a list of points (dicts with a unique
``point_id``), a picklable chunk evaluator ``fn(context, points) -> list[row dict]`` and a backend:

- ``local`` (default): a :class:`concurrent.futures.ProcessPoolExecutor` with one worker per core,
  points grouped into chunks so per-task overhead stays small;
- ``dask``: the same chunks on a ``dask.distributed`` cluster (``scheduler`` address, or a
  ``LocalCluster`` started here and closed afterwards);
- ``serial``: in this process (debugging, tests).

Faults (every rule below is tested):

- **Every finished point is kept.** A chunk is evaluated in batches of :data:`BATCH` points and
  each batch is written as soon as it is computed, by the process that computed it, to
  ``<out>.parts/chunk-<first>-<last>.parquet`` (or ``.csv``): through a temporary name and an
  atomic rename, so a part file is either whole or absent. A re-run reads the parts, skips the
  ``point_id`` values already there and computes only the rest. The final table is the union of
  the parts in point order, written to ``out``; it does not depend on the backend or the
  chunking.
- **A damaged part is recomputed.** A part that cannot be read on resume (truncated or emptied by
  a crash outside this runner, a full disk ...) is reported in one warning line, removed, and its
  points computed again; leftover temporary files are removed.
- **Workers never outlive the sweep.** Local pool workers ask the kernel to kill them when their
  parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``) and also watch the parent's pid, so a
  ``kill -9`` of the sweep leaves no process behind.
- **Cores are not oversubscribed.** One worker per core given to this process
  (``os.sched_getaffinity``), each with one BLAS thread.
- **Ctrl-C stops at once.** Workers ignore SIGINT; on an interrupt the parent kills its workers
  (no waiting for the chunks in flight) and re-raises :class:`KeyboardInterrupt`; every batch
  written so far stays in ``<out>.parts/`` for the re-run.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd

ChunkFn = Callable[[Any, list[dict]], list[dict]]

#: Points evaluated (and written) together inside a chunk: the most work an interrupt can lose
#: per worker.
BATCH = 8
#: Seconds between two checks of a worker's watchdog on its parent.
WATCHDOG_S = 0.5


class SweepWarning(UserWarning):
    """Something the runner repaired on its own (a damaged part file it recomputes)."""


def parts_dir(out: Path) -> Path:
    """Folder holding the per-chunk result files of the sweep written to ``out``."""
    return out.with_name(out.name + ".parts")


def _suffix(out: Path) -> str:
    return ".csv" if out.suffix.lower() == ".csv" else ".parquet"


def read_table(path: Path) -> pd.DataFrame:
    """Read a result table written by this module (CSV or Parquet by suffix)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def _write_table(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` atomically (a uniquely named temporary file, then a rename)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    if path.suffix.lower() == ".csv":
        df.to_csv(tmp, index=False)
    else:
        df.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # atomic: a killed run never leaves a half-written part


def _read_part(part: Path) -> pd.DataFrame | None:
    """A part file's rows, or ``None`` (reported in one line, file removed) when unreadable."""
    try:
        df = read_table(part)
        if "point_id" not in df.columns:
            raise ValueError("no point_id column")
        return df
    except Exception as err:  # pyarrow/pandas raise many types on a damaged file
        reason = " ".join(str(err).split())[:120] or type(err).__name__
        warnings.warn(
            f"{part}: unreadable part file ({reason}); its points will be computed again",
            SweepWarning,
            stacklevel=3,
        )
        with contextlib.suppress(OSError):
            part.unlink()
        return None


def _parts(out: Path) -> list[Path]:
    return sorted(parts_dir(out).glob("chunk-*" + _suffix(out)))


def done_point_ids(out: Path) -> set[str]:
    """``point_id`` values already written under ``parts_dir(out)`` (damaged parts are reported,
    removed and not counted)."""
    pdir = parts_dir(out)
    if not pdir.is_dir():
        return set()
    ids: set[str] = set()
    for part in _parts(out):
        df = _read_part(part)
        if df is not None:
            ids.update(df["point_id"].astype(str))
    return ids


def _write_rows(rows: list[dict], positions: Sequence[int], pdir: Path, suffix: str) -> int:
    """Write one batch's rows as a part named by the first and last point positions."""
    if not rows:
        return 0
    name = f"chunk-{min(positions):07d}-{max(positions):07d}{suffix}"
    _write_table(pd.DataFrame(rows), pdir / name)
    return len(rows)


def run_chunk(
    fn: ChunkFn,
    context: Any,
    chunk: list[dict],
    positions: list[int],
    pdir: str,
    suffix: str,
    batch: int = BATCH,
) -> int:
    """Evaluate ``chunk`` in batches of ``batch`` points, writing each batch's part as soon as it
    is computed (the task a local worker or the serial backend runs). Returns the rows written."""
    n = 0
    for i in range(0, len(chunk), batch):
        rows = fn(context, chunk[i : i + batch])
        n += _write_rows(rows, positions[i : i + batch], Path(pdir), suffix)
    return n


# --------------------------------------------------------------------------------------------
# worker processes that die with their parent
# --------------------------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Worker initializer: be killed when ``parent`` dies (``prctl`` on Linux, plus a watchdog
    thread everywhere), ignore SIGINT (the parent handles Ctrl-C), and run BLAS on one thread
    (the pool already has one worker per core: more threads would oversubscribe them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _kill_children(before: set[int]) -> None:
    """Kill (SIGKILL) this process's multiprocessing children not in ``before``."""
    for child in multiprocessing.active_children():
        if child.pid not in before:
            with contextlib.suppress(Exception):
                child.kill()
    for child in multiprocessing.active_children():
        if child.pid not in before:
            child.join(timeout=1.0)


def chunked(points: Sequence[dict], size: int) -> list[list[dict]]:
    """Split ``points`` into consecutive chunks of at most ``size`` points."""
    size = max(1, int(size))
    return [list(points[i : i + size]) for i in range(0, len(points), size)]


def default_chunk_size(n_points: int, workers: int) -> int:
    """About four chunks per worker (load balance) but at least 8 points per chunk (overhead)."""
    return max(8, -(-n_points // max(1, 4 * workers)))


def _iter_results(
    fn: ChunkFn,
    context: Any,
    chunks: list[tuple[list[dict], list[int]]],
    backend: str,
    workers: int,
    scheduler: str | None,
    pdir: Path,
    suffix: str,
) -> Iterable[int]:
    """Run the chunks; yield the number of rows each finished chunk wrote."""
    if backend == "serial":
        for chunk, pos in chunks:
            yield run_chunk(fn, context, chunk, pos, str(pdir), suffix)
        return
    if backend == "local":
        before = {c.pid for c in multiprocessing.active_children() if c.pid is not None}
        pool = ProcessPoolExecutor(
            max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),)
        )
        try:
            futures = [
                pool.submit(run_chunk, fn, context, chunk, pos, str(pdir), suffix)
                for chunk, pos in chunks
            ]
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:
            # Ctrl-C, an error in a chunk, or the consumer gone: stop now, keep what is written
            _kill_children(before)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return
    if backend == "dask":
        yield from _dask_results(fn, context, chunks, workers, scheduler, pdir, suffix)
        return
    raise ValueError(f"unknown backend {backend!r} (expected 'local', 'dask' or 'serial')")


def _dask_results(
    fn: ChunkFn,
    context: Any,
    chunks: list[tuple[list[dict], list[int]]],
    workers: int,
    scheduler: str | None,
    pdir: Path,
    suffix: str,
) -> Iterable[int]:
    """The dask backend: workers (possibly on other machines) return rows; this process writes
    each chunk's part as it arrives."""
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_as_completed
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the dask backend needs dask.distributed: pip install 'dask[distributed]'"
        ) from err
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    futures: list[Any] = []
    try:
        futures = client.map(fn, [context] * len(chunks), [c for c, _ in chunks], pure=False)
        where = {f.key: pos for f, (_, pos) in zip(futures, chunks, strict=True)}
        for fut in dask_as_completed(futures):
            rows = fut.result()
            yield _write_rows(rows, where[fut.key], pdir, suffix)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_points(
    points: Sequence[dict],
    fn: ChunkFn,
    context: Any,
    out: Path | str,
    *,
    backend: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate ``points`` with ``fn`` on ``backend``, writing every batch as it finishes.

    Points whose ``point_id`` already has a row under ``parts_dir(out)`` are not recomputed.
    Returns the full table (all points, in the order of ``points``), also written to ``out``.
    On Ctrl-C the workers are killed at once and :class:`KeyboardInterrupt` propagates; every
    batch already written stays for the next run.
    """
    out = Path(out)
    ids = [str(p["point_id"]) for p in points]
    if len(set(ids)) != len(ids):
        raise ValueError("sweep points must have unique point_id values")
    if workers is None:  # the cores this process may run on
        workers = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    workers = max(1, workers)
    pdir = parts_dir(out)
    pdir.mkdir(parents=True, exist_ok=True)
    for stale in pdir.glob("*.tmp"):  # temporary files of a run killed while writing
        with contextlib.suppress(OSError):
            stale.unlink()
    done = done_point_ids(out)
    position = {pid: i for i, pid in enumerate(ids)}
    todo = [p for p in points if str(p["point_id"]) not in done]
    size = chunk_size or default_chunk_size(len(todo), workers)
    chunks = [(c, [position[str(p["point_id"])] for p in c]) for c in chunked(todo, size)]
    suffix = _suffix(out)

    bar = _progress_bar(len(todo)) if progress and todo else None
    try:
        for n in _iter_results(fn, context, chunks, backend, workers, scheduler, pdir, suffix):
            if bar is not None:
                task = bar.tasks[0]
                bar.update(task.id, advance=n, rate=(task.completed + n) / (task.elapsed or 1e-9))
    finally:
        if bar is not None:
            bar.stop()

    parts = [df for df in (_read_part(p) for p in _parts(out)) if df is not None]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"point_id": []})
    table["point_id"] = table["point_id"].astype(str)
    table = table[table["point_id"].isin(position)]
    table = table.drop_duplicates("point_id", keep="first")
    missing = len(position) - len(table)
    if missing:
        raise RuntimeError(
            f"{missing} points have no row after the run (their part files could not be read "
            f"back from {pdir}); run the same command again to compute them"
        )
    table = table.assign(_pos=table["point_id"].map(position)).sort_values("_pos")
    table = table.drop(columns="_pos").reset_index(drop=True)
    _write_table(table, out)
    return table


def _progress_bar(total: int) -> Any:
    """A started rich progress bar (points done, rate, elapsed, remaining)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} points/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bar.start()
    bar.add_task("sweep", total=total, rate=0.0)
    return bar
