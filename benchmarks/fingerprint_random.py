"""Bit-for-bit fingerprints of the cost core on random loop nests (every loop layout, mesh
split, keep/bypass, directive and stream mask, duplicate rows), the complement of
``fingerprint_pricing.py`` (mapper batches rarely have every loop active or any directive).

    python benchmarks/fingerprint_random.py OUT.pkl
    python -c "import pickle; a, b = (pickle.load(open(f, 'rb')) for f in ('A.pkl', 'B.pkl')); \
print(sum(x != y for x, y in zip(a, b, strict=True)), 'of', len(a), 'differ')"

1,440 batches: two GEMMs and three ResNet-50 convolutions × tc_dense, s2ta_tasd, stc_2of4_tasd ×
12 seeds × batch sizes 1, 40, 300, 300 (directives on the 40 and one of the 300) × both
conventions; per batch a SHA-1 of the cost arrays and of the dense counts.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from testy_model.graph.zoo import get_network  # noqa: E402
from testy_model.mapper.space import prime_factors  # noqa: E402
from testy_model.model.arrays import arch_arrays  # noqa: E402
from testy_model.model.cost import price  # noqa: E402
from testy_model.model.nest import LoopNests  # noqa: E402
from testy_model.spec import gemm  # noqa: E402
from testy_model.spec.arch_loader import load_arch  # noqa: E402

FIELDS = ("cycles", "energy_pj", "edp", "valid", "reads", "fills", "updates", "level_cycles",
          "energy_by_tensor")  # fmt: skip
DENSE = ("reads", "fills", "updates", "entering", "groups", "distinct")


def _primes(n: int) -> list[int]:
    """Prime factors of ``n`` with multiplicity, ascending (the mapper's factorisation)."""
    return [p for p, e in prime_factors(n).items() for _ in range(e)]


def random_nests(problem: Any, n_l: int, rng: np.random.Generator, b: int, masks: bool) -> Any:
    """``b`` random factorisations of ``problem`` over ``n_l`` levels (30 % of the prime
    factors spatial), random orders, spatial orders, X splits and keeps, optionally random
    directive masks; rows then resampled with repeats and 10 % of the keep bits flipped."""
    dims = problem.dimensions
    n_d, n_t = len(dims), len(problem.tensor_names)
    tem = np.ones((b, n_l, n_d), np.int64)
    spa = np.ones((b, n_l, n_d), np.int64)
    rows = np.arange(b)
    for d, dn in enumerate(dims):
        for pr in _primes(problem.bounds[dn]):
            lv, sp = rng.integers(0, n_l, b), rng.random(b) < 0.3
            np.multiply.at(tem, (rows[~sp], lv[~sp], d), pr)
            np.multiply.at(spa, (rows[sp], lv[sp], d), pr)
    order = np.argsort(rng.random((b, n_l, n_d)), axis=2)
    sorder = np.argsort(rng.random((b, n_l, n_d)), axis=2)
    split = rng.integers(0, n_d + 1, (b, n_l))
    keep = rng.random((b, n_l, n_t)) < 0.7
    names = ("stream", "no_link", "no_multicast", "no_reuse")
    kw = {m: rng.random((b, n_l, n_t)) < 0.15 for m in names} if masks else {}
    n = LoopNests(tem, spa, order, keep, spatial_order=sorder, split=split, **kw).select(
        rng.integers(0, b, b)
    )
    k2 = n.keep.copy()
    flip = rng.random(k2.shape) < 0.1
    k2[flip] = ~k2[flip]
    k2[:, 0] = True
    return LoopNests(n.temporal, n.spatial, n.order, k2, n.spatial_order, n.split,
                     n.stream, n.no_link, n.no_multicast, n.no_reuse)  # fmt: skip


def main() -> None:
    """Write the fingerprints to ``sys.argv[1]``."""
    warnings.simplefilter("ignore")
    out = []
    probs = [gemm(64, 48, 96), gemm(128, 7, 30)]
    probs += [x.problem for x in get_network("resnet50").layers[:6:2]]
    for name in ("tc_dense", "s2ta_tasd", "stc_2of4_tasd"):
        aa = arch_arrays(load_arch(ROOT / "arch_specs" / f"{name}.yaml"))
        for pi, p in enumerate(probs):
            for seed in range(12):
                rng = np.random.default_rng(1000 * pi + seed)
                for b, masks in ((1, False), (40, True), (300, False), (300, True)):
                    n = random_nests(p, len(aa.level_names), rng, b, masks)
                    for conv in ("timeloop", "sparseloop-2022"):
                        c = price(p, aa, n, terms={}, conventions=conv)
                        h = hashlib.sha1()
                        for f in FIELDS:
                            h.update(np.ascontiguousarray(getattr(c, f)).tobytes())
                        for f in DENSE:
                            h.update(np.ascontiguousarray(getattr(c.dense, f)).tobytes())
                        out.append(h.hexdigest())
    Path(sys.argv[1]).write_bytes(pickle.dumps(out))
    print(len(out), "priced batches")


if __name__ == "__main__":
    main()
