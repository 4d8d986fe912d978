"""The measurement behind the search's default activation budget
(``plan_search.ACTIVATION_BUDGET``): MiniLM-L6's mean cosine similarity to the dense model when
*every* linear layer's activation is decomposed with one class, against the 0.99 target.

    python scripts/minilm_activation_budget.py [7:8 6:8 ...]   (~20 s per class, 2 cores)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from testy_model.models import MiniLM
from testy_model.models.quality import cosine
from testy_model.plan_search import closed_form_error
from testy_model.spec.workload import Density
from testy_model.tasd.pattern import TasdSeries


def main(classes: list[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    text = (root / "testy_model" / "data" / "sentences.txt").read_text(encoding="utf-8")
    sentences = [s for s in text.splitlines() if s.strip()]
    model = MiniLM.load()
    ref = model.encode(sentences)
    names = [n for n, _ in model.linear_layers()]
    print(f"{len(sentences)} sentences, {len(names)} linear layers, every activation decomposed")
    print("| class | count error (dense) | l2 error (dense) | mean cosine | loss |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for cls in classes:
        t0 = time.perf_counter()
        c = float(
            cosine(ref, model.encode(sentences, plan={n: ("dense", cls) for n in names})).mean()
        )
        s = TasdSeries.parse(cls)
        e_c = closed_form_error(s, Density())
        e_l = closed_form_error(s, Density(), metric="l2")
        print(
            f"| {cls} | {e_c:.3f} | {e_l:.3f} | {c:.4f} | {1 - c:.2%} |",
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["7:8", "6:8", "3:4"])
