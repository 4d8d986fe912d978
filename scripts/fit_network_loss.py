"""The fit behind the network mode's predicted quality loss (``plan_search.quality``): per
operand ``loss = c · e^p`` on MiniLM-L6's 483 measured single-layer losses
(``data/minilm_losses.csv``), ``e`` the relative Frobenius error (weights: measured on the real
weight's decomposition; activations: the Gaussian closed form, ``error_metric="l2"``).

Fit: ``p`` = slope of the least-squares line of ``log loss`` on ``log e``; ``c`` = Σ loss /
Σ e^p (the predicted sum over the data equals the measured sum). Printed for the fitted exponent
and for ``p = 2`` (``loss ∝ e²``): the ratio predicted / measured per case (median, 10 % and
90 % quantiles) and Spearman's ρ of prediction against loss.

``--validate`` adds whole-model checks (mean cosine over the 260 shipped sentences, ~20 s per
plan on one core): every linear layer's activation at ``7:8``, the network-mode plan
(``search(..., mode="network", budget)``) of MiniLM on three engines, and the verified plans of
the measured-loss search (``quality_search``, docs/minilm.md): predicted against measured.

    OPENBLAS_NUM_THREADS=1 python scripts/fit_network_loss.py [--validate] [--budget 0.01]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from testy_model.models import MiniLM
from testy_model.models.error_quality import _spearman, error_table
from testy_model.models.search_quality import LossCache

ROOT = Path(__file__).resolve().parents[1]


def fit(t: pd.DataFrame) -> None:
    """Print the fit per operand, pooled over layers and per layer role (module docstring)."""
    from testy_model.plan_search.quality import layer_role

    t = t.assign(role=[layer_role(n) for n in t["layer"]])
    print("| operand | role | cases | form | p | c | ratio median | 10 % | 90 % | Spearman ρ |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for op_key, g in t.groupby("operand"):
        op = str(op_key)
        e, loss = g["e"].to_numpy(), g["loss"].to_numpy()
        slope = float(np.polyfit(np.log(e), np.log(loss), 1)[0])
        for form, p in (("c·e^p, p fitted", slope), ("c·e²", 2.0)):
            _row(op, "pooled", form, p, e, loss, np.full(len(g), loss.sum() / (e**p).sum()))
        c = np.zeros(len(g))
        for role, h in g.groupby("role"):
            he, hl = h["e"].to_numpy(), h["loss"].to_numpy()
            ch = hl.sum() / (he**slope).sum()
            c[g.index.get_indexer(h.index)] = ch
            _row(op, str(role), "c_role·e^p", slope, he, hl, np.full(len(h), ch))
        _row(op, "all, by role", "c_role·e^p", slope, e, loss, c)


def _row(
    op: str, role: str, form: str, p: float, e: np.ndarray, loss: np.ndarray, c: np.ndarray
) -> None:
    pred = c * e**p
    q10, q50, q90 = np.quantile(pred / loss, [0.1, 0.5, 0.9])
    c_txt = f"{c[0]:.4f}" if np.all(c == c[0]) else "by role"
    print(
        f"| {op} | {role} | {len(e)} | {form} | {p:.3f} | {c_txt} | {q50:.2f} | {q10:.2f} | "
        f"{q90:.2f} | {_spearman(pred, loss):.3f} |"
    )


def validate(model: MiniLM, budget: float) -> None:
    """Whole-model predicted vs measured loss (module docstring)."""
    from testy_model.models.greedy_plan import model_plan
    from testy_model.models.plan_costs import minilm_network
    from testy_model.models.quality import cosine
    from testy_model.plan_search import closed_form_error, operand_loss, search
    from testy_model.plan_search.quality import layer_role
    from testy_model.spec import load_arch
    from testy_model.spec.workload import Density
    from testy_model.tasd.pattern import TasdSeries

    text = (ROOT / "testy_model" / "data" / "sentences.txt").read_text(encoding="utf-8")
    sentences = [s for s in text.splitlines() if s.strip()]
    ref = model.encode(sentences)
    names = [n for n, _ in model.linear_layers()]

    def measured(plan: dict[str, tuple[str, str]]) -> float:
        out = model.encode(sentences, plan=model_plan(plan))
        return 1.0 - float(cosine(ref, out).mean())

    print("\n| plan | TASD layers | predicted loss | measured loss (260 sentences) |")
    print("| --- | ---: | ---: | ---: |")
    e78 = closed_form_error(TasdSeries.parse("7:8"), Density(), metric="l2")
    pred = sum(float(operand_loss(e78, "activation", layer_role(n))) for n in names)
    got = measured({n: ("dense", "7:8") for n in names})
    print(f"| every activation 7:8 | {len(names)} | {pred:.4f} | {got:.4f} |", flush=True)
    for eng in ("stc_2of4_tasd", "vegeta_tasd", "s2ta_tasd"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arch = load_arch(ROOT / "arch_specs" / f"{eng}.yaml")
        rep = search(minilm_network(model), arch, mode="network", budget=budget, max_terms=2)
        plan = {
            k: (str(o.weights), str(o.activations))
            for k, o in rep.plan.layers.items()
            if not o.is_dense
        }
        got = measured(plan)
        print(
            f"| network mode, budget {budget:g}, `{eng}` (EDP / no TASD "
            f"{rep.ratio('native'):.3f}) | {len(plan)} | {rep.predicted_loss():.4f} | "
            f"{got:.4f} |",
            flush=True,
        )


def validate_verified(model: MiniLM, cache: LossCache) -> None:
    """The predicted loss of the measured-loss searches' verified plans (``quality_search``,
    docs/minilm.md; closed-form errors of dense operands) against their measured loss on the
    208 search sentences."""
    from testy_model.models import load_sentences
    from testy_model.models.quality import split_sentences
    from testy_model.models.search_quality import quality_search
    from testy_model.plan_search import closed_form_error, operand_loss
    from testy_model.plan_search.quality import layer_role
    from testy_model.spec import load_arch
    from testy_model.spec.workload import Density
    from testy_model.tasd.pattern import TasdSeries

    search_sents, _ = split_sentences(load_sentences())
    print("\n| verified plan (quality_search) | TASD layers | predicted | measured (search) |")
    print("| --- | ---: | ---: | ---: |")
    for eng in ("stc_2of4_tasd", "vegeta_tasd", "s2ta_tasd"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arch = load_arch(ROOT / "arch_specs" / f"{eng}.yaml")
        r = quality_search(model, arch, search_sents, cache=cache)
        pred = 0.0
        for name, (w, a) in r.plan.items():
            role = layer_role(name)
            for op, cls in (("weight", w), ("activation", a)):
                e = closed_form_error(TasdSeries.parse(cls), Density(), metric="l2")
                pred += float(operand_loss(e, op, role))
        print(f"| `{eng}` | {len(r.plan)} | {pred:.4f} | {1 - r.search_cos:.4f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--validate", action="store_true")
    ap.add_argument("--budget", type=float, default=0.01)
    args = ap.parse_args()
    cache = LossCache.load(ROOT / "testy_model" / "data" / "minilm_losses.csv")
    model = MiniLM.load()
    t = error_table(model, cache)
    t["e"] = np.where(t["operand"] == "weight", t["frobenius"], t["closed_form_l2"])
    t = t[(t["loss"] > 0) & (t["e"] > 0)]
    print(f"{len(t)} single-layer losses (MiniLM-L6, data/minilm_losses.csv)\n")
    fit(t)
    if args.validate:
        validate(model, args.budget)
        validate_verified(model, cache)


if __name__ == "__main__":
    main()
