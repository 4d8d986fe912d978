"""Output-quality measures of sentence embeddings (numpy only) and the shipped sentence set.

* cosine similarity per sentence: ``cos_i = <r_i, e_i> / (|r_i|·|e_i|)`` (dimensionless, in
  [-1, 1]), between a reference embedding r_i (the dense model's) and an approximated one e_i;
* Spearman rank agreement of pairwise similarities: with ``S_ref[i,j] = cos(r_i, r_j)`` and
  ``S[i,j] = cos(e_i, e_j)`` over the pairs i < j, ``ρ = Pearson(rank(S_ref), rank(S))`` with tied
  values given their average rank. ρ = 1 when the approximated model orders every pair of
  sentences by similarity exactly as the reference does.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from testy_model.errors import TestyModelError
from testy_model.tasd.pattern import TasdSeries

if TYPE_CHECKING:
    from testy_model.models.minilm import MiniLM

HELD_OUT_EVERY = 5
"""Sentence k (0-based) is held out when ``k % HELD_OUT_EVERY == HELD_OUT_EVERY - 1``."""


def load_sentences(path: str | None = None) -> list[str]:
    """The shipped sentences (``testy_model/data/sentences.txt``), or those of ``path``: one per
    line, blank lines and lines starting with ``#`` skipped."""
    try:
        text = (
            files("testy_model").joinpath("data/sentences.txt").read_text(encoding="utf-8")
            if path is None
            else open(path, encoding="utf-8").read()  # noqa: SIM115
        )
    except OSError as err:
        raise TestyModelError(f"{path or 'sentences.txt'}: cannot read sentences: {err}") from err
    out = [s.strip() for s in text.splitlines()]
    out = [s for s in out if s and not s.startswith("#")]
    if not out:
        raise TestyModelError(f"{path or 'sentences.txt'}: no sentences (expected one per line)")
    return out


def split_sentences(sentences: Sequence[str]) -> tuple[list[str], list[str]]:
    """(search set, held-out set): sentence k goes to the held-out set when k % 5 == 4."""
    search = [s for k, s in enumerate(sentences) if k % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    held = [s for k, s in enumerate(sentences) if k % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    return search, held


def _check_pair(reference: np.ndarray, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(reference, dtype=np.float64)
    e = np.asarray(emb, dtype=np.float64)
    if r.ndim != 2 or r.shape != e.shape:
        raise TestyModelError(
            f"quality: expected two (n, d) arrays of the same shape, got {r.shape} and {e.shape}"
        )
    return r, e


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)


def cosine(reference: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity ``<r_i, e_i>/(|r_i||e_i|)`` of two (n, d) arrays -> (n,)."""
    r, e = _check_pair(reference, emb)
    return np.einsum("ij,ij->i", _unit(r), _unit(e))


def rankdata(x: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, ties given the mean of the ranks they span (float64)."""
    x = np.asarray(x).ravel()
    order = np.argsort(x, kind="stable")
    xs = x[order]
    # start of each run of equal values in sorted order
    new = np.concatenate(([True], xs[1:] != xs[:-1]))
    run = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.concatenate((starts[1:], [len(xs)]))
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(len(xs))
    ranks[order] = mean_rank[run]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ of two 1-D arrays: the Pearson correlation of their (average-tie) ranks."""
    ra, rb = rankdata(a), rankdata(b)
    if ra.size != rb.size or ra.size < 2:
        raise TestyModelError("spearman: expected two arrays of the same length >= 2")
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def pairwise_spearman(reference: np.ndarray, emb: np.ndarray) -> float:
    """Spearman ρ between the reference's and ``emb``'s pairwise cosine similarities (i < j)."""
    r, e = _check_pair(reference, emb)
    iu = np.triu_indices(r.shape[0], k=1)
    return spearman((_unit(r) @ _unit(r).T)[iu], (_unit(e) @ _unit(e).T)[iu])


def quality(reference: np.ndarray, emb: np.ndarray) -> dict[str, float]:
    """``{mean_cosine, min_cosine, spearman}`` of ``emb`` against ``reference`` (both (n, d))."""
    c = cosine(reference, emb)
    return {
        "mean_cosine": float(c.mean()),
        "min_cosine": float(c.min()),
        "spearman": pairwise_spearman(reference, emb),
    }


def layer_sensitivity(
    model: MiniLM,
    sentences: Sequence[str],
    series_list: Sequence[tuple[TasdSeries | str, TasdSeries | str]],
    weight_sparsity: float = 0.0,
    layers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Quality when exactly one linear layer runs a (weight, activation) series pair.

    For every layer (all 36 by default) and every pair in ``series_list``, the model encodes
    ``sentences`` with ``plan = {layer: pair}`` (all other layers dense, all weights pruned to
    ``weight_sparsity`` when > 0) and compares with the dense, unpruned embeddings.

    Returns a DataFrame with columns ``layer, block, weight, activation, mean_cosine, min_cosine,
    spearman`` (one row per layer × pair, in execution order).
    """
    names = [n for n, _ in model.linear_layers()] if layers is None else list(layers)
    ref = model.encode(sentences)
    rows = []
    for name in names:  # one forward per (layer, pair): 36 × len(series_list) forwards
        for w, a in series_list:
            emb = model.encode(sentences, plan={name: (w, a)}, weight_sparsity=weight_sparsity)
            q = quality(ref, emb)
            rows.append(
                {
                    "layer": name,
                    "block": int(name.split(".")[1]),
                    "weight": str(TasdSeries.parse(w)),
                    "activation": str(TasdSeries.parse(a)),
                    **q,
                }
            )
    return pd.DataFrame(rows)
