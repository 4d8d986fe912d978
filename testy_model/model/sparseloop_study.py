"""Sparseloop compatibility: load a Sparseloop case folder and evaluate it with this tool's model.

A case folder (as in the Sparseloop artifact's sparse-tensor-core study) holds
``aggregated_input.yaml`` (Timeloop v0.3 architecture, problem, ``sparse_optimizations``),
``map.yaml`` (the mapping), ``ERT.yaml`` and ``ART.yaml`` (Accelergy energies, areas).

The pipeline reads as: load specs (``spec.arch_loader``/``problem_loader``/``mapping_loader``,
``spec.sparseloop``, ``spec.accelergy``) -> loops of the mapping -> dense per-level counts ->
sparse split (``model.sparse``) -> energy, cycles -> :class:`StudyReport`.

Energy (pJ), for every level l and tensor t, with per-word energies e = ERT vector energy /
block_size and per-bit metadata energies e_md = ERT metadata energy / metadata_width:
    E_l,t = reads_actual·e_read + (fills + updates)_actual·e_write
          + reads_gated·e_gated_read + updates_gated·e_gated_write
          + metadata_read_bits·e_md_read + metadata_fill_bits·e_md_write
and E_MAC = actual·mac_random + gated·mac_gated + skipped·mac_skipped (spatially skipped MACs
cost nothing). Cycles = max(compute cycles, max_l level cycles), with compute cycles =
actual MACs / utilized MAC units (gated MACs take no compute cycle) and level cycles =
max(read words / read bandwidth, write words / write bandwidth) per utilized instance, where
the words are actual + gated accesses (a gated access still occupies the port) plus metadata
bits converted to words of ``datawidth`` bits (bandwidth in words per cycle). Both rules are
Sparseloop's, as its 04.2.1-eyeriss-like-gating reference shows: mac cycles 1,054,311 =
164,472,423 / 156, weights_spad cycles (1,054,311 + 2,779,545 gated reads) / 2 = 1,916,928.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from testy_model.errors import SpecError
from testy_model.model.sparse import (
    AccessSplit,
    DenseLevelCounts,
    LevelView,
    Loop,
    dense_level_counts,
    fixed_structured_pattern,
    level_cycles,
    sparse_level_counts,
    throttle,
)
from testy_model.report import LayerResult, Report
from testy_model.spec.accelergy import (
    AreaTable,
    EnergyTable,
    apply_art,
    apply_ert,
    load_art,
    load_ert,
)
from testy_model.spec.arch import Architecture
from testy_model.spec.mapping import Mapping
from testy_model.spec.sparseloop import (
    SparseOptimizations,
    load_sparse_optimizations,
    load_yaml_marked,
    norm_key,
    sparse_opts_from_support,
)
from testy_model.spec.workload import Density, Problem


class StudyCase(NamedTuple):
    """Everything one Sparseloop case says, in this tool's types (``stream``: level -> tensors
    that pass through it while bypassed, the artifact's ``stream:`` lists).

    ``output_first_fill``: count the first fill of each output tile at a storage level. True for
    the Sparseloop artifact's v0.3 inputs (its ``reference_stats.txt`` counts them); False for
    Timeloop v0.4 inputs, whose Sparseloop reference outputs count only fills that bring partial
    sums back (e.g. 04.2.1-eyeriss-like-gating psum_spad: 314,496 fills per instance = 319,488
    partial-sum words − 4,992 distinct outputs; 02.2.2 and 03.2.3 Buffer outputs: 0 fills).
    """

    arch: Architecture
    problem: Problem
    mapping: Mapping
    sparse_opts: SparseOptimizations
    ert: EnergyTable | None
    art: AreaTable | None
    stream: dict[str, frozenset[str]]
    output_first_fill: bool = True


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def fixed_structured_to_nm(problem: Problem, agg_path: Path) -> Problem:
    """Sparseloop's ``fixed-structured`` density d < 1 becomes an explicit N:M density (see
    :func:`fixed_structured_pattern`); the file's other distributions are kept as loaded."""
    doc = load_yaml_marked(agg_path)
    data = doc.data if isinstance(doc.data, dict) else {}
    inst = (data.get("problem") or {}).get("instance") or {}
    dens = inst.get("densities") or {}
    new = dict(problem.densities)
    for t, spec in dens.items():
        if not isinstance(spec, dict):
            continue
        spec_n = {norm_key(k): v for k, v in spec.items()}
        dist = str(spec_n.get("distribution", "")).replace("-", "_")
        raw = spec_n.get("density")
        if raw is None:  # not given (as load_problem reads it): dense
            raw = 1.0
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            continue  # load_problem has already rejected it, naming the line
        d = float(raw)
        if dist != "fixed_structured" or t not in problem.tensor_names:
            continue
        pat = fixed_structured_pattern(d)
        new[t] = (
            Density()
            if d >= 1.0
            else (
                Density(kind="nm", pattern=f"{pat[0]}:{pat[1]}")
                if pat
                else Density(kind="bernoulli", density=d)
            )
        )
    return problem.model_copy(update={"densities": new})


def load_stream(map_path: str | Path) -> dict[str, frozenset[str]]:
    """The ``stream:`` lists of the ``datatype`` entries of a Sparseloop mapping file.

    Raises:
        SpecError: a ``stream`` that is not a list of names (file, line, key path).
    """
    doc = load_yaml_marked(map_path)
    data = doc.data
    entries = data.get("mapping") if isinstance(data, dict) else data
    out: dict[str, frozenset[str]] = {}
    for i, e in enumerate(entries or []):
        if not isinstance(e, dict) or e.get("type") != "datatype" or "stream" not in e:
            continue
        s = e["stream"] or []
        if not isinstance(s, list):
            raise doc.error(("mapping", i, "stream"), "expected a list of data-space names")
        out[str(e.get("target"))] = frozenset(str(x) for x in s)
    return out


def has_sparse_optimizations(path: str | Path) -> bool:
    """Whether the YAML file at ``path`` holds a top-level ``sparse_optimizations`` block or
    (Timeloop v0.4) an architecture node with its own ``sparse_optimizations``."""
    from testy_model.spec.yaml_io import load_yaml_with_marks

    data, _ = load_yaml_with_marks(path)
    if not isinstance(data, dict):
        return False
    if any(norm_key(k) == "sparse_optimizations" for k in data):
        return True
    archi = data.get("architecture")
    nodes = archi.get("nodes") if isinstance(archi, dict) else None
    from testy_model.spec.sparseloop import nodes_have_sparse_optimizations

    return nodes_have_sparse_optimizations(nodes)


def load_case_files(
    arch_path: str | Path,
    map_path: str | Path | None,
    *,
    ert_path: str | Path | None = None,
    art_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    problem: Problem | None = None,
    mapping: Mapping | None = None,
) -> StudyCase:
    """Load a Sparseloop design from its files into this tool's types, with the ERT/ART (when
    given) applied to the architecture.

    Args:
        arch_path: ``aggregated_input.yaml`` (architecture, ``sparse_optimizations`` and, unless
            ``problem`` is given, the problem).
        map_path: the mapping file (its ``stream:`` lists are read too); ``None`` with
            ``mapping`` given.
        ert_path, art_path: Accelergy tables (optional).
        overrides: dotted-key architecture overrides (``levels.SMEM.depth=4096``).
        problem, mapping: use these instead of reading them from the files.

    Raises:
        SpecError: a missing file or anything the loaders reject (file, line, key path).
    """
    from testy_model.spec.arch_loader import load_arch
    from testy_model.spec.mapping_loader import load_mapping
    from testy_model.spec.problem_loader import load_problem

    agg = Path(arch_path)
    files = [agg] + ([Path(map_path)] if map_path is not None else [])
    for f in files:
        if not f.is_file():
            raise SpecError(
                "missing file (a Sparseloop design needs aggregated_input.yaml and map.yaml)",
                file=str(f),
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # v0.3 attributes this tool does not use
        arch = load_arch(agg, overrides=list(overrides))
        prob = problem if problem is not None else fixed_structured_to_nm(load_problem(agg), agg)
        if mapping is None:
            if map_path is None:
                raise SpecError("a Sparseloop design needs a mapping file", file=str(agg))
            mapping = load_mapping(map_path, arch, prob)
    opts = load_sparse_optimizations(agg)
    known = {*arch.level_names, arch.compute.name}
    for t in opts.targets:
        if t.name not in known:
            raise SpecError(
                f"sparse_optimizations target {t.name!r} is not a level of the architecture "
                f"(expected one of {sorted(known)})",
                file=str(agg),
            )
    if map_path is not None:
        # the mapping file must fit, with the design's spatial skipping: the same check
        # validate and eval make (spec.inputs), never a priced-but-invalid result
        from testy_model.spec.validate import validate_mapping

        validate_mapping(mapping, arch, prob, opts)
    ert = load_ert(ert_path) if ert_path is not None else None
    art = load_art(art_path) if art_path is not None else None
    if ert is not None:
        arch = apply_ert(arch, ert)
    if art is not None:
        arch = apply_art(arch, art)
    stream = load_stream(map_path) if map_path is not None else {}
    from testy_model.spec.yaml_io import load_yaml_with_marks

    data, _ = load_yaml_with_marks(agg)
    archi = data.get("architecture") if isinstance(data, dict) else None
    v04 = isinstance(archi, dict) and "nodes" in archi
    return StudyCase(arch, prob, mapping, opts, ert, art, stream, output_first_fill=not v04)


def load_case(case_dir: str | Path) -> StudyCase:
    """Load a Sparseloop case folder (``aggregated_input.yaml``, ``map.yaml`` and, when present,
    ``ERT.yaml``/``ART.yaml``); see :func:`load_case_files`."""
    d = Path(case_dir)
    ert, art = d / "ERT.yaml", d / "ART.yaml"
    return load_case_files(
        d / "aggregated_input.yaml",
        d / "map.yaml",
        ert_path=ert if ert.is_file() else None,
        art_path=art if art.is_file() else None,
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccessCounts(_Model):
    """Words of one access kind, per utilized instance."""

    algorithmic: float
    actual: float
    gated: float
    skipped: float


class TensorLevelStats(_Model):
    """One tensor at one level: per-instance reads, fills, updates (actual/gated/skipped), format
    metadata and payload words per rank (inner to outer), and energy (pJ, all instances)."""

    tile: int
    format: str
    reads: AccessCounts
    fills: AccessCounts
    updates: AccessCounts
    metadata_reads: list[float] = Field(default_factory=list)
    metadata_fills: list[float] = Field(default_factory=list)
    payload_reads: list[float] = Field(default_factory=list)
    payload_fills: list[float] = Field(default_factory=list)
    metadata_read_bits: float = 0.0
    metadata_fill_bits: float = 0.0
    energy_pj: float


class LevelStats(_Model):
    """One storage level: utilized instances, its bandwidth cycles, throttling, energy (pJ)."""

    name: str
    datawidth: int = 8
    utilized_instances: float
    cycles: float
    throttling: float
    energy_pj: float
    tensors: dict[str, TensorLevelStats]


class ComputeStats(_Model):
    """MACs (totals): algorithmic, actual, gated, skipped; utilized units; cycles; energy (pJ)."""

    algorithmic: float
    actual: float
    gated: float
    skipped: float
    utilized_instances: float
    cycles: float
    energy_pj: float


class StudyReport(_Model):
    """Result of :func:`evaluate_case`: cycles, energy (pJ), per-level and compute statistics."""

    case: str
    cycles: float
    energy_pj: float
    compute: ComputeStats
    levels: list[LevelStats]
    clock_ghz: float = 1.0

    @property
    def energy_uj(self) -> float:
        """Total energy in µJ."""
        return self.energy_pj * 1e-6

    def level(self, name: str) -> LevelStats:
        """Statistics of level ``name``."""
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"no level {name!r}")

    def to_json(self) -> str:
        """The report as JSON text."""
        return json.dumps(self.model_dump(), indent=2)

    @property
    def seconds(self) -> float:
        """Latency in seconds: cycles / (clock GHz × 1e9)."""
        return self.cycles / (self.clock_ghz * 1e9)

    def layer_dict(self, name: str | None = None) -> dict[str, Any]:
        """This result as one ``layers`` entry of the model's JSON contract (README).

        Accesses are totals over the utilized instances of a level (per-instance counts ×
        utilized instances), in words of the level's datawidth: ``reads``/``fills``/``updates``
        are the *actual* accesses (what Sparseloop prints as "Actual scalar ..."), each with a
        ``*_split`` ``{"actual", "gated", "skipped"}`` beside it; ``metadata_reads`` =
        metadata and payload bits read / datawidth. ``energy_by_component``: pJ per level and
        ``MAC``.
        """
        acc: dict[str, dict[str, dict[str, Any]]] = {}
        for lv in self.levels:
            n = lv.utilized_instances
            row: dict[str, dict[str, Any]] = {}
            for t, ts in lv.tensors.items():
                entry: dict[str, Any] = {}
                for kind in ("reads", "fills", "updates"):
                    a: AccessCounts = getattr(ts, kind)
                    entry[kind] = a.actual * n
                    entry[f"{kind}_split"] = {
                        "actual": a.actual * n,
                        "gated": a.gated * n,
                        "skipped": a.skipped * n,
                    }
                entry["metadata_reads"] = ts.metadata_read_bits * n / lv.datawidth
                row[t] = entry
            acc[lv.name] = row
        comps = {lv.name: lv.energy_pj for lv in self.levels}
        comps["MAC"] = self.compute.energy_pj
        return {
            "name": name or self.case,
            "cycles": self.cycles,
            "seconds": self.seconds,
            "energy_pj": self.energy_pj,
            "edp_pj_s": self.energy_pj * self.seconds,
            "macs": self.compute.algorithmic,
            "effective_macs": self.compute.actual,
            "energy_by_component": comps,
            "accesses": acc,
            "compute_split": {
                "actual": self.compute.actual,
                "gated": self.compute.gated,
                "skipped": self.compute.skipped,
            },
        }


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def mapping_loops(arch: Architecture, mapping: Mapping) -> list[Loop]:
    """The mapping's loops outer to inner: per level (outermost first) its temporal loops
    (permutation reversed: files list inner to outer), then its spatial loops. Factor-1 loops
    are dropped; dimensions missing from a permutation are innermost."""
    loops: list[Loop] = []
    for li, name in enumerate(arch.level_names):
        try:
            lm = mapping.level(name)
        except KeyError:
            continue
        for spatial, factors, perm in (
            (False, lm.temporal, lm.temporal_permutation),
            (True, lm.spatial, lm.spatial_permutation),
        ):
            order = [d for d in reversed(perm) if d in factors]
            order += [d for d in factors if d not in order][::-1]
            loops += [Loop(li, spatial, d, int(factors[d])) for d in order if factors[d] > 1]
    return loops


def level_views(case: StudyCase) -> list[LevelView]:
    """Keep/stream sets and bandwidths (words/cycle) of every level of ``case``."""
    views = []
    for lvl in case.arch.levels:
        try:
            lm = case.mapping.level(lvl.name)
            keep = frozenset(
                t
                for t in case.problem.tensor_names
                if (lm.keeps(t) if lm.keeps(t) is not None else lvl.keeps(t))
            )
        except KeyError:
            keep = frozenset(t for t in case.problem.tensor_names if lvl.keeps(t))
        dw = lvl.datawidth
        views.append(
            LevelView(
                name=lvl.name,
                keep=keep,
                stream=case.stream.get(lvl.name, frozenset()) - keep,
                read_bw=lvl.read_bandwidth / dw if lvl.read_bandwidth else None,
                write_bw=lvl.write_bandwidth / dw if lvl.write_bandwidth else None,
                datawidth=dw,
            )
        )
    return views


def _energies(case: StudyCase, name: str) -> dict[str, float]:
    """Per-word / per-bit / per-MAC energies (pJ) of component ``name`` (ERT first, else the
    architecture's own numbers)."""
    arch, ert = case.arch, case.ert
    if name == arch.compute.name:
        c = arch.compute
        e = {"mac_random": c.mac_energy, "mac_gated": c.gated_mac_energy, "mac_skipped": 0.0}
        if ert is not None and ert.has(name):
            e = {k: ert.energy(name, k) for k in e}
        return e
    lvl = arch.level(name)
    e = {
        "read": lvl.read_energy,
        "write": lvl.write_energy,
        "gated_read": 0.0,
        "gated_write": 0.0,
        "metadata_read": lvl.metadata_read_energy,
        "metadata_write": lvl.metadata_write_energy,
    }
    if ert is not None and ert.has(name):  # the ERT is authoritative: unlisted actions cost 0
        for k in ("read", "write", "gated_read", "gated_write"):
            e[k] = ert.energy(name, k) / lvl.block_size
        for k in ("metadata_read", "metadata_write"):
            w = lvl.metadata_width
            e[k] = ert.energy(name, k) / w if w else 0.0
    return e


def _per_instance(a: AccessSplit, per: float) -> AccessCounts:
    """Totals of one access kind scaled by ``per`` = 1 / utilized instances."""
    return AccessCounts(
        algorithmic=a.algorithmic * per,
        actual=a.actual * per,
        gated=a.gated * per,
        skipped=a.skipped * per,
    )


def evaluate_loaded(case: StudyCase, name: str = "case") -> StudyReport:
    """Evaluate a loaded case (see the module docstring for the equations)."""
    problem = case.problem
    views = level_views(case)
    loops = mapping_loops(case.arch, case.mapping)
    dense: DenseLevelCounts = dense_level_counts(
        problem, views, loops, output_first_fill=case.output_first_fill
    )
    sp = sparse_level_counts(problem, views, dense, case.sparse_opts, case.arch.compute.name)
    levels_out: list[dict[str, Any]] = []
    total = 0.0
    max_level_cycles = 0.0
    for li, lv in enumerate(views):
        e = _energies(case, lv.name)
        inst = sp.utilized_instances[li]
        per = 1.0 / inst if inst > 0 else 0.0
        tens: dict[str, TensorLevelStats] = {}
        lvl_energy = 0.0
        rwords = wwords = 0.0
        for t, st in sp.levels[li].items():
            en = (
                st.reads.actual * e["read"]
                + (st.fills.actual + st.updates.actual) * e["write"]
                + st.reads.gated * e["gated_read"]
                + st.updates.gated * e["gated_write"]
                + st.metadata_read_bits * e["metadata_read"]
                + st.metadata_fill_bits * e["metadata_write"]
            )
            lvl_energy += en
            rwords += st.reads.actual + st.reads.gated + st.metadata_read_bits / lv.datawidth
            wwords += (
                st.fills.actual
                + st.fills.gated
                + st.updates.actual
                + st.updates.gated
                + st.metadata_fill_bits / lv.datawidth
            )

            tens[t] = TensorLevelStats(
                tile=st.tile,
                format=st.format,
                reads=_per_instance(st.reads, per),
                fills=_per_instance(st.fills, per),
                updates=_per_instance(st.updates, per),
                metadata_reads=[w * per for w in st.metadata_read_words],
                metadata_fills=[w * per for w in st.metadata_fill_words],
                payload_reads=[w * per for w in st.payload_read_words],
                payload_fills=[w * per for w in st.payload_fill_words],
                metadata_read_bits=st.metadata_read_bits * per,
                metadata_fill_bits=st.metadata_fill_bits * per,
                energy_pj=en,
            )
        cyc = level_cycles(rwords * per, wwords * per, lv.read_bw, lv.write_bw)
        max_level_cycles = max(max_level_cycles, cyc)
        total += lvl_energy
        levels_out.append(
            {
                "name": lv.name,
                "datawidth": lv.datawidth,
                "utilized_instances": inst,
                "cycles": cyc,
                "energy_pj": lvl_energy,
                "tensors": tens,
            }
        )
    ec = _energies(case, case.arch.compute.name)
    comp = sp.compute
    comp_e = (
        comp.actual * ec["mac_random"]
        + comp.gated * ec["mac_gated"]
        + comp.skipped * ec["mac_skipped"]
    )
    total += comp_e
    cycles = max(sp.compute_cycles, max_level_cycles)
    levels = [
        LevelStats(throttling=throttle(sp.compute_cycles, d["cycles"]), **d) for d in levels_out
    ]
    return StudyReport(
        case=name,
        cycles=cycles,
        energy_pj=total,
        compute=ComputeStats(
            algorithmic=comp.algorithmic,
            actual=comp.actual,
            gated=comp.gated,
            skipped=comp.skipped,
            utilized_instances=sp.compute_utilized,
            cycles=sp.compute_cycles,
            energy_pj=comp_e,
        ),
        levels=levels,
        clock_ghz=case.arch.compute.clock_ghz,
    )


def evaluate_design(
    cases: Sequence[tuple[str, StudyCase]], network: str = "network", plan: str = "sparse"
) -> Report:
    """Evaluate named cases (one per layer, run one after another) with the Sparseloop-compatible
    model as a :class:`~testy_model.report.Report` (the model's JSON contract; accesses carry
    the actual/gated/skipped split, see :meth:`StudyReport.layer_dict`).

    Each layer's dense baseline is the same case with no sparse optimizations (every access and
    MAC actual), for the speed-up and energy ratio. Utilisation = (actual + gated MACs) /
    (MAC units × cycles).
    """
    layers = []
    arch_name = ""
    for name, case in cases:
        rep = evaluate_loaded(case, name=name)
        dense = evaluate_loaded(case._replace(sparse_opts=SparseOptimizations()), name=name)
        d = rep.layer_dict(name)
        units = case.arch.compute.instances
        work = rep.compute.actual + rep.compute.gated
        arch_name = case.arch.name
        layers.append(
            LayerResult(
                name=name,
                plan=plan,
                cycles=rep.cycles,
                seconds=rep.seconds,
                energy_pj=rep.energy_pj,
                energy_by_component=d["energy_by_component"],
                accesses=d["accesses"],
                utilisation=work / (units * rep.cycles) if rep.cycles else 0.0,
                macs=rep.compute.algorithmic,
                effective_macs=rep.compute.actual,
                compute_cycles=rep.compute.cycles,
                dense_cycles=dense.cycles,
                dense_energy_pj=dense.energy_pj,
                valid=True,
            )
        )
    clock = cases[0][1].arch.compute.clock_ghz if cases else 1.0
    return Report(network=network, arch=arch_name, plan=plan, clock_ghz=clock, layers=tuple(layers))


def evaluate_spec(
    arch: Architecture,
    problem: Problem,
    mapping: Mapping,
    *,
    stream: dict[str, frozenset[str]] | None = None,
    sparse_opts: SparseOptimizations | None = None,
    ert: EnergyTable | None = None,
    name: str = "spec",
) -> StudyReport:
    """Evaluate a design described in this tool's own specs with the Sparseloop-compatible model.
    ``sparse_opts`` defaults to :func:`sparse_opts_from_support` of ``arch.sparsity``;
    ``ert`` (optional) overrides the architecture's energies."""
    opts = sparse_opts if sparse_opts is not None else sparse_opts_from_support(arch, problem)
    if ert is not None:
        arch = apply_ert(arch, ert)
    case = StudyCase(arch, problem, mapping, opts, ert, None, dict(stream or {}))
    return evaluate_loaded(case, name=name)


def evaluate_case(case_dir: str | Path) -> StudyReport:
    """Load and evaluate a Sparseloop case folder."""
    return evaluate_loaded(load_case(case_dir), name=str(case_dir))


def study_cases(root: str | Path) -> list[Path]:
    """Every case folder (holding ``aggregated_input.yaml``) under ``root``, sorted."""
    return sorted(p.parent for p in Path(root).rglob("aggregated_input.yaml"))


_LEVEL_RE = re.compile(r"^=== (\S+) ===\s*$")
_TENSOR_RE = re.compile(r"^    (\w+)( \(Streamed\))?:\s*$")
_ENERGY_RE = re.compile(r"^\s+Energy \(total\)\s*:\s*([0-9.eE+-]+) pJ")
_STAT_RE = re.compile(
    r"^\s+(Actual scalar|Scalar) (reads|fills|updates) \(per-instance\)\s*:\s*([0-9.eE+-]+)"
)


def parse_reference_stats(path: str | Path) -> dict[str, Any]:
    """Read what Timeloop/Sparseloop printed (``reference_stats.txt``): total cycles, energy (µJ)
    and, per level and tensor, the actual scalar reads/fills/updates per instance, and energies.

    Returns ``{"cycles": int, "energy_uj": float, "levels": {level: {tensor: {"reads": .., "fills":
    .., "updates": ..}}}, "level_energy_pj": {level or "MAC": pJ}}`` (level energies: the sum of
    the per-tensor "Energy (total)" lines; network energies are not included).
    Raises :class:`SpecError` when the summary is missing.
    """
    p = Path(path)
    levels: dict[str, dict[str, dict[str, float]]] = {}
    level = tensor = None
    cycles = energy = None
    energies: dict[str, float] = {}
    for line in p.read_text().splitlines():
        if line.startswith("Networks"):
            level = tensor = None
        m = _LEVEL_RE.match(line)
        if m:
            level, tensor = m.group(1), None
            levels.setdefault(level, {})
            continue
        m = _TENSOR_RE.match(line)
        if m and level is not None:
            tensor = m.group(1)
            levels[level].setdefault(tensor, {})
            continue
        m = _STAT_RE.match(line)
        if m and level is not None and tensor is not None:
            levels[level][tensor][m.group(2)] = float(m.group(3))
            continue
        m = _ENERGY_RE.match(line)
        if m and level is not None:
            energies[level] = energies.get(level, 0.0) + float(m.group(1))
            continue
        if line.startswith("Cycles:"):
            cycles = int(line.split(":")[1])
        elif line.startswith("Energy:"):
            energy = float(line.split(":")[1].split()[0])
    if cycles is None or energy is None:
        raise SpecError(
            "no 'Cycles:'/'Energy:' summary (expected a Timeloop stats file)", file=str(p)
        )
    return {
        "cycles": cycles,
        "energy_uj": energy,
        "levels": {k: v for k, v in levels.items() if v},
        "level_energy_pj": energies,
    }
