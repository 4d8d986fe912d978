"""Measured per-layer quality losses of TASD plans on MiniLM and their CSV cache.

``loss_W(l, w) = cos̄_base − cos̄({l: (w, dense)})`` and ``loss_A`` likewise (dimensionless);
``cos̄`` is the mean cosine similarity of the sentence embeddings to the reference model's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from testy_model.errors import TestyModelError
from testy_model.models.quality_classes import DENSE, kept_fraction, quality_class
from testy_model.tasd.pattern import TasdSeries

if TYPE_CHECKING:
    from testy_model.models.minilm import MiniLM
    from testy_model.plan_search import LayerTable

_CACHE_COLUMNS = ("layer", "weight", "activation", "weight_sparsity", "sentences", "loss")

#: ``log(message)`` for progress lines.
Log = Callable[[str], None]


def fingerprint(sentences: Sequence[str]) -> str:
    """First 12 hex digits of the SHA-1 of the sentences joined by newlines."""
    return hashlib.sha1("\n".join(sentences).encode("utf-8")).hexdigest()[:12]


@dataclass
class LossCache:
    """Measured per-layer losses, keyed by (layer, weight class, activation class, sparsity,
    sentence fingerprint); saved as CSV (columns ``layer, weight, activation, weight_sparsity,
    sentences, loss``). The key ``("", "base", "base", s, f)`` holds ``cos̄_base``."""

    entries: dict[tuple[str, str, str, float, str], float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> LossCache:
        """Read a cache CSV; a missing file gives an empty cache."""
        p = Path(path)
        if not p.is_file():
            return cls()
        try:
            df = pd.read_csv(p, dtype={"layer": str}, keep_default_na=False)
        except (OSError, ValueError) as err:
            raise TestyModelError(f"{p}: cannot read the loss cache: {err}") from err
        missing = [c for c in _CACHE_COLUMNS if c not in df.columns]
        if missing:
            raise TestyModelError(
                f"{p}: loss cache lacks column(s) {', '.join(missing)} "
                f"(expected {', '.join(_CACHE_COLUMNS)})"
            )
        out = cls()
        for row in df.itertuples(index=False):  # one entry per row of a small table
            # pandas-stubs types every itertuples field as any pandas scalar (dates, None ...):
            # float() takes the numbers read_csv reads from these columns
            key = (
                str(row.layer),
                str(row.weight),
                str(row.activation),
                float(row.weight_sparsity),  # type: ignore[arg-type]
                str(row.sentences),
            )
            out.entries[key] = float(row.loss)  # type: ignore[arg-type]
        return out

    def save(self, path: str | Path) -> None:
        """Write the cache CSV (rows sorted by key; its folder created; atomic rename)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        rows = [(*k, v) for k, v in sorted(self.entries.items())]
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        pd.DataFrame(rows, columns=list(_CACHE_COLUMNS)).to_csv(tmp, index=False)
        os.replace(tmp, p)


#: The per-layer losses shipped with the package (measured once on the shipped sentences).
SHIPPED_LOSSES = Path(__file__).resolve().parents[1] / "data" / "minilm_losses.csv"


def user_loss_cache() -> Path:
    """Where measured losses are kept between runs by default:
    ``$XDG_CACHE_HOME/testy-model/minilm_losses.csv`` (``~/.cache/...`` without the variable)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "testy-model" / "minilm_losses.csv"


def open_loss_cache(path: str | Path | None = None) -> tuple[LossCache, Path]:
    """The loss cache to use and where to keep it: ``path`` (default :func:`user_loss_cache`)
    when it exists, else the shipped losses to start from. Save with ``cache.save(where)``."""
    where = Path(path) if path is not None else user_loss_cache()
    return LossCache.load(where if where.is_file() else SHIPPED_LOSSES), where


def _cos(model: MiniLM, sentences: Sequence[str], ref: np.ndarray, plan: dict, s: float) -> float:
    from testy_model.models.quality import cosine

    return float(cosine(ref, model.encode(sentences, plan=plan, weight_sparsity=s)).mean())


def base_cosine(
    model: MiniLM, sentences: Sequence[str], weight_sparsity: float, cache: LossCache
) -> float:
    """``cos̄_base``: mean cosine of the pruned model (no TASD) to the dense one (1 unpruned)."""
    if weight_sparsity <= 0.0:
        return 1.0
    key = ("", "base", "base", float(weight_sparsity), fingerprint(sentences))
    if key not in cache.entries:
        ref = model.encode(sentences)
        cache.entries[key] = _cos(model, sentences, ref, {}, weight_sparsity)
    return cache.entries[key]


def measure_losses(
    model: MiniLM,
    sentences: Sequence[str],
    tables: Sequence[LayerTable],
    short: Sequence[Sequence[int]],
    *,
    budget: float,
    weight_sparsity: float = 0.0,
    cache: LossCache | None = None,
    log: Log | None = None,
) -> np.ndarray:
    """Loss matrix (L, C) (NaN where not measured), module step 4.

    Per layer l, the *marginal* losses are measured: ``loss_W(l, K:M) = cos̄_base −
    cos̄({l: (K:M, dense)})`` for every weight class of the shortlist and ``loss_A(l, K:M)``
    likewise for the activation classes (weights dense). A pair's loss is their sum,
    ``loss(l, (w, a)) = loss_W(l, w) + loss_A(l, a)`` (``loss_W(l, dense) = 0``): the same
    additivity the search assumes across layers, checked by the verification run. Classes are
    measured most-kept first; once one loses more than ``budget``, the classes keeping fewer
    values of that operand are not measured (assumed worse) and their pairs stay NaN.
    Cached entries are reused; new ones are added to ``cache``.
    """
    cache = cache if cache is not None else LossCache()
    fp = fingerprint(sentences)
    base = base_cosine(model, sentences, weight_sparsity, cache)
    n_c = max(len(t.options) for t in tables)
    loss = np.full((len(tables), n_c), np.nan)
    ref: list[np.ndarray] = []

    def marginal(name: str, cls: TasdSeries, operand: int) -> float:
        pair = (cls, DENSE) if operand == 0 else (DENSE, cls)
        key = (name, str(pair[0]), str(pair[1]), float(weight_sparsity), fp)
        if key not in cache.entries:
            if not ref:
                ref.append(model.encode(sentences))
            c = _cos(model, sentences, ref[0], {name: pair}, weight_sparsity)
            cache.entries[key] = base - c
            if log is not None:
                log(f"loss {name} W={pair[0]} A={pair[1]}: {base - c:.5f}")
        return cache.entries[key]

    for li, (t, opts) in enumerate(zip(tables, short, strict=True)):
        per_op: list[dict[TasdSeries, float]] = [{DENSE: 0.0}, {DENSE: 0.0}]
        for operand in (0, 1):
            classes = {
                quality_class(t.options[i].weights if operand == 0 else t.options[i].activations)
                for i in opts
            } - {DENSE}
            for cls in sorted(classes, key=kept_fraction, reverse=True):
                val = marginal(t.name, cls, operand)
                per_op[operand][cls] = val
                if val > budget:
                    break
        for i in opts:
            o = t.options[i]
            cw, ca = quality_class(o.weights), quality_class(o.activations)
            if cw in per_op[0] and ca in per_op[1]:
                loss[li, i] = per_op[0][cw] + per_op[1][ca]
    return loss
