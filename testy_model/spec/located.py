"""Where a problem is in a spec file: key paths, line marks, located errors and warnings.

Every loader names a problem as ``FILE:LINE: key.path: what was expected``: a key path is a tuple
of keys and list indices (``("architecture", "nodes", 3, "attributes", "depth")``), rendered
``architecture.nodes[3].attributes.depth``; ``marks`` maps each key path to the 1-based line where
its node starts (``spec.yaml_io`` records them while it parses).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable

from testy_model.errors import SpecError

KeyPath = tuple[str | int, ...]
Marks = dict[KeyPath, int]

#: Key path shown for problems with the document as a whole.
TOP_LEVEL = "(top level)"


class SpecWarning(UserWarning):
    """A key in a spec file that the model does not use (or an approximation it makes)."""


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
