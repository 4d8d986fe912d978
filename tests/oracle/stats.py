"""Parser of Timeloop v3.0.3 ``timeloop-model.stats.txt`` into :class:`RunStats`.

:class:`RunStats` is also what :func:`oracle.ours.evaluate_case` returns for this project, so the
two tools are compared on one structure (:func:`RunStats.quantities`).

How v3.0.3 prints (``src/model/buffer.cpp`` ``BufferLevel::Print``, ``src/model/arithmetic.cpp``,
``src/model/topology.cpp`` ``operator<<``), and how this parser reads it:

- Two layouts: *dense* (no ``sparse_optimizations`` given) prints ``Scalar reads
  (per-instance)`` etc. and ``Computes (total)``; *sparse* (a sparse_optimizations file given,
  even an empty one) prints ``Algorithmic/Actual/Gated/Skipped scalar reads (per-instance)``, the
  per-rank ``(metadata, payload)`` format counts and ``Algorithmic/Actual/... Computes``. A dense
  file's scalar counts are stored as the *actual* counts.
- Access counts are integers **per instance**; the level-wide total is the count × utilized
  instances (``Utilized instances (average)`` in the sparse layout, ``Utilized instances
  (max)``, i.e. ``int(average)``, in the dense one): this is how Timeloop itself multiplies
  per-instance energy into ``Energy (total)``.
- Energies are printed with two decimals (µJ in the summary, pJ per level). Exact energies come
  from the summary's ``fJ/Compute`` table: level energy in pJ = fJ/Compute × computes / 1000
  (with ``fJ/Algorithmic-Compute`` × algorithmic computes when that count is larger: more
  significant digits). Each energy carries its absolute uncertainty (half a printed unit).
- Only tensors a level keeps are printed; a tensor absent at a level has no counts there.

Units: cycles; energies pJ; accesses in words (scalars) of the level's word bits; format
counts in metadata / payload *units* per rank (rank 0 innermost, as Timeloop numbers them).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: access kinds a storage level counts
KINDS: tuple[str, ...] = ("reads", "fills", "updates")
#: splits of a sparse access count (``actual`` is what a dense file prints)
SPLITS: tuple[str, ...] = ("actual", "gated", "skipped", "algorithmic")
#: compute count splits
COMPUTE_SPLITS: tuple[str, ...] = ("actual", "gated", "skipped", "algorithmic")

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|nan|-nan"
_RANK_RE = re.compile(
    rf"^\s*Rank (\d+) \(metadata, payload\):\s*\(\s*({_NUM}),\s*({_NUM})\s*\)\s*$"
)
_KV_RE = re.compile(r"^(\s*)([^:]*?)\s*:\s*(.*?)\s*$")
_LEVEL_RE = re.compile(r"^Level (\d+)\s*$")
_NAME_RE = re.compile(r"^=== (.+) ===\s*$")
_DS_RE = re.compile(r"^    (\S+):\s*$")
_SUMMARY_EQ_RE = re.compile(r"^\s*(.+?)\s*=\s*(\S+)\s*$")


class StatsParseError(ValueError):
    """A stats file that does not read as Timeloop v3.0.3 output (message names the line)."""


def _num(text: str) -> float | None:
    """The leading number of a printed value (``"0.54 pJ"`` -> 0.54); ``-``/empty -> None.

    Integers of 2**63 or more are uint64 counts that wrapped below zero inside Timeloop (e.g.
    ``Gated scalar reads : 18446744073709551612``): they are returned as the negative value
    they stand for (-4), which :mod:`oracle.compare` reports as ``timeloop_invalid``.
    """
    tok = text.strip().split()
    if not tok or tok[0] == "-":
        return None
    if tok[0].isdigit():
        n = int(tok[0])
        return float(n - 2**64) if n >= 2**63 else float(n)
    try:
        return float(tok[0])
    except ValueError:
        return None


@dataclass
class TensorStats:
    """One data space at one storage level.

    ``total`` holds level-wide counts (sum over utilized instances), keyed
    ``"<kind>"`` (actual) and ``"<kind>.<split>"`` for the gated / skipped / algorithmic splits
    (kinds: reads, fills, updates; plus ``temporal_reductions``). ``per_instance`` holds the
    printed per-instance counts (Timeloop only; None for this project). ``format_total`` maps
    ``"format_<kind>[.<split>]"`` to per-rank ``[metadata_units, payload_units]`` (rank 0
    innermost), level-wide. ``format_bits`` maps ``"format_<kind>[.<split>]"`` to level-wide
    format bits (metadata units × metadata word bits + payload units × payload word bits), when
    the word bits are known.
    """

    name: str
    total: dict[str, float] = field(default_factory=dict)
    per_instance: dict[str, float] | None = None
    format_total: dict[str, list[list[float]]] = field(default_factory=dict)
    format_per_instance: dict[str, list[list[float]]] | None = None
    format_bits: dict[str, float] = field(default_factory=dict)
    instances: float | None = None
    instances_max: float | None = None
    tile_size: float | None = None
    tile_shape: float | None = None
    partition_size: float | None = None
    representation: str | None = None
    format_capacity: list[list[float]] | None = None
    energy_pj: float | None = None


@dataclass
class LevelStats:
    """One storage level: spec echo (instances, word bits, block size, size in words), its
    cycles and bandwidth throttling, energy (pJ, all instances) and per-tensor statistics."""

    name: str
    index: int | None = None
    instances: float | None = None
    mesh: list[float] | None = None
    word_bits: float | None = None
    block_size: float | None = None
    size: float | None = None
    cycles: float | None = None
    throttling: float | None = None
    energy_pj: float | None = None
    energy_abs_err: float = 0.0
    tensors: dict[str, TensorStats] = field(default_factory=dict)


@dataclass
class ComputeStats:
    """The arithmetic level: totals of computes by split, utilized instances, cycles, energy
    (pJ)."""

    name: str
    instances: float | None = None
    utilized_instances: float | None = None
    cycles: float | None = None
    computes: dict[str, float] = field(default_factory=dict)
    energy_pj: float | None = None
    energy_abs_err: float = 0.0


@dataclass
class RunStats:
    """One evaluation (Timeloop's or ours) of one case.

    ``levels`` are the storage levels innermost first (Timeloop's ``Level 1..n``).
    ``energy_pj`` is the total energy in pJ, ``energy_abs_err`` its printing uncertainty (pJ).
    ``sparse``: the sparse print layout (a sparse_optimizations file was given).
    ``valid``: ours only, whether the project judged the mapping valid (None: unknown).
    """

    source: str
    cycles: float
    energy_pj: float
    energy_abs_err: float = 0.0
    sparse: bool = False
    valid: bool | None = None
    compute: ComputeStats | None = None
    levels: list[LevelStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # ---- access ---------------------------------------------------------------------------

    def level(self, name: str) -> LevelStats:
        """The storage level called ``name`` (KeyError if none)."""
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"no level {name!r}; have {[lv.name for lv in self.levels]}")

    def quantities(self) -> dict[str, float]:
        """Flat ``{quantity: value}`` of everything comparable, level-wide totals.

        Names: ``cycles``, ``energy_pj``, ``compute.<split>``, ``<Level>.energy_pj``,
        ``<Level>.<Tensor>.<kind>`` (actual), ``<Level>.<Tensor>.<kind>.<split>``,
        ``<Level>.<Tensor>.format_<kind>[.<split>].bits`` and per rank
        ``<Level>.<Tensor>.format_<kind>[.<split>].r<k>.md|pl``.
        """
        q: dict[str, float] = {"cycles": self.cycles, "energy_pj": self.energy_pj}
        if self.compute is not None:
            for k, v in self.compute.computes.items():
                q[f"compute.{k}"] = v
        for lv in self.levels:
            if lv.energy_pj is not None:
                q[f"{lv.name}.energy_pj"] = lv.energy_pj
            for t, ts in lv.tensors.items():
                for k, v in ts.total.items():
                    if k != "temporal_reductions":  # derived (updates - first), not compared
                        q[f"{lv.name}.{t}.{k}"] = v
                for k, v in ts.format_bits.items():
                    q[f"{lv.name}.{t}.{k}.bits"] = v
                for k, ranks in ts.format_total.items():
                    for r, (md, pl) in enumerate(ranks):
                        q[f"{lv.name}.{t}.{k}.r{r}.md"] = md
                        q[f"{lv.name}.{t}.{k}.r{r}.pl"] = pl
        return q

    def abs_uncertainty(self) -> dict[str, float]:
        """Printing uncertainty (absolute) of the quantities that have one (energies)."""
        u = {"energy_pj": self.energy_abs_err}
        if self.compute is not None:
            u["compute.energy_pj"] = self.compute.energy_abs_err
        for lv in self.levels:
            u[f"{lv.name}.energy_pj"] = lv.energy_abs_err
        return u

    # ---- (de)serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunStats:
        """Inverse of :meth:`to_dict`."""
        comp = d.get("compute")
        levels = []
        for lv in d.get("levels", []):
            tensors = {k: TensorStats(**v) for k, v in lv.get("tensors", {}).items()}
            levels.append(LevelStats(**{**lv, "tensors": tensors}))
        return cls(
            **{
                **d,
                "compute": ComputeStats(**comp) if comp else None,
                "levels": levels,
            }
        )

    def to_json(self, path: str | Path | None = None) -> str:
        """Compact JSON text (written to ``path`` when given)."""
        text = json.dumps(_compact(self.to_dict()), separators=(",", ":"), sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> RunStats:
        """Load from a JSON file path or JSON text."""
        p = Path(path_or_text) if not str(path_or_text).lstrip().startswith("{") else None
        text = p.read_text() if p is not None else str(path_or_text)
        return cls.from_dict(json.loads(text))


def _compact(x: Any) -> Any:
    """Integral floats as ints, None-valued keys dropped: smaller recorded JSON."""
    if isinstance(x, dict):
        return {k: _compact(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_compact(v) for v in x]
    if isinstance(x, float) and math.isfinite(x) and x == int(x) and abs(x) < 2**53:
        return int(x)
    return x


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------

_DENSE_KEYS = {
    "Scalar reads (per-instance)": "reads",
    "Scalar fills (per-instance)": "fills",
    "Scalar updates (per-instance)": "updates",
    "Temporal reductions (per-instance)": "temporal_reductions",
}
_SPLIT_WORD = {"Algorithmic": "algorithmic", "Actual": "actual", "Gated": "gated"}
_SPLIT_WORD["Skipped"] = "skipped"
_SPARSE_RE = re.compile(r"^(Algorithmic|Actual|Gated|Skipped) scalar (reads|fills|updates)")
_FORMAT_RE = re.compile(r"^(Actual|Gated|Skipped) scalar format (reads|fills|updates)")


def _count_key(kind: str, split: str) -> str:
    return kind if split == "actual" else f"{kind}.{split}"


def _format_key(kind: str, split: str) -> str:
    return f"format_{kind}" if split == "actual" else f"format_{kind}.{split}"


class _TensorBuilder:
    """Accumulates one data space block's per-instance numbers."""

    def __init__(self, name: str) -> None:
        self.ts = TensorStats(name=name, per_instance={}, format_per_instance={})
        self.pending: list[list[float]] | None = None  # rank lines go here

    def kv(self, key: str, value: str) -> None:
        ts = self.ts
        assert ts.per_instance is not None and ts.format_per_instance is not None
        self.pending = None
        v = _num(value)
        if key in _DENSE_KEYS:
            ts.per_instance[_DENSE_KEYS[key]] = v or 0.0
        elif m := _SPARSE_RE.match(key):
            ts.per_instance[_count_key(m.group(2), _SPLIT_WORD[m.group(1)])] = v or 0.0
        elif m := _FORMAT_RE.match(key):
            fk = _format_key(m.group(2), _SPLIT_WORD[m.group(1)])
            if value == "":
                ts.format_per_instance[fk] = []
                self.pending = ts.format_per_instance[fk]
            else:
                ts.format_per_instance[fk] = []  # printed as ": 0"
        elif key == "Temporal reductions (per-instance)":
            ts.per_instance["temporal_reductions"] = v or 0.0
        elif key == "Partition size":
            ts.partition_size = v
        elif key in ("Utilized capacity", "Max utilized data storage capacity"):
            ts.tile_size = v
        elif key == "Data tile shape":
            ts.tile_shape = v
        elif key == "Utilized instances (max)":
            ts.instances_max = v
        elif key == "Utilized instances (average)":
            ts.instances = v
        elif key == "Representation format":
            ts.representation = value.strip()
        elif key == "Max utilized Repr format storage capacity":
            ts.format_capacity = []
            if value == "":
                self.pending = ts.format_capacity
        elif key == "Energy (total)":
            ts.energy_pj = v

    def rank(self, rank: int, md: float, pl: float) -> None:
        if self.pending is None:
            return
        while len(self.pending) <= rank:
            self.pending.append([0.0, 0.0])
        self.pending[rank] = [md, pl]

    def finish(self) -> TensorStats:
        ts = self.ts
        assert ts.per_instance is not None and ts.format_per_instance is not None
        if ts.instances is None:
            ts.instances = ts.instances_max
        n = ts.instances if ts.instances is not None else 1.0
        ts.total = {k: v * n for k, v in ts.per_instance.items()}
        ts.format_total = {
            k: [[md * n, pl * n] for md, pl in ranks]
            for k, ranks in ts.format_per_instance.items()
            if ranks
        }
        return ts


class _SummaryParser:
    """The ``Summary Stats`` section: ``Key: value`` and ``Key = value`` lines, and the
    ``fJ/Compute`` / ``fJ/Algorithmic-Compute`` tables (name = value lines up to a blank one)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.fj: dict[str, dict[str, float]] = {}
        self._table: str | None = None

    def feed(self, line: str) -> None:
        stripped = line.strip()
        if stripped.startswith("fJ/"):
            self._table = stripped
            self.fj[stripped] = {}
            return
        if not stripped:
            self._table = None
            return
        m = _SUMMARY_EQ_RE.match(line)
        if self._table is not None:
            if m:
                self.fj[self._table][m.group(1)] = float(m.group(2))
            return
        if m and ":" not in line:
            self.values[m.group(1)] = float(m.group(2))
            return
        kv = _KV_RE.match(line)
        if kv and (v := _num(kv.group(3))) is not None:
            self.values[kv.group(2)] = v


class _LevelsParser:
    """The ``Buffer and Arithmetic Levels`` section: ``Level n`` / ``=== name ===`` headers,
    SPECS and STATS key-value lines, data-space blocks and their per-rank lines."""

    def __init__(self) -> None:
        self.levels: list[LevelStats] = []
        self.compute: ComputeStats | None = None
        self.sparse = False
        self._index: int | None = None
        self._cur: LevelStats | ComputeStats | None = None
        self._tensor: _TensorBuilder | None = None
        self._in_stats = False

    def close_tensor(self) -> None:
        if self._tensor is not None and isinstance(self._cur, LevelStats):
            ts = self._tensor.finish()
            self._cur.tensors[ts.name] = ts
        self._tensor = None

    def _header(self, stripped: str) -> bool:
        if m := _LEVEL_RE.match(stripped):
            self.close_tensor()
            self._index, self._cur, self._in_stats = int(m.group(1)), None, False
            return True
        if m := _NAME_RE.match(stripped):
            self.close_tensor()
            if self._index == 0:
                self.compute = ComputeStats(name=m.group(1))
                self._cur = self.compute
            else:
                self._cur = LevelStats(name=m.group(1), index=self._index)
                self.levels.append(self._cur)
            self._in_stats = False
            return True
        if self._cur is not None and stripped in ("STATS", "SPECS", "MAPPING"):
            self.close_tensor()
            self._in_stats = stripped == "STATS"
            return True
        return False

    def feed(self, line: str) -> None:
        stripped = line.strip()
        if self._header(stripped) or self._cur is None:
            return
        if m := _RANK_RE.match(line):
            if self._tensor is not None:
                self._tensor.rank(int(m.group(1)), float(m.group(2)), float(m.group(3)))
            return
        if stripped.startswith("Breakdown") or not stripped:
            return
        if isinstance(self._cur, LevelStats) and self._in_stats and (m := _DS_RE.match(line)):
            self.close_tensor()
            self._tensor = _TensorBuilder(m.group(1))
            return
        kv = _KV_RE.match(line)
        if kv is None:
            # a key without ':' (its per-rank values follow on the next lines)
            if self._tensor is not None:
                self._tensor.kv(stripped, "")
            return
        key, value = kv.group(2), kv.group(3)
        if self._tensor is not None:
            self._tensor.kv(key, value)
            self.sparse |= bool(_SPARSE_RE.match(key))
            return
        _level_kv(self._cur, key, value, self._in_stats)
        if isinstance(self._cur, ComputeStats) and key.startswith("Actual Computes"):
            self.sparse = True


def parse_stats(text: str, source: str = "timeloop-v3.0.3") -> RunStats:
    """Parse the text of a v3.0.3 ``timeloop-model.stats.txt``.

    Raises :class:`StatsParseError` when the summary (cycles, computes, fJ/Compute total) is
    missing: a truncated or foreign file.
    """
    levels, summary = _LevelsParser(), _SummaryParser()
    section = "levels"
    for line in text.splitlines():
        stripped = line.strip()
        if section == "levels" and stripped in ("Networks", "Operational Intensity Stats"):
            levels.close_tensor()
            section = "networks"
        elif stripped == "Summary Stats":
            levels.close_tensor()
            section = "summary"
        elif section == "summary":
            summary.feed(line)
        elif section == "levels":
            levels.feed(line)
    levels.close_tensor()
    if "Cycles" not in summary.values:
        raise StatsParseError("no 'Cycles:' in the Summary Stats section (truncated file?)")
    return _assemble(
        levels.levels, levels.compute, summary.values, summary.fj, levels.sparse, source
    )


def _level_kv(cur: LevelStats | ComputeStats, key: str, value: str, in_stats: bool) -> None:
    v = _num(value)
    if isinstance(cur, ComputeStats):
        if key == "Instances":
            cur.instances = v
        elif key in ("Utilized instances", "Utilized instances (average)"):
            cur.utilized_instances = v
        elif key == "Cycles":
            cur.cycles = v
        elif key == "Computes (total)":
            cur.computes["actual"] = v or 0.0
        elif m := re.match(r"^(Algorithmic|Actual|Gated|Skipped) Computes \(total\)$", key):
            cur.computes[_SPLIT_WORD[m.group(1)]] = v or 0.0
        elif key == "Energy (total)":
            cur.energy_pj = v
        return
    if not in_stats:
        if key == "Instances":
            cur.instances = v
            mm = re.search(r"\((\d+)\*(\d+)\)", value)
            if mm:
                cur.mesh = [float(mm.group(1)), float(mm.group(2))]
        elif key in ("Word bits", "Data word bits"):
            cur.word_bits = v
        elif key in ("Block size", "Data block size"):
            cur.block_size = v
        elif key in ("Size", "Data storage size"):
            cur.size = v
    else:
        if key == "Cycles":
            cur.cycles = v
        elif key == "Bandwidth throttling":
            cur.throttling = v


def _assemble(
    levels: list[LevelStats],
    compute: ComputeStats | None,
    summary: dict[str, float],
    fj: dict[str, dict[str, float]],
    sparse: bool,
    source: str,
) -> RunStats:
    actual = summary.get("Actual Computes", summary.get("Computes"))
    algorithmic = summary.get("Algorithmic Computes", actual)
    per_actual = fj.get("fJ/Compute", {})
    per_alg = fj.get("fJ/Algorithmic-Compute", {})
    # the table with the larger divisor has more significant digits
    table, count = per_actual, actual
    if per_alg and algorithmic and actual is not None and algorithmic > actual:
        table, count = per_alg, algorithmic
    finite = bool(table) and count not in (None, 0) and math.isfinite(table.get("Total", math.nan))
    if finite:
        assert count is not None

        def energy(name: str) -> tuple[float | None, float]:
            if name not in table:
                return None, 0.0
            return table[name] * count / 1000.0, 0.005 * count / 1000.0

        total, total_err = energy("Total")
        assert total is not None
    else:
        # no computes: only the printed µJ (2 decimals) is left
        def energy(name: str) -> tuple[float | None, float]:
            return None, 0.0

        total = summary.get("Energy", 0.0) * 1e6
        total_err = 0.005 * 1e6
    for lv in levels:
        e, err = energy(lv.name)
        if e is None:
            parts = [t.energy_pj for t in lv.tensors.values() if t.energy_pj is not None]
            e, err = (sum(parts), 0.005 * max(1, len(parts))) if parts else (0.0, 0.0)
        lv.energy_pj, lv.energy_abs_err = e, err
    if compute is not None:
        e, err = energy(compute.name)
        if e is not None:
            compute.energy_pj, compute.energy_abs_err = e, err
        elif compute.energy_pj is not None:
            compute.energy_abs_err = 0.005
        if not sparse:
            compute.computes.setdefault("actual", actual or 0.0)
    return RunStats(
        source=source,
        cycles=summary["Cycles"],
        energy_pj=float(total),
        energy_abs_err=float(total_err),
        sparse=sparse,
        compute=compute,
        levels=levels,
    )


def parse_stats_file(path: str | Path, source: str = "timeloop-v3.0.3") -> RunStats:
    """:func:`parse_stats` of a file."""
    return parse_stats(Path(path).read_text(), source=source)


def add_format_bits(stats: RunStats, word_bits: dict[tuple[str, str], list[list[int]]]) -> None:
    """Fill ``format_bits`` of every tensor from its per-rank unit counts and
    ``word_bits[(level, tensor)] = [[metadata_bits, payload_bits], ...]`` (rank 0 innermost),
    as :func:`oracle.formats.format_word_bits` derives them from a case's inputs."""
    for lv in stats.levels:
        for t, ts in lv.tensors.items():
            bits = word_bits.get((lv.name, t))
            if not bits:
                continue
            for k, ranks in ts.format_total.items():
                s = 0.0
                for r, (md, pl) in enumerate(ranks):
                    if r < len(bits):
                        s += md * bits[r][0] + pl * bits[r][1]
                ts.format_bits[k] = s
            # actual reads/fills printed as ": 0" still get an explicit zero (compared)
            for kind in ("reads", "fills"):
                fk = _format_key(kind, "actual")
                if ts.format_per_instance is not None and fk in ts.format_per_instance:
                    ts.format_bits.setdefault(fk, 0.0)
