"""Networks from YAML, and ``load_any`` (detect a file's kind and load every part it holds).

Network format (ours)::

    network:
      name: tiny
      layers:
        - name: fc1
          gemm: {M: 512, N: 256, K: 1024}      # Z[M,N] += A[M,K]·B[N,K]; A is the weight
          densities: {A: {distribution: hypergeometric, density: 0.3}}
          weight_tensor: weights/fc1.npy        # optional, relative to this file
        - name: conv1
          conv2d: {C: 3, M: 64, P: 112, Q: 112, R: 7, S: 7, stride: 2}
        - name: other
          problem: ../shared/timeloop_examples/default_problem.yaml   # a Timeloop problem file

Densities use the problem-file syntax (see :mod:`testy_model.spec.problem_loader`).

A network is a graph when its entries name their inputs: a layer's ``inputs: [conv1, ...]``
lists the producers of its run-time operands (a GEMM's B; an attention product's A then B), and
entries with ``op:`` are non-GEMM operators (``testy_model.spec.workload.OperatorKind``)::

        - {name: x, op: input, shape: [1, 64, 56, 56]}
        - {name: conv1, conv2d: {C: 64, M: 64, P: 56, Q: 56, R: 3, S: 3}, inputs: [x]}
        - {name: add, op: add, inputs: [conv1, x]}          # shape: the first input's
        - {name: pool, op: maxpool, inputs: [add], shape: [1, 64, 28, 28], window: 9}

An entry without ``inputs`` reads the entry before it, so a plain list of layers is a chain.
Entries run in file order. ``load_network("model.onnx")`` reads an ONNX model instead
(:mod:`testy_model.spec.onnx_loader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from testy_model.errors import SpecError
from testy_model.spec.arch import Architecture
from testy_model.spec.arch_loader import arch_from_doc
from testy_model.spec.cursor import Cur, Doc, validation_to_spec_error
from testy_model.spec.mapping import Mapping
from testy_model.spec.mapping_loader import mapping_from_doc
from testy_model.spec.problem_loader import _density, problem_from_doc
from testy_model.spec.workload import Density, Layer, Network, Operator, Problem, conv2d, gemm
from testy_model.spec.yaml_io import KNOWN_TOP_LEVEL

if TYPE_CHECKING:
    from testy_model.spec.accelergy import AreaTable, EnergyTable
    from testy_model.spec.sparseloop import SparseOptimizations

_GEMM_KEYS = ("M", "N", "K")
_CONV_KEYS = {
    "N": "n",
    "C": "c",
    "M": "m",
    "P": "p",
    "Q": "q",
    "R": "r",
    "S": "s",
    "stride": "stride",
    "dilation": "dilation",
    "groups": "groups",
}


#: Keys of one layer of a network file (``inputs``: the names of the layers feeding it).
LAYER_KEYS = (
    "name",
    "gemm",
    "conv2d",
    "problem",
    "densities",
    "weight_tensor",
    "activation_tensor",
    "inputs",
)
#: Keys of one operator (``op:``) entry of a network file.
OPERATOR_KEYS = ("name", "op", "inputs", "shape", "window", "constant_words")


def _names(c: Cur | None) -> tuple[str, ...] | None:
    return None if c is None else tuple(x.str() for x in c.as_list(allow_none=False).elems())


def _operator(oc: Cur, prev: str | None, shapes: dict[str, tuple[int, ...]]) -> Operator:
    """An ``op:`` entry: inputs default to the previous entry, shape to the first input's."""
    oc.as_map().reject_unknown(OPERATOR_KEYS)
    name = oc.req("name").str()
    inputs = _names(oc.opt("inputs"))
    op = oc.req("op").str()
    if inputs is None:
        inputs = () if op == "input" or prev is None else (prev,)
    sc = oc.opt("shape")
    if sc is not None:
        shape = tuple(x.int(minimum=1) for x in sc.as_list(allow_none=False).elems())
    elif inputs and inputs[0] in shapes:
        shape = shapes[inputs[0]]
    else:
        raise oc.error(f"operator {name!r}: give its output 'shape' (a list of sizes)")
    try:
        return Operator(
            name=name, op=op, inputs=inputs, shape=shape,
            window=w.int(minimum=1) if (w := oc.opt("window")) is not None else 1,
            constant_words=cw.int(minimum=0) if (cw := oc.opt("constant_words")) is not None else 0,
        )  # fmt: skip
    except ValidationError as err:
        raise validation_to_spec_error(err, oc, {}) from None


def _layer(lc: Cur, base: Path) -> Layer:
    lc.as_map().reject_unknown(LAYER_KEYS)
    name = lc.req("name").str()
    kinds = [k for k in ("gemm", "conv2d", "problem") if lc.has(k)]
    if len(kinds) != 1:
        raise lc.error(
            f"layer {name!r}: expected exactly one of gemm, conv2d, problem; got {kinds}"
        )
    dens: dict[str, Density] = {}
    if (dc := lc.opt("densities")) is not None:
        dens = {t: _density(c) for t, c in dc.as_map().items()}
    kind = kinds[0]
    body = lc.child(kind)
    try:
        if kind == "gemm":
            body.as_map().reject_unknown(_GEMM_KEYS, "gemm size")
            m, n, k = (body.req(x).int(minimum=1) for x in _GEMM_KEYS)
            prob = gemm(m, n, k, name=name, densities=dens)
        elif kind == "conv2d":
            body.as_map().reject_unknown(_CONV_KEYS, "conv2d size")
            args: dict[str, Any] = {}
            for key, arg in _CONV_KEYS.items():
                c = body.opt(key)
                if c is not None:
                    args[arg] = c.int(minimum=1)
            for req in ("C", "M", "P", "Q"):
                body.req(req)
            prob = conv2d(name=name, densities=dens, **args)
        else:
            ref = base / body.str()
            sub_doc = Doc.load(ref)
            sub = problem_from_doc(sub_doc)
            sub_doc.report_unused()
            prob = sub.model_copy(update={"name": name, "densities": {**sub.densities, **dens}})
            Problem.model_validate(prob.model_dump())
    except ValidationError as err:
        raise validation_to_spec_error(err, lc, {"densities": ("densities",)}) from None
    except ValueError as err:
        if isinstance(err, SpecError):
            raise
        raise body.error(str(err)) from None
    wt = lc.opt("weight_tensor")
    at = lc.opt("activation_tensor")
    return Layer(
        name=name,
        problem=prob,
        weight_tensor=str(base / wt.str()) if wt is not None else None,
        activation_tensor=str(base / at.str()) if at is not None else None,
        inputs=_names(lc.opt("inputs")),
    )


def network_from_doc(doc: Doc) -> Network:
    """Build a :class:`Network` from a loaded ``network:`` document."""
    root = doc.root()
    if not root.is_map():
        raise root.error("expected a mapping with a 'network' block")
    net = root.req("network").as_map()
    root.reject_unknown(KNOWN_TOP_LEVEL, "top-level block")
    net.reject_unknown(("name", "layers"))
    base = Path(doc.file).parent
    entries = list(net.req("layers").as_list(allow_none=False).elems())
    graph = any(e.is_map() and (e.has("op") or e.has("inputs")) for e in entries)
    layers: list[Layer] = []
    operators: list[Operator] = []
    shapes: dict[str, tuple[int, ...]] = {}
    prev: str | None = None
    seen: set[str] = set()
    for lc in entries:
        node: Layer | Operator
        if lc.is_map() and lc.has("op"):
            node = _operator(lc, prev, shapes)
            operators.append(node)
            shapes[node.name] = node.shape
        else:
            node = _layer(lc, base)
            if graph and node.inputs is None and prev is not None:
                node = node.model_copy(update={"inputs": (prev,) * len(node.operands)})
            layers.append(node)
            shapes[node.name] = node.problem.shape_of(node.problem.output)
        if node.name in seen:
            raise lc.child("name").error(
                f"duplicate layer name {node.name!r}; layer and operator names must be unique"
            )
        seen.add(node.name)
        prev = node.name
    if not layers:
        raise net.child("layers").error("expected at least one GEMM-like layer")
    name = c.str() if (c := net.opt("name")) is not None else Path(doc.file).stem
    order = tuple(lc.req("name").str() for lc in entries) if graph else ()
    try:
        return Network(name=name, layers=tuple(layers), operators=tuple(operators), order=order)
    except ValidationError as err:
        raise validation_to_spec_error(err, net, {"layers": ("layers",)}) from None


def load_network(path: str | Path, *, skip_unknown: bool = False) -> Network:
    """Load a network: a YAML file (format in the module docstring; unknown keys are errors with
    a "did you mean" suggestion) or an ONNX model (``.onnx``,
    :func:`testy_model.spec.onnx_loader.load_onnx`; ``skip_unknown`` counts operators it cannot
    price as traffic only). Raises :class:`SpecError`."""
    if Path(path).suffix.lower() == ".onnx":
        from testy_model.spec.onnx_loader import load_onnx

        return load_onnx(path, skip_unknown=skip_unknown)
    doc = Doc.load(path)
    net = network_from_doc(doc)
    doc.report_unused()
    return net


def load_any(
    path: str | Path,
) -> dict[
    str,
    Architecture | Problem | Mapping | Network | SparseOptimizations | EnergyTable | AreaTable,
]:
    """Load every part a file holds, detected by its top-level keys.

    Returns a dict with some of the keys ``"arch"``, ``"problem"``, ``"mapping"``, ``"network"``,
    ``"ert"``, ``"art"`` (Accelergy tables), ``"sparse_opts"`` (a file holding only
    ``sparse_optimizations``). Unused keys are reported in one warning line for the file.
    An aggregated Sparseloop input yields arch and problem (and mapping when present), and the
    mapping is then loaded against them. Raises :class:`SpecError` when nothing is recognised.
    """
    doc = Doc.load(path)
    root = doc.root()
    if not root.is_map():
        raise root.error(
            "expected a mapping with one of 'architecture', 'problem', 'mapping', 'network'"
        )
    out: dict[
        str,
        Architecture | Problem | Mapping | Network | SparseOptimizations | EnergyTable | AreaTable,
    ] = {}
    arch = problem = None
    if root.has("architecture"):
        arch = arch_from_doc(doc)
        out["arch"] = arch
    if root.has("problem"):
        problem = problem_from_doc(doc)
        out["problem"] = problem
    if root.has("mapping"):
        out["mapping"] = mapping_from_doc(doc, arch, problem)
    if root.has("network"):
        out["network"] = network_from_doc(doc)
    if root.has("architecture") or root.has("sparse_optimizations"):
        from testy_model.spec.sparseloop import load_sparse_optimizations

        opts = load_sparse_optimizations(path)  # rejects unknown formats, actions, keys
        if not root.has("architecture"):
            out["sparse_opts"] = opts
    if root.has("ERT") or root.has("ART"):
        from testy_model.spec.accelergy import load_art, load_ert

        if root.has("ERT"):
            out["ert"] = load_ert(path)
        if root.has("ART"):
            out["art"] = load_art(path)
    if not out:
        raise root.error(
            f"cannot tell what this file is: top-level keys {sorted(root.value)}; expected "
            "'architecture', 'problem', 'mapping', 'network', 'sparse_optimizations', 'ERT', "
            "'ART', 'plan' or 'sweep'"
        )
    doc.report_unused()
    return out


def check_sparse_optimizations(path: str | Path) -> None:
    """Parse the file's ``sparse_optimizations`` (top-level v0.3 block or v0.4 per-node blocks)
    only to reject bad ones early: unknown formats, actions or keys.

    Raises:
        SpecError: naming file, line and key path of the first bad entry.
    """
    from testy_model.spec.sparseloop import load_sparse_optimizations

    load_sparse_optimizations(path)
