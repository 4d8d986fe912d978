"""How much of a TASD plan's EDP gain over the same engine without the TASD unit comes from the
slots TASD saves, and how much from the plan's layers running on other mappings.

Every candidate runs on the mapper's mapping for its class (``plan_search.pricing``), so a
decomposed layer may also run on a different mapping than its dense form. This script re-prices,
layer by layer, the no-unit plan's option on the TASD plan's mapping of that layer
(``pricing.plan_mapping``), giving

    gain at equal mappings = 1 − EDP(plan) / EDP(no-unit options on the plan's mappings)

next to the search's ``gain vs no unit`` (EDPs of the network, operators included; a layer whose
two options differ in orientation keeps the no-unit option's own mapping, as a mapping is for
one orientation). When the
two differ, the difference is the mapper's: the no-unit option had a better mapping available
than the one the mapper found for its own class.

    python scripts/tasd_gain_split.py [--network bert-base] [--weight-sparsity 0] [ENGINE ...]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from tasd_gain_table import ENGINES  # the same engines as the gain table (scripts/)

from testy_model.graph.zoo import get_network
from testy_model.plan_search import search
from testy_model.plan_search.pricing import evaluate_candidates, plan_mapping
from testy_model.spec import load_arch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("engines", nargs="*", default=list(ENGINES))
    ap.add_argument("--network", default="bert-base")
    ap.add_argument("--weight-sparsity", type=float, default=0.0)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    net = get_network(args.network, weight_sparsity=args.weight_sparsity)
    by_name = {x.name: x for x in net.layers}
    print("| engine | gain vs no unit | gain at equal mappings |")
    print("| --- | ---: | ---: |")
    for eng in args.engines:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arch = load_arch(root / "arch_specs" / f"{eng}.yaml")
        rep = search(net, arch, budget=0.05)
        e0, s0 = rep.fixed
        e_ref, s_ref = e0, s0
        for t, i, j in zip(rep.tables, rep.choice, rep._idx("no_unit"), strict=True):
            if i == j or t.options[i].transposed != t.options[j].transposed:
                e_ref += float(t.energy_pj[j])
                s_ref += float(t.seconds[j])
                continue
            layer = by_name[t.name]
            m = plan_mapping(layer, arch, t.options[i])
            r = evaluate_candidates(layer, arch, m, options=[t.options[j]], require_dense=False)
            k = r.options.index(t.options[j])
            e_ref += float(r.energy_pj[k])
            s_ref += float(r.seconds[k])
        plan = rep.totals("plan")
        g_u = 1 - rep.ratio("no_unit")
        g_m = 1 - plan.edp_pj_s / (e_ref * s_ref)
        print(f"| `{eng}` | {g_u:.2%} | {g_m:.2%} |", flush=True)


if __name__ == "__main__":
    main()
