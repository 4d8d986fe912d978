"""N:M structured-sparsity patterns and TASD series.

An ``N:M`` tensor (along axis k) holds at most N non-zeros in every aligned block of M consecutive
values along k. A TASD series ``N1:M1+N2:M2+...`` approximates a tensor by a sum of such terms
(``dense`` is the empty series meaning "no decomposition, run dense").

Containment: an ``n:m`` term runs on hardware pattern ``p:q`` when every aligned q-block of the term
is guaranteed to hold at most p non-zeros. For ``m | q`` a q-block holds ``q/m`` whole m-blocks,
so the worst case is ``n·q/m`` non-zeros; for ``q | m`` an m-block's n non-zeros may all land in
one q-block, so the worst case is ``min(n, q)``. In general (m and q need not divide each
other) an aligned q-block starting at offset ``o`` into an m-block (``o`` a multiple of
``gcd(m, q)``) overlaps consecutive m-blocks by ``l_1, l_2, ...`` values and can hold
``sum_b min(n, l_b)`` non-zeros; the worst case is the maximum over the offsets, and containment
requires it to be <= p (e.g. ``1:3`` on ``2:8``: the block 0..7 overlaps 3-blocks by 3, 3, 2
values, so 3 non-zeros fit and ``1:3`` does not fit ``2:8``). A pattern with ``n == m`` is dense.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import total_ordering

_PATTERN_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")

#: Largest block size M of a pattern. Real N:M hardware uses M <= 16; 256 leaves room for
#: coarse hierarchical blocks while keeping every per-pattern computation (containment checks
#: loop over the offsets of a block) small.
MAX_M = 256
#: Most terms of one TASD series (searches consider at most 4).
MAX_TERMS = 8


def _bad(text: object, why: str) -> ValueError:
    shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:36] + "...'"
    return ValueError(
        f"invalid N:M pattern {shown}: {why} "
        f"(expected 'N:M' with integers 1 <= N <= M <= {MAX_M}, e.g. '2:4')"
    )


@total_ordering
@dataclass(frozen=True, slots=True)
class NMPattern:
    """An N:M pattern: at most ``n`` non-zeros in every aligned block of ``m`` values.

    Ordered by density ``n/m`` (then by ``m``), hashable, printed back as ``"n:m"``.
    """

    n: int
    m: int

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or not isinstance(self.m, int):
            raise _bad(f"{self.n}:{self.m}", "N and M must be integers")
        if self.m < 1:
            raise _bad(f"{self.n}:{self.m}", "M must be >= 1")
        if self.n < 1:
            raise _bad(f"{self.n}:{self.m}", "N must be >= 1")
        if self.n > self.m:
            raise _bad(f"{self.n}:{self.m}", "N must not exceed M")
        if self.m > MAX_M:
            raise _bad(f"{self.n}:{self.m}", f"M must be at most {MAX_M}")

    @classmethod
    def parse(cls, text: object) -> NMPattern:
        """Parse ``"N:M"`` (a pattern passes through); raises ``ValueError`` quoting ``text``
        when malformed or not a string."""
        if isinstance(text, NMPattern):
            return text
        if not isinstance(text, str):
            raise _bad(text, "not a string")
        match = _PATTERN_RE.match(text)
        if match is None:
            raise _bad(text, "not of the form N:M")
        if len(match.group(1)) > 6 or len(match.group(2)) > 6:
            raise _bad(text, f"M must be at most {MAX_M}")
        n, m = int(match.group(1)), int(match.group(2))
        if m < 1:
            raise _bad(text, "M must be >= 1")
        if n < 1:
            raise _bad(text, "N must be >= 1")
        if n > m:
            raise _bad(text, "N must not exceed M")
        if m > MAX_M:
            raise _bad(text, f"M must be at most {MAX_M}")
        return cls(n, m)

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"

    def __repr__(self) -> str:
        return f"NMPattern('{self.n}:{self.m}')"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, NMPattern):
            return NotImplemented
        return (self.n * other.m, self.m) < (other.n * self.m, other.m)

    @property
    def density(self) -> float:
        """Maximum kept density n/m (dimensionless)."""
        return self.n / self.m

    @property
    def is_dense(self) -> bool:
        """True when n == m (every value may be non-zero)."""
        return self.n == self.m

    @property
    def metadata_bits(self) -> int:
        """Default metadata bits per kept value: ceil(log2 m) (2:4 -> 2 bits; 1:1 -> 0 bits)."""
        return math.ceil(math.log2(self.m)) if self.m > 1 else 0

    def worst_case_per_block(self, q: int) -> int:
        """Most non-zeros an aligned q-block of an n:m tensor can hold (see module docstring)."""
        n, m = self.n, self.m
        if q % m == 0:
            return n * (q // m)
        if m % q == 0:
            return min(n, q)
        worst = 0
        for offset in range(0, m, math.gcd(m, q)):
            end = offset + q
            held = sum(
                min(n, min(end, (b + 1) * m) - max(offset, b * m)) for b in range(-(-end // m))
            )
            worst = max(worst, held)
        return worst

    def fits(self, hardware: NMPattern | str) -> bool:
        """True when every n:m tensor is also p:q for the hardware pattern ``p:q``.

        ``1:8`` fits ``2:4``; ``4:8`` does not (one 4-block may hold all four values).
        """
        hw = NMPattern.parse(hardware)
        return self.worst_case_per_block(hw.m) <= hw.n


@total_ordering
@dataclass(frozen=True, slots=True)
class TasdSeries:
    """A TASD series: an ordered tuple of N:M terms; the empty tuple is ``dense``.

    Printed back as ``"2:8+1:8"`` or ``"dense"``. Ordered by (number of terms, total kept density).
    """

    terms: tuple[NMPattern, ...] = ()

    @classmethod
    def parse(cls, text: object) -> TasdSeries:
        """Parse ``"2:8+1:8"``, ``"1:4"`` or ``"dense"`` (a series passes through, a pattern is a
        one-term series); ``ValueError`` quoting ``text`` if bad or not a string."""
        if isinstance(text, TasdSeries):
            return text
        if isinstance(text, NMPattern):
            return cls((text,))
        if not isinstance(text, str):
            raise ValueError(f"invalid TASD series {text!r}: not a string")
        stripped = text.strip()
        if stripped.lower() == "dense":
            return cls(())
        if not stripped:
            raise ValueError(
                f"invalid TASD series {text!r}: empty (expected 'dense' or N:M terms joined by "
                "'+', e.g. '2:8+1:8')"
            )
        parts = stripped.split("+")
        if len(parts) > MAX_TERMS:
            raise ValueError(
                f"invalid TASD series: {len(parts)} terms; the limit is {MAX_TERMS} (a series is "
                "'dense' or N:M terms joined by '+', e.g. '2:8+1:8')"
            )
        terms = []
        for part in parts:
            try:
                terms.append(NMPattern.parse(part))
            except ValueError as err:
                why = str(err).split(": ", 1)[-1]
                raise ValueError(
                    f"invalid TASD series {text!r}: term {part!r}: {why}; a series is 'dense' or "
                    "N:M terms joined by '+', e.g. '2:8+1:8'"
                ) from err
        return cls(tuple(terms))

    def __str__(self) -> str:
        return "+".join(str(t) for t in self.terms) if self.terms else "dense"

    def __repr__(self) -> str:
        return f"TasdSeries('{self}')"

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self) -> Iterator[NMPattern]:
        return iter(self.terms)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, TasdSeries):
            return NotImplemented
        return self._key() < other._key()

    def _key(self) -> tuple:
        return (len(self.terms), self.max_density, tuple((t.n, t.m) for t in self.terms))

    @property
    def is_dense(self) -> bool:
        """True for the empty series (no decomposition)."""
        return not self.terms

    @property
    def max_density(self) -> float:
        """Upper bound of the kept density: sum of n_i/m_i, capped at 1 (1.0 for dense)."""
        if not self.terms:
            return 1.0
        return min(1.0, sum(t.density for t in self.terms))

    def is_lossless_for_blocks(self) -> bool:
        """True when all terms share one M and their N sum to at least M (keeps everything)."""
        if not self.terms:
            return True
        ms = {t.m for t in self.terms}
        return len(ms) == 1 and sum(t.n for t in self.terms) >= self.terms[0].m
