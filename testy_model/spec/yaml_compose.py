"""Composing YAML text into PyYAML's node graph within limits (the first step of every read).

Two loaders give the same nodes: :class:`PythonLoader` (PyYAML's own scanner and parser) and,
where PyYAML was built with libyaml, :class:`FastLoader` (libyaml's C scanner and parser feeding
the same Python composer, about ten times faster on the scanning that dominates a read). Both
resolve scalars without YAML 1.1 sexagesimal numbers (``2:4`` stays a string) and compose through
:class:`_LimitedComposer`, which refuses a document past one of the limits below while it is being
composed. Text PyYAML's reader would refuse (characters outside its printable set), and every
document libyaml rejects, goes through :class:`PythonLoader`, so what is accepted and every error
message are PyYAML's.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.reader import Reader
from yaml.resolver import Resolver

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


class YamlLimitError(yaml.YAMLError):
    """A document past one of the limits below (raised inside the composer)."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        #: Key path of the node being composed (set by the composer).
        self.path: tuple[str | int, ...] = ()


class _LimitedComposer(Composer):
    """PyYAML's composer enforcing the limits below while it builds the node graph: nesting
    depth, node count, scalar length and the number of nodes reachable through aliases (each
    alias counts the full expanded size of the node it names, so an alias bomb is refused after a
    few thousand nodes instead of being expanded later by whoever walks the tree)."""

    if TYPE_CHECKING:  # provided by the parser this composer is mixed with

        def peek_event(self) -> yaml.Event: ...

    def _start_counting(self) -> None:
        self._depth = 0
        self._nodes = 0
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}
        self._path: list[str | int] = []

    def _limit(self, problem: str, event: yaml.Event) -> YamlLimitError:
        err = YamlLimitError(problem, event.start_mark.line + 1 if event.start_mark else None)
        err.path = tuple(self._path)
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
        """:meth:`compose_node` with the limits checked and the node's expanded size kept."""
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


class PythonLoader(_LimitedComposer, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader with the limited composer."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start_counting()


_CParser: Any  # libyaml's parser, where PyYAML was built with it (``yaml.__with_libyaml__``)
try:
    _CParser = importlib.import_module("yaml._yaml").CParser
except ImportError:  # pragma: no cover - a PyYAML without libyaml
    _CParser = None


if _CParser is not None:

    class FastLoader(_LimitedComposer, _CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser (events) with the limited Python composer; the
        composer comes first in the method order, so libyaml's own ``get_single_node`` is not
        used."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_counting()


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
PythonLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
PythonLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT_RE, list("-+0123456789"))
PythonLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))
if _CParser is not None:
    FastLoader.yaml_implicit_resolvers = PythonLoader.yaml_implicit_resolvers


def loader_for(text: str) -> Any:
    """The fastest loader that reads ``text`` exactly as :class:`PythonLoader` would: libyaml
    when available and ``text`` holds only characters PyYAML's reader accepts."""
    if _CParser is None or Reader.NON_PRINTABLE.search(text):
        return PythonLoader(text)
    return FastLoader(text)
