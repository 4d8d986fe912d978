"""Counting conventions: how a Timeloop-family tool counts traffic (an explicit choice, never
inferred from a file's syntax).

Two conventions exist in the tools this project reproduces; a file does not say which one it was
written for, so the user chooses (``--conventions`` on the command line, ``conventions=`` in the
Python API, ``conventions:`` in a sweep file):

``timeloop`` (the default)
    Timeloop v3.0.3 (NVlabs/timeloop tag v3.0.3): a mapping's ``stream:`` lists are ignored (a
    tensor that bypasses a level is not counted there), and the first fill of an output tile is
    not counted (``src/loop-analysis/tiling.cpp``, ``ComputeReadUpdateReductionAccesses_Legacy``:
    ``fills = parent_access_share − partition_size``).

``sparseloop-2022``
    The Sparseloop MICRO 2022 artifact (its ``reference_stats.txt``): a tensor named under a
    mapping's ``stream:`` at a level it bypasses is counted at that level (reads = fills = the
    words passing through), and the first fill of each output tile is counted
    (``fills = parent_access_share``).
"""

from __future__ import annotations

from enum import Enum

from testy_model.errors import SpecError


class Conventions(str, Enum):
    """The counting convention of one evaluation (module docstring)."""

    TIMELOOP = "timeloop"
    SPARSELOOP_2022 = "sparseloop-2022"

    @classmethod
    def parse(cls, value: Conventions | str | None) -> Conventions:
        """A convention from its name (``None`` → ``timeloop``); :class:`SpecError` naming the
        accepted values otherwise. Underscores and case are tolerated (``sparseloop_2022``)."""
        if value is None:
            return cls.TIMELOOP
        if isinstance(value, Conventions):
            return value
        text = str(value).strip().lower().replace("_", "-")
        for c in cls:
            if c.value == text:
                return c
        raise SpecError(
            f"unknown counting conventions {value!r} (expected one of {[c.value for c in cls]})"
        )

    @property
    def counts_streams(self) -> bool:
        """True when ``stream:`` lists are counted at the level a tensor streams through."""
        return self is Conventions.SPARSELOOP_2022

    @property
    def output_first_fill(self) -> bool:
        """True when the first fill of an output tile is counted as a fill."""
        return self is Conventions.SPARSELOOP_2022

    def __str__(self) -> str:
        return self.value


#: Names accepted on the command line.
CONVENTION_NAMES: tuple[str, ...] = tuple(c.value for c in Conventions)
