"""Golden cases of the cost model, each derived by hand in the comments.

Common set-up (``_arch``): a two-level hierarchy, 8-bit words everywhere.
  DRAM:   unbounded, read 100 pJ/word, write 100 pJ/word, unlimited bandwidth.
  Buffer: 4096 words (depth 4096 × 8 b), read 2 pJ/word, write 3 pJ/word.
  MACs:   1 (or 4 for the spatial case), 1 pJ/MAC, gated MAC 0.1 pJ.
Metadata energy is not given, so it is charged per bit at the level's word energy / 8.

GEMM Z[m,n] += A[m,k]·B[n,k] with M = N = K = 64 (262,144 MACs).
Mapping 1 (single MAC): DRAM temporal M4 N4 K4, loops outer→inner K, M, N;
                        Buffer temporal M16 N16 K16, loops outer→inner M, N, K.
Buffer tiles: A = 16·16 = 256, B = 256, Z = 256 words.
"""

from __future__ import annotations

import numpy as np
import pytest

from testy_model.model import evaluate_nests, evaluate_terms, nests_from_mapping, nm_term
from testy_model.model.cost import OperandTerm
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

A, B, Z = 0, 1, 2
DRAM, BUF = 0, 1


def _arch(macs: int = 1, patterns: tuple[str, ...] = ()) -> Architecture:
    return Architecture(
        name="two_level",
        levels=(
            StorageLevel(
                name="DRAM", kind="DRAM", width=8, datawidth=8, read_energy=100, write_energy=100
            ),
            StorageLevel(
                name="Buffer", depth=4096, width=8, datawidth=8, read_energy=2, write_energy=3
            ),
        ),
        compute=ComputeUnit(instances=macs, mac_energy=1.0, gated_mac_energy=0.1),
        sparsity=SparsitySupport(A=OperandSparsity(patterns=patterns)),
    )


def _mapping1() -> Mapping:
    return Mapping(
        levels=(
            LevelMapping(
                target="DRAM",
                temporal={"M": 4, "N": 4, "K": 4},
                temporal_permutation=("N", "M", "K"),  # inner to outer
            ),
            LevelMapping(
                target="Buffer",
                temporal={"M": 16, "N": 16, "K": 16},
                temporal_permutation=("K", "N", "M"),
            ),
        )
    )


def _run(arch, mapping, densities=None):
    prob = gemm(64, 64, 64)
    nests = nests_from_mapping(mapping, arch, prob)
    return evaluate_nests(prob, arch, nests, densities)


def test_dense_two_level_gemm() -> None:
    # DRAM -> Buffer (loops above Buffer, outer→inner: K4, M4, N4):
    #  A[M,K]: innermost N4 irrelevant (reuse), M4 relevant -> 4 tiles, outer K4 refetches:
    #          4·4·256 = 4096 reads (= |A|, compulsory).
    #  B[N,K]: N4 relevant innermost -> K4·M4 outer -> 16·4·256 = 16384 reads.
    #  Z[M,N]: W = K4·M4·(4·256) = 16384 tiles words drained -> DRAM updates 16384;
    #          distinct = 256·M4·N4 = 4096 first writes -> DRAM reads (partial sums back) 12288.
    # Buffer -> MAC (every MAC reads its operands; T_all = 4^3·16^3 = 262144 iterations):
    #  reads A = reads B = 262144; Z updates 262144; Z reads 262144 − distinct(64·64) = 258048.
    c = _run(_arch(), _mapping1())
    np.testing.assert_array_equal(c.reads[0, DRAM], [4096, 16384, 12288])
    np.testing.assert_array_equal(c.updates[0, DRAM], [0, 0, 16384])
    np.testing.assert_array_equal(c.fills[0, BUF], [4096, 16384, 12288])
    np.testing.assert_array_equal(c.reads[0, BUF], [262144, 262144, 258048])
    np.testing.assert_array_equal(c.updates[0, BUF], [0, 0, 262144])
    assert c.cycles[0] == 262144
    # Energy: DRAM (4096+16384+12288)·100 + 16384·100 = 4,915,200
    #         Buffer reads (262144+262144+258048)·2 = 1,564,672
    #         Buffer writes (4096+16384+12288+262144)·3 = 884,736
    #         MAC 262,144·1 -> total 7,626,752 pJ.
    assert c.energy_by_component["DRAM"][0] == pytest.approx(4_915_200)
    assert c.energy_by_component["Buffer"][0] == pytest.approx(1_564_672 + 884_736)
    assert c.energy_by_component["MAC"][0] == pytest.approx(262_144)
    assert c.energy_pj[0] == pytest.approx(7_626_752)
    assert bool(c.valid[0])
    assert c.utilisation[0] == pytest.approx(1.0)
    # 1 GHz default clock: 262144 cycles = 262.144 µs; EDP = E·t.
    assert c.seconds[0] == pytest.approx(262_144e-9)
    assert c.edp[0] == pytest.approx(7_626_752 * 262_144e-9)


def _mapping_spatial() -> Mapping:
    return Mapping(
        levels=(
            LevelMapping(
                target="DRAM",
                temporal={"M": 4, "N": 4, "K": 4},
                temporal_permutation=("N", "M", "K"),
            ),
            LevelMapping(
                target="Buffer",
                temporal={"M": 8, "N": 16, "K": 8},
                temporal_permutation=("K", "N", "M"),
                spatial={"M": 2, "K": 2},
            ),
        )
    )


def test_spatial_multicast_and_reduction() -> None:
    # Buffer spatial M2 K2 over 4 MACs; Buffer tile extents still M16 N16 K16, so the DRAM
    # counts are those of the first case. Per MAC: T_all = 4^3·(8·16·8) = 65536 iterations.
    #  A[M,K] relevant to M and K -> 4 distinct words per step: 65536·4 = 262144 reads.
    #  B[N,K] irrelevant to M -> multicast over M2: 65536·2 = 131072 reads.
    #  Z[M,N] irrelevant to K -> reduced over K2: updates 65536·2 = 131072;
    #          distinct per MAC = M(4·8)·N(4·16) = 2048 -> reads (65536 − 2048)·2 = 126976.
    c = _run(_arch(macs=4), _mapping_spatial())
    np.testing.assert_array_equal(c.reads[0, DRAM], [4096, 16384, 12288])
    np.testing.assert_array_equal(c.updates[0, DRAM], [0, 0, 16384])
    np.testing.assert_array_equal(c.reads[0, BUF], [262144, 131072, 126976])
    np.testing.assert_array_equal(c.updates[0, BUF], [0, 0, 131072])
    assert c.cycles[0] == 65536
    # Energy: DRAM 4,915,200; Buffer reads (262144+131072+126976)·2 = 1,040,384;
    # writes (4096+16384+12288+131072)·3 = 491,520; MAC 262,144 -> 6,709,248 pJ.
    assert c.energy_pj[0] == pytest.approx(6_709_248)
    assert c.utilisation[0] == pytest.approx(1.0)
    assert c.instances[0, BUF] == 1


def test_24_weight_on_24_engine() -> None:
    # A is 2:4 (density 0.5, 2 metadata bits per kept value); the engine runs 2:4 on A.
    # Cycles: 262144·(2/4) = 131072.
    # DRAM A reads 4096·0.5 = 2048 values + 2048·2 = 4096 metadata bits (= 512 8-bit words).
    # Buffer A reads 262144·0.5 = 131072 values + 262144 metadata bits (32768 words).
    # Energy: DRAM reads (2048+16384+12288)·100 = 3,072,000, updates 1,638,400,
    #   metadata 4096 bit·12.5 pJ/bit = 51,200 -> 4,761,600.
    #   Buffer reads (131072+262144+258048)·2 = 1,302,528, metadata 262144·0.25 = 65,536,
    #   writes (2048+16384+12288+262144)·3 = 878,592, metadata fills 4096 bit·0.375 = 1,536
    #   -> 2,248,192.  MAC: 131072 effective ·1 = 131,072.  Total 7,140,864 pJ.
    arch = _arch(patterns=("2:4",))
    c = _run(arch, _mapping1(), {"A": nm_term("2:4")})
    assert c.compute_cycles[0] == 131072
    assert c.cycles[0] == 131072
    assert c.reads[0, DRAM, A] == 2048
    assert c.metadata_reads[0, DRAM, A] == 512
    assert c.reads[0, BUF, A] == 131072
    assert c.metadata_reads[0, BUF, A] == 32768
    assert c.energy_by_component["DRAM"][0] == pytest.approx(4_761_600)
    assert c.energy_by_component["Buffer"][0] == pytest.approx(2_248_192)
    assert c.energy_pj[0] == pytest.approx(7_140_864)


def test_18_term_on_24_hardware() -> None:
    # 1:8 fits 2:4 (a 4-block of a 1:8 tensor holds at most 1 <= 2 non-zeros): runs at 2/4.
    # Cycles 131072. Density 1/8, 3 metadata bits: DRAM A reads 512 values, 1536 bits = 192 words.
    # MACs: slots 131072, effective 262144/8 = 32768 -> energy 32768·1 + 98304·0.1 = 42,598.4.
    c = _run(_arch(patterns=("2:4",)), _mapping1(), {"A": nm_term("1:8")})
    assert c.cycles[0] == 131072
    assert c.reads[0, DRAM, A] == 512
    assert c.metadata_reads[0, DRAM, A] == 192
    assert c.effective_macs[0] == 32768
    assert c.mac_slots[0] == 131072
    assert c.energy_by_component["MAC"][0] == pytest.approx(42_598.4)


def test_unsupported_pattern_falls_back_to_dense() -> None:
    # 4:8 does not fit 2:4 (one 4-block may hold all 4 values): dense work, 262144 cycles,
    # all 262144 slots issued, 131072 of them effective (half gated: 131072·0.1 pJ).
    # Traffic still moves compressed: DRAM A reads 2048 values + 2048·3 bits = 768 words.
    c = _run(_arch(patterns=("2:4",)), _mapping1(), {"A": nm_term("4:8")})
    assert c.cycles[0] == 262144
    assert c.mac_slots[0] == 262144
    assert c.reads[0, DRAM, A] == 2048
    assert c.metadata_reads[0, DRAM, A] == 768
    assert c.energy_by_component["MAC"][0] == pytest.approx(131072 + 13107.2)
    # A 2:4 engine given no patterns at all also runs a 2:4 term dense.
    d = _run(_arch(), _mapping1(), {"A": nm_term("2:4")})
    assert d.cycles[0] == 262144


def test_tasd_two_weight_terms_share_b_and_z() -> None:
    # Series 2:8+1:8 on A, engine 2:4: each term fits 2:4 (an 8-block's 2 values may share a
    # 4-block: 2 <= 2), so each term-GEMM runs at 1/2: cycles 2·131072 = 262144.
    # A moves once per term: densities 0.25 + 0.125 = 0.375 -> DRAM A reads 4096·0.375 = 1536
    # values, metadata 1536·3 bits = 4608 bits = 576 words.
    # B and Z are stationary while the A terms stream: their traffic is that of one GEMM
    # (DRAM B 16384, Z reads 12288, updates 16384; Buffer B 262144, Z 258048 / 262144).
    arch = _arch(patterns=("2:4",))
    prob = gemm(64, 64, 64)
    nests = nests_from_mapping(_mapping1(), arch, prob)
    c = evaluate_terms(prob, arch, nests, {"A": [nm_term("2:8"), nm_term("1:8")]})
    assert c.cycles[0] == 262144
    np.testing.assert_array_equal(c.reads[0, DRAM], [1536, 16384, 12288])
    assert c.metadata_reads[0, DRAM, A] == 576
    np.testing.assert_array_equal(c.reads[0, BUF], [262144 * 0.375, 262144, 258048])
    np.testing.assert_array_equal(c.updates[0, BUF], [0, 0, 262144])
    assert c.effective_macs[0] == 262144 * 0.375
    # Running the two terms as unrelated GEMMs would move B and Z twice.
    t1 = evaluate_nests(prob, arch, nests, {"A": nm_term("2:8")})
    t2 = evaluate_nests(prob, arch, nests, {"A": nm_term("1:8")})
    separate_b = t1.reads[0, DRAM, B] + t2.reads[0, DRAM, B]
    assert separate_b == 2 * c.reads[0, DRAM, B]
    assert c.compute_cycles[0] == t1.compute_cycles[0] + t2.compute_cycles[0]
    assert c.energy_pj[0] < t1.energy_pj[0] + t2.energy_pj[0]


def test_bandwidth_bound_latency() -> None:
    # Buffer read bandwidth 8 bits/cycle = 1 word/cycle; mapping 1 reads 782,336 words from
    # the buffer (A 262144 + B 262144 + Z 258048) -> 782,336 cycles > 262,144 compute cycles.
    # Serial variant adds compute + level cycles: 262,144 + 782,336 = 1,044,480
    # (the buffer's writes 294,912 words at unlimited write bandwidth cost 0).
    arch = _arch()
    levels = (arch.levels[0], arch.levels[1].model_copy(update={"read_bandwidth": 8.0}))
    arch = arch.model_copy(update={"levels": levels})
    c = _run(arch, _mapping1())
    assert c.level_cycles[0, BUF] == 782_336
    assert c.cycles[0] == 782_336
    assert c.cycles_serial[0] == 262_144 + 782_336


def test_validity_checks() -> None:
    # Capacity: a 16×16 buffer tile set needs 3·256 words <= 4096: valid. Shrinking the buffer to
    # 512 words makes it invalid. Fan-out: spatial M2 K2 needs 4 MACs, one MAC is invalid.
    arch = _arch()
    small = arch.model_copy(
        update={"levels": (arch.levels[0], arch.levels[1].model_copy(update={"depth": 512}))}
    )
    assert not bool(_run(small, _mapping1()).valid_capacity[0])
    assert bool(_run(arch, _mapping1()).valid_capacity[0])
    assert not bool(_run(_arch(macs=1), _mapping_spatial()).valid_fanout[0])
    bad = Mapping(levels=(LevelMapping(target="Buffer", temporal={"M": 64, "N": 64, "K": 32}),))
    assert not bool(_run(arch, bad).valid_factors[0])


def test_operand_term_tuple_form() -> None:
    # (density, metadata bits, pattern) tuples are accepted and equal the explicit form.
    arch = _arch(patterns=("2:4",))
    c1 = _run(arch, _mapping1(), {"A": nm_term("2:4")})
    from testy_model.tasd.pattern import NMPattern

    c2 = _run(arch, _mapping1(), {"A": (0.5, 2.0, NMPattern(2, 4))})
    c3 = _run(arch, _mapping1(), {"A": OperandTerm(0.5, 2.0, NMPattern(2, 4))})
    assert c1.energy_pj[0] == c2.energy_pj[0] == c3.energy_pj[0]


def test_unstructured_engine_skips_zeros_and_gating_saves_no_cycles() -> None:
    # B at density 0.25 (no pattern). An engine that skips unstructured zeros on B runs
    # 262144·0.25 = 65536 cycles; one that gates them runs all 262144 cycles and issues all
    # 262144 MAC slots, 65536 effective: MAC energy 65536·1 + 196608·0.1 = 85,196.8 pJ.
    base = _arch()
    skip = base.model_copy(
        update={"sparsity": SparsitySupport(B=OperandSparsity(unstructured=True))}
    )
    gate = base.model_copy(
        update={"sparsity": SparsitySupport(B=OperandSparsity(unstructured=True, action="gate"))}
    )
    c = _run(skip, _mapping1(), {"B": OperandTerm(0.25)})
    assert c.cycles[0] == 65536
    g = _run(gate, _mapping1(), {"B": OperandTerm(0.25)})
    assert g.cycles[0] == 262144
    assert g.energy_by_component["MAC"][0] == pytest.approx(85_196.8)
