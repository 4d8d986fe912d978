"""Benchmark: evaluate every layer of ResNet-50 (54 layers: 53 convolutions and the FC, from
``testy_model.graph.zoo``) with a two-term TASD weight plan on one architecture with fixed mappings,
and the same at 1,000 design points in one batched call.

Prints the median wall time (ms) of ``evaluate(network, arch, mappings, plan)`` (the whole
pipeline: loop nests, closed-form term densities, batched costs, the Report) and the wall time
(s) of ``evaluate_points`` over 1,000 design points (DRAM/SRAM energies, bandwidths and the MAC
energy varied), plus a consistency check (the design point equal to the base architecture gives
the same total energy as ``evaluate``). Targets (issue 4): < 20 ms and < 10 s.

    python benchmarks/bench_eval.py [--repeats 7] [--points 1000]
        [--arch arch_specs/stc_2of4_tasd.yaml] [--plan W=2:8+1:8,A=dense]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from testy_model.graph.zoo import get_network
from testy_model.mapper import template_mapping
from testy_model.model import arch_arrays
from testy_model.model.evaluate import evaluate, evaluate_points
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

    evaluate(net, arch, maps, plan=args.plan)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        rep = evaluate(net, arch, maps, plan=args.plan)
        times.append(time.perf_counter() - t0)
    ms = 1e3 * statistics.median(times)

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

    print(f"network: resnet50, {len(net.layers)} layers, plan {args.plan}, arch {arch.name}")
    print(
        f"evaluate (one design point): median {ms:.2f} ms over {args.repeats} runs "
        f"(target < 20 ms); total {rep.cycles:,.0f} cycles, {rep.energy_pj / 1e6:,.1f} µJ, "
        f"speed-up {rep.speedup:.3f}x vs dense"
    )
    print(
        f"evaluate_points ({p} design points, batched): {secs:.3f} s (target < 10 s); "
        f"EDP range {pc.edp_pj_s.min():.4g} .. {pc.edp_pj_s.max():.4g} pJ·s"
    )
    rel = abs(pc.total_energy_pj[0] - rep.energy_pj) / rep.energy_pj
    print(f"consistency: point 0 energy vs evaluate: relative difference {rel:.2e}")


if __name__ == "__main__":
    main()
