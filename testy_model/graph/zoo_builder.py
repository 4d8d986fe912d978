"""Building blocks of the zoo: shape helpers and a builder that records every operator with the
operators it reads, so a zoo network is a dataflow graph with its real topology.

Conventions are in :mod:`testy_model.graph.zoo`. Each builder method adds one node and returns
its name, so a network is written as data flows: ``y = b.op("relu", "x.relu", [b.conv(...)])``.
Nodes run in the order they are added (``Network.order``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from testy_model.errors import SpecError
from testy_model.graph.dataflow import tensor_shape
from testy_model.spec.workload import (
    DataSpace,
    Density,
    Layer,
    Network,
    Operator,
    OperatorKind,
    Problem,
    conv2d,
    gemm,
)


class ZooNetwork(BaseModel):
    """A zoo network with its parameter accounting.

    Attributes:
        network: the GEMM-like layers (convolutions, linear layers, attention products) and the
            other operators between them.
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


class GraphBuilder:
    """Accumulates layers, operators (in execution order) and parameter counts."""

    def __init__(self, weight_density: float) -> None:
        self.layers: list[Layer] = []
        self.operators: list[Operator] = []
        self.order: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.layer_params: dict[str, int] = {}
        self.other: dict[str, int] = {}
        self.wd = weight_density

    def _layer(self, name: str, prob: Problem, inputs: tuple[str, ...]) -> str:
        self.layers.append(Layer(name=name, problem=prob, inputs=inputs))
        self.shapes[name] = tensor_shape(prob, prob.output)
        self.order.append(name)
        return name

    def input(self, name: str, shape: tuple[int, ...]) -> str:
        """A network input (in DRAM) of ``shape`` values."""
        return self.op("input", name, (), shape=shape)

    def op(
        self,
        kind: OperatorKind,
        name: str,
        inputs: tuple[str, ...] | list[str],
        *,
        shape: tuple[int, ...] | None = None,
        window: int = 1,
        constant_words: int = 0,
    ) -> str:
        """A non-GEMM operator; its output shape defaults to its first input's."""
        out = shape if shape is not None else self.shapes[inputs[0]]
        self.operators.append(
            Operator(name=name, op=kind, inputs=tuple(inputs), shape=out, window=window,
                     constant_words=constant_words)
        )  # fmt: skip
        self.shapes[name] = out
        self.order.append(name)
        return name

    def linear(
        self, name: str, x: str, out_f: int, in_f: int, tokens: int, *, bias: bool,
        act_density: float,
    ) -> str:  # fmt: skip
        """Linear layer on ``x``: params ``out·in (+ out)``; ``gemm(m=out, n=tokens, k=in)``."""
        prob = gemm(out_f, tokens, in_f, name=name, densities=_dens("A", self.wd, "B", act_density))
        self.layer_params[name] = out_f * in_f + (out_f if bias else 0)
        return self._layer(name, prob, (x,))

    def conv(
        self,
        name: str,
        x: str,
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
    ) -> tuple[str, int]:
        """Square convolution on ``x`` (``size``×``size``); params ``C·M·k² (+ M)``.

        Returns the node name and the output size (pixels).
        """
        out = conv_out(size, k, stride, pad)
        prob = conv2d(
            name=name, n=n, c=c, m=m, p=out, q=out, r=k, s=k, stride=stride,
            densities=_dens("Weights", self.wd, "Inputs", act_density),
        )  # fmt: skip
        self.layer_params[name] = c * m * k * k + (m if bias else 0)
        return self._layer(name, prob, (x,)), out

    def attention(
        self, prefix: str, q: str, k: str, v: str, g: int, q_len: int, kv_len: int, head_dim: int,
        probs_density: float = 1.0,
    ) -> str:  # fmt: skip
        """``QKᵀ`` (G, q_len, kv_len, head_dim) on ``q``, ``k``; softmax over the keys; ``A·V``
        (G, q_len, head_dim, kv_len) on the probabilities (operand A, density
        ``probs_density``) and ``v``. Returns the ``A·V`` node."""
        qk = self._layer(
            f"{prefix}.qk", batched_gemm(g, q_len, kv_len, head_dim, name=f"{prefix}.qk"), (q, k)
        )
        sm = self.op("softmax", f"{prefix}.softmax", (qk,))
        av_prob = batched_gemm(
            g, q_len, head_dim, kv_len, name=f"{prefix}.av",
            densities=_dens(None, 1.0, "A", probs_density),
        )  # fmt: skip
        av = self._layer(f"{prefix}.av", av_prob, (sm, v))
        self.layer_params[qk] = self.layer_params[av] = 0
        return av

    def add_other(self, group: str, count: int) -> None:
        """Count ``count`` non-GEMM parameters under ``group``."""
        self.other[group] = self.other.get(group, 0) + count

    def build(self, name: str, outputs: tuple[str, ...] = ()) -> ZooNetwork:
        """The network (layers, operators, execution order) and its parameter accounting."""
        return ZooNetwork(
            network=Network(
                name=name,
                layers=tuple(self.layers),
                operators=tuple(self.operators),
                outputs=outputs,
                order=tuple(self.order),
            ),
            layer_params=self.layer_params,
            other_params=self.other,
        )
