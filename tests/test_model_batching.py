"""The cost core's batching shortcuts change no number: short-axis products, the link-reach
test, and pricing a row inside a grouped, level-stacked batch versus alone."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from testy_model.graph.zoo import get_network
from testy_model.model.arrayops import prod_axis
from testy_model.model.arrays import arch_arrays
from testy_model.model.cost import price
from testy_model.model.links import _link_steps, _may_link, _within_reach
from testy_model.model.nest import LoopNests
from testy_model.spec.arch_loader import load_arch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((300, 4, 7), 2),
        ((700, 5, 4), -1),
        ((600, 13), 1),
        ((5, 3), 1),
        ((150, 4), 1),
        ((50, 6, 4), 2),
        ((60, 5, 7), 1),
    ],
)
def test_prod_axis_is_numpys_product_bit_for_bit(shape: tuple[int, ...], axis: int) -> None:
    # non-integer factors, so a different multiplication order would show in the last bits
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, shape)
    assert prod_axis(x, axis).tobytes() == x.prod(axis=axis).tobytes()
    xi = rng.integers(-4, 5, shape)
    assert np.array_equal(prod_axis(xi, axis), xi.prod(axis=axis))


def _children_offsets(radix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Offsets of every child of one fan-out (mixed radix, innermost loop fastest)."""
    n = int(np.prod(radix))
    e = np.arange(n)
    off = np.zeros((n, offset.shape[1]))
    for r, v in zip(radix, offset, strict=True):
        off += np.outer(e % r, v)
        e = e // r
    return off


def test_reach_test_never_rules_out_a_neighbour_difference() -> None:
    # every difference between grid neighbours' offsets is within Σ_j (r_j − 1)·|v_j| per rank,
    # so whatever the hashed test may link, the reach test keeps
    rng = np.random.default_rng(3)
    kept = linked = total = 0
    for _ in range(60):
        n_d, n_r = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        radix = rng.integers(1, 5, n_d).astype(float)
        offset = rng.integers(-3, 4, (n_d, n_r)).astype(float) * rng.integers(1, 9, (n_d, 1))
        h = float(rng.integers(1, int(np.prod(radix)) + 1))
        off = _children_offsets(radix, offset)
        n = len(off)
        true = [off[e + s] - off[e] for e in range(n) for s in (1, -1, int(h), -int(h))
                if 0 <= e + s < n]  # fmt: skip
        deltas = np.array(true + list(rng.integers(-40, 41, (20, n_r))), dtype=float)
        k = len(deltas)
        hashes, irregular = _link_steps(
            np.repeat(radix[None], k, 0), np.repeat(offset[None], k, 0), np.full(k, h)
        )
        may = _may_link((hashes, irregular), deltas)
        reach = ((np.maximum(radix - 1.0, 0.0)[:, None]) * np.abs(offset)).sum(axis=0)[None]
        near = _within_reach(reach, np.zeros(k, dtype=np.int64), deltas)
        assert not (may & ~near).any()
        kept += int(near.sum())
        linked += int(may.sum())
        total += k
    assert 0 < linked <= kept < total  # some steps may link, and the test rules some out


def _random_batch(problem: object, n_l: int, rng: np.random.Generator, b: int) -> LoopNests:
    """``b`` random factorisations with repeated outer levels (the mapper's kind of batch:
    one outer nest tried with many inner ones), random orders, spatial orders and keeps."""
    from testy_model.mapper.space import prime_factors

    dims = problem.dimensions  # type: ignore[attr-defined]
    bounds = problem.bounds  # type: ignore[attr-defined]
    n_d, n_t = len(dims), len(problem.tensor_names)  # type: ignore[attr-defined]
    tem = np.ones((b, n_l, n_d), np.int64)
    spa = np.ones((b, n_l, n_d), np.int64)
    rows = np.arange(b)
    for d, dn in enumerate(dims):
        for pr, e in prime_factors(bounds[dn]).items():
            for _ in range(e):
                lv, sp = rng.integers(0, n_l, b), rng.random(b) < 0.3
                np.multiply.at(tem, (rows[~sp], lv[~sp], d), pr)
                np.multiply.at(spa, (rows[sp], lv[sp], d), pr)
    order = np.argsort(rng.random((b, n_l, n_d)), axis=2)
    sorder = np.argsort(rng.random((b, n_l, n_d)), axis=2)
    split = rng.integers(0, n_d + 1, (b, n_l))
    keep = rng.random((b, n_l, n_t)) < 0.7
    keep[:, 0] = True
    nests = LoopNests(tem, spa, order, keep, spatial_order=sorder, split=split)
    return nests.select(rng.integers(0, b // 4, b))  # repeats: the levels group


def test_a_row_prices_the_same_in_a_grouped_batch_as_alone() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aa = arch_arrays(load_arch(ROOT / "arch_specs" / "tc_dense.yaml"))
    problem = get_network("resnet50").layers[1].problem
    rng = np.random.default_rng(11)
    nests = _random_batch(problem, len(aa.level_names), rng, 96)
    flip = rng.random(nests.keep.shape) < 0.1  # keep variants of repeated loops
    keep = nests.keep ^ flip
    keep[:, 0] = True
    nests = LoopNests(nests.temporal, nests.spatial, nests.order, keep,
                      nests.spatial_order, nests.split)  # fmt: skip
    batch = price(problem, aa, nests, terms={})
    for i in range(0, nests.batch, 7):
        one = price(problem, aa, nests.select([i]), terms={})
        for f in ("cycles", "energy_pj", "reads", "fills", "updates", "level_cycles"):
            assert getattr(one, f)[0].tobytes() == getattr(batch, f)[i].tobytes(), f
