"""The one adapter that evaluates a case folder with this project: :func:`evaluate_case`.

It calls the project's command line as a user would for a Timeloop case (in-process, through
typer's ``CliRunner`` on :data:`testy_model.cli.app`, so hundreds of cases run fast), with
Timeloop's own invocation::

    testy-model eval arch.yaml problem.yaml [sparse_opt.yaml] map.yaml ERT.yaml ART.yaml \
        --json OUT.json --conventions timeloop

and reads the JSON report (README "Machine-readable report": per-level accesses are totals over
instances, sparse inputs add ``reads_split``...).
"""

from __future__ import annotations

import functools
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml

from oracle.stats import ComputeStats, LevelStats, RunStats, TensorStats

#: input files of a case, in Timeloop's order (a missing sparse_opt.yaml means dense)
CASE_FILES = ("arch.yaml", "problem.yaml", "sparse_opt.yaml", "map.yaml", "ERT.yaml", "ART.yaml")


class OursError(RuntimeError):
    """The project refused or failed on a case (message: its one-line error)."""


@functools.cache
def _eval_options() -> frozenset[str]:
    """Option names of ``testy-model eval`` (to pass ``--conventions`` only once it exists)."""
    import typer.main

    from testy_model.cli import app

    cmd = typer.main.get_command(app)
    sub = cmd.commands["eval"]  # type: ignore[attr-defined]
    return frozenset(o for p in sub.params for o in getattr(p, "opts", []))


def case_inputs(case_dir: Path) -> dict[str, Path]:
    """The input files of a case folder by role (``inputs.txt`` order when present)."""
    case_dir = Path(case_dir)
    names = list(CASE_FILES)
    listed = case_dir / "inputs.txt"
    if listed.is_file():
        names = listed.read_text().split()
    out = {}
    for n in names:
        p = case_dir / n
        if p.is_file():
            out[p.stem] = p  # roles: arch, problem, sparse_opt, map, ERT, ART
    return out


def _invocation(case_dir: Path, work: Path) -> tuple[list[str], Path]:
    """The ``testy-model`` arguments for one case and the JSON file they write: Timeloop's own
    invocation (the case's input files, in ``inputs.txt`` order, merged by top-level key)."""
    files = case_inputs(case_dir)
    out = work / "ours.json"
    args = ["eval", *(str(p) for p in files.values()), "--json", str(out)]
    if "--conventions" in _eval_options():
        args += ["--conventions", "timeloop"]
    return args, out


def evaluate_case(case_dir: str | Path, workdir: str | Path | None = None) -> RunStats:
    """Evaluate the case in ``case_dir`` with this project; the result as :class:`RunStats`
    (level-wide totals; ``per_instance`` left None: the JSON contract gives totals only).

    Scratch files (the aggregated input, the JSON report) go to a fresh folder under
    ``workdir`` (a temporary folder when None). Raises :class:`OursError` with the project's
    message when it rejects the case.
    """
    from typer.testing import CliRunner

    from testy_model.cli import app

    case_dir = Path(case_dir)
    with tempfile.TemporaryDirectory(prefix="oracle_ours_", dir=workdir) as tmp:
        args, out = _invocation(case_dir, Path(tmp))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = CliRunner().invoke(app, args, catch_exceptions=True)
        if res.exit_code != 0 or not out.is_file():
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                msg = f"{type(res.exception).__name__}: {res.exception}"
            else:
                text = (res.output or "").strip().splitlines()
                msg = next((ln for ln in text if "error" in ln.lower()), text[-1] if text else "")
            raise OursError(msg.strip() or f"exit code {res.exit_code}")
        report = json.loads(out.read_text())
    stats = report_to_stats(report, _word_bits_by_level(case_dir))
    stats.warnings = sorted({str(w.message).splitlines()[0] for w in caught})[:20]
    return stats


def _word_bits_by_level(case_dir: Path) -> dict[str, int]:
    """``{level name: datawidth}`` from the case's arch.yaml (v0.3 tree), default 16 bits
    (Timeloop's default word size)."""
    p = Path(case_dir) / "arch.yaml"
    if not p.is_file():
        return {}
    data = yaml.safe_load(p.read_text()) or {}
    out: dict[str, int] = {}

    def walk(node: dict[str, Any], inherited: dict[str, Any]) -> None:
        attrs = {**inherited, **(node.get("attributes") or {})}
        for comp in node.get("local") or []:
            a = {**attrs, **(comp.get("attributes") or {})}
            name = str(comp.get("name", "")).split("[")[0]
            out[name] = int(a.get("datawidth", a.get("word-bits", 16)))
        for sub in node.get("subtree") or []:
            walk(sub, attrs)

    walk(data.get("architecture", {}), {})
    return out


def report_to_stats(report: dict[str, Any], word_bits: dict[str, int] | None = None) -> RunStats:
    """The project's JSON report (one layer) as :class:`RunStats`.

    ``metadata_reads`` (bits / datawidth in the JSON) becomes ``format_bits["format_reads"]``
    using the level's datawidth from ``word_bits``.
    """
    word_bits = word_bits or {}
    layers = report.get("layers") or []
    if len(layers) != 1:
        raise OursError(f"expected one layer in the report, got {len(layers)}")
    lay = layers[0]
    comps: dict[str, float] = dict(lay.get("energy_by_component") or {})
    split = lay.get("compute_split") or {}
    computes = {
        "algorithmic": float(lay.get("macs", 0.0)),
        "actual": float(split.get("actual", lay.get("effective_macs", lay.get("macs", 0.0)))),
    }
    if split:
        computes["gated"] = float(split.get("gated", 0.0))
        computes["skipped"] = float(split.get("skipped", 0.0))
    compute = ComputeStats(name="MAC", computes=computes, energy_pj=comps.get("MAC"))
    levels: list[LevelStats] = []
    for lname, tensors in (lay.get("accesses") or {}).items():
        lv = LevelStats(name=lname, energy_pj=comps.get(lname))
        for t, e in tensors.items():
            ts = TensorStats(name=t)
            for kind in ("reads", "fills", "updates"):
                if kind in e:
                    ts.total[kind] = float(e[kind])
                sp = e.get(f"{kind}_split")
                if sp:
                    for s in ("gated", "skipped", "algorithmic"):
                        if s in sp:
                            ts.total[f"{kind}.{s}"] = float(sp[s])
            for kind, v in (e.get("algorithmic") or {}).items():
                ts.total[f"{kind}.algorithmic"] = float(v)
            for kind, splits in (e.get("format") or {}).items():
                for split, ranks in splits.items():
                    key = f"format_{kind}" if split == "actual" else f"format_{kind}.{split}"
                    ts.format_total[key] = [[float(md), float(pl)] for md, pl in ranks]
            for kind, splits in (e.get("format_bits") or {}).items():
                for split, bits in splits.items():
                    key = f"format_{kind}" if split == "actual" else f"format_{kind}.{split}"
                    ts.format_bits[key] = float(bits)
            if "metadata_reads" in e and lname in word_bits and "format_bits" not in e:
                ts.format_bits["format_reads"] = float(e["metadata_reads"]) * word_bits[lname]
            lv.tensors[t] = ts
        levels.append(lv)
    total = report.get("total") or {}
    return RunStats(
        source="testy_model",
        cycles=float(lay.get("cycles", total.get("cycles", 0.0))),
        energy_pj=float(lay.get("energy_pj", total.get("energy_pj", 0.0))),
        sparse=any(
            "reads_split" in e for t in (lay.get("accesses") or {}).values() for e in t.values()
        ),
        valid=lay.get("valid"),
        compute=compute,
        levels=levels,
    )
