"""A cheap lower estimate of a candidate's objective from its temporal steps, so that the beam
search (:mod:`testy_model.mapper.search`) skips pricing candidates that cannot enter a full beam.

Every processing element runs ``T(x) = Π_l Π_d temporal factor`` steps of mapping ``x`` (the
product of all temporal loop bounds: the MACs each PE performs), so the latency grows with
``T``: ``cycles(x) >= ρ · T(x)``, with ``ρ`` the smallest cycles per step of any candidate priced
so far in the search (1 on a dense engine, where a step takes at least one cycle; below 1 where
an engine skips zeros). A candidate's energy is estimated from below by ``m · E_min``, the
smallest energy priced so far times a margin ``m`` (:data:`ENERGY_MARGIN`): one move changes a
mapping's reuse, not its whole traffic, and the margin covers a candidate that beats every
energy seen so far by up to ``1 - m``. The estimate of the objective is then

    latency:  ρ · T(x)                       (cycles)
    edp:      m · E_min · σ · T(x)           (pJ·s; σ: the smallest seconds per step priced)
    energy:   0                              (the steps say nothing of the energy: no skipping)

A candidate whose estimate exceeds the objective of the worst member of a full beam cannot be
selected (the beam keeps its ``beam`` best; each member already in it ranks before such a
candidate, and at most ``per_keep`` per keep/bypass choice still leaves the members in), so
the search neither prices nor misses it; it is marked seen like a priced one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the margin ``m`` on the smallest energy priced (see the module docstring): on ResNet-50's
#: and BERT-base's distinct layers on three engines no candidate above the estimate with
#: ``m = 1`` entered the beam; 0.8 leaves a 20 % margin
ENERGY_MARGIN = 0.8


def temporal_steps(F: np.ndarray, levels: int) -> np.ndarray:
    """(B,) float: ``T = Π`` of the temporal factors (``F``: (B, 2L, D) factors, temporal
    slots first; ``levels``: L), the steps each processing element runs."""
    B = F.shape[0]
    return np.prod(F[:, :levels].reshape(B, -1).astype(np.float64), axis=1)


@dataclass
class StepBound:
    """The running constants of the estimate (module docstring) for one search.

    Attributes:
        objective: ``edp``, ``energy`` or ``latency``.
        per_step: the smallest objective-time per step priced: cycles per step (latency) or
            seconds per step (edp), ``σ`` / ``ρ``.
        energy: the smallest energy priced (pJ), ``E_min``.
    """

    objective: str
    per_step: float = np.inf
    energy: float = np.inf

    def update(self, steps: np.ndarray, scores: tuple[np.ndarray, ...]) -> None:
        """Fold priced candidates (``steps`` :func:`temporal_steps`; ``scores``: objective,
        EDP, energy as the search scores them, +inf where invalid) into the constants. EDP in
        pJ·s over energy in pJ is the latency in seconds."""
        obj, edp, energy = scores
        fin = np.isfinite(obj) & (steps > 0) & (energy > 0)
        if not fin.any():
            return
        self.energy = min(self.energy, float(np.min(energy[fin])))
        time = obj[fin] if self.objective == "latency" else edp[fin] / energy[fin]
        self.per_step = min(self.per_step, float(np.min(time / steps[fin])))

    def lower(self, steps: np.ndarray) -> np.ndarray:
        """(B,) the estimate of the objective from below (module docstring); 0 where nothing
        is known yet or the objective is energy."""
        if not np.isfinite(self.per_step) or self.objective == "energy":
            return np.zeros(steps.shape)
        if self.objective == "latency":
            return self.per_step * steps
        return ENERGY_MARGIN * self.energy * self.per_step * steps
