"""Operator patterns of exported ONNX graphs fused back into the operator they compute.

Exporters write some operators as chains of primitive nodes; each chain becomes one operator
(one read of its input, one write of its output, the element-wise work of the fused kind),
named after the chain's last node:

- **LayerNorm** ``ReduceMean(x) → Sub(x, ·) → Pow(·, 2)|Mul(d, d) → ReduceMean → Add(ε) → Sqrt
  → Div(d, ·)`` (or ``Mul(d, Reciprocal(·))``), then optionally ``Mul(γ)`` and ``Add(β)``;
- **RMSNorm** ``Pow(x, 2)|Mul(x, x) → ReduceMean → Add(ε) → Sqrt → Div(x, ·)`` (or
  ``Mul(x, Reciprocal(·))``, ``Mul(x, Div(1, ·))``), then optionally ``Mul(γ)``;
- **GELU** (erf form) ``Div(x, √2)|Mul(x, 1/√2) → Erf → Add(1) → Mul(x, ·) → Mul(½)``, with
  the ½ also accepted on x first or on ``1 + erf`` first;
- **SiLU** ``Sigmoid(x) → Mul(x, ·)``.

A chain is fused only when each intermediate tensor is read by the chain alone and is not a
network output. The tanh approximation of GELU is not fused (its nodes are priced one by one).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from testy_model.spec.onnx_read import Const, Fill, Node

_SQRT2 = float(np.sqrt(2.0))
#: domain of the nodes this module creates
FUSED = "testy.fused"


class _Index:
    """Producers and consumers of every tensor of a node list."""

    def __init__(self, nodes: list[Node], consts: dict[str, Const], outputs: set[str]) -> None:
        self.consts = consts
        self.outputs = outputs
        self.producer: dict[str, Node] = {}
        self.consumers: dict[str, list[Node]] = {}
        for n in nodes:
            for t in n.outputs:
                self.producer[t] = n
            for t in n.inputs:
                if t:
                    self.consumers.setdefault(t, []).append(n)

    def only(self, tensor: str, op: str | tuple[str, ...]) -> Node | None:
        """The single consumer of ``tensor`` if it has type ``op`` and the tensor is internal."""
        users = self.consumers.get(tensor, [])
        ops = (op,) if isinstance(op, str) else op
        if len(users) == 1 and tensor not in self.outputs and users[0].op_type in ops:
            return users[0]
        return None

    def scalar(self, tensor: str) -> float | None:
        """The value of a one-value constant, else None."""
        c = self.consts.get(tensor)
        if isinstance(c, Fill):
            return c.value if c.size == 1 else None
        if c is None or np.size(c) != 1:
            return None
        return float(np.asarray(c).reshape(-1)[0])

    def is_const(self, tensor: str) -> bool:
        return tensor in self.consts

    @staticmethod
    def other(node: Node, tensor: str) -> str | None:
        """The other input of a two-input node that reads ``tensor``."""
        ins = [i for i in node.inputs if i]
        if len(ins) != 2 or tensor not in ins:
            return None
        return ins[1] if ins[0] == tensor else ins[0]


def _near(v: float | None, target: float, rel: float = 1e-3) -> bool:
    return v is not None and abs(v - target) <= rel * abs(target)


def _tail_scale(ix: _Index, n: Node) -> list[Node]:
    """An optional ``Mul`` by a constant vector (γ) after ``n``: [] or [mul]."""
    m = ix.only(n.outputs[0], "Mul")
    if m is not None:
        c = ix.other(m, n.outputs[0])
        if c is not None and ix.is_const(c) and ix.scalar(c) is None:
            return [m]
    return []


def _normalise(ix: _Index, d: str, sqrt: Node) -> list[Node] | None:
    """``d / sqrt`` as ``Div(d, s)``, ``Mul(d, Reciprocal(s))`` or ``Mul(d, Div(1, s))``."""
    s = sqrt.outputs[0]
    users = ix.consumers.get(s, [])
    if len(users) != 1 or s in ix.outputs:
        return None
    u = users[0]
    if u.op_type == "Div" and u.inputs[:2] == [d, s]:
        return [u]
    if u.op_type == "Reciprocal" or (u.op_type == "Div" and _near(ix.scalar(u.inputs[0]), 1.0)):
        m = ix.only(u.outputs[0], "Mul")
        if m is not None and ix.other(m, u.outputs[0]) == d:
            return [u, m]
    return None


def _variance_chain(ix: _Index, sq: Node) -> Node | None:
    """``sq → ReduceMean → Add(ε) → Sqrt``: the Sqrt node, or None."""
    r = ix.only(sq.outputs[0], "ReduceMean")
    if r is None:
        return None
    a = ix.only(r.outputs[0], "Add")
    if a is None or ix.scalar(ix.other(a, r.outputs[0]) or "") is None:
        return None
    return ix.only(a.outputs[0], "Sqrt")


def _square_of(ix: _Index, n: Node, x: str) -> bool:
    if n.op_type == "Pow":
        return n.inputs[0] == x and _near(ix.scalar(n.inputs[1]), 2.0)
    return n.op_type == "Mul" and n.inputs[:2] == [x, x]


def _layernorm(ix: _Index, r1: Node) -> tuple[list[Node], Node] | None:
    if r1.op_type != "ReduceMean":
        return None
    x = r1.inputs[0]
    d = ix.only(r1.outputs[0], "Sub")
    if d is None or d.inputs[:2] != [x, r1.outputs[0]]:
        return None
    users = {id(u): u for u in ix.consumers.get(d.outputs[0], [])}
    sq = next((u for u in users.values() if _square_of(ix, u, d.outputs[0])), None)
    if len(users) != 2 or sq is None or d.outputs[0] in ix.outputs:
        return None
    sqrt = _variance_chain(ix, sq)
    norm = _normalise(ix, d.outputs[0], sqrt) if sqrt else None
    if sqrt is None or norm is None:
        return None
    chain = [r1, d, sq, *_between(ix, sq, sqrt), sqrt, *norm]
    consts = []
    for tail in (_tail_scale, _tail_shift):
        extra = tail(ix, chain[-1])
        if not extra:
            break
        chain += extra
        consts.append(ix.other(extra[0], chain[-2].outputs[0]) or "")
    last = chain[-1]
    return chain, Node(
        last.name, "LayerNormalization", [x, *consts], [last.outputs[0]], domain=FUSED
    )


def _tail_shift(ix: _Index, n: Node) -> list[Node]:
    """An optional ``Add`` of a constant vector (β) after ``n``."""
    a = ix.only(n.outputs[0], "Add")
    if a is not None:
        c = ix.other(a, n.outputs[0])
        if c is not None and ix.is_const(c) and ix.scalar(c) is None:
            return [a]
    return []


def _between(ix: _Index, sq: Node, sqrt: Node) -> list[Node]:
    """The ReduceMean and Add nodes between the square and the Sqrt (``_variance_chain`` found
    both before ``sqrt`` was returned)."""
    r = ix.only(sq.outputs[0], "ReduceMean")
    a = ix.only(r.outputs[0], "Add") if r is not None else None
    assert r is not None and a is not None, "_variance_chain matched ReduceMean and Add"
    return [r, a]


def _rmsnorm(ix: _Index, sq: Node) -> tuple[list[Node], Node] | None:
    if sq.op_type not in ("Pow", "Mul"):
        return None
    x = sq.inputs[0]
    if not _square_of(ix, sq, x) or x in ix.consts:
        return None
    sqrt = _variance_chain(ix, sq)
    norm = _normalise(ix, x, sqrt) if sqrt else None
    if sqrt is None or norm is None:
        return None
    chain = [sq, *_between(ix, sq, sqrt), sqrt, *norm]
    extra = _tail_scale(ix, chain[-1])
    consts = [ix.other(extra[0], chain[-1].outputs[0]) or ""] if extra else []
    chain += extra
    last = chain[-1]
    return chain, Node(last.name, "RMSNormalization", [x, *consts], [last.outputs[0]], domain=FUSED)


def _gelu(ix: _Index, e: Node) -> tuple[list[Node], Node] | None:
    if e.op_type != "Erf":
        return None
    p1 = ix.producer.get(e.inputs[0])
    if p1 is None or ix.only(p1.outputs[0], "Erf") is not e:
        return None
    if p1.op_type == "Div" and _near(ix.scalar(p1.inputs[1]), _SQRT2):
        x = p1.inputs[0]
    elif p1.op_type == "Mul":
        x = next((i for i in p1.inputs if _near(ix.scalar(ix.other(p1, i) or ""), 1 / _SQRT2)), "")
    else:
        return None
    a = ix.only(e.outputs[0], "Add")
    if not x or a is None or not _near(ix.scalar(ix.other(a, e.outputs[0]) or ""), 1.0):
        return None
    m1 = ix.only(a.outputs[0], "Mul")
    if m1 is None:
        return None
    o = ix.other(m1, a.outputs[0]) or ""
    if o == x:  # x·(1 + erf) then ·½
        m2 = ix.only(m1.outputs[0], "Mul")
        if m2 is None or not _near(ix.scalar(ix.other(m2, m1.outputs[0]) or ""), 0.5):
            return None
        chain = [p1, e, a, m1, m2]
    elif _near(ix.scalar(o), 0.5):  # ½(1 + erf) then ·x
        m2 = ix.only(m1.outputs[0], "Mul")
        if m2 is None or ix.other(m2, m1.outputs[0]) != x:
            return None
        chain = [p1, e, a, m1, m2]
    else:  # (½x)·(1 + erf)
        h = ix.producer.get(o)
        if h is None or h.op_type != "Mul" or ix.only(o, "Mul") is not m1:
            return None
        if ix.other(h, x) is None or not _near(ix.scalar(ix.other(h, x) or ""), 0.5):
            return None
        chain = [h, p1, e, a, m1]
    last = chain[-1]
    return chain, Node(last.name, "Gelu", [x], [last.outputs[0]], domain=FUSED)


def _silu(ix: _Index, s: Node) -> tuple[list[Node], Node] | None:
    if s.op_type != "Sigmoid":
        return None
    x = s.inputs[0]
    m = ix.only(s.outputs[0], "Mul")
    if m is None or ix.other(m, s.outputs[0]) != x:
        return None
    return [s, m], Node(m.name, "Silu", [x], [m.outputs[0]], domain=FUSED)


Matcher = Callable[[_Index, Node], "tuple[list[Node], Node] | None"]
MATCHERS: tuple[Matcher, ...] = (_layernorm, _rmsnorm, _gelu, _silu)


def fuse_patterns(nodes: list[Node], consts: dict[str, Const], outputs: set[str]) -> list[Node]:
    """``nodes`` with every pattern of the module docstring replaced by its fused node (placed
    where the chain's last node was). Matchers run in the order of :data:`MATCHERS`."""
    for match in MATCHERS:
        ix = _Index(nodes, consts, outputs)
        gone: set[int] = set()
        fused: dict[int, Node] = {}
        for n in nodes:
            if id(n) in gone:
                continue
            found = match(ix, n)
            if found is None or any(id(c) in gone for c in found[0]):
                continue
            chain, new = found
            gone.update(id(c) for c in chain)
            fused[id(chain[-1])] = new
        nodes = [fused.get(id(n), n) for n in nodes if id(n) not in gone or id(n) in fused]
    return nodes
