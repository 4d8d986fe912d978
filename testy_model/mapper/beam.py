"""Compatibility facade: the mapper's search, split into :mod:`~testy_model.mapper.candidates`,
:mod:`~testy_model.mapper.context`, :mod:`~testy_model.mapper.templates`,
:mod:`~testy_model.mapper.search` (the pipeline, :func:`find_mapping`),
:mod:`~testy_model.mapper.rotations` (its rotation moves) and
:mod:`~testy_model.mapper.points` (sweeps). Every name, private ones included, is re-exported
under its old ``beam`` path."""

from testy_model.mapper.candidates import (  # noqa: F401
    Candidates,
    MappingResult,
    _cand_hash,
    _concat,
    _hash,
    _hash_weights,
    _reorder,
    _rows,
    _scale_md,
    _unique_first,
    operand_terms,
    to_mapping,
    to_nests,
)
from testy_model.mapper.context import (  # noqa: F401
    _CANON,
    _OBJECTIVES,
    Evaluator,
    Objective,
    TemplateKind,
    _context,
    _Ctx,
    _order_classes,
    _problem_key,
    _result,
    _score,
    arch_hash,
    layer_evaluator,
)
from testy_model.mapper.points import (  # noqa: F401
    _best_one,
    _first_best,
    _PointView,
    _price_features,
    _structure_signature,
    _take_points,
    best_per_point,
    candidate_nests,
)
from testy_model.mapper.rotations import _rotated, _rotations  # noqa: F401
from testy_model.mapper.search import (  # noqa: F401
    _CACHE,
    _CHUNK,
    _EXHAUSTIVE_LIMIT,
    _beam_search,
    _best,
    _canonical,
    _exhaustive,
    _in_sorted,
    _keep_variants,
    _lead,
    _moves,
    _neighbours,
    _random_candidates,
    _repair_keep,
    _select,
    cache_size,
    clear_cache,
    find_mapping,
)
from testy_model.mapper.templates import (  # noqa: F401
    _base_exps,
    _fill_trials,
    _order_index,
    _stationary_tensor,
    _template_candidate,
    _template_setup,
    _templates,
    evaluate_template,
    template_mapping,
)
