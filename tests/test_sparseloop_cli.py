"""``testy-model study``: one Sparseloop case from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from testy_model.cli import app

STUDY = Path(__file__).resolve().parents[2] / "shared" / "sparseloop_stc_study"
CASE = STUDY / "WD-0.5" / "M512-K1024-N256-IAD0.27-WD0.5" / "STC-RF2x-24-bandwidth"


def test_study_command_json(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["study", str(CASE), "--json", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    # ours and Sparseloop's summary side by side (reference.md: 65,536 cycles, 132.61 µJ)
    assert "total: 65,536 cycles, 132.61 µJ (sparseloop-2022 conventions)" in res.output
    assert "(Sparseloop: 65,536 cycles, 132.61 µJ)" in res.output
    data = json.loads(out.read_text())
    assert data["cycles"] == 65536
    smem = next(lv for lv in data["levels"] if lv["name"] == "SMEM")
    assert smem["tensors"]["A"]["reads"] == {
        "algorithmic": 1048576.0,
        "actual": 524288.0,
        "gated": 0.0,
        "skipped": 0.0,
    }


def test_study_command_errors(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["study", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a folder" in res.output
    res = CliRunner().invoke(app, ["study", str(tmp_path)])
    assert res.exit_code == 2 and "missing file" in res.output
    bad = tmp_path / "ERT.yaml"
    bad.write_text("ERT: {tables: 3}\n")
    res = CliRunner().invoke(app, ["study", str(CASE), "--ert", str(bad)])
    assert res.exit_code == 2 and "ERT.yaml:1" in res.output
