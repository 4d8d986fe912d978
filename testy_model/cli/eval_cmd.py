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
from typing import Annotated

import typer

from testy_model.cli.app import app, console, parse_params, user_errors
from testy_model.cli.outputs import check_outputs, save_figure
from testy_model.cli.sparseloop_cmd import ArtOption, ErtOption
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.workload import Network


def resolve_network(
    network: str | None,
    arch_path: str,
    weight_sparsity: float | None,
    sparse: bool,
    params: dict | None = None,
    skip_unknown: bool = False,
) -> Network:
    """The workload (see :func:`testy_model.spec.inputs.resolve_network`, the one reading every
    command shares)."""
    from testy_model.spec.inputs import resolve_network as _resolve

    return _resolve(network, arch_path, weight_sparsity, sparse, params, skip_unknown)


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


def _dense_mappings(
    mapping: Mapping | None, arch: Architecture, net: Network, plan: str | None
) -> Mapping | dict[str, Mapping] | Callable:
    if mapping is None:
        return mapper_mappings(net, arch, plan)
    return mapping


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
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY.PATH=VALUE",
            help="architecture override (repeatable; bandwidths in words/cycle, as in the file)",
        ),
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
    from testy_model.spec.inputs import load_run

    overrides = list(set_ or [])
    outputs = check_outputs(
        {"--json": json_out, "--csv": csv_out, "--plot": plot_out},
        inputs=[arch, network, mapping, plan, ert, art],
        force=force,
    )
    # one reading of every file, shared with validate/map/search/study (spec.inputs)
    run = load_run(
        arch,
        network=network,
        mapping=mapping,
        ert=ert,
        art=art,
        plan=plan,
        overrides=overrides,
        weight_sparsity=weight_sparsity,
        params=parse_params(list(param or [])),
        measured=measured,
        fusion=fusion != "none",
        skip_unknown=skip_unknown,
    )
    net, a, sparse = run.network, run.design.arch, run.sparse
    if sparse:
        rep = _sparse_report(arch, mapping, net, ert, art, overrides)
    else:
        from testy_model.model.evaluate import evaluate

        rep = evaluate(
            net,
            a,
            _dense_mappings(run.mapping, a, net, plan),
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
    if "--json" in outputs:
        rep.to_json(outputs["--json"])
    if "--csv" in outputs:
        rep.to_frame().to_csv(outputs["--csv"], index=False)
    if "--plot" in outputs:
        save_figure(rep.plot_breakdown(), outputs["--plot"])
    for opt, path in outputs.items():
        console.print(f"{opt}: written to {path}", highlight=False)
