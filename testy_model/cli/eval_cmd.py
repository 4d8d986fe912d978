"""``testy-model eval``: cost of a network (or one Timeloop/Sparseloop problem) on an architecture.

    testy-model eval --arch A.yaml [--mapping M.yaml | --mapping mapper]
                     [--network N.yaml | --network problem.yaml | --network ZOO_NAME]
                     [--weight-sparsity S] [--plan "W=2:8+1:8,A=dense" | --plan plan.yaml]
                     [--ert ERT.yaml] [--art ART.yaml] [--set KEY=VAL ...] [--measured]
                     [--json F] [--csv F] [--plot F.png]

- ``--network``: a network YAML, a Timeloop ``problem:`` file (one layer), or a zoo name
  (``resnet50``, ``bert_base``, ...; ``--weight-sparsity`` prunes its weights). Omitted: the
  problem of the architecture file (a Timeloop/Sparseloop aggregated input holds one).
- ``--mapping``: a Timeloop mapping file applied to every layer, or ``mapper`` (the default)
  to let the analytical mapper choose one per layer (a progress bar counts the layers).
- Sparseloop inputs (an architecture file holding ``sparse_optimizations``, or a mapping file
  with the artifact's ``stream:`` lists) are priced by the Sparseloop-compatible model
  (``sparseloop_study``, the artifact's counting conventions; an absent ``sparse_optimizations``
  block means dense): the same numbers as ``testy-model study`` on the same files, with the
  actual/gated/skipped split of every access kind added to the JSON (``reads_split``,
  ``fills_split``, ``updates_split``).
- ``--ert``/``--art``: Accelergy energy/area tables overriding the architecture's numbers.
- ``--plot``: per-layer stacked bars of energy by component (µJ) and latency (cycles).
- ``--network model.onnx``: an ONNX model (``spec.onnx_loader``; ``--skip-unknown`` counts
  operators it cannot price as traffic only). Every network is priced as a graph
  (``model.graph_eval``): the non-GEMM operators and the tensors between operators are summed
  with the layers; ``--fusion fit`` keeps tensors that fit in ``--fusion-level`` on chip
  (``model.fusion``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from testy_model.cli.app import app, console, parse_params, user_errors
from testy_model.cli.sparseloop_cmd import ArtOption, ErtOption
from testy_model.errors import SpecError
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Layer, Network


def _problem_file_network(path: str) -> Network:
    """A Timeloop ``problem:`` file as a one-layer network."""
    from testy_model.spec.problem_loader import load_problem

    prob = load_problem(path)
    name = Path(path).stem if prob.name in ("", "problem") else prob.name
    return Network(name=Path(path).stem, layers=(Layer(name=name, problem=prob),))


def _load_workload(path: str, skip_unknown: bool = False) -> Network:
    """A network file (YAML or ONNX), or a Timeloop ``problem:`` file as a one-layer network."""
    from testy_model.spec.yaml_io import load_yaml_with_marks

    if Path(path).suffix.lower() == ".onnx":
        from testy_model.spec.loaders import load_network

        return load_network(path, skip_unknown=skip_unknown)

    data, _ = load_yaml_with_marks(path)
    if isinstance(data, dict) and "problem" in data and "network" not in data:
        return _problem_file_network(path)
    from testy_model.spec.loaders import load_network

    return load_network(path)


def resolve_network(
    network: str | None,
    arch_path: str,
    weight_sparsity: float | None,
    sparse: bool,
    params: dict | None = None,
    skip_unknown: bool = False,
) -> Network:
    """The workload: a file, a zoo name, or (``network`` omitted) the architecture file's
    ``problem:`` block (with Sparseloop's ``fixed-structured`` densities as N:M when ``sparse``).
    """
    if network is None:
        from testy_model.spec.yaml_io import load_yaml_with_marks

        data, _ = load_yaml_with_marks(arch_path)
        if not (isinstance(data, dict) and "problem" in data):
            raise SpecError(
                "no --network given and the architecture file holds no 'problem:' block "
                "(expected --network FILE|ZOO_NAME)",
                file=arch_path,
            )
        net = _problem_file_network(arch_path)
        if sparse:
            from testy_model.model.sparseloop_study import fixed_structured_to_nm

            lay = net.layers[0]
            prob = fixed_structured_to_nm(lay.problem, Path(arch_path))
            net = Network(name=net.name, layers=(Layer(name=lay.name, problem=prob),))
    elif Path(network).is_file():
        net = _load_workload(network, skip_unknown)
        if sparse and len(net.layers) == 1:
            # a Timeloop problem file: its fixed_structured densities become N:M, as above
            from testy_model.model.sparseloop_study import fixed_structured_to_nm

            lay = net.layers[0]
            prob = fixed_structured_to_nm(lay.problem, Path(network))
            net = Network(name=net.name, layers=(Layer(name=lay.name, problem=prob),))
    else:
        from testy_model.graph.zoo import get_network, list_networks

        known = {n.replace("-", "_") for n in list_networks()}
        if network.replace("-", "_").lower() not in known:
            raise SpecError(
                f"--network {network!r}: no such file and not a zoo network (expected a file "
                f"or one of {list_networks()})"
            )
        zoo = dict(params or {})
        if weight_sparsity is not None:
            zoo["weight_sparsity"] = weight_sparsity
        return get_network(network, **zoo)
    if weight_sparsity is not None or params:
        raise SpecError(
            "--weight-sparsity and --param apply to zoo networks only (--network ZOO_NAME)"
        )
    return net


def mapper_mappings(
    net: Network, arch: Architecture, plan: str | None = None, sparse: bool = False
) -> dict[str, Mapping]:
    """One mapping per layer from the analytical mapper (``find_mapping``; repeated shapes hit
    its cache), with a rich progress bar over the layers.

    The mapper prices (and sizes tiles for) the same terms the evaluation will run: under a
    plan, each operand's term formats (kept density, metadata bits, work ratio); with
    ``sparse`` (Sparseloop optimizations), the problem's own densities.
    """
    from rich.progress import Progress

    from testy_model.mapper import find_mapping
    from testy_model.model.plan import Plan
    from testy_model.plan_search.pricing import plan_mapping

    pl = Plan.coerce(plan)
    out: dict[str, Mapping] = {}
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("mapping layers", total=len(net.layers))
        for layer in net.layers:
            if sparse:
                out[layer.name] = find_mapping(layer.problem, arch).mapping
            else:  # the mapping the search prices the layer's plan on (one rule, shared)
                out[layer.name] = plan_mapping(layer, arch, pl.for_layer(layer.name))
            prog.advance(task)
    return out


def _file_mapping(path: str, arch: Architecture, net: Network) -> Mapping:
    from testy_model.spec.mapping_loader import load_mapping

    problem = net.layers[0].problem if len(net.layers) == 1 else None
    m = load_mapping(path, arch=arch, problem=problem)
    if problem is not None:
        from testy_model.spec.validate import validate_mapping

        # a mapping file given for one layer must fit it: a user error (file:line), not a
        # priced-but-invalid result
        validate_mapping(m, arch, problem)
    return m


def _sparse_report(
    arch_path: str,
    mapping: str,
    net: Network,
    ert: str | None,
    art: str | None,
    overrides: list[str],
):
    """Price ``net`` with the Sparseloop-compatible model (the arch file's
    ``sparse_optimizations``)."""
    from testy_model.model.sparseloop_study import evaluate_design, load_case_files
    from testy_model.spec.arch_loader import load_arch

    maps: dict[str, Mapping] | None = None
    if mapping == "mapper":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            maps = mapper_mappings(net, load_arch(arch_path, overrides=overrides), sparse=True)
    cases = []
    for layer in net.layers:
        case = load_case_files(
            arch_path,
            None if maps is not None else mapping,
            ert_path=ert,
            art_path=art,
            overrides=overrides,
            problem=layer.problem,
            mapping=maps[layer.name] if maps is not None else None,
        )
        cases.append((layer.name, case))
    return evaluate_design(cases, network=net.name)


def unrunnable_terms(net: Network, arch: Architecture, plan: str | None) -> list[str]:
    """``"layer operand series"`` for every plan term that fits no hardware pattern of ``arch``
    (weights on ``sparsity.A``, activations on ``sparsity.B``): such terms run at dense speed."""
    from testy_model.model.hierarchical import hardware_for
    from testy_model.model.plan import Plan

    pl = Plan.coerce(plan)
    out = []
    for layer in net.layers:
        lp = pl.for_layer(layer.name)
        for role, series, support in (
            ("weights", lp.weights, arch.sparsity.A),
            ("activations", lp.activations, arch.sparsity.B),
        ):
            bad = [str(t) for t in series.terms if hardware_for(t, support) is None]
            if bad and not all(t.is_dense for t in series.terms):
                out.append(f"{layer.name} {role} {'+'.join(bad)}")
    return out


def _dense_mappings(
    mapping: str, arch: Architecture, net: Network, plan: str | None
) -> Mapping | dict[str, Mapping] | Callable:
    if mapping == "mapper":
        return mapper_mappings(net, arch, plan)
    return _file_mapping(mapping, arch, net)


@app.command("eval")
@user_errors
def eval_command(
    arch: Annotated[str, typer.Option("--arch", help="architecture YAML (Timeloop style)")],
    mapping: Annotated[
        str, typer.Option("--mapping", help="mapping YAML for every layer, or 'mapper'")
    ] = "mapper",
    network: Annotated[
        str | None,
        typer.Option(
            "--network",
            help="network YAML, Timeloop problem YAML or zoo name (default: the arch file's "
            "problem)",
        ),
    ] = None,
    weight_sparsity: Annotated[
        float | None,
        typer.Option("--weight-sparsity", help="zoo networks: fraction of weights pruned"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="zoo network parameter KEY=VALUE, e.g. seq_len=384"),
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option("--plan", help="inline plan 'W=2:8+1:8,A=dense' or a plan YAML file"),
    ] = None,
    ert: ErtOption = None,
    art: ArtOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="architecture override KEY.PATH=VALUE (repeatable)"),
    ] = None,
    measured: Annotated[
        bool,
        typer.Option(
            "--measured",
            help="measure densities on the layers' real tensors (closed form where a "
            "layer has none)",
        ),
    ] = False,
    json_out: Annotated[str | None, typer.Option("--json", help="write the JSON report")] = None,
    csv_out: Annotated[str | None, typer.Option("--csv", help="write the per-layer CSV")] = None,
    plot_out: Annotated[
        str | None, typer.Option("--plot", help="write per-layer latency/energy bars (PNG)")
    ] = None,
    fusion: Annotated[
        str,
        typer.Option(
            "--fusion",
            help="none: tensors between operators go through DRAM; fit: one that fits stays in "
            "the on-chip --fusion-level",
        ),
    ] = "none",
    fusion_level: Annotated[
        str | None,
        typer.Option(
            "--fusion-level", help="on-chip level for --fusion fit (default: DRAM's child)"
        ),
    ] = None,
    skip_unknown: Annotated[
        bool,
        typer.Option(
            "--skip-unknown", help="ONNX: count operators that cannot be priced as traffic only"
        ),
    ] = False,
) -> None:
    """Evaluate latency, traffic and energy per layer and in total."""
    from testy_model.model.sparseloop_study import has_sparse_optimizations, load_stream

    overrides = list(set_ or [])
    if not Path(arch).is_file():
        raise SpecError("no such file (expected an architecture YAML)", file=arch)
    sparse = has_sparse_optimizations(arch) or (
        mapping != "mapper" and Path(mapping).is_file() and bool(load_stream(mapping))
    )
    params = parse_params(list(param or []))
    net = resolve_network(network, arch, weight_sparsity, sparse, params, skip_unknown)
    if sparse:
        if plan is not None or measured or fusion != "none":
            raise SpecError(
                "--plan/--measured/--fusion do not apply to Sparseloop inputs "
                "(sparse_optimizations / stream: mapping); their densities and optimizations come "
                "from the files",
                file=arch,
            )
        rep = _sparse_report(arch, mapping, net, ert, art, overrides)
    else:
        from testy_model.model.evaluate import evaluate
        from testy_model.spec.accelergy import apply_art, apply_ert, load_art, load_ert
        from testy_model.spec.arch_loader import load_arch

        a = load_arch(arch, overrides=overrides)
        if ert is not None:
            a = apply_ert(a, load_ert(ert))
        if art is not None:
            a = apply_art(a, load_art(art))
        rep = evaluate(
            net,
            a,
            _dense_mappings(mapping, a, net, plan),
            plan=plan,
            densities_source="measured" if measured else "expected",
            # tensor paths in a network file are already joined to its folder by the loader
            base_dir=None,
            # the dense baseline on its own best mapping when the mapper sized tiles for the plan
            dense_mappings=mapper_mappings(net, a) if mapping == "mapper" and plan else None,
            fusion=fusion,
            fusion_level=fusion_level,
        )
    console.print(rep.table())
    console.print(
        f"total: {rep.cycles:,.0f} cycles, {rep.seconds:.6g} s, {rep.energy_pj / 1e6:,.3f} µJ, "
        f"EDP {rep.edp_pj_s:.4g} pJ·s; speed-up {rep.speedup:.3f}×, energy ratio "
        f"{rep.energy_ratio:.3f} vs dense"
    )
    if not sparse:
        for line in rep.graph_summary():
            console.print(line, highlight=False)
    if measured and not sparse:
        src = {x.name: x.density_source for x in rep.layers}
        closed = [n for n, v in src.items() if v != "measured"]
        console.print(
            f"densities: measured on real tensors for {len(src) - len(closed)} layer(s); "
            f"closed form (expected) where no tensor is attached: {closed or 'none'}"
        )
    slow = unrunnable_terms(net, a, plan) if plan else []
    if slow:
        shown = ", ".join(slow[:6]) + (f" (+{len(slow) - 6} more)" if len(slow) > 6 else "")
        console.print(
            f"note: {len(slow)} plan term(s) fit no hardware pattern of {a.name} and run at "
            f"dense speed: {shown}",
            highlight=False,
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
    if plot_out:
        fig = rep.plot_breakdown()
        fig.savefig(plot_out, dpi=120)
