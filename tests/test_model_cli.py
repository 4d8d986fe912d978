"""``testy-model eval`` on a Timeloop triple, with JSON/CSV outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from testy_model.cli import app

EX = Path(__file__).resolve().parents[2] / "shared" / "timeloop_examples"
SWS = EX / "simple_weight_stationary"
ARGS = [
    "eval",
    "--arch",
    str(SWS / "arch.yaml"),
    "--mapping",
    str(SWS / "ref_mapping.yaml"),
    "--network",
    str(EX / "default_problem.yaml"),
]


def test_eval_timeloop_triple_writes_json_and_csv(tmp_path) -> None:
    j, c = tmp_path / "r.json", tmp_path / "r.csv"
    res = CliRunner().invoke(app, [*ARGS, "--json", str(j), "--csv", str(c)])
    assert res.exit_code == 0, res.output
    d = json.loads(j.read_text())
    # Timeloop's own cycle count for this triple (reference.md): 903,168.
    assert d["total"]["cycles"] == 903_168
    assert d["layers"][0]["accesses"]["DRAM"]["Weights"]["reads"] == 864
    assert c.read_text().splitlines()[0].startswith("layer,plan,cycles")
    assert "total" in res.output


def test_eval_plan_and_override(tmp_path) -> None:
    # Two weight terms on this dense engine: each term runs dense -> 2 × 903,168 cycles.
    j = tmp_path / "r.json"
    res = CliRunner().invoke(app, [*ARGS, "--plan", "W=2:8+1:8", "--json", str(j)])
    assert res.exit_code == 0, res.output
    assert json.loads(j.read_text())["total"]["cycles"] == 2 * 903_168
    # --set reaches the loader, in the file's unit (words/cycle): 0.0625 words of 16 bits per
    # cycle = 1 bit per cycle makes DRAM the bottleneck: (864 + 151,875) words × 16 bits =
    # 2,443,824 cycles > 903,168 compute cycles (the 401,408 updates are writes, at unlimited
    # write bandwidth). --force: the JSON of the first run is replaced.
    res = CliRunner().invoke(
        app, [*ARGS, "--set", "levels.DRAM.read_bandwidth=0.0625", "--json", str(j), "--force"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(j.read_text())["total"]["cycles"] == 2_443_824


def test_eval_errors_are_one_line_exit_2() -> None:
    res = CliRunner().invoke(app, [*ARGS, "--plan", "W=7:3"])
    assert res.exit_code == 2
    assert "7:3" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, [*ARGS[:5], "--network", "/no/such/file.yaml"])
    assert res.exit_code == 2 and "file.yaml" in res.output
