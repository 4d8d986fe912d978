"""Timeloop's invocation: any number of YAML files merged by their top-level keys.

``timeloop-model arch.yaml problem.yaml sparse_opt.yaml map.yaml ERT.yaml ART.yaml`` (in any
order and split) reads every file and merges the documents' top-level keys
(``architecture``, ``problem``, ``sparse_optimizations``, ``mapping``, ``ERT``, ``ART``, plus
keys it ignores such as ``mapper`` or ``model``). :func:`load_timeloop_files` does the same: a key
found in two files is a :class:`SpecError` naming both; each block is then read by its loader
(file, line and key path in every message).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testy_model.errors import SpecError
from testy_model.spec.accelergy import (
    AreaTable,
    EnergyTable,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.sparseloop import SparseOptimizations, load_sparse_optimizations, norm_key
from testy_model.spec.workload import Problem
from testy_model.spec.yaml_io import load_yaml_with_marks

#: top-level keys this project reads (normalised: hyphens as underscores, lower case)
BLOCKS = ("architecture", "problem", "sparse_optimizations", "mapping", "ert", "art")


@dataclass(frozen=True)
class TimeloopInputs:
    """What a set of Timeloop input files describes. ``files``: block -> the file holding it.
    The architecture has the ERT/ART energies and areas applied when given."""

    arch: Architecture
    problem: Problem | None
    mapping: Mapping | None
    sparse: SparseOptimizations
    ert: EnergyTable | None
    art: AreaTable | None
    files: dict[str, Path]


def block_files(paths: Sequence[str | Path]) -> dict[str, Path]:
    """Which file holds each top-level block (module docstring).

    Raises:
        SpecError: a missing file, a file that is not a YAML mapping, or a block in two files.
    """
    where: dict[str, Path] = {}
    for raw in paths:
        p = Path(raw)
        if not p.is_file():
            raise SpecError("no such file (expected a Timeloop YAML input)", file=str(p))
        data, _ = load_yaml_with_marks(p)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise SpecError("expected a mapping of top-level blocks", file=str(p))
        for key in data:
            k = norm_key(key)
            if k in where and where[k] != p:
                raise SpecError(
                    f"top-level key {key!r} is in both {where[k]} and {p} (Timeloop merges the "
                    "files by their top-level keys; each may appear once)",
                    file=str(p),
                )
            where[k] = p
    if "architecture" not in where:
        raise SpecError(
            "none of the files holds an 'architecture' block (expected Timeloop inputs: "
            f"architecture, problem, mapping, ...): {[str(p) for p in paths]}"
        )
    return where


def load_timeloop_files(
    paths: Sequence[str | Path], overrides: Sequence[str] = ()
) -> TimeloopInputs:
    """Load Timeloop inputs given as files (module docstring), through the one reading every
    command shares (:mod:`testy_model.spec.inputs`: the architecture with its
    ``sparse_optimizations`` and ERT/ART, the problem, and the mapping checked against both with
    ``validate_mapping``), so ``study``, ``eval`` and ``validate`` accept and reject the same
    files with the same message.

    Args:
        paths: the YAML files, any order.
        overrides: dotted-key architecture overrides (``levels.SMEM.depth=4096``).
    """
    from testy_model.spec.inputs import load_design, load_file_mapping
    from testy_model.spec.problem_loader import load_problem
    from testy_model.spec.workload import Layer, Network

    where = block_files(paths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # v0.3 attributes this tool does not use
        design = load_design(
            where["architecture"],
            list(overrides),
            where.get("ert"),
            where.get("art"),
            where.get("sparse_optimizations"),
        )
    problem = load_problem(where["problem"]) if "problem" in where else None
    mapping = None
    if "mapping" in where:
        net = (
            Network(name=problem.name, layers=(Layer(name=problem.name, problem=problem),))
            if problem is not None
            else None
        )
        mapping = load_file_mapping(where["mapping"], design, net)
    sparse = design.sparse_opts
    if sparse is None:
        sparse = load_sparse_optimizations(where["architecture"])
    return TimeloopInputs(design.arch, problem, mapping, sparse, design.ert, design.art, where)


def load_case(case_dir: str | Path, overrides: Sequence[str] = ()) -> TimeloopInputs:
    """A Sparseloop artifact case folder: ``aggregated_input.yaml`` (architecture, problem,
    ``sparse_optimizations``) and ``map.yaml``, plus ``ERT.yaml``/``ART.yaml`` when present,
    merged as :func:`load_timeloop_files` merges any inputs.

    Raises:
        SpecError: a missing ``aggregated_input.yaml`` or ``map.yaml`` (or anything the loaders
            reject: file, line, key path).
    """
    d = Path(case_dir)
    files = [d / "aggregated_input.yaml", d / "map.yaml"]
    for f in files:
        if not f.is_file():
            raise SpecError(
                "missing file (a Sparseloop case folder needs aggregated_input.yaml and map.yaml)",
                file=str(f),
            )
    files += [d / n for n in ("ERT.yaml", "ART.yaml") if (d / n).is_file()]
    return load_timeloop_files(files, overrides)


def study_cases(root: str | Path) -> list[Path]:
    """Every case folder (holding ``aggregated_input.yaml``) under ``root``, sorted."""
    return sorted(p.parent for p in Path(root).rglob("aggregated_input.yaml"))
