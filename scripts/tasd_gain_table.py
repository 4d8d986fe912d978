"""EDP gain of the TASD plan over the same engine without TASD, ResNet-50 and BERT-base at
{dense, 50 %, 80 %, 90 %} unstructured weight sparsity on every TASD engine (the issue-13 table,
next to the paper's "up to 83 %, 74 % on average"), at the search's defaults (``testy-model
search``: weight budget 0.05, activation budget ``plan_search.ACTIVATION_BUDGET``).

gain vs no TASD   = 1 − EDP(plan) / EDP(structured engine, no decomposition at all)
gain vs no unit   = 1 − EDP(plan) / EDP(best plan without the TASD unit: weights only)

EDPs are the network's (layers and non-GEMM operators, as ``eval`` totals them).

``--mode network``: the network quality budget instead (``search(mode="network")``: the
network's predicted quality loss ``<= --budget``, default 0.01 = the paper's 99 %; the no-unit
plan under the same budget); the dense BERT-base plan on each engine is printed layer by layer.

    python scripts/tasd_gain_table.py [--mode layer|network] [--budget B]
        [--activation-budget 0.125] [--engines E ...] [--out t.md]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from testy_model.graph.zoo import get_network
from testy_model.plan_search import ACTIVATION_BUDGET, SearchReport, search
from testy_model.spec import load_arch

ENGINES = (
    "stc_2of4_tasd",
    "vegeta_tasd",
    "highlight_tasd",
    "s2ta_tasd",
    "ttc_stc",
    "ttc_vegeta_m8",
)
NETS = (("resnet50", "ResNet-50"), ("bert-base", "BERT-base"))
SPARSITY = (0.0, 0.5, 0.8, 0.9)


def _label(s: float) -> str:
    return "dense" if s == 0 else f"{s:.0%}".replace("%", " %")


def _print_plan(rep: SearchReport) -> None:
    """The plan's TASD layers (series, orientation, error) and its predicted loss."""
    print(
        f"  predicted loss: plan {rep.predicted_loss():.4f}, no unit "
        f"{rep.predicted_loss('no_unit'):.4f}"
    )
    for r in rep.rows():
        if r["weights"] != "dense" or r["activations"] != "dense":
            print(
                f"  {r['layer']}: W {r['weights']}, A {r['activations']} ({r['orientation']} "
                f"in the A slot), error {r['error']:.3f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("layer", "network"), default="layer")
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--activation-budget", type=float, default=ACTIVATION_BUDGET)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    args = ap.parse_args()
    if args.budget is None:
        args.budget = 0.01 if args.mode == "network" else 0.05
    root = Path(__file__).resolve().parents[1]
    head = [f"{title} {_label(s)}" for _, title in NETS for s in SPARSITY]
    setting = (
        f"network quality budget {args.budget:g} (predicted loss of the whole network)"
        if args.mode == "network"
        else f"weight budget {args.budget:g}, activation budget {args.activation_budget:g} "
        "(per layer)"
    )
    lines = [
        f"{setting}; gain vs no TASD (in brackets: vs the best plan without the TASD unit)",
        "",
        "| engine | " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * len(head),
    ]
    gains: list[float] = []
    unit: list[float] = []
    for eng in args.engines:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arch = load_arch(root / "arch_specs" / f"{eng}.yaml")
        cells = []
        for net_name, _ in NETS:
            for s in SPARSITY:
                t0 = time.perf_counter()
                net = get_network(net_name, weight_sparsity=s)
                rep = search(
                    net,
                    arch,
                    budget=args.budget,
                    mode=args.mode,
                    activation_budget=args.activation_budget,
                )
                g_n = 1 - rep.ratio("native")
                g_u = 1 - rep.ratio("no_unit")
                sp = 1 / rep.ratio("dense", "cycles")
                gains.append(g_n)
                unit.append(g_u)
                cells.append(f"{g_n:.0%} ({g_u:.0%})".replace("%", " %"))
                print(
                    f"{eng} {net_name} {s:.0%}: vs no TASD {g_n:.1%}, vs no unit {g_u:.1%}, "
                    f"speed-up {sp:.2f}× ({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
                if args.mode == "network" and net_name == "bert-base" and s == 0:
                    _print_plan(rep)
        lines.append(f"| `{eng}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"mean gain vs no TASD {sum(gains) / len(gains):.1%}, max {max(gains):.1%} over "
        f"{len(gains)} cases; vs no unit: mean {sum(unit) / len(unit):.1%}, max "
        f"{max(unit):.1%}, min {min(unit):.1%}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
