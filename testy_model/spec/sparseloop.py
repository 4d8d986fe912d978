"""Reading Sparseloop ``sparse_optimizations`` (a file's top-level block, or per-node blocks of a
v0.4 architecture) into the typed model of :mod:`testy_model.spec.sparse_optimizations`, which
this module re-exports (``from testy_model.spec.sparseloop import SparseOptimizations``).

Hyphenated and underscored keys are accepted alike (``metadata-word-bits`` ==
``metadata_word_bits``). Anything this module does not know is a :class:`SpecError` naming the
file, line and key path, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testy_model.errors import SpecError
from testy_model.spec.sparse_optimizations import (
    ACTIONS,
    FORMATS,
    ActionOptimization,
    ActionType,
    ComputeOptimization,
    DataSpaceFormat,
    RankFormat,
    RankFormatName,
    SparseOptimizations,
    TargetOptimizations,
    sparse_opts_from_support,
)

__all__ = [
    "ACTIONS",
    "FORMATS",
    "ActionOptimization",
    "ActionType",
    "ComputeOptimization",
    "DataSpaceFormat",
    "MarkedYaml",
    "RankFormat",
    "RankFormatName",
    "SparseOptimizations",
    "TargetOptimizations",
    "key_path",
    "load_sparse_optimizations",
    "load_yaml_marked",
    "node_sparse_optimizations",
    "nodes_have_sparse_optimizations",
    "norm_key",
    "parse_sparse_optimizations",
    "sparse_opts_from_support",
]


# --------------------------------------------------------------------------------------------
# YAML with line marks
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MarkedYaml:
    """A YAML document loaded with ``yaml.safe_load`` semantics plus the 1-based line of every node.

    Attributes:
        data: the plain Python value (dicts, lists, scalars).
        lines: key path (tuple of keys and list indices) -> 1-based line where that node starts.
        file: the path it came from (for messages).
    """

    data: Any
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    file: str | None = None

    def line(self, path: tuple[Any, ...]) -> int | None:
        """Line of the node at ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, path: tuple[Any, ...], problem: str) -> SpecError:
        """A :class:`SpecError` for the node at ``path`` (file, line and dotted key path)."""
        return SpecError(problem, file=self.file, line=self.line(path), key_path=key_path(path))


def key_path(path: tuple[Any, ...]) -> str:
    """Render ``("a", 0, "b")`` as ``a[0].b``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def load_yaml_marked(path: str | Path) -> MarkedYaml:
    """Read ``path`` with the project's one YAML reader
    (:func:`testy_model.spec.yaml_io.load_yaml_with_marks`: safe-load semantics, Timeloop tags,
    duplicate keys refused, size/depth/alias/number limits) as a :class:`MarkedYaml`.

    Raises:
        SpecError: the file cannot be read, is not valid YAML or is past a limit (with the line).
    """
    from testy_model.spec.yaml_io import load_yaml_with_marks

    data, marks = load_yaml_with_marks(path)
    return MarkedYaml(data=data, lines=dict(marks), file=str(path))


def norm_key(key: object) -> str:
    """Normalise a YAML key: hyphens become underscores, letters lower case
    (``rank-application-order`` -> ``rank_application_order``, ``flattened_rankIDs`` ->
    ``flattened_rankids``)."""
    return str(key).replace("-", "_").lower()


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------
def _as_dict(doc: MarkedYaml, value: object, path: tuple[Any, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping for {what}, got {type(value).__name__}")
    return value


def _as_list(doc: MarkedYaml, value: object, path: tuple[Any, ...], what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise doc.error(path, f"expected a list of {what}, got {type(value).__name__}")
    return value


def _check_keys(
    doc: MarkedYaml, raw: dict[str, Any], path: tuple[Any, ...], allowed: set[str]
) -> dict[str, tuple[str, Any]]:
    """Map normalised keys to (original key, value); unknown keys are a SpecError."""
    out: dict[str, tuple[str, Any]] = {}
    for k, v in raw.items():
        nk = norm_key(k)
        if nk not in allowed:
            raise doc.error((*path, k), f"unknown key {k!r} (expected one of {sorted(allowed)})")
        out[nk] = (k, v)
    return out


def _int_or_none(doc: MarkedYaml, value: object, path: tuple[Any, ...]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise doc.error(path, f"expected a non-negative integer number of bits, got {value!r}")
    return value


def _parse_rank(doc: MarkedYaml, raw: object, path: tuple[Any, ...]) -> RankFormat:
    keys = _check_keys(
        doc,
        _as_dict(doc, raw, path, "a rank"),
        path,
        {
            "format",
            "metadata_word_bits",
            "payload_word_bits",
            "flattened_rankids",
            "flattened_rank_ids",
        },
    )
    if "format" not in keys:
        raise doc.error(path, f"a rank needs a 'format' (one of {list(FORMATS)})")
    fk, fmt = keys["format"]
    fmt_s = str(fmt).upper()
    if fmt_s not in FORMATS:
        raise doc.error(
            (*path, fk), f"unknown rank format {fmt!r} (expected one of {list(FORMATS)})"
        )
    flat: tuple[tuple[str, ...], ...] = ()
    for name in ("flattened_rankids", "flattened_rank_ids"):
        if name in keys:
            k, v = keys[name]
            items = _as_list(doc, v, (*path, k), "rank-id groups")
            flat = tuple(tuple(str(d) for d in (g if isinstance(g, list) else [g])) for g in items)
    md = keys.get("metadata_word_bits")
    pl = keys.get("payload_word_bits")
    return RankFormat(
        format=fmt_s,
        metadata_word_bits=_int_or_none(doc, md[1], (*path, md[0])) if md else None,
        payload_word_bits=_int_or_none(doc, pl[1], (*path, pl[0])) if pl else None,
        flattened_rank_ids=flat,
    )


def _parse_format(
    doc: MarkedYaml, raw: object, path: tuple[Any, ...]
) -> tuple[DataSpaceFormat, ...]:
    keys = _check_keys(
        doc, _as_dict(doc, raw, path, "a representation format"), path, {"data_spaces"}
    )
    if "data_spaces" not in keys:
        return ()
    k, v = keys["data_spaces"]
    out = []
    for i, ds in enumerate(_as_list(doc, v, (*path, k), "data spaces")):
        dpath = (*path, k, i)
        dkeys = _check_keys(
            doc,
            _as_dict(doc, ds, dpath, "a data-space format"),
            dpath,
            {"name", "ranks", "rank_application_order"},
        )
        if "name" not in dkeys:
            raise doc.error(dpath, "a data-space format needs a 'name'")
        order = "outer-to-inner"
        if "rank_application_order" in dkeys:
            ok, ov = dkeys["rank_application_order"]
            order = str(ov).replace("_", "-")
            if order not in ("inner-to-outer", "outer-to-inner"):
                raise doc.error(
                    (*dpath, ok),
                    f"unknown rank order {ov!r} (expected inner-to-outer or outer-to-inner)",
                )
        rk, rv = dkeys.get("ranks", ("ranks", []))
        ranks = tuple(
            _parse_rank(doc, r, (*dpath, rk, j))
            for j, r in enumerate(_as_list(doc, rv, (*dpath, rk), "ranks"))
        )
        out.append(
            DataSpaceFormat(
                name=str(dkeys["name"][1]),
                ranks=ranks,
                rank_application_order=order,
            )
        )
    return tuple(out)


def _parse_action(doc: MarkedYaml, raw: object, path: tuple[Any, ...]) -> ActionOptimization:
    keys = _check_keys(
        doc,
        _as_dict(doc, raw, path, "an action optimization"),
        path,
        {"type", "target", "condition_on"},
    )
    for need in ("type", "target"):
        if need not in keys:
            raise doc.error(path, f"an action optimization needs {need!r}")
    tk, t = keys["type"]
    t_s = str(t).replace("_", "-")
    if t_s not in ACTIONS:
        raise doc.error(
            (*path, tk), f"unknown action optimization {t!r} (expected one of {list(ACTIONS)})"
        )
    cond: tuple[str, ...] = ()
    if "condition_on" in keys:
        ck, cv = keys["condition_on"]
        cond = tuple(str(c) for c in _as_list(doc, cv, (*path, ck), "data-space names"))
    return ActionOptimization(type=t_s, target=str(keys["target"][1]), condition_on=cond)


def _parse_actions(
    doc: MarkedYaml, raw: object, path: tuple[Any, ...]
) -> tuple[ActionOptimization, ...]:
    """One ``action_optimization`` entry: ``{type, target, condition_on}``, or the form
    ``{type, options: [{target, condition_on}, ...]}`` (one optimization per option)."""
    d = _as_dict(doc, raw, path, "an action optimization")
    okey = next((k for k in d if norm_key(k) == "options"), None)
    if okey is None:
        return (_parse_action(doc, raw, path),)
    rest = {k: v for k, v in d.items() if k != okey}
    _check_keys(doc, rest, path, {"type"})
    if "type" not in {norm_key(k) for k in rest}:
        raise doc.error(path, "an action optimization needs 'type'")
    tk = next(k for k in rest if norm_key(k) == "type")
    if str(rest[tk]).replace("_", "-") not in ACTIONS:
        raise doc.error(
            (*path, tk),
            f"unknown action optimization {rest[tk]!r} (expected one of {list(ACTIONS)})",
        )
    out = []
    for i, opt in enumerate(_as_list(doc, d[okey], (*path, okey), "options")):
        opath = (*path, okey, i)
        o = _as_dict(doc, opt, opath, "an action optimization option")
        _check_keys(doc, o, opath, {"target", "condition_on"})
        merged = {**rest, **o}
        act = _parse_action(doc, merged, opath)
        out.append(act.model_copy(update={"group": path[-1] if isinstance(path[-1], int) else 0}))
    return tuple(out)


def _parse_compute(
    doc: MarkedYaml, raw: object, path: tuple[Any, ...]
) -> tuple[ComputeOptimization, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        ipath = (*path, i) if isinstance(raw, list) else path
        if isinstance(item, str):
            item = {"type": item}
        keys = _check_keys(
            doc, _as_dict(doc, item, ipath, "a compute optimization"), ipath, {"type"}
        )
        t = str(keys.get("type", ("type", None))[1])
        if t not in ("gating", "skipping"):
            raise doc.error(
                ipath, f"unknown compute optimization {t!r} (expected gating or skipping)"
            )
        out.append(ComputeOptimization(type=t))
    return tuple(out)


def _parse_target(
    doc: MarkedYaml, t: object, tpath: tuple[Any, ...], name: str | None = None
) -> TargetOptimizations:
    """One target's optimizations: a v0.3 ``targets:`` entry (with its ``name``) or, with
    ``name`` given, the ``sparse_optimizations`` block of a v0.4 architecture node."""
    allowed = {"representation_format", "action_optimization", "compute_optimization"}
    tkeys = _check_keys(
        doc,
        _as_dict(doc, t, tpath, "a target"),
        tpath,
        allowed | ({"name"} if name is None else set()),
    )
    if name is None:
        if "name" not in tkeys:
            raise doc.error(tpath, "a target needs a 'name' (a level of the architecture)")
        name = str(tkeys["name"][1])
    formats: tuple[DataSpaceFormat, ...] = ()
    actions: tuple[ActionOptimization, ...] = ()
    compute: tuple[ComputeOptimization, ...] = ()
    if "representation_format" in tkeys:
        k, v = tkeys["representation_format"]
        formats = _parse_format(doc, v, (*tpath, k))
    if "action_optimization" in tkeys:
        k, v = tkeys["action_optimization"]
        actions = tuple(
            act
            for j, a in enumerate(_as_list(doc, v, (*tpath, k), "action optimizations"))
            for act in _parse_actions(doc, a, (*tpath, k, j))
        )
    if "compute_optimization" in tkeys:
        k, v = tkeys["compute_optimization"]
        compute = _parse_compute(doc, v, (*tpath, k))
    return TargetOptimizations(name=name, formats=formats, actions=actions, compute=compute)


def nodes_have_sparse_optimizations(nodes: object) -> bool:
    """Whether any node of a Timeloop v0.4 node list (nested ``nodes:`` lists included) has its
    own ``sparse_optimizations`` block."""
    if not isinstance(nodes, list):
        return False
    return any(
        isinstance(n, dict)
        and (
            any(norm_key(k) == "sparse_optimizations" for k in n)
            or nodes_have_sparse_optimizations(n.get("nodes"))
        )
        for n in nodes
    )


def node_sparse_optimizations(doc: MarkedYaml) -> SparseOptimizations | None:
    """The per-node ``sparse_optimizations`` blocks of a Timeloop v0.4 architecture
    (``architecture: {nodes: [{name, sparse_optimizations: {...}}]}``), one target per node, or
    ``None`` when no node has one.

    Raises:
        SpecError: unknown keys, formats or action types (file, line, key path).
    """
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("architecture"), dict):
        return None
    nodes = data["architecture"].get("nodes")
    if not isinstance(nodes, list):
        return None
    targets: list[TargetOptimizations] = []
    # depth-first over nested node lists (``!Parallel``/``!Hierarchical`` hold ``nodes:``)
    stack: list[tuple[tuple[Any, ...], list[Any]]] = [(("architecture", "nodes"), nodes)]
    while stack:
        lpath, lst = stack.pop(0)
        for i, node in enumerate(lst):
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("nodes"), list):
                stack.append(((*lpath, i, "nodes"), node["nodes"]))
            for k, v in node.items():
                if norm_key(k) != "sparse_optimizations" or v is None:
                    continue
                if "name" not in node:
                    raise doc.error(
                        (*lpath, i),
                        "a node with sparse_optimizations needs a 'name' (the level it applies to)",
                    )
                targets.append(_parse_target(doc, v, (*lpath, i, k), name=str(node["name"])))
    if not targets:
        return None
    return SparseOptimizations(targets=tuple(targets), source=doc.file)


def parse_sparse_optimizations(doc: MarkedYaml, path: tuple[Any, ...] = ()) -> SparseOptimizations:
    """Turn the ``sparse_optimizations`` node at ``path`` of ``doc`` into typed form.

    Raises:
        SpecError: unknown keys, formats or action types, naming file, line and key path.
    """
    raw: Any = doc.data
    for p in path:
        raw = raw[p]
    keys = _check_keys(doc, _as_dict(doc, raw, path, "sparse_optimizations"), path, {"targets"})
    tk, tv = keys.get("targets", ("targets", []))
    targets = [
        _parse_target(doc, t, (*path, tk, i))
        for i, t in enumerate(_as_list(doc, tv, (*path, tk), "targets"))
    ]
    return SparseOptimizations(targets=tuple(targets), source=doc.file)


def load_sparse_optimizations(path: str | Path) -> SparseOptimizations:
    """Load ``sparse_optimizations`` from a YAML file: either a file whose top level holds a
    ``sparse_optimizations`` key (Sparseloop's ``aggregated_input.yaml``), one holding the block
    itself (``targets: [...]``), or a Timeloop v0.4 architecture whose ``nodes`` carry their own
    ``sparse_optimizations`` blocks. A file with none gives an empty (dense) set.

    Raises:
        SpecError: unreadable file, bad YAML, or an unknown key/format/action (file:line: key path).
    """
    doc = load_yaml_marked(path)
    data = doc.data
    if data is None:
        return SparseOptimizations(source=doc.file)
    if not isinstance(data, dict):
        raise doc.error((), "expected a mapping at the top level")
    for k in data:
        if norm_key(k) == "sparse_optimizations":
            if data[k] is None:
                return SparseOptimizations(source=doc.file)
            return parse_sparse_optimizations(doc, (k,))
    if "targets" in data:
        return parse_sparse_optimizations(doc, ())
    nodes = node_sparse_optimizations(doc)
    return nodes if nodes is not None else SparseOptimizations(source=doc.file)
