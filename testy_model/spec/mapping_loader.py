"""Timeloop mapping YAML -> :class:`Mapping`.

Each entry of ``mapping:`` has a ``target`` and a ``type``: ``temporal`` / ``spatial`` (with
``factors`` ``"K=16 M=1"``, ``"M16 N1 K1"`` or a list, ``permutation`` inner to outer as a string
of one-letter dimensions or a list, and for spatial ``split``), or ``datatype`` / ``dataspace`` /
``bypass`` (with ``keep`` and ``bypass`` lists).

Folding: Timeloop's virtual ``inter_<Container>_spatial`` targets, and a bare container name used
as a spatial target (the Sparseloop examples), are folded into the storage level just above the
container (``Architecture.container_parents``). Two containers folded into one level (Eyeriss's
``PE_column`` then ``PE``) merge: the X dimensions of each (the first ``split`` of its permutation)
come first in the merged permutation, the Y dimensions after, ``split`` = number of X dimensions.
Without an architecture, an ``inter_X_spatial`` target folds into the next real target listed
after it, and such mapper output (listed inner to outer) is reversed; otherwise levels keep the
order in which the file first names them.

A factor of 0 (Timeloop's "the rest") is resolved when a problem is given: bound / product of the
other factors of that dimension. With an architecture, the result has one :class:`LevelMapping` per
level, outermost first (levels the file does not mention get factor 1 everywhere).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from testy_model.spec.arch import Architecture
from testy_model.spec.arch_constraints import parse_factors, parse_permutation
from testy_model.spec.cursor import Cur, Doc, warn_unknown_top
from testy_model.spec.mapping import LevelMapping, Mapping
from testy_model.spec.workload import Problem
from testy_model.spec.yaml_io import KNOWN_TOP_LEVEL

_TYPES = ("temporal", "spatial", "datatype", "dataspace", "bypass")
_VIRTUAL_RE = re.compile(r"^inter_(?P<c>.+)_spatial$")


@dataclass
class _Acc:
    """Accumulates the entries that land on one level."""

    temporal: dict[str, int] | None = None
    temporal_cur: Cur | None = None
    tperm: tuple[str, ...] = ()
    x_dims: list[str] = field(default_factory=list)
    y_dims: list[str] = field(default_factory=list)
    spatial: dict[str, int] = field(default_factory=dict)
    any_split: bool = False
    keep: tuple[str, ...] | None = None
    bypass: tuple[str, ...] = ()
    stream: tuple[str, ...] = ()
    no_link: tuple[str, ...] = ()
    no_multicast: tuple[str, ...] = ()
    no_reuse: tuple[str, ...] = ()


def _factors(cur: Cur) -> dict[str, int]:
    f = parse_factors(cur)
    for d, v in f.items():
        if v < 0:
            raise cur.error(f"factor {d}<={-v} is a constraint, not a mapping; expected {d}=N")
    return f


def _resolve_target(
    entry: Cur, target: str, arch: Architecture | None, later_real: str | None
) -> tuple[str, bool]:
    """(storage level, is_virtual) for a target name."""
    m = _VIRTUAL_RE.match(target)
    if arch is not None:
        if target in arch.level_names:
            return target, False
        container = m.group("c") if m else target
        if container in arch.container_parents:
            return arch.container_parents[container], True
        valid = list(arch.level_names) + [f"inter_{c}_spatial" for c in arch.container_parents]
        raise entry.child("target").error(f"unknown target {target!r}; expected one of {valid}")
    if m:
        if later_real is None:
            raise entry.child("target").error(
                f"cannot place virtual target {target!r} without the architecture: no storage "
                "target is listed after it"
            )
        return later_real, True
    return target, False


def mapping_from_cur(
    mcur: Cur, arch: Architecture | None, problem: Problem | None, source: str | None
) -> Mapping:
    """Build a :class:`Mapping` from the list under a ``mapping:`` key (see module docstring)."""
    entries = list(mcur.as_list(allow_none=False).elems())
    targets: list[str] = []
    for e in entries:
        e.as_map()
        targets.append(e.req("target").str())
    accs: dict[str, _Acc] = {}
    order: list[str] = []
    zeros: list[tuple[str, str, str, Cur]] = []  # (level, kind, dim, cur)
    locs: dict[str, tuple[int, str]] = {}
    for i, (e, target) in enumerate(zip(entries, targets, strict=True)):
        later = next((t for t in targets[i + 1 :] if not _VIRTUAL_RE.match(t)), None)
        level, virtual = _resolve_target(e, target, arch, later)
        acc = accs.setdefault(level, _Acc())
        if level not in locs or (e.value.get("type") == "temporal" and not virtual):
            line = e.doc.marks.get(e.path)
            if line is not None:
                locs[level] = (line, e.where)
        if level not in order:
            order.append(level)
        typ_cur = e.req("type")
        typ = typ_cur.str()
        if typ not in _TYPES:
            raise typ_cur.error(f"unknown mapping type {typ!r}; expected one of {list(_TYPES)}")
        if typ in ("temporal", "spatial"):
            _loop_entry(e, typ, target, level, virtual, acc, problem, zeros)
        else:
            _datatype_entry(e, typ, level, virtual, acc, problem)
    if arch is not None:
        names = list(arch.level_names)
    elif any(_VIRTUAL_RE.match(t) for t in targets):
        names = order[::-1]  # mapper output lists levels inner to outer
    else:
        names = order
    levels = [_level_mapping(name, accs.get(name, _Acc())) for name in names]
    levels = _fill_zeros(levels, zeros, problem, mcur)
    return Mapping(levels=tuple(levels), source=source, locations=locs)


def _loop_entry(
    e: Cur,
    typ: str,
    target: str,
    level: str,
    virtual: bool,
    acc: _Acc,
    problem: Problem | None,
    zeros: list[tuple[str, str, str, Cur]],
) -> None:
    """Add one ``temporal`` or ``spatial`` entry to its level's accumulator ``acc`` (factor-0
    entries are noted in ``zeros``, filled in later)."""
    tensors = set(problem.tensor_names) if problem is not None else None
    e.warn_unused(
        {
            "target",
            "type",
            "factors",
            "permutation",
            "split",
            "no_link_transfer",
            "no_multicast_no_reduction",
            "no_temporal_reuse",
        }
    )
    for key, attr in (
        ("no_link_transfer", "no_link"),
        ("no_multicast_no_reduction", "no_multicast"),
        ("no_temporal_reuse", "no_reuse"),
    ):
        flag = e.opt(key)
        if flag is not None:
            flagged = flag.str_list()
            bad = [t for t in flagged if tensors is not None and t not in tensors]
            if bad:
                raise flag.error(
                    f"unknown tensor {bad[0]!r}; the problem's tensors are {sorted(tensors or ())}"
                )
            setattr(acc, attr, tuple(dict.fromkeys((*getattr(acc, attr), *flagged))))
    fcur = e.opt("factors")
    f = _factors(fcur) if fcur is not None else {}
    pcur = e.opt("permutation")
    perm = parse_permutation(pcur) if pcur else ()
    if problem is not None:
        for d in list(f) + list(perm):
            if d not in problem.dimensions:
                where = fcur if (fcur is not None and d in f) else (pcur if pcur is not None else e)
                raise where.error(
                    f"unknown dimension {d!r}; the problem's dimensions are "
                    f"{list(problem.dimensions)}"
                )
    for d, v in f.items():
        if v == 0:
            assert fcur is not None
            zeros.append((level, typ, d, fcur))
    if typ == "spatial":
        _spatial_entry(e, f, perm, acc)
        return
    if virtual:
        if any(v not in (0, 1) for v in f.values()):
            raise e.error(f"temporal factors on the virtual target {target!r} must be 1; got {f}")
        return
    if acc.temporal is not None:
        raise e.error(
            f"second temporal entry for level {level!r} (first at line "
            f"{acc.temporal_cur.doc.marks.get(acc.temporal_cur.path)}); expected one"
            if acc.temporal_cur is not None
            else f"second temporal entry for level {level!r}"
        )
    acc.temporal, acc.temporal_cur, acc.tperm = f, e, perm


def _spatial_entry(e: Cur, f: dict[str, int], perm: tuple[str, ...], acc: _Acc) -> None:
    """The factors of one ``spatial`` entry, and its dimensions on the X or Y mesh axis: the
    first ``split`` dimensions of the permutation (then the unlisted factors) go to X; only
    dimensions with a factor other than 1 occupy an axis."""
    split_cur = e.opt("split")
    split = split_cur.int(minimum=0) if split_cur is not None else None
    listed = [d for d in list(perm) + [d for d in f if d not in perm] if f.get(d, 1) != 1]
    full = list(perm) + [d for d in f if d not in perm]
    if split is not None:
        xs = set(full[:split])
        cut_dims = [d for d in listed if d in xs]
        listed = cut_dims + [d for d in listed if d not in xs]
        split = len(cut_dims)
    if split is not None:
        acc.any_split = True
    cut = len(listed) if split is None else min(split, len(listed))
    for d in listed[:cut]:
        if d not in acc.x_dims and d not in acc.y_dims:
            acc.x_dims.append(d)
    for d in listed[cut:]:
        if d not in acc.x_dims and d not in acc.y_dims:
            acc.y_dims.append(d)
    for d, v in f.items():
        acc.spatial[d] = acc.spatial.get(d, 1) * v if v else 0


def _datatype_entry(
    e: Cur, typ: str, level: str, virtual: bool, acc: _Acc, problem: Problem | None
) -> None:
    """Add one ``datatype`` / ``bypass`` entry (keep, bypass, stream) to ``acc``."""
    tensors = set(problem.tensor_names) if problem is not None else None
    # Timeloop reads no_link_transfer only in spatial directives: silent on datatype
    e.warn_unused({"target", "type", "keep", "bypass", "stream"}, silent={"no_link_transfer"})
    if (scur := e.opt("stream")) is not None and not virtual:
        acc.stream = tuple(dict.fromkeys((*acc.stream, *scur.str_list())))
    if virtual:
        return
    keep = kcur.str_list() if (kcur := e.opt("keep")) is not None else None
    byp = bcur.str_list() if (bcur := e.opt("bypass")) is not None else ()
    if typ == "datatype" and keep is None and e.has("keep"):
        keep = ()
    for t in list(keep or ()) + list(byp):
        if tensors is not None and t not in tensors:
            holder = e.opt("keep") if t in (keep or ()) else e.opt("bypass")
            raise (holder if holder is not None else e).error(
                f"unknown tensor {t!r}; the problem's tensors are {sorted(tensors)}"
            )
    both = set(keep or ()) & set(byp)
    if both:
        raise e.error(f"tensors {sorted(both)} are both kept and bypassed at {level!r}")
    if keep is not None:
        acc.keep = tuple(keep)
    acc.bypass = tuple(dict.fromkeys((*acc.bypass, *byp)))


def _level_mapping(name: str, acc: _Acc) -> LevelMapping:
    """The :class:`LevelMapping` of level ``name`` from its accumulated entries (factors of 1
    dropped; ``split`` = the dimensions on the X axis when the level has spatial factors)."""
    return LevelMapping(
        target=name,
        temporal={d: v for d, v in (acc.temporal or {}).items() if v != 1},
        temporal_permutation=acc.tperm,
        spatial={d: v for d, v in acc.spatial.items() if v != 1},
        spatial_permutation=tuple(acc.x_dims + acc.y_dims),
        split=len(acc.x_dims) if (acc.any_split or acc.spatial) else None,
        keep=acc.keep,
        bypass=acc.bypass,
        stream=acc.stream,
        no_link_transfer=acc.no_link,
        no_multicast=acc.no_multicast,
        no_temporal_reuse=acc.no_reuse,
    )


def _fill_zeros(
    levels: list[LevelMapping],
    zeros: list[tuple[str, str, str, Cur]],
    problem: Problem | None,
    mcur: Cur,
) -> list[LevelMapping]:
    """Replace factor-0 entries by bound / product of the other factors of that dimension."""
    if not zeros:
        return levels
    if problem is None:
        zeros[0][3].warn("factor 0 ('the rest') is left unresolved: no problem given")
        return levels
    out = list(levels)
    for level, kind, dim, cur in zeros:
        others = math.prod(
            v for lm in out for v in (lm.temporal.get(dim, 1), lm.spatial.get(dim, 1)) if v != 0
        )
        bound = problem.bounds[dim]
        if bound % others:
            raise cur.error(
                f"factor {dim}=0 ('the rest') cannot be filled: bound {bound} is not divisible "
                f"by the other factors' product {others}"
            )
        idx = next(i for i, lm in enumerate(out) if lm.target == level)
        lm = out[idx]
        field_name = "temporal" if kind == "temporal" else "spatial"
        new = dict(getattr(lm, field_name))
        new[dim] = bound // others
        out[idx] = lm.model_copy(update={field_name: new})
    del mcur
    return out


def mapping_from_doc(
    doc: Doc, arch: Architecture | None = None, problem: Problem | None = None
) -> Mapping:
    """Build a :class:`Mapping` from a loaded document with a ``mapping:`` block."""
    root = doc.root()
    if not root.is_map():
        raise root.error("expected a mapping with a 'mapping' list")
    m = root.req("mapping")
    warn_unknown_top(root, KNOWN_TOP_LEVEL)
    return mapping_from_cur(m, arch, problem, doc.file)


def load_mapping(
    path: str | Path, arch: Architecture | None = None, problem: Problem | None = None
) -> Mapping:
    """Load a Timeloop mapping file (or the ``mapping`` part of an aggregated input).

    With ``arch`` the result has one level per architecture level, outermost first, and unknown
    targets are errors naming the valid ones; with ``problem`` dimension and tensor names are
    checked and factor-0 entries resolved. Raises :class:`SpecError` on any problem.
    """
    doc = Doc.load(path)
    mapping = mapping_from_doc(doc, arch, problem)
    doc.report_unused()
    return mapping
