"""Baselines of the quality search: uniform plans (one series pair on every layer) with their
measured quality, and the closed-form-proxy plan of ``plan_search``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from testy_model.errors import TestyModelError
from testy_model.models.greedy_plan import model_plan, plan_of
from testy_model.models.losses import _cos
from testy_model.models.plan_costs import _search_mod, totals
from testy_model.models.quality_classes import kept_fraction, quality_class
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Network
from testy_model.tasd.pattern import TasdSeries

if TYPE_CHECKING:
    from testy_model.models.minilm import MiniLM
    from testy_model.plan_search import LayerTable


@dataclass(frozen=True)
class UniformPlan:
    """One series pair on every layer (``search.uniform_indices``' fallbacks), its EDP (pJ·s)
    and quality class."""

    weights: str
    activations: str
    idx: np.ndarray
    edp: float
    qclass: tuple[str, str]


def uniform_plans(tables: Sequence[LayerTable]) -> list[UniformPlan]:
    """Every uniform plan of the candidates (one per distinct series pair of any layer; pairs
    with an invalid option in some layer are left out), cheapest first."""
    from testy_model.model.plan import LayerPlan

    s = _search_mod()
    seen: dict[tuple[TasdSeries, TasdSeries], None] = {}
    for t in tables:
        for o in t.options:
            seen.setdefault((o.weights, o.activations), None)
    out = []
    for w, a in seen:
        idx = s.uniform_indices(tables, LayerPlan(weights=w, activations=a))
        if not all(t.valid[i] for t, i in zip(tables, idx, strict=True)):
            continue
        out.append(
            UniformPlan(
                str(w), str(a), idx, totals(tables, idx)[2],
                (str(quality_class(w)), str(quality_class(a))),
            )
        )  # fmt: skip
    return sorted(out, key=lambda u: u.edp)


def plan_cosine(
    model: MiniLM,
    sentences: Sequence[str],
    tables: Sequence[LayerTable],
    idx: Sequence[int] | np.ndarray,
    weight_sparsity: float = 0.0,
    ref: np.ndarray | None = None,
) -> float:
    """Measured mean cosine (to the dense, unpruned model) of the choice ``idx`` on
    ``sentences`` (exactly 1 for the dense, unpruned choice, which is not run)."""
    plan = model_plan(plan_of(tables, idx))
    if not plan and weight_sparsity <= 0.0:
        return 1.0  # the dense model itself
    ref = model.encode(sentences) if ref is None else ref
    return _cos(model, sentences, ref, plan, weight_sparsity)


def proxy_plan(
    network: Network, arch: Architecture, budget: float, mode: str = "global", max_terms: int = 2
) -> Any:
    """The plan of ``testy_model.plan_search.search`` under its closed-form error budget (the
    proxy this module replaces), as its ``SearchReport`` (plain orientation, as this study's
    plans; one budget on each layer's combined weight and activation error, as the study was
    run: ``activation_budget=None``)."""
    return _search_mod().search(
        network,
        arch,
        budget=budget,
        mode=mode,
        max_terms=max_terms,
        orientations=("weight",),
        activation_budget=None,
    )


def report_choice(report: Any, tables: Sequence[LayerTable]) -> np.ndarray:
    """A ``SearchReport``'s choice as option indices into ``tables`` (same candidates)."""
    out = []
    for t, (name, lp) in zip(tables, report.plan.layers.items(), strict=True):
        if name != t.name:
            raise TestyModelError(f"layer order differs: {name!r} vs {t.name!r}")
        i = t.index(lp.weights, lp.activations, lp.orientation)
        if i is None:
            raise TestyModelError(f"layer {name!r}: option {lp} is not among the candidates")
        out.append(i)
    return np.array(out, dtype=np.int64)


def check_uniform(
    model: MiniLM,
    sentences: Sequence[str],
    tables: Sequence[LayerTable],
    edp_limit: float,
    weight_sparsity: float = 0.0,
    target: float = 0.99,
    implied: bool = False,
    known: dict[tuple[str, str], float] | None = None,
) -> pd.DataFrame:
    """Every uniform plan (:func:`uniform_plans`) with its EDP (pJ·s) and, when its EDP is
    ``<= edp_limit`` (only those could match or beat a plan of EDP ``edp_limit``), its measured
    mean cosine on ``sentences``, once per quality class (plans of one class compute the same
    embeddings, module step 2); NaN otherwise.

    With ``implied``, classes are visited most-kept first and a class keeping no more of
    either operand than a class already measured below ``target`` is not run: it is marked as
    failing (``measured`` False; the same monotonicity assumption as :func:`measure_losses`).
    ``known`` maps (weight class, activation class) to a mean cosine already measured on the
    same ``sentences`` (the quality of a class does not depend on the engine); it is used and
    extended. Columns ``weights, activations, w_class, a_class, edp_pj_s, mean_cosine,
    measured, meets``.
    """
    plans = uniform_plans(tables)
    need = {u.qclass: u for u in reversed(plans) if u.edp <= edp_limit}
    order = sorted(
        need,
        key=lambda c: (
            -(kept_fraction(TasdSeries.parse(c[0])) + kept_fraction(TasdSeries.parse(c[1])))
        ),
    )
    known = {} if known is None else known
    ref: np.ndarray | None = None
    cos_of: dict[tuple[str, str], float] = {}
    failed: list[tuple[float, float]] = []
    for cls in order:
        kw, ka = (kept_fraction(TasdSeries.parse(x)) for x in cls)
        if implied and any(kw <= a and ka <= b for a, b in failed):
            continue
        if cls not in known or weight_sparsity > 0.0:
            if ref is None:
                ref = model.encode(sentences)
            known[cls] = plan_cosine(model, sentences, tables, need[cls].idx, weight_sparsity, ref)
        cos_of[cls] = known[cls]
        if cos_of[cls] < target:
            failed.append((kw, ka))
    rows = []
    for u in plans:
        c = cos_of.get(u.qclass, float("nan"))
        rows.append(
            {
                "weights": u.weights,
                "activations": u.activations,
                "w_class": u.qclass[0],
                "a_class": u.qclass[1],
                "edp_pj_s": u.edp,
                "mean_cosine": c,
                "measured": u.qclass in cos_of,
                "meets": bool(c >= target),
            }
        )
    return pd.DataFrame(rows)
