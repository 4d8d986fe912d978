"""``testy-model eval`` on Sparseloop inputs, zoo networks, the mapper and plots.

Reference figures (independent of this code):
- Sparseloop's reference_stats.txt of the four study cases (cycles exact, energy printed to
  0.01 µJ), and the per-instance actual counts it prints;
- TC case, SMEM (1 instance) streams A: reads = fills = what the 1024 LRFs fill, 1024 words
  each (RF K64 × DRAM M8 × N2 visits of a 1-word tile) = 1,048,576 (tests/test_sparseloop_study.py
  derives it in full);
- STC WD 0.5: SMEM A moves compressed at 2:4: 1,048,576 algorithmic reads × 0.5 = 524,288 actual,
  none gated or skipped; 2-bit CP metadata per kept value: 524,288 × 2 bits / 8-bit words =
  131,072 metadata words.
- A weight pruned to Bernoulli density 0.5 and run as one 2:4 term keeps E[min(X, 2)]/4 with
  X ~ Binomial(4, 0.5): P(X=0) = 1/16, P(X=1) = 4/16, P(X>=2) = 11/16, so
  E = (4·1 + 11·2)/16 = 26/16 and the kept fraction is 26/64 = 0.40625 of the dense MACs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.model.study import evaluate_case
from testy_model.spec.reference_stats import parse_reference_stats

STUDY = Path(__file__).resolve().parents[2] / "shared" / "sparseloop_stc_study"
REF_CASES = sorted(p.parent for p in STUDY.rglob("reference_stats.txt"))
ROOT = Path(__file__).resolve().parents[1]
WIDE = {"COLUMNS": "200"}


def _eval_case(case: Path, out: Path, *extra: str) -> dict:
    args = [
        "eval",
        "--arch",
        str(case / "aggregated_input.yaml"),
        "--mapping",
        str(case / "map.yaml"),
        "--ert",
        str(case / "ERT.yaml"),
        "--art",
        str(case / "ART.yaml"),
        "--json",
        str(out),
        "--conventions",
        "sparseloop-2022",
        *extra,
    ]
    res = CliRunner().invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


@pytest.mark.parametrize("case", REF_CASES, ids=lambda p: f"{p.parent.name[-5:]}-{p.name[:3]}")
def test_eval_on_sparseloop_case_equals_study_and_sparseloop(case: Path, tmp_path: Path) -> None:
    d = _eval_case(case, tmp_path / "r.json")
    ref = parse_reference_stats(case / "reference_stats.txt")
    assert d["total"]["cycles"] == ref["cycles"]
    assert d["total"]["energy_pj"] / 1e6 == pytest.approx(ref["energy_uj"], abs=0.006)
    lay = d["layers"][0]
    assert set(lay) >= {"name", "cycles", "seconds", "energy_pj", "energy_by_component"}
    # the study command's numbers, the same files
    study = evaluate_case(case)
    sparse = "sparse_optimizations" in (case / "aggregated_input.yaml").read_text()
    assert ("compute_split" in lay) == sparse
    assert d["total"]["energy_pj"] == pytest.approx(study.energy_pj, rel=1e-12)
    assert sum(lay["energy_by_component"].values()) == pytest.approx(study.energy_pj, rel=1e-12)
    for lv in study.levels:
        for t, ts in lv.tensors.items():
            got = lay["accesses"][lv.name][t]
            assert set(got) >= {"reads", "fills", "updates", "metadata_reads"}
            for kind in ("reads", "fills", "updates"):
                n = ts.utilized_instances
                assert got[kind] == pytest.approx(getattr(ts, kind).actual * n)
                if sparse:  # the sparse stage ran: the splits are there
                    assert set(got[f"{kind}_split"]) == {"actual", "gated", "skipped"}
                # Sparseloop's printed per-instance actual counts, within 1%
                theirs = ref["levels"].get(lv.name, {}).get(t, {}).get(kind)
                if theirs is not None:
                    assert got[kind] / n == pytest.approx(theirs, rel=0.01, abs=1e-9)


def test_eval_case_hand_counts(tmp_path: Path) -> None:
    tc = next(c for c in REF_CASES if c.name.startswith("TC") and "WD0.5" in c.parent.name)
    d = _eval_case(tc, tmp_path / "tc.json")
    a = d["layers"][0]["accesses"]["SMEM"]["A"]
    assert a["reads"] == a["fills"] == 1_048_576
    stc = next(c for c in REF_CASES if c.name.startswith("STC") and "WD0.5" in c.parent.name)
    d = _eval_case(stc, tmp_path / "stc.json", "--plot", str(tmp_path / "p.png"))
    a = d["layers"][0]["accesses"]["SMEM"]["A"]
    assert a["reads_split"] == {"actual": 524_288, "gated": 0, "skipped": 0}
    assert a["metadata_reads"] == 131_072
    assert d["total"]["cycles"] == 65_536
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_eval_problem_required_and_plan_rejected(tmp_path: Path) -> None:
    arch = ROOT / "arch_specs" / "tc_dense.yaml"
    res = CliRunner().invoke(app, ["eval", "--arch", str(arch)], env=WIDE)
    assert res.exit_code == 2 and "problem" in res.output and "Traceback" not in res.output
    case = REF_CASES[0]
    res = CliRunner().invoke(
        app,
        ["eval", "--arch", str(case / "aggregated_input.yaml"), "--plan", "W=2:4"],
        env=WIDE,
    )
    assert res.exit_code == 2 and "Sparseloop inputs" in res.output
    res = CliRunner().invoke(
        app, ["eval", "--arch", str(arch), "--network", "no-such-net"], env=WIDE
    )
    assert res.exit_code == 2 and "no-such-net" in res.output


def test_eval_zoo_network_with_mapper_and_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    args = [
        "eval",
        "--arch",
        str(ROOT / "arch_specs" / "stc_2of4.yaml"),
        "--network",
        "llama-block",
        "--weight-sparsity",
        "0.5",
        "--plan",
        "W=2:4",
        "--json",
        str(out),
        "--plot",
        str(png),
    ]
    res = CliRunner().invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    from testy_model.graph.zoo import get_network

    net = get_network("llama-block")
    assert [x["name"] for x in d["layers"]] == [x.name for x in net.layers]
    weights = [x for x in d["layers"] if x["name"].endswith((".q", ".k", ".v", ".o", "gate"))]
    assert len(weights) == 5
    for x in weights:  # 26/64 of the dense MACs (module docstring)
        assert x["effective_macs"] / x["macs"] == pytest.approx(0.40625)
        assert x["valid"]  # the mapper sized tiles for the same terms
    assert png.stat().st_size > 1000
    import matplotlib.image as mpimg

    assert mpimg.imread(png).shape[0] > 100


def test_timeloop_invocation_and_named_options_agree(tmp_path: Path) -> None:
    # timeloop-model's way (files in any order, merged by top-level key) and the named options
    # give the same report; the conventions are explicit (default timeloop) and recorded
    case = next(c for c in REF_CASES if c.name.startswith("STC") and "WD0.5" in c.parent.name)
    files = [str(case / f) for f in ("map.yaml", "ERT.yaml", "aggregated_input.yaml", "ART.yaml")]
    res = CliRunner().invoke(app, ["eval", *files, "--json", str(tmp_path / "a.json")], env=WIDE)
    assert res.exit_code == 0, res.output
    a = json.loads((tmp_path / "a.json").read_text())
    b = _eval_case(case, tmp_path / "b.json")
    assert a["conventions"] == "timeloop" and b["conventions"] == "sparseloop-2022"
    assert a["total"]["cycles"] == b["total"]["cycles"] == 65_536
    res = CliRunner().invoke(
        app,
        ["eval", *files, "--conventions", "sparseloop-2022", "--json", str(tmp_path / "c.json")],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "c.json").read_text())["total"] == b["total"]
    # Timeloop v3.0.3 does not count the first fill of an output tile: less energy
    assert a["total"]["energy_pj"] < b["total"]["energy_pj"]
    assert a["layers"][0]["compute_split"] == {"actual": 67_108_864, "gated": 0, "skipped": 0}


def test_a_block_in_two_files_is_an_error_naming_both(tmp_path: Path) -> None:
    case = REF_CASES[0]
    other = tmp_path / "map2.yaml"
    other.write_text((case / "map.yaml").read_text())
    res = CliRunner().invoke(
        app,
        ["eval", str(case / "aggregated_input.yaml"), str(case / "map.yaml"), str(other)],
        env=WIDE,
    )
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "'mapping'" in res.output and "map2.yaml" in res.output and "map.yaml" in res.output
    res = CliRunner().invoke(
        app, ["eval", str(case / "map.yaml"), "--conventions", "nope"], env=WIDE
    )
    assert res.exit_code == 2 and "sparseloop-2022" in res.output


def test_shipped_stc_spec_with_the_study_problem_and_mapping(tmp_path: Path) -> None:
    # arch_specs/sparseloop_stc.yaml states the STC's 2:4 support (sparsity: A 2:4, skip); with
    # the study's fixed-structured A and its mapping, and no plan, the engine's support runs as
    # Sparseloop optimizations of the same core: Sparseloop's 65,536 cycles and 132.61 uJ
    case = next(c for c in REF_CASES if c.name.startswith("STC") and "WD0.5" in c.parent.name)
    out = tmp_path / "r.json"
    args = [
        "eval",
        "--arch",
        str(ROOT / "arch_specs" / "sparseloop_stc.yaml"),
        "--network",
        str(case / "aggregated_input.yaml"),
        "--mapping",
        str(case / "map.yaml"),
        "--conventions",
        "sparseloop-2022",
        "--json",
        str(out),
    ]
    res = CliRunner().invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["total"]["cycles"] == 65_536
    assert round(d["total"]["energy_pj"] / 1e6, 2) == 132.61
    assert d["layers"][0]["valid"]
    assert d["layers"][0]["accesses"]["SMEM"]["A"]["reads_split"]["actual"] == 524_288
