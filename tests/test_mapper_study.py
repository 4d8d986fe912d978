"""The mapper against templates on every shipped architecture, against Sparseloop's mappings on
the sparse-tensor-core study, and its command line."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.mapper import beam as mapper
from testy_model.model.evaluate import evaluate
from testy_model.spec import gemm
from testy_model.spec.accelergy import apply_ert, load_ert
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.mapping import Mapping
from testy_model.spec.mapping_loader import load_mapping
from testy_model.spec.problem_loader import load_problem
from testy_model.spec.validate import validate_mapping
from testy_model.spec.workload import Density

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
STUDY = SHARED / "sparseloop_stc_study" / "WD-0.5"
ARCHS = sorted((ROOT / "arch_specs").glob("*.yaml"))
LAYERS = sorted(p.name for p in STUDY.glob("M*"))

# Ten GEMMs (M, N, K) of ResNet-50 (implicit GEMM of a convolution: M = output channels,
# N = output pixels P·Q, K = C·R·S) and BERT-base (sequence 128, hidden 768, FFN 3072, 12 heads).
GEMMS = [
    (64, 3136, 64),  # ResNet-50 layer1 1x1: C=64, 56x56
    (64, 3136, 576),  # layer1 3x3: C=64·9
    (256, 3136, 64),  # layer1 1x1 expand
    (128, 784, 1152),  # layer2 3x3: C=128·9, 28x28
    (256, 196, 2304),  # layer3 3x3: C=256·9, 14x14
    (1000, 1, 2048),  # fc
    (768, 128, 768),  # BERT-base Q/K/V/output projection
    (3072, 128, 768),  # FFN up
    (768, 128, 3072),  # FFN down
    (128, 128, 64),  # one head's Q·K^T
]


def _load_arch(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(path)


def _edp(mapping: Mapping, arch, problem, require_valid: bool = True) -> float:
    """EDP of ``mapping`` as ``eval`` prices it (the cost core, the stage eval chooses)."""
    rep = evaluate(problem, arch, mapping)
    assert rep.layers[0].valid or not require_valid, "mapping must be valid under the model"
    return float(rep.edp_pj_s)


def _check_beats_templates(arch_path: Path, shape: tuple[int, int, int]) -> None:
    arch = _load_arch(arch_path)
    p = gemm(*shape)
    res = mapper.find_mapping(p, arch)
    validate_mapping(res.mapping, arch, p)
    assert res.edp == pytest.approx(_edp(res.mapping, arch, p), rel=1e-9)
    best_template = min(
        mapper.evaluate_template(p, arch, k).edp  # type: ignore[arg-type]
        for k in ("weight", "output", "input")
    )
    assert res.edp <= best_template * (1 + 1e-9)


@pytest.mark.parametrize(
    ("arch_name", "shape"),
    [("tc_dense.yaml", GEMMS[1]), ("stc_2of4.yaml", GEMMS[5]), ("vegeta.yaml", GEMMS[9])],
)
def test_mapper_beats_templates_quick(arch_name: str, shape) -> None:
    _check_beats_templates(ROOT / "arch_specs" / arch_name, shape)


@pytest.mark.slow
@pytest.mark.parametrize("shape", GEMMS)
@pytest.mark.parametrize("arch_path", ARCHS, ids=[p.stem for p in ARCHS])
def test_mapper_beats_templates_everywhere(arch_path: Path, shape) -> None:
    _check_beats_templates(arch_path, shape)


def test_shipped_archs_exist() -> None:
    assert len(ARCHS) >= 5 and len(LAYERS) == 4


# -- Sparseloop's sparse-tensor-core study -------------------------------------------------------


def _fit_fanout(m: Mapping, arch) -> Mapping:
    """The study's STC mapping spreads K over 32 x 16 = 512 PEs below RF (Sparseloop counts a
    2:4 PE pair as one); this model's fan-out there is 256, so halve the largest spatial factor
    into the same level's temporal loop until it fits (same loop structure, one more RF loop)."""
    levels = []
    for i, lm in enumerate(m.levels):
        sp, tp = dict(lm.spatial), dict(lm.temporal)
        while sp and math.prod(sp.values()) > arch.fanout(i):
            d = max(sp, key=lambda x: sp[x])
            sp[d] //= 2
            tp[d] = tp.get(d, 1) * 2
        levels.append(lm.model_copy(update={"spatial": sp, "temporal": tp}))
    return m.model_copy(update={"levels": tuple(levels)})


@pytest.mark.parametrize("layer", LAYERS)
def test_tc_engine_no_worse_than_sparseloop_map(layer: str) -> None:
    # Dense TC engine exactly as the study describes it (its aggregated input and its ERT: the
    # per-action energies the study's mapping was chosen under). Issue 12's bar: an EDP within
    # 10 % of the study's own mapping (under the old nearest-entry energy table the mapper
    # happened to match or beat it; under the study's ERT it is up to 4.9 % worse, M512-K256).
    case = STUDY / layer / "TC-RF2x-24-bandwidth"
    arch = apply_ert(_load_arch(case / "aggregated_input.yaml"), load_ert(case / "ERT.yaml"))
    p = load_problem(case / "aggregated_input.yaml")
    ref = load_mapping(case / "map.yaml", arch, p)
    res = mapper.find_mapping(p, arch)
    validate_mapping(res.mapping, arch, p)
    assert res.edp <= _edp(ref, arch, p) * 1.10


@pytest.mark.parametrize("layer", LAYERS)
def test_stc_engine_no_worse_than_sparseloop_map(layer: str) -> None:
    # 2:4 engine (arch_specs/sparseloop_stc.yaml: the study's STC with its 2:4 support), A at 2:4.
    case = STUDY / layer / "STC-RF2x-24-bandwidth"
    arch = _load_arch(ROOT / "arch_specs" / "sparseloop_stc.yaml")
    p = load_problem(case / "aggregated_input.yaml")
    p = p.model_copy(update={"densities": {"A": Density(kind="nm", pattern="2:4")}})
    ref = _fit_fanout(load_mapping(case / "map.yaml", arch, p), arch)
    validate_mapping(ref, arch, p)
    # a beam of 32: under Timeloop v3.0.3's counting (link transfers, sampled deltas) the
    # default beam of 16 settles on an SMEM-bandwidth-bound mapping here (EDP 14,980 against
    # the reference's 9,593); 32 finds 9,231
    res = mapper.find_mapping(p, arch, beam=32)
    validate_mapping(res.mapping, arch, p)
    assert res.edp == pytest.approx(_edp(res.mapping, arch, p), rel=1e-9)
    # the reference passes spec.validate; for M512-K1024-N256 the model (which also counts the
    # 2-bit metadata in the RF's capacity) calls it over capacity: compare its EDP regardless
    assert res.edp <= _edp(ref, arch, p, require_valid=False) * (1 + 1e-9)


# -- command line ------------------------------------------------------------------------------


def test_cli_map_writes_a_loadable_mapping(tmp_path: Path) -> None:
    out = tmp_path / "m.yaml"
    arch_file = ROOT / "arch_specs" / "tc_dense.yaml"
    r = CliRunner().invoke(
        app, ["map", "--arch", str(arch_file), "--gemm", "M=96,N=40,K=33", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "cycles" in r.output and "EDP" in r.output
    arch = _load_arch(arch_file)
    p = gemm(96, 40, 33)
    m = load_mapping(out, arch, p)
    validate_mapping(m, arch, p)
    assert all(m.total_factor(d) == p.bounds[d] for d in p.dimensions)


def test_cli_map_reads_densities_from_the_arch_file() -> None:
    case = STUDY / LAYERS[0] / "STC-RF2x-24-bandwidth"
    r = CliRunner().invoke(
        app, ["map", "--arch", str(case / "aggregated_input.yaml"), "--gemm", "M=64,N=32,K=64"]
    )
    assert r.exit_code == 0, r.output
    assert "A=0.5" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gemm", "M=4,N=x,K=2"], "--gemm: bad item 'N=x'"),
        (["--gemm", "M=4,N=2"], "missing ['K']"),
        (["--gemm", "M=4,N=2,K=2", "--objective", "speed"], "--objective"),
    ],
)
def test_cli_map_user_errors_exit_2(args: list[str], message: str) -> None:
    arch_file = ROOT / "arch_specs" / "tc_dense.yaml"
    r = CliRunner().invoke(app, ["map", "--arch", str(arch_file), *args])
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


def test_cli_map_no_valid_mapping_exit_2() -> None:
    # LRF must keep A (its keep list) but 4 bits cannot hold one 8-bit word of A
    arch_file = ROOT / "arch_specs" / "tc_dense.yaml"
    r = CliRunner().invoke(
        app,
        ["map", "--arch", str(arch_file), "--gemm", "M=4,N=4,K=4", "--set", "levels.LRF.width=4"],
    )
    assert r.exit_code == 2
    assert "levels[LRF]: no valid mapping" in r.output
    assert "holds 4 bits" in r.output and "(8 bits)" in r.output
