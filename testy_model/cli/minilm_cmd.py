"""``testy-model minilm search``: the least-EDP TASD plan of all-MiniLM-L6-v2 on an engine that
keeps the embeddings' mean cosine similarity to the dense model >= a target, with measured
per-layer losses (:mod:`testy_model.models.search_quality`); compared with every uniform plan
and with the closed-form proxy-budget plan of ``testy-model search``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from testy_model.cli.app import app, console, err_console, user_errors
from testy_model.errors import TestyModelError

minilm_app = typer.Typer(help="The real-model case: all-MiniLM-L6-v2 (needs the models extra).")
app.add_typer(minilm_app, name="minilm")

SHIPPED_CACHE = Path(__file__).resolve().parents[1] / "data" / "minilm_losses.csv"
"""Per-layer losses measured once on the shipped sentences (reused; re-measured if stale)."""


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
        None, "--cache", help="Loss cache CSV to read and extend (default: the shipped one)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the plan as YAML."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary as JSON."),
    held_out: bool = typer.Option(
        True, "--held-out/--no-held-out", help="Measure the plan on the held-out sentences."
    ),
) -> None:
    """Quality-constrained plan search on MiniLM-L6 (search sentences: 208 of the shipped 260)."""
    from testy_model.model.plan import LayerPlan, Plan
    from testy_model.models import MiniLM, load_sentences, split_sentences
    from testy_model.models.search_quality import (
        LossCache,
        check_uniform,
        cost_tables,
        minilm_network,
        plan_cosine,
        proxy_plan,
        quality_search,
        report_choice,
        totals,
    )
    from testy_model.spec import load_arch

    if not 0.0 < target <= 1.0:
        raise TestyModelError(f"--target {target!r}: expected a mean cosine in (0, 1]")
    if not 0.0 <= weight_sparsity < 1.0:
        raise TestyModelError(f"--weight-sparsity {weight_sparsity!r}: expected a value in [0, 1)")
    a = load_arch(arch)
    t0 = time.perf_counter()
    model = MiniLM.load()
    search_s, held_s = split_sentences(load_sentences())
    loss_cache = LossCache.load(cache if cache is not None else SHIPPED_CACHE)
    net = minilm_network(model, weight_sparsity=weight_sparsity)
    tables = cost_tables(net, a, max_terms)
    res = quality_search(
        model, a, search_s, target=target, weight_sparsity=weight_sparsity,
        max_terms=max_terms, cache=loss_cache, tables=tables,
        log=lambda m: err_console.print(m, highlight=False),
    )  # fmt: skip
    if cache is not None:
        loss_cache.save(cache)
    summary = res.to_dict()
    if held_out:
        ref = model.encode(held_s)
        summary["held_out_mean_cosine"] = plan_cosine(
            model, held_s, tables, res.choice, weight_sparsity, ref
        )
    dense_edp = res.edp("dense")
    if held_out:
        # uniform plans at most as costly as the searched one: do any meet the target?
        uni = check_uniform(model, held_s, tables, res.edp("plan"), weight_sparsity, target, True)
        cheaper = uni[uni.edp_pj_s <= res.edp("plan")]
        summary["cheaper_uniform_plans"] = {
            "count": len(cheaper),
            "classes_run": int(cheaper.drop_duplicates(["w_class", "a_class"]).measured.sum()),
            "meeting_target": [
                f"W={r.weights},A={r.activations}" for r in cheaper[cheaper.meets].itertuples()
            ],
        }
    proxy = proxy_plan(net, a, budget=1.0 - target, max_terms=max_terms)
    pidx = report_choice(proxy, tables)
    summary["proxy_plan"] = {
        "budget": 1.0 - target,
        "mode": "global",
        "edp_vs_dense": totals(tables, pidx)[2] / dense_edp,
        "search_mean_cosine": plan_cosine(model, search_s, tables, pidx, weight_sparsity),
    }
    summary["wall_s"] = time.perf_counter() - t0

    t = Table(title=f"all-MiniLM-L6-v2 on {a.name}: mean cosine >= {target:g}")
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
    if out is not None:
        layers = {k: LayerPlan(weights=w, activations=ac) for k, (w, ac) in res.plan.items()}
        out.write_text(Plan(layers=layers).to_yaml_text(), encoding="utf-8")
    if json_out is not None:
        json_out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
