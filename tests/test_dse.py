"""Sweeps: hand-derived rows, the shared mapper against the model, chunking/backends, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.dse import explore as dse
from testy_model.errors import SpecError
from testy_model.mapper import find_mapping
from testy_model.model.evaluate import evaluate
from testy_model.model.plan import Plan
from testy_model.model.terms import layer_terms
from testy_model.spec.arch_loader import load_arch

ROOT = Path(__file__).resolve().parents[1]
STC = ROOT / "arch_specs" / "stc_2of4_tasd.yaml"

# A two-level engine priced by hand below: DRAM (10 pJ per read, 12 pJ per write, per 8-bit word)
# over one buffer (1 pJ read, 2 pJ write) over one MAC (1 pJ); no bandwidth limits; 1 GHz.
TINY_ARCH = """\
architecture:
  version: 0.4
  nodes:
  - !Container
    name: system
    attributes: {technology: "45nm"}
  - !Component
    name: DRAM
    class: DRAM
    attributes: {width: 8, datawidth: 8, read_energy: 10.0, write_energy: 12.0}
  - !Component
    name: Buf
    class: SRAM
    attributes: {depth: 64, width: 8, datawidth: 8, read_energy: 1.0, write_energy: 2.0}
  - !Component
    name: MAC
    class: intmac
    attributes: {datawidth: 8, mac_energy: 1.0}
"""
TINY_NET = """\
network:
  name: tiny
  layers:
  - name: g
    gemm: {M: 2, N: 2, K: 2}
"""
SMALL_NET = """\
network:
  name: small
  layers:
  - name: fc1
    gemm: {M: 64, N: 32, K: 128}
  - name: fc2
    gemm: {M: 64, N: 32, K: 128}
  - name: fc3
    gemm: {M: 32, N: 16, K: 64}
"""


def write_tiny(tmp: Path, grid: str, extra: str = "") -> Path:
    (tmp / "arch.yaml").write_text(TINY_ARCH)
    (tmp / "net.yaml").write_text(TINY_NET)
    sweep = tmp / "sweep.yaml"
    sweep.write_text(f"sweep:\n  arch: arch.yaml\n  networks: [net.yaml]\n{grid}{extra}")
    return sweep


def write_small(tmp: Path, extra: str = "") -> Path:
    """An STC sweep of a three-layer network: 3 SMEM depths x 2 RF depths x 2 DRAM bandwidths
    x 2 weight sparsities = 24 points, fixed TASD plan on the weights."""
    (tmp / "small.yaml").write_text(SMALL_NET)
    sweep = tmp / "sweep.yaml"
    sweep.write_text(
        f"""\
sweep:
  arch: {STC}
  grid:
    levels.SMEM.depth: [64, 512, 4096]
    levels.RF.depth: [64, 2048]
    levels.DRAM.read_bandwidth: [64, 512]
  networks: [small.yaml]
  weight_sparsity: [0.5, 0.8]
  plan: "W=2:4+1:4,A=dense"
{extra}"""
    )
    return sweep


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    dse.clear_caches()


def test_tiny_sweep_rows_are_derived_by_hand(tmp_path: Path) -> None:
    sweep = write_tiny(
        tmp_path,
        "  grid:\n    levels.Buf.depth: [16, 64]\n    levels.Buf.read_energy: [1.0, 3.0]\n",
    )
    df = dse.sweep(sweep, tmp_path / "out.csv", backend="serial", progress=False)
    # Z[2x2] += A[2x2]·B[2x2]: 8 MACs on one MAC unit, no bandwidth limit -> 8 cycles (1 GHz).
    # Best mapping (both depths hold all 12 words = 96 bits <= 16 rows x 8 b): every loop at the
    # buffer, DRAM touched once per word.
    #   DRAM: reads A 4 + B 4 = 8 words x 10 pJ, Z written back 4 words x 12 pJ -> 128 pJ.
    #   Buf:  writes = fills A 4 + B 4 + Z updates from the MAC 8 = 16 x 2 pJ = 32 pJ;
    #         reads  = A 8 + B 8 (one per MAC) + Z 4 (partial sums read back: 8 - 4 first
    #         writes) = 20 x e_read -> 20 pJ (e_read 1) or 60 pJ (e_read 3).
    #   MAC: 8 x 1 pJ = 8 pJ.  Total 188 pJ or 228 pJ.
    # (Bypassing the buffer costs more: A from DRAM at the MAC 8 x 10 = 80 pJ against
    # 40 + 4x2 + 8x3 = 72 pJ at e_read 3.)
    assert list(df["levels.Buf.depth"]) == [16, 16, 64, 64]
    assert list(df["levels.Buf.read_energy"]) == [1.0, 3.0, 1.0, 3.0]
    assert df["valid"].all()
    np.testing.assert_allclose(df["cycles"], 8.0)
    np.testing.assert_allclose(df["seconds"], 8e-9)
    np.testing.assert_allclose(df["energy_DRAM_pj"], 128.0)
    np.testing.assert_allclose(df["energy_Buf_pj"], [52.0, 92.0, 52.0, 92.0])
    np.testing.assert_allclose(df["energy_MAC_pj"], 8.0)
    np.testing.assert_allclose(df["energy_pj"], [188.0, 228.0, 188.0, 228.0])
    np.testing.assert_allclose(df["edp_pj_s"], df["energy_pj"] * 8e-9)
    # area (area.py's fits at 45 nm): the SRAM buffer 1.087942 um^2/bit x 16 x 8 b = 139.2566
    # um^2, plus one int8 MAC 773.6783 um^2 -> 912.9349 um^2.
    assert df["area_mm2"].iloc[0] == pytest.approx((1.087942 * 128 + 773.6783) / 1e6)
    assert df["point_id"].is_unique


def test_mapper_off_uses_the_representatives_search_only(tmp_path: Path) -> None:
    grid = "  grid:\n    levels.Buf.depth: [16, 64]\n    levels.Buf.read_energy: [1.0, 3.0]\n"
    sweep = write_tiny(tmp_path, grid, "  mapper: false\n")
    df = dse.sweep(sweep, tmp_path / "off.csv", backend="serial", progress=False)
    # the mapper's search at each capacity set finds the optimum derived in the test above
    np.testing.assert_allclose(df["energy_pj"], [188.0, 228.0, 188.0, 228.0])
    # and with no representative per capacity set (seed_limit 0) the structure's extremes
    dse.clear_caches()
    sweep = write_tiny(tmp_path, grid, "  mapper: false\n  seed_limit: 0\n")
    df0 = dse.sweep(sweep, tmp_path / "off0.csv", backend="serial", progress=False)
    np.testing.assert_allclose(df0["energy_pj"], [188.0, 228.0, 188.0, 228.0])


def test_pair_cost_equals_the_model_at_every_point() -> None:
    from testy_model.dse.batch import candidate_features, pair_cost
    from testy_model.mapper import beam as mapper
    from testy_model.mapper.space import index_arch, index_problem
    from testy_model.model.arrays import arch_arrays
    from testy_model.model.cost import evaluate_terms
    from testy_model.spec.workload import Density, Layer, gemm

    prob = gemm(64, 32, 128, name="g", densities={"A": Density(kind="bernoulli", density=0.3)})
    layer = Layer(name="g", problem=prob)
    base = load_arch(STC)
    cand = mapper.candidate_nests(prob, base, limit=500)
    unb = dse._unbounded(base)
    pi = index_problem(prob, {}, {})
    nests = mapper.to_nests(pi, index_arch(unb, prob, pi, None), cand)
    plan = Plan.parse("W=2:4+1:4,A=2:4")
    fmts, tv = layer_terms(layer, plan.for_layer("g"), base)
    terms = dse._terms(fmts)
    archs = [
        load_arch(
            STC,
            [
                f"levels.SMEM.depth={d}",
                f"levels.DRAM.read_bandwidth={bw}",
                f"compute.clock_ghz={c}",
                f"tasd_unit.count={n}",
                f"levels.RF.depth={r}",
            ],
        )
        for d, bw, c, n, r in [
            (64, 64, 1.0, 1, 4),
            (512, 256, 2.0, 4, 64),
            (4096, 1024, 0.5, 16, 2048),
        ]
    ]
    feats = candidate_features(prob, arch_arrays(base), nests, terms, tv)
    grid = pair_cost(feats, arch_arrays(archs), grid=True)
    assert grid.cycles.shape == (len(nests), 3)
    for p, arch in enumerate(archs):
        ref = evaluate_terms(prob, arch, nests, terms, tasd_values=tv)
        np.testing.assert_allclose(grid.cycles[:, p], ref.cycles, rtol=1e-12)
        np.testing.assert_allclose(grid.energy_pj[:, p], ref.energy_pj, rtol=1e-12)
        for comp, v in ref.energy_by_component.items():
            np.testing.assert_allclose(grid.components[comp][:, p], v, rtol=1e-12, atol=1e-9)
        assert (grid.valid[:, p] == ref.valid).all()
    # the capacity filter bites: fewer candidates fit the 4-row RF than the 2048-row one
    assert grid.valid[:, 0].sum() < grid.valid[:, 2].sum()


def test_rows_equal_evaluate_with_the_chosen_mappings(tmp_path: Path) -> None:
    sweep = write_small(tmp_path)
    spec = dse.load_sweep(sweep)
    pts = dse.expand_points(spec)[::5]
    ctx = dse.prepare(spec)
    rows = dse.evaluate_chunk(ctx, pts)
    net = dse.network_for(str(tmp_path / "small.yaml"), 0.8, {})
    chosen = [p for p in pts if p["weight_sparsity"] == 0.8]
    archs = [dse.arch_for(ctx.arch, p["set"]) for p in chosen]
    maps = dse.point_mappings(ctx, net, archs)
    by_id = {r["point_id"]: r for r in rows}
    assert chosen
    for p, arch, m in zip(chosen, archs, maps, strict=True):
        rep = evaluate(net, arch, m, Plan.parse(ctx.plan))
        row = by_id[p["point_id"]]
        assert row["cycles"] == pytest.approx(rep.cycles, rel=1e-12)
        assert row["energy_pj"] == pytest.approx(rep.energy_pj, rel=1e-12)
        assert row["edp_pj_s"] == pytest.approx(rep.edp_pj_s, rel=1e-12)


def test_shared_mapper_is_no_worse_than_a_search_per_point(tmp_path: Path) -> None:
    # One point (no grid): its own architecture is the representative the mapper searches at,
    # so its result is among the candidates and the chosen per-layer energy can only be lower.
    (tmp_path / "small.yaml").write_text(SMALL_NET)
    sweep = tmp_path / "one.yaml"
    sweep.write_text(f"sweep:\n  arch: {STC}\n  networks: [small.yaml]\n  objective: energy\n")
    df = dse.sweep(sweep, tmp_path / "one.parquet", backend="serial", progress=False)
    arch = load_arch(STC)
    net = dse.network_for(str(tmp_path / "small.yaml"), 0.0, {})

    def searched(layer: object, a: object) -> object:
        fmts, _ = layer_terms(layer, Plan().for_layer("x"), a)  # type: ignore[arg-type]
        res = find_mapping(
            layer.problem,  # type: ignore[attr-defined]
            a,  # type: ignore[arg-type]
            "energy",
            densities=dse._terms(fmts),  # type: ignore[arg-type]
            **dse.SEED_SEARCH,  # type: ignore[arg-type]
        )
        return res.mapping

    rep = evaluate(net, arch, searched)  # type: ignore[arg-type]
    assert df["energy_pj"].iloc[0] <= rep.energy_pj * (1 + 1e-12)


def test_search_plan_rows_equal_the_search_at_each_point(tmp_path: Path) -> None:
    from testy_model.plan_search import search

    (tmp_path / "small.yaml").write_text(SMALL_NET)
    spec = dse.SweepSpec(
        arch=str(STC),
        grid={"levels.SMEM.depth": [64, 4096]},
        networks=[str(tmp_path / "small.yaml")],
        weight_sparsity=[0.8],
        plan="search",
        budget=0.02,
    )
    df = dse.sweep(spec, tmp_path / "s.parquet", backend="serial", progress=False)
    ctx = dse.prepare(spec)
    net = dse.network_for(str(tmp_path / "small.yaml"), 0.8, {})
    archs = [dse.arch_for(ctx.arch, {"levels.SMEM.depth": d}) for d in (64, 4096)]
    maps_per_point = dse.point_mappings(ctx, net, archs)
    for row, arch, maps in zip(df.itertuples(), archs, maps_per_point, strict=True):
        t = search(net, arch, budget=0.02, mappings=maps).totals("plan")
        assert row.cycles == pytest.approx(t.cycles, rel=1e-12)
        assert row.energy_pj == pytest.approx(t.energy_pj, rel=1e-12)
        parts = [c for c in df.columns if c.startswith("energy_") and c != "energy_pj"]
        assert sum(row._asdict()[c] for c in parts) == pytest.approx(row.energy_pj)


def test_rows_do_not_depend_on_chunking_or_the_local_pool(tmp_path: Path) -> None:
    sweep = write_small(tmp_path)
    a = dse.sweep(sweep, tmp_path / "a.parquet", backend="serial", progress=False)
    dse.clear_caches()
    b = dse.sweep(sweep, tmp_path / "b.parquet", backend="serial", chunk_size=5, progress=False)
    c = dse.sweep(
        sweep, tmp_path / "c.parquet", backend="local", workers=2, chunk_size=7, progress=False
    )
    assert len(a) == 24
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    # the capacities matter: the smallest buffers give the most energy at equal other inputs
    small = a[(a["levels.SMEM.depth"] == 64) & (a["levels.RF.depth"] == 64)]
    big = a[(a["levels.SMEM.depth"] == 4096) & (a["levels.RF.depth"] == 2048)]
    assert (small["energy_pj"].to_numpy() > big["energy_pj"].to_numpy()).all()


def test_dask_two_worker_cluster_gives_the_same_rows(tmp_path: Path) -> None:
    sweep = write_small(tmp_path)
    ref = dse.sweep(sweep, tmp_path / "serial.parquet", backend="serial", progress=False)
    got = dse.sweep(
        sweep, tmp_path / "dask.parquet", backend="dask", workers=2, chunk_size=6, progress=False
    )
    pd.testing.assert_frame_equal(ref, got)


def test_resume_recomputes_nothing_already_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = write_small(tmp_path)
    out = tmp_path / "r.parquet"
    real = dse.evaluate_chunk
    seen: list[str] = []

    def killed_after_two_chunks(ctx: dse.SweepContext, points: list[dict]) -> list[dict]:
        if len(seen) >= 8:
            raise KeyboardInterrupt  # the sweep is killed while the third chunk runs
        seen.extend(p["point_id"] for p in points)
        return real(ctx, points)

    monkeypatch.setattr(dse, "evaluate_chunk", killed_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        dse.sweep(sweep, out, backend="serial", chunk_size=4, progress=False)
    first = list(seen)
    assert len(first) == 8 and not out.exists()

    again: list[str] = []

    def counting(ctx: dse.SweepContext, points: list[dict]) -> list[dict]:
        again.extend(p["point_id"] for p in points)
        return real(ctx, points)

    monkeypatch.setattr(dse, "evaluate_chunk", counting)
    done = dse.sweep(sweep, out, backend="serial", chunk_size=4, progress=False)
    assert len(again) == 24 - 8 and not set(again) & set(first)
    monkeypatch.setattr(dse, "evaluate_chunk", real)
    dse.clear_caches()
    fresh = dse.sweep(sweep, tmp_path / "fresh.parquet", backend="serial", progress=False)
    pd.testing.assert_frame_equal(done, fresh)


def test_structure_key_ignores_numbers_but_not_structure() -> None:
    base = load_arch(STC)
    bigger = load_arch(STC, ["levels.SMEM.depth=8192", "levels.DRAM.read_bandwidth=512"])
    fewer = load_arch(STC, ["levels.LRF.instances=2048", "compute.instances=2048"])
    patterns = load_arch(STC, ["sparsity.A.patterns=[1:4,2:4]"])
    assert dse.structure_key(base) == dse.structure_key(bigger)
    assert dse.structure_key(base) != dse.structure_key(fewer)
    assert dse.structure_key(base) != dse.structure_key(patterns)
    reps = dse.representatives([base, bigger])
    assert [r.level("SMEM").depth for r in reps] == [4096, 8192]


def test_bad_override_names_the_sweep_file_and_point(tmp_path: Path) -> None:
    sweep = write_tiny(tmp_path, "  grid:\n    levels.Nope.depth: [16]\n")
    with pytest.raises(SpecError) as err:
        dse.sweep(sweep, tmp_path / "o.csv", backend="serial", progress=False)
    msg = str(err.value)
    assert str(sweep) in msg and "levels.Nope.depth=16" in msg and "Buf" in msg


def test_arch_for_is_load_arch_with_overrides() -> None:
    import inspect

    # one implementation: arch_for applies load_arch's overrides to the cached base spec
    sets = [
        {"levels.SMEM.depth": 2048, "levels.RF.depth": 64},
        {"array.pes": 512},
        {"array.pes": 256, "levels.DRAM.read_bandwidth": 1024},
    ]
    for ov in sets:
        assert dse.arch_for(STC, ov) == load_arch(STC, dse.override_strings(ov))
    assert "_rederive" not in inspect.getsource(dse)


PES_NET = """\
network:
  name: pes
  layers:
  - name: g
    gemm: {M: 64, N: 64, K: 64}
"""


def test_sweep_over_pe_count(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(PES_NET)
    sweep = tmp_path / "sweep.yaml"
    big = 1_000_000  # words/cycle: no bandwidth limit, so the latency is the compute time
    sweep.write_text(
        f"""\
sweep:
  arch: {STC}
  grid:
    array.pes: [256, 512, 1024]
    levels.DRAM.read_bandwidth: [{big}]
    levels.DRAM.write_bandwidth: [{big}]
    levels.SMEM.read_bandwidth: [{big}]
    levels.SMEM.write_bandwidth: [{big}]
  networks: [net.yaml]
"""
    )
    df = dse.sweep(sweep, tmp_path / "pes.csv", backend="serial", progress=False)
    pes = [256, 512, 1024]
    assert list(df["array.pes"]) == pes
    assert df["valid"].all()
    # peak MACs per cycle follow the override (compute and LRF instances scale together)
    for n in pes:
        a = dse.arch_for(STC, {"array.pes": n})
        assert a.peak_macs_per_cycle == n
        assert a.level("LRF").instances == n
    # dense GEMM 64 x 64 x 64 = 262,144 MACs; 64 = 2^6 per dimension splits evenly over the
    # N / 4 PEs under each of the 4 RFs (64, 128, 256: powers of two) -> full utilisation:
    # cycles = 262,144 / N = 1024, 512, 256; 1 GHz -> 1.024 us, 0.512 us, 0.256 us.
    np.testing.assert_allclose(df["cycles"], [1024.0, 512.0, 256.0])
    np.testing.assert_allclose(df["seconds"], [1.024e-6, 0.512e-6, 0.256e-6])
    # the work does not change with N: MAC energy 262,144 x 0.5608 pJ = 147,010.3552 pJ; SMEM
    # (4096 rows x 64 words) holds A, B and Z (3 x 4096 words), so DRAM is touched once per
    # word: (4096 + 4096 reads + 4096 writes) x 64 pJ = 786,432 pJ at every N.
    np.testing.assert_allclose(df["energy_MAC_pj"], 262_144 * 0.5608)
    np.testing.assert_allclose(df["energy_DRAM_pj"], 12_288 * 64.0)
    # more PEs -> more area (MACs and LRFs)
    assert df["area_mm2"].is_monotonic_increasing


def test_sweep_rejects_inconsistent_pe_count(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(PES_NET)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"sweep:\n  arch: {STC}\n  grid:\n    array.pes: [256, 258]\n")
    sweep.write_text(sweep.read_text() + "  networks: [net.yaml]\n")
    with pytest.raises(SpecError) as err:
        dse.sweep(sweep, tmp_path / "o.csv", backend="serial", progress=False)
    msg = str(err.value)
    # 258 is not a multiple of RF's 4 instances; the message names the valid values
    assert str(sweep) in msg and "array.pes=258" in msg and "4, 8, 12, 16" in msg


def test_bad_sweep_files_give_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sweep:\n  arch: a.yaml\n  objective: speed\n")
    with pytest.raises(SpecError) as err:
        dse.load_sweep(bad)
    assert str(bad) in str(err.value) and "sweep.objective" in str(err.value)
    bad.write_text("sweeps: {}\n")
    with pytest.raises(SpecError, match="top-level 'sweep:'"):
        dse.load_sweep(bad)
    bad.write_text(f"sweep:\n  arch: {STC}\n  plan: 'W=3:2'\n")
    with pytest.raises(SpecError) as err3:
        dse.sweep(bad, tmp_path / "o.csv", backend="serial", progress=False)
    assert "sweep.plan" in str(err3.value) and "3:2" in str(err3.value)
    sweep = write_tiny(tmp_path, "", "  networks: [no_such_net]\n")
    sweep.write_text(sweep.read_text().replace("  networks: [net.yaml]\n", ""))
    with pytest.raises(SpecError) as err2:
        dse.sweep(sweep, tmp_path / "o.csv", backend="serial", progress=False)
    assert "sweep.networks" in str(err2.value) and "no_such_net" in str(err2.value)


# -- the CLI ------------------------------------------------------------------------------

runner = CliRunner()
GRID = "  grid:\n    levels.Buf.depth: [16, 64]\n    levels.Buf.read_energy: [1.0, 3.0]\n"


def test_sweep_then_pareto_with_plot(tmp_path: Path) -> None:
    dse.clear_caches()
    sweep = write_tiny(tmp_path, GRID)
    out = tmp_path / "res.csv"
    r = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--backend", "serial"])
    assert r.exit_code == 0, r.output
    assert "4 points (4 valid)" in r.output
    df = pd.read_csv(out)
    # energies derived in test_dse.test_tiny_sweep_rows_are_derived_by_hand
    np.testing.assert_allclose(df["energy_pj"], [188.0, 228.0, 188.0, 228.0])
    # Front in (energy, area): read energy 1 pJ beats 3 pJ at equal area, and the 16-row buffer
    # has less area than the 64-row one at equal energy -> only (depth 16, 1 pJ) survives.
    front_csv = tmp_path / "front.csv"
    png = tmp_path / "front.png"
    r = runner.invoke(
        app,
        [
            "pareto",
            str(out),
            "--objectives",
            "energy_pj,area_mm2",
            "--plot",
            str(png),
            "--out",
            str(front_csv),
        ],
    )
    assert r.exit_code == 0, r.output
    front = pd.read_csv(front_csv)
    assert list(front["levels.Buf.depth"]) == [16]
    assert list(front["levels.Buf.read_energy"]) == [1.0]
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    sweep = write_tiny(tmp_path, "  grid:\n    levels.Buf.depht: [16]\n")
    r = runner.invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "o.parquet")])
    assert r.exit_code == 2
    assert "levels.Buf.depht=16" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "o.txt")])
    assert r.exit_code == 2 and ".parquet or .csv" in r.output
    r = runner.invoke(app, ["pareto", str(tmp_path / "missing.parquet")])
    assert r.exit_code == 2 and "missing.parquet" in r.output
    table = tmp_path / "t.csv"
    pd.DataFrame({"point_id": ["a"], "seconds": [1.0], "energy_pj": [2.0]}).to_csv(table)
    r = runner.invoke(app, ["pareto", str(table), "--objectives", "seconds,power"])
    assert r.exit_code == 2 and "power" in r.output


def test_shipped_example_sweeps_load_and_expand() -> None:
    files = sorted((ROOT / "examples" / "sweeps").glob("*.yaml"))
    assert len(files) >= 3
    sizes = {}
    for f in files:
        spec = dse.load_sweep(f)
        assert spec.arch_path().is_file()
        sizes[f.stem] = len(dse.expand_points(spec))
    # 5 x 5 x 4 x 2 x 5 grids, one network, one sparsity; the small one 3 x 2 x 2 sparsities
    assert sizes["resnet50_1000"] == 1000 and sizes["bert_base_1000"] == 1000
    assert sizes["resnet50_small"] == 12


def test_editing_the_plan_or_arch_recomputes_instead_of_reusing_stale_rows(
    tmp_path: Path,
) -> None:
    """Rows depend on more than a point's own inputs: the plan, the base architecture file, the
    objective. Re-running into the same output after editing one of them must recompute every
    point (the rows change), not return the old sweep's rows as done."""
    sweep = write_small(tmp_path)
    out = tmp_path / "r.csv"
    first = dse.sweep(sweep, out, backend="serial", progress=False)
    assert set(first["plan"]) == {"W=2:4+1:4,A=dense"}
    sweep.write_text(sweep.read_text().replace("W=2:4+1:4,A=dense", "dense"))
    second = dse.sweep(sweep, out, backend="serial", progress=False)
    assert set(second["plan"]) == {"dense"}
    assert set(first["point_id"]).isdisjoint(second["point_id"])
    # the rows were recomputed: on fixed 2:4 slots, 2:4+1:4 fills 2 + 2 of every 4 slots (1:4
    # runs on 2:4), the dense traffic and work plus metadata but with its zero slots gated, so
    # its energy differs from dense at every point
    assert (second["energy_pj"].to_numpy() != first["energy_pj"].to_numpy()).all()
    # unchanged inputs keep their ids (resume still works)
    assert list(dse.sweep(sweep, out, backend="serial", progress=False)["point_id"]) == list(
        second["point_id"]
    )


def test_clock_sweep_charges_the_clock(tmp_path: Path) -> None:
    # The tiny engine of test_tiny_sweep_rows_are_derived_by_hand at 0.6, 1.0 and 1.4 GHz; its
    # energies hold at its nominal clock, the 1 GHz written in the file. The voltage-frequency
    # rule (estimators/voltage.py) sets v = V/V_nom from (v - 0.33)^1.3 / v = f · 0.67^1.3; the
    # on-chip energies (buffer 52 pJ, MAC 8 pJ) scale by v², DRAM's 128 pJ does not:
    # energy = 128 + 60·v² pJ; seconds = 8 cycles / f. At 1.4 GHz v = 1.539594: 270.22 pJ.
    sweep = write_tiny(tmp_path, "  grid:\n    compute.clock_ghz: [0.6, 1.0, 1.4]\n")
    df = dse.sweep(sweep, tmp_path / "out.csv", backend="serial", progress=False)
    f = df["compute.clock_ghz"].to_numpy()
    v = np.sqrt((df["energy_pj"].to_numpy() - 128.0) / 60.0)
    np.testing.assert_allclose((v - 0.33) ** 1.3 / v, f * 0.67**1.3, rtol=1e-9)
    np.testing.assert_allclose(df["energy_DRAM_pj"], 128.0)
    np.testing.assert_allclose(df["seconds"], 8e-9 / f)
    assert df.loc[f == 1.0, "energy_pj"].item() == pytest.approx(188.0)
    assert df.loc[f == 1.4, "energy_pj"].item() == pytest.approx(128 + 60 * 1.539594**2)
    # every clock is on the latency-energy Pareto front (without the rule only 1.4 GHz was)
    front = dse.pareto(df, ["seconds", "energy_pj"])
    assert sorted(front["compute.clock_ghz"]) == [0.6, 1.0, 1.4]


def test_sweep_conventions_reach_the_pricing(tmp_path: Path) -> None:
    # issue 12: the sweep file's conventions price every row; rows equal evaluate under the same
    # conventions with the chosen mappings, and differ from the timeloop pricing of those
    # mappings (the 2022 artifact also counts the first fill of every output tile)
    sweep = write_small(tmp_path, "  conventions: sparseloop-2022\n")
    spec = dse.load_sweep(sweep)
    assert spec.conventions == "sparseloop-2022"
    (tmp_path / "base").mkdir()
    base = dse.load_sweep(write_small(tmp_path / "base", ""))
    assert dse.evaluation_fingerprint(spec) != dse.evaluation_fingerprint(base)
    pts = [p for p in dse.expand_points(spec)[::7] if p["weight_sparsity"] == 0.8]
    ctx = dse.prepare(spec)
    rows = {r["point_id"]: r for r in dse.evaluate_chunk(ctx, pts)}
    net = dse.network_for(str(tmp_path / "small.yaml"), 0.8, {})
    archs = [dse.arch_for(ctx.arch, p["set"]) for p in pts]
    maps = dse.point_mappings(ctx, net, archs)
    assert pts
    for p, arch, m in zip(pts, archs, maps, strict=True):
        rep = evaluate(net, arch, m, Plan.parse(ctx.plan), conventions="sparseloop-2022")
        other = evaluate(net, arch, m, Plan.parse(ctx.plan), conventions="timeloop")
        row = rows[p["point_id"]]
        assert row["energy_pj"] == pytest.approx(rep.energy_pj, rel=1e-12)
        assert row["cycles"] == pytest.approx(rep.cycles, rel=1e-12)
        assert other.energy_pj < rep.energy_pj


def test_sweep_rejects_unknown_conventions(tmp_path: Path) -> None:
    sweep = write_small(tmp_path, "  conventions: sparseloop\n")
    with pytest.raises(SpecError, match="sparseloop-2022"):
        dse.load_sweep(sweep)


def test_sweep_refuses_an_arch_file_with_sparse_optimizations(tmp_path: Path) -> None:
    # a sweep prices the term stage; a Sparseloop block would be ignored: a clear error instead
    arch = tmp_path / "arch.yaml"
    arch.write_text(
        STC.read_text()
        + "\nsparse_optimizations:\n  targets:\n    - name: DRAM\n"
        + "      representation-format:\n        data-spaces:\n          - name: A\n"
        + "            ranks: [{format: CP}]\n"
    )
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "sweep:\n  arch: arch.yaml\n  grid:\n    levels.SMEM.depth: [4096]\n"
        "  networks: [resnet50]\n"
    )
    res = CliRunner().invoke(app, ["sweep", str(sweep), "-o", str(tmp_path / "out.csv")])
    assert res.exit_code == 2, res.output
    assert "sparse_optimizations" in res.output and "sweep.arch" in res.output
    assert "Traceback" not in res.output
