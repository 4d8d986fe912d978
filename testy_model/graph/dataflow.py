"""Networks as dataflow graphs: the operators and the tensors between them (``networkx``).

:func:`network_graph` turns a :class:`~testy_model.spec.workload.Network` into a
``networkx.DiGraph`` whose nodes are its operators and whose edges are the tensors between them.

Graph attributes: ``name`` (network name), ``network`` (the :class:`Network`).

Node attributes (key = the layer or operator name):

- ``kind``: ``"input"`` (a network input, in DRAM), ``"gemm"`` (a GEMM-like layer: convolution,
  linear layer, batched attention product), ``"elementwise"`` (every other priced operator:
  add, mul, activations, softmax, norms, pooling, reductions, gathers), ``"view"`` (reshape,
  transpose, flatten, squeeze, slice, expand, identity, concat: free, its consumers read its
  producers' tensors) or ``"unknown"`` (counted as traffic only);
- ``op``: the problem's ``shape_name`` for GEMMs (``conv2D``, ``gemm_ABZ``, ``bgemm_ABZ``), the
  operator kind otherwise (``add``, ``relu``, ...);
- ``layer`` (GEMMs) or ``operator`` (the others): the spec object;
- ``shape``: the output tensor's shape, ``words``: its values (Π shape);
- ``order``: execution position (0, 1, ...); ``output``: True when the tensor leaves the network.

Edge ``u → v`` attributes: ``operands`` (the names of ``v``'s operands that read ``u``'s tensor:
``Inputs``/``A``/``B`` of a GEMM, ``in0``, ``in1``, ... of an operator; a tuple because one
tensor may feed two operands), ``words`` (values of ``u``'s tensor).

A network with no operators whose layers name no inputs is a **chain**: an ``input`` node (shape
of the first layer's run-time operand) feeds the first layer, and every layer the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from testy_model.errors import SpecError
from testy_model.spec.workload import Layer, Network, Operator, Problem

#: Operator kinds that move no data of their own (consumers read their producers' tensors).
VIEW_OPS = frozenset({"view", "concat"})


def tensor_shape(problem: Problem, tensor: str) -> tuple[int, ...]:
    """Extent of each rank of ``tensor`` over the full problem (``Problem.shape_of``)."""
    return problem.shape_of(tensor)


def node_kind(op: str) -> str:
    """Node ``kind`` of an operator kind (module docstring)."""
    if op in ("input", "unknown"):
        return op
    return "view" if op in VIEW_OPS else "elementwise"


def _chain_input_name(net: Network) -> str:
    names = {x.name for x in net.layers}
    name = "input"
    while name in names:
        name += "_"
    return name


def _nodes(net: Network) -> tuple[list[Layer | Operator], dict[str, tuple[str, ...]]]:
    """All nodes (operators first when the network is a chain: its implicit input) and the
    producers each one reads."""
    inputs: dict[str, tuple[str, ...]] = {}
    nodes: list[Layer | Operator] = []
    if not net.is_graph and net.layers:
        first = net.layers[0]
        src = Operator(
            name=_chain_input_name(net),
            op="input",
            shape=tensor_shape(first.problem, first.operands[0]),
        )
        nodes.append(src)
        inputs[src.name] = ()
    prev = nodes[0].name if nodes else None
    for layer in net.layers:
        if layer.inputs is not None:
            inputs[layer.name] = layer.inputs
        elif prev is None:
            raise SpecError(f"layer {layer.name!r} names no inputs and has no previous layer")
        else:
            inputs[layer.name] = (prev,) * len(layer.operands)
        prev = layer.name
        nodes.append(layer)
    for op in net.operators:
        inputs[op.name] = op.inputs
        nodes.append(op)
    return nodes, inputs


def _order(net: Network, g: nx.DiGraph, declared: list[str]) -> list[str]:
    """The network's ``order`` when given (checked to be topological), else the lexicographic
    topological order by declaration (inputs, then layers, then operators)."""
    if net.order:
        pos = {n: i for i, n in enumerate(net.order)}
        for u, v in g.edges:
            if pos[u] >= pos[v]:
                raise SpecError(f"network {net.name!r}: order runs {v!r} before its input {u!r}")
        return list(net.order)
    rank = {n: i for i, n in enumerate(declared)}
    try:
        return list(nx.lexicographical_topological_sort(g, key=rank.__getitem__))
    except nx.NetworkXUnfeasible:
        cycle = [u for u, _ in nx.find_cycle(g)]
        raise SpecError(f"network {net.name!r} has a cycle through {cycle}") from None


def network_graph(net: Network) -> nx.DiGraph:
    """The dataflow graph of ``net`` (schema in the module docstring).

    Raises:
        SpecError: a cycle, or an ``order`` that runs a node before one of its inputs.
    """
    nodes, inputs = _nodes(net)
    g: nx.DiGraph[str] = nx.DiGraph(name=net.name, network=net)
    declared: list[Layer | Operator] = [
        n for n in nodes if isinstance(n, Operator) and n.op == "input"
    ]
    declared += [n for n in nodes if not (isinstance(n, Operator) and n.op == "input")]
    for node in declared:
        if isinstance(node, Layer):
            prob = node.problem
            shape = tensor_shape(prob, prob.output)
            g.add_node(node.name, kind="gemm", op=prob.shape_name, layer=node, shape=shape)
        else:
            g.add_node(node.name, kind=node_kind(node.op), op=node.op, operator=node,
                       shape=node.shape)  # fmt: skip
        g.nodes[node.name]["words"] = _prod(g.nodes[node.name]["shape"])
    for node in declared:
        names = node.operands if isinstance(node, Layer) else _op_operands(node)
        for operand, src in zip(names, inputs[node.name], strict=True):
            if g.has_edge(src, node.name):
                g.edges[src, node.name]["operands"] += (operand,)
            else:
                g.add_edge(src, node.name, operands=(operand,), words=g.nodes[src]["words"])
    order = _order(net, g, [n.name for n in declared])
    for i, n in enumerate(order):
        g.nodes[n]["order"] = i
    outs = set(net.outputs) or {n for n in g if g.out_degree(n) == 0}
    for n in g:
        g.nodes[n]["output"] = False
    for n in outs:
        for src, _ in sources(g, n):
            g.nodes[src]["output"] = g.nodes[src]["kind"] != "input"
    return g


def _op_operands(op: Operator) -> tuple[str, ...]:
    return tuple(f"in{i}" for i in range(len(op.inputs)))


def _prod(shape: Iterable[int]) -> int:
    out = 1
    for x in shape:
        out *= int(x)
    return out


def execution_order(g: nx.DiGraph) -> list[str]:
    """Node names sorted by their ``order`` attribute (memoised per graph object)."""
    return list(_memo(g, "order", lambda: sorted(g, key=lambda n: g.nodes[n]["order"])))


#: identity-keyed memo of derived data: (graph, what) -> (graph, value); holds references to its
#: keys' graphs so an identity cannot be reused while cached; cleared when full.
_DERIVED: dict[tuple[int, str], tuple[object, object]] = {}
_DERIVED_MAX = 256


def _memo(key_obj: object, what: str, make: Callable[[], Any]) -> Any:
    key = (id(key_obj), what)
    hit = _DERIVED.get(key)
    if hit is not None and hit[0] is key_obj:
        return hit[1]
    value = make()
    if len(_DERIVED) >= _DERIVED_MAX:
        _DERIVED.clear()
    _DERIVED[key] = (key_obj, value)
    return value


def sources(g: nx.DiGraph, node: str) -> list[tuple[str, float]]:
    """The real tensors (outputs of non-view nodes) that ``node``'s output consists of, with
    their shares of its values (Σ shares = 1): ``[(node, 1.0)]`` for a non-view node; through a
    view, its producer's; through a concat, each input's in proportion to its values."""
    d = g.nodes[node]
    if d["kind"] != "view":
        return [(node, 1.0)]
    preds = [(u, len(g.edges[u, node]["operands"])) for u in g.predecessors(node)]
    if not preds:
        return []
    total = sum(g.nodes[u]["words"] * k for u, k in preds)
    out: dict[str, float] = {}
    for u, k in preds:
        share = g.nodes[u]["words"] * k / total if total else 1.0 / len(preds)
        for s, f in sources(g, u):
            out[s] = out.get(s, 0.0) + share * f
    return list(out.items())


@dataclass(frozen=True)
class OperandRead:
    """One operand of a priced node reading (part of) a real tensor.

    ``consumer`` reads operand ``operand`` of which ``share`` (0..1) of the values come from the
    output of ``producer``; ``words`` = that share of the values of the tensor the consumer reads
    (its direct input, a view's values when it reads through a view)."""

    consumer: str
    operand: str
    producer: str
    share: float
    words: float


def operand_reads(g: nx.DiGraph) -> list[OperandRead]:
    """Every (consumer operand, real producer) pair, views resolved, in execution order of the
    consumers; consumers are the non-view nodes (memoised per graph object: do not edit a graph
    after pricing it)."""
    return list(_memo(g, "reads", lambda: _operand_reads(g)))


def _operand_reads(g: nx.DiGraph) -> list[OperandRead]:
    out = []
    for v in execution_order(g):
        if g.nodes[v]["kind"] == "view":
            continue
        for u in sorted(g.predecessors(v), key=lambda x: g.nodes[x]["order"]):
            for operand in g.edges[u, v]["operands"]:
                for src, share in sources(g, u):
                    out.append(OperandRead(v, operand, src, share, share * g.nodes[u]["words"]))
    return out


def gemm_layers(g: nx.DiGraph) -> list[Layer]:
    """The GEMM layers of ``g`` in execution order."""
    return [g.nodes[n]["layer"] for n in execution_order(g) if g.nodes[n]["kind"] == "gemm"]


def as_graph(network: Network | nx.DiGraph) -> nx.DiGraph:
    """``network`` as a dataflow graph (a graph is returned unchanged; a network's graph is
    memoised per network object, which is frozen)."""
    if isinstance(network, nx.DiGraph):
        return network
    return _memo(network, "graph", lambda: network_graph(network))
