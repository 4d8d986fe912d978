"""Shared CLI behaviour: piped output is not cut at 80 columns."""

import subprocess
import sys


def test_piped_tables_keep_whole_numbers() -> None:
    """Through a pipe (no terminal) rich would default to 80 columns and cut cells ("75,497,4…").
    BERT-base's MLP up-projection at 128 tokens is 3072·128·768 = 301,989,888 MACs; the whole
    number must reach the pipe, and no cell may be elided."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from testy_model.cli import main; main()",
            "show",
            "network",
            "bert-base",
            "--param",
            "seq_len=128",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "301,989,888" in out
    assert "…" not in out


def test_measured_eval_with_a_relative_network_path(tmp_path) -> None:
    """Tensor paths in a network file are relative to that file; given the network by a relative
    path from the repository root, `eval --measured` must find fc1's weights (not a doubled
    folder) and say it measured that layer."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    plan = tmp_path / "plan.yaml"
    plan.write_text("plan:\n  default: {weights: '2:8+1:8', activations: dense}\n")
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from testy_model.cli import main; main()",
            "eval",
            "--arch",
            "arch_specs/s2ta_tasd.yaml",
            "--network",
            "examples/search/mlp.yaml",
            "--measured",
            "--plan",
            str(plan),
        ],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert res.returncode == 0, res.stderr
    assert "measured on real tensors for 1 layer(s)" in res.stdout


def test_map_to_stdout_is_loadable_yaml(tmp_path) -> None:
    """`testy-model map … > m.yaml` must give a mapping file the loader reads back: the summary
    line goes to stderr, the YAML to stdout unwrapped."""
    from pathlib import Path

    from testy_model.spec import gemm, load_arch, load_mapping

    root = Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from testy_model.cli import main; main()",
            "map",
            "--arch",
            "arch_specs/tc_dense.yaml",
            "--gemm",
            "M=64,N=32,K=128",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    assert "cycles" in res.stderr
    f = tmp_path / "m.yaml"
    f.write_text(res.stdout)
    arch = load_arch(root / "arch_specs" / "tc_dense.yaml")
    mapping = load_mapping(f, arch=arch, problem=gemm(64, 32, 128))
    assert [lm.target for lm in mapping.levels] == list(arch.level_names)


def test_eval_names_plan_terms_that_no_hardware_pattern_runs() -> None:
    """3:4 fits no pattern of the 2:4 engine (a 4-block may hold 3 > 2 non-zeros), so every
    layer's weight term runs at dense speed: eval must say so, naming the layers; 2:8 fits
    2:4 (at most 2 non-zeros in any 4-block) and gets no note."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def run(plan: str) -> str:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                "from testy_model.cli import main; main()",
                "eval",
                "--arch",
                "arch_specs/stc_2of4.yaml",
                "--network",
                "examples/search/mlp.yaml",
                "--plan",
                plan,
            ],
            capture_output=True,
            text=True,
            cwd=root,
            check=True,
        ).stdout

    out = run("W=3:4,A=dense")
    assert "3 plan term(s) fit no hardware pattern of stc_2of4" in out
    assert "fc1 weights 3:4" in out
    assert "fit no hardware pattern" not in run("W=2:8,A=dense")


def test_validate_reads_plan_files(tmp_path) -> None:
    """`validate` accepts the plan files `search --out` writes, lists their series, and points
    a bad series at its line and key (5:4 has N > M)."""
    good = tmp_path / "plan.yaml"
    good.write_text(
        "plan:\n  default: {weights: '2:4', activations: dense}\n"
        "  layers:\n    fc1: {weights: 2:8+1:8, activations: dense}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("plan:\n  default: {weights: '5:4'}\n")
    cmd = [sys.executable, "-c", "from testy_model.cli import main; main()", "validate"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "fc1: W=2:8+1:8, A=dense" in ok.stdout
    res = subprocess.run([*cmd, str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    assert f"{bad}:2: plan.default.weights" in res.stderr
    assert "Traceback" not in res.stderr


def test_eval_takes_zoo_parameters(tmp_path) -> None:
    """`eval --network bert-base --param seq_len=64`: the Q projection is a GEMM of
    M=768 out features, N=64 tokens, K=768 in features: 768·64·768 = 37,748,736 MACs."""
    import json

    out = tmp_path / "r.json"
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from testy_model.cli import main; main()",
            "eval",
            "--arch",
            "arch_specs/tc_dense.yaml",
            "--network",
            "bert-base",
            "--param",
            "seq_len=64",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=__import__("pathlib").Path(__file__).resolve().parents[1],
    )
    assert res.returncode == 0, res.stderr
    layers = {x["name"]: x for x in json.loads(out.read_text())["layers"]}
    assert layers["encoder.0.attn.q"]["macs"] == 768 * 64 * 768
