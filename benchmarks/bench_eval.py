"""Benchmark: evaluate ResNet-50 (54 GEMM layers: 53 convolutions and the FC, and its 69 other
graph nodes: ReLUs, additions, pooling, from ``testy_model.graph.zoo``) with a two-term TASD
weight plan on one architecture with fixed mappings, and the same at 1,000 design points in one
batched call.

Prints the median wall and CPU time (ms) of ``evaluate(network, arch, mappings, plan)`` (the
graph traversal: loop nests, closed-form term densities, batched costs of the layers, the
non-GEMM operators and the tensors between them, the Report), of the per-layer path alone
(``evaluate_layers``, no graph) and of ``evaluate(..., fusion="fit")``; the wall time (s) of
``evaluate_points`` over 1,000 design points (DRAM/SRAM energies, bandwidths and the MAC energy
varied), plus a consistency check (the design point equal to the base architecture gives the same
total energy as ``evaluate``). Targets (issues 4 and 14): the graph evaluation < 20 ms, the
design points < 10 s.

    python benchmarks/bench_eval.py [--repeats 7] [--points 1000]
        [--arch arch_specs/stc_2of4_tasd.yaml] [--plan W=2:8+1:8,A=dense]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from testy_model.graph.zoo import get_network
from testy_model.mapper import template_mapping
from testy_model.model import arch_arrays
from testy_model.model.evaluate import evaluate, evaluate_layers, evaluate_points
from testy_model.report import Report
from testy_model.spec.arch_loader import load_arch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--arch", default=str(ROOT / "arch_specs" / "stc_2of4_tasd.yaml"))
    parser.add_argument("--plan", default="W=2:8+1:8,A=dense")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(args.arch)
    net = get_network("resnet50")
    maps = {layer.name: template_mapping(layer.problem, arch, "weight") for layer in net.layers}

    def timed(fn: Callable[[], Report]) -> tuple[float, float, Report]:
        fn()  # warm-up
        wall, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return 1e3 * statistics.median(wall), 1e3 * statistics.median(cpu), out

    ms, cpu_ms, rep = timed(lambda: evaluate(net, arch, maps, plan=args.plan))
    lay_ms, lay_cpu, _ = timed(lambda: evaluate_layers(net, arch, maps, plan=args.plan))
    fit_ms, fit_cpu, fit = timed(lambda: evaluate(net, arch, maps, plan=args.plan, fusion="fit"))

    rng = np.random.default_rng(0)
    aa = arch_arrays(arch)
    p = args.points
    scale = rng.uniform(0.5, 2.0, size=(p, 1))
    scale[0] = 1.0  # point 0 is the base architecture
    pts = aa.replace(
        read_energy=aa.read_energy * scale,
        write_energy=aa.write_energy * scale,
        read_bw=aa.read_bw * scale,
        write_bw=aa.write_bw * scale,
        mac_energy=aa.mac_energy * scale[:, 0],
    )
    t0 = time.perf_counter()
    pc = evaluate_points(net, arch, maps, pts, plan=args.plan)
    secs = time.perf_counter() - t0

    print(
        f"network: resnet50, {len(net.layers)} layers + {len(net.operators)} other nodes, plan "
        f"{args.plan}, arch {arch.name}"
    )
    print(
        f"evaluate (graph, one design point): median {ms:.2f} ms wall, {cpu_ms:.2f} ms CPU over "
        f"{args.repeats} runs (target < 20 ms); total {rep.cycles:,.0f} cycles, "
        f"{rep.energy_pj / 1e6:,.1f} µJ ({rep.non_gemm_energy_share:.1%} non-GEMM), speed-up "
        f"{rep.speedup:.3f}x vs dense"
    )
    print(f"evaluate_layers (per-layer path alone): median {lay_ms:.2f} ms wall, {lay_cpu:.2f} CPU")
    print(
        f"evaluate --fusion fit: median {fit_ms:.2f} ms wall, {fit_cpu:.2f} ms CPU; "
        f"{fit.fusion.resident_tensors} tensors on chip, DRAM energy "
        f"-{fit.fusion.dram_energy_saved_pj / 1e6:,.1f} µJ"
    )
    print(
        f"evaluate_points ({p} design points, batched): {secs:.3f} s (target < 10 s); "
        f"EDP range {pc.edp_pj_s.min():.4g} .. {pc.edp_pj_s.max():.4g} pJ·s"
    )
    rel = abs(pc.total_energy_pj[0] - rep.energy_pj) / rep.energy_pj
    print(f"consistency: point 0 energy vs evaluate: relative difference {rel:.2e}")


if __name__ == "__main__":
    main()
