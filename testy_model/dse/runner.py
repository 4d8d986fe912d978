"""Running a sweep's points in parallel, incrementally, resumably.

The runner knows nothing about the cost model: it takes a list of points (dicts with a unique
``point_id``), a picklable chunk evaluator ``fn(context, points) -> list[row dict]`` and a backend:

- ``local`` (default): a :class:`concurrent.futures.ProcessPoolExecutor` with one worker per core,
  points grouped into chunks so per-task overhead stays small;
- ``dask``: the same chunks on a ``dask.distributed`` cluster (``scheduler`` address, or a
  ``LocalCluster`` started here and closed afterwards);
- ``serial``: in this process (debugging, tests).

Every finished chunk is written at once to ``<out>.parts/chunk-<first>-<last>.parquet`` (or
``.csv``), so an interrupted sweep keeps what it finished; a re-run reads the parts, skips the
``point_id`` values already there and computes only the rest. The final table is the union of the
parts in point order, written to ``out``; it does not depend on the backend or the chunking.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd

ChunkFn = Callable[[Any, list[dict]], list[dict]]


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
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".csv":
        df.to_csv(tmp, index=False)
    else:
        df.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # atomic: a killed run never leaves a half-written part


def done_point_ids(out: Path) -> set[str]:
    """``point_id`` values already written under ``parts_dir(out)``."""
    pdir = parts_dir(out)
    if not pdir.is_dir():
        return set()
    ids: set[str] = set()
    for part in sorted(pdir.glob("chunk-*" + _suffix(out))):
        ids.update(read_table(part)["point_id"].astype(str))
    return ids


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
    chunks: list[list[dict]],
    backend: str,
    workers: int,
    scheduler: str | None,
) -> Iterable[list[dict]]:
    if backend == "serial":
        for chunk in chunks:
            yield fn(context, chunk)
        return
    if backend == "local":
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(fn, context, chunk) for chunk in chunks]
            for fut in as_completed(futures):
                yield fut.result()
        return
    if backend == "dask":
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
        try:
            futures = client.map(fn, [context] * len(chunks), chunks, pure=False)
            for fut in dask_as_completed(futures):
                yield fut.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    raise ValueError(f"unknown backend {backend!r} (expected 'local', 'dask' or 'serial')")


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
    """Evaluate ``points`` with ``fn`` on ``backend``, writing each chunk as it finishes.

    Points whose ``point_id`` already has a row under ``parts_dir(out)`` are not recomputed.
    Returns the full table (all points, in the order of ``points``), also written to ``out``.
    """
    out = Path(out)
    ids = [str(p["point_id"]) for p in points]
    if len(set(ids)) != len(ids):
        raise ValueError("sweep points must have unique point_id values")
    workers = workers or os.cpu_count() or 1
    pdir = parts_dir(out)
    pdir.mkdir(parents=True, exist_ok=True)
    done = done_point_ids(out)
    todo = [p for p in points if str(p["point_id"]) not in done]
    size = chunk_size or default_chunk_size(len(todo), workers)
    chunks = chunked(todo, size)
    position = {pid: i for i, pid in enumerate(ids)}
    suffix = _suffix(out)

    bar = None
    task = None
    if progress and todo:
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
        task = bar.add_task("sweep", total=len(todo), rate=0.0)
    try:
        for rows in _iter_results(fn, context, chunks, backend, workers, scheduler):
            if not rows:
                continue
            df = pd.DataFrame(rows)
            first = min(position[str(r["point_id"])] for r in rows)
            last = max(position[str(r["point_id"])] for r in rows)
            _write_table(df, pdir / f"chunk-{first:07d}-{last:07d}{suffix}")
            if bar is not None and task is not None:
                bar.advance(task, len(rows))
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, rate=bar.tasks[0].completed / elapsed)
    finally:
        if bar is not None:
            bar.stop()

    parts = [read_table(p) for p in sorted(pdir.glob("chunk-*" + suffix))]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"point_id": []})
    table["point_id"] = table["point_id"].astype(str)
    table = table[table["point_id"].isin(position)]
    table = table.drop_duplicates("point_id", keep="first")
    table = table.assign(_pos=table["point_id"].map(position)).sort_values("_pos")
    table = table.drop(columns="_pos").reset_index(drop=True)
    _write_table(table, out)
    return table
