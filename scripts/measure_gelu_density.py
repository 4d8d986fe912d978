"""Measure MiniLM-L6's real GELU activations (the FFN down-projection inputs) on the shipped
sentences: the fraction of values whose magnitude exceeds a threshold τ (the TASD paper treats
near-zero GELU/Swish values as zeros by magnitude) and the relative Frobenius error of dropping
the others. Prints one row per τ; the zoo's ``GELU_THRESHOLDS`` cite this output.

    python scripts/measure_gelu_density.py
"""

from __future__ import annotations

from testy_model.models import MiniLM, load_sentences
from testy_model.models.activations import gelu_outputs, print_threshold_table


def main() -> None:
    model = MiniLM.load()
    sentences = load_sentences()
    vals = gelu_outputs(model, sentences)
    print(f"{vals.size} GELU outputs of 6 layers (real tokens of {len(sentences)} sentences)")
    print_threshold_table(vals, (0.0, 0.005, 0.01, 0.02, 0.05, 0.1))


if __name__ == "__main__":
    main()
