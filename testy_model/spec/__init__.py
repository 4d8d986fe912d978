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
from testy_model.spec.arch_loader import apply_arch_overrides, load_arch
from testy_model.spec.loaders import load_any, load_network
from testy_model.spec.mapping import LevelMapping, Mapping
from testy_model.spec.mapping_loader import load_mapping
from testy_model.spec.problem_loader import load_problem
from testy_model.spec.validate import validate_mapping
from testy_model.spec.workload import (
    DataSpace,
    Density,
    Layer,
    Network,
    Operator,
    Problem,
    conv2d,
    gemm,
)
from testy_model.spec.yaml_io import (
    SpecWarning,
    apply_overrides,
    load_yaml_with_marks,
    spec_error_at,
    warn_at,
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
    "Operator",
    "Problem",
    "SparsitySupport",
    "SpecWarning",
    "StorageLevel",
    "TasdUnit",
    "apply_arch_overrides",
    "apply_overrides",
    "conv2d",
    "gemm",
    "load_any",
    "load_arch",
    "load_mapping",
    "load_network",
    "load_problem",
    "load_yaml_with_marks",
    "spec_error_at",
    "validate_mapping",
    "warn_at",
]
