"""The mapper's rotation moves through a full spatial array (``mapper.search._rotations``).

A rotation moves one prime factor of one dimension into a spatial slot and the same prime factor
of another dimension out of it, so the slot's product (the array's utilisation) is unchanged;
without them the dense search of BERT's attention product QKᵀ stopped at a mapping that the
search for another operand class beat on energy at equal cycles.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from testy_model.errors import MappingError
from testy_model.graph.zoo import get_network
from testy_model.mapper.context import _context
from testy_model.mapper.rotations import _rotated, _rotations
from testy_model.mapper.space import factors_from_exps
from testy_model.mapper.templates import _templates
from testy_model.model.plan import LayerPlan
from testy_model.plan_search.candidates import candidates
from testy_model.plan_search.pricing import evaluate_candidates, plan_mapping
from testy_model.spec import load_arch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qk() -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(ROOT / "arch_specs" / "stc_2of4_tasd.yaml")
    layer = next(x for x in get_network("bert-base").layers if x.name == "encoder.0.attn.qk")
    return layer, arch


def test_rotation_keeps_the_array_product_and_moves_two_factors(qk: tuple) -> None:
    """Each rotated candidate has its spatial slot's product unchanged, the same bounds per
    dimension, and differs from its source in exactly two dimensions' exponents."""
    layer, arch = qk
    ctx = _context(layer.problem, arch, "edp", None, {}, None)
    src = _templates(ctx)
    s, a, di, b, do, p = _rotations(ctx)
    assert s.size > 0
    L = len(ctx.ai.names)
    n_out = 0
    assert np.all(s >= L) and np.all(di != do) and np.all(a != s) and np.all(b != s)
    for i in range(len(src)):
        F0 = factors_from_exps(ctx.pi, src.exps[i])
        for r in range(s.size):
            one = tuple(x[r : r + 1] for x in (s, a, di, b, do, p))
            out = _rotated(ctx, src.take(np.array([i])), one)
            if len(out) == 0:
                continue
            n_out += 1
            F = factors_from_exps(ctx.pi, out.exps[0])
            # per dimension, the product over all slots is the bound (nothing created or lost)
            assert np.all(np.prod(F, axis=0) == ctx.pi.bounds)
            # the rotated spatial slot keeps its product (the array's utilisation)
            assert np.prod(F[s[r]]) == np.prod(F0[s[r]])
            # exactly the two dimensions changed, each by one factor p in and out of slot s
            pr = int(ctx.pi.primes[p[r]])
            assert F[s[r], di[r]] == F0[s[r], di[r]] * pr
            assert F[s[r], do[r]] * pr == F0[s[r], do[r]]
            changed = np.any(out.exps[0] != src.exps[i], axis=(0, 2))
            assert set(np.nonzero(changed)[0]) == {di[r], do[r]}
    assert n_out > 0  # the templates fill the array, so some rotations exist


def test_dense_qk_mapping_no_worse_than_other_class_mappings(qk: tuple) -> None:
    """On BERT-base layer 0 QKᵀ, the dense operands priced on the dense class's mapping cost no
    more energy (and no more EDP) than priced on the mapping of any other class the plan search
    prices (every candidate plan of the layer that has a mapping)."""
    layer, arch = qk
    dense = LayerPlan()

    def dense_on(plan: LayerPlan) -> tuple[float, float]:
        m = plan_mapping(layer, arch, plan)
        r = evaluate_candidates(layer, arch, m, options=[dense], require_dense=False)
        k = r.options.index(dense)
        return float(r.energy_pj[k]), float(r.energy_pj[k] * r.seconds[k])

    e0, edp0 = dense_on(dense)
    others = 0
    for plan in candidates(layer, arch):
        if plan == dense:
            continue
        try:
            e, edp = dense_on(plan)
        except MappingError:  # this class has no mapping on the engine (nothing to compare)
            continue
        others += 1
        assert e0 <= e * (1 + 1e-12), plan
        assert edp0 <= edp * (1 + 1e-12), plan
    assert others >= 3


@pytest.mark.parametrize(
    ("engine", "network", "layer_name"),
    [
        ("stc_2of4_tasd", "bert-base", "encoder.0.attn.qk"),
        ("tc_dense", "resnet50", "layer1.0.conv2"),
        ("s2ta_tasd", "resnet50", "layer3.0.conv2"),
    ],
)
def test_rotations_never_worsen_the_search(engine: str, network: str, layer_name: str) -> None:
    # the rotation phase starts from the final beam of the search without rotations and the
    # beam keeps its best: the objective can only fall
    from testy_model.mapper import find_mapping

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(ROOT / "arch_specs" / f"{engine}.yaml")
    layer = next(x for x in get_network(network).layers if x.name == layer_name)
    off = find_mapping(layer.problem, arch, rotate=False)
    on = find_mapping(layer.problem, arch, rotate=True)
    assert on.edp <= off.edp * (1 + 1e-12)
