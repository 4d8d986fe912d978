"""Quality-constrained TASD plan search on a real model (all-MiniLM-L6-v2).

Find the per-layer plan (weight series, activation series) of least network EDP on an engine
such that the sentence embeddings keep a mean cosine similarity ``>= target`` (0.99, the
method's 99%-of-quality goal) to the reference model's, using *measured* per-layer quality
losses instead of the closed-form error proxy of :mod:`testy_model.plan_search`.

Pipeline (:func:`quality_search`):

1. **Cost** (:func:`cost_tables`): every layer's candidates (``search.candidates``) priced in one
   batched model call per layer (``search.evaluate_candidates``, mapping from
   ``search.default_mapper``). Network totals: ``E = Σ_l E_l`` (pJ), ``t = Σ_l t_l`` (s),
   ``EDP = E·t`` (pJ·s).
2. **Quality classes** (:func:`quality_class`): the greedy decomposition keeps, in every block
   of M values, the ``N1`` largest magnitudes, then the ``N2`` largest of the rest, ...; the
   sum of the terms is therefore the block's ``K = N1 + N2 + ...`` largest values (ties by
   lowest index in both cases), the same tensor as the single pattern ``K:M``. So every series
   whose terms share one block size M has the quality of ``K:M`` (``dense`` when K >= M):
   ``2:8+1:8`` ≡ ``3:8``, ``1:4+1:4`` ≡ ``2:4``. Quality is measured once per class.
3. **Shortlist** (:func:`shortlist`): per layer and class pair the cheapest valid option; an
   option is kept only if its layer EDP is below the dense option's and no other kept option
   keeps at least as much of both operands (class K at least as large) at no more EDP.
4. **Measured loss** (:func:`measure_losses`): per layer l, the marginal losses
   ``loss_W(l, w) = cos̄_base − cos̄({l: (w, dense)})`` and ``loss_A(l, a)`` likewise
   (dimensionless), with ``cos̄`` the mean cosine similarity over the *loss sentences* to the
   reference (dense, unpruned) embeddings and ``base`` the model with only the unstructured
   pruning (``cos̄_base = 1`` without it); a pair's loss is ``loss_W + loss_A``. Measured most
   kept first; once a class loses more than the budget, the classes keeping fewer values of
   that operand are assumed worse and not measured. Results are kept in a :class:`LossCache`
   (CSV) keyed by layer, classes, sparsity and a fingerprint of the sentences.
5. **Greedy path** (:func:`greedy_path`): from the all-dense plan, each step switches the one
   (layer, option) of highest EDP gain per unit of added loss ``(J − J')/Δloss`` (a switch that
   adds no loss first), among those that lower ``J`` and keep ``Σ_l loss_l <= cap``. The sum
   of the per-layer losses is the proxy of the plan's loss (losses roughly add up: measured in
   ``benchmarks/minilm_sensitivity.csv``).
6. **Verification** (:func:`quality_search`): the plan after the last step whose proxy loss is
   within ``budget = cos̄_base − target`` is run on the full *search sentences*; when its real
   mean cosine is below the target, steps are dropped from the end (the last steps are those of
   least gain per loss), and when it passes, longer prefixes of the path (up to the ``cap``) are
   tried (:func:`_bracket`: steps of 1, 2, 4, ... then bisection), at most ``max_verify`` full
   runs. The result is the longest verified prefix: its mean cosine was measured ``>= target``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from testy_model.errors import TestyModelError
from testy_model.models.baselines import (
    UniformPlan,
    check_uniform,
    plan_cosine,
    proxy_plan,
    report_choice,
    uniform_plans,
)
from testy_model.models.greedy_plan import (
    _EPS,
    Step,
    greedy_path,
    model_plan,
    plan_of,
    prefix_indices,
)
from testy_model.models.losses import (
    SHIPPED_LOSSES,
    Log,
    LossCache,
    _cos,
    base_cosine,
    fingerprint,
    measure_losses,
    open_loss_cache,
    user_loss_cache,
)
from testy_model.models.plan_costs import (
    _search_mod,  # noqa: F401  (re-exported: old import path)
    cost_tables,
    minilm_network,
    shortlist,
    totals,
)
from testy_model.models.quality_classes import DENSE, kept_fraction, quality_class
from testy_model.spec.arch import Architecture

if TYPE_CHECKING:
    from testy_model.models.minilm import MiniLM
    from testy_model.plan_search import LayerTable

__all__ = [
    "DENSE",
    "LOSS_EVERY",
    "SHIPPED_LOSSES",
    "Log",
    "LossCache",
    "QualitySearchResult",
    "Step",
    "UniformPlan",
    "base_cosine",
    "check_uniform",
    "cost_tables",
    "fingerprint",
    "greedy_path",
    "kept_fraction",
    "measure_losses",
    "minilm_network",
    "model_plan",
    "open_loss_cache",
    "plan_cosine",
    "plan_of",
    "prefix_indices",
    "proxy_plan",
    "quality_class",
    "quality_search",
    "report_choice",
    "shortlist",
    "totals",
    "uniform_plans",
    "user_loss_cache",
]

LOSS_EVERY = 4
"""The loss sentences are every ``LOSS_EVERY``-th search sentence (52 of 208)."""


# -- the search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualitySearchResult:
    """Result of :func:`quality_search`. EDP in pJ·s; cosines and losses dimensionless."""

    arch: str
    target: float
    weight_sparsity: float
    tables: tuple[LayerTable, ...]
    choice: np.ndarray
    path: tuple[Step, ...]
    k: int
    verified: tuple[tuple[int, float], ...]
    base_cos: float
    budget: float
    n_measured: int
    loss: np.ndarray = field(repr=False)

    @property
    def plan(self) -> dict[str, tuple[str, str]]:
        """Non-dense layers of the searched plan: layer -> (weight series, activation series)."""
        return plan_of(self.tables, self.choice)

    @property
    def feasible(self) -> bool:
        """True when a plan meeting the target was found (verified, or all-dense unpruned)."""
        return self.search_cos >= self.target

    @property
    def search_cos(self) -> float:
        """Measured mean cosine of the chosen plan on the search sentences."""
        got = dict(self.verified)
        return got.get(self.k, 1.0 if self.k == 0 and self.weight_sparsity <= 0 else -1.0)

    def edp(self, which: str = "plan") -> float:
        """Network EDP (pJ·s) of ``plan`` or ``dense``."""
        if which == "dense":
            return totals(self.tables, [t.dense for t in self.tables])[2]
        return totals(self.tables, self.choice)[2]

    def edp_ratio(self) -> float:
        """EDP of the plan / EDP of the dense run."""
        return self.edp("plan") / self.edp("dense")

    def to_frame(self) -> pd.DataFrame:
        """One row per layer: chosen series, measured loss, EDP share."""
        rows = []
        for li, (t, i) in enumerate(zip(self.tables, self.choice, strict=True)):
            o = t.options[int(i)]
            rows.append(
                {
                    "layer": t.name,
                    "weights": str(o.weights),
                    "activations": str(o.activations),
                    "loss": 0.0 if o.is_dense else float(self.loss[li, int(i)]),
                    "cycles": float(t.cycles[i]),
                    "energy_pj": float(t.energy_pj[i]),
                    "dense_cycles": float(t.cycles[t.dense]),
                    "dense_energy_pj": float(t.energy_pj[t.dense]),
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "arch": self.arch,
            "target": self.target,
            "weight_sparsity": self.weight_sparsity,
            "feasible": self.feasible,
            "search_mean_cosine": self.search_cos,
            "base_mean_cosine": self.base_cos,
            "proxy_budget": self.budget,
            "proxy_loss": self.path[self.k - 1].proxy_loss if self.k else 0.0,
            "steps": self.k,
            "path_length": len(self.path),
            "verified": [{"steps": k, "mean_cosine": c} for k, c in self.verified],
            "losses_measured": self.n_measured,
            "edp_pj_s": self.edp("plan"),
            "dense_edp_pj_s": self.edp("dense"),
            "edp_vs_dense": self.edp_ratio(),
            "plan": {k: {"weights": w, "activations": a} for k, (w, a) in self.plan.items()},
        }


def _bracket(
    k0: int, n: int, passes: Callable[[int], bool], budget_left: Callable[[], bool]
) -> tuple[int, int]:
    """(longest prefix known to pass, shortest known or assumed to fail) around ``k0``.

    From ``k0`` (the proxy-budget prefix): if it passes, try ``k0 + 1, k0 + 2, k0 + 4, ...``
    (capped at ``n``) until one fails; else back off ``k0 − 1, k0 − 2, k0 − 4, ...`` (dropping
    the last steps, those of least gain per loss) until one passes. Prefix 0 (all dense, no
    pruning) counts as passing without a run; ``n + 1`` as failing.
    """
    if k0 == 0 or passes(k0):
        lo, step = k0, 1
        while lo < n and budget_left():
            k = min(n, lo + step)
            if not passes(k):
                return lo, k
            lo, step = k, step * 2
        return lo, n + 1
    hi, step = k0, 1
    while budget_left():
        k = max(0, hi - step)
        if k == 0 or passes(k):
            return k, hi
        hi, step = k, step * 2
    return 0, hi


def quality_search(
    model: MiniLM,
    arch: Architecture,
    search_sentences: Sequence[str],
    *,
    target: float = 0.99,
    weight_sparsity: float = 0.0,
    tokens: int = 128,
    max_terms: int = 2,
    cache: LossCache | None = None,
    loss_every: int = LOSS_EVERY,
    cap_factor: float = 2.0,
    max_verify: int = 8,
    tables: Sequence[LayerTable] | None = None,
    log: Log | None = None,
) -> QualitySearchResult:
    """The plan of least EDP on ``arch`` whose measured mean cosine on ``search_sentences``
    is ``>= target`` (module docstring, steps 1-6).

    Args:
        model: the loaded MiniLM.
        arch: the engine.
        search_sentences: the sentences the search may see (the loss sentences are every
            ``loss_every``-th of them).
        target: mean-cosine target (dimensionless, in (0, 1]).
        weight_sparsity: unstructured magnitude pruning of every layer's weights first.
        tokens: sequence length N of the cost model's GEMMs.
        max_terms: longest series considered.
        cache: measured losses to reuse and extend.
        cap_factor: the greedy path runs up to a proxy loss of ``cap_factor × budget``.
        max_verify: most full runs on the search sentences.
        tables: precomputed :func:`cost_tables` (else computed).
    """
    if not 0.0 < target <= 1.0:
        raise TestyModelError(f"target {target!r} must be in (0, 1]")
    if not search_sentences:
        raise TestyModelError("quality_search: no search sentences given")
    cache = cache if cache is not None else LossCache()
    if tables is None:
        tables = cost_tables(minilm_network(model, tokens, weight_sparsity), arch, max_terms)
    tables = tuple(tables)
    loss_sents = list(search_sentences)[:: max(1, loss_every)]
    base = base_cosine(model, loss_sents, weight_sparsity, cache)
    budget = base - target
    n0 = len(cache.entries)
    short = [shortlist(t) for t in tables]
    if budget > 0:
        loss = measure_losses(
            model, loss_sents, tables, short, budget=budget, weight_sparsity=weight_sparsity,
            cache=cache, log=log,
        )  # fmt: skip
    else:
        loss = np.full((len(tables), max(len(t.options) for t in tables)), np.nan)
    path = greedy_path(tables, loss, cap=max(budget, 0.0) * cap_factor)
    best, verified = _longest_passing_prefix(
        model, search_sentences, tables, path, target=target, weight_sparsity=weight_sparsity,
        budget=budget, max_verify=max_verify, log=log,
    )  # fmt: skip
    return QualitySearchResult(
        arch=arch.name,
        target=target,
        weight_sparsity=weight_sparsity,
        tables=tables,
        choice=prefix_indices(tables, path, best),
        path=tuple(path),
        k=best,
        verified=tuple(sorted(verified.items())),
        base_cos=base,
        budget=budget,
        n_measured=len(cache.entries) - n0,
        loss=loss,
    )


def _longest_passing_prefix(
    model: MiniLM,
    search_sentences: Sequence[str],
    tables: Sequence[LayerTable],
    path: Sequence[Step],
    *,
    target: float,
    weight_sparsity: float,
    budget: float,
    max_verify: int,
    log: Log | None,
) -> tuple[int, dict[int, float]]:
    """Module step 6: the longest prefix of ``path`` whose measured mean cosine on
    ``search_sentences`` is ``>= target`` (from the proxy-budget prefix, :func:`_bracket`, then
    bisection; at most ``max_verify`` full runs), and the mean cosine of every prefix run
    (steps -> cosine, dimensionless)."""
    ref: list[np.ndarray] = []  # the reference embeddings, computed on the first run
    verified: dict[int, float] = {}

    def passes(k: int) -> bool:
        if k not in verified:
            if not ref:
                ref.append(model.encode(search_sentences))
            plan = model_plan(plan_of(tables, prefix_indices(tables, path, k)))
            verified[k] = _cos(model, search_sentences, ref[0], plan, weight_sparsity)
            if log is not None:
                log(f"verify {k} steps: mean cosine {verified[k]:.5f}")
        return verified[k] >= target

    k0 = max((i + 1 for i, st in enumerate(path) if st.proxy_loss <= budget + _EPS), default=0)
    best, hi = _bracket(k0, len(path), passes, lambda: len(verified) < max_verify)
    while hi - best > 1 and len(verified) < max_verify:
        mid = (best + hi) // 2
        if passes(mid):
            best = mid
        else:
            hi = mid
    if best == 0 and weight_sparsity > 0:
        passes(0)
    return best, verified
