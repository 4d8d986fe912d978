"""Pydantic-typed specs and the only code that reads files."""

from testy_model.spec.arch import (
    Architecture,
    ComputeUnit,
    HierarchicalPattern,
    LevelConstraints,
    OperandSparsity,
    SparsitySupport,
    StorageLevel,
    TasdUnit,
)
from testy_model.spec.mapping import LevelMapping, Mapping
from testy_model.spec.workload import (
    DataSpace,
    Density,
    Layer,
    Network,
    Problem,
    conv2d,
    gemm,
)

__all__ = [
    "Architecture",
    "ComputeUnit",
    "DataSpace",
    "Density",
    "HierarchicalPattern",
    "Layer",
    "LevelConstraints",
    "LevelMapping",
    "Mapping",
    "Network",
    "OperandSparsity",
    "Problem",
    "SparsitySupport",
    "StorageLevel",
    "TasdUnit",
    "conv2d",
    "gemm",
]
