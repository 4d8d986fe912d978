"""Per-layer results of an evaluation: one group of same-structure layers priced by the cost
core (under the plan and dense) and turned into :class:`~testy_model.report.LayerResult` rows,
with per level and tensor access counts (units as in ``report``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from testy_model.model.arrays import ArchArrays
from testy_model.model.cost import NestCost, price
from testy_model.model.layer_inputs import _Prepared, _stack_terms
from testy_model.model.nest import LoopNests, stack_nests
from testy_model.model.plan import Plan
from testy_model.model.reuse import dense_counts
from testy_model.report import LayerResult
from testy_model.spec.conventions import Conventions
from testy_model.spec.workload import Network


def _accesses(cost: NestCost, row: int, splits: bool) -> dict[str, dict[str, dict[str, Any]]]:
    """Per level and tensor: totals over the utilized instances (``reads``/``fills``/``updates``
    actual, ``metadata_reads``); with ``splits``, ``*_split`` ``{"actual", "gated",
    "skipped"}`` beside each kind, ``algorithmic`` ``{kind: dense count}`` and, where the level
    keeps the tensor in a
    format, ``format`` ``{kind: {split: [[metadata units, payload units] per rank]}}`` (rank 0
    innermost, Timeloop's numbering) and ``format_bits`` ``{kind: {split: bits}}``."""
    assert cost.utilized is not None  # price() always sets it
    util = np.broadcast_to(cost.utilized, cost.reads.shape)[row]
    kinds = ("reads", "fills", "updates")
    names = {"random": "actual", "gated": "gated", "skipped": "skipped"}
    tot = {k: (getattr(cost, k)[row] * util).tolist() for k in (*kinds, "metadata_reads")}
    split = {
        k: {names[s]: (v[row] * util).tolist() for s, v in cost.splits[k].items()} for k in kinds
    }
    dense = cost.dense
    alg = (
        {k: (getattr(dense, k)[row] * util).tolist() for k in kinds}
        if splits and dense is not None
        else None
    )
    sc = cost.sparse
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for li, lvl in enumerate(cost.level_names):
        row_out: dict[str, dict[str, Any]] = {}
        for ti, t in enumerate(cost.tensor_names):
            entry: dict[str, Any] = {k: tot[k][li][ti] for k in (*kinds, "metadata_reads")}
            if splits:
                for k in kinds:
                    entry[f"{k}_split"] = {s: v[li][ti] for s, v in split[k].items()}
                if alg is not None:
                    entry["algorithmic"] = {k: alg[k][li][ti] for k in kinds}
            n_r = int(sc.n_ranks[li, ti]) if sc is not None and sc.n_ranks is not None else 0
            if splits and sc is not None and n_r:
                md = cost.stage.md_bits if cost.stage is not None else None
                if md is not None:
                    entry["format_bits"] = {
                        k: {
                            names[s]: float(
                                np.broadcast_to(md[k][s], cost.reads.shape)[row, li, ti]
                            )
                            * float(util[li, ti])
                            for s in ("random", "gated", "skipped")
                        }
                        for k in kinds
                    }
                entry["format"] = {
                    k: {
                        names[s]: (sc.fmt[k][s][row, li, ti, :n_r] * util[li, ti]).tolist()
                        for s in ("random", "gated", "skipped")
                    }
                    for k in kinds
                }
            row_out[t] = entry
        out[lvl] = row_out
    return out


def _evaluate_group(
    net: Network,
    idx: Sequence[int],
    aa: ArchArrays,
    prep: _Prepared,
    pl: Plan,
    dense_nests: Sequence[LoopNests],
    conv: Conventions,
    dense_aa: ArchArrays,
) -> list[LayerResult]:
    """Price one group of same-structure, same-orientation layers (``aa``: the engine as the
    group's orientation sees it) under the plan, and dense on ``dense_aa`` (the engine as is)."""
    prob = net.layers[idx[0]].problem
    batch = stack_nests([prep.nests[i] for i in idx])
    bounds = np.array(
        [[net.layers[i].problem.bounds[d] for d in prob.dimensions] for i in idx], dtype=np.int64
    )
    fx = aa.fanout_x[0] if aa.fanout_x is not None else None
    counts = dense_counts(prob, batch, conventions=conv, fanout_x=fx)
    opts = prep.sparse[idx[0]]
    fmts = [lt.formats for lt in prep.terms]
    if opts is not None:
        cost = price(prob, aa, batch, sparse=opts, counts=counts, conventions=conv, bounds=bounds)
    else:
        terms = {t: _stack_terms([fmts[i][t] for i in idx]) for t in fmts[idx[0]]}
        tv = np.array([prep.terms[i].tasd_values for i in idx])
        cost = price(
            prob,
            aa,
            batch,
            terms=terms,
            tasd_values=tv,
            counts=counts,
            conventions=conv,
            bounds=bounds,
        )
    if dense_nests is prep.nests:
        dense = price(prob, dense_aa, batch, counts=counts, conventions=conv, bounds=bounds)
    else:
        dbatch = stack_nests([dense_nests[i] for i in idx])
        dense = price(prob, dense_aa, dbatch, conventions=conv, bounds=bounds)
    out = []
    for row, i in enumerate(idx):
        layer = net.layers[i]
        if opts is not None:
            labels: tuple[str, ...] = ()
            cs = cost.compute_split
            split = {
                "actual": float(np.broadcast_to(cs["random"], cost.cycles.shape)[row]),
                "gated": float(np.broadcast_to(cs["gated"], cost.cycles.shape)[row]),
                "skipped": float(np.broadcast_to(cs["skipped"], cost.cycles.shape)[row]),
            }
        else:
            labels = tuple(f"{t}:{'+'.join(x.label for x in fmts[i][t])}" for t in fmts[i])
            split = None
        out.append(
            LayerResult(
                name=layer.name,
                plan="sparse" if opts is not None else str(pl.for_layer(layer.name)),
                cycles=float(cost.cycles[row]),
                seconds=float(cost.seconds[row]),
                energy_pj=float(cost.energy_pj[row]),
                energy_by_component={k: float(v[row]) for k, v in cost.energy_by_component.items()},
                accesses=_accesses(cost, row, opts is not None),
                utilisation=float(cost.utilisation[row]),
                macs=float(cost.macs[row]),
                effective_macs=float(cost.effective_macs[row]),
                compute_cycles=float(cost.compute_cycles[row]),
                dense_cycles=float(dense.cycles[row]),
                dense_energy_pj=float(dense.energy_pj[row]),
                valid=bool(cost.valid[row]),
                terms=labels,
                compute_split=split,
                level_cycles={
                    lvl: float(cost.level_cycles[row, li])
                    for li, lvl in enumerate(cost.level_names)
                },
                tasd_cycles=float(cost.tasd_cycles[row]),
                kind=layer.problem.shape_name,
            )
        )
    return out
