"""``map``'s totals are ``eval``'s of the mapping it writes (issue 12): over every shipped engine
× ten GEMM shapes, dense and with the engine's own N:M pattern on the weights, through the mapping
YAML round trip; and on the command line with the study's Sparseloop inputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.mapper import dump_mapping, find_mapping
from testy_model.model.evaluate import evaluate
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.mapping_loader import load_mapping
from testy_model.spec.workload import Density, gemm

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
STUDY = SHARED / "sparseloop_stc_study"
ARCHS = sorted((ROOT / "arch_specs").glob("*.yaml"))

# (M, N, K): ResNet-50 implicit GEMMs (M = output channels, N = P·Q, K = C·R·S) and BERT-base
# (sequence 128, hidden 768, FFN 3072), plus two odd shapes (prime and ragged factors)
GEMMS = [
    (64, 3136, 64),
    (64, 3136, 576),
    (256, 3136, 64),
    (128, 784, 1152),
    (256, 196, 2304),
    (1000, 1, 2048),
    (768, 128, 768),
    (3072, 128, 768),
    (96, 40, 33),
    (128, 128, 64),
]


def _arch(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(path)


def _densities(arch, sparse: bool) -> dict[str, Density]:
    """Weights (A) at the engine's first supported N:M pattern, or dense."""
    pats = arch.sparsity.A.patterns
    if not sparse or not pats:
        return {}
    return {"A": Density(kind="nm", pattern=str(pats[0]))}


def _check(arch_path: Path, shape: tuple[int, int, int], sparse: bool, tmp_path: Path) -> None:
    arch = _arch(arch_path)
    p = gemm(*shape, densities=_densities(arch, sparse))
    res = find_mapping(p, arch)
    f = tmp_path / "map.yaml"
    f.write_text(dump_mapping(res.mapping, dims=p.dimensions))
    rep = evaluate(p, arch, load_mapping(f, arch, p))
    assert rep.layers[0].valid
    # the same cost core on the same loop nests: equal up to summation order
    assert rep.cycles == pytest.approx(res.cycles, rel=1e-12, abs=0)
    assert rep.energy_pj == pytest.approx(res.energy_pj, rel=1e-12, abs=0)
    assert rep.edp_pj_s == pytest.approx(res.edp, rel=1e-12, abs=0)


@pytest.mark.parametrize("arch_path", ARCHS, ids=[p.stem for p in ARCHS])
def test_map_equals_eval_quick(arch_path: Path, tmp_path: Path) -> None:
    # one shape per engine, weights at the engine's pattern (the sparse stage where it applies)
    _check(arch_path, GEMMS[ARCHS.index(arch_path) % len(GEMMS)], True, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "nm"])
@pytest.mark.parametrize("shape", GEMMS, ids=[f"{m}x{n}x{k}" for m, n, k in GEMMS])
@pytest.mark.parametrize("arch_path", ARCHS, ids=[p.stem for p in ARCHS])
def test_map_equals_eval_everywhere(arch_path: Path, shape, sparse: bool, tmp_path: Path) -> None:
    _check(arch_path, shape, sparse, tmp_path)


def test_shipped_engines_listed() -> None:
    assert len(ARCHS) >= 10 and len(GEMMS) == 10


@pytest.mark.parametrize(
    "conventions", ["timeloop", pytest.param("sparseloop-2022", marks=pytest.mark.slow)]
)
def test_cli_map_totals_equal_cli_eval_on_study_inputs(tmp_path: Path, conventions: str) -> None:
    # the case: the study's STC files (2:4 weights, sparse_optimizations with
    # skipping-spatial); map prints the cost of the file it writes, eval of that file agrees
    case = STUDY / "WD-0.5" / "M512-K1024-N256-IAD0.27-WD0.5" / "STC-RF2x-24-bandwidth"
    agg, ert = case / "aggregated_input.yaml", case / "ERT.yaml"
    out = tmp_path / "m.yaml"
    r = CliRunner().invoke(
        app,
        ["map", "--arch", str(agg), "--ert", str(ert), "--gemm", "M=512,N=256,K=1024",
         "--conventions", conventions, "--out", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    header = out.read_text().splitlines()[1]  # "# cycles C, energy E pJ, EDP X pJ*s"
    cycles = float(header.split("cycles ")[1].split(",")[0])
    energy = float(header.split("energy ")[1].split(" pJ")[0])
    js = tmp_path / "r.json"
    r = CliRunner().invoke(
        app,
        ["eval", "--arch", str(agg), "--ert", str(ert), "--mapping", str(out),
         "--conventions", conventions, "--json", str(js)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rep = json.loads(js.read_text())
    tot = rep["total"]
    # the header prints 6 significant digits of energy, cycles exactly
    assert tot["cycles"] == cycles
    assert tot["energy_pj"] == pytest.approx(energy, rel=1e-5)
    # the 2:4 engine's skipping-spatial halves the dense compute: 65,536 cycles is reachable
    assert cycles <= 65536 * 1.10
