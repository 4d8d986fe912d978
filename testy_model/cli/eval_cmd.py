"""``testy-model eval``: cost of a network (or one Timeloop/Sparseloop problem) on an architecture.

    testy-model eval [FILE ...] [--arch A.yaml] [--mapping M.yaml | --mapping mapper]
                     [--network N.yaml | --network problem.yaml | --network ZOO_NAME]
                     [--conventions timeloop|sparseloop-2022]
                     [--weight-sparsity S] [--plan "W=2:8+1:8,A=dense" | --plan plan.yaml]
                     [--ert ERT.yaml] [--art ART.yaml] [--set KEY=VAL ...] [--measured]
                     [--json F] [--csv F] [--plot F.png]

- ``FILE ...``: Timeloop's invocation (``timeloop-model arch.yaml prob.yaml map.yaml ...``):
  any number of YAML files holding ``architecture``, ``problem``, ``mapping``,
  ``sparse_optimizations``, ``ERT``, ``ART`` blocks, merged by their top-level keys (a key in
  two files is an error naming both; ``spec.timeloop_inputs``). The named options add files to
  the same merge: ``--arch`` (an architecture file, possibly aggregated with the problem and
  ``sparse_optimizations``), ``--mapping`` (a mapping file), ``--network`` when it names a
  Timeloop ``problem:`` file, ``--ert``/``--art``.
- ``--network``: a network YAML, a Timeloop ``problem:`` file (one layer), or a zoo name
  (``resnet50``, ``bert_base``, ...; ``--weight-sparsity`` prunes its weights). Omitted: the
  problem of the input files.
- ``--mapping``: a Timeloop mapping file applied to every layer, or ``mapper`` to let the
  analytical mapper choose one per layer (a progress bar counts the layers). Omitted: the
  mapping of the input files, else the mapper.
- ``--conventions``: ``timeloop`` (default; v3.0.3) or ``sparseloop-2022`` (the MICRO 2022
  artifact: tensors in a mapping's ``stream:`` lists and first output fills counted). Never
  inferred from the files.
- Every layer is priced by the one cost core (``model.cost.price``): with the files'
  ``sparse_optimizations`` when they hold any (the sparse stage; the JSON then carries the
  actual/gated/skipped split of every access kind, ``reads_split``/``fills_split``/
  ``updates_split``, and ``compute_split``), else with the plan's terms, or with the engine's
  ``sparsity:`` support for operands whose densities it can exploit.
- ``--ert``/``--art``: Accelergy energy/area tables overriding the architecture's numbers.
- ``--plot``: per-layer stacked bars of energy by component (µJ) and latency (cycles).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from testy_model.cli.app import app, console, parse_params, user_errors
from testy_model.cli.options import ArtOption, ConventionsOption, ErtOption
from testy_model.errors import SpecError
from testy_model.spec.arch import Architecture
from testy_model.spec.conventions import Conventions
from testy_model.spec.mapping import Mapping
from testy_model.spec.sparseloop import SparseOptimizations
from testy_model.spec.workload import Layer, Network, Problem


def _problem_network(problem: Problem, path: Path) -> Network:
    """A Timeloop ``problem:`` as a one-layer network named after its file."""
    name = path.stem if problem.name in ("", "problem") else problem.name
    return Network(name=path.stem, layers=(Layer(name=name, problem=problem),))


def _has_problem_block(path: str) -> bool:
    from testy_model.spec.yaml_io import load_yaml_with_marks

    data, _ = load_yaml_with_marks(path)
    return isinstance(data, dict) and "problem" in data and "network" not in data


def resolve_network(
    network: str | None,
    files_problem: Problem | None,
    problem_file: Path | None,
    weight_sparsity: float | None,
    params: dict | None = None,
) -> Network:
    """The workload: a network file, a Timeloop problem file (its ``problem:`` block), a zoo
    name, or (``network`` omitted) the input files' ``problem:`` block; a problem is a one-layer
    network."""
    if network is not None and Path(network).is_file() and _has_problem_block(network):
        from testy_model.spec.problem_loader import load_problem

        net = _problem_network(load_problem(network), Path(network))
    elif network is None:
        if files_problem is None or problem_file is None:
            raise SpecError(
                "no --network given and none of the input files holds a 'problem:' block "
                "(expected --network FILE|ZOO_NAME or a Timeloop problem file)"
            )
        net = _problem_network(files_problem, problem_file)
    elif Path(network).is_file():
        from testy_model.spec.loaders import load_network

        net = load_network(network)
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
    from testy_model.model.terms import layer_terms

    pl = Plan.coerce(plan)
    out: dict[str, Mapping] = {}
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("mapping layers", total=len(net.layers))
        for layer in net.layers:
            dens = None
            if not sparse:
                fmts, _ = layer_terms(layer, pl.for_layer(layer.name), arch)
                dens = {t: [x.operand_term() for x in ts] for t, ts in fmts.items()}
            out[layer.name] = find_mapping(layer.problem, arch, densities=dens).mapping
            prog.advance(task)
    return out


def _file_mapping(path: str, arch: Architecture, net: Network, validate: bool = True) -> Mapping:
    from testy_model.spec.mapping_loader import load_mapping

    problem = net.layers[0].problem if len(net.layers) == 1 else None
    m = load_mapping(path, arch=arch, problem=problem)
    if problem is not None and validate:
        from testy_model.spec.validate import validate_mapping

        # a mapping file given for one layer must fit it: a user error (file:line), not a
        # priced-but-invalid result
        validate_mapping(m, arch, problem)
    return m


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


@dataclass(frozen=True)
class EvalInputs:
    """What ``eval``'s files and options describe: the architecture (ERT/ART applied), the
    workload, the mappings (a file's, or the mapper's), the Sparseloop optimizations (None when
    the files hold none) and the file holding each block."""

    arch: Architecture
    network: Network
    mappings: Mapping | dict[str, Mapping] | None
    sparse: SparseOptimizations | None
    files: dict[str, Path]


def load_eval_inputs(
    files: list[str],
    arch: str | None,
    mapping: str | None,
    network: str | None,
    ert: str | None,
    art: str | None,
    overrides: list[str],
    weight_sparsity: float | None = None,
    params: dict | None = None,
) -> EvalInputs:
    """Merge the positional files and the named options the way ``timeloop-model`` merges its
    inputs (module docstring); ``mappings`` is None when the mapper is to choose them."""
    from testy_model.spec.timeloop_inputs import load_timeloop_files

    paths: list[str] = list(files)
    if arch is not None:
        if not Path(arch).is_file():
            raise SpecError("no such file (expected an architecture YAML)", file=arch)
        paths.append(arch)
    if mapping not in (None, "mapper"):
        if not Path(mapping).is_file():
            raise SpecError("no such file (expected a mapping YAML or 'mapper')", file=mapping)
        paths.append(mapping)
    paths += [x for x in (ert, art) if x is not None]
    if not paths:
        raise SpecError(
            "no input files (expected Timeloop YAML files, e.g. arch.yaml prob.yaml map.yaml, "
            "or --arch A.yaml)"
        )
    seen: dict[Path, str] = {}
    for x in paths:
        seen.setdefault(Path(x).resolve(), x)
    ti = load_timeloop_files(list(seen.values()), overrides)
    net = resolve_network(network, ti.problem, ti.files.get("problem"), weight_sparsity, params)
    own_problem = ti.problem is not None and net.layers[0].problem is ti.problem
    maps: Mapping | dict[str, Mapping] | None = None
    # a sparse_optimizations block, even an empty one, runs the sparse stage (Timeloop then
    # prints the actual/gated/skipped splits)
    sparse = ti.sparse if "sparse_optimizations" in ti.files or not ti.sparse.is_dense else None
    if mapping != "mapper" and "mapping" in ti.files:
        if own_problem and ti.mapping is not None:
            maps = ti.mapping
        else:
            maps = _file_mapping(str(ti.files["mapping"]), ti.arch, net, validate=False)
    return EvalInputs(ti.arch, net, maps, sparse, ti.files)


def _check_file_mapping(inp: EvalInputs, plan: str | None) -> None:
    """A mapping file given for one layer priced by the term stage must fit it (capacity,
    fan-out, factors): a user error at the file's line, not a priced-but-invalid result. With
    Sparseloop optimizations the tiles' compressed sizes and the spatially skipped instances
    decide (the cost core's ``valid``, a warning)."""
    from testy_model.model.evaluate import layer_sparse_opts

    if len(inp.network.layers) != 1 or not isinstance(inp.mappings, Mapping):
        return
    layer = inp.network.layers[0]
    if layer_sparse_opts(layer, inp.arch, plan is None, inp.sparse) is None:
        from testy_model.spec.validate import validate_mapping

        validate_mapping(inp.mappings, inp.arch, layer.problem)


@app.command("eval")
@user_errors
def eval_command(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Timeloop input YAML files (architecture, problem, mapping, "
            "sparse_optimizations, ERT, ART), merged by their top-level keys",
            show_default=False,
        ),
    ] = None,
    arch: Annotated[
        str | None, typer.Option("--arch", help="architecture YAML (Timeloop style)")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option(
            "--mapping",
            help="mapping YAML for every layer, or 'mapper' (default: the input files' "
            "mapping, else the mapper)",
        ),
    ] = None,
    network: Annotated[
        str | None,
        typer.Option(
            "--network",
            help="network YAML, Timeloop problem YAML or zoo name (default: the input files' "
            "problem)",
        ),
    ] = None,
    conventions: ConventionsOption = "timeloop",
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
) -> None:
    """Evaluate latency, traffic and energy per layer and in total."""
    from testy_model.model.evaluate import evaluate

    conv = Conventions.parse(conventions)
    inp = load_eval_inputs(
        list(files or []),
        arch,
        mapping,
        network,
        ert,
        art,
        list(set_ or []),
        weight_sparsity,
        parse_params(list(param or [])),
    )
    a, net, sparse = inp.arch, inp.network, inp.sparse
    where = inp.files.get("sparse_optimizations", inp.files["architecture"])
    if sparse is not None and (plan is not None or measured):
        raise SpecError(
            "--plan/--measured do not apply to Sparseloop inputs (sparse_optimizations); "
            "their densities and optimizations come from the files",
            file=str(where),
        )
    maps: Mapping | dict[str, Mapping] | Callable
    if inp.mappings is not None:
        maps = inp.mappings
        _check_file_mapping(inp, plan)
    elif sparse is not None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            maps = mapper_mappings(net, a, sparse=True)
    else:
        maps = mapper_mappings(net, a, plan)
    rep = evaluate(
        net,
        a,
        maps,
        plan=plan,
        densities_source="measured" if measured else "expected",
        # tensor paths in a network file are already joined to its folder by the loader
        base_dir=None,
        # the dense baseline on its own best mapping when the mapper sized tiles for the plan
        dense_mappings=mapper_mappings(net, a) if inp.mappings is None and plan else None,
        sparse=sparse,
        conventions=conv,
    )
    console.print(rep.table())
    console.print(
        f"total: {rep.cycles:,.0f} cycles, {rep.seconds:.6g} s, {rep.energy_pj / 1e6:,.3f} µJ, "
        f"EDP {rep.edp_pj_s:.4g} pJ·s; speed-up {rep.speedup:.3f}×, energy ratio "
        f"{rep.energy_ratio:.3f} vs dense ({conv.value} conventions)"
    )
    if measured:
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
