"""Sweep points: expansion of a sweep spec into points and their stable ids.

A point is one (architecture overrides, network, weight sparsity) triple; its ``point_id`` hashes
those inputs and the sweep's :func:`evaluation_fingerprint`, so a re-run recognises its rows.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.spec.sweep_spec import SweepSpec


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of its path when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


def evaluation_fingerprint(spec: SweepSpec) -> str:
    """What every row of the sweep depends on besides its own point inputs: the base
    architecture file's contents, the plan (and a plan file's contents), budget, objective,
    mapper switch and its seeding limit, and the network parameters.

    It is folded into each ``point_id``, so re-running a sweep after editing any of these
    recomputes every point instead of silently reusing rows of the old sweep.
    """
    plan_path = Path(spec.plan)
    if not plan_path.is_absolute():
        plan_path = Path(spec.base_dir) / plan_path
    plan_file = _file_digest(plan_path) if plan_path.suffix in (".yaml", ".yml") else None
    blob = json.dumps(
        {
            "arch": _file_digest(spec.arch_path()),
            "plan": spec.plan,
            "plan_file": plan_file,
            "budget": spec.budget,
            "objective": spec.objective,
            "mapper": spec.mapper,
            "seed_limit": spec.seed_limit,
            "network_params": spec.network_params,
            # only when not the default, so fingerprints of earlier sweeps stay valid
            **({"conventions": spec.conventions} if spec.conventions != "timeloop" else {}),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def point_id(
    overrides: dict[str, Any], network: str, weight_sparsity: float, fingerprint: str = ""
) -> str:
    """Stable 16-hex-digit id of a point: SHA-256 of its canonical JSON inputs and the sweep's
    :func:`evaluation_fingerprint`."""
    blob = json.dumps(
        {
            "set": overrides,
            "network": network,
            "weight_sparsity": weight_sparsity,
            "fingerprint": fingerprint,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """All points of the sweep, deterministic order: grid (row-major), then random samples,
    each crossed with networks × weight sparsities. Duplicate points are kept once."""
    fingerprint = evaluation_fingerprint(spec)
    arch_points: list[dict[str, Any]] = []
    keys = list(spec.grid)
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        arch_points.append(dict(zip(keys, combo, strict=True)))
    if spec.random is not None:
        rng = np.random.default_rng(spec.random.seed)
        rkeys = list(spec.random.space)
        for _ in range(spec.random.samples):
            arch_points.append(
                {
                    k: spec.random.space[k][int(rng.integers(len(spec.random.space[k])))]
                    for k in rkeys
                }
            )
    if not arch_points:
        arch_points = [{}]
    points: list[dict[str, Any]] = []
    seen: set[str] = set()
    for overrides in arch_points:
        for net in spec.networks:
            for ws in spec.weight_sparsity:
                pid = point_id(overrides, net, ws, fingerprint)
                if pid in seen:
                    continue
                seen.add(pid)
                points.append(
                    {"point_id": pid, "set": overrides, "network": net, "weight_sparsity": ws}
                )
    return points


def override_strings(overrides: dict[str, Any]) -> list[str]:
    """``{"levels.GLB.depth": 4096}`` -> ``["levels.GLB.depth=4096"]`` (lists as YAML flow)."""

    def scalar(v: Any) -> str:  # YAML spelling: null, true/false, numbers and strings as is
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    out = []
    for key, value in overrides.items():
        if isinstance(value, (list, tuple)):
            text = "[" + ",".join(scalar(v) for v in value) + "]"
        else:
            text = scalar(value)
        out.append(f"{key}={text}")
    return out
