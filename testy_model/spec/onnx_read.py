"""Reading an ONNX file: the model, its shapes (``onnx.shape_inference``) and its constants.

The one place that calls ``onnx``. What it guarantees to :mod:`testy_model.spec.onnx_loader`:

- the file is an ONNX model (else :class:`SpecError` naming the file); weights stored as
  external data are rejected (the message says how to re-save them inline);
- the default-domain opset is 11 or newer (:data:`MIN_OPSET`); opsets newer than
  :data:`MAX_TESTED_OPSET` load with a :class:`SpecWarning`;
- a network input whose dimension is symbolic or unset (a dynamic batch or sequence length) is
  fixed to 1 before shape inference, with one :class:`SpecWarning` naming input, axis and symbol;
- every tensor has a shape after ``infer_shapes(..., data_prop=True)`` where ONNX can infer one;
- constants: initializers, ``Constant`` nodes and ``ConstantOfShape`` of a constant shape (kept
  as a :class:`Fill`, not materialised) and a few value-preserving operators on constants
  (``Identity``, ``Cast``, ``Transpose``, ``Reshape``, ``Squeeze``, ``Unsqueeze``,
  ``DequantizeLinear``) are folded to numpy arrays (``numpy_helper.to_array``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from testy_model.errors import SpecError
from testy_model.spec.located import SpecWarning

MIN_OPSET = 11
MAX_TESTED_OPSET = 21


@dataclass(frozen=True)
class Fill:
    """A constant tensor of one repeated value (``ConstantOfShape``), not materialised."""

    shape: tuple[int, ...]
    value: float

    @property
    def size(self) -> int:
        """Number of values."""
        return int(np.prod(self.shape, dtype=np.int64))

    def array(self) -> np.ndarray:
        """The tensor as a float32 array."""
        return np.full(self.shape, self.value, dtype=np.float32)


Const = np.ndarray | Fill


@dataclass
class Node:
    """An ONNX node, detached from protobuf so patterns can build new ones."""

    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""


@dataclass
class OnnxGraph:
    """What the loader needs from one model: nodes in topological order, the network inputs
    and outputs, every tensor's shape, the constants, the opset and metadata properties."""

    file: str
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    shapes: dict[str, tuple[int, ...]]
    consts: dict[str, Const]
    opset: int
    metadata: dict[str, str]


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:  # pragma: no cover - a core dependency
        raise SpecError("reading ONNX files needs the 'onnx' package (pip install onnx)") from None
    return onnx


def _attrs(onnx: Any, node: Any) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH or a.type == onnx.AttributeProto.GRAPHS:
            out[a.name] = "<graph>"
        else:
            out[a.name] = onnx.helper.get_attribute_value(a)
    return out


def _check_external(onnx: Any, model: Any, file: str) -> None:
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise SpecError(
                f"initializer {init.name!r} is stored as external data, which is not supported; "
                "save the model with its weights inline (onnx.load(path) then "
                "onnx.save_model(model, out, save_as_external_data=False), under 2 GB)",
                file=file,
            )


def _opset(model: Any, file: str) -> int:
    ops = {o.domain: o.version for o in model.opset_import}
    version = ops.get("", ops.get("ai.onnx"))
    if version is None:
        raise SpecError("the model imports no default-domain (ai.onnx) opset", file=file)
    if version < MIN_OPSET:
        raise SpecError(
            f"opset {version} is older than {MIN_OPSET} (supported {MIN_OPSET}–"
            f"{MAX_TESTED_OPSET}); convert it with onnx.version_converter.convert_version",
            file=file,
        )
    if version > MAX_TESTED_OPSET:
        warnings.warn(
            f"{file}: opset {version} is newer than the tested {MIN_OPSET}–{MAX_TESTED_OPSET}",
            SpecWarning,
            stacklevel=3,
        )
    return int(version)


def _fix_dynamic(model: Any, inits: set[str], file: str) -> None:
    """Set every symbolic/unset dimension of a network input to 1, with one warning."""
    fixed = []
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            if not (dim.HasField("dim_value") and dim.dim_value > 0):
                sym = dim.dim_param or "?"
                dim.Clear()
                dim.dim_value = 1
                fixed.append(f"{inp.name}[{axis}] ({sym})")
    if fixed:
        warnings.warn(
            f"{file}: dynamic input dimension(s) {', '.join(fixed)} set to 1 (batch 1, or a "
            "length of 1: edit the model's input shapes for another size)",
            SpecWarning,
            stacklevel=3,
        )


def _shape_of(vi: Any) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not (d.HasField("dim_value") and d.dim_value >= 0):
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def read_onnx(path: str | Path) -> OnnxGraph:
    """Load ``path`` and prepare it (module docstring). Raises :class:`SpecError`."""
    onnx = _onnx()
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise SpecError("no such file (expected an ONNX model)", file=file)
    try:
        model = onnx.load(file, load_external_data=False)
    except Exception as err:  # protobuf DecodeError and friends
        raise SpecError(
            f"not a readable ONNX model ({type(err).__name__}: {err})", file=file
        ) from None
    if not model.graph.node:
        raise SpecError("the ONNX model has no nodes", file=file)
    _check_external(onnx, model, file)
    opset = _opset(model, file)
    inits = {i.name for i in model.graph.initializer}
    _fix_dynamic(model, inits, file)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=False, data_prop=True)
    except Exception as err:
        raise SpecError(f"ONNX shape inference failed: {err}", file=file) from None
    g = model.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in (*g.input, *g.value_info, *g.output):
        s = _shape_of(vi)
        if s is not None:
            shapes[vi.name] = s
    consts: dict[str, Const] = {}
    for init in g.initializer:
        consts[init.name] = onnx.numpy_helper.to_array(init)
        shapes[init.name] = tuple(int(x) for x in init.dims)
    nodes = []
    for i, n in enumerate(g.node):
        nodes.append(Node(n.name or f"{n.op_type}_{i}", n.op_type, list(n.input),
                          list(n.output), _attrs(onnx, n), n.domain))  # fmt: skip
    nodes = _toposort(nodes, set(consts) | {x.name for x in g.input}, file)
    return OnnxGraph(
        file=file,
        nodes=nodes,
        inputs=[x.name for x in g.input if x.name not in inits],
        outputs=[x.name for x in g.output],
        shapes=shapes,
        consts=consts,
        opset=opset,
        metadata={m.key: m.value for m in model.metadata_props},
    )


def _toposort(nodes: list[Node], ready: set[str], file: str) -> list[Node]:
    """Nodes in an order where every input is produced first (stable: file order when the file
    is sorted, as the ONNX spec requires)."""
    avail = set(ready) | {""}
    left = list(nodes)
    out: list[Node] = []
    while left:
        rest = []
        for n in left:
            if all(i in avail for i in n.inputs):
                out.append(n)
                avail.update(n.outputs)
            else:
                rest.append(n)
        if len(rest) == len(left):
            missing = sorted({i for n in rest for i in n.inputs if i not in avail})
            raise SpecError(
                f"node {rest[0].name!r} ({rest[0].op_type}) reads tensors no node produces: "
                f"{missing[:5]}",
                file=file,
            )
        left = rest
    return out


def constant_value(
    node: Node, consts: dict[str, Const], shapes: dict[str, tuple[int, ...]]
) -> Const | None:
    """The constant value of ``node``'s first output when it can be folded (module docstring),
    else None. ``consts`` holds the values of its inputs that are constants."""
    onnx = _onnx()
    a = node.attrs
    op = node.op_type
    args = [consts.get(i) for i in node.inputs if i]
    if op == "Constant":
        for key in ("value", "sparse_value"):
            if key in a:
                return onnx.numpy_helper.to_array(a[key])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):  # fmt: skip
            if key in a:
                return np.array(a[key], dtype=dtype)
        return None
    if op == "ConstantOfShape":
        if not args or args[0] is None or isinstance(args[0], Fill):
            return None
        val = onnx.numpy_helper.to_array(a["value"]).reshape(-1)[0] if "value" in a else 0.0
        return Fill(tuple(int(x) for x in np.asarray(args[0]).reshape(-1)), float(val))
    if any(x is None for x in args) or not args:
        return None
    arr = [x.array() if isinstance(x, Fill) else np.asarray(x) for x in args]
    try:
        return _fold(op, a, arr, shapes.get(node.outputs[0]))
    except (ValueError, IndexError, TypeError):
        return None


def _fold(
    op: str, a: dict[str, Any], x: list[np.ndarray], out: tuple[int, ...] | None
) -> np.ndarray | None:
    if op in ("Identity", "Cast", "CastLike"):
        return x[0]
    if op == "Transpose":
        return np.transpose(x[0], a.get("perm"))
    if op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten") and out is not None:
        return x[0].reshape(out)
    if op == "DequantizeLinear":
        zp = x[2] if len(x) > 2 else 0
        scale = x[1]
        axis = int(a.get("axis", 1))
        if np.ndim(scale) == 1 and x[0].ndim > 1:
            shape = [1] * x[0].ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zp = np.asarray(zp).reshape(shape) if np.ndim(zp) == 1 else zp
        return (x[0].astype(np.float32) - zp) * scale
    return None
