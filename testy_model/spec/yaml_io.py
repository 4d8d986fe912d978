"""Safe YAML reading with line tracking, Timeloop node tags, located errors and dotted overrides.

This is the only place that turns YAML text into Python data. Semantics are those of
``yaml.safe_load`` with three deliberate differences, all documented here:

1. Timeloop's local tags (``!Container``, ``!Component``, ``!Parallel``, ``!Hierarchical``,
   ``!Nothing``, ...) are accepted: a tagged mapping becomes a :class:`TaggedDict` (a ``dict`` whose
   ``tag`` attribute keeps the node kind), a tagged sequence a :class:`TaggedList`. Global tags
   other than the YAML core ones (``!!python/object`` ...) are rejected with a :class:`SpecError`.
2. YAML 1.1 sexagesimal numbers are *not* resolved: ``2:4`` stays the string ``"2:4"`` (PyYAML
   would read it as the integer 124), so N:M patterns can be written unquoted.
3. Every mapping, sequence and scalar node's 1-based line is recorded in a ``marks`` dictionary
   keyed by its key path (a tuple of keys and indices), so errors can name ``FILE:LINE`` and the
   key path ``architecture.nodes[3].attributes.depth``.

Keys a loader does not use are collected per file and reported in one :class:`SpecWarning` line
(never an error), except in the strict files (networks, plans, sweeps), where an unknown key is an
error with a "did you mean" suggestion.

Limits (hostile input is refused in one line naming the limit, before any arithmetic): a file of
at most :data:`MAX_FILE_BYTES`, nesting of at most :data:`MAX_DEPTH` levels, at most
:data:`MAX_NODES` nodes, at most :data:`MAX_ALIAS_NODES` nodes reached through aliases (counted
while composing, so an alias bomb never expands), scalars of at most :data:`MAX_SCALAR_CHARS`
characters, integers within ±:data:`MAX_INT`, and floats that are finite, within
±:data:`MAX_FLOAT` and, unless 0, at least :data:`MIN_FLOAT` in magnitude.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import math
import re
import stat
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from testy_model.errors import SpecError

#: Top-level blocks of the files this package reads (architecture, problem, mapping, sparsity,
#: TASD unit, network, and the Timeloop/Accelergy blocks other tools use). Each loader reads its
#: own and skips the others silently; any other top-level key gets one warning.
KNOWN_TOP_LEVEL: frozenset[str] = frozenset(
    {
        "architecture",
        "sparsity",
        "tasd_unit",
        "name",
        "problem",
        "mapping",
        "sparse_optimizations",
        "compound_components",
        "constraints",
        "mapper",
        "variables",
        "network",
        "ERT",
        "ART",
    }
)

KeyPath = tuple[str | int, ...]
Marks = dict[KeyPath, int]

# Limits on every YAML read (hostile input is refused in one line, in milliseconds). The largest
# shipped or shared input is 14 kB, 9 levels deep and uses no aliases, so each limit leaves a wide
# margin for real files while bounding the work any file can cause.
#: Largest file read, in bytes (1 MiB): bounds the scanner's work (~0.3 s per MB of text).
MAX_FILE_BYTES = 1 << 20
#: Longest single scalar (string), in characters.
MAX_SCALAR_CHARS = 65_536
#: Deepest nesting of mappings and sequences (PyYAML's composer recurses once per level).
MAX_DEPTH = 64
#: Most nodes one document may hold before aliases are expanded.
MAX_NODES = 100_000
#: Most nodes reachable through aliases (``*name``), counting every expansion: an alias bomb
#: (nested aliases that expand to billions of nodes) is refused while it is being composed.
MAX_ALIAS_NODES = 10_000
#: Largest integer magnitude (2**53: every integer up to it is exact as a float as well).
MAX_INT = 2**53
#: Largest float magnitude; NaN and infinities are refused too.
MAX_FLOAT = 1e18
#: Smallest non-zero float magnitude (1 / MAX_FLOAT): its reciprocal (a bandwidth divides a word
#: count) stays finite, and no subnormal number reaches the model.
MIN_FLOAT = 1e-18
#: Key path shown for problems with the document as a whole.
TOP_LEVEL = "(top level)"


class YamlLimitError(yaml.YAMLError):
    """A document past one of this module's limits (raised inside the composer)."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


class SpecWarning(UserWarning):
    """A key in a spec file that the model does not use (or an approximation it makes)."""


class TaggedDict(dict):  # type: ignore[type-arg]
    """A YAML mapping that carried a local tag such as ``!Component`` (``tag == "Component"``)."""

    tag: str = ""


class TaggedList(list):  # type: ignore[type-arg]
    """A YAML sequence that carried a local tag such as ``!Parallel``."""

    tag: str = ""


# --------------------------------------------------------------------------------------------
# loader
# --------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """SafeLoader without sexagesimal number resolution (``2:4`` stays a string) whose composer
    enforces this module's limits while it builds the node graph: nesting depth, node count,
    scalar length and the number of nodes reachable through aliases (each alias counts the full
    expanded size of the node it names, so an alias bomb is refused after a few thousand nodes
    instead of being expanded later by whoever walks the tree)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}
        self._path: list[str | int] = []

    def _limit(self, problem: str, event: yaml.Event) -> YamlLimitError:
        err = YamlLimitError(problem, event.start_mark.line + 1 if event.start_mark else None)
        err.path = tuple(self._path)  # type: ignore[attr-defined]
        return err

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(index, yaml.ScalarNode):
            self._path.append(str(index.value))
        elif isinstance(index, int) and not isinstance(index, bool):
            self._path.append(index)
        else:
            self._path.append("<key>")
        try:
            return self._compose_counted(parent, index, event)
        finally:
            self._path.pop()

    def _compose_counted(self, parent: yaml.Node | None, index: Any, event: yaml.Event) -> Any:
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise self._limit(
                        f"alias *{event.anchor} refers to a node that contains it (a recursive "
                        "alias); expected a plain tree",
                        event,
                    )
                self._alias_nodes += size
                if self._alias_nodes > MAX_ALIAS_NODES:
                    raise self._limit(
                        f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes (the limit on "
                        "nodes reached through aliases; an alias bomb?)",
                        event,
                    )
            return super().compose_node(parent, index)
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH:
            raise self._limit(f"nesting deeper than {MAX_DEPTH} levels (the limit)", event)
        if self._nodes > MAX_NODES:
            raise self._limit(f"more than {MAX_NODES:,} nodes (the limit)", event)
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_SCALAR_CHARS:
            raise self._limit(
                f"a scalar of {len(event.value):,} characters (the limit is {MAX_SCALAR_CHARS:,})",
                event,
            )
        node = super().compose_node(parent, index)
        self._depth -= 1
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._sizes[id(c)] for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        self._sizes[id(node)] = size
        return node


_INT_RE = re.compile(
    r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT_RE, list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))

_CORE_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary", "merge")
}


def number_problem(value: object) -> str | None:
    """Why a number read from a file is out of range (``None`` when it is fine): NaN and
    infinities are refused, integers beyond ±:data:`MAX_INT` and floats beyond ±:data:`MAX_FLOAT`
    too, so no later arithmetic can overflow or carry a NaN."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            return "expected an integer within ±2**53 (the limit on integers in a file)"
        return None
    if isinstance(value, float):
        if value != value or value in (math.inf, -math.inf):
            return "expected a finite number (NaN and infinities are refused)"
        if abs(value) > MAX_FLOAT:
            return f"expected a number within ±{MAX_FLOAT:g} (the limit on numbers in a file)"
        if 0 < abs(value) < MIN_FLOAT:
            return f"expected 0 or a magnitude of at least {MIN_FLOAT:g} (the limit in a file)"
    return None


def clip(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (messages stay one short line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'" + f" ({len(text):,} chars)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_path(path: Iterable[str | int]) -> str:
    """Render a key path tuple as ``architecture.nodes[3].attributes.depth``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class _Builder:
    loader: _Loader
    file: str
    marks: Marks
    count: int = 0

    def build(self, node: yaml.Node, path: KeyPath, depth: int = 0) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_NODES + MAX_ALIAS_NODES or depth > 2 * MAX_DEPTH:
            raise SpecError(  # unreachable past the composer's limits; kept as a guard
                "document too large or too deep; expected a plain tree",
                file=self.file,
                line=line,
                key_path=format_path(path) or TOP_LEVEL,
            )
        self.marks.setdefault(path, line)
        tag = node.tag or ""
        local = tag.startswith("!") and not tag.startswith("!!")
        if not local and tag not in _CORE_TAGS:
            raise SpecError(
                f"tag {tag!r} is not allowed (only plain YAML and Timeloop tags such as "
                "!Component; python object tags are rejected)",
                file=self.file,
                line=line,
                key_path=format_path(path) or TOP_LEVEL,
            )
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = TaggedDict() if local else {}
            if local:
                out.tag = tag[1:]  # type: ignore[attr-defined]
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SpecError(
                        "mapping keys must be plain scalars",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                        key_path=format_path(path) or TOP_LEVEL,
                    )
                key = self.build(key_node, (*path, "<key>"), depth + 1)
                self.marks.pop((*path, "<key>"), None)
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    raise SpecError(
                        "mapping keys must be strings or numbers",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                        key_path=format_path(path) or TOP_LEVEL,
                    )
                key = str(key)
                if key in out:
                    raise SpecError(
                        f"duplicate key {key!r}",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                        key_path=format_path(path) or TOP_LEVEL,
                    )
                self.marks[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            seq: list[Any] = TaggedList() if local else []
            if local:
                seq.tag = tag[1:]  # type: ignore[attr-defined]
            for i, child in enumerate(node.value):
                seq.append(self.build(child, (*path, i), depth + 1))
            return seq
        # scalar
        if local:
            if node.value not in ("", None):
                raise SpecError(
                    f"tag {tag!r} on a scalar; expected it on a mapping",
                    file=self.file,
                    line=line,
                    key_path=format_path(path) or TOP_LEVEL,
                )
            empty = TaggedDict()
            empty.tag = tag[1:]
            return empty
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as err:
            raise SpecError(
                f"cannot read scalar {clip(node.value)}: {err}",
                file=self.file,
                line=line,
                key_path=format_path(path) or TOP_LEVEL,
            ) from None
        problem = number_problem(value)
        if problem is not None:
            raise SpecError(
                f"{problem}, got {clip(node.value)}",
                file=self.file,
                line=line,
                key_path=format_path(path) or TOP_LEVEL,
            )
        return value


def parse_yaml_text(text: str, file: str = "<string>") -> tuple[Any, Marks]:
    """Parse YAML ``text`` (one document) into plain data plus line marks.

    Returns:
        ``(data, marks)`` where ``marks[key_path]`` is the 1-based line where that node starts.

    Raises:
        SpecError: on syntax errors (with the line), disallowed tags, duplicate keys, and any
            document past this module's limits (size, depth, nodes, alias expansion, scalar
            length, number range), naming the limit.
    """
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(
            f"{len(text):,} characters of YAML; the limit is {MAX_FILE_BYTES:,} (1 MiB)",
            file=file,
            key_path=TOP_LEVEL,
        )
    try:
        loader = _Loader(text)
    except yaml.YAMLError as err:
        raise SpecError(f"YAML error: {err}", file=file, key_path=TOP_LEVEL) from None
    try:
        node = loader.get_single_node()
    except YamlLimitError as err:
        parts = [p for p in getattr(err, "path", ()) if p != "<key>"]
        where = format_path(parts)
        if len(parts) > 8:  # a path as deep as the limit: its ends say where
            where = f"{format_path(parts[:3])}...{format_path(parts[-2:])} ({len(parts)} levels)"
        raise SpecError(
            err.problem, file=file, line=err.line, key_path=where or TOP_LEVEL
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        what = err.problem or str(err)
        where = format_path(_path_at_error(text)) or TOP_LEVEL
        raise SpecError(
            f"YAML syntax error: {what}", file=file, line=line, key_path=where
        ) from None
    except yaml.YAMLError as err:
        line = getattr(err, "position", None)
        raise SpecError(
            f"YAML error: {err}".replace("\n", " "),
            file=file,
            line=text.count("\n", 0, line) + 1 if isinstance(line, int) else None,
            key_path=TOP_LEVEL,
        ) from None
    except RecursionError:  # pragma: no cover - the composer's depth limit comes first
        raise SpecError(
            f"nesting deeper than {MAX_DEPTH} levels (the limit)", file=file, key_path=TOP_LEVEL
        ) from None
    finally:
        loader.dispose()
    marks: Marks = {}
    if node is None:
        return None, marks
    data = _Builder(loader, file, marks).build(node, ())
    return data, marks


def _path_at_error(text: str) -> KeyPath:
    """The key path being read when the YAML parser stopped (for syntax-error messages).

    Replays the parser's event stream, tracking the open mappings (current key) and sequences
    (current index) until the error.
    """
    stack: list[list[Any]] = []  # ["map", key, expecting_key] or ["seq", index]
    try:
        for ev in yaml.parse(text, Loader=_Loader):
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                if stack:
                    stack.pop()
                continue
            if not isinstance(
                ev,
                (
                    yaml.ScalarEvent,
                    yaml.AliasEvent,
                    yaml.MappingStartEvent,
                    yaml.SequenceStartEvent,
                ),
            ):
                continue
            if stack and stack[-1][0] == "map":
                top = stack[-1]
                if top[2]:
                    top[1] = ev.value if isinstance(ev, yaml.ScalarEvent) else "?"
                    top[2] = False
                    if isinstance(ev, yaml.ScalarEvent):
                        continue
                else:
                    top[2] = True
            elif stack and stack[-1][0] == "seq":
                stack[-1][1] += 1
            if isinstance(ev, yaml.MappingStartEvent):
                stack.append(["map", None, True])
            elif isinstance(ev, yaml.SequenceStartEvent):
                stack.append(["seq", -1])
    except yaml.YAMLError:
        pass
    path: list[str | int] = []
    for entry in stack:
        if entry[0] == "map" and entry[1] is not None:
            path.append(str(entry[1]))
        elif entry[0] == "seq" and entry[1] >= 0:
            path.append(int(entry[1]))
    return tuple(path)


def load_yaml_with_marks(path: str | Path) -> tuple[Any, Marks]:
    """Read a YAML file with safe-load semantics; return ``(data, marks)``.

    ``marks`` maps each key path tuple (``("architecture", "nodes", 3, "attributes", "depth")``)
    to the 1-based line where that node starts. Raises :class:`SpecError` naming the file when the
    file is missing, unreadable or not valid YAML.
    """
    p = Path(path)
    text = read_utf8(p)
    key = (str(p), hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest())
    if key in _PARSED:
        data, marks = _PARSED[key]
        return copy.deepcopy(data), dict(marks)
    data, marks = parse_yaml_text(text, str(p))
    if len(_PARSED) >= _PARSED_LIMIT:
        _PARSED.pop(next(iter(_PARSED)))
    _PARSED[key] = (copy.deepcopy(data), dict(marks))
    return data, marks


#: Files parsed recently, by name and a digest of their text: a run reads its architecture
#: several times (kind detection, the architecture, its problem, its sparse_optimizations); an
#: edited file has a new key. Callers get copies. Parsing, not reading, is what costs.
_PARSED: dict[tuple[str, bytes], tuple[Any, Marks]] = {}
_PARSED_LIMIT = 16


def read_utf8(path: str | Path) -> str:
    """The text of ``path`` decoded as UTF-8 (YAML's encoding).

    Raises:
        SpecError: the file is missing, not a regular file, larger than :data:`MAX_FILE_BYTES`,
            unreadable, or holds bytes that are not UTF-8 (naming the line and column of the
            first bad byte, 1-based).
    """
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise SpecError(f"{what}; expected a YAML file", file=str(p))
        if st.st_size > MAX_FILE_BYTES:
            raise SpecError(
                f"the file is {st.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,} (1 MiB)",
                file=str(p),
            )
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise SpecError(f"cannot read file: {err.strerror or err}", file=str(p)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(f"more than {MAX_FILE_BYTES:,} bytes (the limit, 1 MiB)", file=str(p))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(
            f"not UTF-8 text: byte 0x{raw[err.start]:02x} at column {col} cannot be decoded "
            "(expected a UTF-8 YAML file)",
            file=str(p),
            line=line,
            key_path=TOP_LEVEL,
        ) from None


def line_of(marks: Marks, path: KeyPath) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    p = tuple(path)
    while True:
        if p in marks:
            return marks[p]
        if not p:
            return None
        p = p[:-1]


def spec_error_at(file: str | None, marks: Marks, path: KeyPath, problem: str) -> SpecError:
    """Build a :class:`SpecError` for ``problem`` at key ``path`` of ``file`` (line from marks)."""
    line = line_of(marks, path)
    if line is None and file is not None:
        line = 1  # an empty document: point at its start
    return SpecError(problem, file=file, line=line, key_path=format_path(path) or TOP_LEVEL)


def warn_at(file: str | None, marks: Marks, path: KeyPath, problem: str) -> None:
    """Emit one :class:`SpecWarning` naming ``file:line: key.path: problem``."""
    msg = str(spec_error_at(file, marks, path, problem))
    warnings.warn(msg, SpecWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# typed cursor over loaded data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Doc:
    """A loaded YAML file: data, line marks and file name.

    ``unused`` collects the keys the loaders did not use (:meth:`Cur.warn_unused`);
    :meth:`report_unused` turns them into one :class:`SpecWarning` line for the whole file.
    """

    data: Any
    marks: Marks
    file: str
    unused: list[KeyPath] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> Doc:
        data, marks = load_yaml_with_marks(path)
        return cls(data, marks, str(path))

    def root(self) -> Cur:
        return Cur(self, (), self.data)

    def report_unused(self) -> None:
        """One :class:`SpecWarning` listing every unused key of this file (``file:line: N keys
        not used by the model (ignored): a.b (line 3), ...``), then forget them."""
        if not self.unused:
            return
        paths = list(dict.fromkeys(self.unused))
        self.unused.clear()
        shown = ", ".join(f"{format_path(p)} (line {line_of(self.marks, p)})" for p in paths[:12])
        more = f" and {len(paths) - 12} more" if len(paths) > 12 else ""
        n = len(paths)
        first = line_of(self.marks, paths[0])
        msg = str(
            SpecError(
                f"{n} key{'s' if n > 1 else ''} not used by the model (ignored): {shown}{more}",
                file=self.file,
                line=first,
            )
        )
        warnings.warn(msg, SpecWarning, stacklevel=2)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false"}


@dataclass(frozen=True)
class Cur:
    """A cursor: one value inside a :class:`Doc` with its key path, and typed accessors that
    raise located :class:`SpecError` s."""

    doc: Doc
    path: KeyPath
    value: Any

    # -- errors -----------------------------------------------------------------------------
    def error(self, problem: str) -> SpecError:
        return spec_error_at(self.doc.file, self.doc.marks, self.path, problem)

    def warn(self, problem: str) -> None:
        msg = str(self.error(problem))
        warnings.warn(msg, SpecWarning, stacklevel=3)

    @property
    def where(self) -> str:
        return format_path(self.path)

    # -- navigation -------------------------------------------------------------------------
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def as_map(self) -> Cur:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_describe(self.value)}")
        return self

    def as_list(self, allow_none: bool = True) -> Cur:
        if self.value is None and allow_none:
            return Cur(self.doc, self.path, [])
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_describe(self.value)}")
        return self

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def child(self, key: str | int) -> Cur:
        return Cur(self.doc, (*self.path, key), self.value[key])

    def req(self, *keys: str) -> Cur:
        """The first of ``keys`` present (aliases, e.g. ``data_spaces``/``data-spaces``)."""
        self.as_map()
        for k in keys:
            if k in self.value:
                return self.child(k)
        raise self.error(f"missing required key {keys[0]!r}")

    def opt(self, *keys: str) -> Cur | None:
        """The first of ``keys`` present with a non-null value, else ``None``."""
        if not isinstance(self.value, dict):
            return None
        for k in keys:
            if k in self.value and self.value[k] is not None:
                return self.child(k)
        return None

    def items(self) -> Iterator[tuple[str, Cur]]:
        self.as_map()
        for k in self.value:
            yield k, self.child(k)

    def elems(self) -> Iterator[Cur]:
        lst = self.as_list()
        for i in range(len(lst.value)):
            yield Cur(self.doc, (*self.path, i), lst.value[i])

    # -- scalars ----------------------------------------------------------------------------
    def int(self, minimum: int | None = None) -> int:
        v = self.value
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"expected an integer, got {_describe(self.value)}")
        if minimum is not None and v < minimum:
            raise self.error(f"expected an integer >= {minimum}, got {v}")
        return v

    def num(self, minimum: float | None = None, strict: bool = False) -> float:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(f"expected a number, got {_describe(v)}")
        if v != v or v in (float("inf"), float("-inf")):
            raise self.error(f"expected a finite number, got {v}")
        if minimum is not None and (v <= minimum if strict else v < minimum):
            op = ">" if strict else ">="
            raise self.error(f"expected a number {op} {minimum}, got {v}")
        return float(v)

    def str(self) -> str:
        v = self.value
        if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
            raise self.error(f"expected a string, got {_describe(v)}")
        return str(v)

    def bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {_describe(self.value)}")
        return self.value

    def str_list(self) -> tuple[str, ...]:
        """A list of strings (a single string or null also accepted)."""
        if self.value is None:
            return ()
        if isinstance(self.value, str):
            return (self.value,)
        return tuple(c.str() for c in self.elems())

    def warn_unused(self, used: Iterable[str], silent: Iterable[str] = ()) -> None:
        """Record every key of this mapping not in ``used`` or ``silent`` as unused; the file's
        loader reports them all in one warning (:meth:`Doc.report_unused`)."""
        if not isinstance(self.value, dict):
            return
        known = set(used) | set(silent)
        for k in self.value:
            if k not in known:
                self.doc.unused.append((*self.path, k))

    def reject_unknown(self, known: Iterable[str], what: str = "key") -> None:
        """Raise a :class:`SpecError` at the first key of this mapping not in ``known``, with a
        "did you mean" suggestion and the keys allowed (strict files: networks, plans, sweeps)."""
        if not isinstance(self.value, dict):
            return
        allowed = list(known)
        for k in self.value:
            if k not in allowed:
                raise self.child(k).error(
                    f"unknown {what} {k!r}{did_you_mean(str(k), allowed)}; expected one of "
                    f"{', '.join(sorted(allowed))}"
                )


def _describe(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"{str(v).lower()} (a boolean)"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, (int, float)):
        return f"{v!r} (a number)"
    return f"{v!r} (a {type(v).__name__})"


def validation_to_spec_error(
    err: ValidationError, cur: Cur, field_paths: dict[str, KeyPath] | None = None
) -> SpecError:
    """Convert a pydantic ``ValidationError`` raised while building a model from the data at
    ``cur`` into a located :class:`SpecError` (first error only; the rest summarised).

    ``field_paths`` maps a model field name to the key path (relative to ``cur``) it came from.
    """
    first = err.errors()[0]
    loc = [p for p in first.get("loc", ()) if isinstance(p, (str, int))]
    rel: KeyPath = ()
    if field_paths is None:
        rel, loc = tuple(loc), []
    elif loc and str(loc[0]) in field_paths:
        rel = field_paths[str(loc[0])]
        loc = loc[1:]
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    tail = f" (field {format_path(loc)})" if loc else ""
    path = (*cur.path, *rel)
    return spec_error_at(cur.doc.file, cur.doc.marks, path, f"{msg}{tail}{more}")


# --------------------------------------------------------------------------------------------
# dotted overrides on typed models
# --------------------------------------------------------------------------------------------
_OVERRIDE_ALIASES = {"macs": "instances"}


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"levels.GLB.depth=4096"`` into ``(["levels", "GLB", "depth"], 4096)``.

    The value is read as YAML with this module's loader (``[1:4,2:4]`` -> ``["1:4", "2:4"]``).
    """
    if "=" not in text:
        raise SpecError(f"override {text!r}: expected KEY.PATH=VALUE", key_path=None)
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise SpecError(f"override {text!r}: empty key path")
    try:
        value, _ = parse_yaml_text(raw, f"override {text!r}")
    except SpecError as err:
        raise SpecError(f"override {text!r}: cannot read the value ({err.problem})") from None
    return parts, value


def _descend(node: Any, parts: list[str], text: str, model_fields: Any) -> None:
    """Set ``parts`` inside the dumped model tree ``node`` (in place)."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        idx = None
        for i, item in enumerate(node):
            if isinstance(item, dict) and item.get("name") == head:
                idx = i
        if idx is None and head.lstrip("-").isdigit() and -len(node) <= int(head) < len(node):
            idx = int(head)
        if idx is None:
            names = [item.get("name") for item in node if isinstance(item, dict)]
            raise SpecError(
                f"override {text!r}: no entry {head!r}; valid names are {names} "
                f"(or an index 0..{len(node) - 1})"
            )
        if not rest:
            raise SpecError(f"override {text!r}: cannot replace a whole entry; name a field")
        _descend(node[idx], rest, text, model_fields)
        return
    if not isinstance(node, dict):
        raise SpecError(f"override {text!r}: {head!r} is below a plain value")
    head = head if head in node else _OVERRIDE_ALIASES.get(head, head)
    if head not in node:
        raise SpecError(f"override {text!r}: unknown key {head!r}; valid keys are {sorted(node)}")
    if rest:
        if node[head] is None:
            raise SpecError(f"override {text!r}: {head!r} is not set in this spec")
        _descend(node[head], rest, text, model_fields)
    else:
        node[head] = model_fields


def _lists(node: Any) -> Any:
    """A model as a mutable tree: models -> dicts of their fields, tuples -> lists; other values
    (``NMPattern`` ...) kept as they are so re-validation sees the same objects."""
    if isinstance(node, BaseModel):
        return {k: _lists(getattr(node, k)) for k in type(node).model_fields}
    if isinstance(node, dict):
        return {k: _lists(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_lists(v) for v in node]
    return node


def apply_overrides(model: BaseModel, overrides: Iterable[str] | None) -> Any:
    """Apply dotted-key overrides to a typed (frozen) model; return a new validated model.

    Keys are the model's own field names; list entries with a ``name`` are addressed by name
    (``levels.GLB.depth=4096``) or index; ``macs`` is an alias of ``instances``. A bad key or value
    raises :class:`SpecError` naming the override and the valid choices.
    """
    if not overrides:
        return model
    tree = _lists(model)
    for text in overrides:
        parts, value = parse_override(text)
        _descend(tree, parts, text, value)
    try:
        return type(model).model_validate(tree)
    except ValidationError as err:
        first = err.errors()[0]
        loc = format_path(p for p in first.get("loc", ()) if isinstance(p, (str, int)))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise SpecError(f"overrides {list(overrides)}: {loc}: {msg}") from None


# --------------------------------------------------------------------------------------------
# public loaders, re-exported here so other modules can use ``yaml_io.load_arch`` etc.
# --------------------------------------------------------------------------------------------
def __getattr__(name: str) -> Any:
    """Lazy re-exports of the loaders (they import this module, so no import at top)."""
    lazy = {
        "load_arch": "testy_model.spec.arch_loader",
        "load_problem": "testy_model.spec.problem_loader",
        "load_mapping": "testy_model.spec.mapping_loader",
        "load_network": "testy_model.spec.loaders",
        "load_any": "testy_model.spec.loaders",
        "validate_mapping": "testy_model.spec.validate",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(name)
