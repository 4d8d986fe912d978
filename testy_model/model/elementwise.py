"""Cost of the non-GEMM operators: memory traffic, element-wise work, bandwidth-bound latency.

An operator reads each run-time operand once and its constant operands (bias, LayerNorm γ/β,
position embeddings) once, and writes its output once; where each tensor lives (the outermost
level, DRAM, by default; an on-chip level when ``--fusion fit`` keeps it there) is decided by
the caller (``model.fusion``). Views and concatenations are free (``graph.dataflow``).

**Work.** Element operations per value, with a transcendental function (exp, erf, tanh) counted
as one operation of a lookup/approximation unit (:data:`OPS_PER_VALUE`; :func:`element_ops`):

- add, sub, mul, div: 1 per output value; relu: 1 (a compare); tanh and other pointwise
  functions (exp, sqrt, max, pow, clip, ...): 1;
- sigmoid: 4 (−x, exp, +1, reciprocal); silu: 5 (sigmoid, × x); gelu: 5 (x/√2, erf, +1, × x,
  × ½);
- softmax: 5 per value of the row (max, −max, exp, Σ, ÷);
- layernorm: 7 (Σ for the mean, −mean, square, Σ for the variance, × 1/σ, × γ, + β);
  rmsnorm: 4 (square, Σ, × 1/rms, × γ); batchnorm (inference): 2 (× scale, + shift);
- maxpool, avgpool: ``window`` per output value (compares or adds);
- globalavgpool, reduce: 1 per *input* value; gather: 0 (a copy).

**Energy** (pJ) = Σ_levels (e_read·⌈reads⌉_vec + e_write·⌈writes⌉_vec) + ops·e_op + leakage ×
cycles, with ⌈·⌉_vec the whole-vector rounding of ``model.energy.whole_vector_words`` and
``e_op`` = :data:`ENERGY_PER_OP_PJ`, **0.21 pJ per element operation: a 32-bit adder at 40 nm**
(Aladdin, Shao et al., ISCA 2014; ``reference.md``), our choice for one ALU operation on a
32-bit intermediate (element-wise work runs at higher precision than the int8 MACs).

**Latency** (cycles) = max(⌈ops / lanes⌉, each level's bandwidth cycles
``latency.bandwidth_cycles``), double-buffered as the GEMM layers; ``lanes`` = the engine's MAC
units (the assumption: a vector unit as wide as the MAC array). Element-wise operators are
therefore bandwidth-bound on every shipped engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testy_model.model import energy as en
from testy_model.model import latency as lat
from testy_model.model.arrays import ArchArrays

#: pJ per element operation: 32-bit adder, 40 nm (Aladdin; reference.md). See module docstring.
ENERGY_PER_OP_PJ = 0.21

#: Element operations per output value (per input value for ``globalavgpool``/``reduce``).
OPS_PER_VALUE: dict[str, float] = {
    "add": 1.0,
    "sub": 1.0,
    "mul": 1.0,
    "div": 1.0,
    "relu": 1.0,
    "sigmoid": 4.0,
    "silu": 5.0,
    "gelu": 5.0,
    "tanh": 1.0,
    "pointwise": 1.0,
    "softmax": 5.0,
    "layernorm": 7.0,
    "rmsnorm": 4.0,
    "batchnorm": 2.0,
    "globalavgpool": 1.0,
    "reduce": 1.0,
    "gather": 0.0,
    "input": 0.0,
    "view": 0.0,
    "concat": 0.0,
    "unknown": 0.0,
}

_PER_INPUT = frozenset({"globalavgpool", "reduce"})
_POOL = frozenset({"maxpool", "avgpool"})


def element_ops(op: str, in_words: float, out_words: float, window: int = 1) -> float:
    """Element operations of one operator (module docstring table).

    Equation: ``OPS_PER_VALUE[op] · out_words``; pooling ``window · out_words``; global pooling
    and reductions ``in_words`` (one add per input value). Example: ReLU on 64×56×56 values:
    200,704 operations; a 3×3 max-pool to 64×56×56: 9 · 200,704 = 1,806,336.
    """
    if op in _POOL:
        return float(window) * out_words
    if op in _PER_INPUT:
        return OPS_PER_VALUE[op] * in_words
    if op not in OPS_PER_VALUE:
        raise ValueError(f"no element-wise work defined for operator kind {op!r}")
    return OPS_PER_VALUE[op] * out_words


@dataclass(frozen=True)
class OperatorTraffic:
    """Words n operators move at each of L levels, and their element operations.

    ``reads``/``writes``: (n, L) words read from / written to each level (all instances);
    ``ops``: (n,) element operations."""

    reads: np.ndarray
    writes: np.ndarray
    ops: np.ndarray


@dataclass(frozen=True)
class OperatorCost:
    """Costs of n operators at P design points: (P, n) arrays; ``energy_by_component`` maps the
    level names, ``elementwise`` (ALU work) and ``leakage`` to (P, n) pJ."""

    cycles: np.ndarray
    compute_cycles: np.ndarray
    level_cycles: np.ndarray  # (P, n, L)
    seconds: np.ndarray
    energy_pj: np.ndarray
    energy_by_component: dict[str, np.ndarray]


def operator_costs(
    traffic: OperatorTraffic, aa: ArchArrays, energy_per_op: float = ENERGY_PER_OP_PJ
) -> OperatorCost:
    """Energy and latency of ``traffic`` on the design points of ``aa`` (module docstring).

    Equations (per operator i, level l, point p; words in the level's datawidth):

    - storage pJ = e_read[p,l]·vec(reads[i,l]) + e_write[p,l]·vec(writes[i,l]);
    - element-wise pJ = ops[i]·``energy_per_op``;
    - level cycles = ⌈max(reads·dw / read_bw, writes·dw / write_bw)⌉;
    - compute cycles = ⌈ops / MAC units⌉; cycles = max(compute, level cycles);
    - leakage pJ = cycles·(Σ_l leakage·instances + MAC leakage·MAC units).
    """
    reads = np.asarray(traffic.reads, dtype=np.float64)[None]  # (1, n, L)
    writes = np.asarray(traffic.writes, dtype=np.float64)[None]
    ops = np.asarray(traffic.ops, dtype=np.float64)[None]  # (1, n)
    blk = aa.block_words if aa.block_words is not None else np.ones_like(aa.datawidth)
    blk = blk[:, None, :]
    e_store = aa.read_energy[:, None, :] * en.whole_vector_words(reads, blk) + aa.write_energy[
        :, None, :
    ] * en.whole_vector_words(writes, blk)  # (P, n, L)
    dw = aa.datawidth[:, None, :]
    levels = lat.bandwidth_cycles(
        reads * dw, writes * dw, aa.read_bw[:, None, :], aa.write_bw[:, None, :]
    )
    lanes = aa.mac_instances[:, None]
    compute = np.ceil(ops / lanes * (1.0 - 1e-12))
    cycles = np.maximum(compute, levels.max(axis=-1))
    leak = en.leakage_energy(
        cycles,
        aa.leakage[:, None, :],
        aa.instances[:, None, :],
        aa.mac_leakage[:, None],
        aa.mac_instances[:, None],
    )
    comps = {name: e_store[:, :, li] for li, name in enumerate(aa.level_names)}
    comps["elementwise"] = np.broadcast_to(ops * energy_per_op, cycles.shape)
    comps["leakage"] = leak
    total = sum(comps.values())
    return OperatorCost(
        cycles=cycles,
        compute_cycles=np.broadcast_to(compute, cycles.shape),
        level_cycles=levels,
        seconds=cycles / (aa.clock_ghz[:, None] * 1e9),
        energy_pj=total,
        energy_by_component=comps,
    )
