"""Tests of the quality-constrained TASD search on all-MiniLM-L6-v2
(:mod:`testy_model.models.search_quality`) and its CLI.

The model tests need the ``models`` extra. They use the shipped loss cache
(``testy_model/data/minilm_losses.csv``: per-layer losses measured once by
``measure_losses`` on every 4th search sentence); ``test_shipped_cache_is_current`` re-measures
entries of it, so the cache cannot silently drift from the model. Everything else is measured
here: the verification runs on the 208 search sentences, the held-out check on the 52
held-out sentences that the search never sees. Run with ``OPENBLAS_NUM_THREADS=1`` for speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from testy_model.errors import TestyModelError
from testy_model.model.plan import LayerPlan
from testy_model.models.minilm import tasd_approx
from testy_model.models.search_quality import (
    LossCache,
    _bracket,
    check_uniform,
    fingerprint,
    greedy_path,
    kept_fraction,
    quality_class,
    quality_search,
    shortlist,
    totals,
)
from testy_model.plan_search import LayerTable
from testy_model.tasd.pattern import TasdSeries

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "testy_model" / "data" / "minilm_losses.csv"


def _table(name: str, options: list[tuple[str, str]], energy: list[float], secs: list[float],
           valid: list[bool] | None = None) -> LayerTable:  # fmt: skip
    n = len(options)
    z = np.zeros(n)
    return LayerTable(
        name=name,
        macs=1,
        options=tuple(LayerPlan(weights=w, activations=a) for w, a in options),
        weight_error=z,
        activation_error=z,
        error=z,
        cycles=np.asarray(secs) * 1e9,
        seconds=np.asarray(secs, float),
        energy_pj=np.asarray(energy, float),
        valid=np.asarray(valid if valid is not None else [True] * n),
        energy_by_component={},
        latency_by_component={},
    )


# -- quality classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "cls"),
    [
        ("dense", "dense"),
        ("2:4", "2:4"),
        ("1:4+1:4", "2:4"),  # top-1 then top-1 of the rest = top-2
        ("2:8+1:8", "3:8"),
        ("4:8+3:8", "7:8"),
        ("2:4+2:4", "dense"),  # keeps all 4 of every block
        ("2:8+1:4", "2:8+1:4"),  # mixed block sizes: its own class
    ],
)
def test_quality_class(series: str, cls: str) -> None:
    assert str(quality_class(series)) == cls


def test_series_of_one_class_give_the_same_tensor() -> None:
    # the premise of measuring quality once per class, checked on the decomposition itself;
    # integer values in a small range make ties frequent (tie-break: lowest index in both)
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, size=(64, 48)).astype(np.float32)
    y = rng.standard_normal((32, 64)).astype(np.float32)
    for arr in (x, y):
        np.testing.assert_array_equal(tasd_approx(arr, "1:4+1:4"), tasd_approx(arr, "2:4"))
        np.testing.assert_array_equal(tasd_approx(arr, "2:8+1:8"), tasd_approx(arr, "3:8"))
        np.testing.assert_array_equal(tasd_approx(arr, "2:8+2:8+1:8"), tasd_approx(arr, "5:8"))


def test_kept_fraction() -> None:
    assert kept_fraction(TasdSeries.parse("2:8+1:8")) == pytest.approx(3 / 8)
    assert kept_fraction(TasdSeries.parse("dense")) == 1.0


# -- cost, shortlist and greedy on hand-made tables ------------------------------------------


def test_totals_by_hand() -> None:
    # layers in sequence: E = 10 + 4 = 14 pJ, t = 2 + 1 = 3 s, EDP = 42 pJ·s
    a = _table("a", [("dense", "dense"), ("2:4", "dense")], [10, 5], [2, 1])
    b = _table("b", [("dense", "dense"), ("2:4", "dense")], [8, 4], [2, 1])
    assert totals([a, b], [0, 1]) == pytest.approx((14.0, 3.0, 42.0))


def test_shortlist_keeps_cheapest_per_class_and_drops_dominated() -> None:
    # EDP per option (E·t): dense 100; 2:4 20; 1:4+1:4 (class 2:4) 30; 2:4+1:4 (3:4) 60;
    # 1:4 25 (keeps less than 2:4 at more EDP: dominated); 2:4+2:4 (class dense) 90 (lossless
    # but still cheaper than dense: kept); 1:4+1:4+1:4 (3:4) 120 (above dense: dropped)
    opts = [("dense", "dense"), ("2:4", "dense"), ("1:4+1:4", "dense"), ("2:4+1:4", "dense"),
            ("1:4", "dense"), ("2:4+2:4", "dense"), ("1:4+1:4+1:4", "dense")]  # fmt: skip
    t = _table("l", opts, [100, 20, 30, 60, 25, 90, 120], [1] * 7)
    # class dense (90) is not dominated (keeps the most); 3:4 (60) keeps more than 2:4 (20)
    assert shortlist(t) == [5, 3, 1]
    # an invalid option is never listed
    t2 = _table("l", opts, [100, 20, 30, 60, 25, 90, 120], [1] * 7, [True, False] + [True] * 5)
    assert 1 not in shortlist(t2) and 2 in shortlist(t2)


def test_greedy_path_by_hand() -> None:
    # two equal layers: dense E = 10 pJ, t = 1 s; option E = 5 pJ, t = 0.5 s.
    # All dense: J = (10+10)(1+1) = 40 pJ·s. Switching either gives J' = 15·1.5 = 22.5,
    # gain 17.5; per unit of loss 17.5/0.004 = 4375 (layer a) > 17.5/0.008 = 2187.5 (b): a
    # first. Then b would bring the proxy to 0.012 > cap 0.01: the path stops after one step.
    a = _table("a", [("dense", "dense"), ("2:4", "dense")], [10, 5], [1, 0.5])
    b = _table("b", [("dense", "dense"), ("2:4", "dense")], [10, 5], [1, 0.5])
    loss = np.array([[np.nan, 0.004], [np.nan, 0.008]])
    path = greedy_path([a, b], loss, cap=0.01)
    assert [(s.layer, s.option) for s in path] == [(0, 1)]
    assert path[0].edp == pytest.approx(22.5)
    assert path[0].proxy_loss == pytest.approx(0.004)
    # with cap 0.012 both switch: J = 10·1 = 10 pJ·s, proxy 0.012
    path = greedy_path([a, b], loss, cap=0.012)
    assert [(s.layer, s.option) for s in path] == [(0, 1), (1, 1)]
    assert path[-1].edp == pytest.approx(10.0)
    assert path[-1].proxy_loss == pytest.approx(0.012)
    # an unmeasured (NaN) option is never taken
    assert greedy_path([a, b], np.full((2, 2), np.nan), cap=1.0) == []


def test_bracket_by_hand() -> None:
    # the real mean cosine passes for prefixes of at most 5 steps
    calls: list[int] = []

    def passes(k: int) -> bool:
        calls.append(k)
        return k <= 5

    # from k0 = 3 (passes): try 4 (passes), 4 + 2 = 6 (fails): bracket (4, 6)
    assert _bracket(3, 10, passes, lambda: True) == (4, 6)
    assert calls == [3, 4, 6]
    calls.clear()
    # from k0 = 8 (fails): back off 7 (fails), 7 − 2 = 5 (passes): bracket (5, 7)
    assert _bracket(8, 10, passes, lambda: True) == (5, 7)
    assert calls == [8, 7, 5]
    # the whole path passes: (n, n + 1); no path at all: (0, 1) without a run
    assert _bracket(2, 4, lambda k: True, lambda: True) == (4, 5)
    calls.clear()
    assert _bracket(0, 0, passes, lambda: True) == (0, 1)
    assert calls == []


def test_pruned_network_has_bernoulli_weight_density(minilm) -> None:
    from testy_model.models.search_quality import minilm_network

    model, _, _ = minilm
    net = minilm_network(model, tokens=16, weight_sparsity=0.5)
    first = net.layers[0].problem
    assert (first.bounds["M"], first.bounds["N"], first.bounds["K"]) == (384, 16, 384)
    d = first.density("A")
    assert d.kind == "bernoulli" and d.value == pytest.approx(0.5)
    assert first.density("B").value == 1.0
    assert len(net.layers) == 36


def test_notebook_is_stored_without_outputs() -> None:
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / "04_minilm_tasd.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


# -- the loss cache ------------------------------------------------------------------------------


def test_loss_cache_round_trip(tmp_path: Path) -> None:
    c = LossCache({("layer.0.x", "2:4", "dense", 0.0, "abc"): 0.0125})
    p = tmp_path / "c.csv"
    c.save(p)
    assert LossCache.load(p).entries == c.entries
    assert LossCache.load(tmp_path / "missing.csv").entries == {}


def test_loss_cache_bad_file_names_file_and_columns(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("layer,loss\nx,0.1\n")
    with pytest.raises(TestyModelError, match=r"bad\.csv.*weight"):
        LossCache.load(p)


def test_fingerprint_depends_on_sentences() -> None:
    assert fingerprint(["a", "b"]) != fingerprint(["a", "c"])
    assert len(fingerprint(["a"])) == 12


# -- the real model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    from testy_model.models import MiniLM, load_sentences, split_sentences

    model = MiniLM.load()
    search_s, held = split_sentences(load_sentences())
    return model, search_s, held


def test_shipped_cache_is_current(minilm) -> None:
    from testy_model.models.quality import cosine

    model, search_s, _ = minilm
    loss_s = search_s[::4]
    cache = LossCache.load(SHIPPED)
    fp = fingerprint(loss_s)
    ref = model.encode(loss_s)
    # two entries in the last block (a short forward each), one of each operand where present
    keys = sorted(k for k in cache.entries if k[4] == fp and k[0].startswith("layer.5."))
    picks = [k for k in keys if k[2] == "dense"][:1] + [k for k in keys if k[1] == "dense"][:1]
    assert picks
    for name, w, a, s, _ in picks:
        emb = model.encode(loss_s, plan={name: (w, a)}, weight_sparsity=s)
        measured = 1.0 - float(cosine(ref, emb).mean())
        assert measured == pytest.approx(cache.entries[(name, w, a, s, fp)], abs=1e-6)


@pytest.mark.slow  # measures MiniLM on the held-out sentences: minutes
@pytest.mark.parametrize("engine", ["vegeta_tasd"])
def test_searched_plan_meets_target_on_held_out_and_beats_uniform_plans(
    minilm, engine: str
) -> None:
    from testy_model.spec import load_arch

    model, search_s, held = minilm
    arch = load_arch(ROOT / "arch_specs" / f"{engine}.yaml")
    res = quality_search(model, arch, search_s, cache=LossCache.load(SHIPPED), max_verify=6)
    assert res.n_measured == 0, "the shipped loss cache should cover this engine"
    assert res.feasible and res.search_cos >= 0.99
    assert res.plan, "some layer should run TASD"
    # held-out: sentences the search did not see
    from testy_model.models.search_quality import plan_cosine

    held_cos = plan_cosine(model, held, res.tables, res.choice)
    assert held_cos >= 0.99
    plan_edp = res.edp("plan")
    assert plan_edp < res.edp("dense")
    # every uniform plan (one series pair on all 36 layers) that meets 0.99 on the held-out
    # sentences has a higher EDP; those at or below the plan's EDP were measured and fail
    df = check_uniform(model, held, res.tables, plan_edp)
    assert len(df) >= 3
    cheaper = df[df.edp_pj_s <= plan_edp]
    assert len(cheaper) >= 1
    assert cheaper.measured.all() and not cheaper.meets.any(), cheaper
    assert (df[df.meets].edp_pj_s > plan_edp).all()


def _cli(args: list[str]) -> object:
    from testy_model.cli import app

    return CliRunner().invoke(app, ["minilm", "search", *args])


def test_cli_minilm_search_lossless_target(minilm, tmp_path: Path) -> None:
    # target 1: no loss allowed, so no TASD layer and nothing to run: the plan is all dense,
    # EDP ratio exactly 1, and the proxy plan (closed-form budget 0) is all dense too
    out, js = tmp_path / "plan.yaml", tmp_path / "s.json"
    arch = str(ROOT / "arch_specs" / "vegeta_tasd.yaml")
    r = _cli(["--arch", arch, "--target", "1", "--out", str(out), "--json", str(js),
              "--no-held-out"])  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads(js.read_text())
    assert data["plan"] == {} and data["edp_vs_dense"] == 1.0
    assert data["proxy_plan"]["edp_vs_dense"] == 1.0
    assert "plan:" in out.read_text()


@pytest.mark.slow
def test_cli_minilm_search(minilm, tmp_path: Path) -> None:
    out, js = tmp_path / "plan.yaml", tmp_path / "s.json"
    arch = str(ROOT / "arch_specs" / "vegeta_tasd.yaml")
    r = _cli(["--arch", arch, "--out", str(out), "--json", str(js), "--no-held-out"])
    assert r.exit_code == 0, r.output
    data = json.loads(js.read_text())
    assert data["search_mean_cosine"] >= 0.99
    assert 0 < data["edp_vs_dense"] < 1
    from testy_model.model.plan import Plan

    plan = Plan.load(out)
    assert set(plan.layers) == set(data["plan"])


def test_cli_minilm_search_bad_target() -> None:
    r = _cli(["--arch", str(ROOT / "arch_specs" / "vegeta_tasd.yaml"), "--target", "1.5"])
    assert r.exit_code == 2
    assert "--target" in r.output and "(0, 1]" in r.output


def test_cli_minilm_search_missing_arch(tmp_path: Path) -> None:
    r = _cli(["--arch", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2
    assert "nope.yaml" in r.output
