"""ONNX in: models built here with ``onnx.helper`` (never downloaded), their layers, operators,
densities and costs against hand counts; opsets, constants as nodes, dynamic batch, external
data, unknown operators; the zoo written to ONNX and read back; the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.errors import SpecError
from testy_model.graph.onnx_export import export_onnx
from testy_model.graph.zoo import get_network
from testy_model.mapper import template_mapping
from testy_model.model.evaluate import evaluate
from testy_model.spec import Layer, load_network
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.tensors import load_tensor_ref
from testy_model.spec.yaml_io import SpecWarning

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def arch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(ROOT / "arch_specs" / "stc_2of4_tasd.yaml")


def template(layer: Layer, arch) -> object:
    return template_mapping(layer.problem, arch, "weight")


def pruned(rng: np.random.Generator, shape: tuple[int, ...], sparsity: float) -> np.ndarray:
    w = rng.standard_normal(shape).astype(np.float32)
    w[rng.random(shape) < sparsity] = 0.0
    return w


# -- a residual CNN with pruned weights --------------------------------------------------------


def residual_cnn(opset: int = 13, constant_nodes: bool = False, extra: list | None = None):
    """x (batch×16×8×8) → conv1 3×3 pad 1 (16→16, 80 % pruned) → BatchNorm → ReLU → conv2 3×3
    stride 2 pad 1 (16→32, 80 %) ; shortcut: proj 1×1 stride 2 (16→32, 50 %) on x ; Add → ReLU
    → GlobalAveragePool → Flatten → Gemm (32→10, weight 32×10 with transB = 0, 50 %)."""
    rng = np.random.default_rng(7)
    w = {
        "w1": pruned(rng, (16, 16, 3, 3), 0.8),
        "w2": pruned(rng, (32, 16, 3, 3), 0.8),
        "wp": pruned(rng, (32, 16, 1, 1), 0.5),
        "wf": pruned(rng, (32, 10), 0.5),
    }
    bn = {k: np.abs(rng.standard_normal(16)).astype(np.float32) + 0.5 for k in "sbmv"}
    nodes = [
        oh.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        oh.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["n1"], name="bn1"),
        oh.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        oh.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1],
                     strides=[2, 2]),
        oh.make_node("Conv", ["x", "wp"], ["p"], name="proj", strides=[2, 2]),
        oh.make_node("Add", ["c2", "p"], ["a"], name="add"),
        oh.make_node("Relu", ["a"], ["r2"], name="relu2"),
        *(extra or []),
        oh.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        oh.make_node("Flatten", ["g"], ["f"], name="flatten"),
        oh.make_node("Gemm", ["f", "wf"], ["y"], name="fc"),
    ]  # fmt: skip
    consts = {**w, **bn}
    inits = []
    if constant_nodes:
        nodes = [
            oh.make_node("Constant", [], [k], name=f"const_{k}", value=nh.from_array(v, k))
            for k, v in consts.items()
        ] + nodes
    else:
        inits = [nh.from_array(v, k) for k, v in consts.items()]
    graph = oh.make_graph(
        nodes, "rescnn",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16, 8, 8])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits,
    )  # fmt: skip
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model, w


def save(model, path: Path) -> Path:
    onnx.save_model(model, str(path))
    return path


def load(path: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        return load_network(path, **kw)


def test_residual_cnn_layers_macs_and_measured_densities(tmp_path: Path, arch) -> None:
    model, w = residual_cnn()
    path = save(model, tmp_path / "cnn.onnx")
    with pytest.warns(SpecWarning, match=r"dynamic input dimension\(s\) x\[0\] \(batch\)"):
        net = load_network(path)
    # 4 GEMM-like layers; MACs by hand: conv1 16·16·3·3·8·8 = 147,456; conv2 (stride 2, 4×4
    # out) 32·16·9·16 = 73,728; proj 32·16·16 = 8,192; fc 32·10 = 320; total 229,696.
    assert [x.name for x in net.layers] == ["conv1", "conv2", "proj", "fc"]
    assert [x.problem.macs for x in net.layers] == [147_456, 73_728, 8_192, 320]
    assert net.macs == 229_696
    conv2 = net.layers[1].problem
    assert conv2.coefficients["Wstride"] == 2 and (conv2.bounds["P"], conv2.bounds["Q"]) == (4, 4)
    # the batch norm is folded into conv1; ReLUs, the addition and the pool are operators
    assert [(o.name, o.op) for o in net.operators] == [
        ("x", "input"), ("relu1", "relu"), ("add", "add"), ("relu2", "relu"),
        ("gap", "globalavgpool"),
    ]  # fmt: skip
    assert net.layers[0].inputs == ("x",) and net.layers[1].inputs == ("relu1",)
    assert next(o for o in net.operators if o.name == "add").inputs == ("conv2", "proj")
    # densities: the initializers' non-zero fraction
    for layer, key in zip(net.layers, ("w1", "w2", "wp", "wf"), strict=True):
        want = np.count_nonzero(w[key]) / w[key].size
        assert layer.problem.density(layer.problem.weight).value == want
    # the weights by reference, oriented as the A operand: fc's (K=32, N=10) Gemm weight
    # (transB = 0) is transposed to M×K = 10×32; convolutions stay (M, C, R, S)
    assert np.array_equal(load_tensor_ref(f"{path}:fc"), w["wf"].T)
    assert np.array_equal(load_tensor_ref(f"{path}:conv2"), w["w2"])


def test_residual_cnn_tasd_plan_beats_dense_end_to_end(tmp_path: Path, arch) -> None:
    path = save(residual_cnn()[0], tmp_path / "cnn.onnx")
    net = load(path)
    rep = evaluate(net, arch, template, "W=2:4")
    assert rep.speedup > 1.0 and rep.energy_ratio < 1.0
    assert len(rep.layers) == 4 and len(rep.operators) == 4
    measured = evaluate(net, arch, template, "W=2:4", densities_source="measured")
    assert {x.density_source for x in measured.layers} == {"measured"}
    assert measured.speedup > 1.0
    # the same through the CLI, with a JSON report
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--arch", str(ROOT / "arch_specs/stc_2of4_tasd.yaml"),
                                   "--network", str(path), "--plan", "W=2:4", "--json",
                                   str(out), "--fusion", "fit"])  # fmt: skip
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert [x["name"] for x in d["layers"]] == ["conv1", "conv2", "proj", "fc"]
    assert d["fusion"]["policy"] == "fit" and d["total"]["speedup"] > 1.0
    assert "operators that dominate energy" in res.output


def transformer_block(opset: int = 17):
    """One pre-norm block on x (8 tokens × 32): LayerNorm written out (ReduceMean, Sub, Pow,
    ReduceMean, Add, Sqrt, Div, Mul γ, Add β), Q/K/V MatMuls, heads (4 × 8) by Reshape and
    Transpose, Q·Kᵀ, Softmax, A·V, merge, output projection, residual Add, FFN up (32→64), GELU
    (Gelu at opset >= 20, else the Erf pattern), down (64→32), SiLU (x·sigmoid(x))."""
    rng = np.random.default_rng(3)
    s, d, h, f = 8, 32, 4, 64

    def init(name: str, shape: tuple[int, ...]):
        return nh.from_array(rng.standard_normal(shape).astype(np.float32), name)

    def c(name: str, v: float):
        return nh.from_array(np.array(v, dtype=np.float32), name)

    def ints(name: str, v: list[int]):
        return nh.from_array(np.array(v, dtype=np.int64), name)

    def mean(x: str, y: str, name: str):
        if opset >= 18:
            return oh.make_node("ReduceMean", [x, "axes"], [y], name=name)
        return oh.make_node("ReduceMean", [x], [y], name=name, axes=[-1])

    nodes = [
        mean("x", "mu", "ln.mean"), oh.make_node("Sub", ["x", "mu"], ["dx"], name="ln.sub"),
        oh.make_node("Pow", ["dx", "two"], ["sq"], name="ln.pow"), mean("sq", "var", "ln.var"),
        oh.make_node("Add", ["var", "eps"], ["ve"], name="ln.eps"),
        oh.make_node("Sqrt", ["ve"], ["sd"], name="ln.sqrt"),
        oh.make_node("Div", ["dx", "sd"], ["nx"], name="ln.div"),
        oh.make_node("Mul", ["nx", "gamma"], ["gx"], name="ln.gamma"),
        oh.make_node("Add", ["gx", "beta"], ["hh"], name="ln"),
    ]  # fmt: skip
    for p, perm in (("q", [1, 0, 2]), ("k", [1, 2, 0]), ("v", [1, 0, 2])):
        nodes += [
            oh.make_node("MatMul", ["hh", f"w{p}"], [f"{p}0"], name=p),
            oh.make_node("Reshape", [f"{p}0", "heads"], [f"{p}1"], name=f"{p}.heads"),
            oh.make_node("Transpose", [f"{p}1"], [f"{p}h"], name=f"{p}.t", perm=perm),
        ]
    nodes += [
        oh.make_node("MatMul", ["qh", "kh"], ["sc"], name="qk"),
        oh.make_node("Softmax", ["sc"], ["pr"], name="softmax", axis=-1),
        oh.make_node("MatMul", ["pr", "vh"], ["ao"], name="av"),
        oh.make_node("Transpose", ["ao"], ["at"], name="merge.t", perm=[1, 0, 2]),
        oh.make_node("Reshape", ["at", "flat"], ["am"], name="merge"),
        oh.make_node("MatMul", ["am", "wo"], ["o"], name="out"),
        oh.make_node("Add", ["o", "x"], ["r1"], name="residual"),
        oh.make_node("MatMul", ["r1", "w1"], ["u"], name="up"),
    ]
    if opset >= 20:
        nodes.append(oh.make_node("Gelu", ["u"], ["g"], name="gelu"))
    else:
        nodes += [
            oh.make_node("Div", ["u", "sqrt2"], ["u1"], name="gelu.div"),
            oh.make_node("Erf", ["u1"], ["u2"], name="gelu.erf"),
            oh.make_node("Add", ["u2", "one"], ["u3"], name="gelu.add"),
            oh.make_node("Mul", ["u", "u3"], ["u4"], name="gelu.mul"),
            oh.make_node("Mul", ["u4", "half"], ["g"], name="gelu"),
        ]
    nodes += [
        oh.make_node("MatMul", ["g", "w2"], ["dn"], name="down"),
        oh.make_node("Sigmoid", ["dn"], ["sg"], name="silu.sigmoid"),
        oh.make_node("Mul", ["dn", "sg"], ["y"], name="silu"),
    ]
    inits = [
        c("two", 2.0), c("eps", 1e-5), init("gamma", (d,)), init("beta", (d,)),
        init("wq", (d, d)), init("wk", (d, d)), init("wv", (d, d)), init("wo", (d, d)),
        ints("heads", [s, h, d // h]), ints("flat", [s, d]), ints("axes", [-1]),
        init("w1", (d, f)), init("w2", (f, d)), c("sqrt2", float(np.sqrt(2.0))), c("one", 1.0),
        c("half", 0.5),
    ]  # fmt: skip
    graph = oh.make_graph(
        nodes, "block", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [s, d])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, [s, d])], inits,
    )  # fmt: skip
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def test_transformer_block_attention_and_fused_patterns(tmp_path: Path) -> None:
    net = load(save(transformer_block(), tmp_path / "block.onnx"))
    shapes = {x.name: (x.problem.shape_name, x.problem.bounds) for x in net.layers}
    # projections: MatMul(x (8×32), W (32×32)) -> GEMM M = 32 out features, N = 8 tokens, K = 32
    assert shapes["q"] == ("gemm_ABZ", {"M": 32, "N": 8, "K": 32})
    assert shapes["up"] == ("gemm_ABZ", {"M": 64, "N": 8, "K": 32})
    # Q·Kᵀ: (4, 8, 8) @ (4, 8, 8) over 4 heads: G 4, M 8 queries, N 8 keys, K 8 = head_dim
    assert shapes["qk"] == ("bgemm_ABZ", {"G": 4, "M": 8, "N": 8, "K": 8})
    assert shapes["av"] == ("bgemm_ABZ", {"G": 4, "M": 8, "N": 8, "K": 8})
    ops = {o.name: (o.op, o.inputs, o.constant_words) for o in net.operators}
    # the written-out LayerNorm, the Erf GELU and x·sigmoid(x) each become one operator; γ and β
    # (32 values each) are its constant operands
    assert ops["ln"] == ("layernorm", ("x",), 64)
    assert ops["gelu"] == ("gelu", ("up",), 0)
    assert ops["silu"] == ("silu", ("down",), 0)
    assert ops["softmax"] == ("softmax", ("qk",), 0)
    assert ops["residual"] == ("add", ("out", "x"), 0)
    assert len(net.operators) == 6  # and the input x
    assert next(x for x in net.layers if x.name == "qk").inputs == ("q", "k")


@pytest.mark.parametrize("opset", [11, 13, 17, 18, 20, 21])
def test_opsets_give_the_same_network_and_costs(tmp_path: Path, arch, opset: int) -> None:
    ref = load(save(transformer_block(17), tmp_path / "ref.onnx"))
    cnn_ref = load(save(residual_cnn(13)[0], tmp_path / "cnn13.onnx"))
    net = load(save(transformer_block(opset), tmp_path / f"b{opset}.onnx"))
    cnn = load(save(residual_cnn(opset)[0], tmp_path / f"cnn{opset}.onnx"))
    for a, b in ((ref, net), (cnn_ref, cnn)):
        assert [x.problem for x in a.layers] == [x.problem for x in b.layers]
        assert [(o.op, o.words, o.constant_words) for o in a.operators] == [
            (o.op, o.words, o.constant_words) for o in b.operators
        ]
        ra, rb = evaluate(a, arch, template, "W=2:4"), evaluate(b, arch, template, "W=2:4")
        assert ra.energy_pj == rb.energy_pj and ra.cycles == rb.cycles


def test_initializers_as_constant_nodes(tmp_path: Path) -> None:
    a = load(save(residual_cnn(13)[0], tmp_path / "init.onnx"))
    b = load(save(residual_cnn(13, constant_nodes=True)[0], tmp_path / "const.onnx"))
    assert [x.problem for x in a.layers] == [x.problem for x in b.layers]
    assert [o.model_dump() for o in a.operators] == [o.model_dump() for o in b.operators]
    w = residual_cnn(13)[1]
    assert np.array_equal(load_tensor_ref(f"{tmp_path / 'const.onnx'}:conv1"), w["w1"])


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not a protobuf model \xff" * 8)
    with pytest.raises(SpecError, match=r"junk\.onnx.*not a readable ONNX model"):
        load_network(junk)
    old = residual_cnn(13)[0]
    old.opset_import[0].version = 10
    with pytest.raises(SpecError, match="opset 10 is older than 11"):
        load(save(old, tmp_path / "old.onnx"))
    ext = tmp_path / "ext.onnx"
    onnx.save_model(residual_cnn(13)[0], str(ext), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.bin", size_threshold=0)  # fmt: skip
    with pytest.raises(SpecError, match=r"ext\.onnx.*external data"):
        load_network(ext)


def test_unknown_operator_named_or_counted_as_traffic(tmp_path: Path, arch) -> None:
    hm = oh.make_node("Hardmax", ["r2"], ["r3"], name="hm", axis=1)
    model, _ = residual_cnn(13, extra=[hm])
    for n in model.graph.node:  # the pool now reads the Hardmax
        if n.name == "gap":
            n.input[0] = "r3"
    path = save(model, tmp_path / "hm.onnx")
    with pytest.raises(SpecError, match=r"hm.onnx.*node 'hm' \(Hardmax\).*--skip-unknown"):
        load(path)
    net = load(path, skip_unknown=True)
    rep = evaluate(net, arch, template)
    assert rep.skipped_operators == ("hm",)
    hm_row = next(x for x in rep.operators if x.name == "hm")
    # traffic only: reads the 32×4×4 = 512 values, writes 512, no element-wise work
    assert hm_row.words_read["DRAM"] == 512 and hm_row.words_written["DRAM"] == 512
    assert hm_row.element_ops == 0
    res = CliRunner().invoke(app, ["eval", "--arch", str(ROOT / "arch_specs/stc_2of4_tasd.yaml"),
                                   "--network", str(path), "--skip-unknown"])  # fmt: skip
    assert res.exit_code == 0 and "skipped (counted as traffic only): hm" in res.output
    res = CliRunner().invoke(app, ["eval", "--arch", str(ROOT / "arch_specs/stc_2of4_tasd.yaml"),
                                   "--network", str(path)])  # fmt: skip
    assert res.exit_code == 2 and "Hardmax" in res.output


# -- the zoo written to ONNX and read back -----------------------------------------------------

ZOO = [
    ("resnet50", {"weight_sparsity": 0.8}),
    ("bert-base", {}),
    ("vit-b16", {"gelu_act_density": 0.6}),
    ("llama-block", {}),
    ("llama-block", {"kv_heads": 8, "mode": "decode"}),
]


@pytest.mark.parametrize(("name", "params"), ZOO)
def test_zoo_round_trip_gives_the_same_totals(tmp_path: Path, arch, name: str, params) -> None:
    net = get_network(name, **params)
    export_onnx(net, tmp_path / "zoo.onnx")
    back = load(tmp_path / "zoo.onnx")
    assert [x.problem for x in net.layers] == [x.problem for x in back.layers]
    for fusion in ("none", "fit"):
        a = evaluate(net, arch, template, "W=2:4,A=2:4", fusion=fusion)
        b = evaluate(back, arch, template, "W=2:4,A=2:4", fusion=fusion)
        for key in ("energy_pj", "cycles", "dense_energy_pj", "non_gemm_energy_pj",
                    "between_layer_dram_words"):  # fmt: skip
            x, y = getattr(a, key), getattr(b, key)
            assert abs(x - y) <= 1e-9 * abs(x), (fusion, key, x, y)
        assert a.fusion.resident_tensors == b.fusion.resident_tensors


def test_show_network_onnx_and_plot(tmp_path: Path) -> None:
    path = save(transformer_block(), tmp_path / "block.onnx")
    png = tmp_path / "g.png"
    res = CliRunner().invoke(app, ["show", "network", str(path), "--plot", str(png), "--plan",
                                   "W=2:4;qk:W=dense"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert png.stat().st_size > 10_000 and "other operators: 6" in res.output


def test_gemm_epilogues_fold_into_their_layer(tmp_path: Path) -> None:
    # x (4×8) → MatMul W1 (8×16) → Add bias (16) → Relu → MatMul W2 (16×8) → Div by √8 → y.
    # The bias and the scale act on a layer's own output, its only reader: folded (no operator).
    # In the second model the first MatMul's output is also a network output: its bias add is
    # then a priced operator (its input must be written out anyway).
    rng = np.random.default_rng(1)

    def model(expose: bool):
        nodes = [
            oh.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            oh.make_node("Add", ["h", "b1"], ["hb"], name="bias"),
            oh.make_node("Relu", ["hb"], ["r"], name="relu"),
            oh.make_node("MatMul", ["r", "w2"], ["z"], name="fc2"),
            oh.make_node("Div", ["z", "scale"], ["y"], name="scale"),
        ]
        inits = [
            nh.from_array(rng.standard_normal((8, 16)).astype(np.float32), "w1"),
            nh.from_array(rng.standard_normal(16).astype(np.float32), "b1"),
            nh.from_array(rng.standard_normal((16, 8)).astype(np.float32), "w2"),
            nh.from_array(np.array(np.sqrt(8.0), dtype=np.float32), "scale"),
        ]
        outs = [oh.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])]
        if expose:
            outs.append(oh.make_tensor_value_info("h", TensorProto.FLOAT, [4, 16]))
        g = oh.make_graph(nodes, "mlp", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                          outs, inits)  # fmt: skip
        return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)])

    net = load(save(model(False), tmp_path / "a.onnx"))
    assert [o.name for o in net.operators] == ["x", "relu"]
    assert next(o for o in net.operators if o.name == "relu").inputs == ("fc1",)
    assert net.outputs == ("fc2",)
    exposed = load(save(model(True), tmp_path / "b.onnx"))
    bias = next(o for o in exposed.operators if o.name == "bias")
    assert (bias.op, bias.inputs, bias.constant_words) == ("add", ("fc1",), 16)
    assert set(exposed.outputs) == {"fc1", "fc2"}


def test_onnx_weights_are_fresh_arrays(tmp_path: Path) -> None:
    """The converted weights are cached per model file; a caller writing into the array it got
    must not change what the next reference to the same layer reads."""
    model, w = residual_cnn(13, constant_nodes=True)
    path = save(model, tmp_path / "const.onnx")
    first = load_tensor_ref(f"{path}:conv1")
    first[...] = 0
    assert np.array_equal(load_tensor_ref(f"{path}:conv1"), w["w1"])
