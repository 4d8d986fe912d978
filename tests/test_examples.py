"""Every shipped example network loads through the public loader, and each real weight tensor it
points at has the shape its layer implies (GEMM: M×K; convolution: M×C×R×S)."""

from pathlib import Path

import numpy as np
import pytest

from testy_model.spec import load_network
from testy_model.spec.tensors import load_tensor_ref

ROOT = Path(__file__).resolve().parents[1]
NETWORK_FILES = sorted((ROOT / "examples").rglob("*.yaml"))
NETWORK_FILES = [p for p in NETWORK_FILES if "network:" in p.read_text()]


def test_there_are_example_networks() -> None:
    assert len(NETWORK_FILES) >= 2


@pytest.mark.parametrize("path", NETWORK_FILES, ids=lambda p: p.name)
def test_example_network_tensors_match_shapes(path: Path) -> None:
    net = load_network(path)
    assert net.layers
    for layer in net.layers:
        if layer.weight_tensor is None:
            continue
        w = load_tensor_ref(layer.weight_tensor, base_dir=ROOT)
        b = layer.problem.bounds
        expected = (b["M"], b["K"]) if "K" in b else (b["M"], b["C"], b["R"], b["S"])
        assert w.shape == expected, layer.name
        assert np.isfinite(w).all()
