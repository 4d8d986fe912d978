"""``testy-model sweep`` (run a design-space sweep) and ``testy-model pareto`` (its front)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from testy_model.cli.app import app, console, user_errors
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
    out: Path = typer.Option(..., "--out", "-o", help="result table: .parquet or .csv"),
    backend: str = typer.Option("local", help="local (all cores) | dask | serial"),
    scheduler: str | None = typer.Option(None, help="dask scheduler address (tcp://host:8786)"),
    workers: int | None = typer.Option(None, help="worker processes (default: all cores)"),
    chunk_size: int | None = typer.Option(None, help="points per task (default: automatic)"),
    progress: bool = typer.Option(True, help="show a progress bar with rate and ETA"),
) -> None:
    """Evaluate every point of a sweep (resumable: finished chunks are kept in OUT.parts/)."""
    from testy_model.dse import sweep

    if out.suffix.lower() not in (".parquet", ".csv"):
        raise SpecError(f"--out {out}: expected a .parquet or .csv file name")
    if scheduler and backend != "dask":
        raise SpecError("--scheduler needs --backend dask")
    t0 = time.perf_counter()
    df = sweep(
        sweep_file,
        out,
        backend=backend,
        workers=workers,
        scheduler=scheduler,
        chunk_size=chunk_size,
        progress=progress,
    )
    dt = time.perf_counter() - t0
    n_valid = int(df["valid"].sum()) if "valid" in df else len(df)
    console.print(
        f"{len(df)} points ({n_valid} valid) written to {out} in {dt:.1f} s "
        f"({len(df) / max(dt, 1e-9):.1f} points/s)"
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


def plot_front(df: object, front: object, objectives: list[str], path: Path) -> None:
    """Scatter of every valid point and the front in the first two objectives (labelled axes
    with units); the third objective, if any, colours the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = objectives[0], objectives[1]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    kw = {}
    if len(objectives) > 2:
        kw = {"c": df[objectives[2]], "cmap": "viridis"}  # type: ignore[index]
    sc = ax.scatter(df[x], df[y], s=10, alpha=0.5, label="design points", **kw)  # type: ignore[index]
    f = front.sort_values(x)  # type: ignore[attr-defined]
    ax.scatter(f[x], f[y], s=28, facecolors="none", edgecolors="red", label="Pareto front")
    if len(objectives) > 2:
        fig.colorbar(sc, ax=ax, label=UNITS.get(objectives[2], objectives[2]))
    ax.set_xlabel(UNITS.get(x, x))
    ax.set_ylabel(UNITS.get(y, y))
    ax.set_title(f"Pareto front ({', '.join(objectives)} minimised)")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@app.command("pareto")
@user_errors
def pareto_command(
    results: Path = typer.Argument(..., help="result table of a sweep (.parquet or .csv)"),
    objectives: str = typer.Option(DEFAULT_OBJECTIVES, help="comma-separated columns to minimise"),
    plot: Path | None = typer.Option(None, help="write a scatter of the front (PNG/SVG/PDF)"),
    out: Path | None = typer.Option(None, help="write the front's rows (.parquet or .csv)"),
    top: int = typer.Option(20, help="rows shown in the table"),
) -> None:
    """The non-dominated rows (every objective minimised) of a sweep's results."""
    from testy_model.dse.pareto import pareto
    from testy_model.dse.runner import read_table

    if not results.is_file():
        raise SpecError(f"no result table {results}", file=str(results))
    try:
        df = read_table(results)
    except Exception as err:  # pyarrow/pandas raise many types on a corrupt file
        raise SpecError(f"cannot read the result table ({err})", file=str(results)) from None
    objs = _objectives(objectives, list(df.columns))
    if "valid" in df:
        df = df[df["valid"].astype(bool)]
    front = pareto(df, objs).sort_values(objs[0])
    table = Table(title=f"Pareto front: {len(front)} of {len(df)} valid points")
    shown = [c for c in front.columns if c not in ("point_id", "plan", "valid")]
    shown = [c for c in shown if not c.startswith("energy_") or c == "energy_pj"]
    for c in shown:
        table.add_column(c)
    for _, row in front.head(top).iterrows():
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row[shown]))
    console.print(table)
    if out is not None:
        if out.suffix.lower() == ".csv":
            front.to_csv(out, index=False)
        else:
            front.to_parquet(out, index=False)
    if plot is not None:
        plot_front(df, front, objs, plot)
        console.print(f"front plotted to {plot}")
