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
  (:data:`GELU_THRESHOLDS`, :func:`gelu_density`). Every other activation (after LayerNorm,
  softmax) is dense.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from testy_model.errors import SpecError
from testy_model.spec.workload import (
    DataSpace,
    Density,
    Layer,
    Network,
    Problem,
    conv2d,
    gemm,
)

#: Non-zero fraction of post-ReLU conv inputs: 1 − 0.44 (Cnvlutin, ISCA 2016; module docstring).
RELU_ACT_DENSITY = 0.56
#: Non-zero fraction of GELU outputs at magnitude threshold 0.02, measured on MiniLM-L6.
GELU_ACT_DENSITY = 0.89
#: The paper's magnitude threshold made explicit: τ -> (fraction of MiniLM-L6's GELU outputs with
#: |x| > τ, relative Frobenius error of zeroing the others), measured by
#: ``scripts/measure_gelu_density.py`` (260 shipped sentences, 33.9 M values).
GELU_THRESHOLDS: dict[float, tuple[float, float]] = {
    0.0: (0.9986, 0.0),
    0.005: (0.9556, 0.0019),
    0.01: (0.9315, 0.0050),
    0.02: (0.8903, 0.0130),
    0.05: (0.7810, 0.0480),
    0.1: (0.5989, 0.1366),
}


def gelu_density(threshold: float) -> float:
    """Density of GELU outputs when values with ``|x| <= threshold`` count as zeros (the TASD
    paper's magnitude threshold), from :data:`GELU_THRESHOLDS` (measured; the thresholding
    itself costs the relative Frobenius error listed there, which the search's budget does not
    see). :class:`SpecError` for a threshold that was not measured."""
    if threshold not in GELU_THRESHOLDS:
        raise SpecError(
            f"gelu_threshold {threshold}: measured for {sorted(GELU_THRESHOLDS)} only "
            "(scripts/measure_gelu_density.py)"
        )
    return GELU_THRESHOLDS[threshold][0]


class ZooNetwork(BaseModel):
    """A zoo network with its parameter accounting.

    Attributes:
        network: the GEMM-like layers (convolutions, linear layers, attention products).
        layer_params: layer name -> parameters (weights + biases, count) of that layer; 0 for
            attention products.
        other_params: group name -> parameters (count) that are not GEMM weights
            (embeddings, norms, batch-norm affine parameters, class token, position embeddings).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    network: Network
    layer_params: dict[str, int]
    other_params: dict[str, int]

    @property
    def gemm_params(self) -> int:
        """Parameters held by GEMM layers (weights + biases), count."""
        return sum(self.layer_params.values())

    @property
    def total_params(self) -> int:
        """All parameters: GEMM layers plus ``other_params``, count."""
        return self.gemm_params + sum(self.other_params.values())

    @property
    def macs(self) -> int:
        """Dense multiply-accumulates of all layers, count."""
        return self.network.macs


# -- shape helpers ----------------------------------------------------------------------------


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output size (pixels) of a convolution or pooling along one axis.

    Equation: ``out = floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1``.
    Example: 224 input, 7×7 kernel, stride 2, padding 3 -> floor(223 / 2) + 1 = 112.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        raise SpecError(
            f"a {kernel}-wide kernel (dilation {dilation}) does not fit a {size}-wide input "
            f"with padding {padding}"
        )
    return span // stride + 1


def batched_gemm(
    g: int,
    m: int,
    n: int,
    k: int,
    *,
    name: str = "bgemm",
    densities: dict[str, Density] | None = None,
) -> Problem:
    """``G`` independent GEMMs ``Z[g,m,n] += A[g,m,k]·B[g,n,k]`` (MACs ``= G·M·N·K``).

    Used for attention, where ``G = batch·heads`` and both operands are activations: there is
    no weight operand (``weight=None``); B is the activation operand.
    """
    return Problem(
        name=name,
        shape_name="bgemm_ABZ",
        dimensions=("G", "M", "N", "K"),
        bounds={"G": g, "M": m, "N": n, "K": k},
        data_spaces=(
            DataSpace(name="A", projection=((("G", 1),), (("M", 1),), (("K", 1),))),
            DataSpace(name="B", projection=((("G", 1),), (("N", 1),), (("K", 1),))),
            DataSpace(
                name="Z", projection=((("G", 1),), (("M", 1),), (("N", 1),)), read_write=True
            ),
        ),
        densities=densities or {},
        weight=None,
        activation="B",
    )


def _bernoulli(density: float) -> Density | None:
    """Unstructured density descriptor, or ``None`` (dense) when ``density == 1``."""
    if not 0.0 <= density <= 1.0:
        raise SpecError(f"density {density} is outside [0, 1]")
    return None if density == 1.0 else Density(kind="bernoulli", density=density)


def _dens(weight: str | None, w: float, act: str | None, a: float) -> dict[str, Density]:
    out: dict[str, Density] = {}
    dw = _bernoulli(w)
    da = _bernoulli(a)
    if weight is not None and dw is not None:
        out[weight] = dw
    if act is not None and da is not None:
        out[act] = da
    return out


class _Builder:
    """Accumulates layers and parameter counts while a network is generated."""

    def __init__(self, weight_density: float) -> None:
        self.layers: list[Layer] = []
        self.layer_params: dict[str, int] = {}
        self.other: dict[str, int] = {}
        self.wd = weight_density

    def linear(
        self, name: str, out_f: int, in_f: int, tokens: int, *, bias: bool, act_density: float
    ) -> None:
        """Linear layer: params ``out·in (+ out)``; ``gemm(m=out, n=tokens, k=in)``."""
        prob = gemm(out_f, tokens, in_f, name=name, densities=_dens("A", self.wd, "B", act_density))
        self.layers.append(Layer(name=name, problem=prob))
        self.layer_params[name] = out_f * in_f + (out_f if bias else 0)

    def conv(
        self,
        name: str,
        *,
        n: int,
        c: int,
        m: int,
        size: int,
        k: int,
        stride: int,
        pad: int,
        bias: bool,
        act_density: float,
    ) -> int:
        """Square convolution on a ``size``×``size`` input; params ``C·M·k² (+ M)``.

        Returns the output size (pixels).
        """
        out = conv_out(size, k, stride, pad)
        prob = conv2d(
            name=name,
            n=n,
            c=c,
            m=m,
            p=out,
            q=out,
            r=k,
            s=k,
            stride=stride,
            densities=_dens("Weights", self.wd, "Inputs", act_density),
        )
        self.layers.append(Layer(name=name, problem=prob))
        self.layer_params[name] = c * m * k * k + (m if bias else 0)
        return out

    def attention(self, prefix: str, g: int, q_len: int, kv_len: int, head_dim: int) -> None:
        """``QKᵀ`` (G, q_len, kv_len, head_dim) and ``A·V`` (G, q_len, head_dim, kv_len)."""
        for nm, prob in (
            ("qk", batched_gemm(g, q_len, kv_len, head_dim, name=f"{prefix}.qk")),
            ("av", batched_gemm(g, q_len, head_dim, kv_len, name=f"{prefix}.av")),
        ):
            self.layers.append(Layer(name=f"{prefix}.{nm}", problem=prob))
            self.layer_params[f"{prefix}.{nm}"] = 0

    def add_other(self, group: str, count: int) -> None:
        self.other[group] = self.other.get(group, 0) + count

    def build(self, name: str) -> ZooNetwork:
        return ZooNetwork(
            network=Network(name=name, layers=tuple(self.layers)),
            layer_params=self.layer_params,
            other_params=self.other,
        )


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

    Stem: 7×7/2 conv (3->64, pad 3), 3×3/2 max-pool (pad 1). Stages of [3, 4, 6, 3] bottlenecks
    with widths w = [64, 128, 256, 512]: 1×1 (->w), 3×3 (w->w, stride s, pad 1), 1×1 (w->4w);
    the first block of each stage has a 1×1 down-sample conv (stride s) on its shortcut; s = 2 in
    stages 2-4. Then global average pool and FC 2048 -> ``num_classes``. 53 convolutions + 1 FC.
    Convs have no bias; each is followed by a batch norm with 2·channels parameters (counted in
    ``other_params["batchnorm"]``).
    """
    _check_positive(batch=batch, image_size=image_size, num_classes=num_classes)
    b = _Builder(_check_sparsity(weight_sparsity))
    size = b.conv(
        "conv1", n=batch, c=3, m=64, size=image_size, k=7, stride=2, pad=3, bias=False,
        act_density=1.0,
    )  # fmt: skip
    b.add_other("batchnorm", 2 * 64)
    size = conv_out(size, 3, 2, 1)  # max-pool
    cin = 64
    for stage, (blocks, width) in enumerate(
        zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1
    ):
        for i in range(blocks):
            stride = 2 if (i == 0 and stage > 1) else 1
            pre = f"layer{stage}.{i}"
            b.conv(
                f"{pre}.conv1", n=batch, c=cin, m=width, size=size, k=1, stride=1, pad=0,
                bias=False, act_density=act_density,
            )  # fmt: skip
            out = b.conv(
                f"{pre}.conv2", n=batch, c=width, m=width, size=size, k=3, stride=stride, pad=1,
                bias=False, act_density=act_density,
            )  # fmt: skip
            b.conv(
                f"{pre}.conv3", n=batch, c=width, m=4 * width, size=out, k=1, stride=1, pad=0,
                bias=False, act_density=act_density,
            )  # fmt: skip
            b.add_other("batchnorm", 2 * (width + width + 4 * width))
            if i == 0:
                b.conv(
                    f"{pre}.downsample", n=batch, c=cin, m=4 * width, size=size, k=1,
                    stride=stride, pad=0, bias=False, act_density=act_density,
                )  # fmt: skip
                b.add_other("batchnorm", 2 * 4 * width)
            cin, size = 4 * width, out
    b.linear("fc", num_classes, cin, batch, bias=True, act_density=1.0)
    return b.build("resnet50")


# -- Transformer encoders ---------------------------------------------------------------------


def _encoder_layers(
    b: _Builder,
    *,
    prefix: str,
    layers: int,
    hidden: int,
    heads: int,
    mlp: int,
    tokens_per_seq: int,
    batch: int,
    fused_qkv: bool,
    gelu_act_density: float,
) -> None:
    """Post-/pre-norm-agnostic encoder stack: per layer Q, K, V (fused or not), attention
    (``QKᵀ``, ``A·V``), output projection, FFN up (hidden->mlp, GELU) and down (mlp->hidden);
    all linear layers with bias; two LayerNorms (2·hidden parameters each) per layer."""
    if hidden % heads:
        raise SpecError(f"hidden size {hidden} is not divisible by {heads} heads")
    tokens = tokens_per_seq * batch
    for i in range(layers):
        pre = f"{prefix}.{i}"
        if fused_qkv:
            b.linear(f"{pre}.attn.qkv", 3 * hidden, hidden, tokens, bias=True, act_density=1.0)
        else:
            for p in ("q", "k", "v"):
                b.linear(f"{pre}.attn.{p}", hidden, hidden, tokens, bias=True, act_density=1.0)
        b.attention(f"{pre}.attn", batch * heads, tokens_per_seq, tokens_per_seq, hidden // heads)
        b.linear(f"{pre}.attn.out", hidden, hidden, tokens, bias=True, act_density=1.0)
        b.linear(f"{pre}.mlp.up", mlp, hidden, tokens, bias=True, act_density=1.0)
        b.linear(f"{pre}.mlp.down", hidden, mlp, tokens, bias=True, act_density=gelu_act_density)
        b.add_other("layernorm", 2 * 2 * hidden)


def bert_base(
    *,
    seq_len: int = 128,
    batch: int = 1,
    weight_sparsity: float = 0.0,
    gelu_act_density: float = GELU_ACT_DENSITY,
    gelu_threshold: float | None = None,
    vocab_size: int = 30522,
    max_positions: int = 512,
    type_vocab: int = 2,
) -> ZooNetwork:
    """BERT-base (Devlin et al., 2019): 12 layers, hidden 768, 12 heads, FFN 3072, GELU.

    Embeddings (word ``vocab_size``·768, position ``max_positions``·768, token type
    ``type_vocab``·768, LayerNorm 2·768) count in ``other_params``; the pooler (768->768 on the
    first token of each sequence, N = batch) is a GEMM layer. No pre-training heads.
    ``gelu_threshold`` (when given) sets ``gelu_act_density`` to :func:`gelu_density`.
    """
    _check_positive(seq_len=seq_len, batch=batch, vocab_size=vocab_size)
    if gelu_threshold is not None:
        gelu_act_density = gelu_density(gelu_threshold)
    if seq_len > max_positions:
        raise SpecError(f"seq_len {seq_len} exceeds the {max_positions} position embeddings")
    hidden = 768
    b = _Builder(_check_sparsity(weight_sparsity))
    b.add_other("embeddings", (vocab_size + max_positions + type_vocab) * hidden)
    b.add_other("layernorm", 2 * hidden)
    _encoder_layers(
        b, prefix="encoder", layers=12, hidden=hidden, heads=12, mlp=3072,
        tokens_per_seq=seq_len, batch=batch, fused_qkv=False, gelu_act_density=gelu_act_density,
    )  # fmt: skip
    b.linear("pooler", hidden, hidden, batch, bias=True, act_density=1.0)
    return b.build("bert-base")


def vit_b16(
    *,
    image_size: int = 224,
    batch: int = 1,
    num_classes: int = 1000,
    weight_sparsity: float = 0.0,
    gelu_act_density: float = GELU_ACT_DENSITY,
    gelu_threshold: float | None = None,
) -> ZooNetwork:
    """ViT-B/16 (Dosovitskiy et al., ICLR 2021): 16×16 patches, 12 layers, hidden 768, 12 heads,
    MLP 3072, a class token, learned position embeddings, final LayerNorm and a linear head.

    The patch embedding is a 16×16/16 conv (3->768, bias); tokens per image
    ``T = (image_size/16)² + 1`` (class token). The head reads the class token (N = batch).
    ``gelu_threshold`` (when given) sets ``gelu_act_density`` to :func:`gelu_density`.
    """
    _check_positive(image_size=image_size, batch=batch, num_classes=num_classes)
    if gelu_threshold is not None:
        gelu_act_density = gelu_density(gelu_threshold)
    if image_size % 16:
        raise SpecError(f"image_size {image_size} is not a multiple of the 16-pixel patch")
    hidden = 768
    b = _Builder(_check_sparsity(weight_sparsity))
    grid = b.conv(
        "patch_embed", n=batch, c=3, m=hidden, size=image_size, k=16, stride=16, pad=0,
        bias=True, act_density=1.0,
    )  # fmt: skip
    tokens = grid * grid + 1
    b.add_other("cls_token", hidden)
    b.add_other("pos_embed", tokens * hidden)
    _encoder_layers(
        b, prefix="blocks", layers=12, hidden=hidden, heads=12, mlp=3072,
        tokens_per_seq=tokens, batch=batch, fused_qkv=True, gelu_act_density=gelu_act_density,
    )  # fmt: skip
    b.add_other("layernorm", 2 * hidden)
    b.linear("head", num_classes, hidden, batch, bias=True, act_density=1.0)
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
) -> ZooNetwork:
    """Llama-style decoder block(s) (defaults: Llama-2-7B's block), no biases, RMSNorm.

    Per block: q (hidden->hidden), k and v (hidden->kv_heads·head_dim; grouped-query attention
    when ``kv_heads < heads``), attention, o (hidden->hidden), SwiGLU MLP: gate and up
    (hidden->mlp), down (mlp->hidden) reading ``silu(gate)·up`` (density ``act_density``,
    dense by default); two RMSNorms (hidden parameters each).

    Modes: ``prefill`` processes ``seq_len`` tokens per sequence (T = batch·seq_len; attention
    seq_len × seq_len, full matrix counted); ``decode`` processes one new token per sequence
    (T = batch) attending to a KV cache of ``seq_len`` tokens (attention 1 × seq_len). With
    grouped-query attention the score products still run once per query head, so G =
    batch·heads.
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
    head_dim = hidden // heads
    q_len = seq_len if mode == "prefill" else 1
    tokens = batch * q_len
    b = _Builder(_check_sparsity(weight_sparsity))
    for i in range(layers):
        pre = f"layers.{i}"
        b.linear(f"{pre}.attn.q", hidden, hidden, tokens, bias=False, act_density=1.0)
        b.linear(f"{pre}.attn.k", kv * head_dim, hidden, tokens, bias=False, act_density=1.0)
        b.linear(f"{pre}.attn.v", kv * head_dim, hidden, tokens, bias=False, act_density=1.0)
        b.attention(f"{pre}.attn", batch * heads, q_len, seq_len, head_dim)
        b.linear(f"{pre}.attn.o", hidden, hidden, tokens, bias=False, act_density=1.0)
        b.linear(f"{pre}.mlp.gate", mlp, hidden, tokens, bias=False, act_density=1.0)
        b.linear(f"{pre}.mlp.up", mlp, hidden, tokens, bias=False, act_density=1.0)
        b.linear(f"{pre}.mlp.down", hidden, mlp, tokens, bias=False, act_density=act_density)
        b.add_other("rmsnorm", 2 * hidden)
    return b.build(f"llama-block-{mode}")


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
            f"network {name!r} has no parameter(s) {', '.join(unknown)} "
            f"(accepted: {', '.join(accepted)})"
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
