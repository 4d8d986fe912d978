"""A network graph written as an ONNX model (the zoo's networks, or any graph built of the
operator kinds below), so that ``spec.onnx_loader`` reads back the same layers and operators.

Layout conventions of the written model: convolutions run on NCHW tensors; linear layers on
token-major (tokens, features) matrices (``Gemm`` with ``transB = 1``); attention products on
(G, M, K) × (G, K, N) ``MatMul`` operands, with the head split/merge (and a grouped-query
``Expand``) written as ``Reshape``/``Transpose`` between them. Whatever else a consumer needs is
a ``Reshape`` (same number of values) or a ``Slice`` of the first rows (fewer values: a pooler
or classifier head reading the class token). These are all free views for the reader.

Weights are ``ConstantOfShape`` tensors of ones (shapes only: the zoo has no weight values) and
every layer's densities travel in the ``testy_model.densities`` metadata property, which the
reader applies in place of densities measured on weights. Operator kinds: ``input``, ``add``,
``sub``, ``mul``, ``div``, ``relu``, ``sigmoid``, ``tanh``, ``gelu`` (``Gelu`` at opset >= 20,
else the Erf pattern), ``silu`` (the ``x·sigmoid(x)`` pattern), ``softmax``, ``layernorm``
(``LayerNormalization``, opset >= 17), ``rmsnorm`` (the ReduceMean/Sqrt/Div pattern),
``maxpool``, ``avgpool``, ``globalavgpool``, ``view``, ``concat``; constant operands
(``constant_words``) are initializers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from testy_model.errors import SpecError
from testy_model.graph.dataflow import as_graph, execution_order
from testy_model.spec.workload import Layer, Network, Operator

Shape = tuple[int, ...]


class _Writer:
    """Accumulates nodes, initializers and the ONNX tensor (name, shape) of every graph node."""

    def __init__(self, g: nx.DiGraph, opset: int) -> None:
        import onnx

        self.onnx = onnx
        self.h = onnx.helper
        self.g = g
        self.opset = opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.inputs: list[Any] = []
        self.out: dict[str, tuple[str, Shape]] = {}
        self.count = 0

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}/t{self.count}"

    def node(self, op: str, ins: list[str], name: str, out: str | None = None, **attrs: Any) -> str:
        out = out or self.fresh(name)
        self.nodes.append(self.h.make_node(op, ins, [out], name=name, **attrs))
        return out

    def const(self, base: str, values: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(self.onnx.numpy_helper.from_array(values, name))
        return name

    def ints(self, base: str, values: Shape | list[int]) -> str:
        return self.const(base, np.array(list(values), dtype=np.int64))

    def scalar(self, base: str, v: float) -> str:
        return self.const(base, np.array(v, dtype=np.float32))

    def ones(self, base: str, shape: Shape) -> str:
        """A weight: ``ConstantOfShape(shape)`` of 1.0."""
        value = self.onnx.numpy_helper.from_array(np.array([1.0], dtype=np.float32))
        return self.node("ConstantOfShape", [self.ints(base, shape)], f"{base}/weight", value=value)

    def reshape(self, t: str, shape: Shape, base: str) -> str:
        return self.node("Reshape", [t, self.ints(base, shape)], self.fresh(base))

    def transpose(self, t: str, perm: list[int], base: str) -> str:
        return self.node("Transpose", [t], self.fresh(base), perm=perm)

    # -- layout adaptation -------------------------------------------------------------------
    def adapt(
        self, src: str, target: Shape, base: str, seq_last: bool = False, role: str = "B"
    ) -> str:
        """The ONNX tensor of graph node ``src`` in the ``target`` layout (module docstring).
        ``seq_last``: a (G, K, N) attention operand whose N is the token axis; ``role``: the
        attention operand (``A``: queries, ``B``: keys or values)."""
        t, shape = self.out[src]
        if shape == target:
            return t
        words, want = math.prod(shape), math.prod(target)
        if len(target) == 3 and len(shape) == 2:
            return self.split_heads(t, shape, target, base, seq_last, role)
        if len(target) == 2 and len(shape) == 3 and words == want:
            g, s, e = shape
            b = target[0] // s
            t = self.reshape(t, (b, g // b, s, e), base)
            t = self.transpose(t, [0, 2, 1, 3], base)
            return self.reshape(t, target, base)
        if len(shape) == 4 and len(target) == 2 and words == want and target[1] == shape[1]:
            n, c, hh, ww = shape
            t = self.reshape(t, (n, c, hh * ww), base)
            t = self.transpose(t, [0, 2, 1], base)
            return self.reshape(t, target, base)
        if words == want:
            return self.reshape(t, target, base)
        if want < words and len(target) == 2 and words % target[1] == 0:
            t = self.reshape(t, (words // target[1], target[1]), base)
            return self.node("Slice", [t, self.ints(base, [0]), self.ints(base, [target[0]]),
                                       self.ints(base, [0])], self.fresh(base))  # fmt: skip
        raise SpecError(f"cannot export: {src!r} ({list(shape)}) feeds {base!r} as {list(target)}")

    def split_heads(
        self, t: str, shape: Shape, target: Shape, base: str, seq_last: bool, role: str = "B"
    ) -> str:
        """(T, F) token-major → (G, S, e) or, with ``seq_last``, (G, e, S); heads = G / batch,
        repeated (grouped-query attention) when F holds fewer heads."""
        tokens, feat = shape
        g = target[0]
        s, e = (target[2], target[1]) if seq_last else (target[1], target[2])
        b = tokens // s
        heads, kv = g // b, feat // e
        if kv == 3 * heads:  # a fused QKV projection: q, k or v is a third of its columns
            part = 0 if role == "A" else (1 if seq_last else 2)
            cols = feat // 3
            t = self.node("Slice", [t, self.ints(base, [part * cols]),
                                    self.ints(base, [(part + 1) * cols]), self.ints(base, [1])],
                          self.fresh(base))  # fmt: skip
            feat, kv = cols, heads
        if b * s != tokens or kv * e != feat or heads % kv:
            raise SpecError(f"cannot export {base!r}: {list(shape)} is not {g}×{s}×{e} heads")
        t = self.reshape(t, (b, s, kv, 1, e), base)
        if heads != kv:
            t = self.node(
                "Expand", [t, self.ints(base, (b, s, kv, heads // kv, e))], self.fresh(base)
            )
        t = self.reshape(t, (b, s, heads, e), base)
        t = self.transpose(t, [0, 2, 3, 1] if seq_last else [0, 2, 1, 3], base)
        return self.reshape(t, target, base)

    # -- nodes -------------------------------------------------------------------------------
    def layer(self, layer: Layer, srcs: list[str]) -> None:
        prob = layer.problem
        b = prob.bounds
        name = layer.name
        if prob.shape_name == "conv2D":
            x, xs = self.out[srcs[0]]
            if len(xs) != 4:
                raise SpecError(f"cannot export conv {name!r}: input {list(xs)} is not NCHW")
            g = b.get("G", 1)
            cf = prob.coefficients
            sh, sw = cf["Hstride"], cf["Wstride"]
            dh, dw = cf["Hdilation"], cf["Wdilation"]
            pads = [_pads(xs[2], b["Q"], b["S"], sh, dh), _pads(xs[3], b["P"], b["R"], sw, dw)]
            w = self.ones(name, (b["M"] * g, b["C"], b["S"], b["R"]))
            onnx_pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
            self.node("Conv", [x, w], name, out=name, group=g, strides=[sh, sw],
                      dilations=[dh, dw], pads=onnx_pads)  # fmt: skip
            self.out[name] = (name, (b["N"], b["M"] * g, b["Q"], b["P"]))
        elif prob.shape_name == "gemm_ABZ":
            x = self.adapt(srcs[0], (b["N"], b["K"]), name)
            w = self.ones(name, (b["M"], b["K"]))
            self.node("Gemm", [x, w], name, out=name, transB=1)
            self.out[name] = (name, (b["N"], b["M"]))
        elif prob.shape_name == "bgemm_ABZ":
            a = self.adapt(srcs[0], (b["G"], b["M"], b["K"]), name, role="A")
            bb = self.adapt(srcs[1], (b["G"], b["K"], b["N"]), name,
                            seq_last=_keys_last(self.out[srcs[1]][1], b["N"], b["K"]))  # fmt: skip
            self.node("MatMul", [a, bb], name, out=name)
            self.out[name] = (name, (b["G"], b["M"], b["N"]))
        else:
            raise SpecError(f"cannot export layer {name!r} of shape {prob.shape_name!r}")

    def operator(self, op: Operator, srcs: list[str]) -> None:
        name = op.name
        if op.op == "input":
            self.inputs.append(self.h.make_tensor_value_info(name, self.onnx.TensorProto.FLOAT,
                                                             list(op.shape)))  # fmt: skip
            self.out[name] = (name, op.shape)
            return
        if op.op in ("view", "concat"):
            self.view(op, srcs)
            return
        x, xs = self.out[srcs[0]]
        ins = [x] + [self.adapt(s, xs, name) for s in srcs[1:]]
        emit = _EMIT.get(op.op)
        if emit is None:
            raise SpecError(f"cannot export operator {name!r} of kind {op.op!r}")
        out_shape = emit(self, op, ins, xs)
        self.out[name] = (name, out_shape)

    def view(self, op: Operator, srcs: list[str]) -> None:
        if op.op == "concat" and op.constant_words:
            x, xs = self.out[srcs[0]]
            feat = xs[-1]
            rows = (op.words - math.prod(xs)) // feat
            c = self.const(op.name, np.zeros((rows, feat), dtype=np.float32))
            t = self.reshape(x, (math.prod(xs) // feat, feat), op.name)
            self.node("Concat", [c, t], op.name, out=op.name, axis=0)
            self.out[op.name] = (op.name, (rows + math.prod(xs) // feat, feat))
            return
        if op.op == "concat":
            ins = [self.out[s][0] for s in srcs]
            self.node("Concat", ins, op.name, out=op.name, axis=0)
            self.out[op.name] = (op.name, (sum(math.prod(self.out[s][1]) for s in srcs),))
            return
        t = self.adapt(srcs[0], op.shape, op.name)
        self.node("Identity", [t], op.name, out=op.name)
        self.out[op.name] = (op.name, op.shape)


def _keys_last(shape: Shape, n: int, k: int) -> bool:
    """Whether a token-major (T, F) tensor feeding an attention product's B operand (G, K, N)
    puts the tokens on N (keys of ``Q·Kᵀ``: N = tokens, K = head_dim) rather than on K (values of
    ``A·V``): tokens divisible by N and features by K. Either layout has the same values when
    both fit (N = K)."""
    if len(shape) != 2:
        return False
    tokens, feat = shape
    return tokens % n == 0 and feat % k == 0


def _pads(size: int, out: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(begin, end) padding so ``floor((size + pads − dilation·(kernel−1) − 1)/stride) + 1 ==
    out``: the missing part of the footprint ``(out−1)·stride + dilation·(kernel−1) + 1``."""
    need = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - size)
    return need // 2, need - need // 2


def _unary(onnx_op: str) -> Any:
    def emit(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
        w.node(onnx_op, ins[:1], op.name, out=op.name)
        return xs

    return emit


def _binary(onnx_op: str) -> Any:
    def emit(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
        if len(ins) == 2:
            w.node(onnx_op, ins, op.name, out=op.name)
            return xs
        cw = op.constant_words  # x (op) constant, broadcast over rows of cw values
        t = w.reshape(ins[0], (math.prod(xs) // cw, cw), op.name)
        c = w.const(op.name, np.zeros(cw, dtype=np.float32))
        y = w.node(onnx_op, [t, c], w.fresh(op.name))
        w.node("Reshape", [y, w.ints(op.name, xs)], op.name, out=op.name)
        return xs

    return emit


def _gelu(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
    if w.opset >= 20:
        w.node("Gelu", ins[:1], op.name, out=op.name)
        return xs
    x, n = ins[0], op.name
    t = w.node("Div", [x, w.scalar(n, math.sqrt(2.0))], f"{n}/div")
    t = w.node("Erf", [t], f"{n}/erf")
    t = w.node("Add", [t, w.scalar(n, 1.0)], f"{n}/add")
    t = w.node("Mul", [x, t], f"{n}/mul")
    w.node("Mul", [t, w.scalar(n, 0.5)], n, out=n)
    return xs


def _silu(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
    s = w.node("Sigmoid", ins[:1], f"{op.name}/sigmoid")
    w.node("Mul", [ins[0], s], op.name, out=op.name)
    return xs


def _softmax(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
    w.node("Softmax", ins[:1], op.name, out=op.name, axis=-1)
    return xs


def _layernorm(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
    if w.opset < 17 or op.constant_words != 2 * xs[-1]:
        raise SpecError(f"cannot export layernorm {op.name!r}: needs opset >= 17 and γ, β")
    g = w.const(op.name, np.ones(xs[-1], dtype=np.float32))
    b = w.const(op.name, np.zeros(xs[-1], dtype=np.float32))
    w.node("LayerNormalization", [ins[0], g, b], op.name, out=op.name, axis=-1)
    return xs


def _rmsnorm(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
    if op.constant_words != xs[-1]:
        raise SpecError(f"cannot export rmsnorm {op.name!r}: γ must have {xs[-1]} values")
    x, n = ins[0], op.name
    t = w.node("Pow", [x, w.scalar(n, 2.0)], f"{n}/pow")
    if w.opset >= 18:
        t = w.node("ReduceMean", [t, w.ints(n, [-1])], f"{n}/mean")
    else:
        t = w.node("ReduceMean", [t], f"{n}/mean", axes=[-1])
    t = w.node("Add", [t, w.scalar(n, 1e-6)], f"{n}/eps")
    t = w.node("Sqrt", [t], f"{n}/sqrt")
    t = w.node("Div", [x, t], f"{n}/div")
    w.node("Mul", [t, w.const(n, np.ones(xs[-1], dtype=np.float32))], n, out=n)
    return xs


def _pool(onnx_op: str) -> Any:
    def emit(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
        k = math.isqrt(op.window)
        if k * k != op.window or len(xs) != 4 or len(op.shape) != 4:
            raise SpecError(f"cannot export pool {op.name!r}: needs a square window on NCHW")
        hs = [xs[2] // op.shape[2] if op.shape[2] > 1 else 1, xs[3] // op.shape[3]]
        pads = [_pads(xs[2 + i], op.shape[2 + i], k, max(hs[i], 1), 1) for i in range(2)]
        w.node(onnx_op, ins[:1], op.name, out=op.name, kernel_shape=[k, k], strides=hs,
               pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]])  # fmt: skip
        return op.shape

    return emit


def _global_pool(w: _Writer, op: Operator, ins: list[str], xs: Shape) -> Shape:
    w.node("GlobalAveragePool", ins[:1], op.name, out=op.name)
    return (*xs[:2], 1, 1)


_EMIT: dict[str, Any] = {
    "add": _binary("Add"),
    "sub": _binary("Sub"),
    "mul": _binary("Mul"),
    "div": _binary("Div"),
    "relu": _unary("Relu"),
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "gelu": _gelu,
    "silu": _silu,
    "softmax": _softmax,
    "layernorm": _layernorm,
    "rmsnorm": _rmsnorm,
    "maxpool": _pool("MaxPool"),
    "avgpool": _pool("AveragePool"),
    "globalavgpool": _global_pool,
}


def _densities(net: Network) -> str:
    return json.dumps(
        {
            x.name: {t: d.model_dump(exclude_none=True) for t, d in x.problem.densities.items()}
            for x in net.layers
            if x.problem.densities
        },
        sort_keys=True,
    )


def export_onnx(network: Network | nx.DiGraph, path: str | Path | None = None, *,
                opset: int = 17) -> Any:  # fmt: skip
    """The ONNX model of ``network`` (module docstring), checked and shape-inferred; written to
    ``path`` when given. Raises :class:`SpecError` for an operator it cannot write."""
    import onnx

    g = as_graph(network)
    net: Network = g.graph["network"]
    w = _Writer(g, opset)
    for n in execution_order(g):
        d = g.nodes[n]
        srcs = [u for u in _operand_sources(g, n)]
        if d["kind"] == "gemm":
            w.layer(d["layer"], srcs)
        else:
            w.operator(d["operator"], srcs)
    outs = [n for n in execution_order(g) if g.nodes[n]["output"]]
    outputs = [
        onnx.helper.make_tensor_value_info(w.out[n][0], onnx.TensorProto.FLOAT, list(w.out[n][1]))
        for n in outs
    ]
    graph = onnx.helper.make_graph(w.nodes, net.name, w.inputs, outputs, w.inits)
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="testy_model"
    )
    onnx.helper.set_model_props(model, {"testy_model.densities": _densities(net)})
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save_model(model, str(path))
    return model


def _operand_sources(g: nx.DiGraph, n: str) -> list[str]:
    """The producers of ``n``'s operands in operand order (``Layer.inputs``/``Operator.inputs``;
    a chain's layers read the previous node)."""
    d = g.nodes[n]
    spec = d["layer"] if d["kind"] == "gemm" else d["operator"]
    if spec.inputs is not None:
        return list(spec.inputs)
    return [u for u in g.predecessors(n) for _ in g.edges[u, n]["operands"]]
