"""The attention probabilities' term of the network mode's loss model (``plan_search.quality``,
role ``attn_probs``): MiniLM-L6's measured quality loss when every layer's probabilities ``P``
(the ``A`` operand of ``P·V``, thresholded at the zoo's τ = 0.001) are approximated by a class
``K:M`` along the keys, against their measured relative Frobenius error ``‖R‖/‖P_τ‖``.

Passages of <= 128 tokens (BERT-base's sequence length, as ``measure_softmax_density.py
--tokens 128``); the error is summed over every query row of the batch (padding query rows
included, ~7 % of the rows). Per class: the Gaussian closed form at P's density (0.6004, what
the search would use), the measured error, the whole-model loss minus the threshold's own loss,
per layer (÷ 6), and ``c = loss per layer / e^p_a`` (``p_a`` = 2.167, the activations'
exponent). The ``attn_probs`` coefficient is the sum-matched ``Σ loss / Σ e^p`` over the
classes.

    OPENBLAS_NUM_THREADS=1 python scripts/measure_softmax_loss.py      (~3 min on one core)
"""

from __future__ import annotations

import numpy as np

from testy_model.models import MiniLM, load_sentences
from testy_model.models.activations import passages, threshold
from testy_model.models.minilm import tasd_approx
from testy_model.models.quality import cosine
from testy_model.plan_search import closed_form_error
from testy_model.plan_search.quality import P_ACTIVATION
from testy_model.spec.workload import Density
from testy_model.tasd.pattern import TasdSeries

TAU = 0.001
#: classes whose whole-model loss is measured (one encode each)
CLASSES = ("7:8", "6:8", "3:4", "5:8", "4:8", "2:4")
#: classes whose error is measured (one encode in all): every K:M with M = 4 or 8
ERROR_CLASSES = ("1:4", "2:4", "3:4", *(f"{k}:8" for k in range(1, 8)))


def main() -> None:
    model = MiniLM.load()
    sents = passages(model, load_sentences(), 128)
    ref = model.encode(sents)
    layers = model.config.layers

    def only_tau(_layer: int, p: np.ndarray) -> np.ndarray:
        return threshold(p, TAU)

    base = 1.0 - float(cosine(ref, model.encode(sents, attention_probs=only_tau)).mean())
    print(f"{len(sents)} passages; threshold τ = {TAU:g} alone: loss {base:.5f}\n")
    sums = {c: [0.0, 0.0] for c in ERROR_CLASSES}

    def errors(_layer: int, p: np.ndarray) -> np.ndarray:
        pt = threshold(p, TAU)
        for c, acc in sums.items():
            acc[0] += float(((pt - tasd_approx(pt, TasdSeries.parse(c))) ** 2).sum())
            acc[1] += float((pt**2).sum())
        return p

    model.encode(sents, attention_probs=errors)
    print("measured ‖R‖/‖P_τ‖ per class (SOFTMAX_L2_ERRORS):")
    print({c: round(float(np.sqrt(a / b)), 4) for c, (a, b) in sums.items()}, "\n")
    print("| class | closed-form error (d = 0.6004) | measured error | loss, 6 layers "
          "(minus τ's) | per layer | c = loss / e^p |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    num = den = 0.0
    for cls in CLASSES:
        s = TasdSeries.parse(cls)
        acc = [0.0, 0.0]

        def approx(_layer: int, p: np.ndarray, s: TasdSeries = s, acc: list = acc) -> np.ndarray:
            pt = threshold(p, TAU)
            out = tasd_approx(pt, s)
            acc[0] += float(((pt - out) ** 2).sum())
            acc[1] += float((pt**2).sum())
            return out

        loss = 1.0 - float(cosine(ref, model.encode(sents, attention_probs=approx)).mean())
        e = float(np.sqrt(acc[0] / acc[1]))
        per = (loss - base) / layers
        cf = closed_form_error(s, Density(kind="bernoulli", density=0.6004), metric="l2")
        num += per
        den += e**P_ACTIVATION
        print(f"| {cls} | {cf:.4f} | {e:.4f} | {loss - base:.5f} | {per:.6f} | "
              f"{per / e**P_ACTIVATION:.3f} |", flush=True)  # fmt: skip
    print(f"\nsum-matched c (attn_probs, p = {P_ACTIVATION}): {num / den:.3f}")


if __name__ == "__main__":
    main()
