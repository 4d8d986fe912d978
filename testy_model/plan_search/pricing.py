"""Cost of every candidate of a layer (the search's step 3): the one place the search prices.

**Each candidate is priced on the mapping it runs on**, the mapping ``testy-model eval --plan``
finds for it (:func:`plan_mapping`, used by both): the mapper's best EDP mapping of the layer
for the candidate's *mapping class*, i.e. for what its terms store, move and issue:

    class(candidate) = (orientation, per tensor: (Σ_i s_i, Σ_i s_i·b_i, Σ_i r_i))

with ``s_i`` the stored density (a fixed-slot term's slots), ``b_i`` its metadata bits per
stored value and ``r_i`` its work ratio (:func:`mapping_terms`). On fixed-slot engines the class
depends on the hardware patterns only, not on what the slots hold, so candidates share mappings
and real (measured) and closed-form densities map alike; the mapper sees the class's slots as
full. Mappings are found once per (layer shape, class) (the mapper's cache), and a layer's
candidates are priced in one batched call of the cost core per orientation, so the totals the
search reports equal ``evaluate``'s for the plan it writes.

Given explicit mappings (one :class:`Mapping`, or one per layer), every candidate of a layer
runs on that mapping (and ``eval`` with the same mapping file agrees).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from testy_model.errors import MappingError, SpecError
from testy_model.model.arrays import arch_arrays
from testy_model.model.cost import OperandTerm, evaluate_terms
from testy_model.model.nest import LoopNests, nests_from_mapping, stack_nests
from testy_model.model.plan import LayerPlan
from testy_model.model.terms import (
    arrives_compliant,
    layer_terms,
    operand_supports,
    oriented_arch,
    runtime_series,
)
from testy_model.plan_search.candidates import DENSE, candidates, roles, runtime_a
from testy_model.plan_search.errors import (
    ErrorMetric,
    Operand,
    combine_errors,
    layer_operands,
    native,
    slot_errors,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Layer, Problem
from testy_model.tasd.pattern import TasdSeries

#: ``mapper(problem, arch, objective) -> Mapping`` for one layer (every candidate shares it).
MapperFn = Callable[[Problem, Architecture, str], Mapping]
_DIGITS = 12


@dataclass(frozen=True)
class LayerTable:
    """Every candidate of one layer with its error and cost (arrays over the C candidates).

    Units: cycles; seconds; energy pJ; EDP pJ·s; errors dimensionless.
    ``latency_by_component`` holds the cycles each part would need alone (``compute``, each
    level's bandwidth cycles, ``TASD_unit``); the layer's latency is their maximum
    (double-buffered, the model's convention). ``dense`` and ``native`` index the dense and the
    no-TASD options; ``runtime`` marks the options that decompose an activation at run time
    (the TASD unit's work); ``priced`` the options that were priced (the search leaves out the
    candidates over its error cap: they are invalid with infinite cost).
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
    runtime: np.ndarray | None = None
    priced: np.ndarray | None = None

    @property
    def edp(self) -> np.ndarray:
        """Layer EDP per candidate, pJ·s (energy × seconds)."""
        return self.energy_pj * self.seconds

    @cached_property
    def _lookup(self) -> dict[tuple[TasdSeries, TasdSeries, str], int]:
        return {(o.weights, o.activations, o.orientation): i for i, o in enumerate(self.options)}

    def index(
        self,
        weights: TasdSeries | str,
        activations: TasdSeries | str,
        orientation: str = "weight",
    ) -> int | None:
        """Index of the option ``(weights, activations, orientation)``, or None."""
        key = (TasdSeries.parse(weights), TasdSeries.parse(activations), orientation)
        return self._lookup.get(key)


def mapping_terms(terms: dict[str, list[OperandTerm]]) -> dict[str, list[OperandTerm]]:
    """The candidate's mapping class as the mapper sees it: per decomposed tensor one term of
    stored density ``S = Σ s_i``, metadata ``Σ s_i·b_i / S`` bits per stored value and work
    ``Σ r_i``, its slots full (non-zero = stored); dense tensors (one term of density 1, no
    metadata, work 1) are left out. Values rounded to 12 significant digits (a stable key)."""
    out: dict[str, list[OperandTerm]] = {}
    for t, ts in terms.items():
        s = sum(float(x.density) for x in ts)
        md = sum(float(x.density) * float(x.metadata_bits) for x in ts)
        r = sum(float(x.work) if x.work is not None else 1.0 for x in ts)
        if len(ts) == 1 and s == 1.0 and md == 0.0 and r == 1.0:
            continue
        bits = md / s if s > 0 else 0.0
        out[t] = [
            OperandTerm(
                density=float(f"{s:.{_DIGITS}g}"),
                metadata_bits=float(f"{bits:.{_DIGITS}g}"),
                work=float(f"{r:.{_DIGITS}g}"),
            )
        ]
    return out


def class_mapping(
    problem: Problem,
    arch: Architecture,
    transposed: bool,
    terms: dict[str, list[OperandTerm]],
    conventions: Conventions | str | None = None,
) -> Mapping:
    """The mapper's best EDP mapping of ``problem`` for the mapping class of ``terms`` in the
    given orientation, priced under ``conventions`` (default ``timeloop``; module docstring;
    cached by the mapper per shape, class and conventions)."""
    from testy_model.mapper import find_mapping

    seen = oriented_arch(arch, problem, transposed)
    dens = mapping_terms(terms)
    return find_mapping(
        problem, seen, objective="edp", densities=dens, conventions=conventions
    ).mapping


def plan_mapping(
    layer: Layer,
    arch: Architecture,
    plan: LayerPlan,
    conventions: Conventions | str | None = None,
) -> Mapping:
    """The mapping ``layer`` runs on under ``plan`` (``eval --mapping mapper`` and the search
    share it): :func:`class_mapping` of the plan's terms (``model.terms.layer_terms``) under
    ``conventions``."""
    fmts, _ = layer_terms(layer, plan, arch)
    terms = {t: [x.operand_term() for x in ts] for t, ts in fmts.items()}
    return class_mapping(layer.problem, arch, plan.transposed, terms, conventions)


def default_mapper(
    problem: Problem,
    arch: Architecture,
    objective: str,
    conventions: Conventions | str | None = None,
) -> Mapping:
    """The mapper's best mapping of ``problem`` with dense operands, for ``objective``
    (``edp``/``latency``/``energy``) under ``conventions`` (cached by shape in the mapper)."""
    from testy_model.mapper import find_mapping

    # a MapperFn takes any str; find_mapping rejects an objective it does not know itself
    return find_mapping(
        problem,
        arch,
        objective=objective,  # type: ignore[arg-type]
        densities={},
        conventions=conventions,
    ).mapping


@dataclass
class _Priced:
    """Per-candidate inputs to the cost core."""

    terms: dict[str, list[list[OperandTerm]]]
    e_w: np.ndarray
    e_a: np.ndarray
    tasd: np.ndarray


def _candidate_inputs(
    layer: Layer,
    arch: Architecture,
    opts: Sequence[LayerPlan],
    ops: dict[str, Operand],
    metric: ErrorMetric = "count",
) -> _Priced:
    """Terms, errors and TASD-unit values of every option (no pricing)."""
    _, act = roles(layer.problem)
    n_c = len(opts)
    per: dict[str, list[list[OperandTerm]]] = {t: [] for t in ops}
    e_w, e_a, tasd = np.zeros(n_c), np.zeros(n_c), np.zeros(n_c)
    for c, o in enumerate(opts):
        sups = operand_supports(arch, o.transposed)
        (tensor, tw, e_w[c]), (ta, e_a[c]) = slot_errors(
            layer, ops, o.weights, o.activations, sups, metric
        )
        if tensor is not None:
            per[tensor].append(tw)
        elif not o.weights.is_dense:
            raise SpecError(
                f"layer {layer.name!r} has no weight operand; its weight series must be dense"
            )
        per[act].append(ta)
        for t, series in runtime_series(layer.problem, o):
            x = ops[t]
            if not series.is_dense and not arrives_compliant(series, x.density, x.array, x.axis):
                tasd[c] += float(x.size)
    return _Priced(per, e_w, e_a, tasd)


def _batch_terms(rows: list[list[OperandTerm]]) -> list[OperandTerm]:
    """Per-candidate term lists -> OperandTerms with (C,) arrays, padded with empty terms."""
    k = max(len(r) for r in rows)
    empty = OperandTerm(0.0, 0.0, None, 0.0, 0.0)
    cols = []
    for i in range(k):
        pick = [r[i] if i < len(r) else empty for r in rows]
        cols.append(
            OperandTerm(
                density=np.array([float(x.density) for x in pick]),
                metadata_bits=np.array([float(x.metadata_bits) for x in pick]),
                pattern=None,
                # the terms come from TermFormat.operand_term(): work is a float, never None
                work=np.array([float(x.work) for x in pick]),  # type: ignore[arg-type]
                nonzero=np.array(
                    [float(x.density if x.nonzero is None else x.nonzero) for x in pick]
                ),
            )
        )
    return cols


def _mappings(
    layer: Layer,
    arch: Architecture,
    opts: Sequence[LayerPlan],
    inp: _Priced,
    todo: np.ndarray,
    mapping: Mapping | None,
    conventions: Conventions | str | None = None,
) -> list[Mapping | None]:
    """The mapping of every option to price: ``mapping`` when given, else its class mapping
    (None where the mapper finds no valid mapping for the class)."""
    out: list[Mapping | None] = [None] * len(opts)
    memo: dict[str, Mapping | None] = {}
    for c in np.flatnonzero(todo).tolist():
        if mapping is not None:
            out[c] = mapping
            continue
        terms = {t: rows[c] for t, rows in inp.terms.items()}
        key = repr((opts[c].transposed, sorted(mapping_terms(terms).items())))
        if key not in memo:
            try:
                memo[key] = class_mapping(
                    layer.problem, arch, opts[c].transposed, terms, conventions
                )
            except MappingError:
                memo[key] = None
        out[c] = memo[key]
    return out


def price_candidates(
    layer: Layer,
    arch: Architecture,
    mapping: Mapping | None = None,
    options: Sequence[LayerPlan] | None = None,
    *,
    max_terms: int = 3,
    error_cap: float = float("inf"),
    require_dense: bool = True,
    error_metric: ErrorMetric = "count",
    tasd_scale: float = 1.0,
    conventions: Conventions | str | None = None,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> LayerTable:
    """Error and cost of every candidate of ``layer`` (module docstring).

    ``mapping``: every candidate runs on it; None: each on its class mapping (:func:`plan_mapping`'s
    rule). Candidates whose error exceeds ``error_cap`` are not priced (invalid, infinite cost);
    dense and the no-TASD option always are. Candidates a mapping cannot hold (compressed tiles
    plus metadata over a level's capacity) are invalid. Raises :class:`MappingError` when the
    dense option itself is invalid, unless ``require_dense`` is False. ``error_metric``: the
    closed form's units (``plan_search.errors.closed_form_error``). ``tasd_scale``: factor on
    the TASD unit's work (0 when another consumer of the same tensor already decomposes it with
    the same series: ``model.graph_eval.shared_tasd``, as ``eval`` charges it).
    ``conventions``: the counting conventions of the mappings and the pricing (default
    ``timeloop``; ``spec.conventions``), as ``eval --conventions`` counts. ``keep``: a further
    filter, ``keep(e_w, e_a)`` -> a boolean mask over the candidates from their weight and
    activation errors (the network mode's loss budget); the rejected are not priced either.
    """
    prob = layer.problem
    opts = list(options) if options is not None else candidates(layer, arch, max_terms)
    if LayerPlan() not in opts:
        opts.insert(0, LayerPlan())
    ops = layer_operands(layer)
    weight, act = roles(prob)
    a_slot = weight if weight is not None else runtime_a(prob)
    nat = LayerPlan(
        weights=native(ops[a_slot], arch.sparsity.A) if a_slot is not None else DENSE,
        activations=native(ops[act], arch.sparsity.B),
    )
    if nat not in opts:
        opts.append(nat)
    inp = _candidate_inputs(layer, arch, opts, ops, error_metric)
    error = combine_errors(inp.e_w, inp.e_a)
    todo = error <= error_cap + 1e-12
    if keep is not None:
        todo &= np.asarray(keep(inp.e_w, inp.e_a), dtype=bool)
    todo[opts.index(LayerPlan())] = todo[opts.index(nat)] = True
    maps = _mappings(layer, arch, opts, inp, todo, mapping, conventions)
    todo &= np.array([m is not None for m in maps])
    runtime = inp.tasd > 0
    inp.tasd = inp.tasd * float(tasd_scale)
    cost = _price(prob, arch, opts, inp, maps, todo, conventions)
    dense_i = opts.index(LayerPlan())
    if require_dense and not cost["valid"][dense_i]:
        raise MappingError(
            f"layer {layer.name!r}: the mapping does not fit the layer run dense on {arch.name!r} "
            "(factors, fan-out or capacity)",
            file=mapping.source if mapping is not None else arch.source,
        )
    return LayerTable(
        name=layer.name,
        macs=prob.macs,
        options=tuple(opts),
        weight_error=inp.e_w,
        activation_error=inp.e_a,
        error=error,
        cycles=cost["cycles"],
        seconds=cost["seconds"],
        energy_pj=cost["energy_pj"],
        valid=cost["valid"],
        energy_by_component=cost["energy"],
        latency_by_component=cost["latency"],
        dense=dense_i,
        native=opts.index(nat),
        measured=any(o.array is not None for o in ops.values()),
        runtime=runtime,
        priced=todo,
    )


def _price(
    prob: Problem,
    arch: Architecture,
    opts: Sequence[LayerPlan],
    inp: _Priced,
    maps: Sequence[Mapping | None],
    todo: np.ndarray,
    conventions: Conventions | str | None = None,
) -> dict:
    """One cost-core call per orientation over the options to price; the rest stay invalid
    with infinite cost. Returns arrays over all options (C,)."""
    n_c = len(opts)
    inf = np.full(n_c, np.inf)
    out: dict = {
        "cycles": inf.copy(),
        "seconds": inf.copy(),
        "energy_pj": inf.copy(),
        "valid": np.zeros(n_c, dtype=bool),
        "energy": {},
        "latency": {},
    }
    for transposed in (False, True):
        rows = [c for c in np.flatnonzero(todo).tolist() if opts[c].transposed == transposed]
        if not rows:
            continue
        seen = oriented_arch(arch, prob, transposed)
        # maps[c] is not None: price_layer takes the options without a mapping out of ``todo``
        nests: LoopNests = stack_nests([nests_from_mapping(maps[c], seen, prob) for c in rows])  # type: ignore[arg-type]
        terms = {t: _batch_terms([r[c] for c in rows]) for t, r in inp.terms.items()}
        cost = evaluate_terms(
            prob,
            arch_arrays(seen),
            nests,
            terms,
            tasd_values=inp.tasd[rows],
            conventions=conventions,
        )
        n = len(rows)
        out["cycles"][rows] = np.asarray(cost.cycles, float).reshape(n)
        out["seconds"][rows] = np.asarray(cost.seconds, float).reshape(n)
        out["energy_pj"][rows] = np.asarray(cost.energy_pj, float).reshape(n)
        out["valid"][rows] = np.asarray(cost.valid, bool).reshape(n)
        for k, v in cost.energy_by_component.items():
            out["energy"].setdefault(k, np.full(n_c, np.nan))[rows] = np.asarray(v).reshape(n)
        lat = out["latency"]
        lat.setdefault("compute", np.full(n_c, np.nan))[rows] = np.asarray(
            cost.compute_cycles, float
        ).reshape(n)
        lvl = np.asarray(cost.level_cycles, float).reshape(n, -1)
        for i, name in enumerate(cost.level_names):
            lat.setdefault(name, np.full(n_c, np.nan))[rows] = lvl[:, i]
        lat.setdefault("TASD_unit", np.full(n_c, np.nan))[rows] = np.asarray(
            cost.tasd_cycles, float
        ).reshape(n)
    bad = ~out["valid"]
    for k in ("cycles", "seconds", "energy_pj"):
        out[k][bad] = np.inf
    return out


def evaluate_candidates(
    layer: Layer,
    arch: Architecture,
    mapping: Mapping | None,
    options: Sequence[tuple[TasdSeries, TasdSeries] | LayerPlan] | None = None,
    *,
    max_terms: int = 3,
    require_dense: bool = True,
) -> LayerTable:
    """Every candidate of ``layer`` priced on one shared ``mapping`` (None: each on its class
    mapping); ``options`` as plans or ``(weights, activations)`` pairs
    (:func:`price_candidates`)."""
    opts = None
    if options is not None:
        opts = [
            o if isinstance(o, LayerPlan) else LayerPlan(weights=o[0], activations=o[1])
            for o in options
        ]
    return price_candidates(
        layer, arch, mapping, opts, max_terms=max_terms, require_dense=require_dense
    )
