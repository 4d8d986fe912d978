"""Design-space exploration: sweep files and point expansion (``sweep``), batched pricing of
shared mapping candidates (``batch``), the resumable runner (``runner``), Pareto fronts."""

from testy_model.dse.explore import (
    SweepContext,
    SweepSpec,
    expand_points,
    load_sweep,
    sweep,
)
from testy_model.dse.pareto import pareto, pareto_mask

__all__ = [
    "SweepContext",
    "SweepSpec",
    "expand_points",
    "load_sweep",
    "pareto",
    "pareto_mask",
    "sweep",
]
