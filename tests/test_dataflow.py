"""Networks as dataflow graphs: the zoo's topology, between-layer traffic against hand counts,
the fusion policy, non-GEMM operators, the shared TASD unit, YAML graphs and the report."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from testy_model.errors import SpecError
from testy_model.graph.dataflow import network_graph, operand_reads, sources
from testy_model.graph.zoo import get_network
from testy_model.model.arrays import arch_arrays
from testy_model.model.elementwise import ENERGY_PER_OP_PJ, element_ops
from testy_model.model.evaluate import evaluate, evaluate_layers, evaluate_points
from testy_model.spec import (
    Architecture,
    ComputeUnit,
    Layer,
    LevelMapping,
    Mapping,
    Network,
    OperandSparsity,
    Operator,
    SparsitySupport,
    StorageLevel,
    TasdUnit,
    gemm,
    load_network,
)

E_DRAM, E_BUF = 100.0, 1.0


def two_level(buffer_words: int = 2**24) -> Architecture:
    """DRAM (100 pJ/word) → one buffer of ``buffer_words`` 8-bit words (1 pJ/word) → 1 MAC
    (free), word-wide rows and unlimited bandwidth: every access counts one word."""
    return Architecture(
        name="two",
        levels=(
            StorageLevel(
                name="DRAM",
                kind="DRAM",
                width=8,
                datawidth=8,
                read_energy=E_DRAM,
                write_energy=E_DRAM,
            ),
            StorageLevel(
                name="Buf",
                kind="SRAM",
                depth=buffer_words,
                width=8,
                datawidth=8,
                read_energy=E_BUF,
                write_energy=E_BUF,
            ),
        ),
        compute=ComputeUnit(instances=1, mac_energy=0.0),
    )


def whole(layer: Layer, arch: Architecture) -> Mapping:
    """Every loop at the buffer: each layer reads each operand's full footprint from DRAM once
    and writes its output there once."""
    return Mapping(
        levels=(
            LevelMapping(target="DRAM"),
            LevelMapping(target="Buf", temporal=dict(layer.problem.bounds)),
        )
    )


# -- topology ---------------------------------------------------------------------------------


def test_resnet50_has_its_16_additions_4_projections_and_49_relus() -> None:
    net = get_network("resnet50")
    g = network_graph(net)
    ops = Counter(d["op"] for _, d in g.nodes(data=True))
    assert ops["add"] == 16 and ops["relu"] == 49 and ops["conv2D"] == 53
    assert ops["maxpool"] == ops["globalavgpool"] == ops["input"] == 1
    assert nx.is_directed_acyclic_graph(g)
    adds = [n for n, d in g.nodes(data=True) if d["op"] == "add"]
    projections = [n for n in g if n.endswith("downsample")]
    assert len(projections) == 4
    for add in adds:
        block = add.rsplit(".", 1)[0]
        preds = set(g.predecessors(add))
        assert f"{block}.conv3" in preds and len(preds) == 2
        shortcut = (preds - {f"{block}.conv3"}).pop()
        if block.endswith(".0"):  # the first block of each stage projects its shortcut
            assert shortcut == f"{block}.downsample"
            # the projection reads the same tensor as the block's first conv
            assert set(g.predecessors(shortcut)) == set(g.predecessors(f"{block}.conv1"))
        else:  # identity shortcut: the previous block's output ReLU
            assert g.nodes[shortcut]["op"] == "relu" and g.has_edge(shortcut, f"{block}.conv1")
    assert [n for n in g if g.nodes[n]["output"]] == ["fc"]


def test_transformers_have_qkv_attention_residuals_and_norms() -> None:
    g = network_graph(get_network("bert-base", seq_len=64))
    # Q, K and V read the same tensor (the previous layer's norm); QKᵀ reads Q and K, softmax
    # its scores, A·V the probabilities and V; the residual adds the projection and the input.
    assert list(g.predecessors("encoder.3.attn.q")) == ["encoder.2.norm2"]
    for p in "qkv":
        assert g.has_edge("encoder.2.norm2", f"encoder.3.attn.{p}")
    assert g.edges["encoder.3.attn.q", "encoder.3.attn.qk"]["operands"] == ("A",)
    assert g.edges["encoder.3.attn.k", "encoder.3.attn.qk"]["operands"] == ("B",)
    assert g.edges["encoder.3.attn.softmax", "encoder.3.attn.av"]["operands"] == ("A",)
    assert set(g.predecessors("encoder.3.attn.add")) == {"encoder.3.attn.out", "encoder.2.norm2"}
    ops = Counter(d["op"] for _, d in g.nodes(data=True))
    # 12 layers × (2 adds, 2 norms, softmax, GELU) + the embeddings' norm
    assert (ops["add"], ops["layernorm"], ops["softmax"], ops["gelu"]) == (24, 25, 12, 12)
    vit = network_graph(get_network("vit-b16"))
    # fused QKV: both attention operands read one projection
    assert vit.edges["blocks.0.attn.qkv", "blocks.0.attn.qk"]["operands"] == ("A", "B")
    assert vit.nodes["pos_embed"]["operator"].constant_words == 197 * 768


def test_llama_block_gqa_swiglu_prefill_and_decode() -> None:
    net = get_network("llama-block", hidden=512, heads=8, kv_heads=2, mlp=1376, seq_len=64)
    g = network_graph(net)
    assert set(g.predecessors("layers.0.mlp.mul")) == {"layers.0.mlp.silu", "layers.0.mlp.up"}
    assert list(g.predecessors("layers.0.mlp.silu")) == ["layers.0.mlp.gate"]
    k = next(x for x in net.layers if x.name == "layers.0.attn.k").problem
    assert k.bounds["M"] == 2 * 64  # kv_heads · head_dim (grouped-query attention)
    dec = network_graph(
        get_network("llama-block", hidden=512, heads=8, kv_heads=2, mlp=1376, seq_len=64,
                    mode="decode")
    )  # fmt: skip
    # decode: the attention reads the KV cache (network inputs) and k, v are outputs
    assert list(dec.predecessors("layers.0.attn.qk")) == ["layers.0.attn.q", "layers.0.k_cache"]
    assert dec.nodes["layers.0.k_cache"]["kind"] == "input"
    assert dec.nodes["layers.0.attn.k"]["output"] and dec.nodes["layers.0.mlp.add"]["output"]


def test_views_resolve_to_their_producers() -> None:
    # ViT: tokens (a view of the conv output) and the class-token concat are free; the position
    # embedding reads the conv's output through both.
    g = network_graph(get_network("vit-b16"))
    assert sources(g, "cls_token") == [("patch_embed", 1.0)]
    reads = [r for r in operand_reads(g) if r.consumer == "pos_embed"]
    assert [(r.producer, r.words) for r in reads] == [("patch_embed", 197 * 768)]


# -- between-layer traffic: hand count ---------------------------------------------------------


def _resnet50_between_layer_words() -> int:
    """DRAM words written and read back between ResNet-50's operators (224×224, batch 1) when
    every GEMM reads each operand's footprint once and writes its output once, derived from the
    architecture (He et al., torchvision v1.5):

    - the image 3×224² is a network input: conv1 (7×7/2, pad 3) reads its padded footprint
      3·229², 229 = (112−1)·2 + 7;
    - conv1's output and its ReLU's, 64·112² each: written once, read once (ReLU, max-pool);
    - the max-pool output 64·56²: written, read by layer1.0's conv1 and its 1×1 projection;
    - each bottleneck (input c_in·H², width w, stride s, output side H' = H/s): conv1 reads
      c_in·H²; its output w·H² is written and read by a ReLU, whose output is written and read
      by conv2 as a padded footprint w·((H'−1)·s + 3)²; conv2's output w·H'² and its ReLU's:
      written, read once; conv3's output 4w·H'²: written, read by the addition; the shortcut:
      the projection reads c_in·((H'−1)·s + 1)² and its output 4w·H'² is written and read by
      the addition, or the addition reads the identity 4w·H'²; the sum 4w·H'² and its ReLU:
      written, read (the ReLU's reads are counted by its readers above);
    - the global average pool reads 2048·7²; its 2048 values are written and read by the FC
      (flatten is a view); the FC writes the network output, 1000 values.
    """
    total = 3 * 229 * 229 + 2 * 802_816 + 2 * 802_816 + 64 * 56 * 56
    side, c_in = 56, 64
    for blocks, w, stride in ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)):
        for i in range(blocks):
            s = stride if i == 0 else 1
            out = side // s
            total += c_in * side * side  # conv1 reads the block input
            total += 2 * w * side * side  # conv1 out: written, read by the ReLU
            total += w * side * side + w * ((out - 1) * s + 3) ** 2  # ReLU out; conv2 reads
            total += 2 * w * out * out + 2 * w * out * out  # conv2 out, its ReLU out
            total += 2 * 4 * w * out * out  # conv3 out: written, read by the addition
            if i == 0:
                total += c_in * ((out - 1) * s + 1) ** 2 + 2 * 4 * w * out * out
            else:
                total += 4 * w * out * out  # the addition reads the identity shortcut
            total += 2 * 4 * w * out * out + 4 * w * out * out  # sum; ReLU out written
            c_in, side = 4 * w, out
    return total + 2048 * 49 + 2048 + 2048 + 1000


def test_resnet50_between_layer_dram_traffic_equals_the_hand_count() -> None:
    hand = _resnet50_between_layer_words()
    assert hand == 58_825_203
    rep = evaluate(get_network("resnet50"), two_level(), whole)
    assert rep.between_layer_dram_words == hand
    assert len(rep.tensors) == 122  # the image, 53 convs, fc, 49 ReLUs, 16 adds, 2 pools
    # per word at 100 pJ: the DRAM energy of that traffic
    assert rep.between_layer_dram_energy_pj == pytest.approx(hand * E_DRAM, rel=1e-12)
    t = next(x for x in rep.tensors if x.producer == "maxpool")
    assert (t.dram_writes, t.dram_reads) == (200_704, 2 * 200_704)
    assert t.consumers == ("layer1.0.conv1", "layer1.0.downsample")


def test_fusion_fit_on_resnet50_lowers_dram_energy_by_the_hand_count() -> None:
    # A 16 MB buffer holds every tensor beside every layer's tiles, so every tensor between
    # operators stays on chip except the image (a network input, in DRAM) and the FC's output
    # (a network output): the DRAM words saved are the hand count minus conv1's 3·229² image
    # reads and the FC's 1000 output writes, each moved from DRAM (100 pJ) to the buffer (1 pJ).
    arch = two_level()
    net = get_network("resnet50")
    base = evaluate(net, arch, whole)
    fit = evaluate(net, arch, whole, fusion="fit")
    moved = _resnet50_between_layer_words() - 3 * 229 * 229 - 1000
    assert moved == 58_666_880
    assert fit.fusion.resident_tensors == 120 and fit.fusion.level == "Buf"

    def dram(r):  # DRAM energy of layers and operators
        return sum(x.energy_by_component["DRAM"] for x in (*r.layers, *r.operators))

    assert dram(base) - dram(fit) == pytest.approx(moved * E_DRAM, rel=1e-12)
    assert fit.fusion.dram_energy_saved_pj == pytest.approx(moved * E_DRAM, rel=1e-12)
    assert base.energy_pj - fit.energy_pj == pytest.approx(moved * (E_DRAM - E_BUF), rel=1e-12)
    assert fit.between_layer_dram_words == 3 * 229 * 229 + 1000


def _small_chain() -> Network:
    x = Operator(name="x", op="input", shape=(4, 16))
    fc1 = Layer(name="fc1", problem=gemm(8, 4, 16), inputs=("x",))
    relu = Operator(name="relu", op="relu", inputs=("fc1",), shape=(8, 4))
    fc2 = Layer(name="fc2", problem=gemm(4, 4, 8), inputs=("relu",))
    return Network(name="chain", layers=(fc1, fc2), operators=(x, relu),
                   order=("x", "fc1", "relu", "fc2"))  # fmt: skip


@pytest.mark.parametrize(("words", "kept"), [(256, {"fc1", "relu"}), (255, {"relu"})])
def test_fusion_capacity_check_by_hand(words: int, kept: set[str]) -> None:
    # Working sets with every loop at the buffer (8-bit words): fc1 holds W 8·16 + B 4·16 +
    # Z 8·4 = 224 words, the ReLU nothing, fc2 W 4·8 + B 4·8 + Z 4·4 = 80. fc1's output (32
    # words) lives from fc1 to the ReLU: 224 + 32 = 256 at fc1. The ReLU's output (32) lives
    # from the ReLU to fc2: 32 + 32 = 64 at the ReLU (fc1's output still there when kept),
    # 80 + 32 = 112 at fc2. So 256 words keep both; 255 only the ReLU's output.
    rep = evaluate(_small_chain(), two_level(words), whole, fusion="fit")
    assert {t.producer for t in rep.tensors if t.level == "Buf"} == kept
    relu = next(x for x in rep.operators if x.name == "relu")
    assert relu.words_read == {"DRAM": 0.0 if "fc1" in kept else 32.0,
                               "Buf": 32.0 if "fc1" in kept else 0.0}  # fmt: skip
    assert relu.words_written == {"DRAM": 0.0, "Buf": 32.0}


def test_fusion_level_must_be_an_on_chip_shared_buffer() -> None:
    with pytest.raises(SpecError, match="outermost"):
        evaluate(_small_chain(), two_level(), whole, fusion="fit", fusion_level="DRAM")
    with pytest.raises(SpecError, match="expected one of"):
        evaluate(_small_chain(), two_level(), whole, fusion="fit", fusion_level="L9")
    with pytest.raises(SpecError, match="fusion 'all'"):
        evaluate(_small_chain(), two_level(), whole, fusion="all")


# -- non-GEMM operators -------------------------------------------------------------------------


def test_element_ops_table() -> None:
    assert element_ops("relu", 200_704, 200_704) == 200_704
    assert element_ops("maxpool", 802_816, 200_704, window=9) == 9 * 200_704
    assert element_ops("globalavgpool", 2048 * 49, 2048) == 2048 * 49  # per input value
    assert element_ops("softmax", 10, 10) == 50 and element_ops("layernorm", 10, 10) == 70
    assert element_ops("view", 10, 10) == 0
    with pytest.raises(ValueError, match="no element-wise work"):
        element_ops("fft", 1, 1)


def test_a_relu_on_the_2of4_engine_by_hand() -> None:
    # layer1.0.conv1.relu of ResNet-50 on stc_2of4_tasd: 64·56² = 200,704 values read from
    # and written to DRAM at 64 pJ per 8-bit word (rows of 8 words: 200,704 is a multiple), one
    # compare each at 0.21 pJ; DRAM moves 32 words/cycle each way, so 200,704 / 32 = 6,272
    # cycles, more than the 200,704 / 1,024 = 196 compute cycles.
    from testy_model.spec.arch_loader import load_arch

    arch = load_arch(Path(__file__).parents[1] / "arch_specs" / "stc_2of4_tasd.yaml")
    net = get_network("resnet50")
    from testy_model.model.graph_eval import price_operators

    relu = next(x for x in price_operators(net, arch) if x.name == "layer1.0.conv1.relu")
    assert relu.cycles == 6_272
    assert relu.energy_by_component["DRAM"] == pytest.approx(2 * 64.0 * 200_704)
    assert relu.energy_by_component["elementwise"] == pytest.approx(ENERGY_PER_OP_PJ * 200_704)
    assert relu.energy_pj == pytest.approx((128.0 + 0.21) * 200_704)


def test_one_decomposition_serves_every_consumer_of_a_tensor() -> None:
    # q, k, v read one 16×64 tensor; activations 2:8 decomposed at run time: the TASD unit on
    # the producer's output examines its 16·64 = 1,024 values once (0.5 pJ each), not 3 times.
    arch = Architecture(
        name="t",
        levels=(two_level().levels[0], two_level().levels[1]),
        compute=ComputeUnit(instances=1),
        sparsity=SparsitySupport(A=OperandSparsity(patterns=()),
                                 B=OperandSparsity(patterns=("2:8",))),
        tasd_unit=TasdUnit(energy_per_value=0.5),
    )  # fmt: skip
    x = Operator(name="x", op="input", shape=(16, 64))
    layers = tuple(Layer(name=n, problem=gemm(64, 16, 64), inputs=("x",)) for n in "qkv")
    net = Network(name="qkv", layers=layers, operators=(x,))
    rep = evaluate(net, arch, whole, "A=2:8")
    unit = [r.energy_by_component["TASD_unit"] for r in rep.layers]
    assert unit == [1024 * 0.5, 0.0, 0.0]
    alone = evaluate_layers(net, arch, whole, "A=2:8")  # each layer priced alone: 3 units
    assert [r.energy_by_component["TASD_unit"] for r in alone.layers] == [512.0] * 3


# -- chains, YAML graphs, reports, design points -----------------------------------------------


def test_a_chain_prices_like_its_layers_alone() -> None:
    net = Network(name="c", layers=(Layer(name="a", problem=gemm(8, 4, 16)),
                                    Layer(name="b", problem=gemm(4, 4, 8))))  # fmt: skip
    rep = evaluate(net, two_level(), whole)
    alone = evaluate_layers(net, two_level(), whole)
    assert rep.energy_pj == alone.energy_pj and rep.cycles == alone.cycles
    assert not rep.operators
    # tensors: the implicit input (B of a, 4·16) and a's output, read by b
    assert [(t.producer, t.dram_reads, t.dram_writes) for t in rep.tensors] == [
        ("input", 64.0, 0.0),
        ("a", 32.0, 32.0),
        ("b", 0.0, 16.0),
    ]


def test_yaml_network_names_its_inputs(tmp_path: Path) -> None:
    f = tmp_path / "res.yaml"
    f.write_text(
        "network:\n"
        "  name: res\n"
        "  layers:\n"
        "    - {name: x, op: input, shape: [1, 8, 4, 4]}\n"
        "    - {name: c1, conv2d: {C: 8, M: 8, P: 4, Q: 4, R: 3, S: 3}, inputs: [x]}\n"
        "    - {name: r1, op: relu}\n"
        "    - {name: c2, conv2d: {C: 8, M: 8, P: 4, Q: 4, R: 3, S: 3}}\n"
        "    - {name: add, op: add, inputs: [c2, x]}\n"
        "    - {name: pool, op: maxpool, shape: [1, 8, 2, 2], window: 4}\n",
        encoding="utf-8",
    )
    net = load_network(f)
    g = network_graph(net)
    assert [x.name for x in net.layers] == ["c1", "c2"]
    assert set(g.predecessors("add")) == {"c2", "x"} and list(g.predecessors("c2")) == ["r1"]
    assert g.nodes["add"]["shape"] == (1, 8, 4, 4)  # M, Q, P of c2's output, N = 1
    assert net.order == ("x", "c1", "r1", "c2", "add", "pool")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "network:\n  layers:\n    - {name: a, gemm: {M: 4, N: 4, K: 4}}\n"
        "    - {name: b, op: add, inputs: [a, nowhere]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError, match="unknown inputs"):
        load_network(bad)


def test_report_json_keeps_the_contract_and_adds_graph_fields(tmp_path: Path) -> None:
    rep = evaluate(_small_chain(), two_level(), whole, fusion="fit")
    d = json.loads(rep.to_json(tmp_path / "r.json"))
    assert {"network", "arch", "plan", "total", "layers"} <= set(d)
    assert {"cycles", "seconds", "energy_pj", "edp_pj_s", "dense_cycles", "dense_energy_pj",
            "speedup", "energy_ratio"} <= set(d["total"])  # fmt: skip
    assert {"non_gemm_energy_share", "between_layer_dram_words"} <= set(d["total"])
    assert [x["name"] for x in d["operators"]] == ["relu"]
    assert d["fusion"]["policy"] == "fit" and d["fusion"]["level"] == "Buf"
    assert math.isclose(d["total"]["energy_pj"], rep.gemm_energy_pj + rep.non_gemm_energy_pj)
    assert rep.dominant(1)[0][0] in {"fc1", "fc2", "relu"}
    kinds = dict(rep.energy_by_kind())
    assert set(kinds) == {"gemm_ABZ", "relu"} and sum(kinds.values()) == pytest.approx(1.0)
    assert kinds["relu"] == pytest.approx(rep.non_gemm_energy_share)


def test_design_points_include_the_operators() -> None:
    from testy_model.mapper import template_mapping
    from testy_model.spec.arch_loader import load_arch

    arch = load_arch(Path(__file__).parents[1] / "arch_specs" / "stc_2of4.yaml")
    net = get_network("resnet50", image_size=64)
    maps = {x.name: template_mapping(x.problem, arch, "weight") for x in net.layers}
    aa = arch_arrays(arch)
    pts = aa.replace(read_energy=aa.read_energy * np.array([[1.0], [2.0]]))
    pc = evaluate_points(net, arch, maps, pts, plan="W=2:4")
    rep = evaluate(net, arch, maps, plan="W=2:4")
    assert pc.total_energy_pj[0] == pytest.approx(rep.energy_pj, rel=1e-12)
    assert pc.total_cycles[0] == pytest.approx(rep.cycles, rel=1e-12)
    # priced operators: 49 ReLUs, 16 additions, 2 pools (the input and the flatten view are not)
    assert pc.operator_energy_pj is not None and pc.operator_energy_pj.shape == (2, 67)
    assert pc.total_energy_pj[1] > pc.total_energy_pj[0]
