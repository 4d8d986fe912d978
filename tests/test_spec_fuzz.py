"""Hypothesis fuzzing of the loaders for 60 s (marked slow; run in CI by default).

Inputs: (1) valid shipped/Timeloop files with random byte-level edits, and (2) random YAML
documents built from the keys and values the loaders look for. Property: every loader either
returns its typed model or raises the project's SpecError; nothing else escapes.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from testy_model.errors import SpecError
from testy_model.spec import load_any, load_arch, load_mapping, load_problem

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "timeloop_examples"
FUZZ_SECONDS = 60.0

SEEDS = [
    ROOT / "arch_specs" / "stc_2of4_tasd.yaml",
    ROOT / "arch_specs" / "highlight.yaml",
    ROOT / "mappings" / "problem_M512-K1024-N256.yaml",
    ROOT / "mappings" / "tc_dense_M512-K1024-N256.yaml",
]
SEEDS += [
    p
    for p in (
        SHARED / "simple_weight_stationary/arch.yaml",
        SHARED / "default_problem.yaml",
        SHARED / "eyeriss_like/ref_mapping.yaml",
    )
    if p.exists()
]
TEXTS = [p.read_text() for p in SEEDS]

KEYS = [
    "architecture",
    "nodes",
    "subtree",
    "local",
    "name",
    "class",
    "attributes",
    "depth",
    "width",
    "datawidth",
    "spatial",
    "meshX",
    "meshY",
    "constraints",
    "dataspace",
    "keep",
    "bypass",
    "sparsity",
    "A",
    "B",
    "patterns",
    "tasd_unit",
    "count",
    "problem",
    "shape",
    "dimensions",
    "data_spaces",
    "projection",
    "instance",
    "densities",
    "density",
    "distribution",
    "mapping",
    "target",
    "type",
    "factors",
    "permutation",
    "split",
    "M",
    "K",
    "network",
    "layers",
    "gemm",
    "read_bandwidth",
    "version",
    "nodes",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "2:4",
            "5:4",
            "DRAM",
            "intmac",
            "temporal",
            "spatial",
            "M16 K4",
            "K=2",
            "!Component",
            "fixed_structured",
            "[",
            "{",
        ]
    ),
    st.text(max_size=8),
)
docs = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)
edits = st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 6), st.text(max_size=6)), min_size=1, max_size=4
)


def _mutate(text: str, ops: list[tuple[float, int, str]]) -> str:
    for frac, cut, new in ops:
        i = int(frac * len(text))
        text = text[:i] + new + text[i + cut :]
    return text


def _check(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for loader in (load_any, load_arch, load_problem, load_mapping):
            with contextlib.suppress(SpecError):
                loader(path)


@pytest.mark.slow
def test_fuzz_loaders_60s(tmp_path: Path) -> None:
    f = tmp_path / "fuzz.yaml"

    def mutated(idx: int, ops: list[tuple[float, int, str]]) -> None:
        f.write_text(_mutate(TEXTS[idx % len(TEXTS)], ops))
        _check(f)

    def generated(doc: object) -> None:
        f.write_text(yaml.safe_dump(doc).replace("'!Component'", "!Component"))
        _check(f)

    cfg = settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < FUZZ_SECONDS:
        seed(rounds)(cfg(given(st.integers(0, 99), edits)(mutated)))()
        seed(rounds)(cfg(given(docs)(generated)))()
        rounds += 1
    assert rounds >= 1
