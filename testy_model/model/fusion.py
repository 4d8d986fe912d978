"""Where the tensors between operators live: the outermost level (DRAM), or, with fusion, an
on-chip level.

**Policy ``none``** (the default, Timeloop's per-layer view): every tensor between operators is
written to the outermost level by its producer and read back from there by each consumer. A
GEMM-like layer's own DRAM accesses of its operands and output (as the cost core counts them
for its mapping) are that traffic; a non-GEMM operator reads each operand's values and writes
its output's values there (``model.elementwise``).

**Policy ``fit``**: a tensor stays in one on-chip level ``L`` between its producer and its last
consumer when it fits there:

- ``L`` is the level named by ``--fusion-level``, else the outermost on-chip level (the child of
  DRAM, e.g. the 256 KB SMEM of the shipped engines); it must be a single instance (a shared
  buffer) with a finite capacity ``C = depth × width`` bits.
- Candidates, in the order their producers run: every tensor produced on chip (not a network
  input) that some operator reads and that does not leave the network (network outputs go to
  DRAM).
- Capacity check: tensor t (``words × datawidth(L)`` bits) is kept when, at every step i from its
  producer to its last consumer (execution order), ``W_i + R_i + size(t) <= C``, where ``W_i``
  is what operator i itself holds in L (a GEMM layer: the tiles of every tensor its mapping keeps
  in L, ``Π_ranks`` spans of the extents at and below L, uncompressed; a non-GEMM operator
  streams and holds nothing) and ``R_i`` the tensors already kept that are alive at step i. Greedy
  and first-come: earlier tensors are never evicted for later ones. (Conservative: a consumer's
  tile of a kept tensor is counted besides the kept tensor.)
- What it saves: the producer's DRAM writes of t and every consumer's DRAM reads of t (for a
  GEMM layer: its DRAM accesses of that operand or output, including metadata and partial-sum
  read-back, times the operand's share coming from t) become the same accesses of L:
  ``ΔE = Σ (e_DRAM − e_L)`` per moved word (reads at read energies, writes at write energies,
  whole-vector rounding per tensor as the core charges it). Latency: the DRAM and L bandwidth
  cycles of each operator are recomputed with the moved words; leakage follows the cycles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass

import networkx as nx
import numpy as np

from testy_model.errors import SpecError
from testy_model.graph.dataflow import OperandRead, execution_order
from testy_model.model import latency as lat
from testy_model.model.arrays import ArchArrays, arch_arrays
from testy_model.model.buffer import tensor_energy
from testy_model.model.nest import LoopNests
from testy_model.report import LayerResult
from testy_model.spec.arch import Architecture, StorageLevel
from testy_model.spec.workload import Problem

POLICIES = ("none", "fit")
_KINDS = ("reads", "fills", "updates", "metadata_reads")


def fusion_level_index(arch: Architecture, level: str | None) -> int:
    """Index of the fusion level: ``level`` by name, else 1 (the outermost on-chip level).

    Raises:
        SpecError: unknown level, the outermost level itself, several instances, or no capacity.
    """
    names = list(arch.level_names)
    if level is None:
        if len(names) < 2:
            raise SpecError(f"{arch.name} has no on-chip level to fuse into")
        idx = 1
    elif level not in names:
        raise SpecError(f"--fusion-level {level!r}: expected one of {names[1:]}")
    else:
        idx = names.index(level)
    lvl = arch.levels[idx]
    if idx == 0:
        raise SpecError(f"--fusion-level {level!r} is the outermost level; pick an on-chip one")
    if lvl.instances != 1 or lvl.depth is None:
        raise SpecError(
            f"fusion level {lvl.name!r} must be one shared buffer with a capacity (it has "
            f"{lvl.instances} instances, depth {lvl.depth})"
        )
    return idx


def working_set_bits(problem: Problem, nests: LoopNests, level: int, bits: MappingABC) -> float:
    """Bits a layer's mapping holds in ``level``: ``Σ_{t kept} tile_t · datawidth_t``.

    Equation: extents ``E[d] = Π_{k >= level} temporal[k,d]·spatial[k,d]`` (row 0 of
    ``nests``); ``tile_t = problem.tile_size(t, E)`` (words, uncompressed); ``bits[t]`` the
    tensor's datawidth.
    """
    ext = (nests.temporal[0, level:] * nests.spatial[0, level:]).prod(axis=0)
    extents = {d: int(ext[i]) for i, d in enumerate(problem.dimensions)}
    return float(
        sum(
            problem.tile_size(t, extents) * bits[t]
            for ti, t in enumerate(problem.tensor_names)
            if nests.keep[0, level, ti]
        )
    )


@dataclass(frozen=True)
class Residency:
    """Which producers' tensors stay in the fusion level (``level`` index; None = policy none),
    and the peak bits the level holds at each step (working set + kept tensors)."""

    level: int | None
    resident: frozenset[str]
    peak_bits: dict[str, float]


def plan_residency(
    g: nx.DiGraph,
    reads: list[OperandRead],
    capacity_bits: float,
    word_bits: float,
    working: MappingABC[str, float],
    level: int,
) -> Residency:
    """The ``fit`` policy (module docstring): keep each candidate tensor, in production order,
    when it fits beside the working sets and the tensors kept before it at every step of its
    lifetime."""
    order = execution_order(g)
    pos = {n: i for i, n in enumerate(order)}
    last: dict[str, int] = {}
    for r in reads:
        last[r.producer] = max(last.get(r.producer, -1), pos[r.consumer])
    occupied = np.array([working.get(n, 0.0) for n in order], dtype=np.float64)
    kept = []
    for p in order:
        d = g.nodes[p]
        if p not in last or d["kind"] in ("input", "view") or d["output"]:
            continue
        size = d["words"] * word_bits
        span = slice(pos[p], last[p] + 1)
        if np.all(occupied[span] + size <= capacity_bits * (1 + 1e-12)):
            occupied[span] += size
            kept.append(p)
    return Residency(level, frozenset(kept), dict(zip(order, occupied.tolist(), strict=True)))


def _bits(level_dw: float, datawidths: MappingABC[str, int], t: str) -> float:
    """Bits per word of tensor ``t`` at a level: the problem's datawidth, else the level's."""
    return float(datawidths.get(t, level_dw))


def _tensor_energy(aa: ArchArrays, li: int, a: MappingABC[str, float], bits: float) -> float:
    """pJ of one tensor's accesses ``a`` (totals, words of the tensor, ``bits`` each) at the
    single-instance level ``li``: the cost core's own charging
    (:func:`testy_model.model.buffer.tensor_energy`: whole vectors per action, metadata bits
    ``metadata_reads × bits`` per metadata access, the level's per-action energies)."""
    words = {k: a[k] for k in ("reads", "fills", "updates")}
    scale = bits / float(aa.datawidth[0, li])
    return tensor_energy(aa, li, words, a["metadata_reads"] * bits, scale)


def _bandwidth_cycles(
    lvl: StorageLevel, acc: MappingABC[str, MappingABC[str, float]], bits: MappingABC[str, float]
) -> float:
    """``latency.bandwidth_cycles`` of one single-instance level from its access totals:
    read bits ``Σ_t (reads + metadata_reads)·bits_t``, write bits ``Σ_t (fills + updates)·bits_t``.
    """
    rb = sum((a["reads"] + a["metadata_reads"]) * bits[t] for t, a in acc.items())
    wb = sum((a["fills"] + a["updates"]) * bits[t] for t, a in acc.items())
    inf = float("inf")
    return float(
        lat.bandwidth_cycles(
            np.array(rb), np.array(wb),
            np.array(lvl.read_bandwidth or inf), np.array(lvl.write_bandwidth or inf),
        )
    )  # fmt: skip


def move_accesses(
    result: LayerResult,
    moves: MappingABC[str, float],
    arch: Architecture,
    level: int,
    datawidths: MappingABC[str, int],
    aa: ArchArrays | None = None,
) -> LayerResult:
    """``result`` with fraction ``moves[t]`` of tensor t's outermost-level accesses done at
    ``level`` instead (module docstring). ``aa``: ``arch_arrays(arch)`` when at hand.

    Equations: per moved tensor, ``ΔE_l = E_l(after) − E_l(before)`` at both levels
    (:func:`_tensor_energy`); level cycles ``c_l + (bw(after) − bw(before))``
    (:func:`_bandwidth_cycles`, the difference keeps whatever else the core counted there);
    cycles ``= max(compute, TASD unit, level cycles)``; leakage × cycles'/cycles.
    """
    aa = arch_arrays(arch) if aa is None else aa
    levels = {0: arch.levels[0], level: arch.levels[level]}
    acc = {k: {t: dict(v) for t, v in d.items()} for k, d in result.accesses.items()}
    comps = dict(result.energy_by_component)
    src_l, dst_l = levels[0].name, levels[level].name
    for t, f in moves.items():
        if f <= 0 or t not in acc.get(src_l, {}):
            continue
        src, dst = acc[src_l][t], acc[dst_l][t]
        moved = {k: f * src[k] for k in _KINDS}
        before = {x: _tensor_energy(aa, x, a, _bits(levels[x].datawidth, datawidths, t))
                  for x, a in ((0, src), (level, dst))}  # fmt: skip
        for k in _KINDS:
            src[k] -= moved[k]
            dst[k] += moved[k]
        for x, a in ((0, src), (level, dst)):
            e = _tensor_energy(aa, x, a, _bits(levels[x].datawidth, datawidths, t))
            comps[levels[x].name] = comps.get(levels[x].name, 0.0) + e - before[x]
    lc = dict(result.level_cycles)
    for lvl in levels.values():
        bits = {t: _bits(lvl.datawidth, datawidths, t) for t in acc[lvl.name]}
        delta = _bandwidth_cycles(lvl, acc[lvl.name], bits) - _bandwidth_cycles(
            lvl, result.accesses[lvl.name], bits
        )
        lc[lvl.name] = lc.get(lvl.name, 0.0) + delta
    cycles = max(result.compute_cycles, result.tasd_cycles, *lc.values())
    if "leakage" in comps and result.cycles:
        comps["leakage"] *= cycles / result.cycles
    return dataclasses.replace(
        result,
        accesses=acc,
        energy_by_component=comps,
        energy_pj=float(sum(comps.values())),
        level_cycles=lc,
        cycles=float(cycles),
        seconds=float(cycles) / (arch.compute.clock_ghz * 1e9),
    )
