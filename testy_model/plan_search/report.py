"""The search's result (:class:`SearchReport`): the plan, and dense / no-TASD / no-unit / plan
compared, as tables, JSON and a DataFrame.

Totals: the layers and the network's non-GEMM operators in sequence, cycles, seconds and energies
add up; the network EDP is ``E_total · t_total`` (pJ·s). Every layer figure is the cost of the
option on the mapping it runs on (``plan_search.pricing``), the operators are priced by
``eval``'s own code (``model.graph_eval.price_operators``; no plan changes them), so the plan's
totals are ``evaluate``'s of the written plan.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.model.plan import Plan
from testy_model.plan_search.pricing import LayerTable
from testy_model.report import OperatorResult

WHICH = ("dense", "native", "no_unit", "plan")


@dataclass(frozen=True)
class PlanTotals:
    """Network totals of one plan: cycles, seconds, energy (pJ), EDP (pJ·s), the MAC-weighted
    mean error and the largest layer error (dimensionless)."""

    cycles: float
    seconds: float
    energy_pj: float
    edp_pj_s: float
    mean_error: float
    max_error: float

    def to_dict(self) -> dict[str, float]:
        """Plain data (the fields by name)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SearchReport:
    """The result of :func:`~testy_model.plan_search.search`.

    ``choice``, ``dense``, ``native`` and ``no_unit`` hold one option index per layer into
    ``tables``: the searched plan; every layer dense; the structured engine without TASD (an
    operand runs sparse only when it already fits a hardware pattern); and the best plan
    without the TASD unit (weights decomposed offline, activations as they arrive).
    ``operators``: the network's non-GEMM operators (the same in every plan), in the totals.
    """

    network: str
    arch: str
    objective: str
    mode: str
    budget: float
    tables: tuple[LayerTable, ...]
    choice: np.ndarray
    dense: np.ndarray
    native: np.ndarray
    no_unit: np.ndarray | None = None
    search_s: float = 0.0
    activation_budget: float | None = None
    operators: tuple[OperatorResult, ...] = ()
    conventions: str = "timeloop"

    @property
    def fixed(self) -> tuple[float, float]:
        """(energy pJ, seconds) of the non-GEMM operators, added to every plan's totals."""
        return (
            float(sum(o.energy_pj for o in self.operators)),
            float(sum(o.seconds for o in self.operators)),
        )

    def _idx(self, which: str) -> np.ndarray:
        if which not in WHICH:
            raise ValueError(f"{which!r}: expected one of {WHICH}")
        idx = {"plan": self.choice, "dense": self.dense, "native": self.native}.get(which)
        # None only for "no_unit" on a report built without it (search() always sets it)
        return self.no_unit if idx is None and self.no_unit is not None else idx  # type: ignore[return-value]

    def _entries(self, which: str) -> list[tuple[LayerTable, int]]:
        """(table, option index) per layer for ``which`` (the plots read the costs this way)."""
        return [(t, int(i)) for t, i in zip(self.tables, self._idx(which), strict=True)]

    def totals(self, which: str = "plan") -> PlanTotals:
        """Totals of ``plan``, ``dense``, ``native`` (no TASD) or ``no_unit``: Σ layers +
        Σ non-GEMM operators (cycles, s, pJ; EDP = E·t in pJ·s)."""
        idx = self._idx(which)
        macs = np.array([t.macs for t in self.tables], dtype=np.float64)
        errs = np.array([t.error[i] for t, i in zip(self.tables, idx, strict=True)])
        ops = self.operators
        e = float(sum(t.energy_pj[i] for t, i in zip(self.tables, idx, strict=True)))
        e += float(sum(o.energy_pj for o in ops))
        s = float(sum(t.seconds[i] for t, i in zip(self.tables, idx, strict=True)))
        s += float(sum(o.seconds for o in ops))
        c = float(sum(t.cycles[i] for t, i in zip(self.tables, idx, strict=True)))
        c += float(sum(o.cycles for o in ops))
        return PlanTotals(
            c, s, e, e * s, float((macs * errs).sum() / macs.sum()), float(errs.max())
        )

    def predicted_loss(self, which: str = "plan") -> float:
        """Predicted network quality loss of ``plan``, ``dense``, ``native`` or ``no_unit``:
        ``Σ_l c_w·e_w^p_w + c_a·e_a^p_a``, ``c`` of the layer's role (``plan_search.quality``;
        dimensionless; meaningful for errors in Frobenius units, i.e. the ``network`` mode's)."""
        from testy_model.plan_search.quality import table_losses

        return float(
            sum(table_losses(t)[i] for t, i in zip(self.tables, self._idx(which), strict=True))
        )

    @property
    def plan(self) -> Plan:
        """The chosen options as the model's :class:`Plan` (every layer listed, default dense)."""
        return Plan(
            layers={t.name: t.options[i] for t, i in zip(self.tables, self.choice, strict=True)}
        )

    def ratio(self, against: str, quantity: str = "edp_pj_s") -> float:
        """``quantity`` of the plan / that of ``against`` (``dense``, ``native``, ``no_unit``)."""
        a = getattr(self.totals(against), quantity)
        return getattr(self.totals("plan"), quantity) / a if a else float("nan")

    @property
    def candidates(self) -> int:
        """Candidates considered over all layers."""
        return sum(len(t.options) for t in self.tables)

    @property
    def priced(self) -> int:
        """Candidates priced (within the error cap) over all layers."""
        return sum(
            int(t.priced.sum()) if t.priced is not None else len(t.options) for t in self.tables
        )

    def rows(self) -> list[dict[str, Any]]:
        """One plain-data row per layer (plan's choice, error, cost, and the dense cost)."""
        out = []
        for t, i in zip(self.tables, self.choice, strict=True):
            o = t.options[i]
            out.append(
                {
                    "layer": t.name,
                    "macs": t.macs,
                    "weights": str(o.weights),
                    "activations": str(o.activations),
                    "orientation": o.orientation,
                    "error": float(t.error[i]),
                    "error_source": "measured" if t.measured else "closed-form",
                    "cycles": float(t.cycles[i]),
                    "seconds": float(t.seconds[i]),
                    "energy_pj": float(t.energy_pj[i]),
                    "edp_pj_s": float(t.edp[i]),
                    "dense_cycles": float(t.cycles[t.dense]),
                    "dense_energy_pj": float(t.energy_pj[t.dense]),
                    "speedup": float(t.cycles[t.dense] / t.cycles[i]),
                    "candidates": len(t.options),
                    "energy_by_component": {
                        k: float(v[i]) for k, v in t.energy_by_component.items()
                    },
                    "latency_by_component": {
                        k: float(v[i]) for k, v in t.latency_by_component.items()
                    },
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: settings, totals of the plans compared, ratios, layers, plan."""
        which = [w for w in WHICH if w != "no_unit" or self.no_unit is not None]
        return {
            "network": self.network,
            "arch": self.arch,
            "objective": self.objective,
            "mode": self.mode,
            "budget": self.budget,
            "activation_budget": self.activation_budget,
            "conventions": self.conventions,
            "totals": {w: self.totals(w).to_dict() for w in which},
            "ratios": {
                "edp_vs_dense": self.ratio("dense"),
                "edp_vs_native": self.ratio("native"),
                "cycles_vs_dense": self.ratio("dense", "cycles"),
                "energy_vs_dense": self.ratio("dense", "energy_pj"),
            },
            "predicted_loss": (
                {w: self.predicted_loss(w) for w in which} if self.mode == "network" else None
            ),
            "layers": self.rows(),
            "operators": [o.to_dict() for o in self.operators],
            "plan": self.plan.to_dict()["plan"],
            "candidates": self.candidates,
            "priced": self.priced,
            "search_s": self.search_s,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of :meth:`to_dict` (written to ``path`` when given)."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_frame(self) -> Any:
        """pandas DataFrame, one row per layer (component columns ``E_*`` pJ, ``T_*`` cycles)."""
        import pandas as pd

        rows = []
        for r in self.rows():
            flat = {k: v for k, v in r.items() if not isinstance(v, dict)}
            flat.update({f"E_{k}": v for k, v in r["energy_by_component"].items()})
            flat.update({f"T_{k}": v for k, v in r["latency_by_component"].items()})
            rows.append(flat)
        return pd.DataFrame(rows)
