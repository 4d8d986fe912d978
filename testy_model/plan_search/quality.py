"""Predicted network quality loss of a plan (the ``network`` search mode's budget).

The paper's criterion is network-level (>= 99 % of the original model's accuracy, end to end),
so the ``network`` mode bounds the *sum* over layers of a predicted per-operand quality loss
instead of each layer's error:

    loss(plan) = Σ_l [ c_w · e_w,l ^ p_w  +  c_a · e_a,l ^ p_a ]            (dimensionless)

with ``e`` the operand's relative Frobenius error ``‖R‖_F / ‖A‖_F`` (measured on the layer's
real tensor where it names one, else the Gaussian closed form, ``error_metric="l2"``,
:func:`~testy_model.plan_search.errors.l2_closed_form_error`) and ``loss`` in the units of the
MiniLM study, ``1 − mean cosine similarity`` of the model's output to the dense model's (0.01 =
the paper's 99 %). Per-layer losses are assumed to add (the MiniLM study's assumption; checked
below against whole-model measurements).

**The constants are fitted** (``scripts/fit_network_loss.py``) on the 483 measured single-layer
losses of MiniLM-L6 (``data/minilm_losses.csv``: one linear layer's weight or activation
approximated by a class ``K:M``, all others exact): 264 weight cases (error: the measured
Frobenius error of the real weight's decomposition), 218 activation cases (error: the closed
form of a dense operand, what the search uses for a zoo layer). The exponent ``p`` is the slope
of the least-squares line of ``log loss`` on ``log e``; ``c`` then makes the predicted sum over
the data equal the measured sum (the budget adds losses, so the sum, not the median, must be
unbiased). Fit quality (predicted / measured per case; Spearman's ρ of prediction and loss):

- weights: ``p_w = 1.611``, ``c_w = 0.0314``; ratio median 1.56, 10–90 % 0.30–6.0, ρ 0.59;
- activations: ``p_a = 2.167``, ``c_a = 0.0270``; ratio median 1.47, 10–90 % 0.32–4.3, ρ 0.84.

The spread (one error costs up to ~50× more in one layer than another: MiniLM's late blocks)
is what an error-only model cannot see; the fit is unbiased on the sum, not per layer.
Whole-model check (``scripts/fit_network_loss.py``): MiniLM with every one of its 36 linear
layers' activations at ``7:8`` (closed-form error 0.0678) predicts 0.29 % against a measured
0.46 %: losses compound slightly more than additively (the single-layer measurements of that
class add up to 0.35 %).

Operands of the attention matmuls (``QKᵀ``, ``A·V``: both run-time activations) take the
activation constants (no single-layer measurement of them exists).
"""

from __future__ import annotations

import numpy as np

#: Fitted constants (module docstring): loss = C · e^P per operand, e a relative Frobenius error.
C_WEIGHT = 0.0314
P_WEIGHT = 1.611
C_ACTIVATION = 0.0270
P_ACTIVATION = 2.167

#: Default network budget: predicted loss 0.01 (the paper's ">= 99 % of the accuracy").
NETWORK_BUDGET = 0.01


def operand_loss(error: np.ndarray | float, operand: str) -> np.ndarray:
    """Predicted quality loss ``c · e^p`` of one operand of one layer (``operand``: ``weight``
    or ``activation``; ``e`` its relative Frobenius error, dimensionless, >= 0; module
    docstring). ``e = 0`` gives 0. Hand check: a weight at ``e = 0.5``:
    ``0.0314 · 0.5^1.611 = 0.0314 · 0.32731 = 0.010278``."""
    e = np.clip(np.asarray(error, dtype=np.float64), 0.0, None)
    if operand == "weight":
        return C_WEIGHT * e**P_WEIGHT
    if operand == "activation":
        return C_ACTIVATION * e**P_ACTIVATION
    raise ValueError(f"operand {operand!r}: expected 'weight' or 'activation'")


def predicted_loss(e_w: np.ndarray | float, e_a: np.ndarray | float) -> np.ndarray:
    """Predicted quality loss of a layer whose weight has error ``e_w`` and activation
    ``e_a`` (dimensionless): ``c_w·e_w^p_w + c_a·e_a^p_a`` (module docstring). Hand check:
    ``e_w = 0.5, e_a = 0.5``: ``0.010278 + 0.0270 · 0.5^2.167 = 0.010278 + 0.006014``."""
    return operand_loss(e_w, "weight") + operand_loss(e_a, "activation")


def error_bound(budget: float, operand: str) -> float:
    """The largest error of ``operand`` whose predicted loss alone is ``<= budget``:
    ``(budget / c)^(1/p)`` (dimensionless; 0 for a zero budget)."""
    if budget <= 0:
        return 0.0
    c, p = (C_WEIGHT, P_WEIGHT) if operand == "weight" else (C_ACTIVATION, P_ACTIVATION)
    return float((budget / c) ** (1.0 / p))
