"""Unit tests of the mapping search space and the mapper on small, hand-sized architectures."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testy_model.errors import MappingError
from testy_model.mapper import beam as mapper
from testy_model.mapper.fit import check_feasible, mesh_fits
from testy_model.mapper.io import dump_mapping
from testy_model.mapper.space import (
    _compositions,
    canonical_order_idx,
    canonical_orders,
    held_bits,
    held_words,
    index_arch,
    index_problem,
    order_classes,
    prime_factors,
    space_size,
    tile_extents,
    tile_words,
)
from testy_model.model.cost import evaluate_terms
from testy_model.model.nest import nests_from_mapping
from testy_model.spec import Architecture, ComputeUnit, LevelConstraints, StorageLevel, gemm
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.mapping_loader import load_mapping
from testy_model.spec.validate import validate_mapping
from testy_model.spec.workload import Density, conv2d


def toy_arch(
    glb_words: int = 64,
    rf_words: int = 4,
    keep: tuple[str, ...] | None = None,
    glb_constraints: LevelConstraints | None = None,
) -> Architecture:
    """DRAM -> GLB (glb_words 8-bit words) -> 4 RFs (rf_words each, mesh 2 x 2) -> 4 MACs."""
    return Architecture(
        name="toy",
        levels=(
            StorageLevel(
                name="DRAM", kind="DRAM", width=64, datawidth=8, read_energy=64, write_energy=64
            ),
            StorageLevel(
                name="GLB",
                depth=glb_words,
                width=8,
                datawidth=8,
                read_energy=2.0,
                write_energy=2.0,
                read_bandwidth=64,
                keep=keep,
                constraints=glb_constraints or LevelConstraints(),
            ),
            StorageLevel(
                name="RF",
                kind="regfile",
                depth=rf_words,
                width=8,
                datawidth=8,
                instances=4,
                mesh_x=2,
                read_energy=0.25,
                write_energy=0.25,
                keep=keep,
            ),
        ),
        compute=ComputeUnit(instances=4, mesh_x=2, mac_energy=0.5),
    )


def model_check(mapping, arch, problem) -> None:
    """The mapping validates, survives a YAML round trip, and the model calls it valid."""
    validate_mapping(mapping, arch, problem)
    cost = evaluate_terms(
        problem,
        arch,
        nests_from_mapping(mapping, arch, problem),
        mapper.operand_terms(problem, arch),
    )
    assert bool(cost.valid[0])


def round_trip(tmp_path, mapping, arch, problem):
    path = tmp_path / "m.yaml"
    path.write_text(dump_mapping(mapping, dims=problem.dimensions))
    return load_mapping(path, arch, problem)


# -- search-space primitives (hand-derived) ---------------------------------------------------


def test_prime_factors_by_hand() -> None:
    # 360 = 2^3 · 3^2 · 5; 97 is prime; 1 has no prime factors.
    assert prime_factors(360) == {2: 3, 3: 2, 5: 1}
    assert prime_factors(97) == {97: 1}
    assert prime_factors(1) == {}
    with pytest.raises(ValueError):
        prime_factors(0)


def test_compositions_count_is_stars_and_bars() -> None:
    # ordered ways to split 2 into 3 parts: binom(2+3-1, 3-1) = binom(4, 2) = 6, each sums to 2
    c = _compositions(2, 3)
    assert c.shape == (6, 3)
    assert np.all(c.sum(axis=1) == 2)
    assert len({tuple(r) for r in c}) == 6


def test_tile_extents_and_words_by_hand() -> None:
    # 2 levels, dims (M, N, K): level 0 temporal (2,1,4), level 1 temporal (1,3,2) spatial (2,1,1)
    # extents at level 1 = (1·2, 3·1, 2·1) = (2, 3, 2); at level 0 = (2·2, 1·3, 4·2) = (4, 3, 8)
    t = np.array([[[2, 1, 4], [1, 3, 2]]])
    s = np.array([[[1, 1, 1], [2, 1, 1]]])
    ext = tile_extents(t, s)
    assert ext.tolist() == [[[4, 3, 8], [2, 3, 2]]]
    pi = index_problem(gemm(4, 3, 8))
    words = tile_words(pi, ext)
    # A[M,K] = M·K, B[N,K] = N·K, Z[M,N] = M·N
    assert words[0, 1].tolist() == [2 * 2, 3 * 2, 2 * 3]
    assert words[0, 0].tolist() == [4 * 8, 3 * 8, 4 * 3]


def test_tile_words_strided_convolution_rows() -> None:
    # Inputs rank P·stride + R: a tile of P=4, R=3 at stride 2 spans (4-1)·2 + (3-1) + 1 = 9 rows;
    # with Q=1, S=1, C=1, N=1 the input tile is 9 words.
    p = conv2d(c=1, m=1, p=4, q=1, r=3, s=1, stride=2)
    pi = index_problem(p)
    ext = np.array([[[p.bounds[d] for d in p.dimensions]]])
    words = tile_words(pi, ext)
    assert words[0, 0, pi.tensors.index("Inputs")] == 9


def test_held_bits_and_words_for_a_compressed_operand() -> None:
    # A at 2:4: 0.5 values per dense word, 2 metadata bits per kept value -> 1 bit per dense word.
    # 3 dense words: the model holds 3·(0.5·8 + 1) = 15 bits; validate holds ceil(1.5) = 2 words.
    p = gemm(4, 4, 4)
    pi = index_problem(p, scale={"A": 0.5}, md_bits={"A": 1.0})
    ai = index_arch(toy_arch(), p, pi)
    words = np.full((1, 3, 3), 3.0)
    assert held_bits(pi, ai, words)[0, 1, 0] == pytest.approx(15.0)
    assert held_words(pi, words)[0, 1, 0] == 2
    assert held_words(pi, words)[0, 1, 1] == 3  # B is dense


def _mesh_16x16() -> Architecture:
    """DRAM over 256 one-row buffers arranged 16 x 16, over 256 MACs (for the mesh tests)."""
    return Architecture(
        levels=(
            StorageLevel(
                name="D", kind="DRAM", width=8, datawidth=8, read_energy=1, write_energy=1
            ),
            StorageLevel(
                name="R",
                depth=4,
                width=8,
                datawidth=8,
                instances=256,
                mesh_x=16,
                read_energy=1,
                write_energy=1,
            ),
        ),
        compute=ComputeUnit(instances=256, mesh_x=16),
    )


def test_mesh_fits_by_hand() -> None:
    # fan-out 256 as a 16 x 16 mesh: (M=32, K=7) cannot split (32 > 16 either way);
    # (M=16, K=7) can (X: M 16, Y: K 7); (M=4, N=4, K=4): X {M, N} = 16, Y {K} = 4.
    arch = _mesh_16x16()
    p = gemm(32, 4, 7)
    ai = index_arch(arch, p, index_problem(p))
    sp = np.ones((3, 2, 3), dtype=np.int64)
    sp[0, 0] = (32, 1, 7)
    sp[1, 0] = (16, 1, 7)
    sp[2, 0] = (4, 4, 4)
    assert mesh_fits(ai, sp)[:, 0].tolist() == [False, True, True]


def test_canonical_orders_for_a_gemm_are_the_three_reuse_classes() -> None:
    pi = index_problem(gemm(2, 2, 2))
    orders = canonical_orders(pi)
    assert orders.shape == (3, 3)
    # each row is a permutation of positions, and the innermost dims are N, M and K once each
    assert all(sorted(r) == [0, 1, 2] for r in orders.tolist())
    inner = {pi.dims[int(np.argmin(r))] for r in orders}
    assert inner == {"M", "N", "K"}


def test_space_size_by_hand() -> None:
    # toy arch: 3 temporal slots + 1 spatial slot (GLB fan-out 4) open per dim.
    # M=4=2^2: binom(2+3, 3) = 10; N=3: binom(1+3, 3) = 4; K=1: 1 -> 40 factorisations,
    # times 3 orders per level over 3 levels = 27 -> 1080.
    p = gemm(4, 3, 1)
    pi = index_problem(p)
    ai = index_arch(toy_arch(), p, pi)
    assert space_size(pi, ai, 3) == 40 * 27


# -- errors ------------------------------------------------------------------------------------


def test_no_valid_mapping_is_a_clear_mapping_error() -> None:
    # The RF must keep A, B and Z (keep list) but holds 2 words: one word of each needs 3.
    arch = toy_arch(rf_words=2, keep=("A", "B", "Z"))
    with pytest.raises(MappingError, match=r"levels\[RF\].*no valid mapping.*'RF' holds 16 bits"):
        mapper.find_mapping(gemm(8, 8, 8), arch)


def test_check_feasible_passes_when_bypass_is_allowed() -> None:
    # Without a keep list the RF may bypass tensors, so even a 1-word RF has a mapping.
    arch = toy_arch(rf_words=1)
    p = gemm(8, 8, 8)
    pi = index_problem(p)
    check_feasible(pi, index_arch(arch, p, pi), arch)
    res = mapper.find_mapping(p, arch)
    model_check(res.mapping, arch, p)
    assert sum(res.mapping.level("RF").keeps(t) for t in "ABZ") <= 1


def test_bad_objective_and_constraint_errors() -> None:
    with pytest.raises(MappingError, match="objective"):
        mapper.find_mapping(gemm(2, 2, 2), toy_arch(), objective="speed")  # type: ignore[arg-type]
    bad = {"GLB": LevelConstraints(temporal_factors={"X": 2})}
    with pytest.raises(MappingError, match="dimension 'X'"):
        mapper.find_mapping(gemm(2, 2, 2), toy_arch(), constraints=bad)
    with pytest.raises(MappingError, match="unknown level"):
        mapper.find_mapping(gemm(2, 2, 2), toy_arch(), constraints={"L9": LevelConstraints()})


# -- validity over many shapes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(1, 1, 1), (7, 13, 1), (1, 97, 3), (17, 19, 23), (64, 1, 128), (30, 49, 11)]
)
def test_mappings_validate_on_toy_arch(shape, tmp_path) -> None:
    arch = toy_arch()
    p = gemm(*shape)
    res = mapper.find_mapping(p, arch)
    model_check(res.mapping, arch, p)
    back = round_trip(tmp_path, res.mapping, arch, p)
    model_check(back, arch, p)
    assert [lm.temporal for lm in back.levels] == [lm.temporal for lm in res.mapping.levels]
    # every bound is fully factorised
    for d in p.dimensions:
        assert res.mapping.total_factor(d) == p.bounds[d]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 40))
def test_mappings_validate_property(m: int, n: int, k: int) -> None:
    arch = toy_arch(glb_words=32, rf_words=2)
    p = gemm(m, n, k)
    res = mapper.find_mapping(p, arch, n_random=64)
    model_check(res.mapping, arch, p)


def test_conv_mapping_validates() -> None:
    arch = toy_arch(glb_words=128, rf_words=8)
    p = conv2d(c=3, m=8, p=6, q=5, r=3, s=3, stride=2)
    res = mapper.find_mapping(p, arch)
    model_check(res.mapping, arch, p)


def test_sparse_operand_tiles_are_compressed() -> None:
    # With A at 2:4 (half the values, 2-bit metadata) the capacities hold compressed tiles;
    # every returned mapping must still pass both capacity rules.
    arch = toy_arch(glb_words=24, rf_words=3)
    p = gemm(16, 8, 16, densities={"A": Density(kind="nm", pattern="2:4")})
    res = mapper.find_mapping(p, arch)
    model_check(res.mapping, arch, p)


def test_constraints_are_respected() -> None:
    # GLB: temporal K fixed to 4, M at most 2, permutation K innermost (inner to outer "KMN")
    c = LevelConstraints(temporal_factors={"K": 4, "M": -2}, temporal_permutation=("K", "M", "N"))
    arch = toy_arch(glb_constraints=c)
    p = gemm(16, 6, 8)
    res = mapper.find_mapping(p, arch)
    glb = res.mapping.level("GLB")
    assert glb.temporal_factor("K") == 4
    assert glb.temporal_factor("M") <= 2
    assert glb.temporal_permutation[0] == "K"
    model_check(res.mapping, arch, p)


def test_fixed_factor_that_does_not_divide_is_an_error() -> None:
    arch = toy_arch(glb_constraints=LevelConstraints(temporal_factors={"K": 3}))
    with pytest.raises(MappingError, match="does not divide the bound 8"):
        mapper.find_mapping(gemm(4, 4, 8), arch)


# -- templates, exhaustive comparison, determinism, cache ---------------------------------------


@pytest.mark.parametrize("kind", ["weight", "output", "input"])
def test_templates_validate_and_keep_their_tensor_stationary(kind: str) -> None:
    arch = toy_arch()
    p = gemm(16, 12, 20)
    m = mapper.template_mapping(p, arch, kind)  # type: ignore[arg-type]
    model_check(m, arch, p)
    stationary = {"weight": "A", "output": "Z", "input": "B"}[kind]
    # the RF keeps the stationary tensor, and every level orders first (innermost) a dimension
    # irrelevant to it: A ignores N, Z ignores K, B ignores M.
    assert m.level("RF").keeps(stationary)
    irrelevant = {"A": "N", "Z": "K", "B": "M"}[stationary]
    assert all(lm.temporal_permutation[0] == irrelevant for lm in m.levels)


def _exhaustive_vs_beam(arch: Architecture, shape: tuple[int, int, int]) -> float:
    p = gemm(*shape)
    ex = mapper.find_mapping(p, arch, exhaustive_limit=10**7, use_cache=False)
    bm = mapper.find_mapping(p, arch, exhaustive_limit=0, use_cache=False)
    assert ex.method == "exhaustive" and bm.method == "beam"
    model_check(ex.mapping, arch, p)
    # the exhaustive optimum is a lower bound of every other candidate, templates included
    for kind in ("weight", "output", "input"):
        assert ex.edp <= mapper.evaluate_template(p, arch, kind).edp * (1 + 1e-9)  # type: ignore[arg-type]
    return bm.edp / ex.edp


@pytest.mark.parametrize("shape", [(4, 6, 8), (3, 5, 7), (8, 2, 12), (16, 1, 4)])
def test_beam_within_5_percent_of_exhaustive_fixed_keep(shape) -> None:
    # keep lists fix the bypass choices, so the exhaustive space is factors x orders only
    assert _exhaustive_vs_beam(toy_arch(keep=("A", "B", "Z")), shape) <= 1.05


@pytest.mark.parametrize("shape", [(2, 3, 2), (4, 1, 3)])
def test_beam_within_5_percent_of_exhaustive_free_bypass(shape) -> None:
    assert _exhaustive_vs_beam(toy_arch(glb_words=16, rf_words=2), shape) <= 1.05


def test_search_is_deterministic_and_cached() -> None:
    arch = toy_arch()
    p = gemm(24, 18, 10)
    mapper.clear_cache()
    a = mapper.find_mapping(p, arch)
    n = mapper.cache_size()
    b = mapper.find_mapping(p.model_copy(update={"name": "other"}), arch)
    assert b is a and mapper.cache_size() == n  # same shape -> cache hit
    c = mapper.find_mapping(p, arch, use_cache=False)
    assert c.mapping == a.mapping and c.edp == a.edp


def test_objectives_order_their_own_metric() -> None:
    arch = toy_arch()
    p = gemm(32, 24, 16)
    by = {o: mapper.find_mapping(p, arch, objective=o) for o in ("edp", "energy", "latency")}
    assert by["energy"].energy_pj <= by["edp"].energy_pj * (1 + 1e-9)
    assert by["latency"].cycles <= by["edp"].cycles * (1 + 1e-9)


def test_shared_candidates_for_sweeps() -> None:
    # two design points with different GLB sizes: each gets a valid mapping from one shared
    # candidate set, and the bigger buffer is never worse (its candidates are a superset).
    p = gemm(16, 16, 16)
    small, big = toy_arch(glb_words=32), toy_arch(glb_words=256)
    cands = mapper.candidate_nests(p, small, limit=3000)
    res = mapper.best_per_point(p, [small, big], cands)
    for r, a in zip(res, (small, big), strict=True):
        model_check(r.mapping, a, p)
    assert res[1].edp <= res[0].edp * (1 + 1e-9)


def test_dump_mapping_text_is_timeloop_style() -> None:
    arch = toy_arch()
    p = gemm(8, 4, 2)
    text = dump_mapping(mapper.find_mapping(p, arch).mapping, dims=p.dimensions)
    assert text.startswith("mapping:\n")
    assert "type: temporal" in text and "permutation:" in text


def test_tasd_series_terms_share_one_mapping() -> None:
    # A as the series 2:8 + 1:8: the terms stream through one mapping; the tile of A is held as
    # Σ d_i = 2/8 + 1/8 = 3/8 values per dense word plus Σ d_i·b_i = (2/8 + 1/8)·3 metadata bits.
    arch = toy_arch(glb_words=32, rf_words=3)
    p = gemm(16, 8, 32)
    series = [Density(kind="nm", pattern="2:8"), Density(kind="nm", pattern="1:8")]
    terms = mapper.operand_terms(p, arch, {"A": series})
    assert [float(t.density) for t in terms["A"]] == [0.25, 0.125]
    assert [float(t.metadata_bits) for t in terms["A"]] == [3.0, 3.0]
    res = mapper.find_mapping(p, arch, densities={"A": series})
    cost = evaluate_terms(p, arch, nests_from_mapping(res.mapping, arch, p), terms)
    assert bool(cost.valid[0])
    assert res.edp == pytest.approx(float(cost.edp[0]), rel=1e-12)
    validate_mapping(res.mapping, arch, p)


# -- search bookkeeping: canonical loop orders, hashing, expansion ----------------------------


def test_order_classes_by_hand() -> None:
    # GEMM orders (positions of M, N, K; 0 = innermost): o0 = N,M,K  o1 = M,N,K  o2 = K,M,N.
    # Mask {M, N} (bits 0b011 = 3): o0 puts N inside M, o1 and o2 put M inside N -> [0, 1, 1].
    # Mask {M, K} (0b101 = 5): o0 and o1 put M inside K, o2 puts K inside M -> [0, 0, 2].
    # Masks with at most one dim: every order is equivalent -> all map to 0.
    pi = index_problem(gemm(4, 4, 4))
    orders = canonical_orders(pi)
    assert orders.tolist() == [[1, 0, 2], [0, 1, 2], [1, 2, 0]]
    canon = order_classes(orders, np.ones((2, 3), dtype=bool))
    assert canon is not None and canon.shape == (2, 8, 3)
    assert canon[0, 3].tolist() == [0, 1, 1]
    assert canon[0, 5].tolist() == [0, 0, 2]
    for m in (0, 1, 2, 4):
        assert canon[1, m].tolist() == [0, 0, 0]
    # where only o2 is allowed at a level, every order maps to o2 (the one allowed member)
    only2 = np.array([[True, True, True], [False, False, True]])
    assert order_classes(orders, only2)[1, 3].tolist() == [0, 2, 2]  # type: ignore[index]
    # temporal (M=2, N=1, K=3) at level 0: mask {M, K} = 5, order 1 -> class member 0; level 1
    # has no loop above 1: order 2 -> 0
    nonunit = np.array([[[2, 1, 3], [1, 1, 1]]]) > 1
    assert canonical_order_idx(canon, nonunit, np.array([[1, 2]])).tolist() == [[0, 0]]


def test_equivalent_orders_cost_the_same() -> None:
    # The premise of the canonical orders: a level whose loops have one non-unit factor costs
    # the same under every order. GLB has temporal K=4 only; orders 0, 1, 2 at GLB.
    arch = toy_arch()
    p = gemm(4, 2, 8)
    ctx = mapper._context(p, arch, "edp", None, None, None)
    E = mapper._base_exps(ctx.pi, ctx.ai)
    k, two = ctx.pi.dims.index("K"), list(ctx.pi.primes).index(2)
    E[0, k, two] -= 2
    E[1, k, two] += 2  # GLB temporal K = 4, DRAM K = 2
    keep = np.ones((3, 3), dtype=bool)
    cand = mapper.Candidates(
        np.repeat(E[None], 3, axis=0),
        np.array([[0, o, 0] for o in range(3)]),
        np.repeat(keep[None], 3, axis=0),
        ctx.orders,
    )
    assert ctx.valid(cand).all()
    _obj, edp, energy = ctx.cost(cand)
    assert np.ptp(edp) == 0 and np.ptp(energy) == 0
    canon = mapper._canonical(ctx, cand)
    assert len(set(canon.order_idx[:, 1].tolist())) == 1


@pytest.mark.parametrize(
    ("shape", "arch"),
    [
        ((24, 18, 10), "toy"),
        ((30, 49, 11), "toy-bypass"),
        ((64, 96, 72), "toy"),
        ((64, 3136, 576), "tc_dense"),
        ((256, 196, 2304), "vegeta"),
    ],
)
def test_skipping_repeats_does_not_change_the_search(shape, arch: str) -> None:
    # The savings (canonical loop orders; a beam member expanded once) only skip candidates the
    # model would price exactly like one already seen, so the final beam is the same.
    if arch.startswith("toy"):
        a = toy_arch(glb_words=16, rf_words=2) if arch == "toy-bypass" else toy_arch()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = load_arch(Path(__file__).resolve().parents[1] / "arch_specs" / f"{arch}.yaml")
    ctx = mapper._context(gemm(*shape), a, "edp", None, None, None)
    fast, fast_s = mapper._beam_search(ctx, 16, 512, 40, 0, 4, 2)
    n_fast = ctx.evaluated
    slow, slow_s = mapper._beam_search(ctx, 16, 512, 40, 0, 4, 2, skip_repeats=False)
    assert fast_s[0][0] == slow_s[0][0]
    assert np.array_equal(fast.exps[0], slow.exps[0])
    assert n_fast <= ctx.evaluated - n_fast  # the fast search costs no more candidates


def test_candidate_hash_matches_row_hash() -> None:
    # _cand_hash is the same wrapping weighted sum as _hash over the concatenated rows
    rng = np.random.default_rng(3)
    cand = mapper.Candidates(
        rng.integers(0, 7, size=(50, 6, 3, 2)).astype(np.int8),
        rng.integers(0, 3, size=(50, 3)),
        rng.integers(0, 2, size=(50, 3, 3)).astype(bool),
        np.zeros((3, 3), dtype=np.int64),
    )
    assert np.array_equal(mapper._cand_hash(cand), mapper._hash(mapper._rows(cand)))
    # different candidates get different hashes here (no collision among 50 random rows)
    assert np.unique(mapper._cand_hash(cand)).size == np.unique(mapper._rows(cand), axis=0).shape[0]


def test_mesh_fits_fast_path() -> None:
    # 16 x 16 mesh: (2, 1, 4) has product 8 <= 16, so it fits in one group without the subset
    # search; (17, 1, 1) fits nowhere (17 > 16).
    arch = _mesh_16x16()
    p = gemm(17, 4, 7)
    ai = index_arch(arch, p, index_problem(p))
    sp = np.ones((2, 2, 3), dtype=np.int64)
    sp[0, 0] = (2, 1, 4)
    sp[1, 0] = (17, 1, 1)
    assert mesh_fits(ai, sp)[:, 0].tolist() == [True, False]


# -- sweeps: shared candidates priced in one batch ----------------------------------------------


def _points() -> list[Architecture]:
    return [toy_arch(glb_words=g, rf_words=r) for g in (16, 32, 256) for r in (2, 4)]


def test_best_per_point_no_worse_than_find_mapping_per_point() -> None:
    # The candidates include what the mapper's own search costs at each point, so the batched
    # choice at a point is never worse than find_mapping there (it can be better: it also sees
    # the other points' candidates and the random ones).
    p = gemm(12, 10, 8)
    points = _points()
    cands = mapper.candidate_nests(p, points[0], limit=500, search_at=points)
    res = mapper.best_per_point(p, points, cands)
    for r, a in zip(res, points, strict=True):
        model_check(r.mapping, a, p)
        f = mapper.find_mapping(p, a, use_cache=False)
        assert r.edp <= f.edp * (1 + 1e-9)
        # the reported numbers are the model's for the chosen mapping
        cost = evaluate_terms(p, a, nests_from_mapping(r.mapping, a, p), mapper.operand_terms(p, a))
        assert r.edp == pytest.approx(float(cost.edp[0]), rel=1e-9)


def test_best_per_point_equals_exhaustive_on_a_small_space() -> None:
    # gemm(4, 1, 3) on the toy arch: the shared candidates are the whole space (every
    # factorisation, order and keep choice), so each point gets its exhaustive optimum.
    p = gemm(4, 1, 3)
    points = _points()
    cands = mapper.candidate_nests(p, points[0], limit=10**6)
    res = mapper.best_per_point(p, points, cands, templates=False)
    for r, a in zip(res, points, strict=True):
        ex = mapper.find_mapping(p, a, exhaustive_limit=10**7, use_cache=False)
        assert ex.method == "exhaustive"
        assert r.edp == pytest.approx(ex.edp, rel=1e-9)


@pytest.mark.parametrize("objective", ["edp", "energy", "latency"])
def test_best_per_point_fast_pricing_equals_model_pricing(objective: str) -> None:
    # The batched (candidate, point) grid pricing must choose what pricing every candidate at
    # each point with the cost core's own price call chooses (the per-point reference path:
    # a custom evaluator, one price call per point; same candidate, same numbers).
    p = gemm(16, 12, 8)
    points = _points()
    cands = mapper.candidate_nests(p, points[0], limit=800)
    fast = mapper.best_per_point(p, points, cands, objective=objective)  # type: ignore[arg-type]
    ref = mapper.best_per_point(
        p,
        points,
        cands,
        objective=objective,  # type: ignore[arg-type]
        evaluator=mapper.layer_evaluator(p, points[0]),
    )
    for a, b in zip(fast, ref, strict=True):
        assert a.mapping == b.mapping
        assert (a.cycles, a.energy_pj) == pytest.approx((b.cycles, b.energy_pj), rel=1e-12)


def test_best_per_point_names_a_point_where_nothing_fits() -> None:
    # the second point's 2-word RF must keep all three tensors (keep list) but cannot hold one
    # word of each -> a clear error naming that point and the level.
    p = gemm(8, 8, 8)
    roomy = toy_arch(glb_words=256, rf_words=8)
    tight = toy_arch(rf_words=2, keep=("A", "B", "Z")).model_copy(update={"name": "tight"})
    cands = mapper.candidate_nests(p, roomy, limit=200)
    with pytest.raises(MappingError, match=r"levels\[RF\]: design point 'tight' \(point 1\)"):
        mapper.best_per_point(p, [roomy, tight], cands)


def test_explicit_densities_ignore_the_problems_own_in_the_cache() -> None:
    """With ``densities`` given, the problem's own densities do not change the search (the
    operand terms come from ``densities`` alone), so two problems differing only in their
    densities hit the same cache entry; with ``densities=None`` they are searched apart."""
    from testy_model.mapper import cache_size, clear_cache, find_mapping
    from testy_model.spec.arch_loader import load_arch
    from testy_model.spec.workload import Density, gemm

    arch = load_arch(Path(__file__).resolve().parents[1] / "arch_specs" / "tc_dense.yaml")
    sparse = {"A": Density(kind="bernoulli", density=0.3)}
    p_dense, p_sparse = gemm(64, 32, 128), gemm(64, 32, 128, densities=sparse)
    clear_cache()
    a = find_mapping(p_dense, arch, densities={})
    b = find_mapping(p_sparse, arch, densities={})
    assert cache_size() == 1 and a is b
    find_mapping(p_sparse, arch)
    assert cache_size() == 2


@pytest.mark.parametrize(
    ("arch_name", "nm"), [("tc_dense.yaml", None), ("sparseloop_stc.yaml", "2:4")]
)
def test_mesh_layout_is_mesh_split_row_by_row(arch_name: str, nm: str | None) -> None:
    # the batched layout the mapper prices (to_nests) and writes (to_mapping) is the per-row
    # rule: the first subset in binary order whose X / Y products (as instances) fit the mesh
    from testy_model.mapper.fit import effective_spatial, mesh_layout, mesh_split

    arch = load_arch(Path(__file__).resolve().parents[1] / "arch_specs" / arch_name)
    dens = {"Weights": Density(kind="nm", pattern=nm)} if nm else {}
    p = conv2d(n=1, c=64, m=64, p=14, q=14, r=3, s=3, densities=dens)
    ctx = mapper._context(p, arch, "edp", None, None, None)
    n_l, n_d = len(ctx.ai.names), len(ctx.pi.dims)
    rng = np.random.default_rng(7)
    sp = rng.choice([1, 1, 1, 2, 3, 4, 8, 16, 32], size=(400, n_l, n_d))
    order, split = mesh_layout(ctx.ai, sp)
    inst = effective_spatial(ctx.ai, sp)  # mesh_split tests plain numbers: the instances
    for b in range(sp.shape[0]):
        for lv in np.nonzero(ctx.ai.fan_x > 0)[0]:
            row = sp[b, lv]
            xs, ys = mesh_split(ctx.ai, int(lv), inst[b, lv])
            got = [int(d) for d in np.argsort(order[b, lv], kind="stable") if row[d] > 1]
            assert got == [*xs, *ys]
            if xs or ys:
                assert split[b, lv] == len(xs)
