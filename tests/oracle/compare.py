"""Quantity-by-quantity comparison of two :class:`~oracle.stats.RunStats` and run summaries.

- :func:`compare` compares every quantity Timeloop prints (``RunStats.quantities``) with ours:
  relative difference ``(ours - timeloop) / |timeloop|``; a difference within Timeloop's printing
  uncertainty (energies are printed to 0.01 fJ/compute) counts as exact. Quantities Timeloop has
  and ours lacks are *missing*; access counts ours has (non-zero) at a level where Timeloop
  keeps no such tensor are *extra*.
- :func:`quantity_class` names the kind of a quantity without its level/tensor
  (``GLB.Inputs.reads.skipped`` -> ``reads.skipped``), to summarise across cases.
- :func:`summarize` builds the distribution per quantity class (and per case kind):
  exact / <0.5 % / <1 % / <5 % / worse / missing / timeloop_invalid (a negative count: a
  uint64 that wrapped inside Timeloop, e.g. gated reads of a gating target at a level above its
  innermost keeper; never counted against ours).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from oracle.stats import RunStats

#: distribution buckets, in order
BUCKETS: tuple[str, ...] = (
    "exact",
    "<0.5%",
    "<1%",
    "<5%",
    "worse",
    "missing",
    "timeloop_invalid",
)
#: relative tolerance per quantity class (default: counts, 0.5 %)
TOLERANCE: dict[str, float] = {"cycles": 0.005, "energy_pj": 0.01}
DEFAULT_TOLERANCE = 0.005
#: relative difference below which two numbers are the same (float noise)
EXACT = 1e-9


def quantity_class(name: str) -> str:
    """The quantity without level and tensor names."""
    parts = name.split(".")
    if parts[0] in ("cycles", "energy_pj"):
        return parts[0]
    if parts[0] == "compute":
        return name
    if len(parts) == 2 and parts[1] == "energy_pj":
        return "level.energy_pj"
    rest = parts[2:]
    if rest and rest[0].startswith("format_"):
        # per-rank unit counts: format_reads[.split].r<k>.md -> format_reads[.split].rank.md
        rest = ["rank" if (p.startswith("r") and p[1:].isdigit()) else p for p in rest]
    return ".".join(rest)


def tolerance(name: str) -> float:
    """Relative tolerance of a quantity (cycles 0.5 %, energy 1 %, everything else 0.5 %)."""
    return TOLERANCE.get(quantity_class(name), DEFAULT_TOLERANCE)


def bucket(rel: float | None) -> str:
    """Distribution bucket of a relative difference (None: missing)."""
    if rel is None:
        return "missing"
    a = abs(rel)
    if a <= EXACT:
        return "exact"
    if a < 0.005:
        return "<0.5%"
    if a < 0.01:
        return "<1%"
    if a < 0.05:
        return "<5%"
    return "worse"


@dataclass
class QuantityDiff:
    """One quantity of one case: Timeloop's value, ours, relative difference (None when ours
    lacks it; inf when Timeloop's is 0 and ours is not)."""

    name: str
    timeloop: float | None
    ours: float | None
    rel: float | None
    bucket: str
    within_tolerance: bool

    @property
    def cls(self) -> str:
        """:func:`quantity_class` of the name."""
        return quantity_class(self.name)


@dataclass
class CaseComparison:
    """All quantity differences of one case."""

    case: str
    kind: str
    diffs: list[QuantityDiff] = field(default_factory=list)
    extra: list[QuantityDiff] = field(default_factory=list)

    @property
    def failures(self) -> list[QuantityDiff]:
        """Quantities beyond tolerance (missing ones and extras included)."""
        return [d for d in self.diffs if not d.within_tolerance] + self.extra

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "case": self.case,
            "kind": self.kind,
            "diffs": [asdict(d) for d in self.diffs],
            "extra": [asdict(d) for d in self.extra],
        }


def rel_diff(ours: float, ref: float, abs_unc: float = 0.0) -> float:
    """``(ours - ref) / |ref|``; 0 when within ``abs_unc``; ±inf when ref is 0 and ours not."""
    d = ours - ref
    if abs(d) <= abs_unc or d == 0:
        return 0.0
    if ref == 0:
        return math.inf if d > 0 else -math.inf
    return d / abs(ref)


def compare(timeloop: RunStats, ours: RunStats, case: str = "", kind: str = "") -> CaseComparison:
    """Compare every quantity Timeloop prints with ours (see module docstring)."""
    ref = timeloop.quantities()
    unc = timeloop.abs_uncertainty()
    mine = ours.quantities()
    out = CaseComparison(case=case, kind=kind)
    for name, tv in ref.items():
        ov = mine.get(name)
        if tv < 0 and quantity_class(name) not in ("level.energy_pj",):
            # a uint64 count that wrapped below zero inside Timeloop: not a reference value
            out.diffs.append(QuantityDiff(name, tv, ov, None, "timeloop_invalid", True))
            continue
        if ov is None:
            out.diffs.append(QuantityDiff(name, tv, None, None, "missing", False))
            continue
        r = rel_diff(ov, tv, unc.get(name, 0.0))
        b = bucket(r)
        out.diffs.append(QuantityDiff(name, tv, ov, r, b, abs(r) <= tolerance(name)))
    kept = {(lv.name, t) for lv in timeloop.levels for t in lv.tensors}
    for name, ov in mine.items():
        parts = name.split(".")
        if name in ref or len(parts) < 3 or not ov:
            continue
        if (parts[0], parts[1]) not in kept and parts[2] in ("reads", "fills", "updates"):
            out.extra.append(QuantityDiff(name, None, ov, math.inf, "worse", False))
    return out


def summarize(results: list[CaseComparison]) -> dict[str, Any]:
    """Distribution of buckets per quantity class, overall and per case kind, plus the
    count of cases passing every tolerance."""
    per_q: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    per_kind_q: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    )
    per_kind_pass: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for res in results:
        for d in res.diffs:
            per_q[d.cls][d.bucket] += 1
            per_kind_q[res.kind][d.cls][d.bucket] += 1
        for d in res.extra:
            per_q["extra." + d.cls][d.bucket] += 1
            per_kind_q[res.kind]["extra." + d.cls][d.bucket] += 1
        ok = not res.failures
        per_kind_pass[res.kind][0] += int(ok)
        per_kind_pass[res.kind][1] += 1
    return {
        "cases": len(results),
        "cases_all_within_tolerance": sum(v[0] for v in per_kind_pass.values()),
        "per_kind_pass": {k: {"pass": v[0], "cases": v[1]} for k, v in per_kind_pass.items()},
        "per_quantity": {k: per_q[k] for k in sorted(per_q, key=_q_order)},
        "per_kind": {
            kind: {k: qs[k] for k in sorted(qs, key=_q_order)}
            for kind, qs in sorted(per_kind_q.items())
        },
    }


_HEAD = ("cycles", "energy_pj", "compute.actual", "compute.gated", "compute.skipped")


def _q_order(name: str) -> tuple[int, str]:
    return (_HEAD.index(name) if name in _HEAD else len(_HEAD), name)


def distribution_table(per_quantity: dict[str, dict[str, int]]) -> str:
    """Markdown table: one row per quantity class, one column per bucket."""
    head = "| quantity | " + " | ".join(BUCKETS) + " | total |"
    sep = "| --- | " + " | ".join("---:" for _ in BUCKETS) + " | ---: |"
    rows = [head, sep]
    for q, counts in per_quantity.items():
        total = sum(counts.values())
        rows.append(f"| `{q}` | " + " | ".join(str(counts[b]) for b in BUCKETS) + f" | {total} |")
    return "\n".join(rows)


def side_by_side(timeloop: RunStats, ours: RunStats) -> str:
    """Plain-text table of every quantity: Timeloop, ours, relative difference, bucket."""
    cmp = compare(timeloop, ours)
    width = max([len(d.name) for d in cmp.diffs + cmp.extra] + [10])
    lines = [f"{'quantity':<{width}}  {'timeloop':>16}  {'ours':>16}  {'rel diff':>10}  bucket"]
    for d in cmp.diffs + cmp.extra:
        tv = "-" if d.timeloop is None else f"{d.timeloop:.6g}"
        ov = "-" if d.ours is None else f"{d.ours:.6g}"
        rv = "-" if d.rel is None else (f"{d.rel:+.3%}" if math.isfinite(d.rel) else "inf")
        flag = "" if d.within_tolerance else "  <-- beyond tolerance"
        lines.append(f"{d.name:<{width}}  {tv:>16}  {ov:>16}  {rv:>10}  {d.bucket}{flag}")
    return "\n".join(lines)
