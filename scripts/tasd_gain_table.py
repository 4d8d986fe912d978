"""EDP gain of the TASD plan over the same engine without TASD, ResNet-50 and BERT-base at
{dense, 50 %, 80 %, 90 %} unstructured weight sparsity on every TASD engine (the issue-13 table,
next to the paper's "up to 83 %, 74 % on average").

gain vs no TASD   = 1 − EDP(plan) / EDP(structured engine, no decomposition at all)
gain vs no unit   = 1 − EDP(plan) / EDP(best plan without the TASD unit: weights only)

    python scripts/tasd_gain_table.py [--budget 0.05] [--activation-budget 0.5] [--out table.md]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from testy_model.graph.zoo import get_network
from testy_model.plan_search import search
from testy_model.spec import load_arch

ENGINES = (
    "stc_2of4_tasd",
    "vegeta_tasd",
    "highlight_tasd",
    "s2ta_tasd",
    "ttc_stc",
    "ttc_vegeta_m8",
)
NETS = ("resnet50", "bert-base")
SPARSITY = (0.0, 0.5, 0.8, 0.9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=0.05)
    ap.add_argument("--activation-budget", type=float, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    lines = [
        f"budget {args.budget:g} (per layer), activation budget {args.activation_budget}; "
        "gain = 1 − EDP(plan)/EDP(baseline)",
        "",
        "| engine | network | sparsity | vs no TASD | vs no unit | speed-up vs dense |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for eng in ENGINES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arch = load_arch(root / "arch_specs" / f"{eng}.yaml")
        for net_name in NETS:
            for s in SPARSITY:
                t0 = time.perf_counter()
                net = get_network(net_name, weight_sparsity=s)
                rep = search(
                    net, arch, budget=args.budget, activation_budget=args.activation_budget
                )
                g_n = 1 - rep.ratio("native")
                g_u = 1 - rep.ratio("no_unit")
                sp = 1 / rep.ratio("dense", "cycles")
                row = f"| {eng} | {net_name} | {s:.0%} | {g_n:.1%} | {g_u:.1%} | {sp:.2f}× |"
                lines.append(row)
                print(row, f"({time.perf_counter() - t0:.1f} s)", flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
