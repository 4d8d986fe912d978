"""Sweep files: the typed :class:`SweepSpec` and its strict loader.

A sweep file holds one top-level ``sweep:`` block (the format is described in
:mod:`testy_model.dse.explore`). Every key is checked: an unknown key is an error with a "did you
mean" suggestion and the keys allowed; a duplicated key is an error (the project's one YAML reader,
:mod:`testy_model.spec.yaml_io`); every number is range-checked before any point is expanded.
Grid and random values of ``levels.<L>.read_bandwidth`` / ``write_bandwidth`` are in words per
cycle, as in architecture files (``apply_arch_overrides`` converts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from testy_model.errors import SpecError
from testy_model.spec.cursor import Cur, Doc, validation_to_spec_error
from testy_model.spec.located import did_you_mean

#: Most points one sweep may expand to (grid product x random samples x networks x sparsities).
MAX_POINTS = 1_000_000

#: The keys a ``sweep:`` block may hold, as documented.
SWEEP_KEYS = (
    "arch",
    "grid",
    "random",
    "networks",
    "network_params",
    "weight_sparsity",
    "plan",
    "budget",
    "objective",
    "conventions",
    "mapper",
    "seed_limit",
)
OBJECTIVES = ("edp", "energy", "latency")


class RandomSpace(BaseModel):
    """A seeded random sample of ``samples`` points, each key drawn uniformly from its list."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    samples: int = Field(ge=1, le=MAX_POINTS)
    seed: int = Field(default=0, ge=0)
    space: dict[str, list[Any]]

    @field_validator("space")
    @classmethod
    def _non_empty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"random space key {key!r} has an empty list of values")
        return v


class SweepSpec(BaseModel):
    """What to sweep (see :mod:`testy_model.dse.explore` for the YAML form)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    arch: str
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    random: RandomSpace | None = None
    networks: list[str] = Field(default_factory=lambda: ["resnet50"], min_length=1)
    network_params: dict[str, Any] = Field(default_factory=dict)
    weight_sparsity: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    plan: str = "dense"
    budget: float = Field(default=0.05, ge=0, le=1)
    objective: str = "edp"
    conventions: str = "timeloop"
    mapper: bool = True
    seed_limit: int = Field(default=64, ge=0)
    base_dir: str = "."
    source: str | None = None

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        size = 1
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid key {key!r} has an empty list of values")
            size *= len(values)
        if size > MAX_POINTS:
            raise ValueError(f"the grid has {size:,} points; the limit is {MAX_POINTS:,}")
        return v

    @field_validator("weight_sparsity")
    @classmethod
    def _sparsity_range(cls, v: list[float]) -> list[float]:
        for s in v:
            if not 0.0 <= s < 1.0:
                raise ValueError(f"weight sparsity {s} is outside [0, 1)")
        return v

    @field_validator("objective")
    @classmethod
    def _objective(cls, v: str) -> str:
        if v not in OBJECTIVES:
            hint = did_you_mean(v, OBJECTIVES)
            raise ValueError(f"objective {v!r} is not one of {', '.join(OBJECTIVES)}{hint}")
        return v

    @field_validator("conventions")
    @classmethod
    def _conventions(cls, v: str) -> str:
        from testy_model.spec.conventions import Conventions

        return Conventions.parse(v).value  # ValueError naming the choices otherwise

    def arch_path(self) -> Path:
        """The base architecture file, resolved against ``base_dir``."""
        p = Path(self.arch)
        return p if p.is_absolute() else Path(self.base_dir) / p


def sweep_from_doc(doc: Doc) -> SweepSpec:
    """The :class:`SweepSpec` of a loaded sweep document (strict keys; errors name the key)."""
    root = doc.root()
    if not isinstance(root.value, dict) or "sweep" not in root.value:
        what = ""
        if isinstance(root.value, dict) and "architecture" in root.value:
            what = " (this is an architecture file; a sweep file names one under sweep.arch)"
        raise root.error(f"expected a mapping with a top-level 'sweep:' block{what}")
    root.reject_unknown(("sweep",), "top-level block")
    body = root.child("sweep").as_map()
    body.reject_unknown(SWEEP_KEYS)
    if (r := body.opt("random")) is not None:
        r.as_map().reject_unknown(("samples", "seed", "space"), "random-sample key")
    data = dict(body.value)
    data["base_dir"] = str(Path(doc.file).parent)
    data["source"] = doc.file
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise validation_to_spec_error(err, body) from None
    n = (
        _product(len(v) for v in spec.grid.values()) + (spec.random.samples if spec.random else 0)
    ) * (len(spec.networks) * len(spec.weight_sparsity))
    if n > MAX_POINTS:
        raise body.error(f"the sweep expands to {n:,} points; the limit is {MAX_POINTS:,}")
    return spec


def _product(values: Any) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def load_sweep(path: str | Path) -> SweepSpec:
    """Load a sweep YAML file (``sweep:`` at the top level); errors name the file, line and key.

    Raises:
        SpecError: unreadable file, YAML past the reader's limits, an unknown or duplicated key,
            a value out of range.
    """
    return sweep_from_doc(Doc.load(path))


def sweep_key_error(spec: SweepSpec, key: str, problem: str) -> SpecError:
    """A :class:`SpecError` at ``sweep.<key>`` of the sweep's file (line when it can be read)."""
    if spec.source is not None:
        try:
            doc = Doc.load(spec.source)
            cur: Cur = doc.root().child("sweep")
            if isinstance(cur.value, dict) and key in cur.value:
                cur = cur.child(key)
            return cur.error(problem)
        except (SpecError, KeyError):
            pass
    return SpecError(problem, file=spec.source, key_path=f"sweep.{key}")
