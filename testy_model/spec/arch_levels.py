"""One architecture component -> one :class:`StorageLevel` or :class:`ComputeUnit` (the
conversions of :mod:`testy_model.spec.arch_loader`'s module docstring: datawidth, width, depth,
bandwidth in bits/cycle, energies from the spec or the estimators at the design's node), and the
state the tree walk carries to each component (:class:`WalkState`: fan-out, inherited container
attributes, the levels found so far)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from testy_model.errors import SpecError
from testy_model.estimators import energy as et
from testy_model.estimators.node import DEFAULT_NODE_NM, check_node, node_nm
from testy_model.spec.arch import ComputeUnit, StorageLevel
from testy_model.spec.arch_constraints import level_constraints
from testy_model.spec.cursor import Cur, validation_to_spec_error
from testy_model.spec.located import did_you_mean

STORAGE_KEYS = {
    "depth",
    "data_storage_depth",
    "width",
    "data_storage_width",
    "datawidth",
    "word-bits",
    "word_bits",
    "block_size",
    "block-size",
    "read_bandwidth",
    "write_bandwidth",
    "type",
    "metadata_storage_depth",
    "metadata_storage_width",
    "metadata_datawidth",
    "shared_bandwidth",
    "read_energy",
    "write_energy",
    "metadata_read_energy",
    "metadata_write_energy",
    "leakage",
    "area_um2",
    "area",
    "meshX",
    "meshY",
    "technology",
}


COMPUTE_KEYS = {
    "datawidth",
    "multiplier_width",
    "mac_energy",
    "gated_mac_energy",
    "clock_ghz",
    "nominal_clock_ghz",
    "leakage",
    "area_um2",
    "area",
    "meshX",
    "meshY",
    "technology",
}


#: Attributes Timeloop and Accelergy define for their own use (port and bank counts, cluster
#: sizes, FIFO depths, plug-in widths ...): accepted without a warning, not used by this model.
TIMELOOP_ATTRIBUTES = frozenset(
    {
        "cluster-size",
        "cluster_size",
        "n_banks",
        "n_rdwr_ports",
        "n_rd_ports",
        "n_wr_ports",
        "nports",
        "num_ports",
        "num-ports",
        "num-banks",
        "num_banks",
        "ports",
        "banks",
        "adder_width",
        "multiplier_width",
        "control_queue_depth",
        "update_fifo_depth",
        "metadata_datawidth",
        "metadata_counter_width",
        "compression_supported",
        "decompression_supported",
        "multiple-buffering",
        "multiple_buffering",
        "min-utilization",
        "min_utilization",
        "network-word-bits",
        "network_word_bits",
        "latency",
        "global_cycle_seconds",
        "action_latency_cycles",
        "cycle_seconds",
        "n_instances",
        "memory_width",
        "memory_depth",
        "allow_overbooking",
    }
)


#: Component classes of storage (Timeloop's and Accelergy's primitive classes; compared without
#: case). A class named in the file's ``compound_components`` is accepted too.
STORAGE_CLASSES = frozenset(
    {
        "dram",
        "sram",
        "storage",
        "regfile",
        "register",
        "aladdin_register",
        "reg_storage",
        "smartbuffer",
        "smartbuffer_sram",
        "smartbuffer_rf",
        "smartbuffer_metadata",
    }
)


#: Component classes of compute (besides any class ending in ``mac``).
COMPUTE_CLASSES = frozenset({"compute", "intmac", "fpmac", "mac"})


@dataclass
class WalkState:
    """What the walk has found so far and the fan-out in force."""

    instances: int = 1
    mesh_x: int = 1
    inherited: dict[str, Cur] = field(default_factory=dict)
    levels: list[StorageLevel] = field(default_factory=list)
    computes: list[tuple[Cur, ComputeUnit]] = field(default_factory=list)
    container_parents: dict[str, str] = field(default_factory=dict)
    technology: str | None = None
    compound_classes: frozenset[str] = frozenset()


def first_attr(attrs: dict[str, Cur], *names: str) -> Cur | None:
    for n in names:
        c = attrs.get(n)
        if c is not None and c.value is not None:
            return c
    return None


def is_compute(cls: str, subclass: str) -> bool:
    c, s = cls.lower(), subclass.lower()
    return c in {"compute", "intmac", "fpmac", "mac"} or c.endswith("mac") or s.endswith("mac")


def check_class(comp: Cur, cls: str, st: WalkState) -> None:
    """A component's ``class`` must be a known storage or compute class (or a compound component
    of the file): a misspelt class would otherwise be priced as an SRAM."""
    if not cls:
        raise comp.error(
            "missing 'class'; expected a storage class (DRAM, SRAM, regfile, storage, "
            "smartbuffer_SRAM, ...) or a compute class (intmac, compute, fpmac)"
        )
    low = cls.lower()
    if low in STORAGE_CLASSES or low in COMPUTE_CLASSES or low.endswith("mac"):
        return
    if low in st.compound_classes:
        return
    known = sorted({*STORAGE_CLASSES, *COMPUTE_CLASSES} | set(st.compound_classes))
    canon = {k.lower(): k for k in ("DRAM", "SRAM", "smartbuffer_SRAM", "smartbuffer_RF")}
    shown = [canon.get(k, k) for k in known]
    raise comp.child("class").error(
        f"unknown component class {cls!r}{did_you_mean(cls, shown)}; known classes: "
        f"{', '.join(shown)} (or a compound component defined in the file)"
    )


def derive_energies(
    kind: str,
    depth: int | None,
    width: int,
    datawidth: int,
    dram_type: str | None,
    estimator: str | None = None,
    node: float = DEFAULT_NODE_NM,
) -> tuple[float, float, str]:
    """(read, write) pJ per word and the source name, from the built-in estimators (module doc).

    ``estimator`` is the energy class (:func:`energy.estimator_class`); ``None`` infers
    it from ``kind`` and ``depth`` (DRAM; depth 1 -> register; else SRAM).
    ``node`` is the process node in nm.
    """
    if estimator is None:
        if kind == "DRAM":
            estimator = "DRAM"
        elif depth == 1:
            estimator = "register"
        else:
            estimator = "SRAM"
    return et.storage_word_energy(estimator, depth, width, datawidth, dram_type, node)


def storage_level(
    comp: Cur, name: str, cls: str, subclass: str, attrs: dict[str, Cur], st: WalkState
) -> StorageLevel:
    kind = "DRAM" if cls.upper() == "DRAM" else "SRAM"
    dw_cur = first_attr(attrs, "datawidth", "word-bits", "word_bits")
    if dw_cur is not None:
        datawidth = dw_cur.int(minimum=1)
    else:
        comp.warn("no datawidth given; assuming 8 bits per word")
        datawidth = 8
    depth_cur = first_attr(attrs, "depth", "data_storage_depth")
    depth = depth_cur.int(minimum=1) if depth_cur is not None else None
    bs_cur = first_attr(attrs, "block_size", "block-size")
    block = bs_cur.int(minimum=1) if bs_cur is not None else 1
    width_cur = first_attr(attrs, "width", "data_storage_width")
    width = width_cur.int(minimum=1) if width_cur is not None else datawidth * block
    if width < datawidth:
        # one access moves width / datawidth words (Timeloop's block size): at least one word
        raise (dw_cur if dw_cur is not None else comp).error(
            f"datawidth {datawidth} bits exceeds the level's width {width} bits (expected "
            "datawidth <= width: one access must move at least one whole word)"
        )
    if kind != "DRAM":
        low = (cls + " " + subclass).lower()
        if "rf" in low.split("_") or "regfile" in low or "register" in low or depth == 1:
            kind = "regfile"
        if depth is None:
            comp.warn("no depth given for a non-DRAM level: treated as unbounded")
    if kind == "DRAM":
        depth = None

    def bw(key: str) -> float | None:
        c = first_attr(attrs, key)
        return None if c is None else c.num(minimum=0, strict=True) * datawidth

    type_cur = first_attr(attrs, "type")
    dram_type = type_cur.str() if type_cur is not None else None
    estimator = et.estimator_class(cls, subclass, depth)
    given = _given_energies(attrs, "read_energy", "write_energy")
    if given is not None:
        read_e, write_e = given
        source = "spec"
    else:
        read_e, write_e, source = derive_energies(
            kind, depth, width, datawidth, dram_type, estimator, node_nm(st.technology)
        )
    md, mw, m_read, m_write = _metadata(attrs, kind, dram_type, st.technology)
    leak = first_attr(attrs, "leakage")
    area = first_attr(attrs, "area_um2", "area")
    lc, keep, bypass = level_constraints(comp.opt("constraints"))
    try:
        return StorageLevel(
            name=name,
            kind=kind,
            depth=depth,
            width=width,
            datawidth=datawidth,
            instances=st.instances,
            mesh_x=st.mesh_x,
            read_bandwidth=bw("read_bandwidth"),
            write_bandwidth=bw("write_bandwidth"),
            read_energy=read_e,
            write_energy=write_e,
            metadata_read_energy=m_read,
            metadata_write_energy=m_write,
            metadata_depth=md,
            metadata_width=mw,
            metadata_datawidth=(
                mdw.int(minimum=0) if (mdw := first_attr(attrs, "metadata_datawidth")) else 0
            ),
            shared_bandwidth=bw("shared_bandwidth"),
            leakage=leak.num(minimum=0) if leak is not None else 0.0,
            area_um2=area.num(minimum=0) if area is not None else None,
            keep=keep,
            bypass=bypass,
            constraints=lc,
            energy_source=source,
            estimator=estimator,
        )
    except ValidationError as err:
        raise validation_to_spec_error(err, comp, {}) from None


def _given_energies(attrs: dict[str, Cur], read: str, write: str) -> tuple[float, float] | None:
    """(read, write) pJ written in the spec under the attributes ``read`` / ``write`` (a missing
    write energy equals the read energy, and the reverse), or None when neither is given."""
    r_cur, w_cur = first_attr(attrs, read), first_attr(attrs, write)
    if r_cur is None and w_cur is None:
        return None
    first = r_cur if r_cur is not None else w_cur
    assert first is not None
    r = first.num(minimum=0)
    return r, (w_cur.num(minimum=0) if w_cur is not None else r)


def _metadata(
    attrs: dict[str, Cur], kind: str, dram_type: str | None, technology: str | None
) -> tuple[int, int, float, float]:
    """(depth, width in bits, read pJ, write pJ) of a level's metadata storage: energies from
    the spec, else DRAM's per-bit energy (width 1) for a DRAM with metadata, else the
    estimators' per-bit metadata energy at the design's node."""
    md_cur = first_attr(attrs, "metadata_storage_depth")
    mw_cur = first_attr(attrs, "metadata_storage_width")
    md = md_cur.int(minimum=0) if md_cur is not None else 0
    mw = mw_cur.int(minimum=0) if mw_cur is not None else 0
    given = _given_energies(attrs, "metadata_read_energy", "metadata_write_energy")
    if given is not None:
        m_read, m_write = given
    elif kind == "DRAM" and mw > 0:
        m_read = m_write = et.dram_word_energy(dram_type, 1)[0]
    else:
        m_read, m_write = et.metadata_energy_per_bit(md, mw, node_nm(technology))
    return md, mw, m_read, m_write


def compute_unit(
    comp: Cur, name: str, cls: str, subclass: str, attrs: dict[str, Cur], st: WalkState
) -> ComputeUnit:
    dw_cur = first_attr(attrs, "datawidth", "multiplier_width")
    datawidth = dw_cur.int(minimum=1) if dw_cur is not None else 8
    mw_cur = first_attr(attrs, "multiplier_width")
    mult = mw_cur.int(minimum=1) if mw_cur is not None else None
    me = first_attr(attrs, "mac_energy")
    ge = first_attr(attrs, "gated_mac_energy")
    clk = first_attr(attrs, "clock_ghz")
    nclk = first_attr(attrs, "nominal_clock_ghz")
    leak = first_attr(attrs, "leakage")
    area = first_attr(attrs, "area_um2", "area")
    estimator = et.mac_class(cls, subclass)
    node = node_nm(st.technology)
    try:
        return ComputeUnit(
            name=name,
            instances=st.instances,
            mesh_x=st.mesh_x,
            datawidth=datawidth,
            mac_energy=me.num(minimum=0)
            if me is not None
            else et.mac_energy(mult or datawidth, node, estimator),
            gated_mac_energy=ge.num(minimum=0) if ge is not None else None,
            clock_ghz=clk.num(minimum=0, strict=True) if clk is not None else 1.0,
            nominal_clock_ghz=nclk.num(minimum=0, strict=True) if nclk is not None else None,
            leakage=leak.num(minimum=0) if leak is not None else 0.0,
            area_um2=area.num(minimum=0) if area is not None else None,
            energy_source="spec" if me is not None else et.TABLE_SOURCE,
            estimator=estimator,
            multiplier_width=mult,
        )
    except ValidationError as err:
        raise validation_to_spec_error(err, comp, {}) from None


def technology_attr(cur: Cur) -> str:
    """A ``technology`` attribute, checked by the estimators' node parser (7-180 nm)."""
    try:
        check_node(node_nm(cur.value))
    except SpecError as err:
        raise cur.error(err.problem) from None
    return cur.str()


def merged_attributes(
    node: Cur, st: WalkState, keys: set[str], own_only: bool = False
) -> dict[str, Cur]:
    """Merged attributes: inherited from containers, then the node's own (which win)."""
    merged = {} if own_only else dict(st.inherited)
    a = node.opt("attributes")
    if a is not None:
        a.as_map()
        a.warn_unused(keys, silent=TIMELOOP_ATTRIBUTES)
        for k, c in a.items():
            merged[k] = c
    return merged
