"""Pydantic-typed specs and the only code that reads files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from testy_model import lazy_exports

if TYPE_CHECKING:
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
    from testy_model.spec.arch_loader import (
        apply_arch_overrides,
        load_arch,
    )
    from testy_model.spec.loaders import (
        load_any,
        load_network,
    )
    from testy_model.spec.located import SpecWarning, spec_error_at, warn_at
    from testy_model.spec.mapping import (
        LevelMapping,
        Mapping,
    )
    from testy_model.spec.mapping_loader import (
        load_mapping,
    )
    from testy_model.spec.overrides import apply_overrides
    from testy_model.spec.problem_loader import (
        load_problem,
    )
    from testy_model.spec.validate import (
        validate_mapping,
    )
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
    from testy_model.spec.yaml_io import load_yaml_with_marks

_LAZY: dict[str, str] = {
    "Architecture": "testy_model.spec.arch",
    "ComputeUnit": "testy_model.spec.arch",
    "DataSpace": "testy_model.spec.workload",
    "Density": "testy_model.spec.workload",
    "HierarchicalPattern": "testy_model.spec.arch",
    "Layer": "testy_model.spec.workload",
    "LevelConstraints": "testy_model.spec.arch",
    "LevelMapping": "testy_model.spec.mapping",
    "Mapping": "testy_model.spec.mapping",
    "Network": "testy_model.spec.workload",
    "OperandSparsity": "testy_model.spec.arch",
    "Operator": "testy_model.spec.workload",
    "Problem": "testy_model.spec.workload",
    "SparsitySupport": "testy_model.spec.arch",
    "SpecWarning": "testy_model.spec.located",
    "StorageLevel": "testy_model.spec.arch",
    "TasdUnit": "testy_model.spec.arch",
    "apply_arch_overrides": "testy_model.spec.arch_loader",
    "apply_overrides": "testy_model.spec.overrides",
    "conv2d": "testy_model.spec.workload",
    "gemm": "testy_model.spec.workload",
    "load_any": "testy_model.spec.loaders",
    "load_arch": "testy_model.spec.arch_loader",
    "load_mapping": "testy_model.spec.mapping_loader",
    "load_network": "testy_model.spec.loaders",
    "load_problem": "testy_model.spec.problem_loader",
    "load_yaml_with_marks": "testy_model.spec.yaml_io",
    "spec_error_at": "testy_model.spec.located",
    "validate_mapping": "testy_model.spec.validate",
    "warn_at": "testy_model.spec.located",
}
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
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
