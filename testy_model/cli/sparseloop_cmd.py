"""``testy-model study``: evaluate a Sparseloop case folder, beside Sparseloop's own numbers.

    testy-model study CASE_DIR [--conventions sparseloop-2022|timeloop] [--ert ERT.yaml]
                      [--art ART.yaml] [--json out.json]

CASE_DIR holds ``aggregated_input.yaml`` and ``map.yaml`` (and usually ``ERT.yaml``/``ART.yaml``,
used unless ``--ert``/``--art`` name others). The case is priced by the one cost core
(``model.study.evaluate_inputs`` → ``model.cost.price``) under ``--conventions`` (default
``sparseloop-2022``, the artifact's counting). When the folder also holds
``reference_stats.txt`` the table shows Sparseloop's actual counts beside ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from testy_model.cli.app import app, console, user_errors
from testy_model.cli.options import (
    ArtOption,
    ErtOption,
    StudyConventionsOption,
)

if TYPE_CHECKING:
    from rich.table import Table

    from testy_model.model.study import StudyReport

__all__ = ["ArtOption", "ErtOption", "study_command"]


@app.command("study")
@user_errors
def study_command(
    case_dir: Annotated[
        str, typer.Argument(help="Sparseloop case folder (aggregated_input.yaml, map.yaml)")
    ],
    conventions: StudyConventionsOption = "sparseloop-2022",
    ert: ErtOption = None,
    art: ArtOption = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="write the JSON report here")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace the --json file if it exists")
    ] = False,
) -> None:
    """Evaluate a Sparseloop case (actual/gated/skipped per level, cycles, energy)."""
    import dataclasses

    from testy_model.cli.outputs import check_output, write_text
    from testy_model.errors import SpecError
    from testy_model.model.study import evaluate_inputs
    from testy_model.spec.accelergy import apply_art, apply_ert, load_art, load_ert
    from testy_model.spec.conventions import Conventions
    from testy_model.spec.reference_stats import parse_reference_stats
    from testy_model.spec.timeloop_inputs import load_case

    conv = Conventions.parse(conventions)
    d = Path(case_dir)
    if not d.is_dir():
        raise SpecError("not a folder (expected a Sparseloop case folder)", file=str(d))
    files = [d / "aggregated_input.yaml", d / "map.yaml", d / "ERT.yaml", d / "ART.yaml", ert, art]
    json_path = check_output("--json", json_out, files, force) if json_out else None
    case = load_case(d)
    if ert is not None:
        table = load_ert(ert)
        case = dataclasses.replace(case, arch=apply_ert(case.arch, table), ert=table)
    if art is not None:
        areas = load_art(art)
        case = dataclasses.replace(case, arch=apply_art(case.arch, areas), art=areas)
    rep = evaluate_inputs(case, conv, name=str(d))
    ref_path = d / "reference_stats.txt"
    ref = parse_reference_stats(ref_path) if ref_path.is_file() else None
    console.print(_counts_table(rep, ref, str(d)))
    line = f"total: {rep.cycles:,.0f} cycles, {rep.energy_uj:,.2f} µJ ({conv.value} conventions)"
    if ref:
        line += f"  (Sparseloop: {ref['cycles']:,} cycles, {ref['energy_uj']:,.2f} µJ)"
    console.print(line)
    if json_path is not None:
        write_text(json_path, rep.to_json())
        console.print(f"--json: report written to {json_path}", highlight=False)


def _counts_table(rep: StudyReport, ref: dict[str, Any] | None, title: str) -> Table:
    """Per level and tensor: utilised instances, actual reads/fills/updates per instance (with
    Sparseloop's reference counts in brackets when ``ref`` is given), gated and skipped accesses
    and energy; then the MAC row (actual, gated and skipped MACs)."""
    from rich.table import Table

    t = Table(title=f"{title} (per instance; Sparseloop in brackets)" if ref else title)
    for col in (
        "level",
        "tensor",
        "inst",
        "reads",
        "fills",
        "updates",
        "gated",
        "skipped",
        "energy µJ",
    ):
        t.add_column(col, justify="left" if col in ("level", "tensor") else "right")
    for lv in rep.levels:
        for name, ts in lv.tensors.items():
            cells = []
            for kind in ("reads", "fills", "updates"):
                ours = getattr(ts, kind).actual
                theirs = (
                    (ref or {}).get("levels", {}).get(lv.name, {}).get(name, {}).get(kind)
                    if ref
                    else None
                )
                cells.append(f"{ours:,.0f}" + (f" [{theirs:,.0f}]" if theirs is not None else ""))
            gated = ts.reads.gated + ts.updates.gated
            skipped = ts.reads.skipped + ts.updates.skipped
            t.add_row(
                lv.name,
                name,
                f"{ts.utilized_instances:,.0f}",
                *cells,
                f"{gated:,.0f}",
                f"{skipped:,.0f}",
                f"{ts.energy_pj / 1e6:,.3f}",
            )
    c = rep.compute
    t.add_row(
        "MAC",
        "",
        f"{c.utilized_instances:,.0f}",
        f"{c.actual:,.0f} MACs",
        "",
        "",
        f"{c.gated:,.0f}",
        f"{c.skipped:,.0f}",
        f"{c.energy_pj / 1e6:,.3f}",
    )
    return t
