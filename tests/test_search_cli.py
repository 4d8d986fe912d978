"""Tests of ``testy-model search`` (typer CliRunner) on a shipped engine with a TASD unit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.model.plan import Plan

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "arch_specs" / "stc_2of4_tasd.yaml"

# two GEMMs with 80 %-sparse (Bernoulli 0.2) weights; on 2:4 hardware the closed-form error of
# the weight series 2:4 is 1 − E[min(X,2)]/(4·0.2) with X ~ Binomial(4, 0.2):
# P(X = 0..4) = 0.4096, 0.4096, 0.1536, 0.0256, 0.0016;
# E[min(X,2)] = 0.4096·1 + (0.1536 + 0.0256 + 0.0016)·2 = 0.7712 -> e = 1 − 0.7712/0.8 = 0.036.
NET = """\
network:
  name: two-fc
  layers:
    - name: fc1
      gemm: {M: 64, N: 16, K: 128}
      densities: {A: {distribution: bernoulli, density: 0.2}}
    - name: fc2
      gemm: {M: 32, N: 16, K: 64}
      densities: {A: {distribution: bernoulli, density: 0.2}}
"""


@pytest.fixture
def net_file(tmp_path: Path) -> Path:
    p = tmp_path / "net.yaml"
    p.write_text(NET, encoding="utf-8")
    return p


def test_search_prints_layers_totals_and_writes_outputs(net_file: Path, tmp_path: Path) -> None:
    out, js, csv, png = (tmp_path / n for n in ("plan.yaml", "r.json", "r.csv", "r.png"))
    res = runner.invoke(
        app,
        [
            "search", "--arch", str(ARCH), "--network", str(net_file), "--budget", "0.05",
            "--out", str(out), "--json", str(js), "--csv", str(csv), "--plot", str(png),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    text = res.output
    for needle in ("fc1", "fc2", "dense", "structured, no TASD", "TASD plan", "EDP / dense",
                   "EDP ratio of the TASD plan"):  # fmt: skip
        assert needle in text
    # budget 0.05 admits 2:4 weights (e = 0.036, derivation above)
    plan = Plan.load(out)
    assert str(plan.for_layer("fc1").weights) == "2:4"
    data = json.loads(js.read_text())
    assert data["layers"][0]["error"] == pytest.approx(0.036)
    assert data["totals"]["plan"]["edp_pj_s"] < data["totals"]["dense"]["edp_pj_s"]
    assert data["ratios"]["edp_vs_dense"] == pytest.approx(
        data["totals"]["plan"]["edp_pj_s"] / data["totals"]["dense"]["edp_pj_s"]
    )
    assert len(csv.read_text().strip().splitlines()) == 3  # header + 2 layers
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_search_zero_budget_keeps_dense_weights(net_file: Path, tmp_path: Path) -> None:
    # 2:4 hardware, 0.2-dense weights: only dense and 2:4+2:4 (a full 4-block) are lossless
    out = tmp_path / "plan.yaml"
    res = runner.invoke(
        app,
        ["search", "--arch", str(ARCH), "--network", str(net_file), "--budget", "0",
         "--out", str(out), "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    plan = Plan.load(out)
    for name in ("fc1", "fc2"):
        assert str(plan.for_layer(name).weights) in ("dense", "2:4+2:4")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "everything"], "--mode 'everything': expected one of layer, global"),
        (["--objective", "area"], "--objective 'area'"),
        (["--budget", "-1"], "budget -1.0 must be a finite number >= 0"),
        (["--weight-sparsity", "0.5"], "--weight-sparsity: only for zoo networks"),
        (["--param", "seq_len"], "--param 'seq_len': expected KEY=VALUE"),
        (["--set", "bogus.key=3"], "unknown key 'bogus'"),
    ],
)
def test_search_user_errors_are_one_line(net_file: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["search", "--arch", str(ARCH), "--network", str(net_file), *args])
    assert res.exit_code == 2
    assert message in res.stderr
    assert "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_search_missing_arch_file(net_file: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["search", "--arch", str(tmp_path / "nope.yaml"), "--network", str(net_file)]
    )
    assert res.exit_code == 2
    assert "nope.yaml" in res.stderr


@pytest.mark.slow
def test_readme_main_command_under_ten_seconds() -> None:
    # README's main command, in a fresh interpreter (imports, mapper and search included)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "from testy_model.cli import main; main()", "search",
         "--arch", str(ARCH),
         "--network", "resnet50", "--weight-sparsity", "0.8", "--budget", "0.05"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "layer4.2.conv3" in proc.stdout and "EDP ratio of the TASD plan" in proc.stdout
    assert wall < 10.0, wall


def test_search_set_override_adds_activation_options(net_file: Path, tmp_path: Path) -> None:
    # stc_2of4_tasd runs 2:4 on A only: series on 2:4 with up to 3 terms are dense plus
    # (1), (2), (1,1), (2,1), (2,2), (1,1,1), (2,1,1) -> 8 weight options, activations dense:
    # 8 candidates per layer. With 2:4 also on B (--set): 8 x 8 = 64.
    counts = []
    for extra in ([], ["--set", "sparsity.B.patterns=[2:4]"]):
        js = tmp_path / "r.json"
        args = ["search", "--arch", str(ARCH), "--network", str(net_file), "-q", "--json", str(js)]
        res = runner.invoke(app, [*args, "--force", *extra])  # the second run replaces r.json
        assert res.exit_code == 0, res.output
        counts.append(json.loads(js.read_text())["layers"][0]["candidates"])
    assert counts == [8, 64]


def test_search_zoo_parameters() -> None:
    # bert-base at sequence length 64: 12 encoders x (q, k, v, qk, av, out, ffn1, ffn2) = 96
    # GEMMs + the pooler = 97 layers; an unknown parameter is a one-line error
    res = runner.invoke(
        app,
        ["search", "--arch", str(ARCH), "--network", "bert-base", "--param", "seq_len=64", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "over 97 layers" in res.output
    bad = runner.invoke(app, ["search", "--arch", str(ARCH), "--network", "bert-base",
                              "--param", "foo=1"])  # fmt: skip
    assert bad.exit_code == 2
    assert "parameter(s) foo do not apply to network 'bert-base'" in bad.stderr


def test_remap_lowers_the_plan_edp_on_a_shipped_engine() -> None:
    # a 256x64x256 GEMM with 0.2-dense weights on the 2:4 engine: the plan is chosen under the
    # mapping of the dense layer; mapped again for the chosen terms, the same plan (same series,
    # same errors) runs at a strictly lower EDP (measured: 16.1 -> 11.5 pJ·s)
    from testy_model.plan_search import search
    from testy_model.spec import Density, Layer, Network, gemm
    from testy_model.spec.arch_loader import load_arch

    net = Network(
        name="one",
        layers=(
            Layer(
                name="fc",
                problem=gemm(
                    256, 64, 256, name="fc", densities={"A": Density(kind="bernoulli", density=0.2)}
                ),
            ),
        ),
    )
    arch = load_arch(ARCH)
    base = search(net, arch, budget=0.05)
    again = search(net, arch, budget=0.05, remap=True)
    assert again.plan == base.plan
    assert again.to_dict()["remapped"] == ["fc"]
    assert again.totals("plan").edp_pj_s < base.totals("plan").edp_pj_s
