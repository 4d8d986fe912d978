"""Hierarchical (HighLight) patterns: containment, work ratio and metadata, derived by hand.

Notation: H = Nc:Mc(Nf:Mf), a coarse Nc:Mc over fine blocks of Mf values, Nf:Mf inside.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.model.evaluate import evaluate
from testy_model.model.hierarchical import (
    fits_hierarchical,
    hardware_for,
    hierarchical_metadata_bits,
    term_metadata_bits,
    worst_nonempty_blocks,
)
from testy_model.model.latency import work_ratio
from testy_model.spec import LevelMapping, Mapping, gemm
from testy_model.spec.arch import HierarchicalPattern, OperandSparsity
from testy_model.spec.arch_loader import load_arch
from testy_model.tasd.pattern import NMPattern

ROOT = Path(__file__).resolve().parents[1]


def _h(coarse: str, fine: str) -> HierarchicalPattern:
    return HierarchicalPattern(coarse=coarse, fine=fine)


def test_worst_nonempty_blocks_by_hand() -> None:
    p = NMPattern.parse
    # group = 4 fine blocks of 4 = 16 values.
    # 1:8: the group holds two 8-blocks with one non-zero each -> at most 2 non-empty blocks.
    assert worst_nonempty_blocks(p("1:8"), 4, 4) == 2
    # 1:16: one non-zero in the group -> 1 block.
    assert worst_nonempty_blocks(p("1:16"), 4, 4) == 1
    # 2:8: each 8-block spans 2 fine blocks and can fill both -> 4.
    assert worst_nonempty_blocks(p("2:8"), 4, 4) == 4
    # 1:2 inside 4-blocks: every fine block can hold a non-zero -> all 4.
    assert worst_nonempty_blocks(p("1:2"), 4, 4) == 4
    # 1:32 on 16-value groups: a group lies inside one 32-block, one non-zero -> 1 block.
    assert worst_nonempty_blocks(p("1:32"), 4, 4) == 1
    # 3:12 against 8-value groups (2 blocks of 4): groups at offset 0 and 8 of a 24-period;
    # the window [8, 16) meets 12-block 0 on [8,12) (1 fine block) and 12-block 1 on [12,16)
    # (1 fine block) -> 2 = every block of the group.
    assert worst_nonempty_blocks(p("3:12"), 4, 2) == 2


def test_containment_by_hand() -> None:
    p = NMPattern.parse
    # 1:8 fits 2:4(2:4): fine worst per 4-block = 1 <= 2; coarse worst 2 <= 2. Not 1:4(2:4).
    assert fits_hierarchical(p("1:8"), _h("2:4", "2:4"))
    assert not fits_hierarchical(p("1:8"), _h("1:4", "2:4"))
    # 1:16 fits 1:4(2:4) (one non-empty block per group).
    assert fits_hierarchical(p("1:16"), _h("1:4", "2:4"))
    # 4:16 does not fit 4:4(2:4): one 4-block can hold all 4 non-zeros > 2.
    assert not fits_hierarchical(p("4:16"), _h("4:4", "2:4"))
    # 2:8 fits only 4:4(2:4) (coarse worst 4).
    assert fits_hierarchical(p("2:8"), _h("4:4", "2:4"))
    assert not fits_hierarchical(p("2:8"), _h("3:4", "2:4"))


def test_metadata_bits_formula() -> None:
    # ceil(log2 Mc)/Nf + ceil(log2 Mf): 2:4(2:4) -> 2/2 + 2 = 3; 1:8(1:4) -> 3/1 + 2 = 5;
    # 2:8(2:4) -> 3/2 + 2 = 3.5; 1:4(4:8) -> 2/4 + 3 = 3.5.
    assert hierarchical_metadata_bits(_h("2:4", "2:4")) == 3
    assert hierarchical_metadata_bits(_h("1:8", "1:4")) == 5
    assert hierarchical_metadata_bits(_h("2:8", "2:4")) == 3.5
    assert hierarchical_metadata_bits(_h("1:4", "4:8")) == 3.5


def test_hardware_choice_and_work() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sup = load_arch(ROOT / "arch_specs" / "highlight.yaml").sparsity.A
    p = NMPattern.parse
    # highlight: flat 2:4, 4:4; hierarchical {4,3,2,1}:4 over 2:4 blocks (densities 1/2, 3/8,
    # 1/4, 1/8). 1:8 -> least-dense container 2:4(2:4): work 1/4 (flat 2:4 would give 1/2).
    assert str(hardware_for(p("1:8"), sup)) == "2:4(2:4)"
    assert work_ratio(p("1:8"), 0.125, sup) == 0.25
    # 1:16 -> 1:4(2:4): 1/8. 2:8 -> flat 2:4 and 4:4(2:4) tie at 1/2; the flat pattern wins.
    assert work_ratio(p("1:16"), 0.0625, sup) == 0.125
    assert str(hardware_for(p("2:8"), sup)) == "2:4"
    # metadata per kept value: hierarchical 3 bits for 2:16 (term's own would be 4);
    # flat 2:8 keeps its own ceil(log2 8) = 3 bits; an explicit support value wins.
    assert term_metadata_bits(p("2:16"), sup) == 3
    assert term_metadata_bits(p("1:2"), sup) == 1  # runs on flat 2:4, own bits
    fixed = OperandSparsity(hierarchical=(_h("2:4", "2:4"),), metadata_bits=4)
    assert term_metadata_bits(p("1:8"), fixed) == 4


@pytest.mark.parametrize(
    ("plan", "work", "density", "bits"),
    [
        # 1:8 of a dense weight keeps exactly 1/8; runs on 2:4(2:4) at 1/4, 3 bits per value
        ("W=1:8", 0.25, 1 / 8, 3.0),
        # 1:16 keeps 1/16; runs on 1:4(2:4) at 1/8; 2/2 + 2 = 3 bits
        ("W=1:16", 0.125, 1 / 16, 3.0),
        # 2:16 keeps 1/8; runs on 2:4(2:4) at 1/4 (flat 2:4 would be 1/2); 3 bits, not 4
        ("W=2:16", 0.25, 1 / 8, 3.0),
    ],
)
def test_golden_on_highlight(plan: str, work: float, density: float, bits: float) -> None:
    # GEMM 64x64x64 (262,144 MACs), one MAC, every loop at DRAM: dense compute cycles
    # T_all = 64^3 = 262,144. The weight term runs at `work` of it; DRAM moves A's fixed slots
    # (DRAM A reads = dense reads x work) plus `bits` metadata bits per slot, i.e. metadata
    # words = A reads x bits / 8-bit words.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(ROOT / "arch_specs" / "highlight.yaml")
    prob = gemm(64, 64, 64)
    m = Mapping(
        levels=(
            LevelMapping(
                target="DRAM",
                temporal={"M": 64, "N": 64, "K": 64},
                temporal_permutation=("K", "N", "M"),
            ),
        )
    )
    rep = evaluate(prob, arch, m, plan=plan)
    dense = evaluate(prob, arch, m)
    lay, dl = rep.layers[0], dense.layers[0]
    assert dl.compute_cycles == 262_144
    assert lay.compute_cycles == 262_144 * work
    a, da = lay.accesses["DRAM"]["A"], dl.accesses["DRAM"]["A"]
    # fixed slots: the term stores and moves its hardware pattern's slots (density = work),
    # `bits` per slot; only `density` of the values are non-zero (effective MACs)
    assert a["reads"] == pytest.approx(da["reads"] * work)
    assert a["metadata_reads"] == pytest.approx(a["reads"] * bits / 8)
    assert lay.effective_macs == pytest.approx(262_144 * density)
    assert da["metadata_reads"] == 0


def test_array_density_work_ratio_per_row() -> None:
    """A term given as a (B,) density array with no explicit work: an engine that skips
    unstructured zeros does ``d`` of the dense work per row (B's dense term: 1), so
    work = Σ r_A · Σ r_B = [0.5, 0.25]. (``work_ratio``'s cache cannot hash an array: before
    the fix this raised TypeError.)"""
    import dataclasses

    import numpy as np

    from testy_model.model.arrays import arch_arrays
    from testy_model.model.operands import term_scaling
    from testy_model.spec.arch import SparsitySupport

    aa = arch_arrays(load_arch(ROOT / "arch_specs" / "stc_2of4_tasd.yaml"))
    aa = dataclasses.replace(aa, sparsity=SparsitySupport(A=OperandSparsity(unstructured=True)))
    ts = term_scaling(gemm(4, 4, 8), aa, {"A": [np.array([0.5, 0.25])]})
    assert ts.work.tolist() == [0.5, 0.25]
