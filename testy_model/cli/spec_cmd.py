"""``testy-model validate FILE...`` and ``testy-model show arch FILE``."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from testy_model.cli.app import app, console, show_app, user_errors
from testy_model.spec.arch import Architecture
from testy_model.spec.loaders import load_any
from testy_model.spec.mapping import Mapping
from testy_model.spec.validate import validate_mapping
from testy_model.spec.workload import Network, Problem
from testy_model.spec.yaml_io import SpecWarning


def _is_plan_file(path: str | Path) -> bool:
    """True for a TASD plan file (top-level ``plan:``, as ``search --out`` writes)."""
    from testy_model.spec.yaml_io import load_yaml_with_marks

    try:
        data, _ = load_yaml_with_marks(path)
    except Exception:  # load_any reports the file's real problem
        return False
    return isinstance(data, dict) and set(data) == {"plan"}


def _plan_tree(path: str | Path, tree: Tree) -> None:
    """Validate a plan file (series parse; errors name file, line, key) and list its series."""
    from testy_model.model.plan import Plan

    plan = Plan.load(path)
    node = tree.add(f"[green]{escape(str(path))}[/]").add(f"plan: {escape(str(plan))}")
    node.add(f"default: W={plan.default.weights}, A={plan.default.activations}")
    for name, lp in plan.layers.items():
        node.add(f"{escape(name)}: W={lp.weights}, A={lp.activations}")


def _fmt_words(x: float) -> str:
    return "unbounded" if x == float("inf") else f"{x:,.0f} words"


def arch_tree(arch: Architecture, tree: Tree) -> None:
    """Add an architecture's levels, fan-outs, compute and patterns to ``tree``."""
    node = tree.add(f"architecture [bold]{arch.name}[/] ({arch.technology})")
    for i, lvl in enumerate(arch.levels):
        bw = "" if lvl.read_bandwidth is None else f", read {lvl.read_bandwidth:g} b/cycle"
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
        extra = f" ({d.kind} {d.value:g})" if d.kind != "dense" else ""
        node.add(f"{t}: {p.full_size(t):,} words{extra}")


def _mapping_tree(m: Mapping, tree: Tree) -> None:
    node = tree.add("mapping")
    for lm in m.levels:
        t = " ".join(f"{d}{v}" for d, v in lm.temporal.items() if v != 1) or "-"
        s = " ".join(f"{d}{v}" for d, v in lm.spatial.items() if v != 1)
        node.add(f"{lm.target}: temporal {t}" + (f"; spatial {s}" if s else ""))


@app.command("validate")
@user_errors
def validate(files: list[Path] = typer.Argument(..., help="YAML files to check")) -> None:
    """Check architecture, problem, mapping and network files and print what they hold.

    When the files given include an architecture, a problem and a mapping, the mapping is also
    checked against them (factors, capacities, fan-out, bypass).
    """
    tree = Tree("validated")
    found: dict[str, object] = {}
    n_warn = 0
    for f in files:
        if _is_plan_file(f):
            _plan_tree(f, tree)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SpecWarning)
            parts = load_any(f)
        n_warn += len(caught)
        sub = tree.add(f"[green]{f}[/]" + (f" ({len(caught)} warnings)" if caught else ""))
        for kind, obj in parts.items():
            found[kind] = obj
            if isinstance(obj, Architecture):
                arch_tree(obj, sub)
            elif isinstance(obj, Problem):
                _problem_tree(obj, sub)
            elif isinstance(obj, Network):
                nd = sub.add(f"network {obj.name}: {len(obj.layers)} layers, {obj.macs:,} MACs")
                for layer in obj.layers:
                    nd.add(f"{layer.name}: {layer.problem.macs:,} MACs")
        if "mapping" in parts:
            m = parts["mapping"]
            assert isinstance(m, Mapping)
            _mapping_tree(m, sub)
    arch, prob, mp = found.get("arch"), found.get("problem"), found.get("mapping")
    if isinstance(arch, Architecture) and isinstance(prob, Problem) and isinstance(mp, Mapping):
        if mp.source is not None:
            from testy_model.spec.mapping_loader import load_mapping

            mp = load_mapping(mp.source, arch, prob)
        validate_mapping(mp, arch, prob)
        tree.add("[green]mapping fits the architecture and problem[/]")
    console.print(tree)
    if n_warn:
        console.print(f"{n_warn} warnings (keys the model ignores); run with -W to see them")


@show_app.command("arch")
@user_errors
def show_arch(
    file: Path = typer.Argument(..., help="architecture YAML"),
    set_: list[str] = typer.Option(
        [], "--set", help="override KEY.PATH=VALUE, e.g. levels.SMEM.depth=8192"
    ),
) -> None:
    """Print the derived properties of an architecture (capacities, fan-out, peak MACs)."""
    from testy_model.spec.arch_loader import load_arch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        arch = load_arch(file, overrides=set_ or None)
    table = Table(
        title=f"{arch.name} ({arch.technology}): peak {arch.peak_macs_per_cycle} MACs/cycle"
    )
    for col in (
        "level",
        "kind",
        "instances",
        "capacity",
        "fan-out",
        "read b/cyc",
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
            "-" if lvl.read_bandwidth is None else f"{lvl.read_bandwidth:g}",
            f"{lvl.read_energy:.4g}/{lvl.write_energy:.4g}",
        )
    console.print(table)
    tree = Tree("summary")
    arch_tree(arch, tree)
    console.print(tree)
