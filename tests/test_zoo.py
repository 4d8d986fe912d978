"""Zoo networks against published MAC / parameter counts and hand derivations.

Expected values are derived in the comments from the architecture definitions (channel counts,
kernel sizes, hidden sizes), independently of testy_model/zoo.py's generator, and checked
against the published totals:

* ResNet-50: 25,557,032 parameters (torchvision's ``resnet50`` parameter count, which includes
  the batch-norm affine γ/β), 4.09 GMACs at 224×224 (torchvision's "GFLOPS 4.09", counted as
  multiply-accumulates).
* BERT-base: 109,482,240 parameters (Hugging Face ``BertModel``, with embeddings and pooler;
  "110 M" in the paper).
* ViT-B/16: 86,567,656 parameters (timm ``vit_base_patch16_224``), about 17.56 GMACs.
* Llama-2-7B: 6,738,415,616 parameters = 32 blocks + embeddings + LM head + final norm.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.errors import SpecError
from testy_model.graph.zoo import (
    batched_gemm,
    conv_out,
    describe_network,
    get_network,
    list_networks,
    network_params,
)


def within(value: float, expected: float, rel: float = 0.01) -> bool:
    return abs(value - expected) <= rel * abs(expected)


# -- conv_out ---------------------------------------------------------------------------------


def test_conv_out_hand_cases() -> None:
    # 224 + 2·3 − 1·(7 − 1) − 1 = 223; 223 // 2 + 1 = 112 (ResNet stem)
    assert conv_out(224, 7, 2, 3) == 112
    # max-pool 3×3/2 pad 1 on 112: (112 + 2 − 2 − 1) // 2 + 1 = 111 // 2 + 1 = 56
    assert conv_out(112, 3, 2, 1) == 56
    # 3×3/2 pad 1 on 56 -> (56 + 2 − 2 − 1) // 2 + 1 = 28; 1×1/2 pad 0 on 56 -> 55 // 2 + 1 = 28
    assert conv_out(56, 3, 2, 1) == 28
    assert conv_out(56, 1, 2, 0) == 28
    # ViT patchify 16/16 on 224: (224 − 15 − 1) // 16 + 1 = 14
    assert conv_out(224, 16, 16, 0) == 14
    # dilation 2, 3×3, pad 2 keeps the size: 10 + 4 − 4 − 1 = 9; 9 + 1 = 10
    assert conv_out(10, 3, 1, 2, dilation=2) == 10
    with pytest.raises(SpecError, match="does not fit"):
        conv_out(3, 7, 1, 0)


# -- ResNet-50 --------------------------------------------------------------------------------


def _resnet50_hand() -> tuple[int, int, int]:
    """(MACs, conv+fc params, BN params) of ResNet-50 at 224, from the stage table of He et al.

    conv1: 7·7·3·64 weights, output 112² -> MACs 9408·12544 = 118,013,952.
    Stage (blocks, width w, input side H_in, output side H_out, input channels c_in):
      block MACs = H_in²·c_in·w (1×1) + H_out²·9·w² (3×3) + H_out²·w·4w (1×1)
                   [+ H_out²·c_in·4w for the first block's down-sample]
      block params = c_in·w + 9w² + 4w² [+ c_in·4w]; BN = 2·(6w) [+ 2·4w]
    FC: 2048·1000 MACs; 2048·1000 + 1000 params.
    """
    macs = 7 * 7 * 3 * 64 * 112 * 112
    params = 7 * 7 * 3 * 64
    bn = 2 * 64
    c_in, side = 64, 56
    for blocks, w, stride in ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)):
        out = side // stride
        for i in range(blocks):
            h_in = side if i == 0 else out
            macs += h_in * h_in * c_in * w + out * out * 9 * w * w + out * out * w * 4 * w
            params += c_in * w + 9 * w * w + 4 * w * w
            bn += 2 * 6 * w
            if i == 0:
                macs += out * out * c_in * 4 * w
                params += c_in * 4 * w
                bn += 2 * 4 * w
            c_in = 4 * w
        side = out
    macs += 2048 * 1000
    params += 2048 * 1000 + 1000
    return macs, params, bn


def test_resnet50_hand_derivation_matches_published() -> None:
    # Sanity of the independent derivation itself against the published figures.
    macs, params, bn = _resnet50_hand()
    assert params + bn == 25_557_032
    assert within(macs, 4.09e9)
    # BN: 2·(64 + Σ_stages blocks·6w + 4w per stage) = 2·(64 + 6·(3·64 + 4·128 + 6·256 + 3·512)
    #     + 4·(64 + 128 + 256 + 512)) = 2·(64 + 6·3776 + 3840) = 2·26560 = 53,120
    assert bn == 53_120


def test_resnet50_totals() -> None:
    z = describe_network("resnet50")
    macs, params, bn = _resnet50_hand()
    assert z.macs == macs
    assert within(z.macs, 4.09e9)  # published 4.09 GMACs
    assert z.total_params == 25_557_032  # published torchvision count
    assert within(z.total_params, 25.557e6)
    assert z.gemm_params == params  # conv weights (no bias) + fc weights and bias
    assert z.other_params == {"batchnorm": bn}


def test_resnet50_layer_count_and_shapes() -> None:
    net = get_network("resnet50")
    kinds = [layer.problem.shape_name for layer in net.layers]
    # 1 stem + 16 bottlenecks × 3 + 4 down-sample = 53 convolutions, plus the fc
    assert kinds.count("conv2D") == 53
    assert kinds.count("gemm_ABZ") == 1
    assert len(net.layers) == 54
    first = net.layers[0].problem
    assert (first.bounds["P"], first.bounds["Q"], first.coefficients["Wstride"]) == (112, 112, 2)
    # layer2.0.conv2 is the strided 3×3 (v1.5): 128 -> 128 channels, 56 -> 28
    conv2 = next(x for x in net.layers if x.name == "layer2.0.conv2").problem
    assert conv2.bounds["P"] == 28 and conv2.coefficients["Wstride"] == 2
    assert conv2.bounds["C"] == conv2.bounds["M"] == 128 and conv2.bounds["R"] == 3
    fc = net.layers[-1].problem
    assert fc.bounds == {"M": 1000, "N": 1, "K": 2048}


def test_resnet50_batch_and_image_size_scale() -> None:
    base = describe_network("resnet50").macs
    # batch 4: every layer's N (or the fc's N) ×4, so MACs ×4 exactly
    assert describe_network("resnet50", batch=4).macs == 4 * base
    # 448×448: every feature map side doubles, conv MACs ×4; the fc (2,048,000) is unchanged
    fc = 2048 * 1000
    assert describe_network("resnet50", image_size=448).macs == 4 * (base - fc) + fc


def test_resnet50_densities() -> None:
    net = get_network("resnet50", weight_sparsity=0.8, act_density=0.4)
    by = {layer.name: layer.problem for layer in net.layers}
    w = by["layer1.0.conv2"].density("Weights")
    assert w.kind == "bernoulli" and w.value == pytest.approx(0.2)  # 1 − 0.8
    assert by["layer1.0.conv2"].density("Inputs").value == pytest.approx(0.4)  # post-ReLU
    assert by["conv1"].density("Inputs").kind == "dense"  # the image
    assert by["fc"].density("B").kind == "dense"  # global average pool
    assert by["fc"].density("A").value == pytest.approx(0.2)
    dense = get_network("resnet50", act_density=1.0)
    assert all(x.problem.density(x.problem.activation).kind == "dense" for x in dense.layers)


# -- BERT-base --------------------------------------------------------------------------------


def test_bert_base_params() -> None:
    # embeddings (30522 + 512 + 2)·768 = 23,835,648; embedding LayerNorm 1,536
    # per layer: Q, K, V, O 4·(768² + 768) = 2,362,368; FFN 768·3072 + 3072 + 3072·768 + 768
    #   = 4,722,432; two LayerNorms 3,072 -> 7,087,872; ×12 = 85,054,464
    # pooler 768² + 768 = 590,592
    # total 23,835,648 + 1,536 + 85,054,464 + 590,592 = 109,482,240 (HF BertModel)
    z = describe_network("bert-base")
    assert z.total_params == 109_482_240
    assert within(z.total_params, 110e6)
    assert z.other_params["embeddings"] == 23_835_648
    assert z.gemm_params == 12 * (4 * (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768) + 590_592


def test_bert_base_macs_seq128() -> None:
    # T = 128 tokens. Per layer: 4 projections 4·768²·128 = 301,989,888; FFN 2·768·3072·128
    # = 603,979,776; attention QKᵀ + AV = 2·12·128·128·64 = 25,165,824 -> 931,135,488.
    # ×12 = 11,173,625,856; pooler 768²·1 = 589,824 -> 11,174,215,680 (≈ 11.2 GMACs)
    z = describe_network("bert-base", seq_len=128)
    assert z.macs == 11_174_215_680
    # 6 + 2 = 8 GEMM-like layers per encoder layer (q, k, v, qk, av, out, up, down) + pooler
    assert len(z.network.layers) == 12 * 8 + 1


def test_bert_attention_is_batched_gemm() -> None:
    net = get_network("bert-base", seq_len=64, batch=2)
    by = {layer.name: layer.problem for layer in net.layers}
    qk = by["encoder.0.attn.qk"]
    assert qk.bounds == {"G": 24, "M": 64, "N": 64, "K": 64}  # G = 2 sequences × 12 heads
    assert qk.weight is None and qk.macs == 24 * 64 * 64 * 64
    av = by["encoder.0.attn.av"]
    assert av.bounds == {"G": 24, "M": 64, "N": 64, "K": 64}
    assert by["encoder.0.attn.q"].bounds == {"M": 768, "N": 128, "K": 768}  # N = 2·64 tokens
    assert net.layers[-1].problem.bounds["N"] == 2  # pooler: one token per sequence


def test_bert_gelu_density_only_on_ffn_down() -> None:
    net = get_network("bert-base", gelu_act_density=0.3)
    sparse = [x.name for x in net.layers if x.problem.density("B").kind != "dense"]
    assert sparse == [f"encoder.{i}.mlp.down" for i in range(12)]


# -- ViT-B/16 ---------------------------------------------------------------------------------


def test_vit_b16_params_and_macs() -> None:
    # params: patch conv 16·16·3·768 + 768 = 590,592; cls 768; pos (196 + 1)·768 = 151,296;
    # 12 layers × 7,087,872 (same as BERT's) = 85,054,464; final LN 1,536; head 768·1000 + 1000
    # = 769,000 -> 86,567,656 (timm vit_base_patch16_224)
    z = describe_network("vit-b16")
    assert z.total_params == 86_567_656
    # MACs, T = 197 tokens: patch conv 196·768·768 = 115,605,504
    # per layer: qkv 197·768·2304 = 348,585,984; QKᵀ and AV 2·12·197²·64 = 59,610,624;
    # proj 197·768² = 116,195,328; MLP 2·197·768·3072 = 929,562,624 -> 1,453,954,560; ×12
    # = 17,447,454,720; head 768,000 -> 17,563,828,224
    assert z.macs == 17_563_828_224
    assert within(z.macs, 17.56e9)
    assert 16.9e9 <= z.macs <= 17.6e9


# -- Llama-style decoder block ----------------------------------------------------------------


def test_llama_block_params_match_llama2_7b() -> None:
    # block: q, k, v, o 4·4096² = 67,108,864; gate, up, down 3·4096·11008 = 135,266,304;
    # 2 RMSNorms 8,192 -> 202,383,360. Llama-2-7B: 32 blocks + embedding and LM head
    # 2·32000·4096 = 262,144,000 + final norm 4,096 = 6,738,415,616 (published count).
    z = describe_network("llama-block")
    assert z.total_params == 202_383_360
    assert 32 * z.total_params + 2 * 32000 * 4096 + 4096 == 6_738_415_616
    assert describe_network("llama-block", layers=2).total_params == 2 * 202_383_360


def test_llama_prefill_and_decode_macs() -> None:
    # small block: hidden 64, 4 heads (head_dim 16), 2 kv heads, mlp 128, seq 10, batch 3
    # weights: q, o 64·64 each; k, v 64·32 each; gate, up, down 64·128 each
    #   = 2·4096 + 2·2048 + 3·8192 = 36,864 MACs per token
    # prefill: T = 30 -> 1,105,920; attention 2·(3·4)·10·10·16 = 38,400 -> 1,144,320
    kw = {"hidden": 64, "heads": 4, "kv_heads": 2, "mlp": 128, "seq_len": 10, "batch": 3}
    assert describe_network("llama-block", mode="prefill", **kw).macs == 1_144_320
    # decode: T = 3 -> 110,592; attention 2·12·1·10·16 = 3,840 -> 114,432
    dec = describe_network("llama-block", mode="decode", **kw)
    assert dec.macs == 114_432
    qk = next(x for x in dec.network.layers if x.name == "layers.0.attn.qk").problem
    assert qk.bounds == {"G": 12, "M": 1, "N": 10, "K": 16}
    k = next(x for x in dec.network.layers if x.name == "layers.0.attn.k").problem
    assert k.bounds == {"M": 32, "N": 3, "K": 64}  # kv_heads·head_dim = 2·16


def test_llama_bad_params() -> None:
    with pytest.raises(SpecError, match="divisible"):
        describe_network("llama-block", hidden=100, heads=3)
    with pytest.raises(SpecError, match="mode"):
        describe_network("llama-block", mode="train")


# -- registry and errors ----------------------------------------------------------------------


def test_registry_and_aliases() -> None:
    assert list_networks() == ["bert-base", "llama-block", "resnet50", "vit-b16"]
    assert get_network("ResNet-50").name == "resnet50"
    assert get_network("vit_b16").name == "vit-b16"
    assert get_network("bert").name == "bert-base"
    assert "seq_len" in network_params("bert-base")
    with pytest.raises(SpecError, match=r"unknown network 'alexnet'.*resnet50"):
        get_network("alexnet")
    with pytest.raises(SpecError, match=r"seq_len do not apply to network 'resnet50'"):
        get_network("resnet50", seq_len=128)
    with pytest.raises(SpecError, match="weight_sparsity"):
        get_network("resnet50", weight_sparsity=1.5)
    with pytest.raises(SpecError, match=r"act_density must be a number in \[0, 1\], got 1.5"):
        get_network("resnet50", act_density=1.5)
    with pytest.raises(SpecError, match="position embeddings"):
        get_network("bert-base", seq_len=1024)


def test_batched_gemm_tile_sizes() -> None:
    # A[G,M,K]: 2·3·5 = 30 words; B[G,N,K]: 2·4·5 = 40; Z[G,M,N]: 2·3·4 = 24; MACs 2·3·4·5
    p = batched_gemm(2, 3, 4, 5)
    assert (p.full_size("A"), p.full_size("B"), p.full_size("Z")) == (30, 40, 24)
    assert p.macs == 120 and p.reduction_dims() == frozenset({"K"})


# -- CLI --------------------------------------------------------------------------------------


def test_cli_show_network_resnet50_totals() -> None:
    result = CliRunner().invoke(app, ["show", "network", "resnet50"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "layers (GEMM): 54" in out
    assert "total MACs: 4,089,184,256" in out
    assert "total params: 25,557,032" in out
    assert "layer4.2.conv3" in out


def test_cli_show_network_options_and_errors() -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["show", "network", "bert-base", "--param", "seq_len=128"], env={"COLUMNS": "160"}
    )
    assert ok.exit_code == 0, ok.output
    assert "total MACs: 11,174,215,680" in ok.output
    assert "total params: 109,482,240" in ok.output
    bad = runner.invoke(app, ["show", "network", "resnet50", "--param", "seq_len=3"])
    assert bad.exit_code == 2
    assert re.search(r"seq_len do not apply to network 'resnet50'", bad.output)
    unknown = runner.invoke(app, ["show", "network", "nope"])
    assert unknown.exit_code == 2 and "unknown network 'nope'" in unknown.output
    assert "Traceback" not in unknown.output
