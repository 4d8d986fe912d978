"""Quality classes of TASD series: the single ``K:M`` pattern a series approximates as.

The greedy decomposition keeps, in every block of M values, the ``N1`` largest magnitudes, then
the ``N2`` largest of the rest, ...; the sum of the terms is the block's ``K = N1 + N2 + ...``
largest values, the same tensor as the single pattern ``K:M`` (``dense`` when K >= M).
"""

from __future__ import annotations

from testy_model.tasd.pattern import NMPattern, TasdSeries

DENSE = TasdSeries(())


def quality_class(series: TasdSeries | str) -> TasdSeries:
    """The single pattern whose greedy approximation equals ``series``'s: ``K:M`` with
    ``K = Σ N_i`` when all terms share the block size M (``dense`` when ``K >= M``); a series
    mixing block sizes is its own class. ``2:8+1:8`` -> ``3:8``; ``2:4+2:4`` -> ``dense``."""
    s = TasdSeries.parse(series)
    if s.is_dense:
        return DENSE
    ms = {t.m for t in s.terms}
    if len(ms) != 1:
        return s
    m = ms.pop()
    k = sum(t.n for t in s.terms)
    return DENSE if k >= m else TasdSeries((NMPattern(k, m),))


def kept_fraction(series: TasdSeries) -> float:
    """Largest fraction of an operand's values a class keeps, ``K/M`` (1 for ``dense``)."""
    c = quality_class(series)
    return 1.0 if c.is_dense else sum(t.n / t.m for t in c.terms)
