"""Layer-wise TASD plan search (the TASDER role): per layer, which (weight series, activation
series) to run, minimising the network's EDP (or latency, or energy) under an error budget.

Pipeline (:func:`search`), one direction:

1. **Candidates** (:func:`candidates`): per layer, the pairs ``(weight series, activation
   series)`` the engine can run, from :func:`operand_series` (generator documented there).
2. **Error** of each candidate (:func:`candidate_error`, dimensionless, 0 = lossless): on the
   layer's real tensors when it has them, the relative Frobenius error ``||R||_F / ||A||_F`` of
   the greedy decomposition; otherwise the closed-form expected fraction of the operand's
   non-zeros dropped, ``1 − Σ_i E[kept_i] / d`` (:func:`closed_form_error`). Weight and
   activation errors combine as ``e = 1 − (1 − e_w)(1 − e_a)`` (:func:`combine_errors`).
3. **Cost** of each candidate from the model: the layer is mapped once (dense operands, the
   mapper or a given mapping) and every candidate of the layer is priced under that one mapping
   in **one** batched call of :func:`testy_model.model.cost.evaluate_terms` (the candidates are
   the batch axis; term lists are padded with empty terms of density 0 and work 0). Optionally
   (``remap=True``), once the plan is chosen, each decomposed layer is mapped again for its
   chosen terms and keeps that mapping where it lowers the network objective.
4. **Selection**: per-layer mode (:func:`select_per_layer`: each layer's least-objective
   candidate with ``e <= budget``, then a coordinate-descent refinement of the non-separable
   network EDP) or global mode (:func:`select_global`: the MAC-weighted mean error
   ``Σ MACs_l·e_l / Σ MACs_l <= budget``, spent greedily by objective gain per unit of error);
   then a guard: no uniform plan (one series pair in every layer, :func:`uniform_indices`) that
   the budget admits may beat the result.

Network totals (layers run one after another, as :mod:`testy_model.report`): cycles and seconds
add up, energies add up, and the network EDP is ``E_total · t_total`` (pJ·s). Objectives:
``edp`` (pJ·s), ``latency`` (seconds), ``energy`` (pJ).

Three plans are compared in the :class:`SearchReport`: **dense** (every operand dense, the
model's dense convention: density 1, work ratio 1); the **structured engine without TASD**
(an operand runs sparse only when it already fits a hardware pattern, see
:func:`native_series`; no TASD unit work); and the searched **plan**.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from testy_model.errors import MappingError, SpecError
from testy_model.model.cost import OperandTerm, evaluate_terms
from testy_model.model.hierarchical import hardware_for
from testy_model.model.nest import nests_from_mapping
from testy_model.model.plan import LayerPlan, Plan
from testy_model.model.terms import arrives_compliant, kept_densities, term_formats
from testy_model.spec.arch import Architecture, OperandSparsity
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Density, Layer, Network, Problem
from testy_model.tasd.pattern import NMPattern, TasdSeries

Objective = Literal["edp", "latency", "energy"]
Mode = Literal["layer", "global"]
#: ``progress(done, total, layer_name)`` after each layer is priced.
Progress = Callable[[int, int, str], None]
#: ``mapper(problem, arch, objective) -> Mapping`` for one layer.
MapperFn = Callable[[Problem, Architecture, str], Mapping]

OBJECTIVES: tuple[str, ...] = ("edp", "latency", "energy")
MODES: tuple[str, ...] = ("layer", "global")
DENSE = TasdSeries(())
_EPS = 1e-12

__all__ = [
    "LayerTable",
    "SearchReport",
    "candidate_error",
    "candidates",
    "closed_form_error",
    "combine_errors",
    "evaluate_candidates",
    "native_series",
    "network_objective",
    "operand_series",
    "plot_search",
    "search",
    "select_global",
    "select_per_layer",
    "uniform_indices",
]


# -- 1. candidates ----------------------------------------------------------------------------


def operand_series(support: OperandSparsity, max_terms: int = 3) -> list[TasdSeries]:
    """The TASD series one operand can run on hardware ``support``, ``dense`` first.

    Generator: for every hardware pattern ``p:q`` of the operand, the single-term patterns it
    contains with the same ``M = q`` are ``n:q`` for ``n = 1..p``; a series is a sequence of
    ``1..max_terms`` of them with non-increasing ``n`` (the greedy decomposition takes the
    largest magnitudes first, so a reordering of the same ``N`` values keeps the same set of
    values at the same cost and is left out) and ``Σ n <= q`` (terms beyond a full block would
    be empty). On ``2:4`` with ``max_terms = 2``: ``2:4, 1:4, 2:4+2:4, 2:4+1:4, 1:4+1:4``. The
    union over the hardware patterns, without duplicates, sorted by (terms, density), follows
    ``dense``. Hierarchical patterns ``Nc:Mc(Nf:Mf)`` (HighLight) add, for every block size
    ``q = Mf·2^j <= Mc·Mf``, the terms ``n:q`` that fit them
    (:func:`testy_model.model.hierarchical.fits_hierarchical`), combined the same way (one
    block size per series). Every term of every series fits a plain or hierarchical hardware
    pattern (``model.hierarchical.hardware_for`` is not None).
    """
    if max_terms < 1:
        raise ValueError(f"max_terms {max_terms} must be >= 1")
    found: set[TasdSeries] = set()
    for q, ns in _term_sizes(support).items():
        for k in range(1, max_terms + 1):
            for combo in itertools.combinations_with_replacement(sorted(ns, reverse=True), k):
                if sum(combo) <= q:
                    found.add(TasdSeries(tuple(NMPattern(n, q) for n in combo)))
    return [DENSE, *sorted(found)]


def _term_sizes(support: OperandSparsity) -> dict[int, set[int]]:
    """Block size q -> the n of the single-term patterns ``n:q`` that fit a hardware pattern
    of ``support`` (:func:`operand_series`)."""
    from testy_model.model.hierarchical import fits_hierarchical

    sizes: dict[int, set[int]] = {}
    for hw in support.patterns:
        if not hw.is_dense:
            sizes.setdefault(hw.m, set()).update(range(1, hw.n + 1))
    for h in support.hierarchical:
        q = h.fine.m
        while q <= h.coarse.m * h.fine.m:
            # n < q: a full q:q block is a dense term, not a sparse candidate
            ns = {n for n in range(1, q) if fits_hierarchical(NMPattern(n, q), h)}
            if ns:
                sizes.setdefault(q, set()).update(ns)
            q *= 2
    return sizes


def native_series(
    density: Density, support: OperandSparsity, array: np.ndarray | None = None, axis: int = -1
) -> TasdSeries:
    """The series an operand runs on the structured engine **without** TASD: the hardware
    pattern of least work ratio that the operand already fits, else ``dense``.

    It fits ``p:q`` when its density is ``nm`` with a pattern that fits ``p:q``
    (``model.hierarchical.hardware_for``; when that is a hierarchical pattern, the series is
    the operand's own pattern, which runs on it), or, given its
    real ``array``, when every aligned q-block along ``axis`` holds at most p non-zeros
    (:func:`testy_model.tasd.decompose.is_compliant`). Running it as ``p:q`` is lossless.
    """
    if density.nm_pattern is not None:
        hw = hardware_for(density.nm_pattern, support)
        if isinstance(hw, NMPattern):
            return TasdSeries((hw,))
        if hw is not None:  # a hierarchical pattern: the operand runs as its own pattern
            return TasdSeries((density.nm_pattern,))
    if array is not None:
        from testy_model.tasd.decompose import is_compliant

        for hw in sorted(support.patterns, key=lambda p: (p.density, p.m)):
            if not hw.is_dense and is_compliant(array, hw, axis=axis):
                return TasdSeries((hw,))
    return DENSE


def _roles(problem: Problem) -> tuple[str | None, str, str | None]:
    """(weight tensor or None, activation tensor, other activation tensor or None)."""
    act = problem.activation or problem.inputs[-1]
    other = None
    if problem.weight is None:
        rest = [t for t in problem.inputs if t != act]
        other = rest[0] if rest else None
    return problem.weight, act, other


def candidates(
    layer: Layer, arch: Architecture, max_terms: int = 3
) -> list[tuple[TasdSeries, TasdSeries]]:
    """Candidate ``(weight series, activation series)`` pairs of ``layer`` on ``arch``;
    ``(dense, dense)`` first.

    - Weights (operand A, decomposed offline): :func:`operand_series` of ``arch.sparsity.A``.
    - Activations (operand B, decomposed at run time): :func:`operand_series` of
      ``arch.sparsity.B`` when the engine has a ``tasd_unit``; otherwise only ``dense`` and the
      activation's :func:`native_series` when it already fits a hardware pattern.
    - Layers without a weight (attention's batched matmuls, ``weight=None``): both operands are
      run-time activations. The engine's TASD unit sits on the B stream only, so B gets the
      activation options above and A (the query or the softmax output) stays ``dense``; the
      weight series of such a layer is therefore always ``dense``.
    """
    prob = layer.problem
    weight, act, _ = _roles(prob)
    w_opts = operand_series(arch.sparsity.A, max_terms) if weight is not None else [DENSE]
    if arch.tasd_unit is not None:
        a_opts = operand_series(arch.sparsity.B, max_terms)
    else:
        native = native_series(prob.density(act), arch.sparsity.B)
        a_opts = [DENSE] if native.is_dense else [DENSE, native]
    return [(w, a) for w in w_opts for a in a_opts]


# -- 2. error --------------------------------------------------------------------------------


def closed_form_error(
    series: TasdSeries, density: Density, tensor_size: int | None = None
) -> float:
    """Expected fraction of the operand's non-zeros that ``series`` drops (dimensionless).

    Equation: ``e = 1 − Σ_i kept_i / d`` with ``kept_i`` the kept density of term i from
    :func:`testy_model.model.terms.kept_densities`, the rule the model prices (Bernoulli
    non-zeros of density ``d``, hypergeometric over ``tensor_size`` values for a
    ``hypergeometric`` density, exact for an ``nm`` operand). ``dense`` and a zero density
    give 0; an ``nm`` operand that fits the first term loses nothing.

    Hand check: ``2:4`` at ``d = 0.5``: ``E[min(X, 2)]`` for ``X ~ Binomial(4, 1/2)`` is
    ``(0·1 + 1·4 + 2·11)/16 = 26/16`` per 4-block, i.e. ``26/64`` of the values; kept fraction
    ``(26/64)/0.5 = 0.8125``; ``e = 0.1875``. A ``2:4`` operand under ``1:4``: kept 1/4 of
    the values of its 1/2, ``e = 0.5`` exactly.
    """
    if series.is_dense or density.value <= 0.0:
        return 0.0
    kept = kept_densities(series, density, tensor_size=tensor_size).kept
    return float(max(0.0, 1.0 - sum(kept) / density.value))


def combine_errors(e_w: np.ndarray | float, e_a: np.ndarray | float) -> np.ndarray:
    """Error of a layer whose weight and activation are approximated: ``1 − (1 − e_w)(1 − e_a)``
    (dimensionless; both errors are fractions in [0, 1]; the kept share of the product
    ``W·X`` when each operand keeps ``1 − e`` of itself, independently). ``e_w = 0`` gives
    ``e_a``; 0.1 and 0.2 give 0.28."""
    return 1.0 - (1.0 - np.asarray(e_w, dtype=np.float64)) * (
        1.0 - np.asarray(e_a, dtype=np.float64)
    )


def _decompose_axis(problem: Problem, tensor: str, array: np.ndarray) -> tuple[np.ndarray, int]:
    """The array and the axis it is decomposed along: the model's convention
    (:func:`testy_model.model.terms.reduction_axis`), so the search and ``evaluate`` measure
    the same kept densities: the last axis of 1-D/2-D arrays (``A[M,K]``, ``B[N,K]``), axis 1
    (``C``) of 4-D convolution weights ``(M, C, R, S)`` and activations ``(N, C, H, W)``."""
    from testy_model.model.terms import reduction_axis

    arr = np.asarray(array)
    return arr, reduction_axis(arr.ndim)


@dataclass(frozen=True)
class _Operand:
    """What the search knows of one input operand of a layer."""

    tensor: str
    density: Density
    support: OperandSparsity
    size: int
    array: np.ndarray | None = None
    axis: int = -1


def _operand(layer: Layer, tensor: str, support: OperandSparsity, ref: str | None) -> _Operand:
    prob = layer.problem
    arr = None
    axis = -1
    dens = prob.density(tensor)
    if ref is None and dens.kind == "tensor" and dens.path:
        ref = dens.path + (f":{dens.key}" if dens.key else "")
    if ref is not None:
        from testy_model.spec.tensors import load_tensor_ref

        raw = load_tensor_ref(ref, layer=layer.name)
        arr, axis = _decompose_axis(prob, tensor, raw)
    return _Operand(tensor, prob.density(tensor), support, prob.full_size(tensor), arr, axis)


def _terms_and_error(op: _Operand, series: TasdSeries) -> tuple[list[OperandTerm], float]:
    """Terms and error of ``op`` under ``series`` (closed-form results cached across layers)."""
    if op.array is None:  # closed form: a function of (series, density, support) only
        size = op.size if op.density.kind == "hypergeometric" else 1
        return _closed_terms(series, op.density, op.support, size)
    return _terms_and_error_uncached(op, series)


@lru_cache(maxsize=65536)
def _closed_terms(
    series: TasdSeries, density: Density, support: OperandSparsity, size: int
) -> tuple[list[OperandTerm], float]:
    return _terms_and_error_uncached(_Operand("x", density, support, size), series)


def _terms_and_error_uncached(op: _Operand, series: TasdSeries) -> tuple[list[OperandTerm], float]:
    """Terms (kept density, metadata bits, work) of ``op`` under ``series``, and its error.

    Kept densities, metadata bits and work ratios come from the model's own rule
    (:func:`testy_model.model.terms.kept_densities` and ``term_formats``: measured on the
    array when there is one, exact for an ``nm`` operand, else the closed form), so the search
    prices exactly what ``evaluate`` prices. Error: on an array, the decomposition's
    ``||R||_F / ||A||_F``; else :func:`closed_form_error`.
    """
    kd = kept_densities(series, op.density, tensor_size=op.size, array=op.array, axis=op.axis)
    if series.is_dense:
        err = 0.0
    elif kd.rel_error is not None:
        err = kd.rel_error
    else:
        err = closed_form_error(series, op.density, op.size)
    return [f.operand_term() for f in term_formats(series, kd.kept, op.support)], err


def candidate_error(layer: Layer, arch: Architecture, weights: str, activations: str) -> float:
    """Error of one candidate of ``layer`` (closed form or measured, combined; see module)."""
    ops = _layer_operands(layer, arch)
    w, a = TasdSeries.parse(weights), TasdSeries.parse(activations)
    weight, act, _ = _roles(layer.problem)
    e_w = _terms_and_error(ops[weight], w)[1] if weight is not None else 0.0
    e_a = _terms_and_error(ops[act], a)[1]
    return float(combine_errors(e_w, e_a))


def _native(op: _Operand) -> TasdSeries:
    return native_series(op.density, op.support, op.array, op.axis)


def _layer_operands(layer: Layer, arch: Architecture) -> dict[str, _Operand]:
    prob = layer.problem
    weight, act, _ = _roles(prob)
    out = {act: _operand(layer, act, arch.sparsity.B, layer.activation_tensor)}
    if weight is not None:
        out[weight] = _operand(layer, weight, arch.sparsity.A, layer.weight_tensor)
    return out


# -- 3. cost -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerTable:
    """Every candidate of one layer with its error and cost (arrays over the C candidates).

    Units: cycles; seconds; energy pJ; EDP pJ·s; errors dimensionless.
    ``latency_by_component`` holds the cycles each part would need alone (``compute``, each
    level's bandwidth cycles, ``TASD_unit``); the layer's latency is their maximum
    (double-buffered, the model's convention). ``dense`` and ``native`` index the dense and the
    no-TASD options.
    """

    name: str
    macs: int
    options: tuple[LayerPlan, ...]
    weight_error: np.ndarray
    activation_error: np.ndarray
    error: np.ndarray
    cycles: np.ndarray
    seconds: np.ndarray
    energy_pj: np.ndarray
    valid: np.ndarray
    energy_by_component: dict[str, np.ndarray] = field(repr=False)
    latency_by_component: dict[str, np.ndarray] = field(repr=False)
    dense: int = 0
    native: int = 0
    measured: bool = False

    @property
    def edp(self) -> np.ndarray:
        """Layer EDP per candidate, pJ·s (energy × seconds)."""
        return self.energy_pj * self.seconds

    @cached_property
    def _lookup(self) -> dict[tuple[TasdSeries, TasdSeries], int]:
        return {(o.weights, o.activations): i for i, o in enumerate(self.options)}

    def index(self, weights: TasdSeries | str, activations: TasdSeries | str) -> int | None:
        """Index of the option ``(weights, activations)``, or None when not a candidate."""
        return self._lookup.get((TasdSeries.parse(weights), TasdSeries.parse(activations)))


def evaluate_candidates(
    layer: Layer,
    arch: Architecture,
    mapping: Mapping,
    options: Sequence[tuple[TasdSeries, TasdSeries]] | None = None,
    *,
    max_terms: int = 3,
    require_dense: bool = True,
) -> LayerTable:
    """Error and cost of every candidate of ``layer`` under one shared ``mapping``, in one
    batched call of the model (candidates along the batch axis).

    Candidates the mapping cannot hold (compressed tiles plus metadata over a level's capacity)
    are marked invalid. Raises :class:`MappingError` when the dense option itself is invalid
    under ``mapping`` (the mapping does not fit this layer on this engine), unless
    ``require_dense`` is False.
    """
    prob = layer.problem
    opts = list(options) if options is not None else candidates(layer, arch, max_terms)
    if (DENSE, DENSE) not in opts:
        opts.insert(0, (DENSE, DENSE))
    ops = _layer_operands(layer, arch)
    weight, act, _ = _roles(prob)
    native_a = _native(ops[act])
    native_w = _native(ops[weight]) if weight is not None else DENSE
    if (native_w, native_a) not in opts:
        opts.append((native_w, native_a))
    n_c = len(opts)
    cache: dict[tuple[str, TasdSeries], tuple[list[OperandTerm], float]] = {}

    def terms_of(tensor: str, s: TasdSeries) -> tuple[list[OperandTerm], float]:
        if (tensor, s) not in cache:
            cache[(tensor, s)] = _terms_and_error(ops[tensor], s)
        return cache[(tensor, s)]

    per_tensor: dict[str, list[list[OperandTerm]]] = {t: [] for t in ops}
    e_w = np.zeros(n_c)
    e_a = np.zeros(n_c)
    tasd = np.zeros(n_c)
    for c, (w, a) in enumerate(opts):
        if weight is not None:
            tw, e_w[c] = terms_of(weight, w)
            per_tensor[weight].append(tw)
        elif not w.is_dense:
            raise SpecError(
                f"layer {layer.name!r} has no weight operand; its weight series must be dense"
            )
        ta, e_a[c] = terms_of(act, a)
        per_tensor[act].append(ta)
        # run-time decomposition unless the activation arrives already in that pattern
        if not a.is_dense and not arrives_compliant(
            a, ops[act].density, ops[act].array, ops[act].axis
        ):
            tasd[c] = float(ops[act].size)
    batched: dict[str, list[OperandTerm]] = {}
    for t, rows in per_tensor.items():
        k = max(len(r) for r in rows)
        cols = []
        for i in range(k):
            pick = [r[i] if i < len(r) else OperandTerm(0.0, 0.0, None, 0.0) for r in rows]
            cols.append(
                OperandTerm(
                    density=np.array([float(x.density) for x in pick]),
                    metadata_bits=np.array([float(x.metadata_bits) for x in pick]),
                    pattern=None,
                    work=np.array([float(x.work) for x in pick]),  # type: ignore[arg-type]
                )
            )
        batched[t] = cols
    nests = nests_from_mapping(mapping, arch, prob)
    nests = nests.select(np.zeros(n_c, dtype=np.int64))
    cost = evaluate_terms(prob, arch, nests, batched, tasd_values=tasd)
    valid = np.asarray(cost.valid, dtype=bool).reshape(n_c)
    if require_dense and not valid[opts.index((DENSE, DENSE))]:
        raise MappingError(
            f"layer {layer.name!r}: the mapping does not fit the layer run dense on {arch.name!r} "
            "(factors, fan-out or capacity)",
            file=mapping.source,
        )
    lat: dict[str, np.ndarray] = {"compute": np.asarray(cost.compute_cycles, float).reshape(n_c)}
    lvl = np.asarray(cost.level_cycles, float).reshape(n_c, -1)
    for i, name in enumerate(cost.level_names):
        lat[name] = lvl[:, i]
    lat["TASD_unit"] = np.asarray(cost.tasd_cycles, float).reshape(n_c)
    plans = tuple(LayerPlan(weights=w, activations=a) for w, a in opts)
    native_key = LayerPlan(weights=native_w, activations=native_a)
    native = plans.index(native_key) if native_key in plans else 0
    return LayerTable(
        name=layer.name,
        macs=prob.macs,
        options=plans,
        weight_error=e_w,
        activation_error=e_a,
        error=combine_errors(e_w, e_a),
        cycles=np.asarray(cost.cycles, float).reshape(n_c),
        seconds=np.asarray(cost.seconds, float).reshape(n_c),
        energy_pj=np.asarray(cost.energy_pj, float).reshape(n_c),
        valid=valid,
        energy_by_component={
            k: np.asarray(v, float).reshape(n_c) for k, v in cost.energy_by_component.items()
        },
        latency_by_component=lat,
        dense=plans.index(LayerPlan()),
        native=native,
        measured=any(o.array is not None for o in ops.values()),
    )


def default_mapper(problem: Problem, arch: Architecture, objective: str) -> Mapping:
    """The mapper's best mapping of ``problem`` with dense operands, for ``objective``
    (``edp``/``latency``/``energy``; cached by shape in the mapper). Mapping the dense layer
    keeps every candidate's compressed tiles within the capacities the dense run fits."""
    from testy_model.mapper import find_mapping

    return find_mapping(problem, arch, objective=objective, densities={}).mapping  # type: ignore[arg-type]


# -- 4. selection -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stack:
    """All layers' candidates as (L, C) arrays; missing/invalid entries are +inf cost."""

    energy: np.ndarray
    seconds: np.ndarray
    error: np.ndarray
    ok: np.ndarray
    weight: np.ndarray  # (L,) MAC share of each layer, sums to 1


def _stack(tables: Sequence[LayerTable]) -> _Stack:
    n_l = len(tables)
    n_c = max(len(t.options) for t in tables)
    e = np.full((n_l, n_c), np.inf)
    s = np.full((n_l, n_c), np.inf)
    err = np.full((n_l, n_c), np.inf)
    ok = np.zeros((n_l, n_c), dtype=bool)
    for i, t in enumerate(tables):
        c = len(t.options)
        e[i, :c] = np.where(t.valid, t.energy_pj, np.inf)
        s[i, :c] = np.where(t.valid, t.seconds, np.inf)
        err[i, :c] = t.error
        ok[i, :c] = t.valid
    macs = np.array([t.macs for t in tables], dtype=np.float64)
    return _Stack(e, s, err, ok, macs / macs.sum())


def _objective_of(energy: float, seconds: float, objective: str) -> float:
    """Network objective from totals: EDP = E·t (pJ·s), latency t (s), energy E (pJ)."""
    if objective == "edp":
        return energy * seconds
    if objective == "latency":
        return seconds
    return energy


def network_objective(tables: Sequence[LayerTable], idx: Sequence[int], objective: str) -> float:
    """The network objective of choosing option ``idx[l]`` in layer ``l`` (layers in sequence:
    ``E = Σ E_l``, ``t = Σ t_l``; EDP = ``E·t`` in pJ·s, latency ``t`` in s, energy ``E`` in pJ)."""
    e = sum(float(t.energy_pj[i]) for t, i in zip(tables, idx, strict=True))
    s = sum(float(t.seconds[i]) for t, i in zip(tables, idx, strict=True))
    return _objective_of(e, s, objective)


def _totals(st: _Stack, idx: np.ndarray) -> tuple[float, float]:
    rows = np.arange(len(idx))
    return float(st.energy[rows, idx].sum()), float(st.seconds[rows, idx].sum())


def _refine(st: _Stack, idx: np.ndarray, feasible: np.ndarray, objective: str) -> np.ndarray:
    """Coordinate descent on the (non-separable) network EDP ``(Σ E)(Σ t)``: each layer in turn
    takes its feasible option minimising the network EDP with the others fixed, until a sweep
    changes nothing (each accepted change strictly lowers it, so this terminates). A no-op for
    the separable objectives (latency, energy), where the per-layer optimum is the network's."""
    if objective != "edp":
        return idx
    idx = idx.copy()
    for _ in range(50):
        changed = False
        for i in range(len(idx)):
            e_tot, s_tot = _totals(st, idx)
            e_rest = e_tot - st.energy[i, idx[i]]
            s_rest = s_tot - st.seconds[i, idx[i]]
            j = np.where(feasible[i], (e_rest + st.energy[i]) * (s_rest + st.seconds[i]), np.inf)
            best = int(np.argmin(j))
            if j[best] < j[idx[i]] * (1 - 1e-12):
                idx[i] = best
                changed = True
        if not changed:
            break
    return idx


def _layer_score(st: _Stack, objective: str) -> np.ndarray:
    if objective == "edp":
        return st.energy * st.seconds
    if objective == "latency":
        return st.seconds
    return st.energy


def _argmin_rows(score: np.ndarray, error: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Per row, the feasible column of least score. Scores within a relative 1e-9 of the least
    count as ties (float noise), broken by the lower error (within 1e-12), then the lower
    index (candidates are ordered dense first, then fewer terms first)."""
    s = np.where(feasible, score, np.inf)
    best = s.min(axis=1, keepdims=True)
    tie = feasible & (s <= best * (1 + 1e-9))
    err = np.where(tie, error, np.inf)
    tie &= err <= err.min(axis=1, keepdims=True) + 1e-12
    return np.argmax(tie, axis=1).astype(np.int64)


def select_per_layer(
    tables: Sequence[LayerTable], budget: float, objective: str = "edp"
) -> np.ndarray:
    """Per layer, the valid candidate of least layer objective whose error is ``<= budget``
    (``dense`` always qualifies: error 0), then :func:`_refine` for the network EDP.

    Returns the chosen option index per layer.
    """
    st = _stack(tables)
    feasible = st.ok & (st.error <= budget + _EPS)
    idx = _argmin_rows(_layer_score(st, objective), st.error, feasible)
    return _refine(st, idx, feasible, objective)


def _mean_error(st: _Stack, idx: np.ndarray) -> float:
    return float((st.weight * st.error[np.arange(len(idx)), idx]).sum())


def select_global(
    tables: Sequence[LayerTable],
    budget: float,
    objective: str = "edp",
    layer_cap: float = 1.0,
    max_steps: int = 100000,
) -> np.ndarray:
    """One network-wide budget on the MAC-weighted mean error ``Ē = Σ_l w_l e_l <= budget``
    (``w_l = MACs_l / Σ MACs``, dimensionless), spread greedily; no layer's error may exceed
    ``layer_cap`` (1 = no cap).

    Start from the best lossless plan (:func:`select_per_layer` with budget 0). Each step
    considers every (layer, option) switch that keeps ``Ē <= budget`` and lowers the network
    objective ``J``, and takes the one of highest gain per unit of added error
    ``(J − J') / (w_l·Δe_l)`` (a switch that adds no error ranks first, by its gain). Every
    step strictly lowers ``J``, so the loop ends; ``max_steps`` is a safety cap.
    """
    st = _stack(tables)
    idx = select_per_layer(tables, 0.0, objective)
    rows = np.arange(len(idx))
    for _ in range(max_steps):
        e_tot, s_tot = _totals(st, idx)
        j_now = _objective_of(e_tot, s_tot, objective)
        cur_e = st.energy[rows, idx][:, None]
        cur_s = st.seconds[rows, idx][:, None]
        new_e = e_tot - cur_e + st.energy
        new_s = s_tot - cur_s + st.seconds
        j_new = _objective_of(new_e, new_s, objective)  # type: ignore[arg-type]
        gain = j_now - j_new
        d_err = st.weight[:, None] * (st.error - st.error[rows, idx][:, None])
        mean_now = _mean_error(st, idx)
        allowed = (
            (st.error <= layer_cap + _EPS)
            & st.ok
            & np.isfinite(gain)
            & (gain > j_now * 1e-12)
            & (mean_now + d_err <= budget + _EPS)
        )
        if not allowed.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(d_err > _EPS, gain / np.where(d_err > _EPS, d_err, 1.0), np.inf)
        ratio = np.where(allowed, ratio, -np.inf)
        top = ratio.max()
        pick = np.where(ratio == top, np.where(allowed, gain, -np.inf), -np.inf)
        li, ci = np.unravel_index(int(np.argmax(pick)), pick.shape)
        idx[li] = ci
    return idx


def uniform_indices(tables: Sequence[LayerTable], option: LayerPlan) -> np.ndarray:
    """Option index per layer for running ``option`` in every layer: a layer where it is not a
    candidate runs its weight (resp. activation) series dense instead (e.g. attention layers,
    which have no weight); ``dense`` when neither exists."""
    out = []
    for t in tables:
        i = t.index(option.weights, option.activations)
        if i is None:
            i = t.index(DENSE, option.activations)
        if i is None:
            i = t.index(option.weights, DENSE)
        out.append(t.dense if i is None else i)
    return np.array(out, dtype=np.int64)


def _uniform_matrix(tables: Sequence[LayerTable]) -> np.ndarray:
    """(P, L) option indices of every uniform plan (one row per distinct series pair ``p`` of
    any layer), with :func:`uniform_indices`' fallbacks, built with integer ids (no per-pair
    Python loop over layers)."""
    gid: dict[tuple[TasdSeries, TasdSeries], int] = {}
    for t in tables:
        for o in t.options:
            gid.setdefault((o.weights, o.activations), len(gid))
    n_p, n_l = len(gid), len(tables)
    loc = np.full((n_l, n_p + 1), -1, dtype=np.int64)  # column n_p: "no such pair"
    for li, t in enumerate(tables):
        loc[li, [gid[(o.weights, o.activations)] for o in t.options]] = np.arange(len(t.options))
    pairs = list(gid)
    first = np.array([gid[p] for p in pairs], dtype=np.int64)
    no_w = np.array([gid.get((DENSE, a), n_p) for _, a in pairs], dtype=np.int64)
    no_a = np.array([gid.get((w, DENSE), n_p) for w, _ in pairs], dtype=np.int64)
    dense = np.array([t.dense for t in tables], dtype=np.int64)[:, None]
    out = loc[:, first]
    out = np.where(out < 0, loc[:, no_w], out)
    out = np.where(out < 0, loc[:, no_a], out)
    return np.where(out < 0, dense, out).T


def _guard(
    tables: Sequence[LayerTable],
    st: _Stack,
    idx: np.ndarray,
    budget: float,
    mode: str,
    objective: str,
    layer_cap: float = 1.0,
) -> np.ndarray:
    """Replace the plan by a uniform one (same series pair in every layer,
    :func:`uniform_indices`) when a feasible uniform plan has a strictly lower network objective
    (a safety net for the non-separable EDP; all uniform plans are scored in one numpy pass)."""
    u = _uniform_matrix(tables)  # (P, L)
    rows = np.arange(len(tables))[None, :]
    e = st.energy[rows, u].sum(axis=1)
    s = st.seconds[rows, u].sum(axis=1)
    err = st.error[rows, u]
    ok = st.ok[rows, u].all(axis=1)
    if mode == "layer":
        ok &= (err <= budget + _EPS).all(axis=1)
    else:
        ok &= (err * st.weight[None, :]).sum(axis=1) <= budget + _EPS
        ok &= (err <= layer_cap + _EPS).all(axis=1)
    j = np.where(ok, _objective_of(e, s, objective), np.inf)  # type: ignore[arg-type]
    best_u = int(np.argmin(j))
    j_plan = _objective_of(*_totals(st, idx), objective)
    if np.isfinite(j[best_u]) and j[best_u] < j_plan * (1 - 1e-12):
        return u[best_u].copy()
    return idx


# -- report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanTotals:
    """Network totals of one plan: cycles, seconds, energy (pJ), EDP (pJ·s), the MAC-weighted
    mean error and the largest layer error (dimensionless)."""

    cycles: float
    seconds: float
    energy_pj: float
    edp_pj_s: float
    mean_error: float
    max_error: float

    def to_dict(self) -> dict[str, float]:
        """Plain data (the fields by name)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SearchReport:
    """The result of :func:`search`: the plan, and dense / no-TASD / plan compared.

    ``choice``, ``dense`` and ``native`` hold one option index per layer into ``tables``.
    """

    network: str
    arch: str
    objective: str
    mode: str
    budget: float
    tables: tuple[LayerTable, ...]
    choice: np.ndarray
    dense: np.ndarray
    native: np.ndarray
    search_s: float = 0.0
    remapped: tuple[LayerTable | None, ...] = ()

    def _entries(self, which: str) -> list[tuple[LayerTable, int]]:
        """(table, option index) per layer for ``plan``, ``dense`` or ``native``; a plan layer
        that :func:`search` re-mapped (``remap=True``) reads its cost from the new table."""
        idx = {"plan": self.choice, "dense": self.dense, "native": self.native}[which]
        out = []
        for li, (t, i) in enumerate(zip(self.tables, idx, strict=True)):
            alt = self.remapped[li] if which == "plan" and li < len(self.remapped) else None
            if alt is not None:
                o = t.options[i]
                j = alt.index(o.weights, o.activations)
                out.append((alt, int(j)) if j is not None else (t, int(i)))
            else:
                out.append((t, int(i)))
        return out

    def totals(self, which: str = "plan") -> PlanTotals:
        """Totals of ``plan``, ``dense`` or ``native`` (structured engine without TASD)."""
        ent = self._entries(which)
        macs = np.array([t.macs for t in self.tables], dtype=np.float64)
        errs = np.array([t.error[i] for t, i in ent])
        e = float(sum(t.energy_pj[i] for t, i in ent))
        s = float(sum(t.seconds[i] for t, i in ent))
        c = float(sum(t.cycles[i] for t, i in ent))
        return PlanTotals(
            c, s, e, e * s, float((macs * errs).sum() / macs.sum()), float(errs.max())
        )

    @property
    def plan(self) -> Plan:
        """The chosen series as the model's :class:`Plan` (every layer listed, default dense)."""
        return Plan(
            layers={t.name: t.options[i] for t, i in zip(self.tables, self.choice, strict=True)}
        )

    def ratio(self, against: str, quantity: str = "edp_pj_s") -> float:
        """``quantity`` of the plan / that of ``against`` (``dense`` or ``native``)."""
        a = getattr(self.totals(against), quantity)
        return getattr(self.totals("plan"), quantity) / a if a else float("nan")

    def rows(self) -> list[dict[str, Any]]:
        """One plain-data row per layer (plan's choice, error, cost, and the dense cost)."""
        out = []
        for base, (t, i) in zip(self.tables, self._entries("plan"), strict=True):
            o = t.options[i]
            out.append(
                {
                    "layer": t.name,
                    "macs": t.macs,
                    "weights": str(o.weights),
                    "activations": str(o.activations),
                    "error": float(t.error[i]),
                    "error_source": "measured" if t.measured else "closed-form",
                    "cycles": float(t.cycles[i]),
                    "seconds": float(t.seconds[i]),
                    "energy_pj": float(t.energy_pj[i]),
                    "edp_pj_s": float(t.edp[i]),
                    "dense_cycles": float(base.cycles[base.dense]),
                    "dense_energy_pj": float(base.energy_pj[base.dense]),
                    "speedup": float(base.cycles[base.dense] / t.cycles[i]),
                    "candidates": len(base.options),
                    "remapped": t is not base,
                    "energy_by_component": {
                        k: float(v[i]) for k, v in t.energy_by_component.items()
                    },
                    "latency_by_component": {
                        k: float(v[i]) for k, v in t.latency_by_component.items()
                    },
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: settings, totals of the three plans, ratios, layers, plan."""
        return {
            "network": self.network,
            "arch": self.arch,
            "objective": self.objective,
            "mode": self.mode,
            "budget": self.budget,
            "totals": {w: self.totals(w).to_dict() for w in ("dense", "native", "plan")},
            "ratios": {
                "edp_vs_dense": self.ratio("dense"),
                "edp_vs_native": self.ratio("native"),
                "cycles_vs_dense": self.ratio("dense", "cycles"),
                "energy_vs_dense": self.ratio("dense", "energy_pj"),
            },
            "layers": self.rows(),
            "plan": self.plan.to_dict()["plan"],
            "search_s": self.search_s,
            "remapped": [
                t.name for t, a in zip(self.tables, self.remapped, strict=False) if a is not None
            ],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of :meth:`to_dict` (written to ``path`` when given)."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_frame(self) -> Any:
        """pandas DataFrame, one row per layer (component columns ``E_*`` pJ, ``T_*`` cycles)."""
        import pandas as pd

        rows = []
        for r in self.rows():
            flat = {k: v for k, v in r.items() if not isinstance(v, dict)}
            flat.update({f"E_{k}": v for k, v in r["energy_by_component"].items()})
            flat.update({f"T_{k}": v for k, v in r["latency_by_component"].items()})
            rows.append(flat)
        return pd.DataFrame(rows)


def _as_float(x: float, name: str) -> float:
    v = float(x)
    if not math.isfinite(v) or v < 0:
        raise SpecError(f"{name} {x!r} must be a finite number >= 0")
    return v


def search(
    network: Network,
    arch: Architecture,
    *,
    budget: float = 0.05,
    mode: Mode = "layer",
    objective: Objective = "edp",
    mappings: Mapping | dict[str, Mapping] | MapperFn | None = None,
    max_terms: int = 3,
    layer_cap: float = 1.0,
    remap: bool = False,
    progress: Progress | None = None,
) -> SearchReport:
    """Search a per-layer TASD plan of ``network`` on ``arch`` (see the module docstring).

    Args:
        network: the layers (zoo or file); real tensors are used where the layers name them.
        arch: the engine (its ``sparsity`` patterns and optional ``tasd_unit``).
        budget: error budget (dimensionless, >= 0): per layer in ``layer`` mode, the MAC-weighted
            mean error in ``global`` mode. 0 gives the best lossless plan.
        mode: ``layer`` or ``global``.
        objective: ``edp`` (pJ·s), ``latency`` (s) or ``energy`` (pJ) of the whole network.
        mappings: one :class:`Mapping` for every layer, a dict layer name -> Mapping, or a
            function ``(problem, arch, objective) -> Mapping``; default the mapper
            (:func:`default_mapper`, run on the dense layer and cached by shape).
        max_terms: longest series considered (1..3 recommended).
        layer_cap: in ``global`` mode, the largest error any one layer may take (1 = no cap).
        remap: after the choice, map each decomposed layer again for its chosen terms and keep
            that mapping where it lowers the network objective (:func:`_remap`); costs one
            more mapper search per distinct (shape, plan) pair.
        progress: called as ``progress(done, total, layer)`` after each layer.

    Raises:
        SpecError: bad budget/mode/objective, a layer missing from a mapping dict.
        MappingError: a mapping that does not fit a layer.
    """
    import time

    t0 = time.perf_counter()
    b = _as_float(budget, "budget")
    cap = _as_float(layer_cap, "layer_cap")
    if mode not in MODES:
        raise SpecError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if objective not in OBJECTIVES:
        raise SpecError(f"objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    if not network.layers:
        raise SpecError(f"network {network.name!r} has no layers")
    tables = []
    n = len(network.layers)
    for k, layer in enumerate(network.layers):
        if isinstance(mappings, Mapping):
            m = mappings
        elif isinstance(mappings, dict):
            if layer.name not in mappings:
                raise SpecError(
                    f"no mapping for layer {layer.name!r} (mappings given for {sorted(mappings)})"
                )
            m = mappings[layer.name]
        else:
            m = (mappings or default_mapper)(layer.problem, arch, objective)
        tables.append(evaluate_candidates(layer, arch, m, max_terms=max_terms))
        if progress is not None:
            progress(k + 1, n, layer.name)
    st = _stack(tables)
    idx = (
        select_per_layer(tables, b, objective)
        if mode == "layer"
        else select_global(tables, b, objective, layer_cap=cap)
    )
    idx = _guard(tables, st, idx, b, mode, objective, cap)
    alts: tuple[LayerTable | None, ...] = ()
    if remap:
        alts = _remap(network, arch, tables, idx, objective)
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
        search_s=time.perf_counter() - t0,
        remapped=alts,
    )


def _remap(
    network: Network,
    arch: Architecture,
    tables: Sequence[LayerTable],
    idx: np.ndarray,
    objective: str,
) -> tuple[LayerTable | None, ...]:
    """After selection, map each layer again for its chosen terms (the mapper sizes tiles for
    the compressed operands, as ``testy-model eval --mapping mapper`` does for a plan) and keep
    the new mapping when the chosen option is valid under it and the network objective
    strictly drops (layers in order). The choice itself does not change, so the plan's errors
    and its guarantees against dense and the uniform plans hold (the objective only falls)."""
    from testy_model.mapper import find_mapping

    alts: list[LayerTable | None] = [None] * len(tables)
    entries = [(t, int(i)) for t, i in zip(tables, idx, strict=True)]
    e_tot = sum(float(t.energy_pj[i]) for t, i in entries)
    s_tot = sum(float(t.seconds[i]) for t, i in entries)
    for li, (layer, (t, i)) in enumerate(zip(network.layers, entries, strict=True)):
        o = t.options[i]
        if o.is_dense:
            continue
        ops = _layer_operands(layer, arch)
        dens = {tensor: _terms_and_error(ops[tensor], s)[0] for tensor, s in _series_of(layer, o)}
        m = find_mapping(layer.problem, arch, objective=objective, densities=dens).mapping  # type: ignore[arg-type]
        alt = evaluate_candidates(layer, arch, m, [(o.weights, o.activations)], require_dense=False)
        j = alt.index(o.weights, o.activations)
        if j is None or not alt.valid[j]:
            continue
        e_new = e_tot - float(t.energy_pj[i]) + float(alt.energy_pj[j])
        s_new = s_tot - float(t.seconds[i]) + float(alt.seconds[j])
        if _objective_of(e_new, s_new, objective) < _objective_of(e_tot, s_tot, objective) * (
            1 - 1e-12
        ):
            alts[li] = alt
            e_tot, s_tot = e_new, s_new
    return tuple(alts)


def _series_of(layer: Layer, option: LayerPlan) -> list[tuple[str, TasdSeries]]:
    """(tensor, series) of the layer's decomposed operands under ``option``."""
    weight, act, _ = _roles(layer.problem)
    out = [(act, option.activations)] if not option.activations.is_dense else []
    if weight is not None and not option.weights.is_dense:
        out.append((weight, option.weights))
    return out


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
