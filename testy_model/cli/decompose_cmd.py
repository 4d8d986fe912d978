"""``testy-model decompose FILE --series 2:8+1:8``: decompose a tensor, print its metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from testy_model.cli.app import app, console, user_errors
from testy_model.errors import SpecError

if TYPE_CHECKING:
    from rich.table import Table

    from testy_model.tasd.decompose import Decomposition


def metrics_table(dec: Decomposition, title: str) -> Table:
    """A rich table of the per-term metrics of ``dec`` (percentages of the array's totals)."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("term", "pattern", "kept nnz", "% of nnz", "% of L1", "rel. error after"):
        table.add_column(col, justify="right" if col != "pattern" else "left")
    for i, p in enumerate(dec.patterns):
        table.add_row(
            str(i + 1),
            str(p),
            f"{dec.kept_nnz[i]:,}",
            f"{100 * dec.kept_nnz_fraction[i]:.2f}",
            f"{100 * dec.kept_l1_fraction[i]:.2f}",
            f"{dec.rel_error_cumulative[i]:.4f}",
        )
    nnz = dec.total_nnz
    table.add_row(
        "residual",
        "",
        f"{dec.residual_nnz:,}",
        f"{100 * dec.residual_nnz / nnz if nnz else 0.0:.2f}",
        f"{100 * (1 - sum(dec.kept_l1_fraction)) if nnz else 0.0:.2f}",
        f"{dec.rel_error:.4f}",
    )
    return table


@app.command("decompose")
@user_errors
def decompose_command(
    file: Path = typer.Argument(..., help="A .npy file, or a .npz archive (see --key)."),
    series: str = typer.Option("2:8+1:8", "--series", "-s", help="TASD series, e.g. 2:8+1:8."),
    axis: int = typer.Option(-1, "--axis", help="Axis the N:M blocks run along (reduction)."),
    key: str = typer.Option(None, "--key", help="Array name inside a .npz archive."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    out: Path = typer.Option(None, "--out", help="Write term1..termk and residual to this .npz."),
    force: bool = typer.Option(False, "--force", help="Replace the --out file if it exists."),
) -> None:
    """Decompose a tensor greedily into N:M terms and report kept non-zeros, L1 mass and error."""
    from testy_model.cli.outputs import check_output
    from testy_model.tasd.decompose import decompose
    from testy_model.tasd.io import load_array, save_decomposition
    from testy_model.tasd.pattern import TasdSeries

    ser = TasdSeries.parse(series)
    if out is not None:
        check_output("--out", out, [file], force)
    array = load_array(file, key)
    try:
        dec = decompose(array, ser, axis=axis)
    except ValueError as err:
        raise SpecError(str(err), file=str(file), key_path=key) from err
    if out is not None:
        save_decomposition(out, dec.terms(), dec.residual())
    if as_json:
        payload: dict[str, Any] = {"file": str(file), **dec.metrics()}
        if out is not None:
            payload["out"] = str(out)
        typer.echo(json.dumps(payload, indent=2))
        return
    title = f"{file.name} {'x'.join(map(str, array.shape))}, axis {dec.axis}: {dec.series}"
    table = metrics_table(dec, title)
    table.caption = f"{dec.total_nnz:,} non-zeros of {array.size:,} values"
    console.print(table)
    if out is not None:
        console.print(f"wrote {dec.n_terms} term(s) and the residual to {out}")
