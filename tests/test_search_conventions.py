"""``search --conventions``: the counting conventions reach every candidate's mapping and price,
so the search's totals are ``eval --conventions``'s of the plan it writes, under either choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testy_model.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

_NET = (
    "network:\n  name: two\n  layers:\n"
    "    - name: fc1\n      gemm: {M: 256, N: 64, K: 256}\n"
    "      densities: {A: {distribution: bernoulli, density: 0.2}}\n"
    "    - name: fc2\n      gemm: {M: 128, N: 64, K: 256}\n"
    "      densities: {B: {distribution: bernoulli, density: 0.4}}\n"
)


def _search_then_eval(tmp_path: Path, conventions: str) -> tuple[dict, dict]:
    net = tmp_path / "net.yaml"
    net.write_text(_NET)
    arch = ROOT / "arch_specs" / "stc_2of4_tasd.yaml"
    plan, sj, ej = (tmp_path / f"{conventions}{x}" for x in ("p.yaml", "s.json", "e.json"))
    conv = ["--conventions", conventions]
    res = runner.invoke(app, ["search", "-a", str(arch), "-n", str(net), "-b", "0.3", "-q",
                              *conv, "--out", str(plan), "--json", str(sj)])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "--arch", str(arch), "--network", str(net), *conv,
                              "--plan", str(plan), "--json", str(ej)])  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(sj.read_text()), json.loads(ej.read_text())["total"]


def test_search_conventions_equal_eval_of_the_plan_under_each(tmp_path: Path) -> None:
    out = {c: _search_then_eval(tmp_path, c) for c in ("timeloop", "sparseloop-2022")}
    for conv, (s, e) in out.items():
        assert s["conventions"] == conv
        plan = s["totals"]["plan"]
        assert e["energy_pj"] == pytest.approx(plan["energy_pj"], rel=1e-9)
        assert e["cycles"] == pytest.approx(plan["cycles"], rel=1e-9)
    # the 2022 artifact counts the first fill of every output tile: more traffic, more energy
    tl, sl = out["timeloop"][0]["totals"], out["sparseloop-2022"][0]["totals"]
    assert sl["dense"]["energy_pj"] > tl["dense"]["energy_pj"]


def test_search_rejects_unknown_conventions(tmp_path: Path) -> None:
    net = tmp_path / "net.yaml"
    net.write_text(_NET)
    arch = ROOT / "arch_specs" / "stc_2of4_tasd.yaml"
    res = runner.invoke(app, ["search", "-a", str(arch), "-n", str(net), "--conventions", "tl"])
    assert res.exit_code == 2
    assert "conventions" in res.output and "sparseloop-2022" in res.output
