"""The analytical mapper: a good Timeloop-style mapping for one problem in milliseconds.

``space`` holds the search space as arrays; ``candidates`` the candidate form and its
conversions; ``context`` a search's context and pricing (the cost core, as ``eval`` prices);
``templates`` the stationary templates; ``search`` the search (exhaustive / beam, cache);
``points`` the sweeps' shared mapper; ``io`` the mapping YAML writer; ``beam`` re-exports the
names of the former single module.
"""

from testy_model.mapper.beam import (
    Candidates,
    MappingResult,
    best_per_point,
    cache_size,
    candidate_nests,
    clear_cache,
    evaluate_template,
    find_mapping,
    layer_evaluator,
    operand_terms,
    template_mapping,
    to_mapping,
    to_nests,
)
from testy_model.mapper.io import dump_mapping

__all__ = [
    "Candidates",
    "MappingResult",
    "best_per_point",
    "cache_size",
    "candidate_nests",
    "clear_cache",
    "dump_mapping",
    "evaluate_template",
    "find_mapping",
    "layer_evaluator",
    "operand_terms",
    "template_mapping",
    "to_mapping",
    "to_nests",
]
