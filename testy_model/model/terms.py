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
from testy_model.model.hierarchical import term_metadata_bits
from testy_model.model.latency import work_ratio
from testy_model.model.plan import LayerPlan
from testy_model.spec.arch import Architecture, OperandSparsity
from testy_model.spec.workload import Density, Layer
from testy_model.tasd.pattern import NMPattern, TasdSeries

_DENSE = Density()
DensitySource = Literal["expected", "measured"]


@dataclass(frozen=True)
class TermFormat:
    """One term of one operand: pattern (None = dense), kept density (fraction of all values),
    metadata bits per kept value, hardware work ratio (fraction of dense MAC work)."""

    pattern: NMPattern | None
    density: float
    metadata_bits: float
    work: float

    @property
    def label(self) -> str:
        """``"2:8"`` or ``"dense"``."""
        return str(self.pattern) if self.pattern is not None else "dense"


def _support_bits(pattern: NMPattern, support: OperandSparsity) -> float:
    """Metadata bits per kept value (``model.hierarchical.term_metadata_bits``): the spec's
    ``metadata_bits``, else the hierarchical pattern's bits when the term runs on one, else
    ceil(log2 M)."""
    return term_metadata_bits(pattern, support)


@lru_cache(maxsize=4096)
def _expected(
    series: TasdSeries, density: float, hyper: bool, tensor_size: int | None
) -> tuple[float, ...]:
    """Closed-form kept density of each term (memoised: layers often share series and density)."""
    from testy_model.tasd.stats import expected_kept

    dist = "hypergeometric" if hyper else "bernoulli"
    ek = expected_kept(series, density, dist, tensor_size=tensor_size)
    return tuple(float(x) for x in np.asarray(ek.terms).reshape(len(series.terms)))


def reduction_axis(ndim: int) -> int:
    """Axis along which a real operand array is decomposed (module docstring)."""
    return -1 if ndim <= 2 else 1


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
    """Term formats of one operand decomposed with ``series`` (module docstring).

    With ``array`` the kept densities are measured; otherwise expected from ``density``. An
    operand that is itself ``structured`` n:m (every m-block holds exactly n non-zeros, the
    densest n:m tensor) decomposed by terms that all use blocks of m keeps, deterministically,
    ``min(max(n − S_i, 0), N_i)/m`` in term i (S_i = N_1 + … + N_{i−1}).
    """
    if series.is_dense:
        return [TermFormat(None, 1.0, 0.0, 1.0)]
    if array is None and structured is not None and all(p.m == structured.m for p in series):
        kept, s = [], 0
        for p in series.terms:
            kept.append(min(max(structured.n - s, 0), p.n) / p.m)
            s += p.n
    elif array is not None:
        from testy_model.tasd.decompose import decompose

        arr = np.asarray(array)
        dec = decompose(arr, series, axis=reduction_axis(arr.ndim))
        kept = [k / max(arr.size, 1) for k in dec.kept_nnz]
    else:
        hyper = distribution == "hypergeometric" and bool(tensor_size)
        kept = list(_expected(series, float(density), hyper, tensor_size if hyper else None))
    return [
        TermFormat(p, k, _support_bits(p, support), work_ratio(p, k, support))
        for p, k in zip(series.terms, kept, strict=True)
    ]


def _array_for(
    layer: Layer,
    role: str,
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None,
    base_dir: str | Path | None,
) -> np.ndarray:
    given = (tensors or {}).get(layer.name, {})
    if role in given:
        return np.asarray(given[role])
    ref = layer.weight_tensor if role == "weight" else layer.activation_tensor
    if ref is None:
        raise SpecError(
            f"layer {layer.name!r}: densities_source='measured' needs its {role} tensor "
            f"(give {role}_tensor in the network or pass tensors={{{layer.name!r}: "
            f"{{{role!r}: array}}}})"
        )
    from testy_model.spec.tensors import load_tensor_ref

    return load_tensor_ref(ref, base_dir)


def layer_terms(
    layer: Layer,
    plan: LayerPlan,
    arch: Architecture,
    source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
) -> tuple[dict[str, list[TermFormat]], float]:
    """Term formats of the weight and activation operands of ``layer`` under ``plan``, and the
    activation values the TASD unit decomposes at run time (0 when activations stay dense)."""
    prob = layer.problem
    weight = prob.weight or prob.inputs[0]
    act = prob.activation or (prob.inputs[1] if len(prob.inputs) > 1 else prob.inputs[0])
    out: dict[str, list[TermFormat]] = {}
    for tensor, role, series, support in (
        (weight, "weight", plan.weights, arch.sparsity.A),
        (act, "activation", plan.activations, arch.sparsity.B),
    ):
        dens = prob.densities.get(tensor) or _DENSE
        arr = None
        if source == "measured" and not series.is_dense:
            arr = _array_for(layer, role, tensors, base_dir)
        elif source not in ("expected", "measured"):
            raise SpecError(f"densities_source {source!r}: expected 'expected' or 'measured'")
        hyper = dens.kind == "hypergeometric" and not series.is_dense
        out[tensor] = operand_terms(
            series,
            support,
            density=dens.value,
            distribution="hypergeometric" if hyper else "bernoulli",
            tensor_size=prob.full_size(tensor) if hyper else None,
            array=arr,
            structured=dens.pattern if dens.kind == "nm" else None,
        )
    tasd_values = 0.0 if plan.activations.is_dense else float(prob.full_size(act))
    return out, tasd_values
