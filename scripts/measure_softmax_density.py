"""Measure MiniLM-L6's real attention probabilities (softmax outputs, the ``P`` operand of every
``P·V``) on the shipped sentences, real query and key tokens only (padding keys are exactly 0
after the mask and are left out):

1. per threshold τ, the density of ``P > τ`` and the relative Frobenius error of zeroing the
   rest (the zoo's ``SOFTMAX_THRESHOLDS`` cite this table);
2. per τ and class (``dense``, ``2:4+1:4``, ``2:4``: top-N by magnitude along the keys, the
   reduction axis of ``P·V``), the fraction of P's non-zeros the class drops after the
   threshold (measured, against the closed form at the measured density) and MiniLM's mean
   cosine to the dense model when every layer's probabilities are so approximated.

    python scripts/measure_softmax_density.py [--tokens 128]      (~5 min on 2 cores)

``--tokens T`` joins consecutive sentences into passages of at most T tokens (a network's
sequence length: BERT-base's 128) before measuring; without it, the sentences as shipped
(mean 14 tokens).
"""

from __future__ import annotations

import argparse

import numpy as np

from testy_model.models import MiniLM, load_sentences
from testy_model.models.activations import (
    attention_probabilities,
    passages,
    print_threshold_table,
    threshold,
    threshold_stats,
)
from testy_model.models.minilm import tasd_approx
from testy_model.models.quality import cosine
from testy_model.plan_search import closed_form_error
from testy_model.spec.workload import Density
from testy_model.tasd.pattern import TasdSeries

TAUS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02)
CLASSES = ("dense", "2:4+1:4", "2:4")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=None, help="passage length (tokens)")
    args = ap.parse_args()
    model = MiniLM.load()
    sentences = load_sentences()
    if args.tokens is not None:
        sentences = passages(model, sentences, args.tokens)
        _, mask = model.tokenize(sentences)
        print(f"{len(sentences)} passages of <= {args.tokens} tokens "
              f"(mean {mask.sum(axis=1).mean():.1f})")  # fmt: skip
    per_layer = attention_probabilities(model, sentences)
    vals = np.concatenate(per_layer)
    print(f"{vals.size} attention probabilities of 6 layers (real query/key pairs, "
          f"{len(sentences)} sequences)")  # fmt: skip
    print_threshold_table(vals, TAUS)
    print("\nper layer, density at each tau:")
    print("| layer | " + " | ".join(f"{t:g}" for t in TAUS) + " |")
    for i, v in enumerate(per_layer):
        print(f"| {i} | " + " | ".join(f"{threshold_stats(v, t)[0]:.4f}" for t in TAUS) + " |")
    ref = model.encode(sentences)
    print("\n| tau | class | closed-form count error at the measured density | mean cosine |"
          " loss |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: |")
    for tau in TAUS:
        d = threshold_stats(vals, tau)[0]
        for cls in CLASSES:
            s = TasdSeries.parse(cls)

            def approx(_layer: int, p: np.ndarray, tau: float = tau, s: TasdSeries = s):
                return tasd_approx(threshold(p, tau), s)

            c = float(cosine(ref, model.encode(sentences, attention_probs=approx)).mean())
            e = closed_form_error(s, Density(kind="bernoulli", density=min(d, 1.0)))
            print(f"| {tau:g} | {cls} | {e:.4f} | {c:.5f} | {1 - c:.2%} |", flush=True)


if __name__ == "__main__":
    main()
