"""Write ``examples/weights_70pct.npy``: a 256x256 float32 weight matrix with 70% zeros.

Values are N(0, 1) (seed 2024); each value is zeroed independently with probability 0.7, so the
density is about 0.3. Run ``python examples/make_example.py`` to regenerate it bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 2024
SHAPE = (256, 256)
SPARSITY = 0.7


def make_weights(seed: int = SEED) -> np.ndarray:
    """The example matrix: float32 N(0, 1) values, each zero with probability ``SPARSITY``."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(SHAPE).astype(np.float32)
    w[rng.random(SHAPE) < SPARSITY] = 0.0
    return w


if __name__ == "__main__":
    target = Path(__file__).with_name("weights_70pct.npy")
    np.save(target, make_weights())
    print(f"wrote {target}")
