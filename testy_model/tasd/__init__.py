"""TASD: tensor approximation via structured decomposition (hardware-agnostic)."""

from testy_model.tasd.pattern import NMPattern, TasdSeries

__all__ = ["NMPattern", "TasdSeries"]
