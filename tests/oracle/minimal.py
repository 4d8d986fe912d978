"""Minimal reproducing cases, one family per class of discrepancy (``docs/oracle_report.md``).

Each function returns ``{case_name: Case}``; :func:`all_minimal` gathers them by class.
``python scripts/timeloop_diff.py --write-minimal tests/data/timeloop_minimal`` writes them with
Timeloop's parsed outputs. The cases are as small as the class allows (1–3 storage levels, a
few dozen MACs) so that the rule can be checked by hand; each case's ``case.json`` says what
Timeloop does and why.
"""

from __future__ import annotations

from typing import Any

from oracle.gen import Case

_GEMM_SHAPE = {
    "name": "MatrixMultiply",
    "dimensions": ["M", "N", "K"],
    "data-spaces": [
        {"name": "A", "projection": [[["M"]], [["K"]]]},
        {"name": "B", "projection": [[["N"]], [["K"]]]},
        {"name": "Z", "projection": [[["M"]], [["N"]]], "read-write": True},
    ],
}


def _conv_shape() -> dict[str, Any]:
    return {
        "name": "CNN_Layer",
        "dimensions": ["C", "M", "R", "S", "N", "P", "Q"],
        "coefficients": [
            {"name": n, "default": 1} for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")
        ],
        "data-spaces": [
            {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
            {
                "name": "Inputs",
                "projection": [
                    [["N"]],
                    [["C"]],
                    [["R", "Wdilation"], ["P", "Wstride"]],
                    [["S", "Hdilation"], ["Q", "Hstride"]],
                ],
            },
            {
                "name": "Outputs",
                "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]],
                "read-write": True,
            },
        ],
    }


def _problem(shape: dict[str, Any], inst: dict[str, Any]) -> dict[str, Any]:
    return {"problem": {"shape": shape, "instance": inst}}


def _storage(name: str, cls: str, **attrs: Any) -> dict[str, Any]:
    return {"name": name, "class": cls, "attributes": attrs}


def _mac(**attrs: Any) -> dict[str, Any]:
    base = {"multiplier_width": 8, "adder_width": 16, "datawidth": 8}
    return {"name": "mac", "class": "intmac", "attributes": {**base, **attrs}}


def _arch(
    outer: list[dict[str, Any]], inner: list[dict[str, Any]], fanout: int = 1
) -> dict[str, Any]:
    """``outer`` components in ``system``; ``inner`` in a ``PE[0..fanout-1]`` subtree (the MAC
    is appended to ``inner``)."""
    sub = {"name": f"PE[0..{fanout - 1}]" if fanout > 1 else "PE", "local": [*inner, _mac()]}
    if fanout > 1:
        for c in sub["local"]:
            c["attributes"]["meshX"] = fanout
    root = {"name": "system", "attributes": {"technology": "45nm"}, "local": outer}
    root["subtree"] = [sub]
    return {"architecture": {"version": 0.3, "subtree": [root]}}


def _ert(paths: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "ERT": {
            "version": 0.3,
            "tables": [
                {
                    "name": p,
                    "actions": [
                        {"name": n, "arguments": None, "energy": e} for n, e in acts.items()
                    ],
                }
                for p, acts in paths.items()
            ],
        }
    }


def _art(paths: list[str]) -> dict[str, Any]:
    return {"ART": {"version": 0.3, "tables": [{"name": p, "area": 100.0} for p in paths]}}


def _dt(target: str, keep: list[str], tensors: list[str]) -> dict[str, Any]:
    return {
        "target": target,
        "type": "datatype",
        "keep": keep,
        "bypass": [t for t in tensors if t not in keep],
    }


def _loop(target: str, kind: str, factors: str, perm: str, split: int | None = None) -> dict:
    d: dict[str, Any] = {"target": target, "type": kind, "factors": factors, "permutation": perm}
    if split is not None:
        d["split"] = split
    return d


_DRAM_E = {"read": 512.0, "write": 512.0}
_BUF_E = {"read": 1.0, "write": 1.2}
_SPARSE_BUF_E = {
    "read": 1.0,
    "write": 1.2,
    "gated_read": 0.01,
    "gated_write": 0.01,
    "metadata_read": 0.3,
    "metadata_write": 0.35,
    "gated_metadata_read": 0.001,
    "gated_metadata_write": 0.001,
}
_MAC_E = {"mac_random": 0.5, "mac_gated": 0.02, "mac_skipped": 0.0}


def _case(name: str, kind: str, what: str, docs: dict[str, dict[str, Any]], **meta: Any) -> Case:
    return Case(kind=kind, seed=0, docs=docs, what=what, meta={"minimal": name, **meta})


def mac_operand_reuse() -> dict[str, Case]:
    """Spatial K3 fan-out from the RF to 3 MACs, temporal K2 at the RF, N4 at DRAM: Timeloop
    updates Z at the RF once per change of N (4), not once per MAC step (4·2 = 8 after the
    spatial reduction)."""
    tensors = ["A", "B", "Z"]
    arch = _arch(
        [_storage("DRAM", "DRAM", type="LPDDR4", width=64, datawidth=8)],
        [_storage("RF", "regfile", depth=16, width=8, datawidth=8)],
        fanout=1,
    )
    # the fan-out is below the RF: put the MACs in their own subtree
    pe = arch["architecture"]["subtree"][0]["subtree"][0]
    mac = pe["local"].pop()
    mac["attributes"]["meshX"] = 3
    pe["subtree"] = [{"name": "MACs[0..2]", "local": [mac]}]
    mapping = [
        _dt("RF", tensors, tensors),
        _dt("DRAM", tensors, tensors),
        _loop("RF", "spatial", "M1 N1 K3", "KMN", split=1),
        _loop("RF", "temporal", "M1 N1 K2", "KMN"),
        _loop("DRAM", "temporal", "M1 N4 K1", "NMK"),
    ]
    docs = {
        "arch.yaml": arch,
        "problem.yaml": _problem(_GEMM_SHAPE, {"M": 1, "N": 4, "K": 6}),
        "map.yaml": {"mapping": mapping},
        "ERT.yaml": _ert(
            {
                "system.DRAM": _DRAM_E,
                "system.PE.RF": _BUF_E,
                "system.PE.MACs[0..2].mac": {"mac_random": 0.5},
            }
        ),
        "ART.yaml": _art(["system.DRAM", "system.PE.RF", "system.PE.MACs[0..2].mac"]),
    }
    return {
        "gemm_spatialK3_to_macs": _case(
            "mac_operand_reuse",
            "dense_gemm",
            "RF spatial K3 -> 3 MACs, RF temporal K2, DRAM N4: Timeloop RF.Z updates = 4 "
            "(one per change of N), reads = 0; per-op counting gives 8 updates, 4 reads",
            docs,
        )
    }


def tile_delta() -> dict[str, Case]:
    """A 1-element input window sliding along H = Q + S (Hstride = Hdilation = 1) through a
    buffer holding one Inputs element; DRAM loops in two orders, with an Inputs-irrelevant M2
    innermost. Timeloop (temporal extrapolation on, its default): S>Q>M gives 7 fills (the
    first Q iteration after an S step is compared with Q's iteration #1, the last one it
    simulated, which holds the same element); Q>S>M gives 5 (the element at (q, s=1) is reused
    at (q+1, s=0)). Counting each sweep of the innermost relevant loop afresh gives 8 and 8."""
    out = {}
    tensors = ["Weights", "Inputs", "Outputs"]
    for name, perm in (("S_Q_M", "MQSCRNP"), ("Q_S_M", "MSQCRNP")):
        arch = _arch(
            [_storage("DRAM", "DRAM", type="LPDDR4", width=64, datawidth=8)],
            [_storage("Buf", "regfile", depth=4, width=8, datawidth=8)],
        )
        mapping = [
            _dt("Buf", ["Inputs"], tensors),
            _dt("DRAM", tensors, tensors),
            _loop("Buf", "temporal", "C1 M1 R1 S1 N1 P1 Q1", "CMRSNPQ"),
            _loop("DRAM", "temporal", "C1 M2 R1 S2 N1 P1 Q4", perm),
        ]
        inst = {"C": 1, "M": 2, "R": 1, "S": 2, "N": 1, "P": 1, "Q": 4}
        inst.update({"Wstride": 1, "Hstride": 1, "Wdilation": 1, "Hdilation": 1})
        docs = {
            "arch.yaml": arch,
            "problem.yaml": _problem(_conv_shape(), inst),
            "map.yaml": {"mapping": mapping},
            "ERT.yaml": _ert(
                {"system.DRAM": _DRAM_E, "system.PE.Buf": _BUF_E, "system.PE.mac": {"mac": 0.5}}
            ),
            "ART.yaml": _art(["system.DRAM", "system.PE.Buf", "system.PE.mac"]),
        }
        order = " > ".join(perm[:3][::-1])
        out[f"conv_window_{name}"] = _case(
            "tile_delta",
            "dense_conv",
            f"DRAM loops {order} (outer to inner), Buf keeps 1 Inputs element",
            docs,
        )
    return out


def _sparse_gemm(
    inst: dict[str, Any],
    sparse_opt: dict[str, Any],
    buf_attrs: dict[str, Any],
    mapping: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    arch = _arch(
        [
            _storage(
                "DRAM",
                "DRAM",
                type="LPDDR4",
                width=64,
                datawidth=8,
                metadata_storage_width=64,
                metadata_datawidth=4,
            )
        ],
        [_storage("Buffer", "storage", **buf_attrs)],
    )
    arch["architecture"]["subtree"][0]["subtree"][0]["local"][0]["subclass"] = "regfile_metadata"
    return {
        "arch.yaml": arch,
        "problem.yaml": _problem(_GEMM_SHAPE, inst),
        "sparse_opt.yaml": {"sparse_optimizations": sparse_opt},
        "map.yaml": {"mapping": mapping},
        "ERT.yaml": _ert(
            {
                "system.DRAM": {**_DRAM_E, "metadata_read": 100.0, "metadata_write": 100.0},
                "system.PE.Buffer": _SPARSE_BUF_E,
                "system.PE.mac": _MAC_E,
            }
        ),
        "ART.yaml": _art(["system.DRAM", "system.PE.Buffer", "system.PE.mac"]),
    }


_BUF = {
    "depth": 64,
    "width": 8,
    "datawidth": 8,
    "metadata_storage_depth": 64,
    "metadata_storage_width": 4,
    "metadata_datawidth": 4,
}
_ALL = ["A", "B", "Z"]


def output_first_fill() -> dict[str, Case]:
    """Sparse inputs (densities only, no optimization): Buffer keeps Z, DRAM's K2 loop is
    outside N2. Timeloop fills Z at the Buffer only with partial sums read back from DRAM
    (4 = DRAM Z reads); the sparse path also counts each tile's first fill (8)."""
    inst = {"M": 1, "N": 2, "K": 4}
    inst["densities"] = {"A": {"distribution": "hypergeometric", "density": 0.5}}
    mapping = [
        _dt("Buffer", ["Z"], _ALL),
        _dt("DRAM", _ALL, _ALL),
        _loop("Buffer", "temporal", "M1 N1 K2", "KMN"),
        _loop("DRAM", "temporal", "M1 N2 K2", "NKM"),
    ]
    docs = _sparse_gemm(inst, {"targets": []}, dict(_BUF), mapping)
    return {
        "gemm_output_partial_sums": _case(
            "output_first_fill",
            "sparse_format",
            "Buffer keeps Z; DRAM loops K2 > N2; empty sparse_optimizations",
            docs,
        )
    }


def skip_gate_granularity() -> dict[str, Case]:
    """Skipping B and Z on A (Sparseloop example 01's dot product, K48, one Buffer) with the
    Buffer's block size 4 (width 32) and A hypergeometric 0.25: Timeloop checks A over a tile of
    4 (the target level's block size; storage-gs-analyzer.cpp ComputeIneffectualReadImpact),
    P(skip) = C(36,4)/C(48,4) = 0.2; a per-element check gives 0.75. Second case: block 2 and
    A fixed-structured 0.4: a 2-element tile holds floor/ceil(0.8) non-zeros with P(ceil) = 0.8,
    so P(empty) = 0.2 (an N:M 2:5 reading gives 0.3)."""
    out = {}
    for name, width, dens in (
        ("dotprod_block4_hypergeometric", 32, {"distribution": "hypergeometric", "density": 0.25}),
        ("dotprod_block2_fixed0.4", 16, {"distribution": "fixed-structured", "density": 0.4}),
    ):
        shape = {
            "name": "DotProduct",
            "dimensions": ["K", "M"],
            "data-spaces": [
                {"name": "A", "projection": [[["K"]]]},
                {"name": "B", "projection": [[["K"]]]},
                {"name": "Z", "projection": [[["M"]]], "read-write": True},
            ],
        }
        opt = {
            "targets": [
                {
                    "name": "Buffer",
                    "action-optimization": [
                        {"type": "skipping", "options": [{"target": "B", "condition-on": ["A"]}]},
                        {"type": "skipping", "options": [{"target": "Z", "condition-on": ["A"]}]},
                    ],
                }
            ]
        }
        mapping = [
            _dt("Buffer", _ALL, _ALL),
            _dt("DRAM", _ALL, _ALL),
            _loop("Buffer", "temporal", "K48 M1", "KM"),
            _loop("DRAM", "temporal", "K1 M1", "KM"),
        ]
        buf = {**_BUF, "width": width, "depth": 128 // (width // 8)}
        docs = _sparse_gemm({"M": 1, "K": 48, "densities": {"A": dens}}, opt, buf, mapping)
        docs["problem.yaml"]["problem"]["shape"] = shape
        out[name] = _case("skip_gate_granularity", "sparse_skipping", name, docs)
    return out


def compute_optimization() -> dict[str, Case]:
    """A (fixed-structured 0.25) uncompressed everywhere, compute-optimization skipping only:
    a zero of A *exists* (no metadata at its innermost keeper: state EZ), and only a missing
    operand (NE) can be skipped, so Timeloop's 48 computes stay actual; skipping every zero
    gives 12 (with gating instead Timeloop gates them: see ``cycles_bandwidth``)."""
    out = {}
    for name, typ in (("skip_uncompressed_operand", "skipping"),):
        inst = {"M": 1, "N": 4, "K": 12}
        inst["densities"] = {"A": {"distribution": "fixed-structured", "density": 0.25}}
        opt = {"targets": [{"name": "mac", "compute-optimization": [{"type": typ}]}]}
        mapping = [
            _dt("Buffer", _ALL, _ALL),
            _dt("DRAM", _ALL, _ALL),
            _loop("Buffer", "temporal", "M1 N4 K12", "KNM"),
            _loop("DRAM", "temporal", "M1 N1 K1", "KNM"),
        ]
        docs = _sparse_gemm(inst, opt, dict(_BUF), mapping)
        out[name] = _case("compute_optimization", "sparse_gating", name, docs)
    return out


def format_metadata() -> dict[str, Case]:
    """A in CP (one rank) at the Buffer and at DRAM (pre-tiled: DRAM holds UOP over the
    Buffer's CP), K48 split K8 (Buffer) x K6 (DRAM), A fixed-structured 0.25; and Z in UB+RLE at
    DRAM (metadata *updates* of an output, which Timeloop prices with metadata_write)."""
    inst = {"M": 1, "N": 1, "K": 48}
    inst["densities"] = {"A": {"distribution": "fixed-structured", "density": 0.25}}
    opt = {
        "targets": [
            {
                "name": "DRAM",
                "representation-format": {
                    "data-spaces": [
                        {"name": "A", "ranks": [{"format": "UOP"}, {"format": "CP"}]},
                        {"name": "Z", "ranks": [{"format": "UB"}, {"format": "RLE"}]},
                    ]
                },
            },
            {
                "name": "Buffer",
                "representation-format": {
                    "data-spaces": [{"name": "A", "ranks": [{"format": "CP"}]}]
                },
            },
        ]
    }
    mapping = [
        _dt("Buffer", ["A", "B"], _ALL),
        _dt("DRAM", _ALL, _ALL),
        _loop("Buffer", "temporal", "M1 N1 K8", "KNM"),
        _loop("DRAM", "temporal", "M1 N1 K6", "KNM"),
    ]
    buf = {**_BUF, "decompression_supported": True}
    docs = _sparse_gemm(inst, opt, buf, mapping)
    return {
        "cp_pretiled_and_output_rle": _case(
            "format_metadata", "sparse_format", "A UOP/CP (DRAM) over CP (Buffer); Z UB/RLE", docs
        )
    }


def cycles_bandwidth() -> dict[str, Case]:
    """Read bandwidth 1 word/cycle at the Buffer, which keeps A, B and Z of a 1x3x7 GEMM: 21
    compute cycles, 21 + 21 + 18 = 60 words read. Timeloop's cycles = ceil(C / s) with
    s = bw / (Σ_t reads_t / C) in double precision (buffer.cpp ComputePerformance):
    21 / (1 / (21/21 + 21/21 + 18/21)) = 60.00000000000001 -> 61; the exact ceil(60 / 1) = 60.
    Second case: gating at the MAC (compute-optimization gating, A fixed 0.25): gated computes
    take cycles (arithmetic.cpp: cycles = ceil((random + gated) / utilized instances))."""
    tensors = ["A", "B", "Z"]
    arch = _arch(
        [_storage("DRAM", "DRAM", type="LPDDR4", width=64, datawidth=8)],
        [_storage("Buffer", "regfile", depth=64, width=8, datawidth=8, read_bandwidth=1)],
    )
    mapping = [
        _dt("Buffer", tensors, tensors),
        _dt("DRAM", tensors, tensors),
        _loop("Buffer", "temporal", "M1 N3 K7", "KNM"),
        _loop("DRAM", "temporal", "M1 N1 K1", "KNM"),
    ]
    docs = {
        "arch.yaml": arch,
        "problem.yaml": _problem(_GEMM_SHAPE, {"M": 1, "N": 3, "K": 7}),
        "map.yaml": {"mapping": mapping},
        "ERT.yaml": _ert(
            {"system.DRAM": _DRAM_E, "system.PE.Buffer": _BUF_E, "system.PE.mac": {"mac": 0.5}}
        ),
        "ART.yaml": _art(["system.DRAM", "system.PE.Buffer", "system.PE.mac"]),
    }
    out = {
        "gemm_read_bw_fp_ceil": _case(
            "cycles_bandwidth",
            "dense_gemm",
            "Buffer reads 60 words over 21 MAC cycles at 1 word/cycle: Timeloop 61 cycles",
            docs,
        )
    }
    inst = {"M": 1, "N": 4, "K": 12}
    inst["densities"] = {"A": {"distribution": "fixed-structured", "density": 0.25}}
    opt = {"targets": [{"name": "mac", "compute-optimization": [{"type": "gating"}]}]}
    mapping = [
        _dt("Buffer", _ALL, _ALL),
        _dt("DRAM", _ALL, _ALL),
        _loop("Buffer", "temporal", "M1 N4 K12", "KNM"),
        _loop("DRAM", "temporal", "M1 N1 K1", "KNM"),
    ]
    out["gated_computes_take_cycles"] = _case(
        "cycles_bandwidth",
        "sparse_gating",
        "compute gating: 36 gated + 12 actual computes, Timeloop 48 cycles",
        _sparse_gemm(inst, opt, dict(_BUF), mapping),
    )
    return out


def vector_rounding() -> dict[str, Case]:
    """Sparse inputs (densities only): DRAM (block 8) reads A 12 and B 12 words and updates Z
    once. Timeloop prices ceil(count / block) vector accesses per tensor and action over the
    whole run (buffer.cpp ComputeVectorAccesses): 2 + 2 + 1 = 5 vectors; fractional vectors
    (12/8 + 12/8 + 1/8) give 3.125."""
    inst = {"M": 1, "N": 1, "K": 12}
    inst["densities"] = {"A": {"distribution": "hypergeometric", "density": 0.5}}
    mapping = [
        _dt("Buffer", _ALL, _ALL),
        _dt("DRAM", _ALL, _ALL),
        _loop("Buffer", "temporal", "M1 N1 K12", "KNM"),
        _loop("DRAM", "temporal", "M1 N1 K1", "KNM"),
    ]
    return {
        "dram_partial_vectors": _case(
            "vector_rounding",
            "sparse_format",
            "DRAM block 8: A 12, B 12 reads, Z 1 update -> 5 whole vectors",
            _sparse_gemm(inst, {"targets": []}, dict(_BUF), mapping),
        )
    }


def metadata_parent_elision() -> dict[str, Case]:
    """A (fixed-structured 0.25) with one UOP rank at DRAM (metadata, not compressed) and a
    1-element A tile at the Buffer (K1 Buffer, K48 DRAM): Timeloop's Buffer A fills and reads,
    *algorithmic ones included*, are 12 = 48 x P(a 1-element tile is non-empty); DRAM's actual
    reads are 48 - floor(48 x 0.75) = 12 (storage-optimization-combiner.cpp
    ProcessDataReprImpactOnStorageAccesses). Counting the Buffer densely gives 48."""
    inst = {"M": 1, "N": 1, "K": 48}
    inst["densities"] = {"A": {"distribution": "fixed-structured", "density": 0.25}}
    opt = {
        "targets": [
            {
                "name": "DRAM",
                "representation-format": {
                    "data-spaces": [{"name": "A", "ranks": [{"format": "UOP"}]}]
                },
            }
        ]
    }
    mapping = [
        _dt("Buffer", ["A", "B"], _ALL),
        _dt("DRAM", _ALL, _ALL),
        _loop("Buffer", "temporal", "M1 N1 K1", "KNM"),
        _loop("DRAM", "temporal", "M1 N1 K48", "KNM"),
    ]
    buf = {**_BUF, "decompression_supported": True}
    return {
        "uop_parent_scalar_child": _case(
            "metadata_parent_elision",
            "sparse_format",
            "DRAM A UOP, Buffer A tile of 1: Buffer A fills/reads 12 (not 48)",
            _sparse_gemm(inst, opt, buf, mapping),
        )
    }


def all_minimal() -> dict[str, dict[str, Case]]:
    """``{class: {case: Case}}`` of every minimal case."""
    return {
        "mac_operand_reuse": mac_operand_reuse(),
        "tile_delta": tile_delta(),
        "output_first_fill": output_first_fill(),
        "skip_gate_granularity": skip_gate_granularity(),
        "compute_optimization": compute_optimization(),
        "format_metadata": format_metadata(),
        "cycles_bandwidth": cycles_bandwidth(),
        "vector_rounding": vector_rounding(),
        "metadata_parent_elision": metadata_parent_elision(),
    }
