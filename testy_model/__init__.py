"""testy_model: an analytical cost model of (unstructured-)sparse DNNs on structured-sparse
accelerators through TASD (tensor approximation via structured decomposition).

The public API (design.md) is re-exported here and imported lazily, so ``import testy_model``
stays cheap: ``load_arch``, ``load_problem``, ``load_mapping``, ``load_network``, ``decompose``,
``expected_kept``, ``network_graph``, ``build_graph``, ``plot_network``, ``export_onnx``,
``evaluate``, ``find_mapping``, ``search``, ``sweep``,
``pareto``, ``get_network``, ``area_mm2``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from testy_model.errors import MappingError, SpecError, TestyModelError

if TYPE_CHECKING:
    from testy_model.dse import pareto, sweep
    from testy_model.estimators.area import area_mm2
    from testy_model.graph import build_graph, export_onnx, network_graph, plot_network
    from testy_model.graph.zoo import get_network
    from testy_model.mapper import find_mapping
    from testy_model.model.evaluate import evaluate
    from testy_model.model.plan import Plan
    from testy_model.plan_search import search
    from testy_model.spec import (
        load_arch,
        load_mapping,
        load_network,
        load_problem,
        validate_mapping,
    )
    from testy_model.tasd import decompose, expected_kept, is_compliant
    from testy_model.tasd.pattern import NMPattern, TasdSeries

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "NMPattern": "testy_model.tasd.pattern",
    "TasdSeries": "testy_model.tasd.pattern",
    "load_arch": "testy_model.spec",
    "load_problem": "testy_model.spec",
    "load_mapping": "testy_model.spec",
    "load_network": "testy_model.spec",
    "validate_mapping": "testy_model.spec",
    "decompose": "testy_model.tasd",
    "is_compliant": "testy_model.tasd",
    "expected_kept": "testy_model.tasd",
    "build_graph": "testy_model.graph",
    "network_graph": "testy_model.graph",
    "plot_network": "testy_model.graph",
    "export_onnx": "testy_model.graph",
    "evaluate": "testy_model.model.evaluate",
    "Plan": "testy_model.model.plan",
    "find_mapping": "testy_model.mapper",
    "search": "testy_model.plan_search",
    "sweep": "testy_model.dse",
    "pareto": "testy_model.dse",
    "get_network": "testy_model.graph.zoo",
    "area_mm2": "testy_model.estimators.area",
}

__all__ = [
    "MappingError",
    "NMPattern",
    "Plan",
    "SpecError",
    "TasdSeries",
    "TestyModelError",
    "__version__",
    "area_mm2",
    "build_graph",
    "decompose",
    "evaluate",
    "expected_kept",
    "export_onnx",
    "find_mapping",
    "get_network",
    "is_compliant",
    "load_arch",
    "load_mapping",
    "load_network",
    "load_problem",
    "network_graph",
    "pareto",
    "plot_network",
    "search",
    "sweep",
    "validate_mapping",
]


def lazy_exports(
    package: str, table: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package that re-exports names lazily (PEP 562).

    ``table`` maps each public name to the module that defines it; the module is imported on
    first access and the value kept on the package. A package's names must not be the names of
    its own submodules (importing the submodule would set the package attribute to it).
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
