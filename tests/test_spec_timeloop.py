"""Real Timeloop/Sparseloop files from ../shared load unchanged and their mappings validate.

Hand-derived checks (comments give the derivation from the YAML text):
- simple_weight_stationary: PE container meshX 16 x meshY 16 -> pe_spad and the three !Parallel
  registers have 256 instances, mesh_x 16; shared_glb 16384 x 64 b / 16 b = 65,536 words;
  read_bandwidth 16 words/cycle x 16 b = 256 bits/cycle; DRAM LPDDR4 8 pJ/bit x 16 b = 128 pJ/word
  (reference.md: "DRAM 128 pJ per 16-bit word").
- default_problem: Inputs footprint 3 x ((112-1)*2 + (3-1) + 1)^2 = 3 x 225 x 225 = 151,875 words;
  MACs 32*3*112*112*3*3 = 10,838,016 (reference.md).
- eyeriss_like: PE_column meshX 14, PE meshY 12 -> 168 spads, mesh_x 14.
- Sparseloop STC study (v0.3): Subpartition[0..3] x PE[0..255] -> 1024 MACs; LRF meshX 16.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.spec import (
    SpecWarning,
    load_arch,
    load_mapping,
    load_problem,
    validate_mapping,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
TL = SHARED / "timeloop_examples"
STUDY = SHARED / "sparseloop_stc_study"

REF_CASES = [
    ("simple_weight_stationary", TL / "default_problem.yaml", "ref_mapping.yaml"),
    ("simple_output_stationary", TL / "default_problem.yaml", "ref_mapping.yaml"),
    ("eyeriss_like", TL / "default_problem.yaml", "ref_mapping.yaml"),
    ("simba_like", TL / "default_problem.yaml", "ref_mapping.yaml"),
    ("sparse_tensor_core_like", TL / "sparse_tensor_core_like/problem.yaml", "ref_mapping.yaml"),
    ("sparseloop/01.2.3-SCDU-dot-product", None, "mapping.yaml"),
    ("sparseloop/02.2.2-spMspM-tiled", None, "mapping.yaml"),
    ("sparseloop/03.2.3-conv1d+oc-spatial", None, "mapping.yaml"),
    ("sparseloop/04.2.1-eyeriss-like-gating", None, "mapping.yaml"),
]


def _load_quiet(fn, *args):  # type: ignore[no-untyped-def]
    """Call a loader; return (result, warnings). Every warning must be a SpecWarning about a key
    the model ignores (or an approximation it states)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    for w in caught:
        assert issubclass(w.category, SpecWarning), w.message
        assert "not used" in str(w.message) or "ignored" in str(w.message), w.message
    return out, caught


def test_shared_present() -> None:
    assert TL.is_dir(), f"{TL} missing: tests need ../shared beside the repository"


@pytest.mark.parametrize(("folder", "problem", "mapping"), REF_CASES, ids=[c[0] for c in REF_CASES])
def test_reference_mapping_validates(folder: str, problem: Path | None, mapping: str) -> None:
    d = TL / folder
    arch, _ = _load_quiet(load_arch, d / "arch.yaml")
    prob, _ = _load_quiet(load_problem, problem or d / "problem.yaml")
    mp, _ = _load_quiet(load_mapping, d / mapping, arch, prob)
    assert [lm.target for lm in mp.levels] == list(arch.level_names)
    validate_mapping(mp, arch, prob)
    for dim, bound in prob.bounds.items():
        assert mp.total_factor(dim) == bound


def test_simple_ws_derived_numbers() -> None:
    arch, caught = _load_quiet(load_arch, TL / "simple_weight_stationary/arch.yaml")
    # n_banks (glb) and adder_width (mac) are Accelergy's own attributes: accepted quietly
    assert [str(w.message) for w in caught] == []
    assert arch.level_names == (
        "DRAM",
        "shared_glb",
        "pe_spad",
        "weight_reg",
        "input_activation_reg",
        "output_activation_reg",
    )
    glb = arch.level("shared_glb")
    assert glb.capacity_words == 65536
    assert glb.read_bandwidth == 256
    assert arch.level("DRAM").read_energy == pytest.approx(128.0)
    for name in ("pe_spad", "weight_reg", "input_activation_reg", "output_activation_reg"):
        assert arch.level(name).instances == 256
        assert arch.level(name).mesh_x == 16
    assert arch.fanout(1) == 256
    assert arch.level("weight_reg").keep == ("Weights",)
    assert arch.compute.instances == 256
    assert arch.container_parents["PE"] == "shared_glb"


def test_default_problem_numbers() -> None:
    prob, _ = _load_quiet(load_problem, TL / "default_problem.yaml")
    assert prob.full_size("Inputs") == 3 * 225 * 225 == 151875
    assert prob.full_size("Weights") == 864
    assert prob.full_size("Outputs") == 32 * 112 * 112
    assert prob.macs == 10838016
    assert prob.coefficients["Wstride"] == 2
    assert (prob.weight, prob.activation) == ("Weights", "Inputs")


def test_eyeriss_mesh_and_merge() -> None:
    arch, _ = _load_quiet(load_arch, TL / "eyeriss_like/arch.yaml")
    assert arch.level("psum_spad").instances == 168
    assert arch.level("psum_spad").mesh_x == 14
    prob, _ = _load_quiet(load_problem, TL / "default_problem.yaml")
    mp, _ = _load_quiet(load_mapping, TL / "eyeriss_like/ref_mapping.yaml", arch, prob)
    glb = mp.level("shared_glb")
    # inter_PE_column_spatial Q14 (split 1: X) and inter_PE_spatial C3 S3 (split 0: Y) fold here
    assert glb.spatial == {"C": 3, "S": 3, "Q": 14}
    assert glb.spatial_permutation[: glb.split] == ("Q",)


def test_sparseloop_zero_factor_resolved() -> None:
    d = TL / "sparseloop/04.2.1-eyeriss-like-gating"
    arch, _ = _load_quiet(load_arch, d / "arch.yaml")
    prob, _ = _load_quiet(load_problem, d / "problem.yaml")
    mp, _ = _load_quiet(load_mapping, d / "mapping.yaml", arch, prob)
    # P=0 at shared_glb is "the rest": 13 / 1; Q=0 on PE_column -> 13; R=0 -> 3; S=0 -> 3
    assert mp.level("shared_glb").temporal["P"] == 13
    assert mp.level("shared_glb").spatial["Q"] == 13
    assert mp.level("shared_glb").spatial["S"] == 3
    assert mp.level("weights_spad").temporal["R"] == 3


@pytest.mark.parametrize("design", ["TC", "STC", "STC_flexible", "DSTC"])
def test_study_aggregated_inputs(design: str) -> None:
    agg = STUDY / "WD-1.0/M512-K1024-N256-IAD0.27-WD1.0" / f"{design}-RF2x-24-bandwidth"
    arch, caught_a = _load_quiet(load_arch, agg / "aggregated_input.yaml")
    prob, caught_p = _load_quiet(load_problem, agg / "aggregated_input.yaml")
    mp, _ = _load_quiet(load_mapping, agg / "map.yaml", arch, prob)
    # no flood: problem/compound_components/sparse_optimizations blocks are not warned about
    assert not any("top-level" in str(w.message) for w in caught_a + caught_p)
    assert caught_p == []
    assert arch.compute.instances == 4 * 256 == 1024
    assert arch.level("SMEM").capacity_words == 4096 * 512 / 8
    assert arch.level("SMEM").read_bandwidth == 42 * 8
    assert prob.bounds == {"M": 512, "N": 256, "K": 1024}
    assert prob.macs == 134217728
    assert mp.total_factor("K") == 1024
    if design == "TC":
        assert arch.level("LRF").mesh_x == 16
        validate_mapping(mp, arch, prob)


ALL_FILES = sorted(TL.rglob("*.yaml"))


@pytest.mark.parametrize("path", ALL_FILES, ids=[str(p.relative_to(TL)) for p in ALL_FILES])
def test_every_timeloop_file_loads_unchanged(path: Path) -> None:
    """Each file loads alone (mappings without their architecture) with SpecWarnings only."""
    from testy_model.spec import load_any

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = load_any(path)
    assert parts
    assert all(issubclass(w.category, SpecWarning) for w in caught)
    kind = {"arch.yaml": "arch", "ref_mapping.yaml": "mapping", "mapping.yaml": "mapping"}
    assert kind.get(path.name, "problem") in parts
