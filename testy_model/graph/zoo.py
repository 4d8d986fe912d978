"""Layer shapes of well-known networks, generated from each architecture's definition.

Nothing is downloaded: every layer is derived from the published architecture (channel counts,
kernel sizes, strides, hidden sizes), so the shapes follow the parameters (image size, sequence
length, batch, ...).

Conventions (shared by every network here):

* A linear layer ``y = W·x + b`` with W of shape (out, in), applied to T tokens, is
  ``gemm(m=out, n=T, k=in)``: the weight is operand A (M×K), the activations B (N×K). MACs
  ``= out·in·T``.
* A convolution is ``conv2d(...)`` with output size from :func:`conv_out`. MACs
  ``= N·M·C·R·S·P·Q`` (per-group channels for grouped convolutions).
* Attention's two batched matrix products are one :class:`Problem` each with a batch
  dimension ``G = batch·heads`` (see :func:`batched_gemm`): ``QKᵀ`` is
  ``Z[g, i, j] += Q[g, i, d]·K[g, j, d]`` (M = query tokens, N = key tokens, K = head_dim) and
  ``A·V`` is ``Z[g, i, e] += P[g, i, j]·V[g, e, j]`` (M = query tokens, N = head_dim,
  K = key tokens). MACs ``= G·M·N·K``. Both operands are run-time activations, so these
  problems have no weight operand (``weight=None``). The full (non-causal) score matrix is
  counted, as a dense engine computes it.
* Parameters are counted as in the reference implementations' parameter lists (torchvision,
  Hugging Face, timm): GEMM weights and biases per layer, and the rest (embeddings, norms,
  batch-norm affine γ/β, class token, position embeddings) in ``other_params`` by group.
  Batch-norm running statistics are buffers, not parameters, and are not counted.

Densities: ``weight_sparsity`` s prunes every GEMM weight to an unstructured (``bernoulli``)
density ``1 − s``. Activation densities are the fraction of non-zero inputs:

* ResNet-50: every convolution except the first reads a post-ReLU tensor; ``act_density``
  (default :data:`RELU_ACT_DENSITY` = 0.56) is a published measurement, not ResNet-50's own:
  Cnvlutin (Albericio et al., ISCA 2016) measured the inputs of convolutional layers of
  ImageNet CNNs to be 44 % zeros on average (as Shi & Chu, arXiv 1704.07724, quote it). Pass
  per-network measurements for anything better. The first conv reads the image (dense) and the
  FC layer reads the global average pool of 49 values (dense in practice).
* Transformers: GELU/SwiGLU outputs are not exactly zero; the TASD paper treats near-zero
  values as zeros by magnitude. ``gelu_act_density`` (default :data:`GELU_ACT_DENSITY` = 0.89)
  is the density of the FFN down-projection's input under a magnitude threshold τ = 0.02,
  measured on MiniLM-L6's real GELU outputs (``scripts/measure_gelu_density.py``, 260 shipped
  sentences, 33.9 M values: density 0.9986 at τ = 0, 0.9315 at 0.01, 0.8903 at 0.02, 0.7810 at
  0.05; zeroing |x| <= 0.02 costs a relative Frobenius error of 0.013 of the tensor); pass
  1.0 for exact zeros only, or ``gelu_threshold`` = one of the measured τ
  (:data:`GELU_THRESHOLDS`, :func:`gelu_density`).
* Attention probabilities (the softmax output, operand A of every ``A·V``) are near zero for
  most keys; under the same magnitude rule ``softmax_act_density`` (default
  :data:`SOFTMAX_ACT_DENSITY` = 0.6004) is their density at τ = 0.001, measured on MiniLM-L6's
  real probabilities over rows of BERT-base's length (``scripts/measure_softmax_density.py
  --tokens 128``: the shipped sentences joined into 27 passages of <= 128 tokens, mean 118.9;
  real query/key pairs only, 28.1 M values: density 0.6004 at τ = 0.001, 0.4857 at 0.002,
  0.2962 at 0.005; zeroing p <= 0.001 costs a relative Frobenius error of 0.0061). The default
  τ follows one rule for GELU and softmax: the largest measured τ whose zeroing error stays
  within the GELU default's 0.013 (:data:`THRESHOLD_ERROR_BOUND`, :func:`default_threshold`).
  Quality (same script, MiniLM's mean cosine to the dense model with every layer's
  probabilities thresholded): τ = 0.001 loses 0.04 %, and with ``2:4+1:4`` along the keys
  0.45 %; τ = 0.005 alone already loses 1.35 %. Row length matters: on the sentences as
  shipped (mean 14 tokens) the density is 0.9024 at τ = 0.001 and 0.7582 at 0.005.
  ``softmax_threshold`` = one of the measured τ (:data:`SOFTMAX_THRESHOLDS`,
  :func:`softmax_density`); ``softmax_act_density=1.0`` for dense probabilities.
  Every other activation (after LayerNorm, Q/K/V) is dense.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal, TypedDict

from testy_model.errors import SpecError
from testy_model.graph.zoo_builder import GraphBuilder, ZooNetwork, batched_gemm, conv_out
from testy_model.graph.zoo_densities import (
    GELU_ACT_DENSITY,
    GELU_THRESHOLDS,
    RELU_ACT_DENSITY,
    SOFTMAX_ACT_DENSITY,
    SOFTMAX_THRESHOLDS,
    THRESHOLD_ERROR_BOUND,
    default_threshold,
    gelu_density,
    softmax_density,
)
from testy_model.spec.workload import Network

__all__ = [
    "GELU_ACT_DENSITY",
    "GELU_THRESHOLDS",
    "RELU_ACT_DENSITY",
    "SOFTMAX_ACT_DENSITY",
    "SOFTMAX_THRESHOLDS",
    "THRESHOLD_ERROR_BOUND",
    "ZooNetwork",
    "batched_gemm",
    "bert_base",
    "conv_out",
    "default_threshold",
    "describe_network",
    "gelu_density",
    "get_network",
    "list_networks",
    "llama_block",
    "network_params",
    "resnet50",
    "softmax_density",
    "vit_b16",
]


class _LinearArgs(TypedDict):
    """The keyword arguments a block passes to every :meth:`GraphBuilder.linear`."""

    tokens: int
    bias: bool
    act_density: float


def _check_sparsity(weight_sparsity: float) -> float:
    if not 0.0 <= weight_sparsity < 1.0:
        raise SpecError(f"weight_sparsity {weight_sparsity} is outside [0, 1)")
    return 1.0 - weight_sparsity


def _check_positive(**values: int) -> None:
    for key, v in values.items():
        if not isinstance(v, int) or v < 1:
            raise SpecError(f"{key} must be a positive integer, got {v!r}")


# -- ResNet-50 --------------------------------------------------------------------------------


def resnet50(
    *,
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    weight_sparsity: float = 0.0,
    act_density: float = RELU_ACT_DENSITY,
) -> ZooNetwork:
    """ResNet-50 (He et al., CVPR 2016) in the torchvision "v1.5" form (stride 2 on the 3×3
    conv of each down-sampling bottleneck).

    Stem: 7×7/2 conv (3->64, pad 3), ReLU, 3×3/2 max-pool (pad 1). Stages of [3, 4, 6, 3]
    bottlenecks with widths w = [64, 128, 256, 512]: 1×1 (->w), ReLU, 3×3 (w->w, stride s,
    pad 1), ReLU, 1×1 (w->4w), the residual addition of the block's input (or, in the first
    block of each stage, of a 1×1 down-sample conv with stride s: the 4 projection shortcuts),
    ReLU; s = 2 in stages 2-4. Then global average pool, flatten and FC 2048 ->
    ``num_classes``. 53 convolutions + 1 FC, 16 additions, 49 ReLUs. Convs have no bias; each is
    followed by a batch norm (folded into the conv for inference; 2·channels parameters counted
    in ``other_params["batchnorm"]``).
    """
    _check_positive(batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(_check_sparsity(weight_sparsity))
    x = b.input("image", (batch, 3, image_size, image_size))
    x, size = b.conv(
        "conv1", x, n=batch, c=3, m=64, size=image_size, k=7, stride=2, pad=3, bias=False,
        act_density=1.0,
    )  # fmt: skip
    b.add_other("batchnorm", 2 * 64)
    x = b.op("relu", "conv1.relu", (x,))
    size = conv_out(size, 3, 2, 1)
    x = b.op("maxpool", "maxpool", (x,), shape=(batch, 64, size, size), window=9)
    cin = 64
    for stage, (blocks, width) in enumerate(
        zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1
    ):
        for i in range(blocks):
            stride = 2 if (i == 0 and stage > 1) else 1
            pre = f"layer{stage}.{i}"
            y, _ = b.conv(
                f"{pre}.conv1", x, n=batch, c=cin, m=width, size=size, k=1, stride=1, pad=0,
                bias=False, act_density=act_density,
            )  # fmt: skip
            y = b.op("relu", f"{pre}.conv1.relu", (y,))
            y, out = b.conv(
                f"{pre}.conv2", y, n=batch, c=width, m=width, size=size, k=3, stride=stride,
                pad=1, bias=False, act_density=act_density,
            )  # fmt: skip
            y = b.op("relu", f"{pre}.conv2.relu", (y,))
            y, _ = b.conv(
                f"{pre}.conv3", y, n=batch, c=width, m=4 * width, size=out, k=1, stride=1, pad=0,
                bias=False, act_density=act_density,
            )  # fmt: skip
            b.add_other("batchnorm", 2 * (width + width + 4 * width))
            shortcut = x
            if i == 0:
                shortcut, _ = b.conv(
                    f"{pre}.downsample", x, n=batch, c=cin, m=4 * width, size=size, k=1,
                    stride=stride, pad=0, bias=False, act_density=act_density,
                )  # fmt: skip
                b.add_other("batchnorm", 2 * 4 * width)
            y = b.op("add", f"{pre}.add", (y, shortcut))
            x = b.op("relu", f"{pre}.relu", (y,))
            cin, size = 4 * width, out
    x = b.op("globalavgpool", "avgpool", (x,), shape=(batch, cin, 1, 1))
    x = b.op("view", "flatten", (x,), shape=(batch, cin))
    b.linear("fc", x, num_classes, cin, batch, bias=True, act_density=1.0)
    return b.build("resnet50")


# -- Transformer encoders ---------------------------------------------------------------------


def _encoder_layers(
    b: GraphBuilder,
    x: str,
    *,
    prefix: str,
    layers: int,
    hidden: int,
    heads: int,
    mlp: int,
    tokens_per_seq: int,
    batch: int,
    fused_qkv: bool,
    pre_norm: bool,
    gelu_act_density: float,
    softmax_act_density: float,
) -> str:
    """An encoder stack on ``x``; returns its output node. Per layer: Q, K, V (fused or not),
    attention (``QKᵀ``, softmax, ``A·V``), output projection, residual addition, FFN up
    (hidden->mlp), GELU, down (mlp->hidden), residual addition; all linear layers with bias;
    two LayerNorms (2·hidden parameters each, read as constants) after each addition
    (post-norm, BERT) or before each sub-block (pre-norm, ViT)."""
    if hidden % heads:
        raise SpecError(f"hidden size {hidden} is not divisible by {heads} heads")
    tokens = tokens_per_seq * batch
    lin: _LinearArgs = {"tokens": tokens, "bias": True, "act_density": 1.0}
    for i in range(layers):
        pre = f"{prefix}.{i}"
        h = b.op("layernorm", f"{pre}.norm1", (x,), constant_words=2 * hidden) if pre_norm else x
        if fused_qkv:
            q = k = v = b.linear(f"{pre}.attn.qkv", h, 3 * hidden, hidden, **lin)
        else:
            q, k, v = (b.linear(f"{pre}.attn.{p}", h, hidden, hidden, **lin) for p in "qkv")
        a = b.attention(
            f"{pre}.attn", q, k, v, batch * heads, tokens_per_seq, tokens_per_seq, hidden // heads,
            probs_density=softmax_act_density,
        )  # fmt: skip
        a = b.linear(f"{pre}.attn.out", a, hidden, hidden, **lin)
        x = b.op("add", f"{pre}.attn.add", (a, x))
        if not pre_norm:
            x = b.op("layernorm", f"{pre}.norm1", (x,), constant_words=2 * hidden)
        h = b.op("layernorm", f"{pre}.norm2", (x,), constant_words=2 * hidden) if pre_norm else x
        u = b.linear(f"{pre}.mlp.up", h, mlp, hidden, **lin)
        u = b.op("gelu", f"{pre}.mlp.gelu", (u,))
        d = b.linear(f"{pre}.mlp.down", u, hidden, mlp, tokens=tokens, bias=True,
                     act_density=gelu_act_density)  # fmt: skip
        x = b.op("add", f"{pre}.mlp.add", (d, x))
        if not pre_norm:
            x = b.op("layernorm", f"{pre}.norm2", (x,), constant_words=2 * hidden)
        b.add_other("layernorm", 2 * 2 * hidden)
    return x


def bert_base(
    *,
    seq_len: int = 128,
    batch: int = 1,
    weight_sparsity: float = 0.0,
    gelu_act_density: float = GELU_ACT_DENSITY,
    gelu_threshold: float | None = None,
    softmax_act_density: float = SOFTMAX_ACT_DENSITY,
    softmax_threshold: float | None = None,
    vocab_size: int = 30522,
    max_positions: int = 512,
    type_vocab: int = 2,
) -> ZooNetwork:
    """BERT-base (Devlin et al., 2019): 12 post-norm layers, hidden 768, 12 heads, FFN 3072,
    GELU.

    Embeddings (word ``vocab_size``·768, position ``max_positions``·768, token type
    ``type_vocab``·768, LayerNorm 2·768) count in ``other_params``; the graph starts from their
    sum (the network input ``embeddings``, batch·seq_len × 768 values in DRAM) and its
    LayerNorm. The pooler (768->768 on the first token of each sequence, N = batch, tanh) is a
    GEMM layer. No pre-training heads.
    ``gelu_threshold`` (when given) sets ``gelu_act_density`` to :func:`gelu_density`;
    ``softmax_threshold`` sets ``softmax_act_density`` (the ``A·V`` probabilities) to
    :func:`softmax_density`.
    """
    _check_positive(seq_len=seq_len, batch=batch, vocab_size=vocab_size)
    if gelu_threshold is not None:
        gelu_act_density = gelu_density(gelu_threshold)
    if softmax_threshold is not None:
        softmax_act_density = softmax_density(softmax_threshold)
    if seq_len > max_positions:
        raise SpecError(f"seq_len {seq_len} exceeds the {max_positions} position embeddings")
    hidden = 768
    b = GraphBuilder(_check_sparsity(weight_sparsity))
    b.add_other("embeddings", (vocab_size + max_positions + type_vocab) * hidden)
    b.add_other("layernorm", 2 * hidden)
    x = b.input("embeddings", (batch * seq_len, hidden))
    x = b.op("layernorm", "embeddings.norm", (x,), constant_words=2 * hidden)
    x = _encoder_layers(
        b, x, prefix="encoder", layers=12, hidden=hidden, heads=12, mlp=3072,
        tokens_per_seq=seq_len, batch=batch, fused_qkv=False, pre_norm=False,
        gelu_act_density=gelu_act_density, softmax_act_density=softmax_act_density,
    )  # fmt: skip
    p = b.linear("pooler", x, hidden, hidden, batch, bias=True, act_density=1.0)
    b.op("tanh", "pooler.tanh", (p,))
    return b.build("bert-base")


def vit_b16(
    *,
    image_size: int = 224,
    batch: int = 1,
    num_classes: int = 1000,
    weight_sparsity: float = 0.0,
    gelu_act_density: float = GELU_ACT_DENSITY,
    gelu_threshold: float | None = None,
    softmax_act_density: float = SOFTMAX_ACT_DENSITY,
    softmax_threshold: float | None = None,
) -> ZooNetwork:
    """ViT-B/16 (Dosovitskiy et al., ICLR 2021): 16×16 patches, 12 pre-norm layers, hidden 768,
    12 heads, MLP 3072, a class token, learned position embeddings, final LayerNorm and a linear
    head.

    The patch embedding is a 16×16/16 conv (3->768, bias); its output becomes tokens (a view),
    the class token is prepended (a concat, free) and the position embeddings added (an
    addition reading T·768 constant values); tokens per image ``T = (image_size/16)² + 1``. The
    head reads the class token (N = batch).
    ``gelu_threshold`` (when given) sets ``gelu_act_density`` to :func:`gelu_density`;
    ``softmax_threshold`` sets ``softmax_act_density`` (the ``A·V`` probabilities) to
    :func:`softmax_density`.
    """
    _check_positive(image_size=image_size, batch=batch, num_classes=num_classes)
    if gelu_threshold is not None:
        gelu_act_density = gelu_density(gelu_threshold)
    if softmax_threshold is not None:
        softmax_act_density = softmax_density(softmax_threshold)
    if image_size % 16:
        raise SpecError(f"image_size {image_size} is not a multiple of the 16-pixel patch")
    hidden = 768
    b = GraphBuilder(_check_sparsity(weight_sparsity))
    x = b.input("image", (batch, 3, image_size, image_size))
    x, grid = b.conv(
        "patch_embed", x, n=batch, c=3, m=hidden, size=image_size, k=16, stride=16, pad=0,
        bias=True, act_density=1.0,
    )  # fmt: skip
    tokens = grid * grid + 1
    b.add_other("cls_token", hidden)
    b.add_other("pos_embed", tokens * hidden)
    x = b.op("view", "patch_embed.tokens", (x,), shape=(batch * grid * grid, hidden))
    x = b.op("concat", "cls_token", (x,), shape=(batch * tokens, hidden), constant_words=hidden)
    x = b.op("add", "pos_embed", (x,), constant_words=tokens * hidden)
    x = _encoder_layers(
        b, x, prefix="blocks", layers=12, hidden=hidden, heads=12, mlp=3072,
        tokens_per_seq=tokens, batch=batch, fused_qkv=True, pre_norm=True,
        gelu_act_density=gelu_act_density, softmax_act_density=softmax_act_density,
    )  # fmt: skip
    b.add_other("layernorm", 2 * hidden)
    x = b.op("layernorm", "norm", (x,), constant_words=2 * hidden)
    b.linear("head", x, num_classes, hidden, batch, bias=True, act_density=1.0)
    return b.build("vit-b16")


# -- Llama-style decoder ----------------------------------------------------------------------


def llama_block(
    *,
    hidden: int = 4096,
    heads: int = 32,
    kv_heads: int | None = None,
    mlp: int = 11008,
    seq_len: int = 2048,
    batch: int = 1,
    mode: Literal["prefill", "decode"] = "prefill",
    layers: int = 1,
    weight_sparsity: float = 0.0,
    act_density: float = 1.0,
    softmax_act_density: float = SOFTMAX_ACT_DENSITY,
    softmax_threshold: float | None = None,
) -> ZooNetwork:
    """Llama-style decoder block(s) (defaults: Llama-2-7B's block), no biases, RMSNorm.

    Per block: RMSNorm (γ: hidden constants), q (hidden->hidden), k and v
    (hidden->kv_heads·head_dim; grouped-query attention when ``kv_heads < heads``), attention
    (``QKᵀ``, softmax, ``A·V``), o (hidden->hidden), residual addition, RMSNorm, SwiGLU MLP:
    gate and up (hidden->mlp), SiLU on gate, their product, down (mlp->hidden) reading
    ``silu(gate)·up`` (density ``act_density``, dense by default), residual addition. Rotary
    embeddings and the causal mask are not modelled. The input is the hidden state (network
    input ``hidden``).

    Modes: ``prefill`` processes ``seq_len`` tokens per sequence (T = batch·seq_len; attention
    seq_len × seq_len, full matrix counted; k and v feed the attention); ``decode`` processes
    one new token per sequence (T = batch) attending to a KV cache of ``seq_len`` tokens
    (attention 1 × seq_len): the cache is a network input (``layers.i.k_cache``,
    ``layers.i.v_cache``, batch·seq_len × kv_heads·head_dim values in DRAM) and the new k and v
    are network outputs (appended to the cache). With grouped-query attention the score
    products still run once per query head, so G = batch·heads. The ``A·V`` probabilities have
    density ``softmax_act_density`` (``softmax_threshold`` sets it to :func:`softmax_density`).
    """
    kv = heads if kv_heads is None else kv_heads
    _check_positive(
        hidden=hidden, heads=heads, kv_heads=kv, mlp=mlp, seq_len=seq_len, batch=batch,
        layers=layers,
    )  # fmt: skip
    if hidden % heads or heads % kv:
        raise SpecError(
            f"hidden {hidden} must be divisible by heads {heads}, and heads by kv_heads {kv}"
        )
    if mode not in ("prefill", "decode"):
        raise SpecError(f"mode {mode!r} is not 'prefill' or 'decode'")
    if softmax_threshold is not None:
        softmax_act_density = softmax_density(softmax_threshold)
    head_dim = hidden // heads
    q_len = seq_len if mode == "prefill" else 1
    tokens = batch * q_len
    b = GraphBuilder(_check_sparsity(weight_sparsity))
    lin: _LinearArgs = {"tokens": tokens, "bias": False, "act_density": 1.0}
    x = b.input("hidden", (tokens, hidden))
    outputs = []
    for i in range(layers):
        pre = f"layers.{i}"
        h = b.op("rmsnorm", f"{pre}.attn.norm", (x,), constant_words=hidden)
        q = b.linear(f"{pre}.attn.q", h, hidden, hidden, **lin)
        k = b.linear(f"{pre}.attn.k", h, kv * head_dim, hidden, **lin)
        v = b.linear(f"{pre}.attn.v", h, kv * head_dim, hidden, **lin)
        if mode == "decode":
            outputs += [k, v]
            cache = (batch * seq_len, kv * head_dim)
            k = b.input(f"{pre}.k_cache", cache)
            v = b.input(f"{pre}.v_cache", cache)
        a = b.attention(
            f"{pre}.attn", q, k, v, batch * heads, q_len, seq_len, head_dim,
            probs_density=softmax_act_density,
        )  # fmt: skip
        a = b.linear(f"{pre}.attn.o", a, hidden, hidden, **lin)
        x = b.op("add", f"{pre}.attn.add", (a, x))
        h = b.op("rmsnorm", f"{pre}.mlp.norm", (x,), constant_words=hidden)
        gate = b.linear(f"{pre}.mlp.gate", h, mlp, hidden, **lin)
        up = b.linear(f"{pre}.mlp.up", h, mlp, hidden, **lin)
        s = b.op("silu", f"{pre}.mlp.silu", (gate,))
        s = b.op("mul", f"{pre}.mlp.mul", (s, up))
        d = b.linear(f"{pre}.mlp.down", s, hidden, mlp, tokens=tokens, bias=False,
                     act_density=act_density)  # fmt: skip
        x = b.op("add", f"{pre}.mlp.add", (d, x))
        b.add_other("rmsnorm", 2 * hidden)
    return b.build(f"llama-block-{mode}", outputs=(*outputs, x) if outputs else ())


# -- registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., ZooNetwork]] = {
    "resnet50": resnet50,
    "bert-base": bert_base,
    "vit-b16": vit_b16,
    "llama-block": llama_block,
}


#: Short names accepted besides the registry keys.
_ALIASES: dict[str, str] = {"bert": "bert-base", "vit": "vit-b16", "llama": "llama-block"}


def _canonical(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def list_networks() -> list[str]:
    """Names accepted by :func:`get_network` (case, ``-`` and ``_`` are ignored)."""
    return sorted(_REGISTRY)


def network_params(name: str) -> dict[str, Any]:
    """The parameters a zoo network accepts, with their defaults."""
    fn = _lookup(name)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()}


def _lookup(name: str) -> Callable[..., ZooNetwork]:
    name = _ALIASES.get(_canonical(name), name)
    for key, fn in _REGISTRY.items():
        if _canonical(key) == _canonical(name):
            return fn
    raise SpecError(f"unknown network {name!r} (expected one of {', '.join(list_networks())})")


def describe_network(name: str, **params: Any) -> ZooNetwork:
    """Generate zoo network ``name`` with ``params`` and its parameter accounting.

    Raises:
        SpecError: unknown network, unknown parameter, or a parameter out of range.
    """
    fn = _lookup(name)
    accepted = inspect.signature(fn).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise SpecError(
            f"parameter(s) {', '.join(unknown)} do not apply to network {name!r} (its "
            f"parameters: {', '.join(accepted)}; give them as --param KEY=VALUE)"
        )
    for key, value in params.items():
        if key.endswith("density") and not (
            isinstance(value, (int, float)) and 0.0 <= value <= 1.0
        ):
            raise SpecError(f"{key} must be a number in [0, 1], got {value!r}")
    return fn(**params)


def get_network(name: str, **params: Any) -> Network:
    """The layers of zoo network ``name`` (see :func:`describe_network`)."""
    return describe_network(name, **params).network
