"""Candidate series of a layer's operands on an engine (the search's step 1).

A candidate is a :class:`~testy_model.model.plan.LayerPlan`: the weight series (decomposed
offline), the activation series (decomposed at run time by the TASD unit) and the orientation
(which operand takes the engine's operand-A slot; ``model.plan``).
"""

from __future__ import annotations

import itertools

import numpy as np

from testy_model.model.hierarchical import hardware_for
from testy_model.model.plan import LayerPlan
from testy_model.model.terms import operand_supports
from testy_model.spec.arch import Architecture, OperandSparsity
from testy_model.spec.workload import Density, Layer, Problem
from testy_model.tasd.pattern import NMPattern, TasdSeries

DENSE = TasdSeries(())


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


def roles(problem: Problem) -> tuple[str | None, str]:
    """(weight tensor or None, activation tensor) of a layer as the search sees it: the
    problem's ``weight`` (None for attention's batched matmuls) and its ``activation`` (else
    its last input)."""
    return problem.weight, problem.activation or problem.inputs[-1]


def runtime_a(problem: Problem) -> str | None:
    """The A operand of a layer without a weight (attention's ``QKᵀ``: Q; ``A·V``: the
    probabilities P), a run-time activation in the engine's A slot whose series is the plan's
    ``weights`` (``model.terms.runtime_series``); None for a layer with a weight."""
    if problem.weight is not None:
        return None
    _, act = roles(problem)
    return next((t for t in problem.inputs if t != act), None)


def orientations(layer: Layer, arch: Architecture) -> tuple[bool, ...]:
    """The orientations a layer can run in (False = weight in the A slot, True = transposed):
    both when it has a weight and the engine's two operand supports differ (a single-sided
    engine), else only the plain one (swapping equal supports changes no format)."""
    if layer.problem.weight is None or arch.sparsity.A == arch.sparsity.B:
        return (False,)
    return (False, True)


def candidates(layer: Layer, arch: Architecture, max_terms: int = 3) -> list[LayerPlan]:
    """Candidate plans of ``layer`` on ``arch``; dense first.

    Per orientation (:func:`orientations`), with the slots of ``model.terms.operand_supports``:

    - weights (decomposed offline): :func:`operand_series` of the weight's slot;
    - activations (decomposed at run time): :func:`operand_series` of the activation's slot
      when the engine has a ``tasd_unit``; otherwise only ``dense`` and the activation's
      :func:`native_series` when it already fits a pattern of that slot;
    - layers without a weight (attention's batched matmuls): both operands are run-time
      activations (:func:`runtime_a`); each gets the options of its own slot, the TASD unit
      decomposing one of them per candidate (one operand stream, as for a linear layer); so on
      a single-sided engine the probabilities ``P`` of ``A·V`` (operand A) can take the
      structured slot.

    The transposed orientation leaves out the all-dense pair (the plain one covers it).
    """
    prob = layer.problem
    weight, act = roles(prob)
    out: list[LayerPlan] = []
    run_a = runtime_a(prob)
    for transposed in orientations(layer, arch):
        w_sup, a_sup = operand_supports(arch, transposed)
        if weight is not None:
            w_opts = operand_series(w_sup, max_terms)
        else:
            w_opts = (
                [DENSE] if run_a is None else _runtime_options(prob, run_a, w_sup, arch, max_terms)
            )
        a_opts = _runtime_options(prob, act, a_sup, arch, max_terms)
        o = "activation" if transposed else "weight"
        out += [
            LayerPlan(weights=w, activations=a, orientation=o)
            for w in w_opts
            for a in a_opts
            if not (transposed and w.is_dense and a.is_dense)
            and not (weight is None and not w.is_dense and not a.is_dense)
        ]
    return out


def _runtime_options(
    prob: Problem, tensor: str, support: OperandSparsity, arch: Architecture, max_terms: int = 3
) -> list[TasdSeries]:
    """Series of a run-time operand on slot ``support``: :func:`operand_series` with a TASD
    unit; without one, ``dense`` and the operand's :func:`native_series` when it fits."""
    if arch.tasd_unit is not None:
        return operand_series(support, max_terms)
    native = native_series(prob.density(tensor), support)
    return [DENSE] if native.is_dense else [DENSE, native]
