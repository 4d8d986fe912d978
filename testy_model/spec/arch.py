"""Typed architecture spec: storage hierarchy, compute, structured-sparsity support, TASD unit.

Units used throughout (state them, never guess):
- capacities: ``depth`` rows × ``width`` bits per row; ``capacity_words = depth·width / datawidth``.
- bandwidths: **bits per cycle per instance** (Timeloop files give words/cycle: the loader
  multiplies by ``datawidth``). ``None`` means unlimited.
- energies: **pJ per word** (one ``datawidth``-bit scalar access). Timeloop/Accelergy give
  energy per vector access of ``block_size = width / datawidth`` words: the loader divides.
- leakage: pJ per cycle per instance.
- clock: GHz.

Levels are ordered outermost (DRAM) first, innermost (registers) last. ``instances`` is the total
number of copies of a level in the design; the spatial fan-out *below* level i is
``instances[i+1] / instances[i]`` (the compute unit's instances below the last level).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from testy_model.estimators.node import check_node, node_nm
from testy_model.tasd.pattern import NMPattern

TensorName = str


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False
    )


class LevelConstraints(_Frozen):
    """Timeloop-style mapping constraints attached to a level (all optional).

    ``temporal_factors``/``spatial_factors`` map a dimension to a fixed factor (``K=1``) or an
    upper bound given as a negative number (``M<=8`` is stored as ``-8``).
    Permutations are listed inner to outer, as Timeloop writes them.

    ``spatial_factors_x``/``spatial_factors_y`` (optional, same encoding) are the spatial
    constraints of the containers that fan out along the mesh's X / Y axis only (Timeloop applies
    a container's spatial constraints to its own loops); a container fanning out along both axes
    (or neither) counts for both. ``spatial_factors`` stays their union (the strictest reading,
    for consumers unaware of the mesh). ``None`` = no per-axis information.
    """

    temporal_factors: dict[str, int] = Field(default_factory=dict)
    temporal_permutation: tuple[str, ...] = ()
    spatial_factors: dict[str, int] = Field(default_factory=dict)
    spatial_permutation: tuple[str, ...] = ()
    spatial_split: int | None = None
    spatial_factors_x: dict[str, int] | None = None
    spatial_factors_y: dict[str, int] | None = None


class StorageLevel(_Frozen):
    """One storage level (DRAM, a buffer, a register file).

    Attributes:
        name: the level's name, as in the YAML (``shared_glb``).
        kind: ``"DRAM"`` (unbounded, off-chip), ``"SRAM"`` or ``"regfile"``.
        depth: rows; ``None`` for unbounded (DRAM).
        width: bits per row.
        datawidth: bits per data word.
        instances: copies of this level in the whole design.
        mesh_x: how ``instances`` split in X (mesh_y = instances / mesh_x).
        read_bandwidth / write_bandwidth: bits per cycle per instance, ``None`` = unlimited.
        read_energy / write_energy: pJ per word.
        metadata_read_energy / metadata_write_energy: pJ per metadata bit moved; ``None`` when
            not given (the model then charges the data word energy per bit, ``e/datawidth``);
            an explicit 0 is 0.
        metadata_depth / metadata_width: metadata storage (rows × bits), 0 if none.
        metadata_datawidth: default bits of a format's metadata/payload words (Timeloop's
            ``metadata_datawidth``), 0 when not given.
        shared_bandwidth: bits per cycle per instance shared by reads and writes (``None`` =
            unlimited).
        ert_actions: Accelergy per-action energies (pJ per action, one vector of ``block_size``
            words or one metadata row), when the level's energies come from an ERT: the model
            resolves every Timeloop storage action through them (``model.arrays``).
        leakage: pJ per cycle per instance, at the nominal clock (``ComputeUnit``).
        area_um2: area per instance in µm²; ``None`` = estimated
            (:mod:`testy_model.estimators.area`), 0 = none.
        keep: tensors this level may hold (``None`` = any); bypass: tensors it never holds.
        energy_source: where the energies came from (the built-in estimator, ``"spec"``,
            ``"ERT ..."``).
        estimator: the energy/area estimator class chosen when the spec was loaded
            (:func:`testy_model.estimators.energy.estimator_class`); ``None`` = from ``kind`` and
            ``depth``.
    """

    name: str
    kind: Literal["DRAM", "SRAM", "regfile"] = "SRAM"
    depth: int | None = Field(default=None, ge=1)
    width: int = Field(ge=1)
    datawidth: int = Field(ge=1)
    instances: int = Field(default=1, ge=1)
    mesh_x: int = Field(default=1, ge=1)
    read_bandwidth: float | None = Field(default=None, gt=0)
    write_bandwidth: float | None = Field(default=None, gt=0)
    read_energy: float = Field(ge=0)
    write_energy: float = Field(ge=0)
    metadata_read_energy: float | None = Field(default=None, ge=0)
    metadata_write_energy: float | None = Field(default=None, ge=0)
    metadata_depth: int = Field(default=0, ge=0)
    metadata_width: int = Field(default=0, ge=0)
    metadata_datawidth: int = Field(default=0, ge=0)
    shared_bandwidth: float | None = Field(default=None, gt=0)
    ert_actions: tuple[tuple[str, float], ...] = ()
    leakage: float = Field(default=0.0, ge=0)
    area_um2: float | None = Field(default=None, ge=0)
    keep: tuple[TensorName, ...] | None = None
    bypass: tuple[TensorName, ...] = ()
    constraints: LevelConstraints = Field(default_factory=LevelConstraints)
    energy_source: str = "spec"
    estimator: Literal["DRAM", "SRAM", "RF", "register"] | None = None

    @property
    def block_size(self) -> int:
        """Words per row: width // datawidth (>= 1)."""
        return max(1, self.width // self.datawidth)

    @property
    def capacity_words(self) -> float:
        """Data capacity per instance in words: depth·width/datawidth (inf when unbounded)."""
        if self.depth is None:
            return float("inf")
        return self.depth * self.width / self.datawidth

    @property
    def capacity_bits(self) -> float:
        """Data capacity per instance in bits: depth·width (inf when unbounded)."""
        return float("inf") if self.depth is None else float(self.depth * self.width)

    @property
    def mesh_y(self) -> int:
        """Instances in Y: instances / mesh_x."""
        return max(1, self.instances // self.mesh_x)

    def keeps(self, tensor: TensorName) -> bool:
        """True when this level may hold ``tensor`` (not bypassed, and in ``keep`` if given)."""
        if tensor in self.bypass:
            return False
        return self.keep is None or tensor in self.keep


class ComputeUnit(_Frozen):
    """The MAC array.

    Attributes:
        name: as in the YAML (``mac``).
        instances: MAC units in the whole design.
        mesh_x: how they split in X.
        datawidth: operand width in bits.
        mac_energy: pJ per effective MAC; gated_mac_energy: pJ per gated (clock-gated) MAC,
        ``None`` when not given (then 0); skipped MACs cost ``skipped_mac_energy`` (0).
        ert_actions: Accelergy per-action energies (pJ per MAC) when loaded from an ERT.
        clock_ghz: clock frequency in GHz.
        nominal_clock_ghz: the clock reached at the node's nominal supply, the operating point
            at which every per-action energy and leakage of the spec (written, from an ERT, or
            estimated) holds. ``None`` when constructing means "the clock given here": the
            spec's own clock is its nominal one, and a later change of ``clock_ghz`` (an
            override, a sweep) moves the supply voltage by the voltage-frequency rule
            (:mod:`testy_model.estimators.voltage`), which scales the energies the cost model
            reads (:func:`testy_model.model.arrays.arch_arrays`).
        leakage: pJ per cycle per instance, at the nominal clock.
        area_um2: area per MAC in µm²; ``None`` = estimated, 0 = none.
        estimator: ``MAC_int`` or ``MAC_fp``, the MAC energy/area estimator class.
        multiplier_width: multiplier operand bits for the estimators (``None`` = datawidth).
    """

    name: str = "mac"
    instances: int = Field(default=1, ge=1)
    mesh_x: int = Field(default=1, ge=1)
    datawidth: int = Field(default=8, ge=1)
    mac_energy: float = Field(default=0.315, ge=0)
    gated_mac_energy: float | None = Field(default=None, ge=0)
    skipped_mac_energy: float = Field(default=0.0, ge=0)
    ert_actions: tuple[tuple[str, float], ...] = ()
    clock_ghz: float = Field(default=1.0, gt=0)
    nominal_clock_ghz: float | None = Field(default=None, gt=0)
    leakage: float = Field(default=0.0, ge=0)
    area_um2: float | None = Field(default=None, ge=0)
    energy_source: str = "spec"
    estimator: Literal["MAC_int", "MAC_fp"] = "MAC_int"
    multiplier_width: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _nominal_clock(cls, data: object) -> object:
        """A missing ``nominal_clock_ghz`` is the ``clock_ghz`` given (1.0 GHz by default)."""
        if isinstance(data, dict) and data.get("nominal_clock_ghz") is None:
            return {**data, "nominal_clock_ghz": data.get("clock_ghz", 1.0)}
        return data


class HierarchicalPattern(_Frozen):
    """HighLight-style hierarchical N:M: a coarse ``N:M`` over blocks of ``block`` values,
    composed with a fine ``N:M`` inside each kept block. Density = coarse.density · fine.density."""

    coarse: NMPattern
    fine: NMPattern

    @field_validator("coarse", "fine", mode="before")
    @classmethod
    def _parse(cls, v: object) -> NMPattern:
        return NMPattern.parse(v)

    @property
    def density(self) -> float:
        """Kept density: coarse n/m × fine n/m."""
        return self.coarse.density * self.fine.density

    def __str__(self) -> str:
        return f"{self.coarse}({self.fine})"


class OperandSparsity(_Frozen):
    """What the engine can exploit on one operand.

    Attributes:
        patterns: N:M patterns the datapath runs (a term of pattern n:m runs on the smallest
            listed p:q that contains it, at p/q of the dense work). Empty = dense only.
        hierarchical: HighLight-style hierarchical patterns.
        unstructured: True when the engine skips arbitrary zeros (DSTC-like, bitmask formats).
        metadata_bits: bits of metadata per kept value; ``None`` = pattern default ceil(log2 M).
        metadata_level: name of the level whose metadata storage holds it (``None`` = alongside
            data).
        action: ``"skip"`` (ineffectual work costs no cycles nor energy) or ``"gate"`` (costs
            cycles, gated energy).
        format: how a structured term is stored and moved (``model.terms.term_formats``):
            ``"fixed"`` N:M slots (a term run on hardware pattern p:q stores, moves and
            multiplies p of every q values plus metadata per slot, whatever they hold: NVIDIA's
            compressed 2:4 format), or ``"coordinate"`` / ``"bitmask"`` (actual occupancy, as
            Sparseloop's CP / B formats: coordinate metadata per kept value, one bit per value).
        zero_slots: what a fixed slot holding a zero costs at the MAC: ``"gate"`` (the engine
            gates it: a gated MAC) or ``"compute"`` (a full MAC).
    """

    patterns: tuple[NMPattern, ...] = ()
    hierarchical: tuple[HierarchicalPattern, ...] = ()
    unstructured: bool = False
    metadata_bits: int | None = Field(default=None, ge=0)
    metadata_level: str | None = None
    action: Literal["skip", "gate"] = "skip"
    format: Literal["fixed", "coordinate", "bitmask"] = "fixed"
    zero_slots: Literal["gate", "compute"] = "gate"

    @field_validator("patterns", mode="before")
    @classmethod
    def _parse_patterns(cls, v: object) -> tuple[NMPattern, ...]:
        if v is None:
            return ()
        if isinstance(v, (str, NMPattern)):
            v = [v]
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"expected an N:M pattern or a list of them, got {v!r}")
        return tuple(sorted(NMPattern.parse(p) for p in v))


class SparsitySupport(_Frozen):
    """Structured-sparsity support per GEMM operand: ``A`` (weights, M×K) and ``B``
    (activations, K×N)."""

    A: OperandSparsity = Field(default_factory=OperandSparsity)
    B: OperandSparsity = Field(default_factory=OperandSparsity)

    def operand(self, name: str) -> OperandSparsity:
        """The support for operand ``"A"`` or ``"B"``."""
        return self.A if name == "A" else self.B


class TasdUnit(_Frozen):
    """On-the-fly activation decomposition unit (top-N of each M-block).

    The numbers left ``None`` are derived from the unit's parts at the architecture's node
    (``estimators.tasd_unit.tasd_unit_cost``: comparators, registers, index encoder).

    Attributes:
        count: units working in parallel.
        block: values per block it handles (M of the activation patterns; default 8).
        select: the most values it keeps per block (N; ``None`` = ``block // 2``).
        cycles_per_block: cycles one unit spends on one M-block (derived: M, one value a cycle).
        energy_per_value: pJ per activation value examined (derived from the parts).
        area_mm2: area of all units together, mm² (derived: count × one unit's parts).
    """

    count: int = Field(default=16, ge=1)
    block: int = Field(default=8, ge=1)
    select: int | None = Field(default=None, ge=1)
    cycles_per_block: float | None = Field(default=None, gt=0)
    energy_per_value: float | None = Field(default=None, ge=0)
    area_mm2: float | None = Field(default=None, ge=0)

    @property
    def top_n(self) -> int:
        """N, the most values kept per block (``select``, else ``block // 2``, at least 1)."""
        return self.select if self.select is not None else max(1, self.block // 2)


class Architecture(_Frozen):
    """A whole accelerator: ordered storage levels (outermost first), compute, sparsity, TASD unit.

    Attributes:
        name: design name.
        technology: process node string (``"45nm"``), read by
            :func:`testy_model.estimators.node.node_nm` (7-180 nm).
        levels: storage levels, DRAM first.
        compute: the MAC array.
        sparsity: structured-sparsity support per operand.
        tasd_unit: optional activation-decomposition unit.
        source: file the spec came from (for messages), or ``None``.
        container_parents: Timeloop container name -> the storage level just above it (where the
            container's spatial fan-out starts); used to fold ``inter_<Container>_spatial``
            mapping targets. Empty for specs not read from Timeloop files.
    """

    name: str = "arch"
    technology: str = "45nm"
    levels: tuple[StorageLevel, ...]
    compute: ComputeUnit
    sparsity: SparsitySupport = Field(default_factory=SparsitySupport)
    tasd_unit: TasdUnit | None = None
    source: str | None = None
    container_parents: dict[str, str] = Field(default_factory=dict)

    @field_validator("technology", mode="before")
    @classmethod
    def _node(cls, v: object) -> str:
        check_node(node_nm(v))  # SpecError (a ValueError) names what was expected
        return str(v)

    @model_validator(mode="after")
    def _check(self) -> Architecture:
        if not self.levels:
            raise ValueError("an architecture needs at least one storage level")
        names = [lvl.name for lvl in self.levels]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate level names {sorted(dup)}")
        prev = 1
        for lvl in self.levels:
            if lvl.instances % prev:
                raise ValueError(
                    f"level {lvl.name!r} has {lvl.instances} instances, not a multiple of the "
                    f"{prev} instances of the level above"
                )
            prev = lvl.instances
        if self.compute.instances % prev:
            raise ValueError(
                f"compute has {self.compute.instances} instances, not a multiple of the {prev} "
                "instances of the innermost level"
            )
        return self

    @property
    def level_names(self) -> tuple[str, ...]:
        """Level names, outermost first."""
        return tuple(lvl.name for lvl in self.levels)

    def level(self, name: str) -> StorageLevel:
        """The level called ``name`` (``KeyError`` naming the known levels otherwise)."""
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        raise KeyError(f"no level {name!r}; levels are {list(self.level_names)}")

    def level_index(self, name: str) -> int:
        """Index of level ``name`` (0 = outermost)."""
        return self.level_names.index(self.level(name).name)

    def fanout(self, index: int) -> int:
        """Spatial fan-out below level ``index``: instances of the next inner level (or compute)
        divided by this level's instances."""
        below = (
            self.levels[index + 1].instances
            if index + 1 < len(self.levels)
            else self.compute.instances
        )
        return below // self.levels[index].instances

    @property
    def peak_macs_per_cycle(self) -> int:
        """Peak dense MACs per cycle: the compute unit's instances."""
        return self.compute.instances
