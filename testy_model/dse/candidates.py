"""Sweep candidates: per-worker candidate mappings and their priced features.

Per (structure, layer shape, operand formats) the mapper's shared candidates and its own search
results at representative points are generated once per worker process and priced once as
:class:`~testy_model.dse.batch.CandidateFeatures` (caches bounded by
:data:`~testy_model.dse.context.CACHE_LIMIT`, emptied by :func:`clear_caches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict, cast

from testy_model.dse.batch import CandidateFeatures, candidate_features
from testy_model.dse.context import _BASE_ARCH, _NETWORKS, SweepContext
from testy_model.errors import MappingError
from testy_model.model.arrays import arch_arrays
from testy_model.model.cost import OperandTerm
from testy_model.model.nest import LoopNests, nests_from_mapping, stack_nests
from testy_model.model.plan import LayerPlan
from testy_model.model.terms import TermFormat, layer_terms
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Layer, Problem

if TYPE_CHECKING:
    from testy_model.mapper.context import Objective


class _SeedSearch(TypedDict):
    """Keyword arguments of :func:`~testy_model.mapper.find_mapping` for the seed search."""

    beam: int
    n_random: int
    max_rounds: int


#: Beam-search settings of the mapper's own searches at representative points: lighter than
#: ``find_mapping``'s defaults (about 2x faster on ResNet-50, a few % higher per-layer EDP on its
#: own; the shared candidates then compete with it at every point).
SEED_SEARCH: _SeedSearch = {"beam": 4, "n_random": 128, "max_rounds": 12}

#: Shared candidates per layer shape (``mapper.candidate_nests``'s ``limit``: the whole space when
#: it is at most this large, else this many seeded random factorisations, the invalid dropped).
SHARED_LIMIT = 5000

_CANDS: dict[tuple, LoopNests | None] = {}
_FEATS: dict[tuple, tuple[LoopNests, CandidateFeatures] | None] = {}


def clear_caches() -> None:
    """Forget this process's cached networks, candidates and features (tests, benchmarks)."""
    _NETWORKS.clear()
    _CANDS.clear()
    _FEATS.clear()
    _BASE_ARCH.clear()


def _unbounded(arch: Architecture) -> Architecture:
    return arch.model_copy(
        update={"levels": tuple(lv.model_copy(update={"depth": None}) for lv in arch.levels)}
    )


def _shared_candidates(skey: str, problem: Problem, arch: Architecture) -> LoopNests:
    """The mapper's shared candidates of this shape on this structure (cached per process)."""
    key = (skey, problem.shape_key())
    if key not in _CANDS:
        from testy_model.mapper import candidate_nests, to_nests
        from testy_model.mapper.space import index_arch, index_problem

        cand = candidate_nests(problem, arch, densities={}, limit=SHARED_LIMIT)
        pi = index_problem(problem, {}, {})
        ai = index_arch(_unbounded(arch), problem, pi, None)
        _CANDS[key] = to_nests(pi, ai, cand)
    hit = _CANDS[key]
    assert hit is not None  # None is cached for the seed searches only
    return hit


def _terms(fmts: dict[str, list[TermFormat]]) -> dict[str, list[OperandTerm]]:
    return {
        t: [
            OperandTerm(
                density=x.density, metadata_bits=x.metadata_bits, work=x.work, nonzero=x.nonzero
            )
            for x in fs
        ]
        for t, fs in fmts.items()
    }


def _seed_nests(
    ctx: SweepContext,
    which: str,
    reps: Sequence[Architecture],
    problem: Problem,
    terms: dict[str, list[OperandTerm]],
) -> LoopNests | None:
    """The mapper's own search result for the layer (with its operand ``terms``, so capacities
    hold compressed tiles) at each of ``reps`` (``which`` names them in the per-process cache)."""
    key = ("seeds", which, problem.shape_key(), repr(terms), ctx.objective, ctx.conventions)
    if key not in _CANDS:
        from testy_model.mapper import find_mapping

        found = []
        for rep in reps:
            try:
                res = find_mapping(
                    problem,
                    rep,
                    # SweepSpec's validator admits only the mapper's objectives
                    objective=cast("Objective", ctx.objective),
                    densities=terms,
                    conventions=ctx.conventions,
                    **SEED_SEARCH,
                )
            except MappingError:
                continue
            found.append(nests_from_mapping(res.mapping, rep, problem))
        _CANDS[key] = stack_nests(found) if found else None
    return _CANDS[key]


def _cap_features(
    ctx: SweepContext, ckey: str, layer: Layer, arch: Architecture, plan: LayerPlan
) -> tuple[LoopNests, CandidateFeatures] | None:
    """The mapper's search result at the capacity representative ``ckey`` and its features
    (cached per process); None when the sweep has no such representative."""
    rep = ctx.cap_seeds.get(ckey)
    if rep is None:
        return None
    fmts, tv = layer_terms(layer, plan, arch)
    terms = _terms(fmts)
    key = ("cap", ckey, layer.problem.shape_key(), repr(terms), tv, ctx.objective, ctx.conventions)
    if key not in _FEATS:
        nests = _seed_nests(ctx, "cap:" + ckey, [rep], layer.problem, terms)
        if nests is None:
            return None
        _FEATS[key] = (
            nests,
            candidate_features(
                layer.problem, arch_arrays(arch), nests, terms, tv, conventions=ctx.conventions
            ),
        )
    return _FEATS[key]


def _features(
    ctx: SweepContext, skey: str, layer: Layer, arch: Architecture, plan: LayerPlan
) -> tuple[LoopNests, CandidateFeatures] | None:
    """Candidates shared by every point of structure ``skey`` (the mapper's shared candidates,
    and its search results at the structure's extremes when capacity sets have no
    representatives of their own) and their features for ``layer`` under ``plan`` (cached per
    process); None when there are none (``mapper: false`` with capacity representatives)."""
    fmts, tv = layer_terms(layer, plan, arch)
    terms = _terms(fmts)
    key = (
        skey, layer.problem.shape_key(), repr(terms), tv, ctx.objective, ctx.mapper,
        ctx.conventions,
    )  # fmt: skip
    if key in _FEATS:
        return _FEATS[key]
    parts = [_shared_candidates(skey, layer.problem, arch)] if ctx.mapper else []
    # the structure's extremes, unless every capacity set has its own representative
    reps = () if ctx.cap_seeds else ctx.seeds.get(skey, ())
    seeds = _seed_nests(ctx, "struct:" + skey, reps, layer.problem, terms)
    parts += [] if seeds is None else [seeds]
    if not parts:
        _FEATS[key] = None
        return None
    nests = stack_nests(parts)
    feats = candidate_features(
        layer.problem, arch_arrays(arch), nests, terms, tv, conventions=ctx.conventions
    )
    _FEATS[key] = (nests, feats)
    return nests, feats
