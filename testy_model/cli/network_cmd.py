"""``testy-model show network NAME|FILE [--plot graph.png [--plan plan.yaml]]``: the layers of a
zoo network, network YAML or ONNX model with their shapes, dense MACs and parameters, its other
operators, the totals, and (``--plot``) a drawing of its dataflow graph with the GEMM layers
coloured by their series under ``--plan`` (``graph.draw.plot_network``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from testy_model.cli.app import console, parse_params, show_app, user_errors
from testy_model.cli.outputs import check_output, save_figure
from testy_model.errors import SpecError

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from testy_model.graph.zoo import ZooNetwork
    from testy_model.spec.workload import Layer, Network


def layer_shape(layer: Layer) -> str:
    """Compact shape text: ``M×N×K`` for GEMMs, ``G×M×N×K`` for batched GEMMs, and
    ``C→M RxS /stride PxQ`` (plus ``N=`` batch when > 1) for convolutions."""
    prob = layer.problem
    b = prob.bounds
    if set(prob.dimensions) >= {"C", "M", "R", "S", "P", "Q"}:
        groups = b.get("G", 1)
        text = f"{b['C'] * groups}→{b['M'] * groups} {b['R']}×{b['S']}"
        stride = prob.coefficients.get("Wstride", 1)
        if stride != 1:
            text += f"/{stride}"
        text += f" {b['P']}×{b['Q']}"
        if groups > 1:
            text += f" g={groups}"
        if b.get("N", 1) > 1:
            text += f" N={b['N']}"
        return text
    return "×".join(f"{d}={b[d]}" for d in prob.dimensions)


def _density_text(layer: Layer, tensor: str | None) -> str:
    if tensor is None:
        return "-"
    d = layer.problem.density(tensor)
    return "1" if d.kind == "dense" else f"{d.value:.2f}"


def _fmt_count(x: float) -> str:
    """Human-readable count: 4.09 G, 25.56 M, 12.3 k."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3f} {unit}"
    return f"{x:.0f}"


def _load(name: str, params: dict[str, Any]) -> tuple[Network, ZooNetwork | None]:
    """A zoo network with its parameter accounting, or a network/problem/ONNX file (operators
    it cannot price counted as traffic), read as every command reads ``--network``
    (:func:`testy_model.spec.inputs.resolve_network`)."""
    from testy_model.graph.zoo import describe_network
    from testy_model.spec.inputs import resolve_network

    if Path(name).is_file() or Path(name).suffix.lower() in (".yaml", ".yml", ".onnx"):
        return resolve_network(name, name, params=params, skip_unknown=True), None
    zoo = describe_network(name, **params)
    return zoo.network, zoo


@show_app.command("network")
@user_errors
def show_network(
    name: str = typer.Argument(
        ...,
        help="Zoo network (resnet50, bert_base, ...; an unknown name lists them all) or a "
        "network YAML or ONNX file.",
    ),
    weight_sparsity: float | None = typer.Option(
        None, "--weight-sparsity", help="Unstructured weight sparsity in [0, 1)."
    ),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        metavar="KEY=VALUE",
        help="Zoo network parameter, as in eval and search (repeatable): seq_len, batch, "
        "image_size, act_density, gelu_act_density, mode, hidden, heads, kv_heads, mlp.",
    ),
    plot: str | None = typer.Option(
        None, "--plot", help="Draw the dataflow graph to this PNG (layers coloured by series)."
    ),
    plan: str | None = typer.Option(
        None, "--plan", help="With --plot: a plan (YAML from search --out, or inline)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace the --plot file if it exists."),
) -> None:
    """Print the layers of a network: shapes, dense MACs, parameters, densities, and totals."""
    from rich.table import Table

    params = parse_params(list(param or []))
    if weight_sparsity is not None:
        params["weight_sparsity"] = weight_sparsity
    network, zoo = _load(name, params)
    table = Table(title=f"{network.name}: {len(network.layers)} GEMM layers")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("layer", "left"),
        ("kind", "left"),
        ("shape", "left"),
        ("MACs", "right"),
        ("params", "right"),
        ("w dens", "right"),
        ("a dens", "right"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for i, layer in enumerate(network.layers):
        prob = layer.problem
        params_txt = "-" if zoo is None else f"{zoo.layer_params.get(layer.name, 0):,}"
        table.add_row(
            str(i),
            layer.name,
            prob.shape_name,
            layer_shape(layer),
            f"{prob.macs:,}",
            params_txt,
            _density_text(layer, prob.weight),
            _density_text(layer, prob.activation),
        )
    console.print(table)
    console.print(f"layers (GEMM): {len(network.layers)}")
    console.print(f"total MACs: {network.macs:,} ({_fmt_count(network.macs)}MACs)")
    kinds: dict[str, int] = {}
    for op in network.operators:
        kinds[op.op] = kinds.get(op.op, 0) + 1
    if kinds:
        text = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda i: -i[1]))
        console.print(f"other operators: {len(network.operators)} ({text})", highlight=False)
    if zoo is not None:
        console.print(f"GEMM params: {zoo.gemm_params:,}")
        other = ", ".join(f"{k} {v:,}" for k, v in zoo.other_params.items())
        console.print(f"other params: {sum(zoo.other_params.values()):,} ({other})")
        console.print(f"total params: {zoo.total_params:,} ({_fmt_count(zoo.total_params)})")
    if plan is not None and plot is None:
        raise SpecError("--plan colours the drawing: give --plot FILE.png too")
    plot_path = check_output("--plot", plot, [name, plan], force) if plot is not None else None
    if plot_path is not None:
        from testy_model.graph.draw import plot_network
        from testy_model.model.plan import Plan

        fig = plot_network(network, Plan.coerce(plan) if plan is not None else None)
        save_figure(fig, plot_path)
        console.print(f"--plot: graph drawn to {plot_path}", highlight=False)
