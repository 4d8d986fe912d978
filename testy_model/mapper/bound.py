"""A cheap lower estimate of a candidate's objective from its temporal steps, so that the beam
search (:mod:`testy_model.mapper.search`) skips pricing candidates that cannot enter a full beam.

Every processing element runs ``T(x) = Π_l Π_d temporal factor`` steps of mapping ``x`` (the
product of all temporal loop bounds), and the cost core's latency is at least its compute
cycles (:func:`testy_model.model.latency.overlapped_latency`), which are ``T`` times the terms'
work ratio (:func:`testy_model.model.latency.compute_cycles`: the same for every mapping of one
search). So ``cycles(x) >= ρ · T(x)`` with ``ρ`` the compute cycles per step the cost core
reported for the candidates priced so far (their least, where a stage's ratio varies), and
``seconds(x) >= σ · T(x)`` with ``σ = ρ`` / clock. A candidate's energy is estimated from
below by ``m · E_min``, the smallest energy priced so far times a margin ``m``
(:data:`ENERGY_MARGIN`): the one heuristic factor (one move changes a mapping's reuse, not its
whole traffic; the margin covers a candidate that beats every energy seen so far by up to
``1 - m``). The estimate of the objective is then

    latency:  ρ · T(x)                       (cycles: a bound)
    edp:      m · E_min · σ · T(x)           (pJ·s)
    energy:   0                              (the steps say nothing of the energy: no skipping)

A candidate whose estimate exceeds the objective of the worst member of a full beam cannot be
selected (the beam keeps its ``beam`` best; each member already in it ranks before such a
candidate, and at most ``per_keep`` per keep/bypass choice still leaves the members in), so
the search does not price it; it is marked seen like a priced one. Without the cost core's
compute cycles (an evaluator that does not report them) nothing is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: the margin ``m`` on the smallest energy priced (see the module docstring). Measured: over the
#: 1,630 rounds with a full beam of ResNet-50's and BERT-base's distinct layers on three engines
#: (benchmarks/bench_mapper_quality.py --set all) and of the README's TASD plan search, the
#: least ``worst member's objective / (E_min · σ · T)`` of a candidate that entered the beam was
#: 1.006: any ``m`` up to 1 would have skipped none of them; 0.8 leaves a 20 % margin
ENERGY_MARGIN = 0.8

#: the cost core's fields :meth:`StepBound.observe` reads
_TIMES = ("compute_cycles", "cycles", "seconds")


def temporal_steps(F: np.ndarray, levels: int) -> np.ndarray:
    """(B,) float: ``T = Π`` of the temporal factors (``F``: (B, 2L, D) factors, temporal
    slots first; ``levels``: L), the steps each processing element runs."""
    return np.prod(F[:, :levels].astype(np.float64), axis=(1, 2))


@dataclass
class StepBound:
    """The running constants of the estimate (module docstring) for one search.

    Attributes:
        objective: ``edp``, ``energy`` or ``latency``.
        per_step: the least compute time per step reported: cycles per step (latency) or
            seconds per step (edp), ``ρ`` / ``σ``; +inf until a priced batch reports it.
        energy: the smallest energy priced (pJ), ``E_min``.
    """

    objective: str
    per_step: float = np.inf
    energy: float = np.inf

    def observe(self, temporal: np.ndarray, cost: Any) -> None:
        """Fold the cost core's output for priced nests (``temporal``: their (B, L, D)
        temporal factors) into ``per_step``: compute cycles / ``T`` (latency), times seconds
        / cycles (edp). A cost without ``compute_cycles``, ``cycles`` and ``seconds`` of shape
        (B,) leaves it unchanged."""
        B = temporal.shape[0]
        try:
            arrs = [np.asarray(getattr(cost, k), dtype=np.float64) for k in _TIMES]
            compute, cycles, seconds = (np.broadcast_to(a, (B,)) for a in arrs)
        except (AttributeError, ValueError):
            return
        steps = np.prod(temporal.astype(np.float64), axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = compute / steps
            if self.objective != "latency":
                rate = rate * seconds / cycles
        rate = rate[np.isfinite(rate) & (rate > 0)]
        if rate.size:
            self.per_step = min(self.per_step, float(rate.min()))

    def update(self, scores: tuple[np.ndarray, ...]) -> None:
        """Fold priced candidates' ``scores`` (objective, EDP, energy as the search scores them,
        +inf where invalid) into ``E_min``."""
        energy = scores[2]
        fin = np.isfinite(energy) & (energy > 0)
        if fin.any():
            self.energy = min(self.energy, float(np.min(energy[fin])))

    def lower(self, steps: np.ndarray) -> np.ndarray:
        """(B,) the estimate of the objective from below (module docstring); 0 where nothing
        is known yet or the objective is energy."""
        if self.objective == "energy" or not np.isfinite(self.per_step):
            return np.zeros(steps.shape)
        if self.objective == "latency":
            return self.per_step * steps
        if not np.isfinite(self.energy):
            return np.zeros(steps.shape)
        return ENERGY_MARGIN * self.energy * self.per_step * steps
