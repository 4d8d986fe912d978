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

**The constants are fitted** (``scripts/fit_network_loss.py``) on the 482 measured single-layer
losses > 0 of MiniLM-L6 (``data/minilm_losses.csv``: one linear layer's weight or activation
approximated by a class ``K:M``, all others exact): 264 weight cases (error: the measured
Frobenius error of the real weight's decomposition), 218 activation cases (error: the closed
form of a dense operand, what the search uses for a zoo layer). The exponent ``p`` per operand
is the slope of the least-squares line of ``log loss`` on ``log e`` (1.611 for weights, 2.167
for activations: ``loss ∝ e²`` fits activations, weights grow slower); ``c`` then makes the
predicted sum over the data equal the measured sum (the budget adds losses, so the sum, not the
median, must be unbiased). **What the data says about the form**: one pooled ``c`` per operand
ranks the cases poorly across layers (Spearman ρ 0.60 weights, 0.84 activations; predicted /
measured 10–90 % 0.30–6.0 and 0.32–4.3), because the same error costs up to ~50× more in some
layers; most of that is the layer's **role** in the block (:func:`layer_role`): MiniLM's MLP
up-projection input costs ~4.6× a Q/K/V projection input at the same error. So ``c`` is per
(operand, role), ``p`` per operand (predicted / measured per case; Spearman ρ):

========  ==========  ======  ============  =========  ===========
operand   role        cases   c             median     10–90 %
========  ==========  ======  ============  =========  ===========
weight    qkv         149     0.0224        1.75       0.54–5.47
weight    attn_out    48      0.0232        1.57       0.83–3.27
weight    mlp_up      27      0.1320        1.13       0.65–1.81
weight    mlp_down    40      0.0520        1.22       0.57–1.89
weight    all roles   264                   1.43       0.56–4.35 (ρ 0.81)
act.      qkv         123     0.0176        1.61       0.73–3.16
act.      attn_out    38      0.0277        1.32       0.62–2.26
act.      mlp_up      30      0.0806        1.10       0.88–1.36
act.      mlp_down    27      0.0550        0.96       0.52–1.30
act.      all roles   218                   1.29       0.72–2.78 (ρ 0.93)
========  ==========  ======  ============  =========  ===========

**Attention probabilities** (the run-time A operand ``P`` of the zoo's ``A·V``, role
``attn_probs``) are measured separately (``scripts/measure_softmax_loss.py``: MiniLM with every
layer's ``P``, thresholded at the zoo's τ = 0.001, approximated by one class along the keys;
27 passages of <= 128 tokens). Their error is the measured ``‖R‖/‖P_τ‖`` of real softmax
outputs (``graph.zoo_densities.SOFTMAX_L2_ERRORS``; the Gaussian closed form overstates it
1.2–3×, :func:`with_softmax_errors`), and their loss per layer follows ``c·e^2.167`` with
``c`` between 0.50 and 0.82 over six classes (``7:8`` .. ``2:4``; 2:4 costs 0.43 % per layer):
sum-matched ``c = 0.655``, ~25× a linear layer's activation. The exponent of the activations
fits them too.

Layers of no measured role (convolutions, ``QKᵀ`` whose Q and K are run-time activations,
pooler, classifier; and ``V`` in ``A·V``) take the pooled ``other`` constants (``c_w = 0.0314``,
``c_a = 0.0270``): an assumption, no single-layer measurement of them exists.

**Whole-model check** (``scripts/fit_network_loss.py --validate``, 260 sentences): every
activation of MiniLM at ``7:8``: predicted 0.0038, measured 0.0046; the network-mode plans of
MiniLM at budget 0.01: ``stc_2of4_tasd`` predicted 0.0081 / measured 0.0074, ``vegeta_tasd``
0.0098 / 0.0117, ``s2ta_tasd`` 0.0100 / 0.0119. Losses compound slightly more than additively
(~1.2×): a budget of 0.01 lands near, not strictly under, the 1 % target. The verified plans of
the measured-loss search (``models.search_quality``, which picks the layers of least measured
loss within a role) are over-predicted 2–4× (0.0176 / 0.0046, 0.0281 / 0.0096, 0.0209 /
0.0094): the model is a role average.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from testy_model.plan_search.pricing import LayerTable
    from testy_model.spec.workload import Layer

#: Exponents ``p`` per operand (module docstring).
P_WEIGHT = 1.611
P_ACTIVATION = 2.167
#: Coefficients ``c`` per (operand, layer role) (module docstring); ``other``: pooled.
COEFFICIENTS: dict[tuple[str, str], float] = {
    ("weight", "qkv"): 0.0224,
    ("weight", "attn_out"): 0.0232,
    ("weight", "mlp_up"): 0.1320,
    ("weight", "mlp_down"): 0.0520,
    ("weight", "other"): 0.0314,
    ("activation", "qkv"): 0.0176,
    ("activation", "attn_out"): 0.0277,
    ("activation", "mlp_up"): 0.0806,
    ("activation", "mlp_down"): 0.0550,
    ("activation", "other"): 0.0270,
    ("activation", "attn_probs"): 0.655,
}
ROLES: tuple[str, ...] = ("qkv", "attn_out", "mlp_up", "mlp_down", "attn_probs", "other")
#: layer-name patterns of the transformer roles (HF BERT/MiniLM names and the zoo's)
_ROLE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("qkv", r"(attention\.self\.(query|key|value)|attn\.[qkv])$"),
    ("attn_out", r"(attention\.output\.dense|attn\.out)$"),
    ("mlp_up", r"(intermediate\.dense|mlp\.up)$"),
    ("mlp_down", r"((?<!attention\.)output\.dense|mlp\.down)$"),
    ("attn_probs", r"attn\.av$"),
)


def layer_role(name: str) -> str:
    """The role of a layer in a transformer block, from its name: ``qkv`` (the Q/K/V
    projections), ``attn_out`` (attention output projection), ``mlp_up``, ``mlp_down``
    (the MLP's two linears), ``attn_probs`` (the zoo's ``A·V``, whose run-time A operand is the
    attention probabilities), else ``other`` (convolutions, ``QKᵀ``, pooler, classifier: the
    pooled constants). Names as HF BERT/MiniLM
    (``layer.0.attention.self.query``, ``layer.0.intermediate.dense``, ``layer.0.output.dense``)
    or the zoo (``encoder.0.attn.q``, ``encoder.0.mlp.up``) write them."""
    for role, pat in _ROLE_PATTERNS:
        if re.search(pat, name):
            return role
    return "other"


#: Default network budget: predicted loss 0.01 (the paper's ">= 99 % of the accuracy").
NETWORK_BUDGET = 0.01


def operand_loss(error: np.ndarray | float, operand: str, role: str = "other") -> np.ndarray:
    """Predicted quality loss ``c_role · e^p`` of one operand of one layer (``operand``:
    ``weight`` or ``activation``; ``role``: :func:`layer_role`; ``e`` its relative Frobenius
    error, dimensionless, >= 0; module docstring). ``e = 0`` gives 0. Hand check: an ``other``
    weight at ``e = 0.5``: ``0.0314 · 0.5^1.611 = 0.0314 · 0.327371 = 0.0102795``."""
    e = np.clip(np.asarray(error, dtype=np.float64), 0.0, None)
    if operand not in ("weight", "activation"):
        raise ValueError(f"operand {operand!r}: expected 'weight' or 'activation'")
    if role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {ROLES}")
    p = P_WEIGHT if operand == "weight" else P_ACTIVATION
    return COEFFICIENTS.get((operand, role), COEFFICIENTS[(operand, "other")]) * e**p


def predicted_loss(
    e_w: np.ndarray | float, e_a: np.ndarray | float, role: str = "other"
) -> np.ndarray:
    """Predicted quality loss of a layer of ``role`` whose weight has error ``e_w`` and
    activation ``e_a`` (dimensionless): ``c_w·e_w^p_w + c_a·e_a^p_a`` (module docstring). Hand
    check, ``other``, ``e_w = e_a = 0.5``: ``0.0102795 + 0.0270 · 0.5^2.167 = 0.0102795 +
    0.0270 · 0.222673 = 0.0162917``."""
    return operand_loss(e_w, "weight", role) + operand_loss(e_a, "activation", role)


def error_bound(budget: float, operand: str) -> float:
    """The largest error of ``operand`` whose predicted loss alone is ``<= budget`` in any role:
    ``(budget / min_role c)^(1/p)`` (dimensionless; 0 for a zero budget)."""
    if budget <= 0:
        return 0.0
    c = min(v for (op, _), v in COEFFICIENTS.items() if op == operand)
    p = P_WEIGHT if operand == "weight" else P_ACTIVATION
    return float(min(1.0, (budget / c) ** (1.0 / p)))


def table_losses(table: LayerTable) -> np.ndarray:
    """Predicted loss of every option of a layer (dimensionless): :func:`predicted_loss` of
    its weight and activation errors with the coefficients of the layer's role; in an
    ``attn_probs`` layer (``A·V``: no weight, the A-slot series decomposes the probabilities
    ``P``, the activation series ``V``, one of them per option) an option decomposing ``P``
    takes the ``attn_probs`` coefficient, one decomposing ``V`` the pooled activation one."""
    role = layer_role(table.name)
    if role != "attn_probs":
        return predicted_loss(table.weight_error, table.activation_error, role)
    on_p = np.array([not o.weights.is_dense for o in table.options], dtype=bool)
    e = table.activation_error
    return np.where(
        on_p, operand_loss(e, "activation", "attn_probs"), operand_loss(e, "activation")
    )


def with_softmax_errors(layer: Layer, table: LayerTable) -> LayerTable:
    """``table`` with the errors of the options that decompose an ``attn_probs`` layer's
    probabilities replaced by their measured value on real softmax outputs
    (``graph.zoo_densities.softmax_l2_error``: the closed form overstates them 1.2–3×) where the
    probabilities have the density it was measured at; unchanged otherwise. Those options
    decompose ``P`` alone, so the layer's error is ``P``'s."""
    from testy_model.graph.zoo_densities import softmax_l2_error
    from testy_model.plan_search.candidates import runtime_a

    p = runtime_a(layer.problem)
    if layer_role(table.name) != "attn_probs" or p is None:
        return table
    d = float(layer.problem.density(p).value)
    e_a = table.activation_error.copy()
    for i, o in enumerate(table.options):
        if o.weights.is_dense or not o.activations.is_dense:
            continue
        e = softmax_l2_error(o.weights, d)
        if e is not None:
            e_a[i] = e
    return dataclasses.replace(table, activation_error=e_a, error=e_a.copy())
