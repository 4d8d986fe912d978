"""One reading of a run's input files, shared by every command.

``eval``, ``map``, ``search``, ``study``, ``sweep`` and ``validate`` load and check their files
through these functions, in the same order, so a file one command accepts every other accepts
(and prices the same), and a file one rejects every other rejects with the same message:

0. Timeloop's invocation (:func:`load_run` given ``files``): any number of YAML files holding
   ``architecture``, ``problem``, ``mapping``, ``sparse_optimizations``, ``ERT``, ``ART``
   blocks, merged with the named options' files by their top-level keys, as ``timeloop-model``
   merges them (a key in two files is an error naming both;
   :func:`~testy_model.spec.timeloop_inputs.block_files`);
1. the architecture (:func:`load_design`): ``load_arch`` with the ``--set`` overrides, the
   Sparseloop ``sparse_optimizations`` (of the architecture file, or of the file holding that
   block; targets must be levels or the compute unit), then the Accelergy ERT/ART applied
   (:func:`~testy_model.spec.accelergy.apply_ert`);
2. the workload (:func:`resolve_network`): a network file, a Timeloop problem file (one layer),
   a zoo name, or the input files' own ``problem:`` block;
3. a mapping file (:func:`load_file_mapping`; by default the input files' ``mapping:`` block,
   else the mapper): loaded against the architecture, and for a one-layer workload checked
   against its problem with ``validate_mapping`` (factors, fan-out with the design's spatial
   skipping, capacities, keep/bypass);
4. a plan (:func:`load_plan`): inline or a file; every layer it names must be a layer of the
   workload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testy_model.errors import SpecError
from testy_model.spec.accelergy import (
    AreaTable,
    EnergyTable,
    apply_art,
    apply_ert,
    load_art,
    load_ert,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.located import did_you_mean
from testy_model.spec.mapping import Mapping
from testy_model.spec.sparseloop import (
    SparseOptimizations,
    load_sparse_optimizations,
    nodes_have_sparse_optimizations,
    norm_key,
)
from testy_model.spec.workload import Layer, Network
from testy_model.spec.yaml_io import load_yaml_with_marks

#: The value of ``--mapping`` that asks the analytical mapper for one mapping per layer.
MAPPER = "mapper"


@dataclass(frozen=True)
class Design:
    """An architecture as a run uses it: overrides and ERT/ART applied.

    Attributes:
        arch: the architecture (energies from the ERT, areas from the ART when given).
        sparse_opts: the file's Sparseloop ``sparse_optimizations`` (``None`` when it has none).
        ert, art: the Accelergy tables given (``None`` when not).
    """

    arch: Architecture
    sparse_opts: SparseOptimizations | None = None
    ert: EnergyTable | None = None
    art: AreaTable | None = None


def file_has_sparse_optimizations(path: str | Path) -> bool:
    """Whether a YAML file holds a top-level ``sparse_optimizations`` block or (Timeloop v0.4)
    an architecture node with its own."""
    data, _ = load_yaml_with_marks(path)
    if not isinstance(data, dict):
        return False
    if any(norm_key(k) == "sparse_optimizations" for k in data):
        return True
    archi = data.get("architecture")
    return nodes_have_sparse_optimizations(archi.get("nodes") if isinstance(archi, dict) else None)


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path`; :class:`SpecError` naming it when it is not a file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"no such file (expected {what})", file=str(p))
    return p


def load_design(
    arch_path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    ert: str | Path | None = None,
    art: str | Path | None = None,
    sparse_path: str | Path | None = None,
) -> Design:
    """Load an architecture as every command does (module docstring, step 1). ``sparse_path``:
    the file holding the ``sparse_optimizations`` block when it is not the architecture file
    (Timeloop's ``sparse_opt.yaml``).

    Raises:
        SpecError: any problem with the architecture, the overrides or the tables.
    """
    from testy_model.spec.arch_loader import load_arch

    require_file(arch_path, "an architecture YAML")
    arch = load_arch(arch_path, overrides=list(overrides) or None)
    opts = None
    sp = arch_path if sparse_path is None else sparse_path
    if file_has_sparse_optimizations(sp):
        opts = load_sparse_optimizations(sp)
        known = {*arch.level_names, arch.compute.name}
        for t in opts.targets:
            if t.name not in known:
                raise SpecError(
                    f"sparse_optimizations target {t.name!r} is not a level of the architecture"
                    f"{did_you_mean(t.name, known)} (expected one of {sorted(known)})",
                    file=str(sp),
                )
    ert_t = load_ert(require_file(ert, "an Accelergy ERT")) if ert is not None else None
    art_t = load_art(require_file(art, "an Accelergy ART")) if art is not None else None
    if ert_t is not None:
        arch = apply_ert(arch, ert_t)
    if art_t is not None:
        arch = apply_art(arch, art_t)
    return Design(arch=arch, sparse_opts=opts, ert=ert_t, art=art_t)


def _problem_file_network(path: str | Path, sparse: bool) -> Network:
    """A Timeloop ``problem:`` file (or an aggregated input's problem) as a one-layer network."""
    from testy_model.spec.problem_loader import load_problem

    prob = load_problem(path)
    stem = Path(path).stem
    name = stem if prob.name in ("", "problem") else prob.name
    del sparse  # fixed_structured densities already read one way (problem_loader)
    return Network(name=stem, layers=(Layer(name=name, problem=prob),))


def resolve_network(
    network: str | None,
    arch_path: str | Path,
    weight_sparsity: float | None = None,
    sparse: bool = False,
    params: dict[str, Any] | None = None,
    skip_unknown: bool = False,
) -> Network:
    """The workload of a run (module docstring, step 2): a network file, an ONNX model
    (``skip_unknown``: operators it cannot price count as traffic only), a Timeloop problem file,
    a zoo name (``weight_sparsity`` and ``params`` apply to zoo networks only), or, with
    ``network`` omitted, the architecture file's own ``problem:`` block.

    Raises:
        SpecError: a missing file or zoo name (with the names that exist), or a bad file.
    """
    if network is None:
        data, _ = load_yaml_with_marks(arch_path)
        if not (isinstance(data, dict) and "problem" in data):
            raise SpecError(
                "no --network given and the architecture file holds no 'problem:' block "
                "(expected --network FILE|ZOO_NAME)",
                file=str(arch_path),
            )
        net = _problem_file_network(arch_path, sparse)
    elif Path(network).is_file() and Path(network).suffix.lower() == ".onnx":
        from testy_model.spec.loaders import load_network

        net = load_network(network, skip_unknown=skip_unknown)
    elif Path(network).is_file():
        data, _ = load_yaml_with_marks(network)
        if isinstance(data, dict) and "problem" in data and "network" not in data:
            net = _problem_file_network(network, sparse)
        else:
            from testy_model.spec.loaders import load_network

            net = load_network(network)
    else:
        from testy_model.graph.zoo import get_network, list_networks

        known = list_networks()
        if network.replace("-", "_").lower() not in {n.replace("-", "_") for n in known}:
            hint = "" if network.endswith((".yaml", ".yml")) else did_you_mean(network, known)
            raise SpecError(
                f"--network {network!r}: no such file and not a zoo network{hint} (expected a "
                f"file or one of {', '.join(known)})"
            )
        zoo = dict(params or {})
        if weight_sparsity is not None:
            zoo["weight_sparsity"] = weight_sparsity
        return get_network(network, **zoo)
    given = (["--weight-sparsity"] if weight_sparsity is not None else []) + [
        f"--param {k}" for k in sorted(params or {})
    ]
    if given:
        raise SpecError(
            f"{', '.join(given)}: only for zoo networks "
            "(--network ZOO_NAME; a network file gives its densities per layer)",
            file=str(network if network is not None else arch_path),
        )
    return net


def check_sparse_tensors(opts: SparseOptimizations, network: Network, file: str) -> None:
    """Every data space a ``sparse_optimizations`` block names (formats, action targets and
    conditions) must be a tensor of every layer it prices.

    Raises:
        SpecError: naming the file, the target level and the tensors the layer has.
    """
    for layer in network.layers:
        tensors = layer.problem.tensor_names
        for t in opts.targets:
            named = [f.name for f in t.formats]
            for act in t.actions:
                named += [act.target, *act.condition_on]
            for ds in named:
                if ds not in tensors:
                    raise SpecError(
                        f"sparse_optimizations target {t.name!r} names data space {ds!r}, which "
                        f"layer {layer.name!r} does not have{did_you_mean(ds, tensors)} (its "
                        f"tensors: {', '.join(tensors)})",
                        file=file,
                        key_path="sparse_optimizations",
                    )


def load_file_mapping(path: str | Path, design: Design, network: Network | None = None) -> Mapping:
    """A mapping file loaded against the architecture (targets checked against its levels) and,
    for a one-layer workload, validated against that layer's problem with the design's spatial
    skipping (module docstring, step 3).

    Raises:
        SpecError / MappingError: naming the mapping file, line and key.
    """
    from testy_model.spec.mapping_loader import load_mapping
    from testy_model.spec.validate import validate_mapping

    require_file(path, f"a mapping YAML or '{MAPPER}'")
    problem = (
        network.layers[0].problem if network is not None and len(network.layers) == 1 else None
    )
    m = load_mapping(path, arch=design.arch, problem=problem)
    if problem is not None:
        validate_mapping(m, design.arch, problem, design.sparse_opts)
    return m


def check_mapping_option(mapping: str) -> None:
    """``--mapping`` is ``mapper`` or an existing file; otherwise a one-line error with a
    suggestion (``mapperr`` -> ``mapper``)."""
    if mapping == MAPPER or Path(mapping).is_file():
        return
    hint = did_you_mean(mapping, [MAPPER])
    raise SpecError(
        f"--mapping {mapping!r}: no such file{hint} (expected a mapping YAML or '{MAPPER}')",
        file=None,
    )


def load_plan(plan: str | None, network: Network | None = None) -> Any:
    """A plan (inline ``W=2:8+1:8,A=dense`` or a plan file) checked against the workload's layer
    names (module docstring, step 4); ``None`` when no plan is given.

    Raises:
        SpecError: a bad series, an unknown key or a layer the workload does not have.
    """
    if plan is None:
        return None
    from testy_model.model.plan import Plan

    pl = Plan.coerce(plan)
    if network is not None:
        pl.check_layers([layer.name for layer in network.layers], source=plan)
    return pl


@dataclass(frozen=True)
class RunInputs:
    """Everything ``eval`` (and ``validate`` given the same files) reads, checked.

    Attributes:
        design: the architecture with overrides, tables and Sparseloop optimizations.
        network: the workload.
        mapping: the mapping file's mapping (``None`` for the mapper).
        plan: the plan (``None`` when none was given).
        files: top-level block (``architecture``, ``problem``, ``mapping``,
            ``sparse_optimizations``, ``ert``, ``art``) -> the file holding it.
    """

    design: Design
    network: Network
    mapping: Mapping | None
    plan: Any
    files: dict[str, Path]

    @property
    def sparse(self) -> SparseOptimizations | None:
        """The Sparseloop optimizations the files give (the cost core's sparse stage), or
        ``None``. A ``sparse_optimizations`` block, even an empty one, selects the sparse stage
        (Timeloop then reports the actual/gated/skipped splits)."""
        return self.design.sparse_opts


def run_files(
    files: list[str | Path] | tuple[str | Path, ...],
    arch_path: str | Path | None,
    mapping: str | None,
    ert: str | Path | None,
    art: str | Path | None,
) -> dict[str, Path]:
    """Which file holds each top-level block of a run (module docstring, step 0): the
    positional ``files`` and the named ``--arch``/``--ert``/``--art`` files merged by their
    top-level keys (a ``--mapping`` file is read as given: it overrides the files' block).

    Raises:
        SpecError: a missing file, a block in two files, no architecture.
    """
    from testy_model.spec.timeloop_inputs import block_files

    if arch_path is not None:
        require_file(arch_path, "an architecture YAML")
    if mapping is not None:
        check_mapping_option(mapping)
    for x, what in ((ert, "an Accelergy ERT"), (art, "an Accelergy ART")):
        if x is not None:
            require_file(x, what)
    paths = [Path(f) for f in files]
    paths += [Path(x) for x in (arch_path, ert, art) if x is not None]
    if not paths:
        raise SpecError(
            "no input files (expected Timeloop YAML files, e.g. arch.yaml prob.yaml map.yaml, "
            "or --arch A.yaml)"
        )
    seen: dict[Path, Path] = {}
    for x in paths:
        seen.setdefault(x.resolve(), x)
    return block_files(list(seen.values()))


def load_run(
    arch_path: str | Path | None = None,
    *,
    files: list[str | Path] | tuple[str | Path, ...] = (),
    network: str | None = None,
    mapping: str | None = None,
    ert: str | Path | None = None,
    art: str | Path | None = None,
    plan: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    weight_sparsity: float | None = None,
    params: dict[str, Any] | None = None,
    measured: bool = False,
    fusion: bool = False,
    skip_unknown: bool = False,
) -> RunInputs:
    """Load and check every input of an evaluation, in the order of the module docstring.

    ``mapping``: a mapping file, ``mapper``, or ``None`` (the input files' ``mapping:`` block,
    else the mapper).

    Raises:
        SpecError: the first problem found, naming its file, line and key.
    """
    where = run_files(files, arch_path, mapping, ert, art)
    arch_file = where["architecture"]
    if "sparse_optimizations" in where and (plan is not None or measured or fusion):
        raise SpecError(
            "--plan/--measured/--fusion do not apply to Sparseloop inputs (sparse_optimizations);"
            " their densities and optimizations come from the files",
            file=str(where["sparse_optimizations"]),
        )
    design = load_design(
        arch_file, overrides, where.get("ert"), where.get("art"), where.get("sparse_optimizations")
    )
    net = resolve_network(
        network, where.get("problem", arch_file), weight_sparsity, False, params, skip_unknown
    )
    if design.sparse_opts is not None:
        check_sparse_tensors(design.sparse_opts, net, str(where.get("sparse_optimizations")))
    mp_path = where.get("mapping") if mapping is None else None
    if mapping is not None and mapping != MAPPER:
        mp_path = Path(mapping)
    mp = load_file_mapping(mp_path, design, net) if mp_path is not None else None
    pl = load_plan(plan, net)
    return RunInputs(design=design, network=net, mapping=mp, plan=pl, files=where)
