"""``testy-model map``: find a mapping for one GEMM on an architecture and write it as YAML.

    testy-model map --arch A.yaml --gemm M=512,N=256,K=1024 [--objective edp|energy|latency]
                    [--ert ERT.yaml] [--set KEY=VAL ...] [--out mapping.yaml]
                    [--conventions timeloop|sparseloop-2022]

Operand densities come from the architecture file's ``problem:`` block when it holds one (tensor
names A, B as in the GEMM ``Z[m,n] += A[m,k]·B[n,k]``); its ``sparse_optimizations`` (Sparseloop
inputs) are priced as ``eval`` prices them. Prints the cost and the search time; ``--out`` writes
the mapping in Timeloop's format (``load_mapping`` reads it back). The printed totals are
``eval``'s of the written mapping under the same files and ``--conventions``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, cast

import typer

from testy_model.cli.app import app, console, err_console, user_errors
from testy_model.cli.options import ConventionsOption, SetOption
from testy_model.cli.outputs import check_output, write_text
from testy_model.errors import SpecError

if TYPE_CHECKING:
    from testy_model.mapper.context import Objective
    from testy_model.spec.workload import Density

_GEMM_RE = re.compile(r"^\s*([A-Za-z])\s*=\s*(\d+)\s*$")


def parse_gemm(text: str) -> tuple[int, int, int]:
    """``"M=512,N=256,K=1024"`` -> (M, N, K); raises SpecError naming the option otherwise.

    Each size must be in 1..2**31 and M·N·K at most 2**53 (the problem limits of
    :mod:`testy_model.spec.workload`), checked before any arithmetic."""
    from testy_model.spec.workload import MAX_BOUND, MAX_MACS

    sizes: dict[str, int] = {}
    for part in text.split(","):
        m = _GEMM_RE.match(part)
        if not m or m.group(1).upper() not in "MNK" or len(m.group(2)) > 12:
            raise SpecError(
                f"--gemm: bad item {part.strip()[:40]!r}; expected M=<int>,N=<int>,K=<int> with "
                "sizes in 1..2**31"
            )
        value = int(m.group(2))
        if not 1 <= value <= MAX_BOUND:
            raise SpecError(f"--gemm: {m.group(1).upper()}={value}: expected a size in 1..2**31")
        sizes[m.group(1).upper()] = value
    missing = [d for d in "MNK" if d not in sizes]
    if missing:
        raise SpecError(f"--gemm: missing {missing}; expected M=<int>,N=<int>,K=<int>")
    if sizes["M"] * sizes["N"] * sizes["K"] > MAX_MACS:
        raise SpecError("--gemm: M·N·K exceeds 2**53 MACs (the limit of one problem)")
    return sizes["M"], sizes["N"], sizes["K"]


def _file_densities(path: str) -> dict[str, Density]:
    """Densities of A and B from the file's ``problem:`` block (empty when it has none)."""
    from testy_model.spec.problem_loader import load_problem
    from testy_model.spec.workload import Problem
    from testy_model.spec.yaml_io import load_yaml_with_marks

    data, _ = load_yaml_with_marks(path)
    if not (isinstance(data, dict) and "problem" in data):
        return {}
    prob: Problem = load_problem(path)
    return {t: d for t, d in prob.densities.items() if t in ("A", "B") and d.kind != "dense"}


@app.command("map")
@user_errors
def map_command(
    arch: Annotated[str, typer.Option("--arch", help="architecture YAML (Timeloop style)")],
    gemm_shape: Annotated[str, typer.Option("--gemm", help="GEMM sizes, e.g. M=512,N=256,K=1024")],
    objective: Annotated[
        str, typer.Option("--objective", help="what to minimise: edp, energy or latency")
    ] = "edp",
    ert: Annotated[
        str | None, typer.Option("--ert", help="Accelergy ERT.yaml with per-action energies")
    ] = None,
    set_: SetOption = None,
    out: Annotated[str | None, typer.Option("--out", help="write the mapping YAML here")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace the --out file if it exists")
    ] = False,
    conventions: ConventionsOption = "timeloop",
) -> None:
    """Search a mapping for one GEMM and print its cost."""
    from testy_model.mapper import find_mapping
    from testy_model.mapper.io import dump_mapping
    from testy_model.spec.conventions import Conventions
    from testy_model.spec.inputs import load_design
    from testy_model.spec.located import did_you_mean
    from testy_model.spec.workload import gemm

    objectives = ("edp", "energy", "latency")
    if objective not in objectives:
        raise SpecError(
            f"--objective {objective!r}: expected edp, energy or latency"
            f"{did_you_mean(objective, objectives)}"
        )
    conv = Conventions.parse(conventions)
    m, n, k = parse_gemm(gemm_shape)
    out_path = check_output("--out", out, inputs=[arch, ert], force=force) if out else None
    design = load_design(arch, list(set_ or []), ert)
    a = design.arch
    problem = gemm(m, n, k, densities=_file_densities(arch))
    res = find_mapping(
        problem,
        a,
        objective=cast("Objective", objective),  # one of ``objectives``: checked above
        sparse=design.sparse_opts,
        conventions=conv,
    )
    dens = ", ".join(f"{t}={d.value:g}" for t, d in problem.densities.items()) or "dense"
    # without --out the mapping YAML is the standard output, so the summary goes to stderr
    (console if out else err_console).print(
        f"GEMM M={m} N={n} K={k} ({dens}) on {a.name}: {res.cycles:,.0f} cycles, "
        f"{res.energy_pj / 1e6:,.4f} µJ, EDP {res.edp:.4g} pJ·s; {res.method} search of "
        f"{res.evaluated} candidates in {res.search_s * 1e3:.1f} ms",
        highlight=False,
    )
    header = (
        f"testy-model map --arch {arch} --gemm M={m},N={n},K={k} --objective {objective} "
        f"--conventions {conv.value}\n"
        f"cycles {res.cycles:.0f}, energy {res.energy_pj:.6g} pJ, EDP {res.edp:.6g} pJ*s"
    )
    text = dump_mapping(res.mapping, dims=problem.dimensions, header=header)
    if out_path is not None:
        write_text(out_path, text)
        console.print(f"--out: mapping written to {out_path}", highlight=False)
    else:
        typer.echo(text, nl=not text.endswith("\n"))  # verbatim: no wrapping, loads as YAML
