"""EDP gain of the TASD plan over the same engine without TASD, ResNet-50 and BERT-base at
{dense, 50 %, 80 %, 90 %} unstructured weight sparsity on every TASD engine (the issue-13 table,
next to the paper's "up to 83 %, 74 % on average"), at the search's defaults (``testy-model
search``: weight budget 0.05, activation budget ``plan_search.ACTIVATION_BUDGET``).

gain vs no TASD   = 1 − EDP(plan) / EDP(structured engine, no decomposition at all)
gain vs no unit   = 1 − EDP(plan) / EDP(best plan without the TASD unit: weights only)

EDPs are the network's (layers and non-GEMM operators, as ``eval`` totals them).

    python scripts/tasd_gain_table.py [--budget 0.05] [--activation-budget 0.125] [--out t.md]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from testy_model.graph.zoo import get_network
from testy_model.plan_search import ACTIVATION_BUDGET, search
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=0.05)
    ap.add_argument("--activation-budget", type=float, default=ACTIVATION_BUDGET)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    head = [f"{title} {_label(s)}" for _, title in NETS for s in SPARSITY]
    lines = [
        f"weight budget {args.budget:g}, activation budget {args.activation_budget:g} (per "
        "layer); gain vs no TASD (in brackets: vs the best plan without the TASD unit)",
        "",
        "| engine | " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * len(head),
    ]
    gains: list[float] = []
    for eng in ENGINES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arch = load_arch(root / "arch_specs" / f"{eng}.yaml")
        cells = []
        for net_name, _ in NETS:
            for s in SPARSITY:
                t0 = time.perf_counter()
                net = get_network(net_name, weight_sparsity=s)
                rep = search(
                    net, arch, budget=args.budget, activation_budget=args.activation_budget
                )
                g_n = 1 - rep.ratio("native")
                g_u = 1 - rep.ratio("no_unit")
                sp = 1 / rep.ratio("dense", "cycles")
                gains.append(g_n)
                cells.append(f"{g_n:.0%} ({g_u:.0%})".replace("%", " %"))
                print(
                    f"{eng} {net_name} {s:.0%}: vs no TASD {g_n:.1%}, vs no unit {g_u:.1%}, "
                    f"speed-up {sp:.2f}× ({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
        lines.append(f"| `{eng}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"mean gain vs no TASD {sum(gains) / len(gains):.1%}, max {max(gains):.1%} over "
        f"{len(gains)} cases",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
