"""``testy-model sweep`` (run a design-space sweep) and ``testy-model pareto`` (its front)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from testy_model.cli.app import app, console, err_console, user_errors
from testy_model.cli.outputs import check_output, check_outputs, save_figure
from testy_model.errors import SpecError

DEFAULT_OBJECTIVES = "seconds,energy_pj,area_mm2"
#: Axis labels (with units) of the result columns a front is usually plotted in.
UNITS = {
    "cycles": "latency (cycles)",
    "seconds": "latency (s)",
    "energy_pj": "energy (pJ)",
    "edp_pj_s": "EDP (pJ·s)",
    "area_mm2": "area (mm²)",
}


@app.command("sweep")
@user_errors
def sweep_command(
    sweep_file: Path = typer.Argument(..., help="sweep YAML (a top-level 'sweep:' block)"),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="result table: .parquet or .csv (replaced at the end of each run; finished points "
        "are kept in OUT.parts/ and reused by the next run)",
    ),
    backend: str = typer.Option("local", help="local (all cores) | dask | serial"),
    scheduler: str | None = typer.Option(None, help="dask scheduler address (tcp://host:8786)"),
    workers: int | None = typer.Option(
        None, help="worker processes (default: the cores this process may use)"
    ),
    chunk_size: int | None = typer.Option(None, help="points per task (default: automatic)"),
    progress: bool = typer.Option(True, help="show a progress bar with rate and ETA"),
    conventions: str | None = typer.Option(
        None,
        "--conventions",
        help="counting conventions, 'timeloop' or 'sparseloop-2022' (default: the sweep "
        "file's 'conventions:', else timeloop)",
    ),
) -> None:
    """Evaluate every point of a sweep (resumable: finished points are kept in OUT.parts/, a
    damaged part is recomputed, Ctrl-C stops at once and keeps them). Bandwidths in the grid are
    words/cycle, as in architecture files."""
    from testy_model.dse import sweep
    from testy_model.dse.explore import expand_points
    from testy_model.dse.runner import done_point_ids, parts_dir
    from testy_model.spec.located import did_you_mean
    from testy_model.spec.sweep_spec import load_sweep

    if out.suffix.lower() not in (".parquet", ".csv"):
        raise SpecError(f"--out {out}: expected a .parquet or .csv file name")
    backends = ("local", "dask", "serial")
    if backend not in backends:
        raise SpecError(
            f"--backend {backend!r}: expected one of {', '.join(backends)}"
            f"{did_you_mean(backend, backends)}"
        )
    if scheduler and backend != "dask":
        raise SpecError("--scheduler needs --backend dask")
    if workers is not None and workers < 1:
        raise SpecError(f"--workers {workers}: expected at least 1")
    if chunk_size is not None and chunk_size < 1:
        raise SpecError(f"--chunk-size {chunk_size}: expected at least 1")
    spec = load_sweep(sweep_file)
    if conventions is not None:
        from testy_model.spec.conventions import Conventions

        spec = spec.model_copy(update={"conventions": Conventions.parse(conventions).value})
    # the result table is replaced by design (documented); never an input, never via a symlink
    check_output(
        "--out",
        out,
        inputs=[sweep_file, spec.arch_path(), *spec.networks, spec.plan],
        replace_ok=True,
    )
    n_points = len(expand_points(spec))
    t0 = time.perf_counter()
    try:
        df = sweep(
            spec,
            out,
            backend=backend,
            workers=workers,
            scheduler=scheduler,
            chunk_size=chunk_size,
            progress=progress,
        )
    except KeyboardInterrupt:
        kept = len(done_point_ids(out))
        err_console.print(
            f"interrupted: {kept} of {n_points} points kept in {parts_dir(out)}; run the same "
            "command again to compute the rest",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    dt = time.perf_counter() - t0
    n_valid = int(df["valid"].sum()) if "valid" in df else len(df)
    console.print(
        f"{len(df)} points ({n_valid} valid) written to {out} in {dt:.1f} s "
        f"({len(df) / max(dt, 1e-9):.1f} points/s)",
        highlight=False,
    )


#: Short names accepted by ``--objectives``.
ALIASES = {"latency": "seconds", "energy": "energy_pj", "area": "area_mm2", "edp": "edp_pj_s"}


def _objectives(text: str, columns: list[str]) -> list[str]:
    objs = [c.strip() for c in text.split(",") if c.strip()]
    objs = [c if c in columns else ALIASES.get(c, c) for c in objs]
    if len(objs) < 2:
        raise SpecError(f"--objectives {text!r}: give at least two comma-separated columns")
    missing = [c for c in objs if c not in columns]
    if missing:
        numeric = ", ".join(c for c in columns if c in UNITS or c.startswith("energy_"))
        raise SpecError(f"--objectives: no column(s) {missing}; result columns include {numeric}")
    return objs


#: Result columns that define the workload of a point: a front never mixes two workloads.
WORKLOAD_COLUMNS = ("network", "weight_sparsity")


def _workload_key(row: object) -> str:
    parts = []
    for col in WORKLOAD_COLUMNS:
        v = getattr(row, col, None)
        if v is not None:
            parts.append(f"sparsity {v:g}" if isinstance(v, float) else str(v))
    return ", ".join(parts) or "all points"


@app.command("pareto")
@user_errors
def pareto_command(
    results: Path = typer.Argument(..., help="result table of a sweep (.parquet or .csv)"),
    objectives: str = typer.Option(DEFAULT_OBJECTIVES, help="comma-separated columns to minimise"),
    plot: Path | None = typer.Option(None, help="write a scatter of the fronts (PNG/SVG/PDF)"),
    out: Path | None = typer.Option(None, help="write the fronts' rows (.parquet or .csv)"),
    top: int = typer.Option(20, help="rows shown in the table"),
    force: bool = typer.Option(False, "--force", help="replace output files that already exist"),
) -> None:
    """The non-dominated rows (every objective minimised) of a sweep's results, one front per
    workload (network and weight sparsity: different workloads never share a front)."""
    import pandas as pd
    from rich.table import Table

    from testy_model.dse.pareto import pareto
    from testy_model.dse.runner import read_table

    if not results.is_file():
        raise SpecError(f"no result table {results}", file=str(results))
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise SpecError(f"--out {out}: expected a .parquet or .csv file name")
    outputs = check_outputs({"--out": out, "--plot": plot}, inputs=[results], force=force)
    try:
        df = read_table(results)
    except Exception as err:  # pyarrow/pandas raise many types on a corrupt file
        msg = " ".join(str(err).split())[:200]
        raise SpecError(f"cannot read the result table ({msg})", file=str(results)) from None
    objs = _objectives(objectives, list(df.columns))
    if "valid" in df:
        df = df[df["valid"].astype(bool)]
    df = df.assign(workload=[_workload_key(r) for r in df.itertuples(index=False)])
    fronts = {
        k: pareto(g, objs).sort_values(objs[0]) for k, g in df.groupby("workload", sort=False)
    }
    front = pd.concat(fronts.values()) if fronts else df.head(0)
    table = Table(
        title=f"Pareto fronts: {len(front)} of {len(df)} valid points, {len(fronts)} workload(s)"
    )
    shown = [c for c in front.columns if c not in ("point_id", "plan", "valid", "workload")]
    shown = [c for c in shown if not c.startswith("energy_") or c == "energy_pj"]
    for c in shown:
        table.add_column(c)
    for _, row in front.head(top).iterrows():
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row[shown]))
    console.print(table)
    if "--out" in outputs:
        if outputs["--out"].suffix.lower() == ".csv":
            front.to_csv(outputs["--out"], index=False)
        else:
            front.to_parquet(outputs["--out"], index=False)
        console.print(f"--out: fronts written to {outputs['--out']}", highlight=False)
    if "--plot" in outputs:
        from testy_model.plots import pareto_figure

        save_figure(pareto_figure(df, fronts, objs, "workload"), outputs["--plot"])
        console.print(f"--plot: fronts plotted to {outputs['--plot']}", highlight=False)
