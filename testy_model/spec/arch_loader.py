"""Timeloop-style architecture YAML -> :class:`Architecture`.

Accepted forms (both may carry our ``sparsity:`` and ``tasd_unit:`` blocks beside
``architecture:``):

- **v0.4** ``architecture: {nodes: [...]}`` with ``!Container`` (``spatial: {meshX, meshY}``
  multiplies the instances of everything after it), ``!Component`` (storage or compute),
  ``!Parallel`` (a group of components at the same place), ``!Hierarchical`` (a nested node list)
  and ``!Nothing`` (skipped).
- **v0.3** ``architecture: {subtree: [...]}`` with ``local:`` component lists, ``Name[0..N]``
  replication (N+1 copies) and component ``meshX``/``meshY`` attributes (cumulative, as in
  Timeloop); ``data_storage_depth/width`` accepted for ``depth/width``.

Conversions (units as in :mod:`testy_model.spec.arch`):

- ``instances`` = product of every fan-out above the component (containers' meshes, v0.3
  replication counts); ``mesh_x`` = product of the X fan-outs (v0.3: the ``meshX`` attribute).
- A ``!Parallel`` group becomes consecutive levels, in listed order (outer to inner, the order
  Timeloop's mapper writes them), with the same instances (fan-out 1 between them); each keeps the
  tensors of its ``constraints.dataspace``. Because each keeps a disjoint tensor set, every tensor
  sees exactly the hierarchy of the parallel buffers.
- Bandwidths: Timeloop gives words/cycle; we store bits/cycle = words/cycle x datawidth.
- Energies (pJ per word): our ``read_energy``/``write_energy`` attributes when given (a missing
  write energy equals the read energy), else :mod:`testy_model.estimators.energy`, by the
  estimator class of ``class``/``subclass`` (``energy.estimator_class``, recorded in
  ``StorageLevel.estimator``) at the node of ``technology`` (its nominal supply): DRAM by type
  per bit x datawidth; SRAM, register file and register by their smooth fits; a non-DRAM level
  without depth is unbounded and priced as a 16384-row macro. ``technology`` must be a node the
  estimators read (``"45nm"``, ``"7 nm"``, 45, ``"0.045um"``; 7-180 nm).
- ``datawidth`` missing: inherited from an enclosing container, else 8 bits (warned). ``width``
  missing: ``datawidth x block_size`` (``block_size`` default 1).
- Compute: a component whose class is ``compute``/``intmac``/``fpmac`` (or ends in ``mac``);
  datawidth from ``datawidth`` or ``multiplier_width``; pJ/MAC from ``mac_energy`` or the MAC
  estimator (integer, or floating point for an ``fpmac`` class) at ``multiplier_width`` (else
  the datawidth). ``clock_ghz`` (default 1.0) and ``nominal_clock_ghz`` (the clock at which the
  energies hold; default the ``clock_ghz`` written here, see
  :class:`~testy_model.spec.arch.ComputeUnit`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from testy_model.errors import SpecError
from testy_model.estimators import energy as et
from testy_model.estimators.node import DEFAULT_NODE_NM, check_node, node_nm
from testy_model.spec.arch import (
    Architecture,
    ComputeUnit,
    LevelConstraints,
    SparsitySupport,
    StorageLevel,
    TasdUnit,
)
from testy_model.spec.cursor import Cur, Doc, validation_to_spec_error
from testy_model.spec.located import did_you_mean
from testy_model.spec.overrides import apply_overrides, parse_override
from testy_model.spec.yaml_io import KNOWN_TOP_LEVEL

_STORAGE_KEYS = {
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
_COMPUTE_KEYS = {
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

_REPL_RE = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


@dataclass
class _State:
    """What the walk has found so far and the fan-out in force."""

    instances: int = 1
    mesh_x: int = 1
    inherited: dict[str, Cur] = field(default_factory=dict)
    levels: list[StorageLevel] = field(default_factory=list)
    computes: list[tuple[Cur, ComputeUnit]] = field(default_factory=list)
    container_parents: dict[str, str] = field(default_factory=dict)
    technology: str | None = None
    compound_classes: frozenset[str] = frozenset()


def _attr(attrs: dict[str, Cur], *names: str) -> Cur | None:
    for n in names:
        c = attrs.get(n)
        if c is not None and c.value is not None:
            return c
    return None


def _is_compute(cls: str, subclass: str) -> bool:
    c, s = cls.lower(), subclass.lower()
    return c in {"compute", "intmac", "fpmac", "mac"} or c.endswith("mac") or s.endswith("mac")


def _check_class(comp: Cur, cls: str, st: _State) -> None:
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


def _parse_factors(cur: Cur) -> dict[str, int]:
    """Timeloop factor lists: ``"K=1 M<=8"``, ``[R=1, S=1]``, ``{K: 1}``, ``"M16 N1"``.

    ``<=`` bounds are stored negative (``M<=8`` -> -8); ``>=`` bounds are ignored (warned).
    """
    v = cur.value
    out: dict[str, int] = {}
    if v is None:
        return out
    if isinstance(v, dict):
        for k, c in cur.items():
            out[k] = c.int(minimum=0)
        return out
    if isinstance(v, list):
        tokens = [(c, c.str()) for c in cur.elems()]
    elif isinstance(v, str):
        tokens = [(cur, t) for t in v.replace(",", " ").split()]
    else:
        raise cur.error(f"expected factors like 'K=16 M=1' or [K=16, M=1], got {v!r}")
    for c, tok in tokens:
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z_0-9]*?)\s*(<=|>=|=)?\s*(\d+)\s*", tok)
        if m is None:
            raise c.error(f"cannot read factor {tok!r}; expected DIM=N, DIM<=N or DIMN")
        dim, op, num = m.group(1), m.group(2) or "=", int(m.group(3))
        if op == ">=":
            c.warn(f"lower bound {tok!r} is not used by the model (ignored)")
            continue
        out[dim] = -num if op == "<=" else num
    return out


def parse_permutation(cur: Cur) -> tuple[str, ...]:
    """A permutation: ``"KMN"`` (one letter per dimension) or a list of names."""
    v = cur.value
    if v is None:
        return ()
    if isinstance(v, str):
        return tuple(ch for ch in v if not ch.isspace() and ch != ",")
    return cur.str_list()


def _constraints(
    cur: Cur | None,
) -> tuple[LevelConstraints, tuple[str, ...] | None, tuple[str, ...]]:
    """Component constraints -> (temporal LevelConstraints, keep, bypass)."""
    if cur is None:
        return LevelConstraints(), None, ()
    cur.as_map()
    cur.warn_unused({"temporal", "spatial", "dataspace"})
    tf: dict[str, int] = {}
    tp: tuple[str, ...] = ()
    sf: dict[str, int] = {}
    sp: tuple[str, ...] = ()
    split: int | None = None
    keep: tuple[str, ...] | None = None
    bypass: tuple[str, ...] = ()
    t = cur.opt("temporal")
    if t is not None:
        t.as_map().warn_unused({"factors", "permutation"})
        if (f := t.opt("factors")) is not None:
            tf = _parse_factors(f)
        if (p := t.opt("permutation")) is not None:
            tp = parse_permutation(p)
    s = cur.opt("spatial")
    if s is not None:
        sf, sp, split = _spatial_constraints(s)
    d = cur.opt("dataspace")
    if d is not None:
        d.as_map().warn_unused({"keep", "bypass"})
        if (k := d.opt("keep")) is not None:
            keep = k.str_list()
        if (b := d.opt("bypass")) is not None:
            bypass = b.str_list()
        both = set(keep or ()) & set(bypass)
        if both:
            raise d.error(f"tensors {sorted(both)} are both kept and bypassed")
    lc = LevelConstraints(
        temporal_factors=tf,
        temporal_permutation=tp,
        spatial_factors=sf,
        spatial_permutation=sp,
        spatial_split=split,
    )
    return lc, keep, bypass


def _spatial_constraints(s: Cur) -> tuple[dict[str, int], tuple[str, ...], int | None]:
    s.as_map().warn_unused({"factors", "permutation", "split"})
    sf = _parse_factors(s.opt("factors")) if s.opt("factors") is not None else {}
    sp = parse_permutation(s.opt("permutation")) if s.opt("permutation") is not None else ()
    split_cur = s.opt("split")
    split = split_cur.int(minimum=0) if split_cur is not None else None
    return sf, sp, split


def _storage_level(
    comp: Cur, name: str, cls: str, subclass: str, attrs: dict[str, Cur], st: _State
) -> StorageLevel:
    kind = "DRAM" if cls.upper() == "DRAM" else "SRAM"
    dw_cur = _attr(attrs, "datawidth", "word-bits", "word_bits")
    if dw_cur is not None:
        datawidth = dw_cur.int(minimum=1)
    else:
        comp.warn("no datawidth given; assuming 8 bits per word")
        datawidth = 8
    depth_cur = _attr(attrs, "depth", "data_storage_depth")
    depth = depth_cur.int(minimum=1) if depth_cur is not None else None
    bs_cur = _attr(attrs, "block_size", "block-size")
    block = bs_cur.int(minimum=1) if bs_cur is not None else 1
    width_cur = _attr(attrs, "width", "data_storage_width")
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
        c = _attr(attrs, key)
        return None if c is None else c.num(minimum=0, strict=True) * datawidth

    type_cur = _attr(attrs, "type")
    dram_type = type_cur.str() if type_cur is not None else None
    estimator = et.estimator_class(cls, subclass, depth)
    re_cur, we_cur = _attr(attrs, "read_energy"), _attr(attrs, "write_energy")
    if re_cur is not None or we_cur is not None:
        first = re_cur if re_cur is not None else we_cur
        assert first is not None
        read_e = first.num(minimum=0)
        write_e = we_cur.num(minimum=0) if we_cur is not None else read_e
        source = "spec"
    else:
        read_e, write_e, source = derive_energies(
            kind, depth, width, datawidth, dram_type, estimator, node_nm(st.technology)
        )
    md_cur = _attr(attrs, "metadata_storage_depth")
    mw_cur = _attr(attrs, "metadata_storage_width")
    md = md_cur.int(minimum=0) if md_cur is not None else 0
    mw = mw_cur.int(minimum=0) if mw_cur is not None else 0
    mre, mwe = _attr(attrs, "metadata_read_energy"), _attr(attrs, "metadata_write_energy")
    if mre is not None or mwe is not None:
        first = mre if mre is not None else mwe
        assert first is not None
        m_read = first.num(minimum=0)
        m_write = mwe.num(minimum=0) if mwe is not None else m_read
    elif kind == "DRAM" and mw > 0:
        m_read = m_write = et.dram_word_energy(dram_type, 1)[0]
    else:
        m_read, m_write = et.metadata_energy_per_bit(md, mw, node_nm(st.technology))
    leak = _attr(attrs, "leakage")
    area = _attr(attrs, "area_um2", "area")
    lc, keep, bypass = _constraints(comp.opt("constraints"))
    try:
        return StorageLevel(
            name=name,
            kind=kind,  # type: ignore[arg-type]
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
                _attr(attrs, "metadata_datawidth").int(minimum=0)  # type: ignore[union-attr]
                if _attr(attrs, "metadata_datawidth") is not None
                else 0
            ),
            shared_bandwidth=bw("shared_bandwidth"),
            leakage=leak.num(minimum=0) if leak is not None else 0.0,
            area_um2=area.num(minimum=0) if area is not None else None,
            keep=keep,
            bypass=bypass,
            constraints=lc,
            energy_source=source,
            estimator=estimator,  # type: ignore[arg-type]
        )
    except ValidationError as err:
        raise validation_to_spec_error(err, comp, {}) from None


def _compute_unit(
    comp: Cur, name: str, cls: str, subclass: str, attrs: dict[str, Cur], st: _State
) -> ComputeUnit:
    dw_cur = _attr(attrs, "datawidth", "multiplier_width")
    datawidth = dw_cur.int(minimum=1) if dw_cur is not None else 8
    mw_cur = _attr(attrs, "multiplier_width")
    mult = mw_cur.int(minimum=1) if mw_cur is not None else None
    me = _attr(attrs, "mac_energy")
    ge = _attr(attrs, "gated_mac_energy")
    clk = _attr(attrs, "clock_ghz")
    nclk = _attr(attrs, "nominal_clock_ghz")
    leak = _attr(attrs, "leakage")
    area = _attr(attrs, "area_um2", "area")
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
            estimator=estimator,  # type: ignore[arg-type]
            multiplier_width=mult,
        )
    except ValidationError as err:
        raise validation_to_spec_error(err, comp, {}) from None


def _technology(cur: Cur) -> str:
    """A ``technology`` attribute, checked by the estimators' node parser (7-180 nm)."""
    try:
        check_node(node_nm(cur.value))
    except SpecError as err:
        raise cur.error(err.problem) from None
    return cur.str()


def _attributes(node: Cur, st: _State, keys: set[str], own_only: bool = False) -> dict[str, Cur]:
    """Merged attributes: inherited from containers, then the node's own (which win)."""
    merged = {} if own_only else dict(st.inherited)
    a = node.opt("attributes")
    if a is not None:
        a.as_map()
        a.warn_unused(keys, silent=TIMELOOP_ATTRIBUTES)
        for k, c in a.items():
            merged[k] = c
    return merged


def _mesh(cur: Cur | None) -> tuple[int, int]:
    if cur is None:
        return 1, 1
    cur.as_map().warn_unused({"meshX", "meshY"})
    mx, my = cur.opt("meshX"), cur.opt("meshY")
    return (mx.int(minimum=1) if mx else 1), (my.int(minimum=1) if my else 1)


def _component(comp: Cur, st: _State, v03: bool) -> None:
    comp.as_map()
    name = comp.req("name").str()
    cls = comp.opt("class").str() if comp.opt("class") is not None else ""
    subclass = comp.opt("subclass").str() if comp.opt("subclass") is not None else ""
    _check_class(comp, cls, st)
    compute = _is_compute(cls, subclass)
    comp.warn_unused(
        {"name", "class", "subclass", "attributes", "constraints", "spatial", "required_actions"},
        silent={"sparse_optimizations", "enabled"},
    )
    m = _REPL_RE.match(name)
    if m:
        count = int(m.group("hi")) - int(m.group("lo")) + 1
        name = m.group("base")
        st.instances *= count
        st.mesh_x *= count
    mx, my = _mesh(comp.opt("spatial"))
    st.instances *= mx * my
    st.mesh_x *= mx
    attrs = _attributes(comp, st, _COMPUTE_KEYS if compute else _STORAGE_KEYS)
    if v03:
        mxc, myc = _attr(attrs, "meshX"), _attr(attrs, "meshY")
        if mxc is not None or myc is not None:
            mesh_x = mxc.int(minimum=1) if mxc is not None else None
            mesh_y = myc.int(minimum=1) if myc is not None else None
            if mesh_x is None:
                mesh_x = st.instances // mesh_y if mesh_y else st.instances
            if mesh_y is None:
                mesh_y = st.instances // mesh_x
            if mesh_x * mesh_y != st.instances:
                raise (mxc or myc).error(  # type: ignore[union-attr]
                    f"meshX x meshY = {mesh_x} x {mesh_y} = {mesh_x * mesh_y}, but {name!r} has "
                    f"{st.instances} instances from the replication above; expected equal"
                )
            st.mesh_x = mesh_x
    tech = _attr(attrs, "technology")
    if tech is not None and st.technology is None:
        st.technology = _technology(tech)
    if compute:
        if comp.opt("constraints") is not None:
            comp.child("constraints").warn("constraints on a compute unit are not used")
        st.computes.append((comp, _compute_unit(comp, name, cls, subclass, attrs, st)))
        return
    if name in {x.name for x in st.levels}:
        raise comp.child("name").error(f"duplicate level name {name!r}; level names must be unique")
    level = _storage_level(comp, name, cls, subclass, attrs, st)
    st.levels.append(level)


def _container(node: Cur, st: _State, name: str, spatial: tuple[int, int]) -> None:
    parent = st.levels[-1].name if st.levels else None
    mx, my = spatial
    if mx * my > 1 and parent is None:
        raise node.error(
            f"container {name!r} fans out {mx * my}x but no storage level sits above it; "
            "expected a storage component (e.g. DRAM) before it"
        )
    if parent is not None:
        st.container_parents[name] = parent
    st.instances *= mx * my
    st.mesh_x *= mx
    cons = node.opt("constraints")
    if cons is not None and parent is not None:
        cons.as_map().warn_unused({"spatial"})
        s = cons.opt("spatial")
        if s is not None:
            sf, sp, split = _spatial_constraints(s)
            idx = len(st.levels) - 1
            old = st.levels[idx].constraints
            new = old.model_copy(
                update={
                    "spatial_factors": {**old.spatial_factors, **sf},
                    "spatial_permutation": sp or old.spatial_permutation,
                    "spatial_split": split if split is not None else old.spatial_split,
                    # per mesh axis (see LevelConstraints): X-only, Y-only, else both
                    "spatial_factors_x": (
                        {**(old.spatial_factors_x or {}), **sf}
                        if not (my > 1 and mx == 1)
                        else dict(old.spatial_factors_x or {})
                    ),
                    "spatial_factors_y": (
                        {**(old.spatial_factors_y or {}), **sf}
                        if not (mx > 1 and my == 1)
                        else dict(old.spatial_factors_y or {})
                    ),
                }
            )
            st.levels[idx] = st.levels[idx].model_copy(update={"constraints": new})
    attrs = node.opt("attributes")
    if attrs is not None:
        attrs.as_map()
        for k, c in attrs.items():
            if k == "technology" and st.technology is None:
                st.technology = _technology(c)
            st.inherited[k] = c


def _walk_v04(nodes: Cur, st: _State) -> None:
    for node in nodes.as_list().elems():
        node.as_map()
        tag = getattr(node.value, "tag", "") or (
            "Hierarchical"
            if "nodes" in node.value
            else "Component"
            if "class" in node.value
            else "Container"
        )
        if tag in ("Parallel", "Hierarchical", "Pipelined"):
            node.warn_unused({"nodes"})
            if tag == "Parallel":
                for sub in node.req("nodes").as_list().elems():
                    sub_tag = getattr(sub.value, "tag", "Component")
                    if sub_tag == "Nothing":  # Timeloop's placeholder: nothing to model
                        continue
                    _component(sub, st, v03=False)
            else:
                _walk_v04(node.req("nodes"), st)
        elif tag == "Container":
            node.warn_unused({"name", "attributes", "spatial", "constraints"})
            _container(node, st, node.req("name").str(), _mesh(node.opt("spatial")))
        elif tag == "Component":
            _component(node, st, v03=False)
        elif tag == "Nothing":  # Timeloop's placeholder: nothing to model
            pass
        else:
            raise node.error(
                f"unknown node kind !{tag}; expected !Container, !Component, !Parallel, "
                "!Hierarchical or !Nothing"
            )


def _walk_v03(subtrees: Cur, st: _State) -> None:
    items = list(subtrees.as_list().elems())
    if len(items) > 1:
        raise items[1].error(
            "more than one subtree at one level; expected a single linear hierarchy"
        )
    for sub in items:
        sub.as_map().warn_unused({"name", "attributes", "local", "subtree"})
        raw = sub.req("name").str()
        m = _REPL_RE.match(raw)
        count = int(m.group("hi")) - int(m.group("lo")) + 1 if m else 1
        if m and int(m.group("hi")) < int(m.group("lo")):
            raise sub.child("name").error(f"bad replication range in {raw!r}")
        name = m.group("base") if m else raw
        _container(sub, st, name, (count, 1))
        loc = sub.opt("local")
        if loc is not None:
            for comp in loc.as_list().elems():
                _component(comp, st, v03=True)
        nxt = sub.opt("subtree")
        if nxt is not None:
            _walk_v03(nxt, st)


def _sparsity(cur: Cur | None) -> SparsitySupport:
    if cur is None:
        return SparsitySupport()
    cur.as_map()
    try:
        return SparsitySupport.model_validate(cur.value)
    except ValidationError as err:
        raise validation_to_spec_error(err, cur) from None


def _tasd(cur: Cur | None) -> TasdUnit | None:
    if cur is None:
        return None
    cur.as_map()
    try:
        return TasdUnit.model_validate(cur.value)
    except ValidationError as err:
        raise validation_to_spec_error(err, cur) from None


def warn_unknown_top(root: Cur, known: frozenset[str] | set[str]) -> None:
    """At most one summary warning for unknown top-level blocks."""
    if not isinstance(root.value, dict):
        return
    unknown = sorted(k for k in root.value if k not in known)
    if unknown:
        root.child(unknown[0]).warn(f"top-level blocks {unknown} are not used (ignored)")


def _compound_classes(root: Cur) -> frozenset[str]:
    """Lower-case names of the compound components a file defines (``compound_components:``
    with ``classes:`` or a list of ``{name: ...}``)."""
    cc = root.opt("compound_components")
    if cc is None:
        return frozenset()
    body = cc.value.get("classes", cc.value) if isinstance(cc.value, dict) else cc.value
    names = set()
    if isinstance(body, list):
        for item in body:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                names.add(item["name"].lower())
    return frozenset(names)


def design_name(file: str) -> str:
    """A design's default name: the file stem, or the folder name for generic stems
    (``arch.yaml``, ``aggregated_input.yaml``)."""
    p = Path(file)
    if p.stem in ("arch", "architecture", "aggregated_input") and p.parent.name:
        return p.parent.name
    return p.stem


def arch_from_doc(doc: Doc) -> Architecture:
    """Build an :class:`Architecture` from a loaded YAML document (see module docstring)."""
    root = doc.root()
    if not root.is_map():
        raise root.error("expected a mapping with an 'architecture' block")
    a = root.req("architecture").as_map()
    warn_unknown_top(root, KNOWN_TOP_LEVEL)
    st = _State(compound_classes=_compound_classes(root))
    if a.has("nodes"):
        a.warn_unused({"nodes", "version"})
        _walk_v04(a.req("nodes"), st)
    elif a.has("subtree"):
        a.warn_unused({"subtree", "version"})
        _walk_v03(a.req("subtree"), st)
    else:
        raise a.error("expected 'nodes' (Timeloop v0.4) or 'subtree' (v0.3)")
    body = a.child("nodes") if a.has("nodes") else a.child("subtree")
    if not st.levels:
        raise body.error("no storage component found; expected at least one (e.g. DRAM)")
    if not st.computes:
        raise body.error("no compute component found; expected one with class intmac/compute")
    if len(st.computes) > 1:
        raise st.computes[1][0].error(
            f"more than one compute component ({[c.name for _, c in st.computes]}); expected one"
        )
    sparsity = _sparsity(root.opt("sparsity"))
    for op, cur_name in (("A", sparsity.A), ("B", sparsity.B)):
        lvl = cur_name.metadata_level
        if lvl is not None and lvl not in {x.name for x in st.levels}:
            raise root.child("sparsity").error(
                f"{op}.metadata_level {lvl!r} is not a level; levels are "
                f"{[x.name for x in st.levels]}"
            )
    name_cur = root.opt("name")
    try:
        return Architecture(
            name=name_cur.str() if name_cur is not None else design_name(doc.file),
            technology=st.technology or "45nm",
            levels=tuple(st.levels),
            compute=st.computes[0][1],
            sparsity=sparsity,
            tasd_unit=_tasd(root.opt("tasd_unit")),
            source=doc.file,
            container_parents=st.container_parents,
        )
    except ValidationError as err:
        raise validation_to_spec_error(err, a, {}) from None


def _rederive(old: Architecture, new: Architecture) -> Architecture:
    """Re-derive the estimated energies an override made stale: a level's data energies when
    its geometry (depth, width, datawidth, kind) or the process node changed, the MAC energy
    when the node or the multiplier width changed. Energies written in the spec or taken from
    an ERT (``energy_source`` not the estimators'), or changed by the override itself, stay.
    (Estimated metadata energies are kept as loaded.)"""
    node = node_nm(new.technology)
    moved = node != node_nm(old.technology)
    levels = []
    for lo, ln in zip(old.levels, new.levels, strict=False):
        geom = (lo.depth, lo.width, lo.datawidth, lo.kind)
        same_e = (lo.read_energy, lo.write_energy) == (ln.read_energy, ln.write_energy)
        changed = moved or geom != (ln.depth, ln.width, ln.datawidth, ln.kind)
        if ln.energy_source.startswith(et.TABLE_SOURCE) and same_e and changed:
            if ln.kind == "DRAM":
                per_bit = lo.read_energy / lo.datawidth
                r = w = per_bit * ln.datawidth
                src = ln.energy_source
            else:
                r, w, src = derive_energies(
                    ln.kind, ln.depth, ln.width, ln.datawidth, None, ln.estimator, node
                )
            ln = ln.model_copy(update={"read_energy": r, "write_energy": w, "energy_source": src})
        levels.append(ln)
    if len(new.levels) != len(old.levels):
        return new
    c_old, c = old.compute, new.compute
    width = c.multiplier_width or c.datawidth
    if (
        c.energy_source == et.TABLE_SOURCE
        and c.mac_energy == c_old.mac_energy
        and (moved or width != (c_old.multiplier_width or c_old.datawidth))
    ):
        c = c.model_copy(update={"mac_energy": et.mac_energy(width, node, c.estimator)})
    return new.model_copy(update={"levels": tuple(levels), "compute": c})


#: The derived override key that resizes the PE array (see :func:`scale_pes`).
PES_KEY = "array.pes"


def _pe_block(arch: Architecture) -> tuple[int, int, int]:
    """(first scaled level index, instances P above the array, X mesh of that parent).

    The scaled block is the innermost run of levels whose ``instances`` equal the compute
    unit's; its parent is the level just outside it (P = its instances). When no level has
    fewer instances than the compute unit (no fan-out anywhere), the block is empty and the
    parent is the design as a whole (P = 1, X mesh 1)."""
    old = arch.compute.instances
    first = len(arch.levels)
    while first > 0 and arch.levels[first - 1].instances == old:
        first -= 1
    if first == 0:
        return len(arch.levels), 1, 1
    parent = arch.levels[first - 1]
    return first, parent.instances, parent.mesh_x


def scale_pes(arch: Architecture, pes: object) -> Architecture:
    """Resize the PE array: the derived override ``array.pes=N`` (N MAC units in all).

    Definition (instances are totals over the whole design, as in :mod:`~testy_model.spec.arch`):
    let C be the compute unit's instances and the *PE block* the innermost run of storage levels
    whose instances equal C (in ``stc_2of4_tasd.yaml``: ``LRF``, C = 1024); its parent is the
    level just outside the block (``RF``, P = 4 instances). Then

    - ``compute.instances = N`` and every level of the PE block gets ``instances = N``
      (peak MACs per cycle = N);
    - the fan-out below the parent becomes f = N / P (was C / P), so N must be a positive
      multiple of P, else :class:`SpecError` naming the valid values;
    - its X split: the old X fan-out fx = mesh_x(block) / mesh_x(parent) is kept when it
      divides f (growth goes to Y), else it becomes gcd(f, fx);
      ``mesh_x = mesh_x(parent) · fx`` for the block and the compute unit.

    With no fan-out anywhere (every level has C instances) the block is empty: only the compute
    unit scales, P = 1. Estimated energies do not depend on instances, so none is re-derived.
    """
    first, parent_inst, parent_mx = _pe_block(arch)
    if isinstance(pes, bool) or not isinstance(pes, int) or pes < 1 or pes % parent_inst:
        if parent_inst == 1:
            expected = "a positive integer (valid values: 1, 2, 3, ...)"
        else:
            parent = arch.levels[first - 1].name
            multiples = ", ".join(str(parent_inst * k) for k in (1, 2, 3, 4))
            expected = (
                f"a positive integer multiple of the {parent_inst} instances of level "
                f"{parent!r} above the PE array (valid values: {multiples}, ...)"
            )
        raise SpecError(
            f"override {PES_KEY}={pes!r}: expected {expected}",
            key_path=PES_KEY,
        )
    old_mx = arch.compute.mesh_x
    old_fx = max(1, old_mx // parent_mx)
    fan = pes // parent_inst
    fx = old_fx if fan % old_fx == 0 else math.gcd(fan, old_fx)
    mesh_x = parent_mx * fx
    levels = tuple(
        lv.model_copy(update={"instances": pes, "mesh_x": mesh_x}) if i >= first else lv
        for i, lv in enumerate(arch.levels)
    )
    compute = arch.compute.model_copy(update={"instances": pes, "mesh_x": mesh_x})
    try:
        return Architecture.model_validate({**dict(arch), "levels": levels, "compute": compute})
    except ValidationError as err:  # pragma: no cover - the construction keeps divisibility
        msg = str(err.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        raise SpecError(f"override {PES_KEY}={pes}: {msg}", key_path=PES_KEY) from None


#: Level fields given in words per cycle in files and overrides (stored in bits per cycle).
BANDWIDTH_FIELDS = ("read_bandwidth", "write_bandwidth")


def _bandwidth_override(arch: Architecture, parts: list[str], value: object, text: str) -> str:
    """The override ``levels.L.read_bandwidth=V`` (V in words/cycle, the file's unit) as the
    typed model's bits/cycle: ``V · datawidth(L)``; ``null`` keeps it unlimited."""
    head = parts[1]
    names = [lv.name for lv in arch.levels]
    if head in names:
        level = arch.levels[names.index(head)]
    elif head.lstrip("-").isdigit() and -len(names) <= int(head) < len(names):
        level = arch.levels[int(head)]
    else:
        raise SpecError(
            f"override {text!r}: no level {head!r}{did_you_mean(head, names)}; levels are {names}"
        )
    if value is None:
        return f"levels.{level.name}.{parts[2]}=null"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SpecError(
            f"override {text!r}: expected a bandwidth > 0 in words/cycle (or null for unlimited)"
        )
    return f"levels.{level.name}.{parts[2]}={float(value) * level.datawidth!r}"


def apply_arch_overrides(arch: Architecture, overrides: list[str] | None) -> Architecture:
    """``arch`` with dotted ``KEY.PATH=VALUE`` overrides applied, as ``load_arch`` does.

    Keys are the typed model's fields (``levels.SMEM.depth=4096``, ``compute.instances=512``,
    ``sparsity.A.patterns=[1:4,2:4]``; see :func:`~testy_model.spec.yaml_io.apply_overrides`)
    plus the derived key ``array.pes=N`` (:func:`scale_pes`: compute and PE-block instances
    together). Bandwidths (``levels.L.read_bandwidth`` / ``write_bandwidth``) are in **words per
    cycle**, the unit of architecture files, converted with the level's datawidth (after every
    other override, so a datawidth set in the same call counts). Overrides apply in order;
    consecutive plain ones are validated together, so ``compute.instances`` and
    ``levels.LRF.instances`` may be changed in one go. Afterwards estimated energies of every
    level whose geometry (depth, width, datawidth, kind) changed, and of every level and the MAC
    when ``technology`` changed, are re-derived by the same estimator class (pJ per word;
    :func:`_rederive`). Raises :class:`SpecError`.
    """
    if not overrides:
        return arch
    new: Architecture = arch
    plain: list[str] = []
    bandwidths: list[tuple[list[str], object, str]] = []

    def flush() -> None:
        nonlocal new
        if plain:
            got = apply_overrides(new, plain)
            if not isinstance(got, Architecture):  # pragma: no cover - keeps the type
                raise SpecError("overrides did not produce an architecture")
            new = got
            plain.clear()

    for text in overrides:
        parts, value = parse_override(text)
        if ".".join(parts) == PES_KEY:
            flush()
            new = scale_pes(new, value)
        elif len(parts) == 3 and parts[0] == "levels" and parts[2] in BANDWIDTH_FIELDS:
            bandwidths.append((parts, value, text))
        else:
            plain.append(text)
    flush()
    if bandwidths:
        plain.extend(_bandwidth_override(new, p, v, t) for p, v, t in bandwidths)
        flush()
    return _rederive(arch, new)


def load_arch(path: str | Path, overrides: list[str] | None = None) -> Architecture:
    """Load a Timeloop-style architecture file (v0.4 ``nodes:`` or v0.3 ``subtree:``, or a
    Sparseloop aggregated input) with our ``sparsity:``/``tasd_unit:`` blocks.

    ``overrides`` are dotted ``KEY.PATH=VALUE`` edits on the typed model (``levels.GLB.depth=4096``,
    ``compute.instances=512``, ``sparsity.A.patterns=[1:4,2:4]``) and the derived ``array.pes=N``
    (PE-array size, :func:`scale_pes`), applied by :func:`apply_arch_overrides`; estimated
    energies of a level whose geometry changes (or of every level, when ``technology`` does) are
    re-derived. Raises :class:`SpecError` on any
    problem.
    """
    from testy_model.spec.sparseloop import (
        load_sparse_optimizations,
        nodes_have_sparse_optimizations,
    )

    doc = Doc.load(path)
    arch = arch_from_doc(doc)
    doc.report_unused()
    archi = doc.data.get("architecture") if isinstance(doc.data, dict) else None
    nodes = archi.get("nodes") if isinstance(archi, dict) else None
    if nodes_have_sparse_optimizations(nodes) or doc.root().has("sparse_optimizations"):
        load_sparse_optimizations(path)  # rejects unknown formats/actions (file:line: key)
    if not overrides:
        return arch
    try:
        return apply_arch_overrides(arch, overrides)
    except SpecError as err:
        if err.file is not None:
            raise
        raise SpecError(err.problem, file=str(path), key_path=err.key_path) from None
