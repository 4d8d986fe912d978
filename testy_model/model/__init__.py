"""Closed-form cost model: loop nests, reuse/traffic, latency, energy, evaluation.

The batched core (for the mapper and sweeps): :class:`LoopNests`, :func:`nests_from_mapping`,
:func:`mapping_from_nests`, :func:`stack_nests`, :func:`evaluate_nests`, :class:`NestCost`,
:class:`ArchArrays` / :func:`arch_arrays`.
"""

from testy_model.model.arrays import ArchArrays, arch_arrays
from testy_model.model.cost import NestCost, OperandTerm, evaluate_nests, evaluate_terms, nm_term
from testy_model.model.nest import LoopNests, mapping_from_nests, nests_from_mapping, stack_nests
from testy_model.model.reuse import DenseCounts, dense_counts

__all__ = [
    "ArchArrays",
    "DenseCounts",
    "LoopNests",
    "NestCost",
    "OperandTerm",
    "arch_arrays",
    "dense_counts",
    "evaluate_nests",
    "evaluate_terms",
    "mapping_from_nests",
    "nests_from_mapping",
    "nm_term",
    "stack_nests",
]
