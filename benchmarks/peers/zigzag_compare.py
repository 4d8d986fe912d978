"""Side by side: ZigZag (``zigzag-dse``) and testy_model's mapper on one dense architecture.

    python benchmarks/peers/zigzag_compare.py [--arch arch_specs/tc_dense.yaml]
                                              [--venv DIR] [--lpf 6]

1. Creates a virtual environment (default ``$TMPDIR/testy_model_zigzag_venv``, outside the
   repository) and installs ``zigzag-dse`` and ``six`` into it with pip (once; reused later).
2. Describes the architecture to ZigZag in its own YAML (accelerator, workload, mapping): each
   storage level becomes a ZigZag memory with its size in bits, one read and one write port
   with ``bandwidth_min`` = one word and ``bandwidth_max`` = our bandwidth in bits/cycle (a
   level with unlimited bandwidth gets one word per cycle per PE it serves), our per-word
   energies as ``r_cost``/``w_cost``, and the tensors it may keep. The MAC array (16 x 16 PEs
   per RF, 4 RFs) is ZigZag's operational array D1 x D2 x D3, unrolled as the study's mapping
   does (K 16 on D1, M 16 on D2, M 4 on D3).
3. Runs ZigZag (LOMA temporal search, EDP objective) on five GEMMs in the venv's Python, and
   testy_model's ``find_mapping`` here, and prints energy, latency and search time side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from testy_model.mapper import beam as mapper  # noqa: E402
from testy_model.spec.arch import Architecture  # noqa: E402
from testy_model.spec.arch_loader import load_arch  # noqa: E402
from testy_model.spec.workload import gemm  # noqa: E402

#: (M, N, K): Z[m,n] += A[m,k]·B[n,k]; ResNet-50 (implicit GEMM) and BERT-base layers.
GEMMS = [(512, 256, 1024), (64, 3136, 576), (128, 784, 1152), (768, 128, 768), (3072, 128, 768)]

# ZigZag operands: W (weights, ZigZag memory operand I2) = our A[m,k]; I (I1) = our B[n,k];
# O = our Z[m,n]. ZigZag's loop dimensions are named here M, N, K as in our GEMM.
_ZZ_TENSOR = {"A": "I2", "B": "I1", "Z": "O"}

_RUNNER = r"""
import json, sys, time, logging, io, contextlib
logging.disable(logging.CRITICAL)
from zigzag import api
acc, mapping, lpf = sys.argv[1], sys.argv[2], int(sys.argv[3])
shapes, out = json.loads(sys.argv[4]), sys.argv[5]
rows = []
for i, (m, n, k) in enumerate(shapes):
    wl = out + f"/wl_{i}.yaml"
    with open(wl, "w") as fh:
        fh.write(
            "- id: 0\n  name: gemm\n  operator_type: Gemm\n"
            "  equation: O[m][n]+=W[m][k]*I[n][k]\n"
            "  loop_dims: [M, N, K]\n"
            f"  loop_sizes: [{m}, {n}, {k}]\n"
            "  operand_precision: {W: 8, I: 8, O: 8, O_final: 8}\n"
            "  operand_source: {I: 0}\n"
        )
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        energy, latency, _ = api.get_hardware_performance_zigzag(
            workload=wl, accelerator=acc, mapping=mapping, opt="EDP",
            dump_folder=out + f"/dump_{i}", lpf_limit=lpf, loma_show_progress_bar=False,
        )
    rows.append({"energy_pj": float(energy), "cycles": float(latency),
                 "search_s": time.perf_counter() - t0})
print(json.dumps(rows))
"""


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv and installing zigzag-dse + six when missing."""
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} and installing zigzag-dse, six (pip) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "zigzag-dse", "six"], check=True
        )
    return py


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def zigzag_accelerator(arch: Architecture) -> str:
    """ZigZag accelerator YAML for a DRAM -> SMEM -> 4 x RF -> 1024 x (LRF + MAC) design.

    Served dimensions (which PE-array dimensions share one instance): DRAM and SMEM serve the
    whole array (D1, D2, D3); each of the 4 RFs serves a 16 x 16 block (D1, D2); the LRF is per PE.
    """
    served = {0: "[D1, D2, D3]", 1: "[D1, D2, D3]", 2: "[D1, D2]", 3: "[]"}
    # words per cycle a level without a stated bandwidth must deliver: one per PE it serves
    pes = {0: 1024, 1: 1024, 2: 256, 3: 1}
    lines = [f"name: {arch.name}_zigzag", "", "memories:"]
    # ZigZag lists memories innermost first
    for i in reversed(range(len(arch.levels))):
        lvl = arch.levels[i]
        tensors = [t for t in ("A", "B", "Z") if lvl.keeps(t)]
        ops = [_ZZ_TENSOR[t] for t in tensors]
        size = int(lvl.capacity_bits) if lvl.depth is not None else 10**12
        dw = lvl.datawidth
        bw_r = int(lvl.read_bandwidth) if lvl.read_bandwidth else dw * pes.get(i, 1)
        bw_w = int(lvl.write_bandwidth) if lvl.write_bandwidth else dw * pes.get(i, 1)
        lines += [
            f"  {lvl.name}:",
            f"    size: {size}",
            f"    r_cost: {lvl.read_energy:.6g}",
            f"    w_cost: {lvl.write_energy:.6g}",
            "    area: 0",
            "    latency: 1",
            "    auto_cost_extraction: False",
            f"    operands: {_yaml_list(ops)}",
            "    ports:",
        ]
        alloc_r = [f"{o}, tl" for o in ops] + [f"{o}, th" for o in ops if o == "O"]
        alloc_w = [f"{o}, fh" for o in ops] + [f"{o}, fl" for o in ops if o == "O"]
        lines += [
            "      - name: r_port_1",
            "        type: read",
            f"        bandwidth_min: {dw}",
            f"        bandwidth_max: {bw_r}",
            "        allocation:",
            *[f"          - {a}" for a in alloc_r],
            "      - name: w_port_1",
            "        type: write",
            f"        bandwidth_min: {dw}",
            f"        bandwidth_max: {bw_w}",
            "        allocation:",
            *[f"          - {a}" for a in alloc_w],
            f"    served_dimensions: {served.get(i, '[D1, D2, D3]')}",
        ]
    lines += [
        "",
        "operational_array:",
        f"  input_precision: [{arch.compute.datawidth}, {arch.compute.datawidth}]",
        f"  unit_energy: {arch.compute.mac_energy}",
        "  unit_area: 1",
        "  dimensions: [D1, D2, D3]",
        "  sizes: [16, 16, 4]",
    ]
    return "\n".join(lines) + "\n"


ZIGZAG_MAPPING = """- name: default
  spatial_mapping:
    D1:
      - K, 16
    D2:
      - M, 16
    D3:
      - M, 4
  memory_operand_links:
    O: O
    W: I2
    I: I1
"""


def main(argv: list[str] | None = None) -> None:
    """Install ZigZag if needed, run both tools on the GEMMs, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=str(ROOT / "arch_specs" / "tc_dense.yaml"))
    ap.add_argument(
        "--venv", default=os.path.join(tempfile.gettempdir(), "testy_model_zigzag_venv")
    )
    ap.add_argument("--lpf", type=int, default=6, help="ZigZag LOMA lpf_limit")
    args = ap.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(args.arch)
    py = ensure_venv(Path(args.venv))
    with tempfile.TemporaryDirectory() as tmp:
        acc = Path(tmp) / "accelerator.yaml"
        acc.write_text(zigzag_accelerator(arch))
        mp = Path(tmp) / "mapping.yaml"
        mp.write_text(ZIGZAG_MAPPING)
        proc = subprocess.run(
            [str(py), "-c", _RUNNER, str(acc), str(mp), str(args.lpf), json.dumps(GEMMS), tmp],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.exit(f"ZigZag failed:\n{proc.stderr[-3000:]}")
        zz = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"architecture: {Path(args.arch).name} ({arch.compute.instances} MACs); energy in µJ, "
        "latency in cycles, search time in s (wall clock)"
    )
    head = (
        f"{'GEMM (M,N,K)':<20}{'ZigZag E':>10}{'ours E':>10}{'ZigZag cyc':>12}"
        f"{'ours cyc':>12}{'ZigZag s':>10}{'ours s':>9}"
    )
    print(head)
    print("-" * len(head))
    for (m, n, k), z in zip(GEMMS, zz, strict=True):
        t0 = time.perf_counter()
        ours = mapper.find_mapping(gemm(m, n, k), arch, use_cache=False)
        dt = time.perf_counter() - t0
        print(
            f"{f'{m},{n},{k}':<20}{z['energy_pj'] / 1e6:>10.2f}{ours.energy_pj / 1e6:>10.2f}"
            f"{z['cycles']:>12,.0f}{ours.cycles:>12,.0f}{z['search_s']:>10.2f}{dt:>9.3f}"
        )


if __name__ == "__main__":
    main()
