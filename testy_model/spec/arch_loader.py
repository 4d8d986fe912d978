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

import re
from pathlib import Path

from pydantic import ValidationError

from testy_model.errors import SpecError
from testy_model.spec.arch import (
    Architecture,
    SparsitySupport,
    TasdUnit,
)
from testy_model.spec.arch_constraints import spatial_constraints
from testy_model.spec.arch_levels import (
    COMPUTE_KEYS,
    STORAGE_KEYS,
    WalkState,
    check_class,
    compute_unit,
    first_attr,
    is_compute,
    merged_attributes,
    storage_level,
    technology_attr,
)
from testy_model.spec.arch_overrides import apply_arch_overrides, scale_pes
from testy_model.spec.cursor import Cur, Doc, validation_to_spec_error, warn_unknown_top
from testy_model.spec.yaml_io import KNOWN_TOP_LEVEL

__all__ = [
    "KNOWN_TOP_LEVEL",
    "apply_arch_overrides",
    "arch_from_doc",
    "design_name",
    "load_arch",
    "scale_pes",
    "warn_unknown_top",
]

_REPL_RE = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


def _mesh(cur: Cur | None) -> tuple[int, int]:
    if cur is None:
        return 1, 1
    cur.as_map().warn_unused({"meshX", "meshY"})
    mx, my = cur.opt("meshX"), cur.opt("meshY")
    return (mx.int(minimum=1) if mx else 1), (my.int(minimum=1) if my else 1)


def _component(comp: Cur, st: WalkState, v03: bool) -> None:
    comp.as_map()
    name = comp.req("name").str()
    cls = c.str() if (c := comp.opt("class")) is not None else ""
    subclass = c.str() if (c := comp.opt("subclass")) is not None else ""
    check_class(comp, cls, st)
    compute = is_compute(cls, subclass)
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
    attrs = merged_attributes(comp, st, COMPUTE_KEYS if compute else STORAGE_KEYS)
    if v03:
        mxc, myc = first_attr(attrs, "meshX"), first_attr(attrs, "meshY")
        if mxc is not None or myc is not None:
            mesh_x = mxc.int(minimum=1) if mxc is not None else None
            mesh_y = myc.int(minimum=1) if myc is not None else None
            if mesh_x is None:
                mesh_x = st.instances // mesh_y if mesh_y else st.instances
            if mesh_y is None:
                mesh_y = st.instances // mesh_x
            if mesh_x * mesh_y != st.instances:
                bad = mxc if mxc is not None else myc
                assert bad is not None  # one of them is given (the enclosing if)
                raise bad.error(
                    f"meshX x meshY = {mesh_x} x {mesh_y} = {mesh_x * mesh_y}, but {name!r} has "
                    f"{st.instances} instances from the replication above; expected equal"
                )
            st.mesh_x = mesh_x
    tech = first_attr(attrs, "technology")
    if tech is not None and st.technology is None:
        st.technology = technology_attr(tech)
    if compute:
        if comp.opt("constraints") is not None:
            comp.child("constraints").warn("constraints on a compute unit are not used")
        st.computes.append((comp, compute_unit(comp, name, cls, subclass, attrs, st)))
        return
    if name in {x.name for x in st.levels}:
        raise comp.child("name").error(f"duplicate level name {name!r}; level names must be unique")
    level = storage_level(comp, name, cls, subclass, attrs, st)
    st.levels.append(level)


def _container(node: Cur, st: WalkState, name: str, spatial: tuple[int, int]) -> None:
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
            sf, sp, split = spatial_constraints(s)
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
                st.technology = technology_attr(c)
            st.inherited[k] = c


def _walk_v04(nodes: Cur, st: WalkState) -> None:
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


def _walk_v03(subtrees: Cur, st: WalkState) -> None:
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
    st = WalkState(compound_classes=_compound_classes(root))
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
