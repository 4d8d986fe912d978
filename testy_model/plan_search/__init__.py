"""The layer-wise TASD plan search (the TASDER role): candidates, errors, pricing, selection,
report (one module each) and :func:`search`, the pipeline."""

from testy_model.plan_search.candidates import (
    DENSE,
    candidates,
    native_series,
    operand_series,
    orientations,
)
from testy_model.plan_search.errors import candidate_error, closed_form_error, combine_errors
from testy_model.plan_search.network import brute_force_network, select_network
from testy_model.plan_search.plan import (
    ACTIVATION_BUDGET,
    MODES,
    OBJECTIVES,
    plot_search,
    search,
)
from testy_model.plan_search.pricing import (
    LayerTable,
    class_mapping,
    default_mapper,
    evaluate_candidates,
    plan_mapping,
    price_candidates,
)
from testy_model.plan_search.quality import NETWORK_BUDGET, operand_loss, predicted_loss
from testy_model.plan_search.report import PlanTotals, SearchReport
from testy_model.plan_search.selection import (
    brute_force,
    network_objective,
    select_edp,
    select_global,
    select_per_layer,
    uniform_indices,
)

__all__ = [
    "ACTIVATION_BUDGET",
    "DENSE",
    "MODES",
    "NETWORK_BUDGET",
    "OBJECTIVES",
    "LayerTable",
    "PlanTotals",
    "SearchReport",
    "brute_force",
    "brute_force_network",
    "candidate_error",
    "candidates",
    "class_mapping",
    "closed_form_error",
    "combine_errors",
    "default_mapper",
    "evaluate_candidates",
    "native_series",
    "network_objective",
    "operand_loss",
    "operand_series",
    "orientations",
    "plan_mapping",
    "plot_search",
    "predicted_loss",
    "price_candidates",
    "search",
    "select_edp",
    "select_global",
    "select_network",
    "select_per_layer",
    "uniform_indices",
]
