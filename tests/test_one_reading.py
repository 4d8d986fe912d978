"""One reading of every file: ``validate`` and ``eval`` given the same files accept or reject
them together, with the same message (they load through ``testy_model.spec.inputs``).

Every shipped input and every shared input ``eval`` can take is a *run set* (architecture,
workload, mapping, ERT, ART, plan). Unmutated, ``validate FILES...`` (roles detected from the files)
and ``eval --arch ... --network ...`` must agree; for mutants of one file of a set, ``validate``
gets the roles with eval's own options (a mutant may lose the key that tells its kind).
"""

from __future__ import annotations

import random
from pathlib import Path

import fuzzing
import pytest
from typer.testing import CliRunner

from testy_model.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TL = SHARED / "timeloop_examples"
ROLES = ("arch", "network", "mapping", "ert", "art", "plan")
#: roles given to eval as positional files (Timeloop's invocation), the rest as options
POSITIONAL = ("sparse",)


def run_sets(tmp: Path, every_study_case: bool) -> list[dict[str, Path]]:
    """The run sets (role -> file) of the shipped and shared inputs."""
    gemm = ROOT / "mappings/problem_M512-K1024-N256.yaml"
    sets: list[dict[str, Path]] = []
    for a in sorted((ROOT / "arch_specs").glob("*.yaml")):
        s = {"arch": a, "network": gemm}
        m = ROOT / "mappings" / f"{a.stem.removesuffix('_tasd')}_M512-K1024-N256.yaml"
        if m.is_file() and not a.stem.endswith("_tasd"):
            s["mapping"] = m
        sets.append(s)
    plan = tmp / "plan.yaml"
    plan.write_text(
        "plan:\n  default: {weights: '2:4'}\n  layers:\n    fc1: {weights: '2:8+1:8'}\n"
    )
    net = ROOT / "examples/networks/tiny_cnn.yaml"
    sets.append({"arch": ROOT / "arch_specs/stc_2of4_tasd.yaml", "network": net, "plan": plan})
    sets.append(
        {"arch": ROOT / "arch_specs/s2ta_tasd.yaml", "network": ROOT / "examples/search/mlp.yaml"}
    )
    for folder, prob, mp in (
        ("simple_weight_stationary", TL / "default_problem.yaml", "ref_mapping.yaml"),
        ("simple_output_stationary", TL / "default_problem.yaml", "ref_mapping.yaml"),
        ("eyeriss_like", TL / "default_problem.yaml", "ref_mapping.yaml"),
        ("simba_like", TL / "default_problem.yaml", "ref_mapping.yaml"),
        (
            "sparse_tensor_core_like",
            TL / "sparse_tensor_core_like/problem.yaml",
            "ref_mapping.yaml",
        ),
    ):
        sets.append(
            {"arch": TL / folder / "arch.yaml", "network": prob, "mapping": TL / folder / mp}
        )
    for case in sorted((SHARED / "timeloop_v3_cases").iterdir()):
        if case.is_dir():
            s = {
                "arch": case / "arch.yaml",
                "network": case / "problem.yaml",
                "mapping": case / "map.yaml",
                "ert": case / "ERT.yaml",
                "art": case / "ART.yaml",
            }
            if (case / "sparse_opt.yaml").exists():
                s["sparse"] = case / "sparse_opt.yaml"  # merged as Timeloop merges it (FILE...)
            sets.append(s)
    cases = sorted((SHARED / "sparseloop_stc_study").glob("WD-*/*/*"))
    if not every_study_case:
        cases = [
            c for c in cases if c.parent.name.startswith("M512-K1024-N256") and "WD-0.5" in str(c)
        ]
    for c in cases:
        sets.append(
            {
                "arch": c / "aggregated_input.yaml",
                "mapping": c / "map.yaml",
                "ert": c / "ERT.yaml",
                "art": c / "ART.yaml",
            }
        )
    return sets


def _eval_args(s: dict[str, Path]) -> list[str]:
    args = ["eval", *(str(s[r]) for r in POSITIONAL if r in s)]
    for role in ROLES:
        if role in s:
            args += [f"--{role}", str(s[role])]
    return args


def _outcome(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    errors = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    return res.exit_code, errors[-1] if errors else ""


def _compare(s: dict[str, Path], positional: bool) -> tuple[int, str]:
    files = [str(s[r]) for r in (*ROLES, *POSITIONAL) if r in s]
    v_args = ["validate", *files] if positional else ["validate", *_eval_args(s)[1:]]
    v = _outcome(v_args)
    e = _outcome(_eval_args(s))
    assert v == e, f"validate {v} vs eval {e} on {s}"
    return e


def _check_sets(tmp: Path, every_study_case: bool) -> None:
    sets = run_sets(tmp, every_study_case)
    assert len(sets) >= 25
    for s in sets:
        code, msg = _compare(s, positional=True)
        assert code == 0, (s, msg)  # every shipped and shared input is accepted by both


def _check_mutants(tmp: Path, n: int, seed: int, every_study_case: bool) -> tuple[int, int]:
    sets = run_sets(tmp, every_study_case)
    accepted = rejected = 0
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        s = dict(sets[rng.randrange(len(sets))])
        role = rng.choice([r for r in ROLES if r in s])
        text, _ = fuzzing.mutate(fuzzing.absolutise(s[role].read_text(), s[role].parent), rng)
        mutant = tmp / f"mutant_{i}_{role}.yaml"
        mutant.write_text(text, encoding="utf-8")
        s[role] = mutant
        code, _ = _compare(s, positional=False)
        accepted += code == 0
        rejected += code == 2
        mutant.unlink()
    return accepted, rejected


def test_shipped_and_shared_inputs_read_one_way(tmp_path: Path) -> None:
    _check_sets(tmp_path, every_study_case=False)


def test_mutants_read_one_way(tmp_path: Path) -> None:
    accepted, rejected = _check_mutants(tmp_path, 12, seed=7, every_study_case=False)
    assert accepted + rejected == 12


@pytest.mark.slow
def test_every_study_case_reads_one_way(tmp_path: Path) -> None:
    _check_sets(tmp_path, every_study_case=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_400_mutants_read_one_way(tmp_path: Path, seed: int) -> None:
    """400 mutants in two seeded halves (so that ``pytest -n`` spreads them over the cores)."""
    accepted, rejected = _check_mutants(tmp_path, 200, seed=seed, every_study_case=True)
    assert accepted + rejected == 200
    assert accepted >= 20 and rejected >= 100
