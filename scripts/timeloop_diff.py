#!/usr/bin/env python3
"""Differential testing of testy_model against the real Timeloop v3.0.3 ``timeloop-model``.

    python scripts/timeloop_diff.py --n 300 --seed 1 --kinds all --out /tmp/diff
    python scripts/timeloop_diff.py --n 60 --seed 7 --kinds all --out /tmp/d \
        --record tests/data/timeloop_random --record-n 48
    python scripts/timeloop_diff.py --case ../shared/timeloop_v3_cases/b07_simba_C64M128R3S3P14Q14

- ``--n/--seed/--kinds``: generate N random valid cases (kinds round-robin; case i uses seed
  ``seed * 1_000_000 + i``), run Timeloop and the project on each (``--jobs`` processes, at most
  2), and write ``OUT/report.json`` and ``OUT/report.md`` (distribution of relative differences
  per quantity and per case kind; per case, the quantities beyond tolerance). Each case's folder
  ``OUT/cases/<kind>_<i>/`` keeps its inputs, ``timeloop.json`` (parsed Timeloop stats),
  ``ours.json`` and ``diff.json``.
- ``--negatives K``: also break K valid cases in each way of ``oracle.gen.NEGATIVE_KINDS`` and
  record what Timeloop and the project do with them (``OUT/negatives/``).
- ``--record DIR [--record-n M]``: copy M generated cases (balanced over kinds; all if omitted)
  into DIR: inputs + ``timeloop.json`` (compact), no stats text.
- ``--case DIR``: rerun one case folder (a generated one, a recorded one or a shared one) and
  print every quantity side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from oracle import gen  # noqa: E402
from oracle.classify import CLASSES, classify_case  # noqa: E402
from oracle.compare import (  # noqa: E402
    BUCKETS,
    CaseComparison,
    compare,
    distribution_table,
    side_by_side,
    summarize,
)
from oracle.formats import format_word_bits  # noqa: E402
from oracle.stats import RunStats, add_format_bits  # noqa: E402
from oracle.timeloop import run_timeloop  # noqa: E402

INPUTS = ("arch.yaml", "problem.yaml", "sparse_opt.yaml", "map.yaml", "ERT.yaml", "ART.yaml")


def timeloop_stats(case_dir: Path) -> RunStats:
    """Timeloop's stats of a case: its recorded ``timeloop.json``, its stats file, or a run."""
    rec = case_dir / "timeloop.json"
    if rec.is_file():
        return RunStats.from_json(rec)
    txt = case_dir / "timeloop-model.stats.txt"
    if txt.is_file():
        from oracle.stats import parse_stats_file

        st = parse_stats_file(txt)
    else:
        run = run_timeloop(case_dir)
        if run.stats is None:
            raise RuntimeError(f"timeloop-model failed: {run.message}")
        st = run.stats
    add_format_bits(st, format_word_bits(case_dir))
    return st


def _one_case(args: tuple[int, str, int, str]) -> dict[str, Any]:
    """Worker: generate case i of ``kind``, run both tools, compare."""
    i, kind, seed, out = args
    from oracle.ours import OursError, evaluate_case

    folder = Path(out) / "cases" / f"{kind}_{i:04d}"
    last: dict[str, Any] = {}

    def tl(d: Path) -> tuple[int, str]:
        run = run_timeloop(d)
        last["run"] = run
        return run.rc, run.message

    t0 = time.perf_counter()
    try:
        case, runs = gen.generate_valid(seed, kind, folder, tl)
    except RuntimeError as err:
        return {"id": folder.name, "kind": kind, "status": "no_valid_case", "error": str(err)}
    t_tl = time.perf_counter() - t0
    st: RunStats = last["run"].stats
    add_format_bits(st, format_word_bits(folder))
    st.to_json(folder / "timeloop.json")
    t1 = time.perf_counter()
    try:
        mine = evaluate_case(folder)
    except OursError as err:
        return {
            "id": folder.name,
            "kind": kind,
            "status": "ours_error",
            "error": str(err),
            "timeloop_runs": runs,
            "meta": case.meta,
        }
    except Exception as err:  # a crash of the project is a finding, not a harness failure
        return {
            "id": folder.name,
            "kind": kind,
            "status": "ours_crash",
            "error": f"{type(err).__name__}: {err}",
            "timeloop_runs": runs,
            "meta": case.meta,
        }
    t_ours = time.perf_counter() - t1
    mine.to_json(folder / "ours.json")
    cmp = compare(st, mine, case=folder.name, kind=kind)
    (folder / "diff.json").write_text(json.dumps(cmp.to_dict(), indent=1, default=_inf))
    causes = classify_case(cmp, folder, [lv.name for lv in st.levels])
    return {
        "id": folder.name,
        "kind": kind,
        "status": "compared",
        "comparison": cmp.to_dict(),
        "causes": causes,
        "timeloop_runs": runs,
        "seconds": {"timeloop": t_tl, "ours": t_ours},
        "meta": case.meta,
    }


def _inf(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else str(x)


def _from_dict(d: dict[str, Any]) -> CaseComparison:
    from oracle.compare import QuantityDiff

    return CaseComparison(
        case=d["case"],
        kind=d["kind"],
        diffs=[QuantityDiff(**x) for x in d["diffs"]],
        extra=[QuantityDiff(**x) for x in d["extra"]],
    )


def run_many(n: int, seed: int, kinds: list[str], out: Path, jobs: int) -> list[dict[str, Any]]:
    """Generate and compare ``n`` cases (round-robin over ``kinds``)."""
    (out / "cases").mkdir(parents=True, exist_ok=True)
    work = [(i, kinds[i % len(kinds)], seed * 1_000_000 + i, str(out)) for i in range(n)]
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    if jobs <= 1:
        for w in work:
            results.append(_one_case(w))
            _progress(len(results), n, t0)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for r in ex.map(_one_case, work, chunksize=4):
                results.append(r)
                _progress(len(results), n, t0)
    print(file=sys.stderr)
    return results


def _progress(done: int, n: int, t0: float) -> None:
    if done % 10 == 0 or done == n:
        dt = time.perf_counter() - t0
        print(f"\r{done}/{n} cases, {dt:.0f} s", end="", file=sys.stderr, flush=True)


def write_report(results: list[dict[str, Any]], out: Path, argv: list[str]) -> dict[str, Any]:
    """``report.json`` and ``report.md`` of a run."""
    comps = [_from_dict(r["comparison"]) for r in results if r["status"] == "compared"]
    summary = summarize(comps)
    status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in results:
        status[r["kind"]][r["status"]] += 1
    errors = [
        {"id": r["id"], "status": r["status"], "error": r.get("error", "")}
        for r in results
        if r["status"] != "compared"
    ]
    per_case = []
    for c in comps:
        fails = [d for d in c.failures if d.rel is not None]
        missing = [d.name for d in c.failures if d.rel is None]
        worst = sorted(fails, key=lambda d: -abs(d.rel) if d.rel is not None else 0.0)
        per_case.append(
            {
                "case": c.case,
                "kind": c.kind,
                "beyond_tolerance": len(fails),
                "missing_in_ours": missing,
                "quantities": [
                    {"name": d.name, "timeloop": d.timeloop, "ours": d.ours, "rel": d.rel}
                    for d in worst
                ],
            }
        )
    causes = {r["id"]: r.get("causes", {}) for r in results if r["status"] == "compared"}
    beyond = {cid: c for cid, c in causes.items() if c}
    class_cases: dict[str, list[str]] = defaultdict(list)
    for cid, c in sorted(beyond.items()):
        for cls in c:
            class_cases[cls].append(cid)
    for pc in per_case:
        pc["causes"] = causes.get(pc["case"], {})
    secs = [r["seconds"] for r in results if "seconds" in r]
    report = {
        "command": " ".join(argv),
        "status": {k: dict(v) for k, v in sorted(status.items())},
        "summary": summary,
        "errors": errors,
        "cases": per_case,
        "cases_beyond_1pct": len(beyond),
        "classes": {k: sorted(v) for k, v in sorted(class_cases.items(), key=lambda x: -len(x[1]))},
        "mean_seconds": {
            "timeloop": sum(s["timeloop"] for s in secs) / max(1, len(secs)),
            "ours": sum(s["ours"] for s in secs) / max(1, len(secs)),
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=1, default=_inf))
    (out / "report.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """The markdown form of a run's report."""
    s = report["summary"]
    lines = [
        "# Timeloop v3.0.3 differential report",
        "",
        f"`{report['command']}`",
        "",
        f"Cases compared: {s['cases']}; all quantities within tolerance: "
        f"{s['cases_all_within_tolerance']}. Buckets: relative difference "
        f"(ours - Timeloop)/|Timeloop|; tolerance 0.5 % (cycles, counts), 1 % (energy).",
        "",
        "| kind | "
        + " | ".join(sorted({k for v in report["status"].values() for k in v}))
        + " | all within tolerance |",
    ]
    cols = sorted({k for v in report["status"].values() for k in v})
    lines.append("| --- | " + " | ".join("---:" for _ in cols) + " | ---: |")
    for kind, st in report["status"].items():
        p = s["per_kind_pass"].get(kind, {"pass": 0})
        lines.append(
            f"| {kind} | " + " | ".join(str(st.get(c, 0)) for c in cols) + f" | {p['pass']} |"
        )
    lines += ["", "## All kinds", "", distribution_table(s["per_quantity"]), ""]
    for kind, qs in s["per_kind"].items():
        lines += [f"## {kind}", "", distribution_table(qs), ""]
    if report["errors"]:
        lines += ["## Cases not compared", ""]
        lines += [f"- `{e['id']}` {e['status']}: {e['error'][:300]}" for e in report["errors"]]
        lines.append("")
    lines += [
        "## Causes of the cases beyond 1 %",
        "",
        f"{report['cases_beyond_1pct']} cases have a quantity beyond 1 % (or missing). Classes "
        "(`tests/oracle/classify.py`; a case can have several):",
        "",
        "| class | cases | what |",
        "| --- | ---: | --- |",
    ]
    for cls, ids in report["classes"].items():
        lines.append(f"| `{cls}` | {len(ids)} | {CLASSES.get(cls, '')} |")
    lines += ["", "## Cases beyond tolerance (worst 8 quantities each)", ""]
    for c in report["cases"]:
        if not c["beyond_tolerance"]:
            continue
        qs = ", ".join(
            f"`{q['name']}` {_fmt(q['timeloop'])} vs {_fmt(q['ours'])}" for q in c["quantities"][:8]
        )
        why = ", ".join(sorted(c.get("causes", {})))
        lines.append(f"- `{c['case']}` ({c['beyond_tolerance']}; {why}): {qs}")
    return "\n".join(lines) + "\n"


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.6g}"


def record(results: list[dict[str, Any]], out: Path, dest: Path, n: int | None) -> list[str]:
    """Copy (balanced over kinds) ``n`` compared cases' inputs + ``timeloop.json`` to ``dest``."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if r["status"] in ("compared", "ours_error", "ours_crash"):
            by_kind[r["kind"]].append(r["id"])
    chosen: list[str] = []
    kinds = sorted(by_kind)
    i = 0
    total = n if n is not None else sum(len(v) for v in by_kind.values())
    while len(chosen) < total and any(by_kind.values()):
        k = kinds[i % len(kinds)]
        if by_kind[k]:
            chosen.append(by_kind[k].pop(0))
        i += 1
    dest.mkdir(parents=True, exist_ok=True)
    for cid in chosen:
        src = out / "cases" / cid
        dst = dest / cid
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        for name in (*INPUTS, "inputs.txt", "case.json", "timeloop.json"):
            if (src / name).is_file():
                shutil.copy2(src / name, dst / name)
    return chosen


def negatives(results: list[dict[str, Any]], out: Path, per_kind: int) -> list[dict[str, Any]]:
    """Break valid cases each way of ``gen.NEGATIVE_KINDS``; what Timeloop and ours do."""
    from oracle.ours import OursError, evaluate_case

    rows = []
    by_kind: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if r["status"] == "compared":
            by_kind[r["kind"]].append(r["id"])
    # round-robin over kinds, so sparse cases get broken too
    valid = [c for group in zip(*(v[::-1] for v in by_kind.values()), strict=False) for c in group]
    for how in gen.NEGATIVE_KINDS:
        made = 0
        for cid in valid:
            if made >= per_kind:
                break
            dst = out / "negatives" / f"{how}_{cid}"
            try:
                gen.make_negative(out / "cases" / cid, how, dst)
            except ValueError:
                continue
            run = run_timeloop(dst)
            msg = run.message.splitlines()[-1] if run.message else "ok"
            (dst / "expected.json").write_text(
                json.dumps({"how": how, "timeloop_rc": run.rc, "timeloop_message": msg}, indent=1)
                + "\n"
            )
            try:
                mine = evaluate_case(dst)
                ours = f"evaluated ({mine.cycles:g} cycles)"
                ours += "; flagged invalid" if mine.valid is False else ""
            except OursError as err:
                ours = f"refused: {err}"
            except Exception as err:
                ours = f"crashed: {type(err).__name__}: {err}"
            rows.append(
                {"case": dst.name, "how": how, "timeloop_rc": run.rc, "timeloop": msg, "ours": ours}
            )
            made += 1
    (out / "negatives.json").write_text(json.dumps(rows, indent=1))
    return rows


def write_minimal(dest: Path) -> int:
    """Write every minimal case (``oracle.minimal``) with Timeloop's parsed outputs."""
    from oracle.minimal import all_minimal

    n = 0
    for cls, cases in all_minimal().items():
        for name, case in cases.items():
            folder = dest / cls / name
            if folder.exists():
                shutil.rmtree(folder)
            case.write(folder)
            run = run_timeloop(folder)
            if run.stats is None:
                print(f"{cls}/{name}: timeloop-model failed: {run.message}", file=sys.stderr)
                return 1
            add_format_bits(run.stats, format_word_bits(folder))
            run.stats.to_json(folder / "timeloop.json")
            n += 1
    print(f"wrote {n} minimal cases into {dest}")
    return 0


def one_case(case_dir: Path) -> int:
    """Side-by-side table of one case folder."""
    from oracle.ours import OursError, evaluate_case

    st = timeloop_stats(case_dir)
    try:
        mine = evaluate_case(case_dir)
    except OursError as err:
        print(f"testy-model refused the case: {err}")
        return 2
    print(side_by_side(st, mine))
    cmp = compare(st, mine, case=case_dir.name)
    n_bad = len(cmp.failures)
    print(f"\n{len(cmp.diffs)} quantities, {n_bad} beyond tolerance")
    return 1 if n_bad else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30, help="number of random cases")
    ap.add_argument("--seed", type=int, default=1)
    kinds_help = "'all' or comma-separated " + ",".join(gen.KINDS)
    ap.add_argument("--kinds", default="all", help=kinds_help)
    ap.add_argument("--out", type=Path, default=Path("/tmp/timeloop_diff"))
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (at most 2)")
    ap.add_argument("--record", type=Path, help="copy cases (inputs + timeloop.json) here")
    ap.add_argument("--record-n", type=int, help="how many cases to record (balanced)")
    ap.add_argument("--negatives", type=int, default=0, help="negative cases per way of breaking")
    ap.add_argument(
        "--record-negatives", type=Path, help="copy the negative cases Timeloop refuses here"
    )
    ap.add_argument("--case", type=Path, help="rerun one case folder side by side")
    ap.add_argument(
        "--write-minimal",
        type=Path,
        help="write the minimal cases of oracle.minimal (inputs + timeloop.json) here",
    )
    a = ap.parse_args(argv)
    if a.case is not None:
        return one_case(a.case)
    if a.write_minimal is not None:
        return write_minimal(a.write_minimal)
    kinds = list(gen.KINDS) if a.kinds == "all" else a.kinds.split(",")
    bad = [k for k in kinds if k not in gen.KINDS]
    if bad:
        ap.error(f"unknown kinds {bad}; expected {gen.KINDS}")
    a.out.mkdir(parents=True, exist_ok=True)
    results = run_many(a.n, a.seed, kinds, a.out, max(1, min(2, a.jobs)))
    cmd = ["python", "scripts/timeloop_diff.py", *(argv or sys.argv[1:])]
    rep = write_report(results, a.out, cmd)
    s = rep["summary"]
    print(
        f"{s['cases']} compared, {s['cases_all_within_tolerance']} within tolerance; "
        f"status {rep['status']}; report: {a.out / 'report.md'}"
    )
    print(distribution_table(s["per_quantity"]))
    if a.negatives:
        rows = negatives(results, a.out, a.negatives)
        for r in rows:
            tl = f"timeloop rc {r['timeloop_rc']} ({r['timeloop']})"
            print(f"{r['case']}: {tl}; ours {r['ours']}")
    if a.negatives and a.record_negatives is not None:
        a.record_negatives.mkdir(parents=True, exist_ok=True)
        n_rec = 0
        for r in rows:
            if r["timeloop_rc"] == 0:
                continue
            src, dst = a.out / "negatives" / r["case"], a.record_negatives / r["case"]
            if dst.exists():
                shutil.rmtree(dst)
            dst.mkdir(parents=True)
            for name in (*INPUTS, "inputs.txt", "case.json", "expected.json"):
                if (src / name).is_file():
                    shutil.copy2(src / name, dst / name)
            n_rec += 1
        print(f"recorded {n_rec} negative cases into {a.record_negatives}")
    if a.record is not None:
        chosen = record(results, a.out, a.record, a.record_n)
        print(f"recorded {len(chosen)} cases into {a.record}")
    _ = BUCKETS
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
