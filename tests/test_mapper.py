"""Unit tests of the mapping search space and the mapper on small, hand-sized architectures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testy_model import mapper
from testy_model.errors import MappingError
from testy_model.mapper_io import dump_mapping
from testy_model.mapper_space import (
    _compositions,
    canonical_orders,
    check_feasible,
    held_bits,
    held_words,
    index_arch,
    index_problem,
    mesh_fits,
    prime_factors,
    space_size,
    tile_extents,
    tile_words,
)
from testy_model.model.cost import evaluate_terms
from testy_model.model.nest import nests_from_mapping
from testy_model.spec import Architecture, ComputeUnit, LevelConstraints, StorageLevel, gemm
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


def test_mesh_fits_by_hand() -> None:
    # fan-out 256 as a 16 x 16 mesh: (M=32, K=7) cannot split (32 > 16 either way);
    # (M=16, K=7) can (X: M 16, Y: K 7); (M=4, N=4, K=4): X {M, N} = 16, Y {K} = 4.
    arch = Architecture(
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
