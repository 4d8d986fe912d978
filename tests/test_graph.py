"""The dataflow graph: term GEMMs, accumulation, TASD-unit nodes and edge attributes."""

from __future__ import annotations

import networkx as nx
import pytest

from testy_model.graph import build_graph, draw_graph, tensor_shape, term_nodes
from testy_model.spec import (
    Architecture,
    ComputeUnit,
    Density,
    Layer,
    Network,
    OperandSparsity,
    Operator,
    SparsitySupport,
    StorageLevel,
    TasdUnit,
    conv2d,
    gemm,
)

ARCH = Architecture(
    name="g",
    levels=(
        StorageLevel(name="DRAM", kind="DRAM", width=8, datawidth=8, read_energy=1, write_energy=1),
    ),
    compute=ComputeUnit(instances=1),
    sparsity=SparsitySupport(
        A=OperandSparsity(patterns=("2:4",)), B=OperandSparsity(patterns=("2:8",))
    ),
    tasd_unit=TasdUnit(),
)
NET = Network(
    name="two",
    layers=(
        Layer(name="fc1", problem=gemm(64, 16, 128)),
        Layer(
            name="fc2",
            problem=gemm(32, 16, 64, densities={"B": Density(kind="bernoulli", density=0.5)}),
        ),
    ),
)


def test_dense_plan_gives_one_gemm_per_layer() -> None:
    g = build_graph(NET, None, ARCH)
    assert [g.nodes[n]["layer"] for n in term_nodes(g)] == ["fc1", "fc2"]
    assert not [n for n, d in g.nodes(data=True) if d["kind"] in ("accumulate", "tasd_unit")]
    # chain input -> fc1 GEMM -> fc2 GEMM
    assert g.has_edge("input", "fc1/W1A1") and g.has_edge("fc1/W1A1", "fc2/W1A1")
    assert nx.is_directed_acyclic_graph(g)


def test_tasd_plan_expands_terms_accumulation_and_tasd_unit() -> None:
    # fc2: weights 2:8+1:8 (2 terms) × activations 2:8+2:8 (2 terms) = 4 term GEMMs, one
    # accumulation with 4 inputs, one TASD unit on fc1's output (fc1 is W=2:8+1:8, A dense):
    # the unit sits on the producer's output, so it is named after fc1 and feeds fc2's terms.
    g = build_graph(NET, "W=2:8+1:8;fc2:A=2:8+2:8", ARCH)
    assert len(term_nodes(g, "fc1")) == 2 and len(term_nodes(g, "fc2")) == 4
    assert g.nodes["fc2/acc"]["terms"] == 4
    assert g.nodes["fc1/tasd"]["kind"] == "tasd_unit"
    assert g.nodes["fc1/tasd"]["consumers"] == ["fc2"]
    assert g.has_edge("fc1/acc", "fc1/tasd") and g.has_edge("fc1/tasd", "fc2/W2A2")
    # TASD unit examines every activation value of fc2: B is N×K = 16·64 = 1024 values.
    assert g.nodes["fc1/tasd"]["values"] == 1024
    e = g.edges["fc2/weights", "fc2/W1A2"]
    # weight term 1 is 2:8 on a dense weight: kept density 2/8 = 0.25, 3 metadata bits.
    assert e["tensor"] == "A" and e["shape"] == (32, 64) and e["word_bits"] == 8
    assert e["density"] == pytest.approx(0.25) and e["format"] == "2:8+3b"
    # activation term 1 (2:8) of a Bernoulli(0.5) tensor keeps E[min(X,2)]/8, X~Bin(8, 0.5):
    # P(0)=1/256, P(1)=8/256, P(>=2)=247/256 -> (8 + 2·247)/256/8 = 502/2048 = 0.2451.
    a = g.edges["fc1/tasd", "fc2/W1A1"]
    assert a["density"] == pytest.approx(502 / 2048)
    # Work of W1·A1: 2:8 fits 2:4 on A (1/2) and 2:8 on B (1/4) -> 1/8 of the dense work.
    assert g.nodes["fc2/W1A1"]["work"] == pytest.approx(0.125)
    assert g.edges["fc2/W2A1", "fc2/acc"]["tensor"] == "Z"


def test_shapes_of_a_strided_convolution() -> None:
    # Inputs rank spans (P−1)·stride + (R−1) + 1 = 111·2 + 2 + 1 = 225 (no im2col).
    p = conv2d(c=3, m=32, p=112, q=112, r=3, s=3, stride=2)
    assert tensor_shape(p, "Inputs") == (1, 3, 225, 225)
    assert tensor_shape(p, "Weights") == (3, 32, 3, 3)


def test_draw_graph_returns_a_figure() -> None:
    fig = draw_graph(build_graph(NET, "W=2:8+1:8", ARCH))
    assert len(fig.axes) == 1 and fig.axes[0].collections


def test_one_tasd_unit_on_a_tensor_feeds_every_consumer_with_the_same_series() -> None:
    # x feeds q, k and v (three GEMMs); with activations 2:8 everywhere, one TASD unit on x
    # decomposes it once for the three consumers (the unit sits on the producer's output).
    x = Operator(name="x", op="input", shape=(16, 64))
    layers = tuple(Layer(name=n, problem=gemm(64, 16, 64), inputs=("x",)) for n in ("q", "k", "v"))
    net = Network(name="qkv", layers=layers, operators=(x,))
    g = build_graph(net, "A=2:8", ARCH)
    units = [n for n, d in g.nodes(data=True) if d["kind"] == "tasd_unit"]
    assert units == ["x/tasd"]
    assert g.nodes["x/tasd"]["consumers"] == ["q", "k", "v"]
    assert sorted(g.successors("x/tasd")) == ["k/W1A1", "q/W1A1", "v/W1A1"]
    # the operator graph underneath: input -> three GEMMs
    assert g.nodes["x"]["kind"] == "input" and g.has_edge("x", "x/tasd")
