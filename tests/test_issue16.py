"""Issue 16: every defect it measured, one test each (each failed on the code before the fix).

Hostile inputs run under a CPU-time hang guard (``fuzzing.cpu_guard``), never a wall-clock
assertion. Expected numbers are derived in the comments, not copied from the code's output.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import fuzzing
import numpy as np
import pytest
from typer.testing import CliRunner

from testy_model.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
STUDY = SHARED / "sparseloop_stc_study/WD-0.5/M512-K1024-N256-IAD0.27-WD0.5/STC-RF2x-24-bandwidth"
TC = ROOT / "arch_specs/tc_dense.yaml"
STC = ROOT / "arch_specs/stc_2of4_tasd.yaml"
GEMM = ROOT / "mappings/problem_M512-K1024-N256.yaml"
TC_MAP = ROOT / "mappings/tc_dense_M512-K1024-N256.yaml"
TINY = ROOT / "examples/networks/tiny_cnn.yaml"
GUARD_S = 30.0  # CPU seconds before a command counts as a hang


def run(*args: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI in this process, under the CPU hang guard; a
    traceback fails the test."""
    with fuzzing.cpu_guard(GUARD_S):
        res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.stdout, res.stderr


def one_error(code: int, err: str) -> str:
    """The single ``error:`` line of a rejected run (exit code 2, nothing else on stderr but
    one-line warnings)."""
    assert code == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("error: ") and len(lines[-1].split("\n")) == 1
    assert all(x.startswith("warning: ") for x in lines[:-1]), lines
    return lines[-1]


# ---------------------------------------------------------------------------------------------
# hostile input
# ---------------------------------------------------------------------------------------------
def test_deep_nesting_is_one_line_not_recursion_error(tmp_path: Path) -> None:
    f = tmp_path / "deep.yaml"
    f.write_text("architecture: " + "[" * 1000 + "]" * 1000 + "\n")
    for args in (("validate", f), ("eval", "--arch", f, "--network", GEMM)):
        msg = one_error(*run(*args)[::2])
        assert f"{f}:1:" in msg and "nesting deeper than 64 levels" in msg


@pytest.mark.parametrize("value", ["1e999", "99999999999999999999", ".inf"])
def test_number_past_range_is_refused_before_arithmetic(tmp_path: Path, value: str) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(GEMM.read_text().replace("K: 1024", f"K: {value}"))
    msg = one_error(*run("eval", "--arch", TC, "--network", f)[::2])
    assert str(f) in msg and "problem.instance.K" in msg


def test_null_density_in_a_sparseloop_input_is_read_one_way(tmp_path: Path) -> None:
    """``density: null`` in the study's aggregated input (a TypeError in eval before) means "not
    given", so A is dense: its SMEM tile (262,144 words, no longer halved by the 2:4 density)
    plus B's 131,072 exceed the 262,144-word SMEM, and eval, study and validate all say so."""
    case = tmp_path / "case"
    case.mkdir()
    text = (STUDY / "aggregated_input.yaml").read_text()
    assert "        density: 0.5\n" in text
    (case / "aggregated_input.yaml").write_text(
        text.replace("        density: 0.5\n", "        density: null\n")
    )
    for name in ("map.yaml", "ERT.yaml", "ART.yaml"):
        (case / name).write_text((STUDY / name).read_text())
    agg = case / "aggregated_input.yaml"
    e = one_error(*run("eval", "--arch", agg, "--mapping", case / "map.yaml")[::2])
    s = one_error(*run("study", case)[::2])
    v = one_error(*run("validate", agg, case / "map.yaml")[::2])
    assert e == s == v and "tiles need 393216 words (A 262144, B 131072)" in e


def test_null_dimension_bound_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(GEMM.read_text().replace("K: 1024", "K: null"))
    for args in (("validate", f), ("eval", "--arch", TC, "--network", f)):
        msg = one_error(*run(*args)[::2])
        assert "problem.instance.K" in msg and "expected an integer" in msg


@pytest.mark.parametrize("which", ["mapping", "ert", "art"])
def test_alias_bomb_refused_by_eval_as_by_validate(tmp_path: Path, which: str) -> None:
    """Nested aliases expanding to 10^9 nodes: refused while composing (CPU guard, no
    expansion), by eval exactly as by validate."""
    src = {"mapping": STUDY / "map.yaml", "ert": STUDY / "ERT.yaml", "art": STUDY / "ART.yaml"}
    f = tmp_path / f"{which}.yaml"
    f.write_text(src[which].read_text() + "\n" + fuzzing.ALIAS_BOMB + "\n")
    opt = f"--{which}"
    eval_args = [
        "eval",
        "--arch",
        STUDY / "aggregated_input.yaml",
        *(["--mapping", STUDY / "map.yaml"] if which != "mapping" else []),
        opt,
        f,
    ]
    e = one_error(*run(*eval_args)[::2])
    v = one_error(*run("validate", *eval_args[1:])[::2])
    assert e == v and "aliases expand to more than 10,000 nodes" in e and str(f) in e


def test_ten_megabyte_string_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("network:\n  name: '" + "x" * 10_000_000 + "'\n")
    msg = one_error(*run("eval", "--arch", TC, "--network", f)[::2])
    assert "the limit is 1,048,576" in msg and str(f) in msg


@pytest.mark.parametrize("bad", [".nan", ".inf", "-1"])
def test_nan_inf_negative_energy_in_ert_refused(tmp_path: Path, bad: str) -> None:
    f = tmp_path / "ERT.yaml"
    f.write_text((STUDY / "ERT.yaml").read_text().replace("energy: 512", f"energy: {bad}", 1))
    code, out, err = run(
        "eval", "--arch", STUDY / "aggregated_input.yaml", "--mapping", STUDY / "map.yaml",
        "--ert", f,
    )  # fmt: skip
    msg = one_error(code, err)
    assert str(f) in msg and "ERT.tables[0].actions[0].energy" in msg
    assert "nan" not in out.lower()


# ---------------------------------------------------------------------------------------------
# map / plan / outputs
# ---------------------------------------------------------------------------------------------
def test_map_gemm_past_range_is_one_line() -> None:
    msg = one_error(*run("map", "--arch", TC, "--gemm", "M=99999999999999999999,N=1,K=1")[::2])
    assert "--gemm" in msg and "1..2**31" in msg


def test_plan_pattern_past_bound_and_plan_dense(tmp_path: Path) -> None:
    for plan in ("W=3:2048", "W=1:65536"):
        msg = one_error(*run("eval", "--arch", STC, "--network", GEMM, "--plan", plan)[::2])
        assert "M must be at most 256" in msg
    # --plan dense is the all-dense plan: the same totals as no plan at all
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run("eval", "--arch", STC, "--network", GEMM, "--plan", "dense", "--json", a)[0] == 0
    assert run("eval", "--arch", STC, "--network", GEMM, "--json", b)[0] == 0
    assert json.loads(a.read_text())["total"] == json.loads(b.read_text())["total"]


def test_outputs_replace_only_with_force_and_never_follow_symlinks_out(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("keep me")
    base = ("eval", "--arch", TC, "--network", GEMM, "--mapping", TC_MAP)
    msg = one_error(*run(*base, "--json", out)[::2])
    assert "the file exists; pass --force" in msg and out.read_text() == "keep me"
    code, stdout, _ = run(*base, "--json", out, "--force")
    assert code == 0 and f"--json: written to {out}" in " ".join(stdout.split())
    assert json.loads(out.read_text())["total"]["cycles"] > 0
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = outside / "victim.txt"
    target.write_text("precious")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "r.json").symlink_to(target)
    msg = one_error(*run(*base, "--json", folder / "r.json", "--force")[::2])
    assert "symbolic link" in msg and target.read_text() == "precious"


def test_search_out_onto_its_own_network_is_refused(tmp_path: Path) -> None:
    net = tmp_path / "net.yaml"
    net.write_text(
        TINY.read_text().replace("tiny_cnn_", str(ROOT / "examples/networks") + "/tiny_cnn_")
    )
    before = net.read_text()
    msg = one_error(*run("search", "--arch", STC, "--network", net, "--out", net, "--force")[::2])
    assert "is an input file of this run" in msg and net.read_text() == before


def test_json_into_missing_folder_fails_before_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import testy_model.model.evaluate as ev

    def never(*a: object, **k: object) -> None:
        raise AssertionError("the evaluation ran before the output folder was checked")

    monkeypatch.setattr(ev, "evaluate", never)
    msg = one_error(
        *run("eval", "--arch", TC, "--network", GEMM, "--json", "/no/such/dir/r.json")[::2]
    )
    assert "the folder '/no/such/dir' does not exist" in msg


# ---------------------------------------------------------------------------------------------
# one reading of every file
# ---------------------------------------------------------------------------------------------
def test_mapping_not_covering_the_problem_is_rejected_by_eval_and_study(tmp_path: Path) -> None:
    """The study's STC mapping with N: 2 at DRAM changed to 1 covers N = 128 of 256: eval (its
    Sparseloop path) and study reject it with validate's message, never price it."""
    case = tmp_path / "case"
    case.mkdir()
    for name in ("aggregated_input.yaml", "ERT.yaml", "ART.yaml"):
        (case / name).write_text((STUDY / name).read_text())
    bad = (STUDY / "map.yaml").read_text().replace("factors: M2 N2 K1", "factors: M2 N1 K1")
    assert bad != (STUDY / "map.yaml").read_text()
    (case / "map.yaml").write_text(bad)
    args = ("--arch", case / "aggregated_input.yaml", "--mapping", case / "map.yaml")
    e = one_error(*run("eval", *args)[::2])
    v = one_error(*run("validate", *args)[::2])
    s = one_error(*run("study", case)[::2])
    assert e == v == s and "dimension N: factors multiply to 128" in e


def test_duplicate_keys_in_ert_art_sweep_are_errors_everywhere(tmp_path: Path) -> None:
    ert = tmp_path / "ERT.yaml"
    ert.write_text(
        (STUDY / "ERT.yaml")
        .read_text()
        .replace("energy: 512\n", "energy: 512\n      energy: 1\n", 1)
    )
    msg = one_error(*run("eval", "--arch", STUDY / "aggregated_input.yaml", "--ert", ert)[::2])
    assert "duplicate key 'energy'" in msg and str(ert) in msg
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        f"sweep:\n  arch: {STC}\n  plan: dense\n  networks: [{TINY}]\n  plan: 'W=2:4'\n"
    )
    for args in (("sweep", sweep, "--out", tmp_path / "o.csv"), ("validate", sweep)):
        msg = one_error(*run(*args)[::2])
        assert f"{sweep}:5:" in msg and "duplicate key 'plan'" in msg


def test_validate_accepts_the_study_stc_mapping_eval_and_study_accept() -> None:
    code, out, err = run("validate", STUDY / "aggregated_input.yaml", STUDY / "map.yaml")
    assert code == 0, err
    assert "mapping fits the architecture and problem" in " ".join(out.split())


def test_validate_checks_sweep_files(tmp_path: Path) -> None:
    code, out, err = run("validate", ROOT / "examples/sweeps/resnet50_small.yaml")
    assert code == 0, err
    assert "sweep of 12 points" in out  # 3 depths x 2 bandwidths x 2 sparsities
    bad = tmp_path / "s.yaml"
    bad.write_text(f"sweep:\n  arch: {STC}\n  grid:\n    levels.SMEM.dpth: [1, 2]\n")
    msg = one_error(*run("validate", bad)[::2])
    assert str(bad) in msg and "sweep.grid" in msg and "dpth" in msg


# ---------------------------------------------------------------------------------------------
# silent wrong numbers
# ---------------------------------------------------------------------------------------------
def test_negative_convolution_stride_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "conv.yaml"
    f.write_text((SHARED / "timeloop_examples/default_problem.yaml").read_text().replace(
        "Wstride: 2", "Wstride: -1"))  # fmt: skip
    msg = one_error(*run("eval", "--arch", TC, "--network", f)[::2])
    assert str(f) in msg and "stride or dilation" in msg and ">= 1" in msg


def test_unknown_component_class_is_an_error_listing_the_known(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text(TC.read_text().replace("class: DRAM", "class: DRAMM"))
    for args in (("validate", f), ("eval", "--arch", f, "--network", GEMM)):
        msg = one_error(*run(*args)[::2])
        assert "architecture.nodes[1].class" in msg
        assert "unknown component class 'DRAMM' (did you mean 'DRAM'?)" in msg
        assert "SRAM" in msg and "intmac" in msg


def test_subnormal_weights_report_the_real_error() -> None:
    """Every value 1e-310 (subnormal): 2:4 keeps 2 of each 4 equal values, so the residual holds
    half the squared mass: error sqrt(1/2) (it underflowed to 0.0 before)."""
    from testy_model.tasd.decompose import decompose

    d = decompose(np.full((4, 8), 1e-310), "2:4")
    assert d.kept_nnz == (16,) and d.residual_nnz == 16
    assert d.rel_error == pytest.approx(math.sqrt(0.5), rel=1e-12)


def _net_with_tensor(tmp_path: Path, arr: np.ndarray) -> Path:
    np.save(tmp_path / "w.npy", arr)
    f = tmp_path / "net.yaml"
    k = arr.shape[1] if arr.ndim == 2 else 8
    f.write_text(
        "network:\n  layers:\n    - name: fcx\n"
        f"      gemm: {{M: {arr.shape[0] or 4}, N: 4, K: {k}}}\n      weight_tensor: w.npy\n"
    )
    return f


def test_nan_in_a_weight_tensor_names_the_file_and_the_layer(tmp_path: Path) -> None:
    arr = np.ones((4, 8), dtype=np.float32)
    arr[1, 3] = np.nan
    net = _net_with_tensor(tmp_path, arr)
    msg = one_error(*run("eval", "--arch", STC, "--network", net, "--plan", "W=2:4",
                         "--measured")[::2])  # fmt: skip
    assert "w.npy" in msg and "layer 'fcx'" in msg and "NaN first at index [1, 3]" in msg


def test_empty_tensor_is_rejected(tmp_path: Path) -> None:
    net = _net_with_tensor(tmp_path, np.zeros((0, 8), dtype=np.float32))
    msg = one_error(*run("eval", "--arch", STC, "--network", net, "--plan", "W=2:4",
                         "--measured")[::2])  # fmt: skip
    assert "w.npy" in msg and "the tensor is empty" in msg


def test_ragged_reduction_blocks_are_stated(tmp_path: Path) -> None:
    f = tmp_path / "n.yaml"
    f.write_text("network:\n  layers:\n    - name: fc\n      gemm: {M: 64, N: 32, K: 1001}\n")
    code, out, err = run("eval", "--arch", STC, "--network", f, "--plan", "W=2:8")
    assert code == 0, err
    text = " ".join(out.split())
    assert "partial block" in text and "fc weights L=1001, M=8" in text  # 1001 = 125·8 + 1


def test_estimator_zero_sizes_say_what_is_wrong() -> None:
    """A public estimator at depth 0 (or width 0) names the size, never "math domain error" or a
    bare division by zero."""
    from testy_model.estimators.energy import storage_word_energy

    with pytest.raises(ValueError, match=r"depth 0: expected positive sizes"):
        storage_word_energy("SRAM", 0, 64, 8)
    with pytest.raises(ValueError, match=r"width 0 and depth 1024: expected positive sizes"):
        storage_word_energy("SRAM", 1024, 0, 8)


# ---------------------------------------------------------------------------------------------
# bad input that passed
# ---------------------------------------------------------------------------------------------
def test_plan_entry_for_a_missing_layer_is_rejected() -> None:
    msg = one_error(*run("eval", "--arch", STC, "--network", TINY, "--plan",
                         "W=dense;fc9:W=2:4")[::2])  # fmt: skip
    assert "plan layer 'fc9' is not a layer of the network" in msg
    assert re.search(r"\(did you mean 'fc[12]'\?\)", msg) and "conv1, fc1, fc2" in msg


def test_mistyped_network_key_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    f = tmp_path / "n.yaml"
    f.write_text(
        "network:\n  layers:\n    - name: fc\n      gemm: {M: 8, N: 8, K: 8}\n"
        "      weigth_tensor: w.npy\n"
    )
    for args in (("validate", f), ("eval", "--arch", STC, "--network", f)):
        msg = one_error(*run(*args)[::2])
        assert f"{f}:5:" in msg and "network.layers[0].weigth_tensor" in msg
        assert "(did you mean 'weight_tensor'?)" in msg


def test_validate_prints_warnings_in_one_line_and_names_no_fake_flag(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text(TC.read_text().replace("depth: 4096", "depth: 4096\n      colour: red", 1))
    code, out, err = run("validate", f)
    assert code == 0
    warns = [x for x in err.splitlines() if x.strip()]
    assert len(warns) == 1 and warns[0].startswith(f"warning: {f}:")
    assert "attributes.colour" in warns[0] and "-W" not in out + err


def test_validate_checks_mapping_targets_against_the_architecture_alone(tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(TC_MAP.read_text().replace("target: SMEM", "target: SMEMX", 1))
    msg = one_error(*run("validate", TC, m)[::2])
    assert str(m) in msg and "unknown target 'SMEMX'" in msg


def test_fixed_structured_has_one_meaning(tmp_path: Path) -> None:
    """``fixed_structured`` 0.5 is Sparseloop's fixed-structured density, which is the N:M
    pattern 2:4, for load_problem, validate and eval alike (it was hypergeometric in
    load_problem and 2:4 in eval)."""
    from testy_model.spec import load_problem

    f = tmp_path / "p.yaml"
    f.write_text(
        GEMM.read_text().replace(
            "    K: 1024",
            "    K: 1024\n    densities:\n      A: {distribution: fixed_structured, density: 0.5}",
        )
    )
    d = load_problem(f).density("A")
    assert d.kind == "fixed_structured" and str(d.nm_pattern) == "2:4"
    code, out, _ = run("validate", f)
    assert code == 0 and "N:M 2:4, density 0.5" in out


# ---------------------------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------------------------
def test_warnings_have_no_source_line_and_accelergy_attributes_are_quiet(tmp_path: Path) -> None:
    """The study's aggregated input through map, eval and validate: Accelergy's own attributes
    (cluster-size, n_banks, n_rdwr_ports) raise nothing; a real unused key is one line
    ``warning: file:line: ...`` with no Python source line, once per file."""
    agg = tmp_path / "agg.yaml"
    agg.write_text(
        (STUDY / "aggregated_input.yaml")
        .read_text()
        .replace("        cluster-size: 1\n", "        cluster-size: 1\n        colour: red\n", 1)
    )
    for args in (
        ("map", "--arch", agg, "--gemm", "M=64,N=64,K=64"),
        ("eval", "--arch", agg, "--mapping", STUDY / "map.yaml"),
        ("validate", agg),
    ):
        code, _, err = run(*args)
        assert code == 0, err
        # (map prints its one-line summary to stderr: its YAML is the standard output)
        lines = [x for x in err.splitlines() if x.strip() and not x.startswith("GEMM ")]
        assert [x for x in lines if "colour" in x] == [lines[0]], lines
        assert all(x.startswith("warning: ") for x in lines), lines
        assert not re.search(r"cluster-size|n_banks|n_rdwr_ports|SpecWarning|warn_unused", err)


def test_sweep_given_an_architecture_says_so(tmp_path: Path) -> None:
    msg = one_error(
        *run("sweep", ROOT / "arch_specs/stc_2of4.yaml", "--out", tmp_path / "o.csv")[::2]
    )
    assert "this is an architecture file" in msg and "tag" not in msg


def test_mapping_option_suggests_mapper() -> None:
    msg = one_error(*run("eval", "--arch", TC, "--network", GEMM, "--mapping", "mapperr")[::2])
    assert "(did you mean 'mapper'?)" in msg


def test_bare_series_plan_suggests_the_operand() -> None:
    msg = one_error(*run("eval", "--arch", STC, "--network", GEMM, "--plan", "2:4")[::2])
    assert "did you mean 'W=2:4' (weights) or 'A=2:4' (activations)?" in msg


def test_help_shows_no_type_tag_on_flags() -> None:
    for cmd in ("eval", "search", "sweep", "validate"):
        code, out, _ = run(cmd, "--help")
        assert code == 0
        for line in out.splitlines():
            if re.search(r"--(help|measured|force|quiet|progress|remap)\b", line):
                assert "<bool>" not in line, line


def test_one_spelling_of_zoo_parameters() -> None:
    code, out, err = run("show", "network", "bert-base", "--param", "seq_len=128")
    assert code == 0, err and "total MACs" in out
    code, _, err = run("show", "network", "bert-base", "--seq-len", "128")
    assert code == 2 and "No such option" in err


def test_bandwidth_is_words_per_cycle_in_files_set_and_sweeps(tmp_path: Path) -> None:
    """read_bandwidth: 16 in the file, --set ...=16 and a sweep grid value 16 are one design:
    16 words/cycle x 8 b = 128 bits/cycle in the typed model."""
    from testy_model.dse.explore import arch_for
    from testy_model.spec import load_arch

    f = tmp_path / "a.yaml"
    f.write_text(STC.read_text().replace("read_bandwidth: 32", "read_bandwidth: 16", 1))
    in_file = load_arch(f).level("DRAM").read_bandwidth
    by_set = load_arch(STC, ["levels.DRAM.read_bandwidth=16"]).level("DRAM").read_bandwidth
    by_sweep = arch_for(STC, {"levels.DRAM.read_bandwidth": 16}).level("DRAM").read_bandwidth
    assert in_file == by_set == by_sweep == 16 * 8
    _, out, _ = run("eval", "--help")
    assert "words/cycle" in " ".join(out.split())


def test_show_arch_fills_its_energy_source_column() -> None:
    code, out, _ = run("show", "arch", TC, "--ert", STUDY / "ERT.yaml")
    assert code == 0
    rows = [x for x in out.splitlines() if x.startswith("│ ")]
    assert len(rows) == 5  # DRAM, SMEM, RF, LRF, MAC
    assert all("ERT" in r.split("│")[-2] for r in rows), rows


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------
def test_pareto_fronts_are_per_sparsity(tmp_path: Path) -> None:
    """Point b (sparsity 0.8) is dominated only by a (sparsity 0.5): it is on its own workload's
    front; energies are plotted in mJ without an offset."""
    import pandas as pd

    df = pd.DataFrame(
        {
            "point_id": ["a", "b", "c"],
            "network": ["r", "r", "r"],
            "weight_sparsity": [0.5, 0.8, 0.8],
            "valid": [True, True, True],
            "seconds": [1e-3, 2e-3, 3e-3],
            "energy_pj": [1.0e9, 2.0e9, 3.0e9],
            "area_mm2": [1.0, 1.0, 1.0],
        }
    )
    res = tmp_path / "r.csv"
    df.to_csv(res, index=False)
    fronts, png = tmp_path / "f.csv", tmp_path / "f.png"
    code, _, err = run("pareto", res, "--objectives", "seconds,energy_pj", "--out", fronts,
                       "--plot", png)  # fmt: skip
    assert code == 0, err
    assert sorted(pd.read_csv(fronts)["point_id"]) == ["a", "b"]
    from testy_model.plots import pareto_figure

    f2 = {0.5: df.iloc[[0]], 0.8: df.iloc[[1]]}
    fig = pareto_figure(df, f2, ["seconds", "energy_pj"], "weight_sparsity")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "energy (mJ)" and ax.get_xlabel() == "latency (ms)"
    assert len(ax.get_legend().get_texts()) == 2


def test_search_plot_one_colour_per_component_in_both_panels() -> None:
    from testy_model.plan_search import plot_search, search
    from testy_model.plots import component_colors
    from testy_model.spec import load_arch
    from testy_model.spec.loaders import load_network

    rep = search(
        load_network(ROOT / "examples/search/mlp.yaml"),
        load_arch(ROOT / "arch_specs/s2ta_tasd.yaml"),
    )
    fig = plot_search(rep)
    ax_t, ax_e = fig.axes[:2]
    names = [t.get_text() for t in ax_e.get_legend().get_texts()]
    assert names[0] == "MAC / compute" and "DRAM" in names
    legend = ax_e.get_legend()
    handles = dict(zip(names, legend.legend_handles, strict=True))
    mac = tuple(handles["MAC / compute"].get_facecolor())
    dram = tuple(handles["DRAM"].get_facecolor())
    assert mac != dram
    # the compute part of every latency bar (the first bar drawn per variant) is MAC's colour
    first = ax_t.containers[0]
    assert all(tuple(b.get_facecolor()) == mac for b in first)
    assert (
        component_colors(["MAC", "DRAM", "compute"])["compute"] == component_colors(["MAC"])["MAC"]
    )


def test_eval_plot_title_is_not_clipped() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from testy_model.model.evaluate import evaluate
    from testy_model.spec import load_arch, load_mapping, load_problem
    from testy_model.spec.workload import Layer, Network

    prob = load_problem(GEMM)
    arch = load_arch(TC)
    net = Network(
        name="a-network-with-a-very-long-name-" * 4, layers=(Layer(name="l", problem=prob),)
    )
    rep = evaluate(net, arch, load_mapping(TC_MAP, arch, prob))
    fig = rep.plot_breakdown()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.bbox
    for text in fig.texts + [ax.title for ax in fig.axes]:
        if text.get_text():
            ext = text.get_window_extent(renderer=canvas.get_renderer())
            assert ext.x0 >= box.x0 - 1 and ext.x1 <= box.x1 + 1, text.get_text()


# ---------------------------------------------------------------------------------------------
# long numeric work
# ---------------------------------------------------------------------------------------------
def test_minilm_search_limits_threads_shows_progress_keeps_losses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("safetensors")
    import threadpoolctl

    import testy_model.models.search_quality as sq

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seen: list[int] = []
    real = sq.quality_search

    def spy(*a: object, **k: object) -> object:
        seen.extend(p["num_threads"] for p in threadpoolctl.threadpool_info()
                    if p["user_api"] == "blas")  # fmt: skip
        res = real(*a, **k)
        k["cache"].entries[("probe", "2:4", "dense", 0.0, "x")] = 0.25  # type: ignore[union-attr]
        return res

    monkeypatch.setattr(sq, "quality_search", spy)
    code, _, err = run("minilm", "search", "--arch", ROOT / "arch_specs/vegeta_tasd.yaml",
                       "--target", "1", "--no-held-out")  # fmt: skip
    assert code == 0, err
    assert seen and set(seen) == {1}
    assert "loading all-MiniLM-L6-v2" in err and "done in" in err
    kept = tmp_path / "cache/testy-model/minilm_losses.csv"
    assert kept.is_file() and "probe,2:4,dense" in kept.read_text()


def test_notebook_04_limits_threads_before_numpy_loads() -> None:
    nb = json.loads((ROOT / "notebooks/04_minilm_tasd.ipynb").read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    lines = [x.strip() for x in "".join(code["source"]).splitlines()]
    first_numpy = next(
        i
        for i, x in enumerate(lines)
        if x.startswith(("%matplotlib", "import numpy", "import matplotlib", "from testy_model"))
    )
    assert any("threadpool_limits(1)" in x for x in lines[:first_numpy])
    assert any("OPENBLAS_NUM_THREADS" in x for x in lines[:first_numpy])
