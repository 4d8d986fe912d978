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
import hashlib
import math
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testy_model.errors import SpecError
from testy_model.spec.located import TOP_LEVEL, KeyPath, Marks, clip, format_path
from testy_model.spec.yaml_compose import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_FLOAT,
    MAX_INT,
    MAX_NODES,
    MIN_FLOAT,
    PythonLoader,
    YamlLimitError,
    loader_for,
)

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


class TaggedDict(dict[str, Any]):
    """A YAML mapping that carried a local tag such as ``!Component`` (``tag == "Component"``)."""

    tag: str = ""


class TaggedList(list[Any]):
    """A YAML sequence that carried a local tag such as ``!Parallel``."""

    tag: str = ""


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


@dataclass
class _Builder:
    loader: Any  # a yaml_compose loader: its constructor builds the scalars
    file: str
    marks: Marks
    count: int = 0

    def build(self, node: yaml.Node, path: KeyPath, depth: int = 0) -> Any:
        """The plain value of ``node`` at key path ``path`` (its line recorded in ``marks``)."""
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_NODES + MAX_ALIAS_NODES or depth > 2 * MAX_DEPTH:
            # unreachable past the composer's limits; kept as a guard
            raise self._error("document too large or too deep; expected a plain tree", line, path)
        self.marks.setdefault(path, line)
        tag = node.tag or ""
        local = tag.startswith("!") and not tag.startswith("!!")
        if not local and tag not in _CORE_TAGS:
            raise self._error(
                f"tag {tag!r} is not allowed (only plain YAML and Timeloop tags such as "
                "!Component; python object tags are rejected)",
                line,
                path,
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = TaggedDict() if local else {}
            if isinstance(out, TaggedDict):
                out.tag = tag[1:]
            return self._mapping(node, out, path, depth)
        if isinstance(node, yaml.SequenceNode):
            seq: list[Any] = TaggedList() if local else []
            if isinstance(seq, TaggedList):
                seq.tag = tag[1:]
            for i, child in enumerate(node.value):
                seq.append(self.build(child, (*path, i), depth + 1))
            return seq
        if local:
            if node.value not in ("", None):
                raise self._error(f"tag {tag!r} on a scalar; expected it on a mapping", line, path)
            empty = TaggedDict()
            empty.tag = tag[1:]
            return empty
        return self._scalar(node, line, path)

    def _error(self, problem: str, line: int, path: KeyPath) -> SpecError:
        where = format_path(path) or TOP_LEVEL
        return SpecError(problem, file=self.file, line=line, key_path=where)

    def _mapping(
        self, node: yaml.MappingNode, out: dict[Any, Any], path: KeyPath, depth: int
    ) -> dict[Any, Any]:
        """Fill ``out`` with the entries of ``node``: keys are plain scalars, read as strings,
        each once; merge keys (``<<``) are flattened first."""
        self.loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error("mapping keys must be plain scalars", key_line, path)
            key = self.build(key_node, (*path, "<key>"), depth + 1)
            self.marks.pop((*path, "<key>"), None)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise self._error("mapping keys must be strings or numbers", key_line, path)
            key = str(key)
            if key in out:
                raise self._error(f"duplicate key {key!r}", key_line, path)
            self.marks[(*path, key)] = key_line
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out

    def _scalar(self, node: yaml.Node, line: int, path: KeyPath) -> Any:
        """A scalar by the loader's resolvers, refused when a number is out of range."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as err:
            raise self._error(f"cannot read scalar {clip(node.value)}: {err}", line, path) from None
        problem = number_problem(value)
        if problem is not None:
            raise self._error(f"{problem}, got {clip(node.value)}", line, path)
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
        node, loader = _compose(text)
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
    marks: Marks = {}
    if node is None:
        return None, marks
    data = _Builder(loader, file, marks).build(node, ())
    return data, marks


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    """The node graph of ``text`` and the loader that composed it (its constructor builds the
    scalars). libyaml composes when it can (``yaml_compose.loader_for``); a document it refuses
    is read again by PyYAML's own parser, whose verdict and error message are the ones given."""
    loader = loader_for(text)
    try:
        return loader.get_single_node(), loader
    except YamlLimitError:
        raise
    except yaml.YAMLError:
        if isinstance(loader, PythonLoader):
            raise
    finally:
        loader.dispose()
    loader = PythonLoader(text)
    try:
        return loader.get_single_node(), loader
    finally:
        loader.dispose()


def _path_at_error(text: str) -> KeyPath:
    """The key path being read when the YAML parser stopped (for syntax-error messages).

    Replays the parser's event stream, tracking the open mappings (current key) and sequences
    (current index) until the error.
    """
    stack: list[list[Any]] = []  # ["map", key, expecting_key] or ["seq", index]
    try:
        for ev in yaml.parse(text, Loader=PythonLoader):
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


#: Names that lived in this module before it was split (``located``: errors and warnings at a
#: key path; ``cursor``: typed reading of a parsed file; ``overrides``: dotted overrides) and the
#: loaders; ``from testy_model.spec.yaml_io import X`` keeps working for each.
_MOVED: dict[str, str] = {
    "SpecWarning": "testy_model.spec.located",
    "clip": "testy_model.spec.located",
    "did_you_mean": "testy_model.spec.located",
    "format_path": "testy_model.spec.located",
    "line_of": "testy_model.spec.located",
    "spec_error_at": "testy_model.spec.located",
    "warn_at": "testy_model.spec.located",
    "Doc": "testy_model.spec.cursor",
    "Cur": "testy_model.spec.cursor",
    "validation_to_spec_error": "testy_model.spec.cursor",
    "parse_override": "testy_model.spec.overrides",
    "apply_overrides": "testy_model.spec.overrides",
    "load_arch": "testy_model.spec.arch_loader",
    "load_problem": "testy_model.spec.problem_loader",
    "load_mapping": "testy_model.spec.mapping_loader",
    "load_network": "testy_model.spec.loaders",
    "load_any": "testy_model.spec.loaders",
    "validate_mapping": "testy_model.spec.validate",
}


def __getattr__(name: str) -> Any:
    """Import a moved name (:data:`_MOVED`) from its module on first use (PEP 562); those modules
    import this one, so they cannot be imported at the top."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
