"""The project's own error types.

Every problem with user input is raised as a :class:`TestyModelError` (or a subclass), never as a
raw traceback from deep inside. :class:`SpecError` carries where in which file the problem is.
"""

from __future__ import annotations


class TestyModelError(Exception):
    """Base class of every error this package raises on purpose."""

    __test__ = False  # not a pytest test class


class SpecError(TestyModelError, ValueError):
    """A problem in an input file or spec.

    The message reads ``FILE:LINE: KEY.PATH: what is wrong (expected ...)``; the parts that are
    unknown are left out.

    Attributes:
        file: path of the offending file, or ``None`` for in-memory specs.
        line: 1-based line number in ``file`` where the offending node starts, or ``None``.
        key_path: dotted key path of the offending node, e.g.
            ``architecture.nodes[3].attributes.depth``.
        problem: the bare description of what is wrong and what was expected.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key_path: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        self.key_path = key_path
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file is not None:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        key = f"{self.key_path}: " if self.key_path else ""
        return f"{where}{key}{self.problem}"


class MappingError(SpecError):
    """A mapping that does not fit its architecture or workload (factors, capacity, fan-out)."""
