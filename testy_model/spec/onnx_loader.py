"""Networks from ONNX models: ``load_onnx("model.onnx")`` → a graph :class:`Network`.

The file is read by :mod:`testy_model.spec.onnx_read` (``onnx.load``, shape inference, constants)
and exported operator chains are fused back (:mod:`testy_model.spec.onnx_patterns`). Then each
node becomes a layer, an operator, or nothing:

- **GEMM-like layers** (weights are the real initializers: their non-zero fraction is the layer's
  weight density, and ``--measured`` decomposes them, see :func:`onnx_weight`):

  * ``Conv`` (2-D, or 1-D as height 1) with strides, dilations, groups and pads →
    ``conv2d(N, C, M, P = out width, Q = out height, R = kernel width, S = kernel height)``;
    the padding is in the input footprint ``(P−1)·stride + (R−1)·dilation + 1``;
  * ``Gemm`` (``transA``/``transB``) and ``MatMul`` with one constant 2-D operand → a GEMM
    ``Z[M,N] += A[M,K]·B[N,K]`` with the constant as the weight A (M = its output features,
    N = the other operand's rows: tokens × batch dimensions);
  * ``MatMul``/``Gemm`` of two run-time operands (attention's ``Q·Kᵀ`` and ``A·V``, batched over
    broadcast leading dimensions G) → ``bgemm(G, M, N, K)`` without a weight;
  * epilogues are part of the GEMM's output write (not priced apart): on a layer's own output,
    when it is the only reader, a ``BatchNormalization``, an ``Add``/``Sub`` of a constant bias
    (one value, or one per output channel or feature) or a ``Mul``/``Div`` by a constant
    scalar (attention's 1/√d) is folded into the layer.

- **Operators** (``model.elementwise``): ``Add``/``Sub``/``Mul``/``Div``, ``Relu``, ``Sigmoid``,
  ``Tanh``, ``Gelu`` (opset 20, and the Erf pattern), SiLU (``x·sigmoid(x)``), ``Softmax``/
  ``LogSoftmax``, ``LayerNormalization`` (and its decomposed pattern), RMSNorm (pattern, or
  ``RMSNormalization``/``SimplifiedLayerNormalization``), ``Group``/``InstanceNormalization``
  (as layer norms), unfolded ``BatchNormalization``, ``MaxPool``/``AveragePool``/``LpPool``,
  ``GlobalAveragePool``/``GlobalMaxPool``, ``Reduce*``/``ArgMax``/``ArgMin``, ``Gather`` from a
  constant table, and one-operation-per-value functions (:data:`POINTWISE`). Constant operands
  (bias, γ/β, tables) of more than one value are read as ``constant_words``.
- **Free** (``view``/``concat``): ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``,
  ``Transpose``, ``Identity``, ``Dropout``, ``Cast``, ``Expand``, ``Slice``, ``Split``, ``Pad``,
  ``Tile``, ``Gather`` of run-time data, ``DepthToSpace``/``SpaceToDepth``, ``Concat``. A view
  with as many values as its input is dropped (its readers read the input).
- **Nothing**: nodes whose inputs are all constants or shapes (``Shape``, ``Size`` and the
  arithmetic exporters put around ``Reshape``): known at load time.

An operator of any other type raises :class:`SpecError` naming node, type and file, unless
``skip_unknown`` (``--skip-unknown``): then it is an ``unknown`` operator counted as traffic
only (its inputs read, its output written) and listed in the report.

ONNX tensor element types are ignored: words take the architecture's datawidth. Activations have
no initializer, so their densities are dense unless the model carries ``testy_model.densities``
metadata (written by ``graph.onnx_export``: ``{layer: {tensor: density spec}}``), which then
replaces the densities of the layers it names.
"""

from __future__ import annotations

import json
import math
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.errors import SpecError
from testy_model.spec.located import SpecWarning
from testy_model.spec.onnx_patterns import FUSED, fuse_patterns
from testy_model.spec.onnx_read import Const, Fill, Node, OnnxGraph, constant_value, read_onnx
from testy_model.spec.workload import Density, Layer, Network, Operator, conv2d, gemm

#: One operation per output value (``pointwise``).
POINTWISE = frozenset((
    "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs", "Floor", "Ceil", "Round", "Sign",
    "Sin", "Cos", "Softplus", "Softsign", "Elu", "Selu", "Celu", "LeakyRelu", "PRelu", "Clip",
    "HardSigmoid", "HardSwish", "Mish", "Pow", "Max", "Min", "Mean", "Sum", "Where", "Equal",
    "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Xor", "IsNaN",
    "IsInf", "Mod", "BitShift", "Trilu", "ThresholdedRelu", "Shrink", "Resize", "Upsample",
    "QuantizeLinear", "DequantizeLinear",
))  # fmt: skip
_KINDS: dict[str, str] = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Relu": "relu",
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu", "Silu": "silu",
    "Softmax": "softmax", "LogSoftmax": "softmax", "LayerNormalization": "layernorm",
    "GroupNormalization": "layernorm", "InstanceNormalization": "layernorm",
    "RMSNormalization": "rmsnorm", "SimplifiedLayerNormalization": "rmsnorm",
    "BatchNormalization": "batchnorm", "MaxPool": "maxpool", "AveragePool": "avgpool",
    "LpPool": "avgpool", "GlobalAveragePool": "globalavgpool",
    "GlobalMaxPool": "globalavgpool", "GlobalLpPool": "globalavgpool",
    "ArgMax": "reduce", "ArgMin": "reduce",
}  # fmt: skip
_VIEWS = frozenset((
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout", "Cast",
    "CastLike", "Expand", "Slice", "Pad", "Tile", "DepthToSpace", "SpaceToDepth",
))  # fmt: skip
_GEMMS = frozenset({"Conv", "Gemm", "MatMul"})
_EPILOGUES = frozenset({"BatchNormalization", "Add", "Sub", "Mul", "Div"})


def _density(w: Const | None) -> Density | None:
    """Bernoulli density = non-zero fraction of a weight (None when dense or unknown)."""
    if w is None:
        return None
    if isinstance(w, Fill):
        d = 1.0 if w.value != 0 else 0.0
    else:
        d = float(np.count_nonzero(w)) / max(int(np.size(w)), 1)
    return None if d >= 1.0 else Density(kind="bernoulli", density=d)


class _Converter:
    """One pass over the (fused) nodes building layers and operators in execution order."""

    def __init__(self, og: OnnxGraph, skip_unknown: bool) -> None:
        self.og = og
        self.file = og.file
        self.skip_unknown = skip_unknown
        self.consts: dict[str, Const] = dict(og.consts)
        self.static: set[str] = set()
        self.node_of: dict[str, str] = {}
        self.names: set[str] = set()
        self.layers: list[Layer] = []
        self.operators: list[Operator] = []
        self.order: list[str] = []
        self.weights: dict[str, tuple[Const, bool]] = {}
        self.readers: dict[str, int] = {}
        self.layer_out: dict[str, str] = {}  # layer -> the ONNX tensor holding its output

    # -- helpers ---------------------------------------------------------------------------
    def err(self, node: Node, problem: str) -> SpecError:
        return SpecError(f"node {node.name!r} ({node.op_type}): {problem}", file=self.file)

    def uniq(self, name: str) -> str:
        base, i = name, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def is_static(self, t: str) -> bool:
        return t in self.consts or t in self.static

    def shape(self, t: str, node: Node) -> tuple[int, ...]:
        if t in self.og.shapes:
            return self.og.shapes[t]
        c = self.consts.get(t)
        if c is not None:
            return c.shape if isinstance(c, Fill) else tuple(np.shape(c))
        raise self.err(node, f"ONNX shape inference gave no shape for tensor {t!r}")

    def src(self, t: str, node: Node) -> str:
        """Our node producing run-time tensor ``t`` (a network input node on first use)."""
        if t in self.node_of:
            return self.node_of[t]
        if t in self.og.inputs or t in self.consts:
            name = self.uniq(t)
            self.add_op(Operator(name=name, op="input", shape=self.shape(t, node)))
            self.node_of[t] = name
            return name
        raise self.err(node, f"reads tensor {t!r}, which no node produces")

    def add_op(self, op: Operator) -> None:
        self.operators.append(op)
        self.order.append(op.name)

    def const_words(self, node: Node, skip: int = 0) -> int:
        return sum(
            int(np.prod(self.shape(i, node), dtype=np.int64))
            for i in node.inputs[skip:]
            if i and i in self.consts and int(np.prod(self.shape(i, node), dtype=np.int64)) > 1
        )

    # -- the pass ----------------------------------------------------------------------------
    def run(self) -> Network:
        nodes = fuse_patterns(self.og.nodes, self.consts, set(self.og.outputs))
        for n in nodes:
            for i in n.inputs:
                self.readers[i] = self.readers.get(i, 0) + 1
        for n in nodes:
            ins = [i for i in n.inputs if i]
            if n.op_type in ("Shape", "Size"):
                self.static.update(n.outputs)
            elif not ins or all(self.is_static(i) for i in ins):
                v = constant_value(n, self.consts, self.og.shapes)
                if v is not None:
                    self.consts[n.outputs[0]] = v
                self.static.update(o for o in n.outputs if o and o not in self.consts)
            else:
                self.convert(n)
        outputs = []
        for t in self.og.outputs:
            if t in self.node_of and self.node_of[t] not in outputs:
                outputs.append(self.node_of[t])
        net = Network(
            name=Path(self.file).stem,
            layers=tuple(self.layers),
            operators=tuple(self.operators),
            outputs=tuple(outputs),
            order=tuple(self.order),
        )
        return _apply_density_metadata(net, self.og.metadata.get("testy_model.densities"))

    def convert(self, n: Node) -> None:
        op = n.op_type
        if op in _GEMMS:
            {"Conv": self.conv, "Gemm": self.gemm, "MatMul": self.matmul}[op](n)
        elif op in _EPILOGUES and self.fold_epilogue(n):
            return
        elif op in _KINDS or op in POINTWISE or op.startswith("Reduce"):
            kind = _KINDS.get(op, "reduce" if op.startswith("Reduce") else "pointwise")
            self.operator(n, kind)
        elif op in _VIEWS or op == "Concat":
            self.view(n)
        elif op == "Split":
            self.split(n)
        elif op == "Gather":
            self.gather(n)
        elif self.skip_unknown:
            self.operator(n, "unknown")
        else:
            raise self.err(
                n,
                f"operator type {op}{' of domain ' + n.domain if n.domain else ''} cannot be "
                "priced (supported: Conv, Gemm, MatMul, element-wise, normalisation, softmax, "
                "pooling, reductions, views; see testy_model.spec.onnx_loader); "
                "--skip-unknown counts it as traffic only",
            )

    # -- operators ---------------------------------------------------------------------------
    def operator(self, n: Node, kind: str) -> None:
        runtime = [i for i in n.inputs if i and not self.is_static(i)]
        first = self.shape(runtime[0], n)
        out = self.og.shapes.get(n.outputs[0], first)
        window = 1
        if kind in ("maxpool", "avgpool"):
            window = int(math.prod(n.attrs.get("kernel_shape", [1])))
        name = self.uniq(n.name)
        fused = n.domain == FUSED
        self.add_op(
            Operator(
                name=name, op=kind,
                inputs=tuple(self.src(i, n) for i in runtime),
                shape=tuple(out) or (1,), window=window, constant_words=self.const_words(n),
                source=n.op_type + (" (fused pattern)" if fused else ""),
            )
        )  # fmt: skip
        for o in n.outputs:
            if o:
                self.node_of[o] = name

    def fold_epilogue(self, n: Node) -> bool:
        """Fold a BatchNormalization, bias or scale on a GEMM layer's own output into the layer
        when it is that output's only reader (module docstring)."""
        ins = [i for i in n.inputs if i]
        runtime = [i for i in ins if not self.is_static(i)]
        if len(runtime) != 1:
            return False
        x = runtime[0]
        prod = self.node_of.get(x)
        if prod is None or self.layer_out.get(prod) != x or self.readers.get(x, 0) != 1:
            return False
        if x in self.og.outputs:
            return False
        if n.op_type != "BatchNormalization":
            if n.op_type in ("Sub", "Div") and ins[0] != x:
                return False  # c − x or c / x is not an epilogue of x
            size = self.const_size(next(i for i in ins if i != x), n)
            out = self.shape(x, n)
            channels = {1, out[-1] if out else 1} | ({out[1]} if len(out) == 4 else set())
            if size not in (channels if n.op_type in ("Add", "Sub") else {1}):
                return False
        self.node_of[n.outputs[0]] = prod
        self.layer_out[prod] = n.outputs[0]
        return True

    def const_size(self, t: str, node: Node) -> int:
        return int(np.prod(self.shape(t, node), dtype=np.int64))

    def view(self, n: Node) -> None:
        runtime = [i for i in n.inputs if i and not self.is_static(i)]
        srcs = tuple(self.src(i, n) for i in runtime)
        out = self.shape(n.outputs[0], n)
        same = len(srcs) == 1 and math.prod(out) == math.prod(self.shape(runtime[0], n))
        if same:
            self.node_of[n.outputs[0]] = srcs[0]
            return
        name = self.uniq(n.name)
        kind = "concat" if n.op_type == "Concat" else "view"
        self.add_op(Operator(name=name, op=kind, inputs=srcs, shape=tuple(out) or (1,),
                             constant_words=self.const_words(n), source=n.op_type))  # fmt: skip
        self.node_of[n.outputs[0]] = name

    def split(self, n: Node) -> None:
        src = self.src(n.inputs[0], n)
        for k, o in enumerate(n.outputs):
            if not o:
                continue
            name = self.uniq(f"{n.name}/{k}")
            shape = tuple(self.shape(o, n)) or (1,)
            self.add_op(Operator(name=name, op="view", inputs=(src,), shape=shape, source="Split"))
            self.node_of[o] = name

    def gather(self, n: Node) -> None:
        data, idx = n.inputs[0], n.inputs[1]
        if not self.is_static(data):
            self.view(n)
            return
        out = self.shape(n.outputs[0], n)
        name = self.uniq(n.name)
        inputs = (self.src(idx, n),) if not self.is_static(idx) else ()
        self.add_op(Operator(name=name, op="gather", inputs=inputs, shape=tuple(out) or (1,),
                             constant_words=math.prod(out), source="Gather"))  # fmt: skip
        self.node_of[n.outputs[0]] = name

    # -- GEMM-like layers ----------------------------------------------------------------------
    def add_layer(self, n: Node, prob: Any, inputs: tuple[str, ...], w: Const | None,
                  transpose: bool) -> None:  # fmt: skip
        name = self.uniq(n.name)
        prob = prob.model_copy(update={"name": name})
        ref = None
        if w is not None:
            self.weights[name] = (w, transpose)
            ref = f"{self.file}:{name}"
            dens = _density(w)
            if dens is not None and prob.weight is not None:
                prob = prob.model_copy(update={"densities": {prob.weight: dens}})
        self.layers.append(Layer(name=name, problem=prob, inputs=inputs, weight_tensor=ref))
        self.order.append(name)
        self.node_of[n.outputs[0]] = name
        self.layer_out[name] = n.outputs[0]

    def weight(self, n: Node, t: str) -> Const | None:
        """A constant weight's value; None (dense, with a warning) when it is computed at load
        time by operators not folded here."""
        if t in self.consts:
            return self.consts[t]
        warnings.warn(
            f"{self.file}: node {n.name!r}: weight {t!r} is computed from constants by "
            "operators not folded here; its density is taken as dense",
            SpecWarning,
            stacklevel=2,
        )
        return None

    def conv(self, n: Node) -> None:
        x, w = n.inputs[0], n.inputs[1]
        if not self.is_static(w):
            raise self.err(n, "a convolution with a run-time weight cannot be priced")
        xs, ws, ys = self.shape(x, n), self.shape(w, n), self.shape(n.outputs[0], n)
        if len(xs) not in (3, 4):
            raise self.err(n, f"only 1-D and 2-D convolutions are supported (input {list(xs)})")
        one_d = len(xs) == 3
        strides = list(n.attrs.get("strides", [1] * (len(xs) - 2)))
        dil = list(n.attrs.get("dilations", [1] * (len(xs) - 2)))
        k = list(ws[2:])
        if one_d:
            strides, dil, k, ys = [1, *strides], [1, *dil], [1, *k], (*ys[:2], 1, ys[2])
        prob = conv2d(
            name=n.name, n=xs[0], c=xs[1], m=ws[0], p=ys[3], q=ys[2], r=k[1], s=k[0],
            stride=(strides[1], strides[0]), dilation=(dil[1], dil[0]),
            groups=int(n.attrs.get("group", 1)),
        )  # fmt: skip
        self.add_layer(n, prob, (self.src(x, n),), self.weight(n, w), False)

    def gemm(self, n: Node) -> None:
        a, b = n.inputs[0], n.inputs[1]
        ta, tb = int(n.attrs.get("transA", 0)), int(n.attrs.get("transB", 0))
        sa, sb = self.shape(a, n), self.shape(b, n)
        m_rows, k = (sa[1], sa[0]) if ta else (sa[0], sa[1])
        cols = sb[0] if tb else sb[1]
        if self.is_static(b):  # weight B' (K, cols): A-operand (cols, K)
            prob = gemm(cols, m_rows, k, name=n.name)
            self.add_layer(n, prob, (self.src(a, n),), self.weight(n, b), not tb)
        elif self.is_static(a):  # weight A' (m_rows, K)
            prob = gemm(m_rows, cols, k, name=n.name)
            self.add_layer(n, prob, (self.src(b, n),), self.weight(n, a), bool(ta))
        else:
            from testy_model.graph.zoo_builder import batched_gemm

            prob = batched_gemm(1, m_rows, cols, k, name=n.name)
            self.add_layer(n, prob, (self.src(a, n), self.src(b, n)), None, False)

    def matmul(self, n: Node) -> None:
        from testy_model.graph.zoo_builder import batched_gemm

        a, b = n.inputs[0], n.inputs[1]
        sa, sb = self.shape(a, n), self.shape(b, n)
        sa2 = (1, sa[0]) if len(sa) == 1 else sa
        sb2 = (sb[0], 1) if len(sb) == 1 else sb
        m, k, cols = sa2[-2], sa2[-1], sb2[-1]
        if self.is_static(b) and len(sb2) == 2:
            prob = gemm(cols, math.prod(sa2[:-1]), k, name=n.name)
            self.add_layer(n, prob, (self.src(a, n),), self.weight(n, b), True)
        elif self.is_static(a) and len(sa2) == 2:
            prob = gemm(m, math.prod(sb2[:-2]) * cols, k, name=n.name)
            self.add_layer(n, prob, (self.src(b, n),), self.weight(n, a), False)
        else:
            g = math.prod(np.broadcast_shapes(tuple(sa2[:-2]), tuple(sb2[:-2])))
            prob = batched_gemm(g, m, cols, k, name=n.name)
            self.add_layer(n, prob, (self.src(a, n), self.src(b, n)), None, False)


def _apply_density_metadata(net: Network, text: str | None) -> Network:
    """Replace the densities of the layers named in ``testy_model.densities`` metadata."""
    if not text:
        return net
    try:
        spec = json.loads(text)
        layers = []
        for layer in net.layers:
            if layer.name in spec:
                dens = {t: Density(**d) for t, d in spec[layer.name].items()}
                prob = layer.problem.model_copy(update={"densities": dens})
                layer = layer.model_copy(update={"problem": prob})
            layers.append(layer)
    except (ValueError, TypeError) as err:
        raise SpecError(f"bad testy_model.densities metadata: {err}") from None
    return net.model_copy(update={"layers": tuple(layers)})


def load_onnx(path: str | Path, *, skip_unknown: bool = False) -> Network:
    """The network of an ONNX model (module docstring). Raises :class:`SpecError`."""
    return _Converter(read_onnx(path), skip_unknown).run()


@lru_cache(maxsize=2)
def _weights(path: str, mtime_ns: int, size: int) -> dict[str, tuple[Const, bool]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        conv = _Converter(read_onnx(path), skip_unknown=True)
        conv.run()
    return conv.weights


def onnx_weight(path: str | Path, layer: str) -> np.ndarray:
    """The weight of GEMM layer ``layer`` of an ONNX model, as the model decomposes it: a
    convolution's (M, C/groups, kH, kW) initializer, a GEMM's (M, K) (transposed from an ONNX
    (K, M) ``MatMul``/``Gemm`` operand). The reference ``model.onnx:LAYER`` names it. A fresh
    array each call: the converted weights are cached (the last two models) and shared."""
    p = Path(path).resolve()
    if not p.is_file():
        raise SpecError("tensor file not found", file=str(path))
    st = p.stat()
    weights = _weights(str(p), st.st_mtime_ns, st.st_size)
    if layer not in weights:
        raise SpecError(
            f"no GEMM layer {layer!r} with a constant weight (have {sorted(weights)[:8]})",
            file=str(path),
        )
    w, transpose = weights[layer]
    arr = w.array() if isinstance(w, Fill) else np.array(w, copy=True)
    return arr.T if transpose else arr
