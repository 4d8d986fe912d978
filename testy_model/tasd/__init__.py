"""TASD: tensor approximation via structured decomposition (hardware-agnostic)."""

from testy_model.tasd.decompose import Decomposition, decompose, is_compliant
from testy_model.tasd.pattern import NMPattern, TasdSeries
from testy_model.tasd.stats import (
    ExpectedKept,
    block_count_pmf,
    expected_kept,
    expected_mass_kept,
    order_stat_moments,
)

__all__ = [
    "Decomposition",
    "ExpectedKept",
    "NMPattern",
    "TasdSeries",
    "block_count_pmf",
    "decompose",
    "expected_kept",
    "expected_mass_kept",
    "is_compliant",
    "order_stat_moments",
]
