"""How well the search's error measures predict real quality loss (MiniLM-L6, layer by layer).

For every (layer, operand, quality class ``K:M``) whose loss the shipped loss cache holds
(``models.search_quality.LossCache``: the measured drop of the mean cosine similarity of the
sentence embeddings when only that layer's operand is approximated by ``K:M``), three numbers:

- ``closed_form``: the search's closed-form error, the expected fraction of the operand's
  non-zeros dropped (``plan_search.closed_form_error``); for a dense operand under ``K:M`` it is
  ``1 − K/M``, the same in every layer;
- ``closed_form_l2``: the same in Frobenius units (``error_metric="l2"``: a Gaussian operand's
  expected ``||R||/||A||``);
- ``frobenius``: for weights, the measured relative Frobenius error ``||R||_F / ||W||_F`` of the
  greedy decomposition of the real weight (what the search uses when a layer names its tensor);
- ``loss``: the measured cosine loss (dimensionless).

:func:`agreement` summarises them by Spearman rank correlation (``ρ``, dimensionless, in
[−1, 1]): within each layer (does a larger error mean a larger loss?) and pooled over all layers
(does the same error mean the same loss in different layers?).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testy_model.models.minilm import MiniLM
from testy_model.models.search_quality import LossCache
from testy_model.tasd.pattern import TasdSeries


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ: Pearson correlation of the ranks (ties get their mean rank); NaN when
    either side is constant or has fewer than 2 values."""
    if len(x) < 2:
        return float("nan")
    rx = pd.Series(x).rank().to_numpy()
    ry = pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def error_table(model: MiniLM, cache: LossCache, weight_sparsity: float = 0.0) -> pd.DataFrame:
    """One row per cached single-operand loss at ``weight_sparsity`` (module docstring)."""
    from testy_model.plan_search import closed_form_error
    from testy_model.spec.workload import Density
    from testy_model.tasd.decompose import decompose

    dens = (
        Density()
        if weight_sparsity <= 0
        else Density(kind="bernoulli", density=1 - weight_sparsity)
    )
    rows = []
    for (layer, w, a, s, _), loss in sorted(cache.entries.items()):
        if layer == "" or s != weight_sparsity or (w == "dense") == (a == "dense"):
            continue
        operand, cls = ("weight", w) if a == "dense" else ("activation", a)
        series = TasdSeries.parse(cls)
        frob = float("nan")
        if operand == "weight":
            arr = model.weight(layer, weight_sparsity)
            frob = float(decompose(arr, series, axis=-1).rel_error)
        rows.append(
            {
                "layer": layer,
                "operand": operand,
                "class": cls,
                "closed_form": closed_form_error(
                    series, dens if operand == "weight" else Density()
                ),
                "closed_form_l2": closed_form_error(
                    series, dens if operand == "weight" else Density(), metric="l2"
                ),
                "frobenius": frob,
                "loss": float(loss),
            }
        )
    return pd.DataFrame(rows)


def agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman ρ of ``closed_form`` and ``frobenius`` against ``loss``: per (layer, operand)
    over its classes, and pooled per operand over all layers (layer ``"all"``)."""
    out = []
    for (layer, op), g in table.groupby(["layer", "operand"], sort=True):
        out.append(_row(str(layer), str(op), g))
    for op, g in table.groupby("operand", sort=True):
        out.append(_row("all", str(op), g))
    return pd.DataFrame(out)


def _row(layer: str, operand: str, g: pd.DataFrame) -> dict[str, object]:
    loss = g["loss"].to_numpy()
    return {
        "layer": layer,
        "operand": operand,
        "classes": len(g),
        "rho_closed_form": _spearman(g["closed_form"].to_numpy(), loss),
        "rho_frobenius": _spearman(g["frobenius"].to_numpy(), loss)
        if g["frobenius"].notna().all()
        else float("nan"),
        "loss_min": float(loss.min()),
        "loss_max": float(loss.max()),
    }
