"""``testy-model validate FILE...`` and ``testy-model show arch FILE``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from testy_model.cli.app import app, console, show_app, user_errors
from testy_model.errors import SpecError

if TYPE_CHECKING:
    from rich.tree import Tree

    from testy_model.spec.arch import Architecture
    from testy_model.spec.mapping import Mapping
    from testy_model.spec.workload import Network, Problem

#: Kinds of input file, by the top-level key that marks them (first match wins for the
#: combinations a file may hold: an aggregated Sparseloop input is an architecture with a problem).
_KIND_KEYS = (
    ("sweep", "sweep"),
    ("plan", "plan"),
    ("arch", "architecture"),
    ("network", "network"),
    ("problem", "problem"),
    ("mapping", "mapping"),
    ("ert", "ERT"),
    ("art", "ART"),
    ("sparse_opts", "sparse_optimizations"),
)


def file_kinds(path: str | Path) -> list[str]:
    """The kinds of input a YAML file holds, by its top-level keys (``arch``, ``problem``,
    ``mapping``, ``network``, ``ert``, ``art``, ``plan``, ``sweep``, ``sparse_opts``)."""
    from testy_model.spec.yaml_io import load_yaml_with_marks

    data, _ = load_yaml_with_marks(path)
    if not isinstance(data, dict):
        return []
    return [kind for kind, key in _KIND_KEYS if key in data]


def _plan_tree(path: str | Path, tree: Tree) -> None:
    """Validate a plan file (series parse; errors name file, line, key) and list its series."""
    from rich.markup import escape

    from testy_model.model.plan import Plan

    plan = Plan.load(path)
    node = tree.add(f"[green]{escape(str(path))}[/]").add(f"plan: {escape(str(plan))}")
    node.add(f"default: W={plan.default.weights}, A={plan.default.activations}")
    for name, lp in plan.layers.items():
        node.add(f"{escape(name)}: W={lp.weights}, A={lp.activations}")


def _sweep_tree(path: str | Path, tree: Tree) -> None:
    """Check a sweep file as ``sweep`` does before running (keys, base architecture, every
    point's overrides, networks, plan) and summarise it."""
    from rich.markup import escape

    from testy_model.dse.explore import expand_points, prepare
    from testy_model.spec.sweep_spec import load_sweep

    spec = load_sweep(path)
    points = expand_points(spec)
    prepare(spec, points)
    node = tree.add(f"[green]{escape(str(path))}[/]").add(
        f"sweep of {len(points):,} points on {escape(str(spec.arch_path()))}"
    )
    for key, values in spec.grid.items():
        node.add(f"{escape(key)}: {escape(str(values))}")
    node.add(f"networks {spec.networks}, weight sparsity {spec.weight_sparsity}, plan {spec.plan}")


def _fmt_words(x: float) -> str:
    return "unbounded" if x == float("inf") else f"{x:,.0f} words"


def arch_tree(arch: Architecture, tree: Tree) -> None:
    """Add an architecture's levels, fan-outs, compute and patterns to ``tree``."""
    from rich.markup import escape

    node = tree.add(f"architecture [bold]{arch.name}[/] ({arch.technology})")
    for i, lvl in enumerate(arch.levels):
        bw = (
            ""
            if lvl.read_bandwidth is None
            else f", read {lvl.read_bandwidth / lvl.datawidth:g} words/cycle"
        )
        keep = "any" if lvl.keep is None else ",".join(lvl.keep) or "none"
        node.add(
            f"{escape(lvl.name)} ({lvl.kind}) x{lvl.instances}: "
            f"{_fmt_words(lvl.capacity_words)} of "
            f"{lvl.datawidth} b{bw}; keeps {keep}; fan-out below {arch.fanout(i)}; "
            f"{lvl.read_energy:.4g}/{lvl.write_energy:.4g} pJ per word"
        )
    c = arch.compute
    node.add(f"compute {c.name}: {c.instances} MACs ({c.datawidth} b, {c.mac_energy:.4g} pJ/MAC)")
    for op in ("A", "B"):
        s = arch.sparsity.operand(op)
        pats = ", ".join(str(p) for p in s.patterns) or "dense only"
        hier = ", ".join(str(h) for h in s.hierarchical)
        node.add(f"sparsity {op}: {pats}{'; hierarchical ' + hier if hier else ''} ({s.action})")
    for op in ("A", "B"):
        s = arch.sparsity.operand(op)
        if s.patterns or s.hierarchical:
            node.add(f"format {op}: {s.format} (zero slots {s.zero_slots})")
    if arch.tasd_unit is not None:
        from testy_model.estimators.area import area_breakdown_mm2
        from testy_model.estimators.tasd_unit import tasd_unit_numbers

        t = tasd_unit_numbers(arch.tasd_unit, arch.compute.datawidth, arch.technology)
        share = t.area_mm2 / max(area_breakdown_mm2(arch)["total"] - t.area_mm2, 1e-30)
        unit = node.add(
            f"TASD unit: {t.count} units, top-{t.select} of {t.block}-blocks: "
            f"{t.cycles_per_block:g} cycles per block, {t.energy_per_value:.4g} pJ per value "
            f"examined, {t.area_mm2:.4g} mm² ({100 * share:.2f} % of the engine); "
            f"{t.count / t.cycles_per_block * t.block:g} values/cycle hidden"
            + (f" (derived: {', '.join(t.derived)})" if t.derived else "")
        )
        for part, (e, a) in t.cost.parts.items():
            unit.add(f"{part}: {e:.4g} pJ per value, {a:.4g} µm² per unit")


def _problem_tree(p: Problem, tree: Tree) -> None:
    node = tree.add(f"problem [bold]{p.name}[/] ({p.shape_name}): {p.macs:,} MACs")
    node.add("bounds " + " ".join(f"{d}={p.bounds[d]}" for d in p.dimensions))
    for t in p.tensor_names:
        d = p.density(t)
        extra = ""
        if d.kind == "nm":
            extra = f" (N:M {d.pattern}, density {d.value:g})"
        elif d.nm_pattern is not None:
            extra = f" (fixed-structured, N:M {d.nm_pattern}, density {d.value:g})"
        elif d.kind != "dense":
            extra = f" ({d.kind} {d.value:g})"
        node.add(f"{t}: {p.full_size(t):,} words{extra}")


def _mapping_tree(m: Mapping, tree: Tree) -> None:
    node = tree.add("mapping")
    for lm in m.levels:
        t = " ".join(f"{d}{v}" for d, v in lm.temporal.items() if v != 1) or "-"
        s = " ".join(f"{d}{v}" for d, v in lm.spatial.items() if v != 1)
        node.add(f"{lm.target}: temporal {t}" + (f"; spatial {s}" if s else ""))


def _one(kinds: dict[str, list[Path]], kind: str) -> Path | None:
    files = kinds.get(kind, [])
    return files[0] if len(files) == 1 else None


def _run_files(kinds: dict[str, list[Path]]) -> dict[str, Path | None]:
    """The files that form one run (one architecture; at most one of each other kind)."""
    arch = _one(kinds, "arch")
    workload = _one(kinds, "network") or _one(kinds, "problem")
    if workload is not None and arch is not None and workload == arch:
        workload = None  # an aggregated input: the architecture file's own problem
    return {
        "arch": arch,
        "network": workload,
        "mapping": next((f for f in kinds.get("mapping", []) if f != arch), None),
        "ert": _one(kinds, "ert"),
        "art": _one(kinds, "art"),
        "plan": _one(kinds, "plan"),
        # Timeloop's separate sparse_opt.yaml: merged into the run as eval FILE... merges it
        "sparse": next((f for f in kinds.get("sparse_opts", []) if f != arch), None),
    }


@app.command("validate")
@user_errors
def validate(
    files: list[Path] = typer.Argument(None, help="YAML files to check (kind detected)"),
    arch: str | None = typer.Option(None, "--arch", help="architecture YAML, as eval takes it"),
    network: str | None = typer.Option(
        None, "--network", help="network or problem YAML, or zoo name, as eval takes it"
    ),
    mapping: str | None = typer.Option(None, "--mapping", help="mapping YAML, as eval takes it"),
    ert: str | None = typer.Option(None, "--ert", help="Accelergy ERT.yaml, as eval takes it"),
    art: str | None = typer.Option(None, "--art", help="Accelergy ART.yaml, as eval takes it"),
    plan: str | None = typer.Option(None, "--plan", help="plan (inline or file), as eval"),
) -> None:
    """Check input files (architectures, problems, mappings, networks, ERT/ART tables, plans,
    sweeps, sparse_optimizations) and print what they hold.

    Files that form one run (an architecture, and a problem or network, a mapping, ERT, ART,
    plan) are read and checked together exactly as ``eval`` reads them (the same functions), so
    ``validate`` accepts what ``eval`` accepts, with the same messages. Their roles are detected
    from their top-level keys, or given with eval's own options (``--arch``, ``--network`` ...).
    A mapping given with an architecture alone has its targets checked against its levels.
    """
    from rich.tree import Tree

    files = list(files or [])
    if not files and arch is None:
        raise SpecError("nothing to check: give YAML files or --arch (see --help)")
    kinds: dict[str, list[Path]] = {}
    for f in files:
        for kind in file_kinds(f) or ["unknown"]:
            kinds.setdefault(kind, []).append(f)
    detected = _run_files(kinds)
    given = {"arch": arch, "network": network, "mapping": mapping, "ert": ert, "art": art}
    run: dict[str, str | None] = {
        k: (v if v is not None else (None if detected[k] is None else str(detected[k])))
        for k, v in given.items()
    }
    run["plan"] = (
        plan if plan is not None else (None if detected["plan"] is None else str(detected["plan"]))
    )
    run["sparse"] = None if detected["sparse"] is None else str(detected["sparse"])
    tree = Tree("validated")
    if run["arch"] is not None:
        _run_tree(run, tree)
    used = {str(p) for p in run.values() if p is not None} if run["arch"] is not None else set()
    for f in files:
        if str(f) in used:
            continue
        fk = file_kinds(f)
        if "sweep" in fk:
            _sweep_tree(f, tree)
        elif "plan" in fk:
            _plan_tree(f, tree)
        else:
            _file_tree(f, tree)
    console.print(tree)


def _run_tree(run: dict[str, str | None], tree: Tree) -> None:
    """Load one run's files as eval does (``spec.inputs.load_run``) and show them."""
    from rich.markup import escape

    from testy_model.spec.inputs import load_design, load_file_mapping, load_run

    arch = run["arch"]
    assert arch is not None
    sub = tree.add(f"[green]{escape(arch)}[/]")
    has_workload = run["network"] is not None or (
        Path(arch).is_file() and "problem" in file_kinds(arch)
    )
    if has_workload:
        r = load_run(
            arch,
            files=[run["sparse"]] if run["sparse"] is not None else [],
            network=run["network"],
            mapping=run["mapping"] or "mapper",
            ert=run["ert"],
            art=run["art"],
            plan=run["plan"],
        )
        design, net, mp = r.design, r.network, r.mapping
    else:
        design = load_design(arch, (), run["ert"], run["art"], run["sparse"])
        net = None
        mp = load_file_mapping(run["mapping"], design) if run["mapping"] is not None else None
        if run["plan"] is not None:
            from testy_model.spec.inputs import load_plan

            load_plan(run["plan"])
    arch_tree(design.arch, sub)
    if net is not None:
        _network_tree(net, sub)
    if mp is not None:
        _mapping_tree(mp, sub)
        what = "architecture and problem" if net is not None else "architecture's levels"
        tree.add(f"[green]mapping fits the {what}: {escape(str(run['mapping']))}[/]")


def _network_tree(net: Network, tree: Tree) -> None:
    from rich.markup import escape

    if len(net.layers) == 1:
        _problem_tree(net.layers[0].problem, tree)
        return
    nd = tree.add(f"network {escape(net.name)}: {len(net.layers)} layers, {net.macs:,} MACs")
    for layer in net.layers:
        nd.add(f"{escape(layer.name)}: {layer.problem.macs:,} MACs")


def _file_tree(f: Path, tree: Tree) -> None:
    """A file checked on its own (``load_any``: every part it holds)."""
    from rich.markup import escape

    from testy_model.spec.arch import Architecture
    from testy_model.spec.loaders import load_any
    from testy_model.spec.mapping import Mapping
    from testy_model.spec.workload import Network, Problem

    parts = load_any(f)
    sub = tree.add(f"[green]{escape(str(f))}[/]")
    for obj in parts.values():
        if isinstance(obj, Architecture):
            arch_tree(obj, sub)
        elif isinstance(obj, Problem):
            _problem_tree(obj, sub)
        elif isinstance(obj, Network):
            _network_tree(obj, sub)
        elif isinstance(obj, Mapping):
            _mapping_tree(obj, sub)
        else:
            sub.add(f"{type(obj).__name__} ({len(getattr(obj, 'actions', {}) or {})} entries)")


def _short_source(source: str) -> str:
    """An energy source with file paths cut to file names (``ERT /a/b/ERT.yaml`` -> ``ERT
    ERT.yaml``)."""
    return re.sub(r"\S*/", "", source)


@show_app.command("arch")
@user_errors
def show_arch(
    file: Path = typer.Argument(..., help="architecture YAML"),
    set_: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY.PATH=VALUE",
        help="override, e.g. levels.SMEM.depth=8192 (bandwidths in words/cycle, as in the file)",
    ),
    ert: str | None = typer.Option(None, "--ert", help="Accelergy ERT.yaml (pJ per action)"),
    art: str | None = typer.Option(None, "--art", help="Accelergy ART.yaml (µm² per instance)"),
) -> None:
    """Print the derived properties of an architecture (capacities, fan-out, peak MACs, where
    each level's energies come from)."""
    from rich.table import Table
    from rich.tree import Tree

    from testy_model.spec.inputs import load_design

    arch = load_design(file, set_, ert, art).arch
    table = Table(
        title=f"{arch.name} ({arch.technology}): peak {arch.peak_macs_per_cycle} MACs/cycle"
    )
    for col in (
        "level",
        "kind",
        "instances",
        "capacity",
        "fan-out",
        "read words/cycle",
        "pJ/word r/w",
        "energy source",
    ):
        table.add_column(col)
    for i, lvl in enumerate(arch.levels):
        table.add_row(
            lvl.name,
            lvl.kind,
            str(lvl.instances),
            _fmt_words(lvl.capacity_words),
            str(arch.fanout(i)),
            "-" if lvl.read_bandwidth is None else f"{lvl.read_bandwidth / lvl.datawidth:g}",
            f"{lvl.read_energy:.4g}/{lvl.write_energy:.4g}",
            _short_source(lvl.energy_source),
        )
    c = arch.compute
    table.add_row(
        c.name, "compute", str(c.instances), "-", "-", "-", f"{c.mac_energy:.4g}/MAC",
        _short_source(c.energy_source),
    )  # fmt: skip
    console.print(table)
    tree = Tree("summary")
    arch_tree(arch, tree)
    console.print(tree)
