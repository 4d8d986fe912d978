"""How well the closed-form error (and the measured Frobenius error) predicts MiniLM-L6's measured
cosine loss, layer by layer (models.error_quality), from the shipped loss cache.

    python scripts/minilm_error_vs_loss.py
"""

from __future__ import annotations

from pathlib import Path

from testy_model.models import MiniLM
from testy_model.models.error_quality import agreement, error_table
from testy_model.models.search_quality import LossCache


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    cache = LossCache.load(root / "testy_model" / "data" / "minilm_losses.csv")
    t = error_table(MiniLM.load(), cache)
    a = agreement(t)
    per = a[a.layer != "all"]
    print(f"{len(t)} cached single-operand losses over {per.layer.nunique()} layers\n")
    print(
        "| operand | layers | median ρ within a layer (closed form) | median ρ (Frobenius) |"
        " pooled ρ over layers (closed form) | pooled ρ (Frobenius) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for op in ("weight", "activation"):
        p = per[per.operand == op]
        allr = a[(a.layer == "all") & (a.operand == op)].iloc[0]
        print(
            f"| {op} | {len(p)} | {p.rho_closed_form.median():.3f} | "
            f"{p.rho_frobenius.median():.3f} | {allr.rho_closed_form:.3f} | "
            f"{allr.rho_frobenius:.3f} |"
        )
    w = t[t.operand == "weight"]
    ratio = w.frobenius / w.closed_form_l2
    print(
        f"\nweights: measured Frobenius / Gaussian closed form (l2): median {ratio.median():.3f}, "
        f"min {ratio.min():.3f}, max {ratio.max():.3f} over {len(w)} (layer, class)"
    )
    print("\nloss of one class across layers (min / median / max), closed-form error:")
    print("| operand | class | closed-form error | layers | loss min | median | max |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (op, cls), g in t.groupby(["operand", "class"]):
        if len(g) < 6:
            continue
        print(
            f"| {op} | {cls} | {g.closed_form.iloc[0]:.3f} | {len(g)} | {g.loss.min():.4f} | "
            f"{g.loss.median():.4f} | {g.loss.max():.4f} |"
        )


if __name__ == "__main__":
    main()
