"""The beam search skeleton's shortcuts against their plain formulas: factor lookup, carried
neighbour hashes, one-pass beam selection, loop-position and canonical-order lookups, the
capacity tests' dense shortcut, the shared move lists, and the checks and layouts done once per
distinct row (shared validity, loop nests' spatial layout)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from testy_model.mapper import beam as mapper
from testy_model.mapper.candidates import (
    Candidates,
    _cand_hash,
    _hash,
    _hash_parts,
    _keep_part,
    to_nests,
)
from testy_model.mapper.fit import _position_table, _positions, capacity_mask, mesh_layout
from testy_model.mapper.moves import _moves, _moves_of, _neighbours
from testy_model.mapper.pool import _best, _select
from testy_model.mapper.space import (
    _factors_exp,
    canonical_order_idx,
    factors_from_exps,
    held_bits,
    held_words,
    keep_options,
    slot_mask,
    tile_extents,
    tile_words,
)
from testy_model.mapper.templates import _templates
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.workload import Density, conv2d

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ctx() -> mapper._Ctx:
    """A ResNet-style 3x3 convolution (primes 2, 3, 7) on the dense tensor-core engine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(ROOT / "arch_specs" / "tc_dense.yaml")
    p = conv2d(c=64, m=64, r=3, s=3, p=56, q=56)
    return mapper._context(p, arch, "edp", None, None, None)


def test_factor_lookup_is_the_prime_power_product(ctx: mapper._Ctx) -> None:
    rng = np.random.default_rng(0)
    top = ctx.pi.exps.max(axis=0)  # per prime, the largest exponent of a bound
    E = np.stack([rng.integers(0, t + 1, size=(50, 8, 7)) for t in top], axis=-1)
    F = factors_from_exps(ctx.pi, E.astype(np.int8))
    exact = np.prod(ctx.pi.primes.astype(np.int64) ** E, axis=-1)
    assert F.dtype == np.int64 and np.array_equal(F, exact)
    # exponents past the table (and negative ones) take the computed path
    E[0, 0, 0, 0] = top[0] + 3
    assert np.array_equal(factors_from_exps(ctx.pi, E), _factors_exp(ctx.pi.primes, E))
    assert factors_from_exps(ctx.pi, -np.ones((1, 1, 1, 3), dtype=np.int8))[0, 0, 0] == 0


def test_neighbour_hashes_are_their_hash_parts(ctx: mapper._Ctx) -> None:
    beam = _templates(ctx)
    nb, h = _neighbours(ctx, beam, _moves(ctx))
    assert len(nb) > 100
    assert np.array_equal(h, _hash_parts(nb))
    # with the order part, the full hash of the concatenated rows
    rows = np.concatenate(
        [nb.exps.reshape(len(nb), -1), nb.order_idx, nb.keep.reshape(len(nb), -1)], axis=1
    )
    assert np.array_equal(_cand_hash(nb), _hash(rows.astype(np.int64)))


def _select_by_rank(cand: Candidates, scores: tuple, beam: int, per_keep: int) -> np.ndarray:
    """The selection by explicit ranks within each keep group (the plain formula)."""
    order = _best(scores)
    order = order[np.isfinite(scores[0][order])]
    trip = np.stack([s[order] for s in scores], axis=1)
    same = np.r_[False, np.all(np.isclose(trip[1:], trip[:-1], rtol=1e-12, atol=0), axis=1)]
    order = order[~same]
    groups = [cand.keep[i].tobytes() for i in order]
    rank = [groups[:j].count(g) for j, g in enumerate(groups)]
    return order[np.array(rank, dtype=np.int64) < per_keep][:beam]


@pytest.mark.parametrize("beam, per_keep", [(16, 4), (5, 1), (40, 2)])
def test_one_pass_selection_matches_the_ranks(ctx: mapper._Ctx, beam: int, per_keep: int) -> None:
    rng = np.random.default_rng(beam)
    n = 120
    keeps = keep_options(ctx.pi, ctx.ai)
    cand = Candidates(
        np.zeros((n, 8, 7, 3), dtype=np.int8),
        np.zeros((n, 4), dtype=np.int64),
        keeps[rng.integers(0, min(len(keeps), 5), size=n)],
        ctx.orders,
    )
    obj = rng.choice([1.0, 2.0, 3.0, np.inf], size=n) * rng.integers(1, 4, size=n)
    scores = (obj, obj * 2, rng.integers(1, 3, size=n).astype(float))
    got = _select(cand, scores, beam, per_keep)
    assert np.array_equal(got, _select_by_rank(cand, scores, beam, per_keep))


def test_position_table_is_the_double_argsort() -> None:
    table, split = _position_table(5)
    cls = (np.arange(3**5)[:, None] // 3 ** np.arange(5)) % 3
    rank = cls * 5 + np.arange(5)
    assert np.array_equal(table, np.argsort(np.argsort(rank, axis=-1), axis=-1))
    assert np.array_equal(split, np.where((cls == 2).all(-1), 5, (cls == 0).sum(-1)))
    assert np.array_equal(_positions(cls), table)
    assert _position_table(9) is None


def test_mesh_layout_splits_a_full_array_over_both_axes(ctx: mapper._Ctx) -> None:
    # RF's fan-out is a 16 x 16 mesh: M 16 and P 16 (256 PEs) need one axis each; M 4 alone
    # fits one axis (the first subset in binary order that fits is "all in Y")
    spatial = np.ones((2, 4, 7), dtype=np.int64)
    spatial[0, 2, 1], spatial[0, 2, 5] = 16, 16  # dims C M R S N P Q: M and P
    spatial[1, 2, 1] = 4
    order, split = mesh_layout(ctx.ai, spatial)
    assert split[0, 2] == 1 and split[1, 2] == 0
    assert order[0, 2, 1] == 0 and order[0, 2, 5] == 1  # X dim innermost, then the Y dim
    assert order[1, 2, 1] == 0  # the one used dim first
    assert split[0, 0] == 7  # no spatial loop at DRAM: every dim a unit one


def test_canonical_order_lookup_is_the_table_entry(ctx: mapper._Ctx) -> None:
    rng = np.random.default_rng(3)
    nonunit = rng.random((30, 4, 7)) < 0.5
    oi = rng.integers(0, ctx.canon.shape[2], size=(30, 4))
    key = nonunit.astype(np.int64) @ (1 << np.arange(7))
    expect = ctx.canon[np.arange(4), key, oi]
    assert np.array_equal(canonical_order_idx(ctx.canon, nonunit, oi), expect)


def test_dense_capacity_keeps_the_whole_word_test(ctx: mapper._Ctx) -> None:
    # the same candidates with a sparse input: the whole-word test then counts
    # ceil(0.3 · words) words, the model's test 0.3 · words; both stay enforced
    sparse_in = {"Inputs": Density(kind="bernoulli", density=0.3)}
    p = conv2d(c=64, m=64, r=3, s=3, p=56, q=56, densities=sparse_in)
    sparse = mapper._context(p, ctx.arch, "edp", None, None, None)
    rng = np.random.default_rng(5)
    for c in (ctx, sparse):
        top = c.pi.exps.max(axis=0)
        E = np.stack([rng.integers(0, t + 1, size=(200, 8, 7)) for t in top], -1)
        F = factors_from_exps(c.pi, E)
        keep = keep_options(c.pi, c.ai)[rng.integers(0, 4, size=200)]
        words = tile_words(c.pi, tile_extents(F[:, :4], F[:, 4:]))
        cap = c.ai.capacity * (1 + 1e-9)
        ok = np.all(np.sum(keep * held_bits(c.pi, c.ai, words), -1) <= cap, -1)
        ok &= np.all(np.sum(keep * held_words(c.pi, words) * c.ai.datawidth, -1) <= cap, -1)
        assert np.array_equal(capacity_mask(c.pi, c.ai, F[:, :4], F[:, 4:], keep), ok)


def test_move_lists_are_shared_and_read_only(ctx: mapper._Ctx) -> None:
    moves = _moves(ctx)
    assert _moves(ctx)[0] is moves[0]  # one list per (slots, primes, spatial levels)
    assert all(not m.flags.writeable for m in moves)
    fresh = _moves_of.__wrapped__(  # type: ignore[attr-defined]
        slot_mask(ctx.ai).tobytes(),
        slot_mask(ctx.ai).shape,
        (ctx.pi.exps > 0).tobytes(),
        ctx.pi.exps.shape,
        (ctx.ai.fanout > 1).tobytes(),
    )
    assert all(np.array_equal(a, b) for a, b in zip(moves, fresh, strict=True))


def test_shared_validity_is_the_per_row_validity(ctx: mapper._Ctx) -> None:
    beam = _templates(ctx)
    nb, nh = _neighbours(ctx, beam, _moves(ctx))  # order/keep moves repeat their member's exps
    e_hash = nh - _keep_part(nb)
    assert np.array_equal(e_hash, _hash_parts(nb) - _keep_part(nb))
    assert len(np.unique(e_hash)) < len(nb)  # some rows share their exponents
    plain_F = factors_from_exps(ctx.pi, nb.exps)
    plain = (plain_F, *ctx.valid_parts(nb, plain_F))
    assert plain[2].any() and not plain[2].all()
    # shared, and with every hash made one (a collision: nothing may be shared)
    for h in (e_hash, np.zeros_like(e_hash)):
        struct, ok, inv, Fu, words_u = ctx.valid_shared(nb, h)
        shared, words = (Fu[inv], struct, ok), words_u[inv]
        for a, b in zip(plain, shared, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        L = len(ctx.ai.names)
        full = tile_words(ctx.pi, tile_extents(plain_F[:, :L], plain_F[:, L:]))
        assert np.array_equal(words[plain[1]], full[plain[1]])


def test_nests_lay_out_each_row_as_mesh_layout(ctx: mapper._Ctx) -> None:
    beam = _templates(ctx)
    nb, _ = _neighbours(ctx, beam, _moves(ctx))
    F = factors_from_exps(ctx.pi, nb.exps)
    L = len(ctx.ai.names)
    nests = to_nests(ctx.pi, ctx.ai, nb, F)
    order, split = mesh_layout(ctx.ai, np.ascontiguousarray(F[:, L:]))  # every row on its own
    assert len(np.unique(F[:, L:].reshape(len(nb), -1), axis=0)) < len(nb)
    assert np.array_equal(nests.spatial_order, order) and np.array_equal(nests.split, split)
    assert nests.spatial_order.dtype == order.dtype and nests.split.dtype == split.dtype


def test_orders_allowed_and_keep_choices_are_the_plain_lookups(ctx: mapper._Ctx) -> None:
    L, n_o = ctx.allowed.shape
    rng = np.random.default_rng(3)
    # a mask with disallowed orders at every level (this problem allows every order)
    mask = rng.random((L, n_o)) < 0.7
    c = dataclasses.replace(ctx, allowed=mask, keeps=None)
    oi = rng.integers(0, n_o, size=(300, L))
    plain = [all(bool(mask[lv, row[lv]]) for lv in range(L)) for row in oi]
    assert c.orders_allowed(oi).tolist() == plain and 0 < sum(plain) < 300
    # each level's first allowed order: allowed; the last level's first disallowed one: not
    first = np.array([np.nonzero(mask[lv])[0][0] for lv in range(L)])
    worse = first.copy()
    worse[L - 1] = np.nonzero(~mask[L - 1])[0][0]
    assert c.orders_allowed(np.stack([first, worse])).tolist() == [True, False]
    assert ctx.orders_allowed(oi).all()
    keeps = ctx.keep_choices()
    assert np.array_equal(keeps, keep_options(ctx.pi, ctx.ai)) and not keeps.flags.writeable
    assert ctx.keep_choices() is keeps
