"""Activation densities of the zoo networks: published (post-ReLU) and measured on MiniLM-L6's
real activations under the TASD paper's magnitude threshold (GELU outputs, attention
probabilities). The zoo's module docstring (:mod:`testy_model.graph.zoo`) gives the sources."""

from __future__ import annotations

from testy_model.errors import SpecError
from testy_model.tasd.pattern import TasdSeries

#: Non-zero fraction of post-ReLU conv inputs: 1 − 0.44 (Cnvlutin, ISCA 2016; module docstring).
RELU_ACT_DENSITY = 0.56
#: Non-zero fraction of GELU outputs at magnitude threshold 0.02, measured on MiniLM-L6.
GELU_ACT_DENSITY = 0.89
#: The paper's magnitude threshold made explicit: τ -> (fraction of MiniLM-L6's GELU outputs with
#: |x| > τ, relative Frobenius error of zeroing the others), measured by
#: ``scripts/measure_gelu_density.py`` (260 shipped sentences, 33.9 M values).
GELU_THRESHOLDS: dict[float, tuple[float, float]] = {
    0.0: (0.9986, 0.0),
    0.005: (0.9556, 0.0019),
    0.01: (0.9315, 0.0050),
    0.02: (0.8903, 0.0130),
    0.05: (0.7810, 0.0480),
    0.1: (0.5989, 0.1366),
}


#: Attention probabilities (softmax outputs): τ -> (fraction of MiniLM-L6's probabilities of real
#: query/key pairs with p > τ, relative Frobenius error of zeroing the others), measured by
#: ``scripts/measure_softmax_density.py --tokens 128`` (27 passages of <= 128 tokens, 28.1 M
#: values).
SOFTMAX_THRESHOLDS: dict[float, tuple[float, float]] = {
    0.0: (1.0, 0.0),
    0.001: (0.6004, 0.0061),
    0.002: (0.4857, 0.0139),
    0.005: (0.2962, 0.0394),
    0.01: (0.1446, 0.0802),
    0.02: (0.0592, 0.1286),
}
#: The zeroing error the default thresholds stay within: the GELU default's (τ = 0.02).
THRESHOLD_ERROR_BOUND = GELU_THRESHOLDS[0.02][1]


def default_threshold(table: dict[float, tuple[float, float]]) -> float:
    """The largest measured τ of ``table`` whose zeroing error is ``<= THRESHOLD_ERROR_BOUND``
    (the one rule behind both defaults: GELU 0.02, softmax 0.001)."""
    return max(t for t, (_, err) in table.items() if err <= THRESHOLD_ERROR_BOUND)


#: Density of attention probabilities at the default τ (:func:`default_threshold`): 0.6004.
SOFTMAX_ACT_DENSITY = SOFTMAX_THRESHOLDS[default_threshold(SOFTMAX_THRESHOLDS)][0]


def _measured_density(
    table: dict[float, tuple[float, float]], threshold: float, key: str, script: str
) -> float:
    if threshold not in table:
        raise SpecError(f"{key} {threshold}: measured for {sorted(table)} only ({script})")
    return table[threshold][0]


def gelu_density(threshold: float) -> float:
    """Density of GELU outputs when values with ``|x| <= threshold`` count as zeros (the TASD
    paper's magnitude threshold), from :data:`GELU_THRESHOLDS` (measured; the thresholding
    itself costs the relative Frobenius error listed there, which the search's budget does not
    see). :class:`SpecError` for a threshold that was not measured."""
    return _measured_density(
        GELU_THRESHOLDS, threshold, "gelu_threshold", "scripts/measure_gelu_density.py"
    )


def softmax_density(threshold: float) -> float:
    """Density of attention probabilities when ``p <= threshold`` counts as zero, from
    :data:`SOFTMAX_THRESHOLDS` (as :func:`gelu_density`)."""
    return _measured_density(
        SOFTMAX_THRESHOLDS, threshold, "softmax_threshold", "scripts/measure_softmax_density.py"
    )


#: Relative Frobenius error ``‖R‖/‖P_τ‖`` of a class ``K:M`` (top-K of every M keys) on MiniLM-L6's
#: real attention probabilities thresholded at the zoo's τ = 0.001 (density 0.6004), measured by
#: ``scripts/measure_softmax_loss.py`` (27 passages of <= 128 tokens, every layer, dense forward
#: pass). The Gaussian closed form at that density overstates it 1.2–3× (e.g. ``2:4``: 0.2376
#: closed form against 0.0994 measured): softmax rows hold a few large values and many tiny ones.
SOFTMAX_L2_ERRORS: dict[str, float] = {
    "1:4": 0.2041,
    "2:4": 0.0994,
    "3:4": 0.0463,
    "1:8": 0.2398,
    "2:8": 0.1452,
    "3:8": 0.0984,
    "4:8": 0.0689,
    "5:8": 0.0476,
    "6:8": 0.0309,
    "7:8": 0.0170,
}


def softmax_l2_error(series: TasdSeries, density: float) -> float | None:
    """The measured relative Frobenius error of ``series`` on attention probabilities
    (:data:`SOFTMAX_L2_ERRORS`) when ``density`` is the one it was measured at
    (:data:`SOFTMAX_ACT_DENSITY`, τ = 0.001) and the series' quality class ``K:M`` (all terms
    one block size M, ``K = Σ N``) was measured; 0 for a class keeping every value; else None."""
    if series.is_dense or abs(density - SOFTMAX_ACT_DENSITY) > 1e-9:
        return 0.0 if series.is_dense else None
    ms = {t.m for t in series.terms}
    if len(ms) != 1:
        return None
    m = ms.pop()
    k = sum(t.n for t in series.terms)
    if k >= m:
        return 0.0
    return SOFTMAX_L2_ERRORS.get(f"{k}:{m}")
