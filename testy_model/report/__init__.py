"""The result of evaluating a network: per-layer and total costs, tables, JSON, CSV, plots.

JSON contract (stable; :meth:`Report.to_json`)::

    {"network": str, "arch": str, "plan": str,
     "total": {"cycles", "seconds", "energy_pj", "edp_pj_s",
               "dense_cycles", "dense_energy_pj", "speedup", "energy_ratio"},
     "layers": [{"name", "plan", "cycles", "seconds", "energy_pj", "edp_pj_s", "utilisation",
                 "macs", "effective_macs", "speedup", "energy_ratio", "valid",
                 "energy_by_component": {COMPONENT: pJ},
                 "accesses": {LEVEL: {TENSOR: {"reads", "fills", "updates",
                                               "metadata_reads"}}}}]}

``conventions`` (top level) names the counting conventions (``timeloop`` or
``sparseloop-2022``). Layers priced by the sparse stage (Sparseloop ``sparse_optimizations``, or
an engine's ``sparsity:`` support) add, beside each of ``reads``/``fills``/``updates`` (which
are then the *actual* accesses), a ``reads_split``/``fills_split``/``updates_split``
``{"actual", "gated", "skipped"}``, and a layer-level ``compute_split`` ``{"actual", "gated",
"skipped"}`` (MACs).

A network evaluated as a graph (``model.graph_eval``) adds, beside ``layers`` (the GEMM-like
layers, unchanged)::

     "operators": [{"name", "op", "source", "cycles", "seconds", "energy_pj", "edp_pj_s",
                    "element_ops", "words_read": {LEVEL: words}, "words_written": {LEVEL: words},
                    "energy_by_component": {COMPONENT: pJ}}],
     "tensors": [{"producer", "consumers", "words", "level", "output", "dram_reads",
                  "dram_writes", "dram_energy_pj", "onchip_reads", "onchip_writes"}],
     "fusion": {"policy": "none|fit", "level": LEVEL|null, "resident_tensors": n,
                "dram_energy_saved_pj": pJ}

and to ``total``: ``gemm_energy_pj``, ``non_gemm_energy_pj``, ``non_gemm_cycles``,
``non_gemm_energy_share``, ``non_gemm_cycles_share``, ``between_layer_dram_words``,
``between_layer_dram_energy_pj``, ``skipped_operators`` (names of operators counted as traffic
only). ``tensors`` lists every tensor between operators (views resolved): the words its producer
writes to and its consumers read from the outermost level (DRAM) as each operator's model
counts them (GEMM layers: their own DRAM accesses of that operand; other operators: the tensor's
values), or, when fusion keeps it on chip, the same accesses at ``level``.

Units: cycles of the accelerator clock; seconds; energy in pJ; EDP in pJ·s. ``accesses`` are
totals over the level's used instances, in words of the tensor's datawidth (metadata converted
to words of that datawidth); tensors are named as in the problem (A, B, Z for GEMMs; Weights,
Inputs, Outputs for convolutions); "updates" are partial-sum writes from below, as Timeloop
counts them. ``speedup`` = dense cycles / cycles and ``energy_ratio`` = energy / dense energy,
against the same network run dense on the same engine with the same mappings (and the same
fusion policy). The network runs its operators one after another: total cycles = Σ layer cycles
+ Σ operator cycles; total EDP = total energy × total seconds.

The result records are in :mod:`~testy_model.report.records` (:class:`LayerResult`,
:class:`OperatorResult`, :class:`TensorTraffic`, :class:`FusionSummary`); the network's
:class:`Report` (totals, tables, JSON, DataFrame, plots) in
:mod:`~testy_model.report.network_report`.
"""

from testy_model.report.network_report import Report
from testy_model.report.records import (
    Accesses,
    FusionSummary,
    LayerResult,
    OperatorResult,
    TensorTraffic,
)

__all__ = [
    "Accesses",
    "FusionSummary",
    "LayerResult",
    "OperatorResult",
    "Report",
    "TensorTraffic",
]
