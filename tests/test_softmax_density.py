"""Attention probabilities as near-zero activations (issue 13): the measured magnitude-threshold
rule, its density in the zoo, the run-time A operand of ``A·V`` on a single-sided TASD engine,
and dense BERT-base's EDP gain from it. Expected values are derived by hand in each test."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from testy_model.errors import SpecError
from testy_model.graph.zoo import (
    GELU_THRESHOLDS,
    SOFTMAX_ACT_DENSITY,
    SOFTMAX_THRESHOLDS,
    THRESHOLD_ERROR_BOUND,
    default_threshold,
    get_network,
    softmax_density,
)
from testy_model.model.plan import LayerPlan
from testy_model.model.terms import layer_terms
from testy_model.models.activations import threshold, threshold_stats
from testy_model.plan_search import ACTIVATION_BUDGET, closed_form_error, search
from testy_model.plan_search.candidates import candidates
from testy_model.spec import load_arch
from testy_model.spec.workload import Density
from testy_model.tasd.pattern import TasdSeries

ROOT = Path(__file__).resolve().parents[1]


def _arch(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(ROOT / "arch_specs" / f"{name}.yaml")


def test_threshold_stats_hand_case() -> None:
    v = np.array([0.5, 0.1, 0.0, 0.2])
    d, e = threshold_stats(v, 0.1)  # kept: 0.5, 0.2; dropped 0.1² of 0.25 + 0.01 + 0.04
    assert d == 0.5
    assert e == pytest.approx(math.sqrt(0.01 / 0.30), rel=1e-12)
    assert threshold(v, 0.1).tolist() == [0.5, 0.0, 0.0, 0.2]
    assert threshold_stats(v, 0.0) == (0.75, 0.0)  # the exact zero only


def test_one_threshold_rule_for_gelu_and_softmax() -> None:
    # the bound is the GELU default's zeroing error (tau 0.02: 0.0130); softmax's measured
    # errors 0.0061 (tau 0.001) <= 0.0130 < 0.0139 (tau 0.002), so its default is 0.001
    assert THRESHOLD_ERROR_BOUND == 0.0130
    assert default_threshold(GELU_THRESHOLDS) == 0.02
    assert default_threshold(SOFTMAX_THRESHOLDS) == 0.001
    assert SOFTMAX_ACT_DENSITY == 0.6004
    assert softmax_density(0.01) == 0.1446
    with pytest.raises(SpecError, match=r"softmax_threshold 0\.003"):
        softmax_density(0.003)


def test_count_error_of_2of4_classes_at_the_measured_density() -> None:
    # X ~ Binomial(4, d) non-zeros per 4-block. 2:4+1:4 keeps min(X, 3): drops P(X = 4) = d^4
    # per block of 4d non-zeros -> d^3/4. 2:4 drops E[max(X - 2, 0)] = 4d^3(1-d) + 2d^4 ->
    # d^2(1-d) + d^3/2.
    d = SOFTMAX_ACT_DENSITY
    dens = Density(kind="bernoulli", density=d)
    e3 = closed_form_error(TasdSeries.parse("2:4+1:4"), dens)
    e2 = closed_form_error(TasdSeries.parse("2:4"), dens)
    assert e3 == pytest.approx(d**3 / 4, rel=1e-9)  # 0.0541
    assert e2 == pytest.approx(d * d * (1 - d) + d**3 / 2, rel=1e-9)  # 0.2523
    assert e3 <= ACTIVATION_BUDGET < e2  # 3 of 4 slots fit the budget, 2 of 4 do not


def test_zoo_gives_av_probabilities_the_threshold_density() -> None:
    net = get_network("bert-base", seq_len=64)
    by = {x.name: x.problem for x in net.layers}
    assert by["encoder.3.attn.av"].density("A").value == SOFTMAX_ACT_DENSITY
    assert by["encoder.3.attn.av"].density("B").kind == "dense"  # V
    assert by["encoder.3.attn.qk"].density("A").kind == "dense"  # Q, K stay dense
    net = get_network("vit-b16", softmax_threshold=0.01)
    assert {x.problem.density("A").value for x in net.layers if x.name.endswith(".av")} == {0.1446}
    net = get_network("llama-block", seq_len=16, hidden=64, heads=4, mlp=128,
                      softmax_act_density=1.0)  # fmt: skip
    assert all(x.problem.density("A").kind == "dense" for x in net.layers)


def test_av_probabilities_take_the_structured_slot_at_run_time() -> None:
    arch = _arch("stc_2of4_tasd")  # 2:4 on the A slot only
    net = get_network("bert-base", seq_len=64)
    av = next(x for x in net.layers if x.name == "encoder.0.attn.av")
    opts = candidates(av, arch)
    assert LayerPlan(weights="2:4+1:4") in opts
    # one run-time operand per candidate: never both P and V decomposed
    assert not any(not o.weights.is_dense and not o.activations.is_dense for o in opts)
    _, tasd = layer_terms(av, LayerPlan(weights="2:4+1:4"), arch)
    assert tasd == 12 * 64 * 64  # the TASD unit reads every value of P: G·M·K
    assert layer_terms(av, LayerPlan(), arch)[1] == 0.0


def test_dense_bert_av_stays_dense_on_stc_2of4_tasd() -> None:
    """The budget admits `2:4+1:4` for `A·V`'s probabilities, but on a 2:4-only engine with fixed
    slots its two 2:4 passes fill the slots a dense pass fills, plus the TASD unit's reads and
    metadata: with the dense class mapped at least as well as any other (the mapper's rotation
    moves, tests/test_mapper_rotations.py), the option never beats dense, so the plan keeps
    `A·V` dense (the earlier "gain" here was the dense search missing a mapping)."""
    net = get_network("bert-base")
    rep = search(net, _arch("stc_2of4_tasd"), budget=0.05)
    plan = rep.plan
    av = {t.name: t for t in rep.tables if t.name.endswith(".attn.av")}
    assert len(av) == 12
    for name, t in av.items():
        k = t.index("2:4+1:4", "dense")
        d = t.index("dense", "dense")
        assert k is not None and d is not None  # the budget admits the series
        assert t.edp[k] >= t.edp[d]  # and it does not pay
        assert plan.for_layer(name).weights.is_dense
    assert rep.ratio("no_unit") <= 1.0  # never worse than the same engine without the unit


def test_passages_join_consecutive_sentences_up_to_the_token_limit() -> None:
    from testy_model.models import MiniLM
    from testy_model.models.activations import passages

    model = MiniLM.load()
    # "hello" is one word piece: a sentence is [CLS] hello [SEP] (3 tokens), and a passage of
    # k sentences 2 + k tokens, so at most 4 tokens hold 2 sentences
    assert model.tokenize(["hello"])[1].sum() == 3
    got = passages(model, ["hello"] * 5, 4)
    assert got == ["hello hello", "hello hello", "hello"]
    assert passages(model, ["hello world again"], 3) == ["hello world again"]  # alone if long
