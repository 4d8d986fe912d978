"""``testy-model search``: the per-layer TASD plan of a network on an engine, with a progress bar
over layers, the per-layer table, and the totals against dense and against the structured engine
without TASD."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from testy_model.cli.app import app, console, err_console, parse_params, user_errors
from testy_model.cli.options import ConventionsOption
from testy_model.cli.outputs import check_outputs, save_figure, write_text
from testy_model.errors import SpecError

if TYPE_CHECKING:
    from rich.table import Table

    from testy_model.plan_search import SearchReport
    from testy_model.plan_search.plan import Mode, Objective
    from testy_model.spec.inputs import Design
    from testy_model.spec.mapping import Mapping
    from testy_model.spec.workload import Network


def _mapping_arg(mapping: str, design: Design, net: Network) -> Mapping | None:
    """``mapper`` or a mapping file read as every command reads it (spec.inputs)."""
    from testy_model.spec.inputs import check_mapping_option, load_file_mapping

    check_mapping_option(mapping)
    if mapping == "mapper":
        return None
    return load_file_mapping(mapping, design, net)


def layer_table(report: SearchReport) -> Table:
    """Rich table: one row per layer with the chosen series, error, cycles, energy, speed-up."""
    from rich.table import Table

    t = Table(
        title=f"{report.network} on {report.arch}: {report.mode} budget {report.budget:g}"
        + (
            f" (activations {report.activation_budget:g})"
            if report.activation_budget is not None
            else ""
        )
        + f", objective {report.objective}"
    )
    for col in ("layer", "MACs", "weights", "activations", "A slot", "error", "cycles",
                "energy (µJ)", "speed-up", "energy ratio"):  # fmt: skip
        left = col in ("layer", "weights", "activations", "A slot")
        t.add_column(col, justify="left" if left else "right")
    for r in report.rows():
        t.add_row(
            r["layer"],
            f"{r['macs'] / 1e6:,.1f} M",
            r["weights"],
            r["activations"],
            "act" if r["orientation"] == "activation" else "W",
            f"{r['error']:.4f}",
            f"{r['cycles']:,.0f}",
            f"{r['energy_pj'] / 1e6:,.2f}",
            f"{r['speedup']:.2f}×",
            f"{r['energy_pj'] / r['dense_energy_pj']:.3f}",
        )
    return t


def totals_table(report: SearchReport) -> Table:
    """Rich table of the totals of dense, the structured engine without TASD, and the plan."""
    from rich.table import Table

    t = Table(
        title="totals (layers and non-GEMM operators in sequence; EDP = total energy × total time)"
    )
    for col in ("plan", "cycles", "energy (µJ)", "EDP (pJ·s)", "mean error", "max error",
                "EDP / dense", "EDP / no-TASD"):  # fmt: skip
        t.add_column(col, justify="left" if col == "plan" else "right")
    dense = report.totals("dense")
    native = report.totals("native")
    for label, which in (
        ("dense", "dense"),
        ("structured, no TASD", "native"),
        ("TASD, weights only (no unit)", "no_unit"),
        ("TASD plan", "plan"),
    ):
        x = report.totals(which)
        t.add_row(
            label,
            f"{x.cycles:,.0f}",
            f"{x.energy_pj / 1e6:,.1f}",
            f"{x.edp_pj_s:.4g}",
            f"{x.mean_error:.4f}",
            f"{x.max_error:.4f}",
            f"{x.edp_pj_s / dense.edp_pj_s:.3f}",
            f"{x.edp_pj_s / native.edp_pj_s:.3f}",
        )
    return t


def dominant_lines(report: SearchReport, k: int = 5) -> list[str]:
    """The operators that dominate the plan's energy (its layers, and the non-GEMM operators of
    the network's graph priced without fusion, which no plan changes), and their share."""
    ops = report.operators
    rows = [(r["layer"], float(r["energy_pj"])) for r in report.rows()]
    rows += [(o.name, o.energy_pj) for o in ops]
    total = sum(v for _, v in rows) or 1.0
    rows.sort(key=lambda r: (-r[1], r[0]))
    top = ", ".join(f"{n} {v / total:.1%}" for n, v in rows[:k])
    lines = [f"operators that dominate energy (plan + non-GEMM): {top}"]
    if ops:
        e = sum(o.energy_pj for o in ops)
        lines.append(
            f"non-GEMM operators ({len(ops)}, the same in every plan, unfused, in the totals): "
            f"{e / 1e6:,.1f} µJ, {e / total:.1%} of the plan's energy"
        )
    return lines


@app.command("search")
@user_errors
def search_command(
    arch: Path = typer.Option(..., "--arch", "-a", help="Architecture YAML (Timeloop style)."),
    network: str = typer.Option(
        ..., "--network", "-n", help="Zoo network name (resnet50, bert-base, ...) or a YAML file."
    ),
    weight_sparsity: float | None = typer.Option(
        None, "--weight-sparsity", help="Unstructured weight sparsity of a zoo network (0..1)."
    ),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        metavar="KEY=VALUE",
        help="Zoo network parameter, e.g. seq_len=128 (repeatable).",
    ),
    budget: float | None = typer.Option(
        None,
        "--budget",
        "-b",
        help="Layer mode: each layer's error budget; global: the MAC-weighted mean error (both "
        "default 0.05); network: the network's predicted quality loss (default 0.01 = 99 %).",
        show_default=False,
    ),
    activation_budget: float | None = typer.Option(
        None,
        "--activation-budget",
        help="Per-layer error budget for activations (weights keep --budget); the default "
        "(plan_search.ACTIVATION_BUDGET = 0.125) keeps MiniLM within 1 % cosine loss with "
        "every activation decomposed.",
    ),
    error_metric: str | None = typer.Option(
        None,
        "--error-metric",
        help="Closed-form error units: count (fraction of non-zeros dropped) | l2 (relative "
        "Frobenius error of a Gaussian operand, as measured on real tensors). Default: count; "
        "l2 in network mode (the only one it accepts).",
        show_default=False,
    ),
    mode: str = typer.Option(
        "layer",
        "--mode",
        help="layer | global | network (a predicted-quality-loss budget on the whole network).",
    ),
    layer_cap: float = typer.Option(
        1.0, "--layer-cap", help="Global mode: the largest error any one layer may take."
    ),
    objective: str = typer.Option("edp", "--objective", help="edp | latency | energy."),
    conventions: ConventionsOption = "timeloop",
    mapping: str = typer.Option(
        "mapper", "--mapping", help="A mapping YAML used for every layer, or 'mapper'."
    ),
    max_terms: int = typer.Option(3, "--max-terms", help="Longest series considered (1..4)."),
    set_: list[str] | None = typer.Option(
        None,
        "--set",
        metavar="KEY.PATH=VALUE",
        help="Architecture override (repeatable; bandwidths in words/cycle, as in the file).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the plan YAML here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the report JSON here."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write the per-layer CSV here."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a per-layer bar chart (PNG)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print the totals only."),
    force: bool = typer.Option(False, "--force", help="Replace output files that already exist."),
) -> None:
    """Search the per-layer TASD plan of minimum EDP (or latency, energy) within an error budget,
    and compare it with dense and with the structured engine without TASD."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from testy_model.plan_search import ACTIVATION_BUDGET, MODES, OBJECTIVES, search
    from testy_model.spec.located import did_you_mean

    if activation_budget is None:
        activation_budget = ACTIVATION_BUDGET

    t0 = time.perf_counter()
    if mode not in MODES:
        raise SpecError(
            f"--mode {mode!r}: expected one of {', '.join(MODES)}{did_you_mean(mode, MODES)}"
        )
    if objective not in OBJECTIVES:
        raise SpecError(
            f"--objective {objective!r}: expected one of {', '.join(OBJECTIVES)}"
            f"{did_you_mean(objective, OBJECTIVES)}"
        )
    if not 1 <= max_terms <= 4:
        raise SpecError(f"--max-terms {max_terms}: expected 1..4")
    if weight_sparsity is not None and not 0.0 <= weight_sparsity < 1.0:
        raise SpecError(f"--weight-sparsity {weight_sparsity}: expected a fraction in [0, 1)")
    from testy_model.spec.inputs import load_design, resolve_network

    outputs = check_outputs(
        {"--out": out, "--json": json_path, "--csv": csv_path, "--plot": plot},
        inputs=[arch, network, mapping],
        force=force,
    )
    design = load_design(arch, list(set_ or []))
    a = design.arch
    net = resolve_network(network, arch, weight_sparsity, params=parse_params(list(param or [])))
    m = _mapping_arg(mapping, design, net)
    with Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=len(net.layers))

        def tick(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, description=name)

        report = search(
            net,
            a,
            budget=budget,
            mode=cast("Mode", mode),  # in MODES: checked above
            objective=cast("Objective", objective),  # in OBJECTIVES: checked above
            mappings=m,
            max_terms=max_terms,
            layer_cap=layer_cap,
            progress=tick,
            activation_budget=activation_budget,
            error_metric=error_metric,
            conventions=conventions,
        )
    con = console  # wide when piped (cli.app.PIPE_WIDTH)
    if not quiet:
        con.print(layer_table(report))
    con.print(totals_table(report))
    con.print(
        f"EDP ratio of the TASD plan: {report.ratio('dense'):.3f} of dense, "
        f"{report.ratio('native'):.3f} of the structured engine without TASD "
        f"(speed-up {1 / report.ratio('dense', 'cycles'):.2f}× over dense)",
        highlight=False,
    )
    con.print(
        f"{report.candidates} candidates over {len(report.tables)} layers ({report.priced} "
        f"within the error cap priced, each on its own mapping), searched in "
        f"{time.perf_counter() - t0:.2f} s",
        highlight=False,
    )
    if report.mode == "network":
        con.print(
            f"predicted quality loss (budget {report.budget:g}): plan "
            f"{report.predicted_loss('plan'):.4f}, weights only (no unit) "
            f"{report.predicted_loss('no_unit'):.4f}",
            highlight=False,
        )
    for line in dominant_lines(report):
        con.print(line, highlight=False)
    if "--out" in outputs:
        write_text(outputs["--out"], report.plan.to_yaml_text())
        console.print(f"--out: plan written to {outputs['--out']}", highlight=False)
    if "--json" in outputs:
        report.to_json(outputs["--json"])
        console.print(f"--json: report written to {outputs['--json']}", highlight=False)
    if "--csv" in outputs:
        report.to_frame().to_csv(outputs["--csv"], index=False)
        console.print(f"--csv: per-layer CSV written to {outputs['--csv']}", highlight=False)
    if "--plot" in outputs:
        from testy_model.plots import search_figure

        save_figure(search_figure(report), outputs["--plot"])
        console.print(f"--plot: figure written to {outputs['--plot']}", highlight=False)
