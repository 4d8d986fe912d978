"""Design-space exploration: sweep specs, point expansion, evaluation, Pareto front.

A sweep is described in YAML (or built in Python as a :class:`SweepSpec`)::

    sweep:
      arch: ../arch_specs/stc_2of4_tasd.yaml     # base architecture, relative to this file
      grid:                                      # full factorial over dotted keys ...
        levels.SMEM.depth: [2048, 4096, 8192]
        compute.instances: [512, 1024]
      random:                                    # ... and/or a seeded random sample
        samples: 200
        seed: 0
        space: {levels.RF.depth: [1024, 2048, 4096]}
      networks: [resnet50]                       # zoo names (or network files)
      weight_sparsity: [0.5, 0.8]
      plan: dense | tasd | search | "W=2:8+1:8,A=dense"
      budget: 0.05                               # error budget when plan is search
      objective: edp

Every point is one (architecture overrides, network, weight sparsity) triple with a stable
``point_id`` (a hash of those inputs), so a re-run recognises the rows it already has. One result
row per point: the inputs, cycles, seconds, energy (pJ) by component, EDP (pJ·s) and area (mm²).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from testy_model.errors import SpecError


class RandomSpace(BaseModel):
    """A seeded random sample of ``samples`` points, each key drawn uniformly from its list."""

    model_config = ConfigDict(extra="forbid")
    samples: int = Field(ge=1)
    seed: int = 0
    space: dict[str, list[Any]]


class SweepSpec(BaseModel):
    """What to sweep (see the module docstring for the YAML form)."""

    model_config = ConfigDict(extra="forbid")
    arch: str
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    random: RandomSpace | None = None
    networks: list[str] = Field(default_factory=lambda: ["resnet50"])
    network_params: dict[str, Any] = Field(default_factory=dict)
    weight_sparsity: list[float] = Field(default_factory=lambda: [0.0])
    plan: str = "dense"
    budget: float = Field(default=0.05, ge=0)
    objective: str = "edp"
    mapper: bool = True
    base_dir: str = "."

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid key {key!r} has an empty list of values")
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
        if v not in ("edp", "energy", "latency"):
            raise ValueError(f"objective {v!r} is not one of edp, energy, latency")
        return v

    def arch_path(self) -> Path:
        """The base architecture file, resolved against ``base_dir``."""
        p = Path(self.arch)
        return p if p.is_absolute() else Path(self.base_dir) / p


def load_sweep(path: str | Path) -> SweepSpec:
    """Load a sweep YAML file (``sweep:`` at the top level); errors name the file and key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(f"cannot read sweep file: {err.strerror}", file=str(path)) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SpecError(
            f"YAML syntax error: {getattr(err, 'problem', err)}",
            file=str(path),
            line=None if mark is None else mark.line + 1,
        ) from err
    if not isinstance(data, dict) or not isinstance(data.get("sweep"), dict):
        raise SpecError("expected a mapping with a top-level 'sweep:' block", file=str(path))
    body = dict(data["sweep"])
    body.setdefault("base_dir", str(path.parent))
    try:
        return SweepSpec.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        key = "sweep." + ".".join(str(x) for x in first["loc"])
        raise SpecError(first["msg"], file=str(path), key_path=key) from err


def point_id(overrides: dict[str, Any], network: str, weight_sparsity: float) -> str:
    """Stable 16-hex-digit id of a point: SHA-256 of its canonical JSON inputs."""
    blob = json.dumps(
        {"set": overrides, "network": network, "weight_sparsity": weight_sparsity},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """All points of the sweep, deterministic order: grid (row-major), then random samples,
    each crossed with networks × weight sparsities. Duplicate points are kept once."""
    arch_points: list[dict[str, Any]] = []
    keys = list(spec.grid)
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        arch_points.append(dict(zip(keys, combo, strict=True)))
    if spec.random is not None:
        rng = np.random.default_rng(spec.random.seed)
        rkeys = list(spec.random.space)
        for _ in range(spec.random.samples):
            arch_points.append(
                {k: spec.random.space[k][int(rng.integers(len(spec.random.space[k])))]
                 for k in rkeys}
            )
    if not arch_points:
        arch_points = [{}]
    points: list[dict[str, Any]] = []
    seen: set[str] = set()
    for overrides in arch_points:
        for net in spec.networks:
            for ws in spec.weight_sparsity:
                pid = point_id(overrides, net, ws)
                if pid in seen:
                    continue
                seen.add(pid)
                points.append(
                    {"point_id": pid, "set": overrides, "network": net, "weight_sparsity": ws}
                )
    return points


def override_strings(overrides: dict[str, Any]) -> list[str]:
    """``{"levels.GLB.depth": 4096}`` -> ``["levels.GLB.depth=4096"]`` (lists as YAML flow)."""
    out = []
    for key, value in overrides.items():
        if isinstance(value, (list, tuple)):
            text = "[" + ",".join(str(v) for v in value) + "]"
        else:
            text = str(value)
        out.append(f"{key}={text}")
    return out
