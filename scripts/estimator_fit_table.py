"""Print the README's estimator tables: every reference point, the fit's error on it and its
leave-one-out error (the fit without that point, evaluated at it), as Markdown.

    python scripts/estimator_fit_table.py > /tmp/tables.md

Errors are ``estimate / published - 1`` (testy_model.estimators.fit.leave_one_out).
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from testy_model.estimators.fit import Residual, leave_one_out
from testy_model.estimators.reference_points import RefPoint

ENERGY = [("SRAM", ("read", "write")), ("RF", ("read", "write")), ("register", ("read", "write"))]
ENERGY += [("MAC_int", ("read",)), ("MAC_fp", ("read",))]
AREA = ["SRAM", "RF", "register", "MAC_int"]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.0f} %"


def _cell(r: Residual | None) -> str:
    if r is None:
        return " | | "
    tag = "held out" if not r.point.fitted else _pct(r.loo_error)
    return f"{r.point.value:.4g} | {_pct(r.fit_error)} | {tag}"


def _source(p: RefPoint) -> str:
    return p.source.replace("sparseloop_stc_study/WD-*/*/", "study ").replace(
        "timeloop_v3_cases/", "v3 "
    )


def energy_table() -> str:
    rows: dict[tuple[str, str, float, str], dict[str, Residual]] = defaultdict(dict)
    for comp, actions in ENERGY:
        for action in actions:
            for r in leave_one_out(comp, action):  # type: ignore[arg-type]
                p = r.point
                rows[(comp, p.label, p.node_nm, _source(p))][action] = r
    out = [
        "| class | array | nm | source | read pJ | fit | leave-one-out | write pJ | fit "
        "| leave-one-out |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (comp, label, nm, src), acts in rows.items():
        out.append(
            f"| {comp} | {label} | {nm:g} | {src} | {_cell(acts.get('read'))} | "
            f"{_cell(acts.get('write'))} |"
        )
    return "\n".join(out)


def area_table() -> str:
    out = [
        "| class | arrays | nm | source | µm² | fit | leave-one-out |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for comp in AREA:
        for r in leave_one_out(comp, "area"):  # type: ignore[arg-type]
            p = r.point
            out.append(f"| {comp} | {p.label} | {p.node_nm:g} | {_source(p)} | {_cell(r)} |")
    return "\n".join(out)


def summary() -> str:
    out = ["| class | quantity | points | median abs. leave-one-out error | largest |"]
    out.append("| --- | --- | ---: | ---: | ---: |")
    pairs = [(c, a) for c, acts in ENERGY for a in acts] + [(c, "area") for c in AREA]
    for comp, q in pairs:
        errs = [abs(r.loo_error) for r in leave_one_out(comp, q) if r.loo_error is not None]  # type: ignore[arg-type]
        if errs:
            med, worst = statistics.median(errs), max(errs)
            out.append(f"| {comp} | {q} | {len(errs)} | {100 * med:.0f} % | {100 * worst:.0f} % |")
        else:
            out.append(f"| {comp} | {q} | 1 | — (one point) | — |")
    return "\n".join(out)


if __name__ == "__main__":
    print(summary(), energy_table(), area_table(), sep="\n\n")
