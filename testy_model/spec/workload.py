"""Typed workloads: Timeloop-style problems (an einsum with projections), GEMMs, convolutions,
densities, and networks of layers.

Every layer is a :class:`Problem` in Timeloop's form: named dimensions with bounds, and data
spaces whose ranks are affine projections ``sum(coef · dim)`` of the dimensions. A GEMM is
``Z[m,n] += A[m,k] · B[n,k]`` (A is the weight operand, M×K; B the activation, N×K; K the
reduction axis). A convolution keeps its seven dimensions (N, M, C, P, Q, R, S) with strided and
dilated input projections, so no im2col inflation: an input tile spans ``(P-1)·stride +
(R-1)·dilation + 1`` rows. ``Problem.as_gemm_dims()`` gives the equivalent implicit-GEMM sizes.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from testy_model.tasd.pattern import NMPattern

#: Largest bound of one dimension, and largest product of all bounds (dense MACs) of one problem:
#: 2**53 keeps every count exact in a float64 and every product of counts inside an int64.
MAX_BOUND = 2**31
MAX_MACS = 2**53


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False
    )


class Density(_Frozen):
    """How dense one operand is.

    kind:
        ``dense`` (density 1); ``bernoulli`` (each value non-zero independently with probability
        ``density``); ``hypergeometric`` (exactly ``density`` of the values non-zero, placed at
        random: Sparseloop's ``hypergeometric``); ``fixed_structured`` (Sparseloop's
        ``fixed-structured``: every tile holds exactly ``density`` of its values, rounded at
        random); ``banded`` (Sparseloop's ``banded``, ``band_width``); ``nm`` (N:M structured
        along the reduction axis, ``pattern`` set); ``tensor`` (measured from the array at
        ``path``). The density models are in ``testy_model.model.density``.
    pattern: an ``nm`` density's pattern; for ``fixed_structured``, the N:M pattern the density
        fits (``spec.problem_loader.fixed_structured_pattern``: 0.5 -> 2:4), ``None`` when none
        does. :attr:`nm_pattern` gives it for either kind.
    """

    kind: Literal[
        "dense", "bernoulli", "hypergeometric", "fixed_structured", "banded", "nm", "tensor"
    ] = "dense"
    density: float = Field(default=1.0, ge=0.0, le=1.0)
    pattern: NMPattern | None = None
    path: str | None = None
    key: str | None = None
    band_width: int = Field(default=0, ge=0)

    @field_validator("pattern", mode="before")
    @classmethod
    def _parse_pattern(cls, v: object) -> NMPattern | None:
        return None if v is None else NMPattern.parse(v)

    @model_validator(mode="after")
    def _check(self) -> Density:
        if self.kind == "nm" and self.pattern is None:
            raise ValueError("an 'nm' density needs a pattern such as '2:4'")
        if self.kind == "tensor" and not self.path:
            raise ValueError("a 'tensor' density needs a path to a .npy/.npz/.safetensors file")
        return self

    @property
    def nm_pattern(self) -> NMPattern | None:
        """The N:M pattern the operand is structured as: an ``nm`` density's pattern, or the
        pattern a ``fixed_structured`` density fits (every tile holds the same share, so every
        aligned M-block holds N); ``None`` otherwise."""
        return self.pattern if self.kind in ("nm", "fixed_structured") else None

    @property
    def value(self) -> float:
        """Expected non-zero fraction (pattern density for ``nm``)."""
        if self.kind == "dense":
            return 1.0
        if self.kind == "nm" and self.pattern is not None:
            return self.pattern.density
        return self.density


class DataSpace(_Frozen):
    """One tensor of a problem.

    ``projection`` has one entry per rank; each rank is a sum of ``(dimension, coefficient)``
    terms, where the coefficient is an integer or the name of a problem coefficient
    (``Wstride``) resolved through ``Problem.coefficients``.
    """

    name: str
    projection: tuple[tuple[tuple[str, int | str], ...], ...]
    read_write: bool = False


class Problem(_Frozen):
    """A Timeloop-style problem: dimensions with bounds, coefficients, data spaces, densities.

    Attributes:
        name: problem/layer name.
        shape_name: the Timeloop shape name (``gemm_ABZ``, ``conv2D``).
        dimensions: dimension names in declaration order.
        bounds: dimension -> bound (>= 1).
        coefficients: named coefficients (``Wstride``) -> value.
        data_spaces: the tensors; exactly one has ``read_write`` (the output).
        densities: tensor name -> :class:`Density` (missing = dense).
        datawidths: tensor name -> bits per word (missing = the architecture's datawidth).
        weight: name of the weight (offline-decomposable) operand; ``activation`` the other input.
        padding: (H, W) padding in input rows/columns for convolutions (footprint reporting only).
    """

    name: str = "layer"
    shape_name: str = "problem"
    dimensions: tuple[str, ...]
    bounds: dict[str, int]
    coefficients: dict[str, int] = Field(default_factory=dict)
    data_spaces: tuple[DataSpace, ...]
    densities: dict[str, Density] = Field(default_factory=dict)
    datawidths: dict[str, int] = Field(default_factory=dict)
    weight: str | None = None
    activation: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Problem:
        for d in self.dimensions:
            if d not in self.bounds:
                raise ValueError(f"dimension {d!r} has no bound in the instance")
            if not 1 <= self.bounds[d] <= MAX_BOUND:
                raise ValueError(f"dimension {d!r} bound must be in 1..2**31, got {self.bounds[d]}")
        if math.prod(self.bounds[d] for d in self.dimensions) > MAX_MACS:
            raise ValueError(
                f"the bounds multiply to {math.prod(self.bounds.values()):,} MACs; the limit is "
                "2**53 (about 9.0e15)"
            )
        for c, v in self.coefficients.items():
            if v < 1:
                raise ValueError(f"coefficient {c!r} (a stride or dilation) must be >= 1, got {v}")
        outs = [ds.name for ds in self.data_spaces if ds.read_write]
        if len(outs) != 1:
            raise ValueError(f"expected exactly one read_write (output) data space, got {outs}")
        names = {ds.name for ds in self.data_spaces}
        for ds in self.data_spaces:
            for rank in ds.projection:
                for dim, coef in rank:
                    if isinstance(coef, int) and coef < 1:
                        raise ValueError(
                            f"data space {ds.name!r}: projection coefficient {coef} of {dim!r} "
                            "must be >= 1"
                        )
                    if dim not in self.dimensions:
                        raise ValueError(
                            f"data space {ds.name!r} projects unknown dimension {dim!r}"
                        )
                    if isinstance(coef, str) and coef not in self.coefficients:
                        raise ValueError(
                            f"data space {ds.name!r} uses unknown coefficient {coef!r}"
                        )
        for t, w in self.datawidths.items():
            if w < 1:
                raise ValueError(f"datawidth of {t!r} must be >= 1 bit, got {w}")
        for t in list(self.densities) + list(self.datawidths):
            if t not in names:
                raise ValueError(f"density/datawidth given for unknown tensor {t!r}")
        return self

    # -- derived -----------------------------------------------------------------------------
    @property
    def output(self) -> str:
        """Name of the output (read-write) data space."""
        return next(ds.name for ds in self.data_spaces if ds.read_write)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the input data spaces."""
        return tuple(ds.name for ds in self.data_spaces if not ds.read_write)

    @property
    def tensor_names(self) -> tuple[str, ...]:
        """All data-space names in declaration order."""
        return tuple(ds.name for ds in self.data_spaces)

    def data_space(self, name: str) -> DataSpace:
        """The data space called ``name``."""
        for ds in self.data_spaces:
            if ds.name == name:
                return ds
        raise KeyError(f"no data space {name!r}; have {list(self.tensor_names)}")

    def coef(self, c: int | str) -> int:
        """Resolve a projection coefficient (integer or named)."""
        return c if isinstance(c, int) else self.coefficients[c]

    def relevant(self, tensor: str) -> frozenset[str]:
        """Dimensions that index ``tensor`` (appear in its projection)."""
        return frozenset(d for rank in self.data_space(tensor).projection for d, _ in rank)

    def tile_size(self, tensor: str, tile: dict[str, int]) -> int:
        """Words of ``tensor`` touched by a tile with per-dimension extents ``tile``.

        Equation: Π_ranks ( Σ_terms coef·(extent(dim) − 1) + 1 ); dimensions missing from
        ``tile`` have extent 1. For a rank ``P·stride + R·dilation`` this is
        ``(P−1)·stride + (R−1)·dilation + 1``.
        """
        size = 1
        for rank in self.data_space(tensor).projection:
            size *= sum(self.coef(c) * (tile.get(d, 1) - 1) for d, c in rank) + 1
        return size

    def shape_of(self, tensor: str) -> tuple[int, ...]:
        """Extent of each rank of ``tensor`` over the full problem (words along each rank)."""
        return tuple(
            sum(self.coef(c) * (self.bounds[d] - 1) for d, c in rank) + 1
            for rank in self.data_space(tensor).projection
        )

    def full_size(self, tensor: str) -> int:
        """Words of ``tensor`` for the whole problem (``tile_size`` at full bounds)."""
        return self.tile_size(tensor, self.bounds)

    @property
    def macs(self) -> int:
        """Dense MACs: Π bounds."""
        return math.prod(self.bounds.values())

    def density(self, tensor: str) -> Density:
        """Density of ``tensor`` (dense when not given)."""
        return self.densities.get(tensor, Density())

    def reduction_dims(self) -> frozenset[str]:
        """Dimensions not indexing the output (summed over)."""
        return frozenset(self.dimensions) - self.relevant(self.output)

    def shape_key(self) -> tuple:
        """The problem's shape without its name and densities — dims, bounds, projections,
        coefficients, datawidths, operand roles: the one key under which the mapper and the
        sweeps cache per-layer work (two layers with equal keys map alike)."""
        return (
            self.dimensions,
            tuple(self.bounds[d] for d in self.dimensions),
            tuple((ds.name, ds.projection, ds.read_write) for ds in self.data_spaces),
            tuple(sorted(self.coefficients.items())),
            tuple(sorted(self.datawidths.items())),
            self.weight,
            self.activation,
        )


def gemm(
    m: int,
    n: int,
    k: int,
    *,
    name: str = "gemm",
    densities: dict[str, Density] | None = None,
    datawidths: dict[str, int] | None = None,
) -> Problem:
    """A GEMM ``Z[m,n] += A[m,k]·B[n,k]``: A is the weight (M×K), B the activation (N×K)."""
    return Problem(
        name=name,
        shape_name="gemm_ABZ",
        dimensions=("M", "N", "K"),
        bounds={"M": m, "N": n, "K": k},
        data_spaces=(
            DataSpace(name="A", projection=((("M", 1),), (("K", 1),))),
            DataSpace(name="B", projection=((("N", 1),), (("K", 1),))),
            DataSpace(name="Z", projection=((("M", 1),), (("N", 1),)), read_write=True),
        ),
        densities=densities or {},
        datawidths=datawidths or {},
        weight="A",
        activation="B",
    )


def conv2d(
    *,
    name: str = "conv",
    n: int = 1,
    c: int,
    m: int,
    p: int,
    q: int,
    r: int = 1,
    s: int = 1,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    densities: dict[str, Density] | None = None,
    datawidths: dict[str, int] | None = None,
) -> Problem:
    """A 2-D convolution in Timeloop's ``conv2D`` shape (Weights[C,M,R,S], Inputs[N,C,·,·],
    Outputs[N,M,Q,P]) with strided, dilated input projections. ``p``/``q`` are the output width
    and height. Grouped convolutions are modelled per group-equivalent: C and M are the per-group
    channels multiplied into N... here simply ``groups`` scales the batch-like ``G`` dimension.
    """
    sw, sh = (stride, stride) if isinstance(stride, int) else stride
    dw, dh = (dilation, dilation) if isinstance(dilation, int) else dilation
    if c % groups or m % groups:
        raise ValueError(f"channels C={c}, M={m} are not divisible by groups={groups}")
    dims = (
        ("G", "C", "M", "R", "S", "N", "P", "Q")
        if groups > 1
        else ("C", "M", "R", "S", "N", "P", "Q")
    )
    bounds = {"C": c // groups, "M": m // groups, "R": r, "S": s, "N": n, "P": p, "Q": q}
    g_rank: tuple = ((("G", 1),),) if groups > 1 else ()
    if groups > 1:
        bounds["G"] = groups
    return Problem(
        name=name,
        shape_name="conv2D",
        dimensions=dims,
        bounds=bounds,
        coefficients={"Wstride": sw, "Hstride": sh, "Wdilation": dw, "Hdilation": dh},
        data_spaces=(
            DataSpace(
                name="Weights",
                projection=(*g_rank, (("C", 1),), (("M", 1),), (("R", 1),), (("S", 1),)),
            ),
            DataSpace(
                name="Inputs",
                projection=(
                    (("N", 1),),
                    *g_rank,
                    (("C", 1),),
                    (("R", "Wdilation"), ("P", "Wstride")),
                    (("S", "Hdilation"), ("Q", "Hstride")),
                ),
            ),
            DataSpace(
                name="Outputs",
                projection=((("N", 1),), *g_rank, (("M", 1),), (("Q", 1),), (("P", 1),)),
                read_write=True,
            ),
        ),
        densities=densities or {},
        datawidths=datawidths or {},
        weight="Weights",
        activation="Inputs",
    )


class Layer(_Frozen):
    """A named GEMM-like layer of a network: its problem, optional real tensors for its operands,
    and (in a graph) the producers of its run-time operands.

    ``inputs`` names, in the order of ``problem.inputs`` without the weight, the layer or
    operator producing each run-time operand (a convolution: ``Inputs``; a GEMM: ``B``; an
    attention product without weight: ``A`` then ``B``). ``None``: the previous layer of the
    network (a chain; the first layer reads the network's input).
    """

    name: str
    problem: Problem
    weight_tensor: str | None = None  # path[:key] of the weight array (.npy/.npz/.onnx, ...)
    activation_tensor: str | None = None
    inputs: tuple[str, ...] | None = None

    @property
    def operands(self) -> tuple[str, ...]:
        """The run-time operands, in the order ``inputs`` names their producers."""
        return tuple(t for t in self.problem.inputs if t != self.problem.weight)


#: Non-GEMM operator kinds (their element-wise work is in ``testy_model.model.elementwise``).
#: ``input`` is a network input (in DRAM, no producer); ``view`` (reshape, transpose, flatten,
#: squeeze, slice, expand, identity) and ``concat`` are free: their consumers read the producers'
#: tensors; ``unknown`` is an operator counted as traffic only (``--skip-unknown``).
OperatorKind = Literal[
    "input",
    "add",
    "sub",
    "mul",
    "div",
    "relu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "pointwise",
    "softmax",
    "layernorm",
    "rmsnorm",
    "batchnorm",
    "maxpool",
    "avgpool",
    "globalavgpool",
    "reduce",
    "gather",
    "concat",
    "view",
    "unknown",
]


class Operator(_Frozen):
    """A non-GEMM operator of a network graph.

    Attributes:
        name: unique among the network's layers and operators.
        op: the kind (:data:`OperatorKind`).
        inputs: producers (layers, operators or network inputs) of its run-time operands.
        shape: shape of its output tensor (values); ``words`` is their product.
        window: values per pooling window (kernel height × width), 1 otherwise.
        constant_words: values of constant operands it reads (bias, LayerNorm γ/β, tables).
        source: where it came from (the ONNX operator types it replaces), for reports.
    """

    name: str
    op: OperatorKind
    inputs: tuple[str, ...] = ()
    shape: tuple[int, ...]
    window: int = Field(default=1, ge=1)
    constant_words: int = Field(default=0, ge=0)
    source: str | None = None

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(int(x) < 1 for x in v):
            raise ValueError(f"shape {list(v)} has a dimension < 1")
        return v

    @property
    def words(self) -> int:
        """Values in the output tensor: Π shape."""
        return math.prod(self.shape)


class Network(_Frozen):
    """GEMM-like layers in execution order, and (for a graph) the other operators.

    ``layers`` keep their order (search, sweeps and reports iterate them); ``operators`` are the
    non-GEMM nodes (inputs, element-wise, normalisation, pooling, views); ``outputs`` names the
    nodes whose tensors leave the network (default: those nothing consumes); ``order`` is the
    execution order of all of them (a topological order; default in ``graph.dataflow``). A
    network without operators whose layers name no inputs is a chain.
    """

    name: str = "network"
    layers: tuple[Layer, ...]
    operators: tuple[Operator, ...] = ()
    outputs: tuple[str, ...] = ()
    order: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Network:
        names = [layer.name for layer in self.layers] + [op.name for op in self.operators]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate layer/operator names {sorted(dup)}")
        known = set(names)
        nodes: tuple[Layer | Operator, ...] = (*self.layers, *self.operators)
        for node in nodes:
            missing = [i for i in (node.inputs or ()) if i not in known]
            if missing:
                raise ValueError(f"{node.name!r} reads unknown inputs {missing}")
        for layer in self.layers:
            if layer.inputs is not None and len(layer.inputs) != len(layer.operands):
                raise ValueError(
                    f"layer {layer.name!r} names {len(layer.inputs)} inputs for its "
                    f"{len(layer.operands)} run-time operands {list(layer.operands)}"
                )
        bad = [o for o in self.outputs if o not in known]
        if bad:
            raise ValueError(f"outputs {bad} are not layers or operators")
        if self.order and sorted(self.order) != sorted(names):
            raise ValueError("order must list every layer and operator exactly once")
        return self

    @property
    def is_graph(self) -> bool:
        """True when the network has operators or its layers name their inputs."""
        return bool(self.operators) or any(x.inputs is not None for x in self.layers)

    @property
    def macs(self) -> int:
        """Total dense MACs of all layers."""
        return sum(layer.problem.macs for layer in self.layers)
