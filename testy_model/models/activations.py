"""MiniLM-L6's real activations, captured for measurement, and the magnitude-threshold rule.

The TASD paper treats near-zero activations (GELU outputs, attention probabilities) as zeros by
magnitude. :func:`threshold_stats` measures, for a threshold ``τ``, the density of ``|x| > τ``
and the relative Frobenius error of zeroing the rest; :func:`threshold` applies it. The
captures (:func:`gelu_outputs`, :func:`attention_probabilities`) run the dense model block by
block from its cached hidden states and keep only real tokens (padding excluded).
Used by ``scripts/measure_gelu_density.py`` and ``scripts/measure_softmax_density.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from testy_model.models.minilm import MiniLM, gelu
from testy_model.tasd.pattern import TasdSeries

_BATCH = 32


def threshold(values: np.ndarray, tau: float) -> np.ndarray:
    """``values`` with every ``|x| <= τ`` set to 0 (the paper's magnitude threshold)."""
    return np.where(np.abs(values) > tau, values, np.zeros((), dtype=values.dtype))


def threshold_stats(values: np.ndarray, tau: float) -> tuple[float, float]:
    """(density, error) of thresholding ``values`` at ``τ`` (both dimensionless).

    Equations: ``density = #{|x| > τ} / #x``; ``error = sqrt(Σ_{|x| <= τ} x² / Σ x²)``, the
    relative Frobenius norm of what the threshold drops. Hand check: ``[0.5, 0.1, 0.0, 0.2]``
    at ``τ = 0.1``: density 2/4 = 0.5, error ``sqrt(0.01 / 0.30) = 0.18257``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    keep = np.abs(v) > tau
    total = float(np.sum(v * v))
    dropped = float(np.sum(v[~keep] ** 2))
    return float(keep.mean()), (float(np.sqrt(dropped / total)) if total > 0 else 0.0)


def passages(model: MiniLM, sentences: Sequence[str], tokens: int) -> list[str]:
    """Consecutive ``sentences`` joined (by a space, in order) into passages of at most
    ``tokens`` tokens each (``[CLS]`` and ``[SEP]`` included), so attention rows span a
    network's sequence length rather than one short sentence; a sentence longer than ``tokens``
    stays alone."""
    _, mask = model.tokenize(sentences)
    body = (mask.sum(axis=1) - 2).tolist()  # tokens of each sentence without [CLS], [SEP]
    out: list[str] = []
    cur: list[str] = []
    used = 2
    for text, n in zip(sentences, body, strict=True):
        if cur and used + n > tokens:
            out.append(" ".join(cur))
            cur, used = [], 2
        cur.append(text)
        used += n
    if cur:
        out.append(" ".join(cur))
    return out


def _blocks(
    model: MiniLM, sentences: Sequence[str]
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(layer index, block input, attention bias, real-token mask) for every batch and layer of
    the dense forward pass."""
    states = model._dense_states(sentences, _BATCH)
    _, mask = model.tokenize(sentences)
    for bi, idx in enumerate(model._batches(sentences, _BATCH)):
        width = int(mask[idx].sum(axis=1).max())
        m = mask[idx, :width].astype(bool)
        bias = model._mask_bias(mask[idx, :width])
        for i in range(model.config.layers):
            yield i, states[bi][i], bias, m


def _weights(model: MiniLM) -> dict[str, np.ndarray]:
    return {n: model.w[f"encoder.{n}.weight"] for n, _ in model.linear_layers()}


def gelu_outputs(model: MiniLM, sentences: Sequence[str]) -> np.ndarray:
    """All real-token GELU outputs (inputs of every layer's FFN down-projection), flattened."""
    weights = _weights(model)
    out = []
    for i, x, bias, m in _blocks(model, sentences):
        captured: dict[str, np.ndarray] = {}
        orig = model._linear

        def spy(
            x: np.ndarray,
            name: str,
            w: np.ndarray,
            act: TasdSeries | None,
            orig: Callable[..., np.ndarray] = orig,
            captured: dict[str, np.ndarray] = captured,
        ) -> np.ndarray:  # reads, changes nothing
            if name.endswith("intermediate.dense"):
                captured["inter"] = gelu(orig(x, name, w, act))
            return orig(x, name, w, act)

        model._linear = spy  # type: ignore[method-assign]
        try:
            model._block(x, bias, i, weights, {})
        finally:
            del model._linear
        out.append(captured["inter"][m].ravel())
    return np.concatenate(out)


def attention_probabilities(model: MiniLM, sentences: Sequence[str]) -> list[np.ndarray]:
    """Per layer, every attention probability ``P[q, k]`` of a real query and a real key,
    flattened (padding keys, exactly 0 after the mask, and padding queries left out)."""
    weights = _weights(model)
    per_layer: list[list[np.ndarray]] = [[] for _ in range(model.config.layers)]
    for i, x, bias, m in _blocks(model, sentences):
        pair = m[:, None, :, None] & m[:, None, None, :]  # (b, 1, queries, keys)

        def spy(layer: int, p: np.ndarray, pair: np.ndarray = pair) -> np.ndarray:
            per_layer[layer].append(p[np.broadcast_to(pair, p.shape)])
            return p

        model._block(x, bias, i, weights, {}, spy)
    return [np.concatenate(v) for v in per_layer]


def print_threshold_table(
    values: np.ndarray, taus: Sequence[float], out: Callable[[str], None] = print
) -> None:
    """One row per ``τ``: density and zeroing error (:func:`threshold_stats`)."""
    out("| tau | density (|x| > tau) | rel. Frobenius error of zeroing |x| <= tau |")
    out("| ---: | ---: | ---: |")
    for tau in taus:
        d, e = threshold_stats(values, tau)
        out(f"| {tau:g} | {d:.4f} | {e:.4f} |")
