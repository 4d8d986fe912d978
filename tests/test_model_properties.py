"""Property tests of the cost model (hypothesis, seeded, small examples)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from testy_model.model import evaluate_nests, evaluate_terms, nests_from_mapping, nm_term
from testy_model.model.cost import OperandTerm
from testy_model.model.evaluate import evaluate
from testy_model.spec import (
    Architecture,
    ComputeUnit,
    LevelMapping,
    Mapping,
    OperandSparsity,
    SparsitySupport,
    StorageLevel,
    gemm,
)

ARCH = Architecture(
    name="prop",
    levels=(
        StorageLevel(
            name="DRAM",
            kind="DRAM",
            width=64,
            datawidth=8,
            read_energy=64,
            write_energy=64,
            read_bandwidth=64.0,
            write_bandwidth=64.0,
        ),
        StorageLevel(
            name="GLB",
            depth=4096,
            width=64,
            datawidth=8,
            read_energy=4,
            write_energy=5,
            read_bandwidth=256.0,
            write_bandwidth=256.0,
        ),
        StorageLevel(
            name="RF",
            depth=64,
            width=8,
            datawidth=8,
            instances=16,
            read_energy=0.2,
            write_energy=0.3,
        ),
    ),
    compute=ComputeUnit(instances=16, mac_energy=0.3, gated_mac_energy=0.05),
    sparsity=SparsitySupport(A=OperandSparsity(patterns=("2:4", "1:4"))),
)

DIVS = [1, 2]  # rf·glb <= 4 keeps every DRAM factor a whole number >= 1


@st.composite
def mappings(draw):
    """A random legal-shaped mapping of a 64×32×64 GEMM onto ARCH (spatial M×N ≤ 16)."""
    sm, sn = draw(st.sampled_from([(4, 4), (2, 8), (16, 1), (1, 1), (4, 2)]))
    rf = {d: draw(st.sampled_from(DIVS)) for d in "MNK"}
    glb = {d: draw(st.sampled_from(DIVS)) for d in "MNK"}
    bounds = {"M": 64, "N": 32, "K": 64}
    sp = {"M": sm, "N": sn, "K": 1}
    dram = {d: bounds[d] // (rf[d] * glb[d] * sp[d]) for d in "MNK"}
    perms = [tuple(p) for p in ("MNK", "MKN", "NKM", "KMN", "KNM", "NMK")]
    return Mapping(
        levels=(
            LevelMapping(
                target="DRAM", temporal=dram, temporal_permutation=draw(st.sampled_from(perms))
            ),
            LevelMapping(
                target="GLB",
                temporal=glb,
                temporal_permutation=draw(st.sampled_from(perms)),
                spatial={"M": sm, "N": sn},
            ),
            LevelMapping(
                target="RF", temporal=rf, temporal_permutation=draw(st.sampled_from(perms))
            ),
        )
    )


PROB = gemm(64, 32, 64)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(mappings())
def test_dense_plan_reproduces_dense_model(m: Mapping) -> None:
    # A dense plan through evaluate() equals the batched core called with no densities.
    nests = nests_from_mapping(m, ARCH, PROB)
    core = evaluate_nests(PROB, ARCH, nests)
    rep = evaluate(PROB, ARCH, m, plan="W=dense,A=dense")
    assert rep.cycles == core.cycles[0]
    assert rep.energy_pj == core.energy_pj[0]
    assert rep.speedup == 1.0 and rep.energy_ratio == 1.0


@settings(max_examples=25, deadline=None, derandomize=True)
@given(mappings(), st.floats(0.05, 1.0), st.floats(0.05, 1.0))
def test_costs_never_increase_as_density_falls(m: Mapping, d1: float, d2: float) -> None:
    lo, hi = sorted((d1, d2))
    nests = nests_from_mapping(m, ARCH, PROB)
    # Same pattern (so same work ratio), lower kept density: no cost may rise.
    c_lo = evaluate_nests(PROB, ARCH, nests, {"A": nm_term("2:4", density=lo / 2)})
    c_hi = evaluate_nests(PROB, ARCH, nests, {"A": nm_term("2:4", density=hi / 2)})
    for f in ("reads", "fills", "updates", "metadata_reads"):
        assert np.all(getattr(c_lo, f) <= getattr(c_hi, f) + 1e-9)
    assert c_lo.energy_pj[0] <= c_hi.energy_pj[0] + 1e-6
    assert c_lo.cycles[0] <= c_hi.cycles[0]
    # Unstructured operand densities on B (no pattern) too.
    u_lo = evaluate_nests(PROB, ARCH, nests, {"B": OperandTerm(lo)})
    u_hi = evaluate_nests(PROB, ARCH, nests, {"B": OperandTerm(hi)})
    assert u_lo.energy_pj[0] <= u_hi.energy_pj[0] + 1e-6
    assert u_lo.cycles[0] <= u_hi.cycles[0]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(mappings(), st.floats(0.05, 1.0))
def test_reads_at_least_compulsory_compressed_size(m: Mapping, d: float) -> None:
    # Every level that keeps a tensor reads it out at least once in total, compressed:
    # Σ_instances reads(t) >= |t|·density (inputs); and DRAM updates of Z >= |Z|.
    nests = nests_from_mapping(m, ARCH, PROB)
    c = evaluate_nests(PROB, ARCH, nests, {"A": OperandTerm(d, 2.0)})
    sizes = {"A": 64 * 64 * d, "B": 32 * 64, "Z": 64 * 32}
    tot = c.reads_total[0]
    for ti, t in enumerate(PROB.tensor_names[:2]):
        for li in range(3):
            if nests.keep[0, li, ti]:
                assert tot[li, ti] >= sizes[t] - 1e-6
    assert c.updates_total[0, 0, 2] >= sizes["Z"]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(mappings(), st.sampled_from(["2:4", "1:4", "1:8", "3:8", "2:8+1:8", "1:4+1:4"]))
def test_energy_at_least_mac_energy_and_terms_sum_to_kept_work(m: Mapping, series: str) -> None:
    nests = nests_from_mapping(m, ARCH, PROB)
    terms = [nm_term(p) for p in series.split("+")]
    c = evaluate_terms(PROB, ARCH, nests, {"A": terms})
    kept = sum(t.density for t in terms)
    # Effective MACs of the terms = MACs of the kept non-zeros = dense MACs × Σ kept density.
    assert c.effective_macs[0] == PROB.macs * kept
    assert c.energy_pj[0] >= c.effective_macs[0] * ARCH.compute.mac_energy
    # ...and equal the sum of the terms' own effective MACs.
    singles = [evaluate_nests(PROB, ARCH, nests, {"A": t}) for t in terms]
    assert np.isclose(sum(s.effective_macs[0] for s in singles), c.effective_macs[0])


def test_batch_equals_single_evaluations() -> None:
    # The batched core over B mappings × one design point equals B separate calls, and P design
    # points (scaled energies) broadcast against one mapping.
    from testy_model.model import arch_arrays, stack_nests

    base = [
        Mapping(
            levels=(
                LevelMapping(target="DRAM", temporal={"M": 4, "N": 2, "K": 4}),
                LevelMapping(
                    target="GLB", temporal={"M": 4, "N": 4, "K": 16}, spatial={"M": 4, "N": 4}
                ),
            )
        ),
        Mapping(
            levels=(
                LevelMapping(
                    target="DRAM",
                    temporal={"M": 16, "N": 2, "K": 1},
                    temporal_permutation=("M", "N", "K"),
                ),
                LevelMapping(
                    target="GLB", temporal={"M": 1, "N": 16, "K": 64}, spatial={"M": 4, "N": 1}
                ),
            )
        ),
    ]
    nests = [nests_from_mapping(m, ARCH, PROB) for m in base]
    batch = evaluate_nests(PROB, ARCH, stack_nests(nests), {"A": nm_term("2:4")})
    for i, n in enumerate(nests):
        one = evaluate_nests(PROB, ARCH, n, {"A": nm_term("2:4")})
        assert one.energy_pj[0] == batch.energy_pj[i]
        assert one.cycles[0] == batch.cycles[i]
    aa = arch_arrays(ARCH)
    pts = aa.replace(mac_energy=np.array([0.3, 0.6, 0.9]))
    many = evaluate_nests(PROB, pts, nests[0])
    one = evaluate_nests(PROB, ARCH, nests[0])
    assert many.energy_pj.shape == (3,)
    assert many.energy_pj[0] == one.energy_pj[0]
    # Tripling the MAC energy adds exactly 2 × the MAC energy of the dense work.
    assert np.isclose(many.energy_pj[2] - many.energy_pj[0], 2 * PROB.macs * 0.3)
