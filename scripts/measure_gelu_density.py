"""Measure MiniLM-L6's real GELU activations (the FFN down-projection inputs) on the shipped
sentences: the fraction of values whose magnitude exceeds a threshold τ (the TASD paper treats
near-zero GELU/Swish values as zeros by magnitude) and the relative Frobenius error of dropping
the others. Prints one row per τ; the zoo's ``gelu_act_density`` default cites this output.

    python scripts/measure_gelu_density.py
"""

from __future__ import annotations

import numpy as np

from testy_model.models import MiniLM, load_sentences
from testy_model.models.minilm import gelu


def gelu_inputs_of_ffn_down(model: MiniLM, sentences: list[str]) -> np.ndarray:
    """All real-token GELU outputs of every layer's intermediate.dense (flattened)."""
    states = model._dense_states(sentences, 32)
    _, mask = model.tokenize(sentences)
    out = []
    for bi, idx in enumerate(model._batches(sentences, 32)):
        width = int(mask[idx].sum(axis=1).max())
        m = mask[idx, :width].astype(bool)
        bias = model._mask_bias(mask[idx, :width])
        for i in range(model.config.layers):
            x = states[bi][i]
            captured = {}
            names = [n for n, _ in model.linear_layers()]
            weights = {n: model.w[f"encoder.{n}.weight"] for n in names}
            orig = model._linear

            # reads the block's FFN input without changing it
            def spy(inp, name, w, act, orig=orig, captured=captured):
                if name.endswith("intermediate.dense"):
                    captured["inter"] = gelu(orig(inp, name, w, act))
                return orig(inp, name, w, act)

            model._linear = spy  # type: ignore[method-assign]
            try:
                model._block(x, bias, i, weights, {})
            finally:
                del model._linear
            out.append(captured["inter"][m].ravel())
    return np.concatenate(out)


def main() -> None:
    model = MiniLM.load()
    vals = gelu_inputs_of_ffn_down(model, load_sentences())
    total = float(np.sum(vals.astype(np.float64) ** 2))
    print(
        f"{vals.size} GELU outputs of 6 layers (real tokens of {len(load_sentences())} sentences)"
    )
    print("tau     density(|x|>tau)  rel. Frobenius error of zeroing |x|<=tau")
    for tau in (0.0, 0.005, 0.01, 0.02, 0.05, 0.1):
        keep = np.abs(vals) > tau
        err = np.sqrt(np.sum(vals[~keep].astype(np.float64) ** 2) / total)
        print(f"{tau:<7g} {keep.mean():<17.4f} {err:.4f}")


if __name__ == "__main__":
    main()
