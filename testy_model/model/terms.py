"""Kept density, metadata and hardware work of every TASD term of a layer's operands.

Two sources (``densities_source``):

- ``"expected"``: closed form from the operand's density descriptor (``tasd.stats.expected_kept``,
  Bernoulli, or hypergeometric for a ``hypergeometric`` density);
- ``"measured"``: the greedy decomposition of the real tensor (``tasd.decompose``), kept density
  of term i = kept non-zeros of term i / values of the tensor. Arrays are decomposed along the
  reduction axis: the last axis for 1-D/2-D arrays (A[M,K], B[N,K]), axis 1 for 4-D convolution
  weights in PyTorch's (M, C, R, S) layout and activations in (N, C, H, W).

A dense series means the operand runs dense: one term of density 1, no metadata, work ratio 1
(the dense engine moves and multiplies every value), so a dense plan is the dense model exactly.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from testy_model.errors import SpecError
from testy_model.model.cost import OperandTerm
from testy_model.model.hierarchical import (
    hardware_for,
    hierarchical_metadata_bits,
    term_metadata_bits,
)
from testy_model.model.latency import work_ratio
from testy_model.model.plan import LayerPlan
from testy_model.spec.arch import Architecture, HierarchicalPattern, OperandSparsity
from testy_model.spec.workload import Density, Layer, Problem
from testy_model.tasd.pattern import NMPattern, TasdSeries

_DENSE = Density()
DensitySource = Literal["expected", "measured"]


@dataclass(frozen=True)
class TermFormat:
    """One term of one operand as the engine stores it: pattern (None = dense), stored density
    (fraction of all values the term stores and moves: its slots for a fixed-slot format, its
    kept non-zeros otherwise), metadata bits per stored value, hardware work ratio (fraction of
    dense MAC work) and ``nonzero``, the fraction of all values that are non-zero in the term
    (effective MACs; ``None`` = ``density``)."""

    pattern: NMPattern | None
    density: float
    metadata_bits: float
    work: float
    nonzero: float | None = None

    @property
    def label(self) -> str:
        """``"2:8"`` or ``"dense"``."""
        return str(self.pattern) if self.pattern is not None else "dense"

    @property
    def kept(self) -> float:
        """Non-zero fraction of all values the term keeps (``nonzero``, else ``density``)."""
        return self.density if self.nonzero is None else self.nonzero

    def operand_term(self) -> OperandTerm:
        """The same term as the cost core's :class:`~testy_model.model.cost.OperandTerm`."""
        return OperandTerm(self.density, self.metadata_bits, self.pattern, self.work, self.nonzero)


def _support_bits(pattern: NMPattern, support: OperandSparsity) -> float:
    """Metadata bits per kept value (``model.hierarchical.term_metadata_bits``): the spec's
    ``metadata_bits``, else the hierarchical pattern's bits when the term runs on one, else
    ceil(log2 M)."""
    return term_metadata_bits(pattern, support)


def slot_bits(hw: NMPattern | HierarchicalPattern, support: OperandSparsity) -> float:
    """Metadata bits per fixed slot of hardware pattern ``hw``: the spec's ``metadata_bits``,
    else ``ceil(log2 q)`` for a flat ``p:q`` (2:4 -> 2 bits: NVIDIA's 2-bit index per kept
    value), else the hierarchical pattern's ``ceil(log2 Mc)/Nf + ceil(log2 Mf)``. Bits."""
    if support.metadata_bits is not None:
        return float(support.metadata_bits)
    if isinstance(hw, HierarchicalPattern):
        return hierarchical_metadata_bits(hw)
    return float(hw.metadata_bits)


def term_format(pattern: NMPattern, kept: float, support: OperandSparsity) -> TermFormat:
    """How the engine stores, moves and multiplies one N:M term of kept density ``kept``
    (fraction of all values, dimensionless), by the operand's ``support.format``.

    Let ``hw`` be the hardware pattern the term runs on (``model.hierarchical.hardware_for``)
    and ``s = density(hw)`` (``p/q``, or ``(Nc/Mc)(Nf/Mf)`` hierarchical).

    - ``fixed`` slots, ``hw`` found: stored density ``s`` (p of every q values, whatever they
      hold), metadata :func:`slot_bits` per slot (so ``s·b`` bits per dense value), work
      ``latency.work_ratio`` (``s``), non-zero ``kept`` when the engine gates zero slots
      (``zero_slots: gate``: the issued slots holding zeros are gated MACs), else ``s`` (every
      slot a full MAC).
    - ``fixed``, no containing pattern: the term runs dense: stored density 1, no metadata,
      work 1 (``work_ratio``), non-zero ``kept`` (or 1 without gating).
    - ``coordinate``: stored density ``kept``, ``term_metadata_bits`` per kept value, work
      ``work_ratio``.
    - ``bitmask``: stored density ``kept``, one bit per value of the tensor, i.e. ``1/kept``
      bits per kept value (0 when nothing is kept), work ``work_ratio``.

    Hand check: a ``1:8`` term of 5 % density on a ``2:4`` engine (fixed) runs on 2:4 and
    moves 50 % of the words plus 2 bits per kept slot (1 bit per dense value), work 0.5,
    non-zero 0.05.
    """
    work = float(work_ratio(pattern, kept, support))
    if support.format == "fixed" and not support.unstructured:
        gate = support.zero_slots == "gate"
        hw = hardware_for(pattern, support)
        if hw is None:
            return TermFormat(pattern, 1.0, 0.0, work, kept if gate else 1.0)
        s = float(hw.density)
        return TermFormat(pattern, s, slot_bits(hw, support), work, kept if gate else s)
    if support.format == "bitmask":
        return TermFormat(pattern, kept, 1.0 / kept if kept > 0 else 0.0, work)
    return TermFormat(pattern, kept, _support_bits(pattern, support), work)


@lru_cache(maxsize=4096)
def _expected(
    series: TasdSeries, density: float, hyper: bool, tensor_size: int | None
) -> tuple[float, ...]:
    """Closed-form kept density of each term (memoised: layers often share series and density)."""
    from testy_model.tasd.stats import Distribution, expected_kept

    dist: Distribution = "hypergeometric" if hyper else "bernoulli"
    ek = expected_kept(series, density, dist, tensor_size=tensor_size)
    return tuple(float(x) for x in np.asarray(ek.terms).reshape(len(series.terms)))


def reduction_axis(ndim: int) -> int:
    """Axis along which a real operand array is decomposed (module docstring)."""
    return -1 if ndim <= 2 else 1


def nm_kept(series: TasdSeries, pattern: NMPattern) -> tuple[float, ...] | None:
    """Exact kept density of each term (fraction of all values) of an operand that is itself
    N:M structured with ``pattern = n:m`` (the densest such tensor: every aligned m-block holds
    exactly n non-zeros, density n/m), or None when the placement inside a block matters.

    Equations (S_i = N_1 + … + N_{i−1}):

    1. the operand fits the first term (``pattern.fits(term_1)``): term 1 keeps every
       non-zero, ``kept = (n/m, 0, …)``;
    2. all terms use one block size q with ``q % m == 0``: every q-block holds exactly
       ``X = n·q/m`` non-zeros, so term i keeps ``min(max(X − S_i, 0), N_i)/q``;
    3. otherwise None (the caller treats the operand as Bernoulli of density n/m).

    Hand check: 2:4 under ``1:4+1:4`` → q = 4, X = 2 → (1/4, 1/4); 2:8 under ``2:4`` → fits
    (an aligned 4-block of a 2:8 tensor holds at most 2) → (1/4,).
    """
    if series.is_dense:
        return (1.0,)
    n, m = pattern.n, pattern.m
    if pattern.fits(series.terms[0]):
        return (n / m,) + (0.0,) * (len(series.terms) - 1)
    qs = {p.m for p in series.terms}
    if len(qs) != 1 or next(iter(qs)) % m:
        return None
    q = next(iter(qs))
    x = n * q // m
    kept, s = [], 0
    for p in series.terms:
        kept.append(min(max(x - s, 0), p.n) / q)
        s += p.n
    return tuple(kept)


@dataclass(frozen=True)
class KeptDensities:
    """Kept density of each term (fraction of all values, dimensionless) and, when measured
    on a real array, the decomposition's relative Frobenius error ``||R||_F / ||A||_F``."""

    kept: tuple[float, ...]
    rel_error: float | None = None


def kept_densities(
    series: TasdSeries,
    density: Density = _DENSE,
    *,
    tensor_size: int | None = None,
    array: np.ndarray | None = None,
    axis: int | None = None,
) -> KeptDensities:
    """Kept density of each term of one operand decomposed with ``series``: the one rule the
    model (:func:`operand_terms`) and the search (``testy_model.plan_search``) share.

    Sources, first that applies: a real ``array`` (greedy decomposition along ``axis``, default
    :func:`reduction_axis`; kept_i = kept non-zeros of term i / values); an ``nm`` density
    (exact, :func:`nm_kept`); a ``hypergeometric`` density with ``tensor_size >=`` the largest
    block (hypergeometric ``expected_kept``); else Bernoulli of ``density.value``. A dense series
    keeps 1 (the dense convention).
    """
    if series.is_dense:
        return KeptDensities((1.0,))
    if array is not None:
        from testy_model.tasd.decompose import decompose

        arr = np.asarray(array)
        dec = decompose(arr, series, axis=reduction_axis(arr.ndim) if axis is None else axis)
        size = max(arr.size, 1)
        return KeptDensities(tuple(k / size for k in dec.kept_nnz), float(dec.rel_error))
    if density.nm_pattern is not None:
        exact = nm_kept(series, density.nm_pattern)
        if exact is not None:
            return KeptDensities(exact)
    hyper = (
        density.kind == "hypergeometric"
        and bool(tensor_size)
        and int(tensor_size or 0) >= max(p.m for p in series.terms)
    )
    return KeptDensities(
        _expected(series, float(density.value), hyper, tensor_size if hyper else None)
    )


def arrives_compliant(
    series: TasdSeries,
    density: Density = _DENSE,
    array: np.ndarray | None = None,
    axis: int | None = None,
) -> bool:
    """True when an operand needs no run-time decomposition under ``series`` (so the TASD unit
    does no work on it): ``series`` is a single term and the operand already fits it, by its
    ``nm`` density (``pattern.fits(term)``) or, given its real ``array``, because every aligned
    block along ``axis`` is compliant (``tasd.decompose.is_compliant``)."""
    if len(series.terms) != 1:
        return False
    term = series.terms[0]
    if density.nm_pattern is not None and density.nm_pattern.fits(term):
        return True
    if array is not None:
        from testy_model.tasd.decompose import is_compliant

        arr = np.asarray(array)
        return is_compliant(arr, term, axis=reduction_axis(arr.ndim) if axis is None else axis)
    return False


def term_formats(
    series: TasdSeries, kept: tuple[float, ...], support: OperandSparsity
) -> list[TermFormat]:
    """Term formats from kept densities (:func:`term_format`, by the support's storage format);
    a dense series is density 1, no metadata, work 1."""
    if series.is_dense:
        return [TermFormat(None, 1.0, 0.0, 1.0)]
    return [term_format(p, float(k), support) for p, k in zip(series.terms, kept, strict=True)]


def operand_terms(
    series: TasdSeries,
    support: OperandSparsity,
    *,
    density: float = 1.0,
    distribution: str = "bernoulli",
    tensor_size: int | None = None,
    array: np.ndarray | None = None,
    structured: NMPattern | None = None,
) -> list[TermFormat]:
    """Term formats of one operand decomposed with ``series`` (:func:`kept_densities`).

    With ``array`` the kept densities are measured; with ``structured`` (the operand is itself
    n:m) they are exact (:func:`nm_kept`); otherwise expected from ``density`` under
    ``distribution`` (``bernoulli`` or ``hypergeometric`` over ``tensor_size`` values).
    """
    if structured is not None:
        dens = Density(kind="nm", pattern=structured)
    elif distribution == "hypergeometric":
        dens = Density(kind="hypergeometric", density=float(density))
    else:
        dens = Density(kind="bernoulli", density=float(density))
    kd = kept_densities(series, dens, tensor_size=tensor_size, array=array)
    return term_formats(series, kd.kept, support)


def _array_for(
    layer: Layer,
    tensor: str,
    role: str,
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None,
    base_dir: str | Path | None,
) -> np.ndarray | None:
    """The real array of one operand: ``tensors[layer][role]``, else the layer's
    ``weight_tensor``/``activation_tensor`` file, else a ``tensor`` density's file; None when
    the layer names none (the caller falls back to the closed form)."""
    given = (tensors or {}).get(layer.name, {})
    if role in given:
        return np.asarray(given[role])
    ref = layer.weight_tensor if role == "weight" else layer.activation_tensor
    dens = layer.problem.densities.get(tensor)
    if ref is None and dens is not None and dens.kind == "tensor" and dens.path:
        ref = dens.path + (f":{dens.key}" if dens.key else "")
    if ref is None:
        return None
    from testy_model.spec.tensors import load_tensor_ref

    return load_tensor_ref(ref, base_dir, layer=layer.name)


def operand_roles(problem: Problem) -> tuple[str, str]:
    """(weight tensor, activation tensor) as the model prices them: the problem's ``weight``
    (else its first input) and ``activation`` (else its second input, else its first)."""
    weight = problem.weight or problem.inputs[0]
    act = problem.activation or (
        problem.inputs[1] if len(problem.inputs) > 1 else problem.inputs[0]
    )
    return weight, act


def operand_supports(
    arch: Architecture, transposed: bool = False
) -> tuple[OperandSparsity, OperandSparsity]:
    """(weight support, activation support): the engine's A and B slots, swapped for the
    transposed GEMM (the activation in the A slot, ``LayerPlan.orientation == "activation"``)."""
    a, b = arch.sparsity.A, arch.sparsity.B
    return (b, a) if transposed else (a, b)


def oriented_arch(arch: Architecture, problem: Problem, transposed: bool) -> Architecture:
    """The engine as the transposed GEMM sees it: operand supports A and B swapped, and in every
    level's ``keep``/``bypass`` list the problem's weight and activation names swapped (the level
    that kept the A-slot operand now keeps the activation). ``arch`` itself when not
    ``transposed`` or when the supports and lists are symmetric."""
    if not transposed:
        return arch
    weight, act = operand_roles(problem)
    key = (id(arch), weight, act)
    hit = _ORIENTED.get(key)
    if hit is not None and hit[0] is arch:
        return hit[1]
    out = _transpose(arch, weight, act)
    if len(_ORIENTED) >= 256:  # bounded memo (holds its key's arch, so the id stays unique)
        _ORIENTED.pop(next(iter(_ORIENTED)))
    _ORIENTED[key] = (arch, out)
    return out


_ORIENTED: dict[tuple[int, str, str], tuple[Architecture, Architecture]] = {}


def _transpose(arch: Architecture, weight: str, act: str) -> Architecture:
    swap = {weight: act, act: weight}

    def sw(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if names is None else tuple(swap.get(n, n) for n in names)

    levels = tuple(
        lvl.model_copy(update={"keep": sw(lvl.keep), "bypass": sw(lvl.bypass)})
        for lvl in arch.levels
    )
    sparsity = arch.sparsity.model_copy(update={"A": arch.sparsity.B, "B": arch.sparsity.A})
    new = arch.model_copy(update={"levels": levels, "sparsity": sparsity})
    return arch if new == arch else new


@dataclass(frozen=True)
class LayerTerms:
    """Everything the cost core needs about one layer's operands under a plan.

    ``formats``: tensor -> term formats; ``tasd_values``: activation values the TASD unit
    decomposes at run time (0 when none); ``sources``: decomposed tensor -> ``"measured"`` (kept
    densities from the real array) or ``"expected"`` (closed form); dense operands are absent."""

    formats: dict[str, list[TermFormat]]
    tasd_values: float
    sources: dict[str, str]


def layer_terms_sourced(
    layer: Layer,
    plan: LayerPlan,
    arch: Architecture,
    source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
) -> LayerTerms:
    """Term formats of the weight and activation operands of ``layer`` under ``plan``.

    Kept densities: :func:`kept_densities` (exact for ``nm`` operands). With ``source =
    "measured"`` an operand decomposed by ``plan`` is measured on its real array when the layer
    has one, and falls back, per operand, to the closed form when it has none (recorded in
    ``sources``). TASD-unit work: the values (``full_size``) of every run-time operand
    (:func:`runtime_series`) that ``plan`` decomposes, 0 for one that stays dense or already
    arrives compliant with its single term (:func:`arrives_compliant`).
    """
    if source not in ("expected", "measured"):
        raise SpecError(f"densities_source {source!r}: expected 'expected' or 'measured'")
    prob = layer.problem
    weight, act = operand_roles(prob)
    out: dict[str, list[TermFormat]] = {}
    sources: dict[str, str] = {}
    arrays: dict[str, np.ndarray | None] = {}
    w_sup, a_sup = operand_supports(arch, plan.transposed)
    for tensor, role, series, support in (
        (weight, "weight", plan.weights, w_sup),
        (act, "activation", plan.activations, a_sup),
    ):
        dens = prob.densities.get(tensor) or _DENSE
        arr = None
        if source == "measured" and not series.is_dense:
            arr = _array_for(layer, tensor, role, tensors, base_dir)
        arrays[tensor] = arr
        if not series.is_dense:
            sources[tensor] = "measured" if arr is not None else "expected"
        kd = kept_densities(series, dens, tensor_size=prob.full_size(tensor), array=arr)
        out[tensor] = term_formats(series, kd.kept, support)
    tasd_values = 0.0
    for tensor, series in runtime_series(prob, plan):
        dens = prob.densities.get(tensor) or _DENSE
        if not series.is_dense and not arrives_compliant(series, dens, arrays.get(tensor)):
            tasd_values += float(prob.full_size(tensor))
    return LayerTerms(out, tasd_values, sources)


def runtime_series(problem: Problem, plan: LayerPlan) -> list[tuple[str, TasdSeries]]:
    """(tensor, series) of the operands ``plan`` decomposes at run time (the TASD unit's work):
    the activation; for a layer without a weight (attention's ``QKᵀ`` and ``A·V``, both
    operands run-time activations) also its A operand, whose series is ``plan.weights``."""
    weight, act = operand_roles(problem)
    out = [(act, plan.activations)]
    if problem.weight is None and weight != act:
        out.append((weight, plan.weights))
    return out


def layer_terms(
    layer: Layer,
    plan: LayerPlan,
    arch: Architecture,
    source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
) -> tuple[dict[str, list[TermFormat]], float]:
    """Term formats of the weight and activation operands of ``layer`` under ``plan``, and the
    activation values the TASD unit decomposes at run time (:func:`layer_terms_sourced`)."""
    lt = layer_terms_sourced(layer, plan, arch, source, tensors, base_dir)
    return lt.formats, lt.tasd_values
