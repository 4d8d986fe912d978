"""Costs of the quality search's candidates: MiniLM's GEMMs, per-layer cost tables, network
totals (pJ, s, pJ·s) and the shortlist of options worth a quality measurement."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from testy_model.models.quality_classes import kept_fraction, quality_class
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Density, Layer, Network, gemm
from testy_model.tasd.pattern import TasdSeries

if TYPE_CHECKING:
    import numpy as np

    from testy_model.models.minilm import MiniLM
    from testy_model.plan_search import LayerTable


def _search_mod() -> Any:
    return importlib.import_module("testy_model.plan_search")


def minilm_network(model: MiniLM, tokens: int = 128, weight_sparsity: float = 0.0) -> Network:
    """The model's 36 linear layers as GEMMs (``MiniLM.network``); with ``weight_sparsity`` > 0
    the weight operand A gets a Bernoulli density ``1 − weight_sparsity`` (magnitude pruning
    leaves the survivors scattered; the model prices its N:M terms by the closed form)."""
    net = model.network(tokens=tokens)
    if weight_sparsity <= 0.0:
        return net
    d = Density(kind="bernoulli", density=1.0 - weight_sparsity)
    layers = []
    for layer in net.layers:
        b = layer.problem.bounds
        prob = gemm(m=b["M"], n=b["N"], k=b["K"], name=layer.name, densities={"A": d})
        layers.append(Layer(name=layer.name, problem=prob))
    return Network(name=f"{net.name} pruned {weight_sparsity:g}", layers=tuple(layers))


def cost_tables(network: Network, arch: Architecture, max_terms: int = 2) -> list[LayerTable]:
    """Every candidate of every layer with its cost (``plan_search.evaluate_candidates``: each
    candidate on the mapping ``eval`` runs it on, its class mapping; cycles, s, pJ, pJ·s). The
    plain orientation only (the weight in the engine's A slot): this study's plans are
    ``(weights, activations)`` pairs."""
    s = _search_mod()
    out = []
    for layer in network.layers:
        opts = [o for o in s.candidates(layer, arch, max_terms) if not o.transposed]
        out.append(s.evaluate_candidates(layer, arch, None, opts, max_terms=max_terms))
    return out


def totals(
    tables: Sequence[LayerTable], idx: Sequence[int] | np.ndarray
) -> tuple[float, float, float]:
    """(energy pJ, seconds, EDP pJ·s) of choosing option ``idx[l]`` in layer l; layers run in
    sequence: ``E = Σ E_l``, ``t = Σ t_l``, ``EDP = E·t``."""
    e = float(sum(t.energy_pj[i] for t, i in zip(tables, idx, strict=True)))
    sec = float(sum(t.seconds[i] for t, i in zip(tables, idx, strict=True)))
    return e, sec, e * sec


def shortlist(table: LayerTable) -> list[int]:
    """Option indices of ``table`` worth measuring (see the module docstring, step 3), most
    kept values first."""
    best: dict[tuple[TasdSeries, TasdSeries], int] = {}
    edp = table.edp
    for i, o in enumerate(table.options):
        if not table.valid[i] or o.is_dense:
            continue
        key = (quality_class(o.weights), quality_class(o.activations))
        if edp[i] >= edp[table.dense] * (1 - 1e-12):
            continue  # no cheaper than dense: never worth a loss
        if key not in best or edp[i] < edp[best[key]]:
            best[key] = i
    keep = []
    for key, i in best.items():
        kw, ka = kept_fraction(key[0]), kept_fraction(key[1])
        dominated = any(
            kept_fraction(k2[0]) >= kw
            and kept_fraction(k2[1]) >= ka
            and edp[j] <= edp[i]
            and (k2 != key)
            for k2, j in best.items()
        )
        if not dominated:
            keep.append(i)
    return sorted(
        keep,
        key=lambda i: (
            -kept_fraction(table.options[i].weights) * kept_fraction(table.options[i].activations),
            i,
        ),
    )
