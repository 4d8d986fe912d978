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
from typing import Any

from testy_model.errors import MappingError, SpecError, TestyModelError
from testy_model.tasd.pattern import NMPattern, TasdSeries

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
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
    "SpecError",
    "TasdSeries",
    "TestyModelError",
    "__version__",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'testy_model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
