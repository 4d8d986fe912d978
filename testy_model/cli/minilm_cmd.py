"""``testy-model minilm search``: the least-EDP TASD plan of all-MiniLM-L6-v2 on an engine that
keeps the embeddings' mean cosine similarity to the dense model >= a target, with measured
per-layer losses (:mod:`testy_model.models.search_quality`); compared with every uniform plan
and with the closed-form proxy-budget plan of ``testy-model search``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import typer

from testy_model.cli.app import app, console, err_console, user_errors
from testy_model.cli.outputs import check_outputs, write_text
from testy_model.errors import TestyModelError

minilm_app = typer.Typer(help="The real-model case: all-MiniLM-L6-v2 (needs the models extra).")
app.add_typer(minilm_app, name="minilm")


@contextmanager
def _phase(text: str) -> Iterator[None]:
    """One progress line on stderr when a phase starts, and its time when it ends."""
    err_console.print(f"{text} ...", highlight=False)
    t0 = time.perf_counter()
    yield
    err_console.print(f"  done in {time.perf_counter() - t0:.1f} s", highlight=False)


@minilm_app.command("search")
@user_errors
def minilm_search(
    arch: Path = typer.Option(..., "--arch", "-a", help="Architecture YAML (Timeloop style)."),
    target: float = typer.Option(
        0.99, "--target", help="Mean cosine similarity to the dense model to keep (0..1]."
    ),
    weight_sparsity: float = typer.Option(
        0.0, "--weight-sparsity", help="Unstructured magnitude pruning of the weights first."
    ),
    max_terms: int = typer.Option(2, "--max-terms", help="Longest TASD series considered."),
    cache: Path | None = typer.Option(
        None,
        "--cache",
        help="Loss cache CSV to read and extend (default: $XDG_CACHE_HOME/testy-model/"
        "minilm_losses.csv, started from the shipped losses).",
    ),
    keep_losses: bool = typer.Option(
        True, "--keep-losses/--no-keep-losses", help="Save newly measured losses to the cache."
    ),
    threads: int = typer.Option(
        1,
        "--threads",
        help="BLAS threads of the numpy forward pass (its small GEMMs run fastest on one "
        "thread; more only help on an idle machine). At most the cores this process may use.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the plan as YAML."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary as JSON."),
    held_out: bool = typer.Option(
        True, "--held-out/--no-held-out", help="Measure the plan on the held-out sentences."
    ),
) -> None:
    """Quality-constrained plan search on MiniLM-L6 (search sentences: 208 of the shipped 260)."""
    from threadpoolctl import threadpool_limits

    from testy_model.model.plan import LayerPlan, Plan
    from testy_model.models import MiniLM, load_sentences, split_sentences
    from testy_model.models.search_quality import (
        cost_tables,
        minilm_network,
        open_loss_cache,
        plan_cosine,
        quality_search,
        user_loss_cache,
    )
    from testy_model.spec.inputs import load_design

    if not 0.0 < target <= 1.0:
        raise TestyModelError(f"--target {target!r}: expected a mean cosine in (0, 1]")
    if not 0.0 <= weight_sparsity < 1.0:
        raise TestyModelError(f"--weight-sparsity {weight_sparsity!r}: expected a value in [0, 1)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not 1 <= threads <= (cores or 1):
        raise TestyModelError(f"--threads {threads}: expected 1..{cores} (the cores given)")
    cache_path = cache if cache is not None else user_loss_cache()
    outputs = check_outputs({"--out": out, "--json": json_out}, inputs=[arch, cache_path])
    a = load_design(arch).arch
    t0 = time.perf_counter()
    with threadpool_limits(limits=threads):
        with _phase("loading all-MiniLM-L6-v2 and the sentences"):
            model = MiniLM.load()
            search_s, held_s = split_sentences(load_sentences())
            loss_cache, cache_path = open_loss_cache(cache_path)
            n_known = len(loss_cache.entries)
        with _phase(f"pricing every candidate series of 36 layers on {a.name}"):
            net = minilm_network(model, weight_sparsity=weight_sparsity)
            tables = cost_tables(net, a, max_terms)
        with _phase("measuring per-layer losses (one line each) and verifying the plan"):
            res = quality_search(
                model, a, search_s, target=target, weight_sparsity=weight_sparsity,
                max_terms=max_terms, cache=loss_cache, tables=tables,
                log=lambda m: err_console.print("  " + m, highlight=False),
            )  # fmt: skip
        if keep_losses and len(loss_cache.entries) > n_known:
            loss_cache.save(cache_path)
            err_console.print(
                f"{len(loss_cache.entries) - n_known} measured losses kept in {cache_path}",
                highlight=False,
            )
        summary = res.to_dict()
        if held_out:
            with _phase("measuring the plan on the held-out sentences"):
                ref = model.encode(held_s)
                summary["held_out_mean_cosine"] = plan_cosine(
                    model, held_s, tables, res.choice, weight_sparsity, ref
                )
        ctx = _Run(model, held_s, search_s, net, a, tables, res, weight_sparsity, target)
        summary.update(_uniform_and_proxy(ctx, max_terms, held_out))
    summary["wall_s"] = time.perf_counter() - t0
    _print_summary(a.name, target, res, summary)
    if "--out" in outputs:
        layers = {k: LayerPlan(weights=w, activations=ac) for k, (w, ac) in res.plan.items()}
        write_text(outputs["--out"], Plan(layers=layers).to_yaml_text())
        console.print(f"--out: plan written to {outputs['--out']}", highlight=False)
    if "--json" in outputs:
        write_text(outputs["--json"], json.dumps(summary, indent=2) + "\n")
        console.print(f"--json: summary written to {outputs['--json']}", highlight=False)


class _Run(NamedTuple):
    """What the later phases of ``minilm search`` need from the search."""

    model: Any
    held_s: list[str]
    search_s: list[str]
    net: Any
    arch: Any
    tables: Any
    res: Any
    weight_sparsity: float
    target: float


def _uniform_and_proxy(run: _Run, max_terms: int, held_out: bool) -> dict[str, Any]:
    """The held-out check of the cheaper uniform plans and the proxy-budget plan."""
    from testy_model.models.search_quality import (
        check_uniform,
        plan_cosine,
        proxy_plan,
        report_choice,
        totals,
    )

    model, held_s, search_s, net, a, tables, res, weight_sparsity, target = run
    extra: dict[str, Any] = {}
    dense_edp = res.edp("dense")
    if held_out:
        with _phase("checking the uniform plans at most as costly (held-out sentences)"):
            # uniform plans at most as costly as the searched one: do any meet the target?
            uni = check_uniform(
                model, held_s, tables, res.edp("plan"), weight_sparsity, target, True
            )
        cheaper = uni[uni.edp_pj_s <= res.edp("plan")]
        extra["cheaper_uniform_plans"] = {
            "count": len(cheaper),
            "classes_run": int(cheaper.drop_duplicates(["w_class", "a_class"]).measured.sum()),
            "meeting_target": [
                f"W={r.weights},A={r.activations}" for r in cheaper[cheaper.meets].itertuples()
            ],
        }
    with _phase("the closed-form proxy-budget plan, measured on the search sentences"):
        proxy = proxy_plan(net, a, budget=1.0 - target, max_terms=max_terms)
        pidx = report_choice(proxy, tables)
        extra["proxy_plan"] = {
            "budget": 1.0 - target,
            "mode": "global",
            "edp_vs_dense": totals(tables, pidx)[2] / dense_edp,
            "search_mean_cosine": plan_cosine(model, search_s, tables, pidx, weight_sparsity),
        }
    return extra


def _print_summary(arch_name: str, target: float, res: Any, summary: dict[str, Any]) -> None:
    """The per-layer table and the one-line summary."""
    from rich.table import Table

    t = Table(title=f"all-MiniLM-L6-v2 on {arch_name}: mean cosine >= {target:g}")
    for col in ("layer", "weights", "activations", "measured loss"):
        t.add_column(col)
    for r in res.to_frame().itertuples(index=False):
        if (r.weights, r.activations) != ("dense", "dense"):
            t.add_row(r.layer, r.weights, r.activations, f"{r.loss:.5f}")
    console.print(t)
    console.print(
        f"EDP {summary['edp_vs_dense']:.4f} of dense; mean cosine {res.search_cos:.5f} (search)"
        + (
            f", {summary['held_out_mean_cosine']:.5f} (held-out)"
            if "held_out_mean_cosine" in summary
            else ""
        )
        + f"; proxy-budget plan: EDP {summary['proxy_plan']['edp_vs_dense']:.4f} of dense, "
        f"mean cosine {summary['proxy_plan']['search_mean_cosine']:.5f}"
        + (
            f"; uniform plans at most as costly: {c['count']}, meeting the target (held-out): "
            f"{len(c['meeting_target'])}"
            if (c := summary.get("cheaper_uniform_plans"))
            else ""
        )
        + f"; {summary['wall_s']:.1f} s",
        highlight=False,
    )
    if not res.feasible:
        err_console.print("warning: no plan meets the target; the dense plan is returned")
