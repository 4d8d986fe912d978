"""The analytical mapper: a good Timeloop-style mapping for one problem in milliseconds.

``space`` holds the search space as arrays, ``beam`` the search (exhaustive / beam / templates,
cache), ``io`` the mapping YAML writer.
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
