"""testy_model: an analytical cost model of (unstructured-)sparse DNNs on structured-sparse
accelerators through TASD (tensor approximation via structured decomposition)."""

from testy_model.errors import MappingError, SpecError, TestyModelError
from testy_model.tasd.pattern import NMPattern, TasdSeries

__version__ = "0.1.0"

__all__ = ["MappingError", "NMPattern", "SpecError", "TasdSeries", "TestyModelError", "__version__"]
