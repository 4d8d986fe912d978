"""Per-layer inputs of an evaluation: each layer's mapping as loop nests, its operands' TASD
terms, its Sparseloop optimizations (the sparse stage) and the groups of layers priced by one
batched cost-core call (:func:`~testy_model.model.evaluate.evaluate_layers`, steps 1, 2 and 4)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from testy_model.errors import MappingError
from testy_model.model.cost import OperandTerm
from testy_model.model.hierarchical import hardware_for
from testy_model.model.nest import LoopNests, nests_from_mapping
from testy_model.model.plan import Plan
from testy_model.model.terms import (
    DensitySource,
    LayerTerms,
    TermFormat,
    layer_terms_sourced,
    oriented_arch,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.sparseloop import SparseOptimizations, sparse_opts_from_support
from testy_model.spec.workload import Layer, Network, Problem

Mappings = Mapping | MappingABC[str, Mapping] | Callable[[Layer, Architecture], Mapping]


def as_network(workload: Network | Layer | Problem) -> Network:
    """A :class:`Network` from a network, one layer or one problem (a one-layer network)."""
    if isinstance(workload, Network):
        return workload
    if isinstance(workload, Layer):
        return Network(name=workload.name, layers=(workload,))
    return Network(name=workload.name, layers=(Layer(name=workload.name, problem=workload),))


def mapping_for(layer: Layer, arch: Architecture, mappings: Mappings) -> Mapping:
    """The mapping of ``layer`` (:class:`MappingError` naming the layer when there is none)."""
    if isinstance(mappings, Mapping):
        return mappings
    if callable(mappings) and not isinstance(mappings, MappingABC):
        return mappings(layer, arch)
    if layer.name in mappings:
        return mappings[layer.name]
    if "default" in mappings:
        return mappings["default"]
    raise MappingError(
        f"no mapping for layer {layer.name!r} (have {sorted(mappings)}; add one or a 'default')"
    )


def _structure_key(p: Problem) -> tuple:
    return (
        p.dimensions,
        p.data_spaces,
        tuple(sorted(p.coefficients.items())),
        tuple(sorted(p.datawidths.items())),
        p.weight,
        p.activation,
    )


def _stack_terms(rows: list[list[TermFormat]]) -> list[OperandTerm]:
    """Per-layer term lists → a list of OperandTerm with (G,) arrays, padded with empty terms."""
    k = max(len(r) for r in rows)
    out = []
    for i in range(k):
        dens = np.array([r[i].density if i < len(r) else 0.0 for r in rows])
        bits = np.array([r[i].metadata_bits if i < len(r) else 0.0 for r in rows])
        work = np.array([r[i].work if i < len(r) else 0.0 for r in rows])
        nz = np.array([r[i].kept if i < len(r) else 0.0 for r in rows])
        out.append(OperandTerm(density=dens, metadata_bits=bits, work=work, nonzero=nz))
    return out


def layer_sparse_opts(
    layer: Layer, arch: Architecture, support: bool, sparse: SparseOptimizations | None
) -> SparseOptimizations | None:
    """The Sparseloop optimizations ``layer`` is priced with (None: the term stage).

    ``sparse`` when given; else, with ``support`` (no plan given: the engine runs the operands
    as they are, no TASD decomposition), the architecture's ``sparsity:`` support
    (:func:`sparse_opts_from_support`) for each operand whose density is N:M on a pattern the
    engine supports (``hardware_for``) or Sparseloop's ``fixed-structured`` below 1. A plan,
    even an all-dense one, selects the term stage (the TASD semantics the plan search prices).
    """
    if sparse is not None:
        return sparse
    if not support:
        return None
    prob = layer.problem
    ops = []
    for op, tensor in (("A", prob.weight), ("B", prob.activation)):
        sup = arch.sparsity.operand(op)
        dens = prob.densities.get(tensor) if tensor is not None else None
        if dens is None or not sup.patterns or dens.value >= 1.0:
            continue
        nm = dens.kind == "nm" and dens.pattern is not None
        flat = sup.model_copy(update={"hierarchical": ()}) if nm else sup
        if (nm and hardware_for(dens.pattern, flat) is not None) or dens.kind == "fixed_structured":
            ops.append(op)
    if not ops:
        return None
    opts = sparse_opts_from_support(arch, prob, ops)
    return None if opts.is_dense else opts


@dataclass(frozen=True)
class _Prepared:
    """Per layer: loop nests, TASD terms, Sparseloop optimizations (None: term stage); and the
    groups of layer indices priced by one batched call each."""

    nests: list[LoopNests]
    terms: list[LayerTerms]
    sparse: list[SparseOptimizations | None]
    groups: list[list[int]]


def _prepare(
    net: Network,
    arch: Architecture,
    mappings: Mappings,
    pl: Plan,
    source: DensitySource = "expected",
    tensors: MappingABC[str, MappingABC[str, np.ndarray]] | None = None,
    base_dir: str | Path | None = None,
    sparse: SparseOptimizations | None = None,
    support: bool = False,
) -> _Prepared:
    """Per layer: its loop nest, its operands' terms (:func:`layer_terms_sourced`) and its
    sparse optimizations (:func:`layer_sparse_opts`); layers sharing one problem structure and
    stage (for the sparse stage: one problem and one set of optimizations) form one group."""
    nests: list[LoopNests] = []
    lts: list[LayerTerms] = []
    sps: list[SparseOptimizations | None] = []
    groups: dict[tuple, list[int]] = {}
    for i, layer in enumerate(net.layers):
        lp = pl.for_layer(layer.name)
        m = mapping_for(layer, arch, mappings)
        seen = oriented_arch(arch, layer.problem, lp.transposed)
        nests.append(nests_from_mapping(m, seen, layer.problem))
        lts.append(layer_terms_sourced(layer, lp, arch, source, tensors, base_dir))
        sp = layer_sparse_opts(layer, arch, support, sparse)
        sps.append(sp)
        key: tuple[object, ...] = (_structure_key(layer.problem), lp.transposed)
        if sp is not None:
            key = (key, layer.problem.model_dump_json(), sp.model_dump_json())
        groups.setdefault(key, []).append(i)
    return _Prepared(nests, lts, sps, list(groups.values()))
