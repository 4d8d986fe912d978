"""``testy-model eval``: cost of a network (or one Timeloop/Sparseloop problem) on an architecture.

    testy-model eval [FILE ...] [--arch A.yaml] [--mapping M.yaml | --mapping mapper]
                     [--network N.yaml | --network problem.yaml | --network ZOO_NAME]
                     [--conventions timeloop|sparseloop-2022]
                     [--weight-sparsity S] [--plan "W=2:8+1:8,A=dense" | --plan plan.yaml]
                     [--ert ERT.yaml] [--art ART.yaml] [--set KEY=VAL ...] [--measured]
                     [--fusion none|fit] [--fusion-level L] [--skip-unknown] [--force]
                     [--json F] [--csv F] [--plot F.png]

- ``FILE ...``: Timeloop's invocation (``timeloop-model arch.yaml prob.yaml map.yaml ...``):
  any number of YAML files holding ``architecture``, ``problem``, ``mapping``,
  ``sparse_optimizations``, ``ERT``, ``ART`` blocks, merged by their top-level keys (a key in
  two files is an error naming both). The named options ``--arch`` (an architecture file,
  possibly aggregated with the problem and ``sparse_optimizations``) and ``--ert``/``--art``
  add files to the same merge; ``--mapping`` and ``--network`` override the files' blocks.
  Every file is read once, as ``validate`` reads it (``spec.inputs.load_run``).
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
- ``--network model.onnx``: an ONNX model (``spec.onnx_loader``; ``--skip-unknown`` counts
  operators it cannot price as traffic only). Every network is priced as a graph
  (``model.graph_eval``): the non-GEMM operators and the tensors between operators are summed
  with the layers; ``--fusion fit`` keeps tensors that fit in ``--fusion-level`` on chip
  (``model.fusion``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from testy_model.cli.app import app, console, parse_params, user_errors
from testy_model.cli.options import ArtOption, ConventionsOption, ErtOption, SetOption
from testy_model.cli.outputs import check_outputs, save_figure
from testy_model.spec.conventions import Conventions

if TYPE_CHECKING:
    from testy_model.report import Report
    from testy_model.spec.arch import Architecture
    from testy_model.spec.mapping import Mapping
    from testy_model.spec.workload import Network

if TYPE_CHECKING:
    from testy_model.spec.sparseloop import SparseOptimizations


def mapper_mappings(
    net: Network,
    arch: Architecture,
    plan: str | None = None,
    sparse: SparseOptimizations | None = None,
    conventions: Conventions | str | None = None,
    *,
    dense: bool = False,
) -> dict[str, Mapping]:
    """One mapping per layer from the analytical mapper (``find_mapping``; repeated shapes hit
    its cache), with a rich progress bar over the layers.

    The mapper prices (and sizes tiles for) what the evaluation will run: under a plan, each
    operand's term formats (kept density, metadata bits, work ratio; the search's class
    mapping); without one, the layer exactly as ``evaluate`` prices it (the problem's own
    densities, ``sparse`` Sparseloop optimizations or the engine's sparsity support, under
    ``conventions``). ``dense``: the dense baseline's mappings (dense operands).
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
            if plan is None and not dense:  # priced as evaluate prices the layer
                out[layer.name] = find_mapping(
                    layer.problem, arch, sparse=sparse, conventions=conventions
                ).mapping
            else:  # the mapping the search prices the layer's plan on (one rule, shared)
                out[layer.name] = plan_mapping(
                    layer, arch, pl.for_layer(layer.name), conventions=conventions
                )
            prog.advance(task)
    return out


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


def ragged_terms(net: Network, plan: str | None) -> list[str]:
    """``"layer operand L=…, M=…"`` for every plan term whose block size M does not divide the
    length L of the operand's reduction axis (the product of the reduction dimensions indexing
    it: K of a GEMM, C·R·S of a convolution): the last block of each row is partial."""
    from testy_model.model.plan import Plan
    from testy_model.model.terms import operand_roles

    pl = Plan.coerce(plan)
    out = []
    for layer in net.layers:
        prob = layer.problem
        lp = pl.for_layer(layer.name)
        weight, act = operand_roles(prob)
        for role, tensor, series in (("weights", weight, lp.weights), ("activations", act,
                                                                      lp.activations)):  # fmt: skip
            dims = [d for d in prob.dimensions if d in prob.reduction_dims()]
            length = 1
            for d in dims:
                if d in prob.relevant(tensor):
                    length *= prob.bounds[d]
            ms = sorted({t.m for t in series.terms if length % t.m})
            if ms:
                out.append(f"{layer.name} {role} L={length}, M={'/'.join(map(str, ms))}")
    return out


def _notes(rep: Report, net: Network, a: Architecture, plan: str | None, measured: bool) -> None:
    """The lines printed after the totals: measured densities, plan terms that fit no hardware
    pattern or end rows in partial blocks, invalid mappings."""
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
    ragged = ragged_terms(net, plan) if plan else []
    if ragged:
        shown = ", ".join(ragged[:6]) + (f" (+{len(ragged) - 6} more)" if len(ragged) > 6 else "")
        console.print(
            f"note: {len(ragged)} plan operand(s) have a reduction axis that is not a multiple "
            f"of the pattern's M, so each row ends in a partial block (decompositions pad it "
            f"with zeros, the closed form prorates per value): {shown}",
            highlight=False,
        )
    invalid = [x.name for x in rep.layers if not x.valid]
    if invalid:
        console.print(
            f"[yellow]warning:[/] mapping invalid (capacity, fan-out or factors) for {invalid}"
        )


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
            help="network YAML, ONNX model, Timeloop problem YAML or zoo name (default: the "
            "input files' problem)",
        ),
    ] = None,
    conventions: ConventionsOption = "timeloop",
    weight_sparsity: Annotated[
        float | None,
        typer.Option("--weight-sparsity", help="zoo networks: fraction of weights pruned"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", metavar="KEY=VALUE", help="zoo network parameter, e.g. seq_len=384"
        ),
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option("--plan", help="inline plan 'W=2:8+1:8,A=dense' or a plan YAML file"),
    ] = None,
    ert: ErtOption = None,
    art: ArtOption = None,
    set_: SetOption = None,
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
    force: Annotated[
        bool, typer.Option("--force", help="replace output files that already exist")
    ] = False,
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
    from testy_model.model.evaluate import evaluate
    from testy_model.spec.inputs import load_run

    conv = Conventions.parse(conventions)
    outputs = check_outputs(
        {"--json": json_out, "--csv": csv_out, "--plot": plot_out},
        inputs=[*(files or []), arch, network, mapping, plan, ert, art],
        force=force,
    )
    # one reading of every file, shared with validate/map/search/study (spec.inputs)
    run = load_run(
        arch,
        files=list(files or []),
        network=network,
        mapping=mapping,
        ert=ert,
        art=art,
        plan=plan,
        overrides=list(set_ or []),
        weight_sparsity=weight_sparsity,
        params=parse_params(list(param or [])),
        measured=measured,
        fusion=fusion != "none",
        skip_unknown=skip_unknown,
    )
    net, a, sparse = run.network, run.design.arch, run.sparse
    maps: Mapping | dict[str, Mapping] | Callable
    if run.mapping is not None:
        maps = run.mapping
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            maps = mapper_mappings(net, a, plan, sparse=sparse, conventions=conv)
    dense_maps = mapper_mappings(net, a, dense=True) if run.mapping is None and plan else None
    rep = evaluate(
        net,
        a,
        maps,
        plan=plan,
        densities_source="measured" if measured else "expected",
        # tensor paths in a network file are already joined to its folder by the loader
        base_dir=None,
        # the dense baseline on its own best mapping when the mapper sized tiles for the plan
        dense_mappings=dense_maps,
        fusion=fusion,
        fusion_level=fusion_level,
        sparse=sparse,
        conventions=conv,
    )
    console.print(rep.table())
    console.print(
        f"total: {rep.cycles:,.0f} cycles, {rep.seconds:.6g} s, {rep.energy_pj / 1e6:,.3f} µJ, "
        f"EDP {rep.edp_pj_s:.4g} pJ·s; speed-up {rep.speedup:.3f}×, energy ratio "
        f"{rep.energy_ratio:.3f} vs dense ({conv.value} conventions)"
    )
    for line in rep.graph_summary():
        console.print(line, highlight=False)
    _notes(rep, net, a, plan, measured)
    if "--json" in outputs:
        rep.to_json(outputs["--json"])
    if "--csv" in outputs:
        rep.to_frame().to_csv(outputs["--csv"], index=False)
    if "--plot" in outputs:
        save_figure(rep.plot_breakdown(), outputs["--plot"])
    for opt, path in outputs.items():
        console.print(f"{opt}: written to {path}", highlight=False)
