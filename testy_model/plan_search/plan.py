"""Layer-wise TASD plan search (the TASDER role): per layer, which weight series, activation
series and orientation to run, minimising the network's EDP (or latency, or energy) under an
error budget.

Pipeline (:func:`search`), one direction, one module per step:

1. **candidates** (``plan_search.candidates``): per layer, the plans the engine can run, in
   both orientations on a single-sided engine;
2. **errors** (``plan_search.errors``): measured on real tensors, else closed form;
3. **pricing** (``plan_search.pricing``): every candidate within the error cap priced on the
   mapping it runs on (``eval``'s mapping rule), so the reported totals are ``eval``'s;
4. **selection** (``plan_search.selection``): exact in layer mode (the λ sweep for the
   non-separable EDP), greedy in global mode; in network mode (``plan_search.network``) a
   Lagrangian family and improvement under the network's predicted quality loss
   (``plan_search.quality``), monotone in the budget; with the network's non-GEMM operators (priced
   once by ``eval``'s own code, ``model.graph_eval.price_operators``: no plan changes them)
   in the totals;
5. **shared decompositions** (:func:`_share_tasd`): where consumers of one tensor decompose it
   with the same activation series, the first does the TASD unit's work for all
   (``model.graph_eval.shared_tasd``, ``eval``'s rule); the others are re-priced without it.
   The selection ranks options at their unshared cost (an upper bound), so the written plan is
   optimal for that bound and reported at what it costs;
6. **report** (``plan_search.report``): dense / no-TASD / no-unit / plan compared; its totals
   are ``eval``'s of the written plan.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from testy_model.errors import SpecError
from testy_model.model.plan import Plan
from testy_model.plan_search.candidates import candidates
from testy_model.plan_search.errors import ERROR_METRICS, ErrorMetric
from testy_model.plan_search.pricing import LayerTable, MapperFn, price_candidates
from testy_model.plan_search.quality import (
    NETWORK_BUDGET,
    error_bound,
    layer_role,
    predicted_loss,
    table_losses,
    with_softmax_errors,
)
from testy_model.plan_search.report import SearchReport
from testy_model.plan_search.selection import select_global, select_per_layer
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Network

Objective = Literal["edp", "latency", "energy"]
Mode = Literal["layer", "global", "network"]
#: ``progress(done, total, layer_name)`` after each layer is priced.
Progress = Callable[[int, int, str], None]

OBJECTIVES: tuple[str, ...] = ("edp", "latency", "energy")
MODES: tuple[str, ...] = ("layer", "global", "network")
#: default ``budget`` of the error modes (per layer, or the MAC-weighted mean)
ERROR_BUDGET = 0.05

#: Default per-layer budget on an activation's error (count units: the expected fraction of its
#: non-zeros dropped), calibrated on measured quality, not on the gain it gives.
#:
#: Criterion: the network keeps a mean cosine similarity >= 0.99 to the dense model (a loss
#: <= 1 %: the MiniLM search's default target and the paper's ">= 99 % accuracy"), even when
#: *every* linear layer decomposes its activation at the largest class the budget admits (the
#: per-layer budget cannot tell layers apart: a dense operand's count error under ``K:M`` is
#: ``1 − K/M`` in every layer). Measured on MiniLM-L6 (real weights, 264 sentences,
#: ``scripts/minilm_activation_budget.py``), all 36 activations decomposed at once:
#:
#: - ``7:8`` (error 0.125): mean cosine 0.9954 (loss 0.46 %); the shipped single-layer losses
#:   (``data/minilm_losses.csv``) average 9.7e-5 per layer, so BERT-base's 72 linear layers
#:   extrapolate to 0.7 %: under 1 %;
#: - ``6:8`` and ``3:4`` (error 0.25): loss 2.2 % (``6:8``), over 1 % already on 36 layers.
#:
#: So 0.125 = ``1 − 7/8``, the largest count error whose class keeps the whole network within
#: 1 % (errors between 0.125 and 0.25 admit no further class of a dense operand; they would
#: admit larger drops of already-sparse activations, for which there is no measurement). In
#: ``l2`` units (``error_metric="l2"``) the same budget admits the same dense classes: ``7:8``
#: is 0.068, ``6:8`` 0.138 and ``2:4+1:4`` 0.174.
ACTIVATION_BUDGET = 0.125


def _as_float(x: float, name: str) -> float:
    v = float(x)
    if not math.isfinite(v) or v < 0:
        raise SpecError(f"{name} {x!r} must be a finite number >= 0")
    return v


def _layer_mapping(
    name: str, problem: Any, arch: Architecture, mappings: Any, objective: str
) -> Mapping | None:
    """The mapping every candidate of the layer shares, or None (each its class mapping)."""
    if mappings is None:
        return None
    if isinstance(mappings, Mapping):
        return mappings
    if isinstance(mappings, dict):
        if name not in mappings:
            raise SpecError(
                f"no mapping for layer {name!r} (mappings given for {sorted(mappings)})"
            )
        return mappings[name]
    return mappings(problem, arch, objective)


def _check_settings(
    network: Network,
    mode: str,
    objective: str,
    budget: float | None,
    layer_cap: float,
    error_metric: str | None,
) -> tuple[float, float, ErrorMetric]:
    """(budget, layer cap, error metric) of a search, defaults resolved per mode
    (:func:`search`); SpecError for a bad mode, objective, budget, cap or metric."""
    if mode not in MODES:
        raise SpecError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if budget is None:
        budget = NETWORK_BUDGET if mode == "network" else ERROR_BUDGET
    b = _as_float(budget, "budget")
    cap = _as_float(layer_cap, "layer_cap")
    if error_metric is None:
        error_metric = "l2" if mode == "network" else "count"
    if mode == "network" and error_metric != "l2":
        raise SpecError(
            f"error_metric {error_metric!r}: network mode's loss model is fitted on relative "
            "Frobenius errors; expected 'l2'"
        )
    if objective not in OBJECTIVES:
        raise SpecError(f"objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    if mode == "network" and objective != "edp":
        raise SpecError(f"objective {objective!r}: network mode minimises 'edp' only")
    if not network.layers:
        raise SpecError(f"network {network.name!r} has no layers")
    if error_metric not in ERROR_METRICS:
        raise SpecError(
            f"error_metric {error_metric!r}: expected one of {', '.join(ERROR_METRICS)}"
        )
    return b, cap, cast(ErrorMetric, error_metric)  # in ERROR_METRICS: checked above


def search(
    network: Network,
    arch: Architecture,
    *,
    budget: float | None = None,
    mode: Mode = "layer",
    objective: Objective = "edp",
    mappings: Mapping | dict[str, Mapping] | MapperFn | None = None,
    max_terms: int = 3,
    layer_cap: float = 1.0,
    progress: Progress | None = None,
    orientations: tuple[str, ...] = ("weight", "activation"),
    activation_budget: float | None = ACTIVATION_BUDGET,
    error_metric: str | None = None,
    conventions: Conventions | str | None = None,
) -> SearchReport:
    """Search a per-layer TASD plan of ``network`` on ``arch`` (module docstring).

    Args:
        network: the layers (zoo or file); real tensors are used where the layers name them.
        arch: the engine (its ``sparsity`` support and optional ``tasd_unit``).
        budget: dimensionless, >= 0; 0 gives the best lossless plan. ``layer`` mode: the error
            budget of each layer; ``global``: of the MAC-weighted mean error (both default
            :data:`ERROR_BUDGET` = 0.05); ``network``: of the network's predicted quality loss
            ``Σ_l c_w·e_w^p_w + c_a·e_a^p_a`` (``plan_search.quality``; default
            :data:`~testy_model.plan_search.quality.NETWORK_BUDGET` = 0.01, the paper's 99 %).
        mode: ``layer`` (exact), ``global`` (greedy) or ``network`` (a quality budget on the
            whole network, ``plan_search.network``; monotone in the budget).
        objective: ``edp`` (pJ·s), ``latency`` (s) or ``energy`` (pJ) of the whole network.
        mappings: None (default, as ``testy-model search`` and ``eval --mapping mapper``): each
            candidate on the mapper's mapping for its class (``pricing.plan_mapping``); or one
            :class:`Mapping` for every layer, a dict layer name -> Mapping, or a function
            ``(problem, arch, objective) -> Mapping``: every candidate of a layer on that one.
        max_terms: longest series considered (1..3 recommended).
        layer_cap: in ``global`` mode, the largest error any one layer may take (1 = no cap).
        progress: called as ``progress(done, total, layer)`` after each layer.
        orientations: the orientations considered (``weight``: the weight in the engine's A
            slot; ``activation``: the transposed GEMM, on single-sided engines).
        activation_budget: a separate per-layer budget for the activation's error (default
            :data:`ACTIVATION_BUDGET`, calibrated on MiniLM's measured quality). Layer mode: an
            option is feasible when its weight error is ``<= budget`` and its activation error
            ``<= activation_budget`` (None: their combined error ``1 − (1 − e_w)(1 − e_a) <=
            budget``). Global mode: a cap on each layer's activation error, besides the mean.
            Network mode: not used (the network budget bounds both operands; reported None).
        error_metric: units of the closed-form error: ``count`` (expected fraction of
            non-zeros dropped) or ``l2`` (expected relative Frobenius error of a Gaussian
            operand, the units of the error measured on real tensors). Default (None):
            ``count`` in the layer and global modes, ``l2`` in network mode, whose loss model
            is fitted on Frobenius errors (``count`` is refused there).
        conventions: counting conventions of every candidate's mapping and price: ``timeloop``
            (default, v3.0.3) or ``sparseloop-2022`` (``spec.conventions``), as
            ``eval --conventions`` counts, so the totals equal ``eval``'s under the same choice.

    Raises:
        SpecError: bad budget/mode/objective, a layer missing from a mapping dict.
        MappingError: a mapping that does not fit a layer.
    """
    t0 = time.perf_counter()
    b, cap, metric = _check_settings(network, mode, objective, budget, layer_cap, error_metric)
    conv = Conventions.parse(conventions)
    ab = None if activation_budget is None else _as_float(activation_budget, "activation_budget")
    if mode == "network":
        ab = None
    error_cap = b if mode == "layer" else cap
    if mode == "network":  # the largest combined error of an option whose loss alone fits b
        error_cap = 1.0 - (1.0 - error_bound(b, "weight")) * (1.0 - error_bound(b, "activation"))
    if ab is not None and mode == "layer":  # the largest combined error a feasible option has
        error_cap = 1.0 - (1.0 - b) * (1.0 - ab)
    from testy_model.graph.dataflow import as_graph, operand_reads
    from testy_model.model.graph_eval import price_operators

    g = as_graph(network)
    operators = price_operators(g, arch)
    fixed = (
        float(sum(o.energy_pj for o in operators)),
        float(sum(o.seconds for o in operators)),
    )
    tables = []
    maps: list[Mapping | None] = []
    n = len(network.layers)
    total_macs = float(sum(x.problem.macs for x in network.layers))
    for k, layer in enumerate(network.layers):
        if mode == "global":  # one layer alone may add at most budget / (its MAC share)
            error_cap = min(cap, b * total_macs / max(layer.problem.macs, 1))
        m = _layer_mapping(layer.name, layer.problem, arch, mappings, objective)
        maps.append(m)
        opts = [o for o in candidates(layer, arch, max_terms) if o.orientation in orientations]
        tables.append(
            price_candidates(
                layer,
                arch,
                m,
                opts,
                max_terms=max_terms,
                error_cap=error_cap,
                # checked against ERROR_METRICS above
                error_metric=metric,
                conventions=conv,
                keep=_loss_filter(layer.name, b) if mode == "network" else None,
            )
        )
        if mode == "network":  # the probabilities' measured errors (plan_search.quality)
            tables[-1] = with_softmax_errors(layer, tables[-1])
        if progress is not None:
            progress(k + 1, n, layer.name)
    width = max(len(t.options) for t in tables)
    allow = np.zeros((len(tables), width), dtype=bool)
    no_rt = np.zeros((len(tables), width), dtype=bool)
    for i, t in enumerate(tables):
        c = len(t.options)
        allow[i, :c] = True
        if ab is not None and mode == "layer":
            allow[i, :c] = (t.weight_error <= b + 1e-12) & (t.activation_error <= ab + 1e-12)
        elif ab is not None:
            allow[i, :c] = t.activation_error <= ab + 1e-12
        no_rt[i, :c] = ~t.runtime if t.runtime is not None else True
    # with split budgets in layer mode, `allow` holds feasibility
    lb = b if ab is None else float("inf")
    if mode == "network":
        idx, no_unit = _select_network(tables, b, objective, allow, no_rt, fixed)
    elif mode == "layer":
        idx = select_per_layer(tables, lb, objective, allow=allow, fixed=fixed)
    else:
        idx = select_global(tables, b, objective, layer_cap=cap, fixed=fixed, allow=allow)
    if mode != "network":
        no_unit = select_per_layer(
            tables, lb if mode == "layer" else 0.0, objective, allow=allow & no_rt, fixed=fixed
        )
    tables = _share_tasd(g, network, arch, tables, maps, idx, operand_reads(g), conv)
    return SearchReport(
        network=network.name,
        arch=arch.name,
        objective=objective,
        mode=mode,
        budget=b,
        tables=tuple(tables),
        choice=idx,
        dense=np.array([t.dense for t in tables], dtype=np.int64),
        native=np.array([t.native for t in tables], dtype=np.int64),
        no_unit=no_unit,
        search_s=time.perf_counter() - t0,
        activation_budget=ab,
        operators=operators,
        conventions=conv.value,
    )


def _loss_filter(name: str, budget: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """Network mode's pricing filter of a layer: only the options whose predicted loss alone
    (``plan_search.quality.predicted_loss`` with the layer's role) is within the budget; None
    (all) for the attention probabilities, whose measured errors, smaller than the closed
    form's, replace them after pricing (``quality.with_softmax_errors``)."""
    role = layer_role(name)
    if role == "attn_probs":
        return None

    def keep(e_w: np.ndarray, e_a: np.ndarray) -> np.ndarray:
        return np.asarray(predicted_loss(e_w, e_a, role) <= budget + 1e-12)

    return keep


def _select_network(
    tables: list[LayerTable],
    budget: float,
    objective: str,
    allow: np.ndarray,
    no_rt: np.ndarray,
    fixed: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Network mode: (plan, no-unit plan), both of least network EDP with the predicted loss
    ``Σ_l loss_l <= budget`` (``plan_search.network.select_network``); the no-unit plan under
    the same budget without run-time decompositions, so the two compare like for like; the
    plan is the no-unit one where that is better (both monotone in the budget, so is their
    minimum)."""
    from testy_model.plan_search.network import select_network
    from testy_model.plan_search.selection import _stack, _totals

    st = _stack(tables, fixed)
    loss = np.full(st.error.shape, np.inf)
    for i, t in enumerate(tables):
        loss[i, : len(t.options)] = table_losses(t)
    feasible = st.ok & allow & (loss <= budget + 1e-12)
    plan = select_network(st, loss, feasible, budget)
    no_unit = select_network(st, loss, feasible & no_rt, budget)
    # the no-unit plan is feasible with the unit too: never report a plan worse than it
    e_p, t_p = _totals(st, plan)
    e_u, t_u = _totals(st, no_unit)
    return (no_unit if e_u * t_u < e_p * t_p * (1 - 1e-12) else plan), no_unit


def _share_tasd(
    g: Any,
    network: Network,
    arch: Architecture,
    tables: list[LayerTable],
    maps: list[Mapping | None],
    idx: np.ndarray,
    reads: Any,
    conventions: Conventions,
) -> list[LayerTable]:
    """The tables with each chosen option that reuses another layer's decomposition (the same
    activation series of the same tensor, ``model.graph_eval.shared_tasd``) re-priced with no
    TASD-unit work (``pricing.price_candidates(tasd_scale=0)``), as ``eval`` charges it."""
    from testy_model.model.graph_eval import shared_tasd

    plan = Plan(layers={t.name: t.options[i] for t, i in zip(tables, idx, strict=True)})
    shared = shared_tasd(g, reads, plan)
    out = list(tables)
    for k, (layer, t) in enumerate(zip(network.layers, tables, strict=True)):
        c = int(idx[k])
        if layer.name not in shared or t.runtime is None or not t.runtime[c]:
            continue
        opt = t.options[c]
        alone = price_candidates(
            layer, arch, maps[k], [opt], tasd_scale=0.0, conventions=conventions
        )
        j = alone.index(opt.weights, opt.activations, opt.orientation)
        assert j is not None
        out[k] = _with_option_cost(t, c, alone, j)
    return out


def _with_option_cost(t: LayerTable, c: int, src: LayerTable, j: int) -> LayerTable:
    """``t`` with option ``c``'s cost replaced by option ``j``'s of ``src``."""
    import dataclasses

    def put(a: np.ndarray, v: Any) -> np.ndarray:
        a = a.copy()
        a[c] = v
        return a

    return dataclasses.replace(
        t,
        cycles=put(t.cycles, src.cycles[j]),
        seconds=put(t.seconds, src.seconds[j]),
        energy_pj=put(t.energy_pj, src.energy_pj[j]),
        energy_by_component={
            k: put(v, src.energy_by_component[k][j]) for k, v in t.energy_by_component.items()
        },
        latency_by_component={
            k: put(v, src.latency_by_component[k][j]) for k, v in t.latency_by_component.items()
        },
    )


# -- plot ----------------------------------------------------------------------------------------


def plot_search(report: SearchReport, path: str | Path | None = None) -> Any:
    """Dense, the structured engine without TASD, and the plan side by side per layer
    (:func:`testy_model.plots.search_figure`); returns the matplotlib figure, also saved to
    ``path`` when given."""
    from testy_model.plots import search_figure

    fig = search_figure(report)
    if path is not None:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return fig
