"""``testy-model eval``: cost of a network (or one Timeloop problem) on an architecture.

    testy-model eval --arch A.yaml --mapping M.yaml --network N.yaml|problem.yaml
                     [--plan "W=2:8+1:8,A=dense" | --plan plan.yaml] [--set KEY=VAL ...]
                     [--measured] [--json F] [--csv F]

``--mapping`` is a Timeloop mapping file applied to every layer, or ``mapper`` to let the
analytical mapper choose one per layer. Prints the per-layer table and the totals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from testy_model.cli.app import app, console, user_errors
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Layer, Network


def _load_workload(path: str) -> Network:
    """A network file, or a Timeloop ``problem:`` file as a one-layer network."""
    from testy_model.spec.yaml_io import load_yaml_with_marks

    data, _ = load_yaml_with_marks(path)
    if isinstance(data, dict) and "problem" in data and "network" not in data:
        from testy_model.spec.problem_loader import load_problem

        prob = load_problem(path)
        name = Path(path).stem if prob.name in ("", "problem") else prob.name
        return Network(name=Path(path).stem, layers=(Layer(name=name, problem=prob),))
    from testy_model.spec.loaders import load_network

    return load_network(path)


def _mappings(mapping: str, arch: Architecture, net: Network):
    if mapping == "mapper":
        from testy_model.mapper import find_mapping

        def choose(layer: Layer, a: Architecture):
            return find_mapping(layer.problem, a).mapping

        return choose
    from testy_model.spec.mapping_loader import load_mapping

    problem = net.layers[0].problem if len(net.layers) == 1 else None
    return load_mapping(mapping, arch=arch, problem=problem)


@app.command("eval")
@user_errors
def eval_command(
    arch: Annotated[str, typer.Option("--arch", help="architecture YAML (Timeloop style)")],
    mapping: Annotated[
        str, typer.Option("--mapping", help="mapping YAML for every layer, or 'mapper'")
    ],
    network: Annotated[
        str, typer.Option("--network", help="network YAML or a Timeloop problem YAML")
    ],
    plan: Annotated[
        str | None,
        typer.Option("--plan", help="inline plan 'W=2:8+1:8,A=dense' or a plan YAML file"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="architecture override KEY.PATH=VALUE (repeatable)"),
    ] = None,
    measured: Annotated[
        bool, typer.Option("--measured", help="measure densities on the layers' real tensors")
    ] = False,
    json_out: Annotated[str | None, typer.Option("--json", help="write the JSON report")] = None,
    csv_out: Annotated[str | None, typer.Option("--csv", help="write the per-layer CSV")] = None,
) -> None:
    """Evaluate latency, traffic and energy per layer and in total."""
    from testy_model.model.evaluate import evaluate
    from testy_model.spec.arch_loader import load_arch

    a = load_arch(arch, overrides=list(set_ or []))
    net = _load_workload(network)
    maps = _mappings(mapping, a, net)
    rep = evaluate(
        net,
        a,
        maps,
        plan=plan,
        densities_source="measured" if measured else "expected",
        base_dir=Path(network).parent,
    )
    console.print(rep.table())
    console.print(
        f"total: {rep.cycles:,.0f} cycles, {rep.seconds:.6g} s, {rep.energy_pj / 1e6:,.3f} µJ, "
        f"EDP {rep.edp_pj_s:.4g} pJ·s; speed-up {rep.speedup:.3f}×, energy ratio "
        f"{rep.energy_ratio:.3f} vs dense"
    )
    invalid = [x.name for x in rep.layers if not x.valid]
    if invalid:
        console.print(
            f"[yellow]warning:[/] mapping invalid (capacity, fan-out or factors) for {invalid}"
        )
    if json_out:
        rep.to_json(json_out)
    if csv_out:
        rep.to_frame().to_csv(csv_out, index=False)
