"""Typed reading of a parsed YAML file: :class:`Doc` (data, line marks, file name) and
:class:`Cur` (one value with its key path and accessors that raise located errors), and the
conversion of a pydantic ``ValidationError`` into a located :class:`SpecError`."""

from __future__ import annotations

import builtins
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testy_model.errors import SpecError
from testy_model.spec.located import (
    KeyPath,
    Marks,
    SpecWarning,
    did_you_mean,
    format_path,
    line_of,
    spec_error_at,
)
from testy_model.spec.yaml_io import load_yaml_with_marks

if TYPE_CHECKING:
    from pydantic import ValidationError


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

    def str_list(self) -> tuple[builtins.str, ...]:
        """A list of strings (a single string or null also accepted)."""
        if self.value is None:
            return ()
        if isinstance(self.value, str):
            return (self.value,)
        return tuple(c.str() for c in self.elems())

    def warn_unused(
        self, used: Iterable[builtins.str], silent: Iterable[builtins.str] = ()
    ) -> None:
        """Record every key of this mapping not in ``used`` or ``silent`` as unused; the file's
        loader reports them all in one warning (:meth:`Doc.report_unused`)."""
        if not isinstance(self.value, dict):
            return
        known = set(used) | set(silent)
        for k in self.value:
            if k not in known:
                self.doc.unused.append((*self.path, k))

    def reject_unknown(self, known: Iterable[builtins.str], what: builtins.str = "key") -> None:
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


def warn_unknown_top(root: Cur, known: frozenset[str] | set[str]) -> None:
    """At most one summary warning for unknown top-level blocks."""
    if not isinstance(root.value, dict):
        return
    unknown = sorted(k for k in root.value if k not in known)
    if unknown:
        root.child(unknown[0]).warn(f"top-level blocks {unknown} are not used (ignored)")
