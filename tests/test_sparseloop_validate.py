"""validate_mapping's fan-out check with spatial skipping of a structured operand.

Sparseloop's STC map.yaml (M512-K1024-N256, A at 2:4 along K) puts RF spatial M16 x K32 under
an RF whose fan-out is 256 PEs (16 x 16): 512 nominal instances. The engine skips A's zeros
spatially (skipping-spatial of B and Z conditioned on A at RF), so of any aligned 32 K-positions
only the 2·32/4 = 16 non-zeros of A occupy a PE: effective 16 x 16 = 256 <= 256 (fits).
With a dense A the same mapping needs 512 > 256 instances (over-subscribed), and with K64
spatially (2:4) it needs 16 x 32 = 512 > 256.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from testy_model.errors import MappingError
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.timeloop_inputs import load_case
from testy_model.spec.validate import effective_spatial, validate_mapping
from testy_model.spec.workload import Density

STUDY = Path(__file__).resolve().parents[2] / "shared" / "sparseloop_stc_study"
STC = STUDY / "WD-0.5" / "M512-K1024-N256-IAD0.27-WD0.5" / "STC-RF2x-24-bandwidth"
ROOT = Path(__file__).resolve().parents[1]


class _Case:
    """The study's STC case with A's ``fixed-structured`` 0.5 read as the 2:4 it describes (the
    validator's rule 3 needs the pattern; the cost core prices the file's own density)."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ti = load_case(STC)
        self.arch, self.mapping, self.sparse_opts = ti.arch, ti.mapping, ti.sparse
        assert ti.problem is not None and ti.problem.density("A").kind == "fixed_structured"
        self.problem = ti.problem.model_copy(
            update={"densities": {"A": Density(kind="nm", pattern="2:4")}}
        )
        self.file_problem = ti.problem


def _case() -> _Case:
    return _Case()


def test_cost_core_fanout_check_after_spatial_skipping() -> None:
    # the cost core's own check (Timeloop's, after the spatial skipping of B and Z on A's zeros)
    # on the file's fixed-structured A: K32 needs 16 PEs per RF, 16 x 16 = 256 fits
    from testy_model.model.cost import price
    from testy_model.model.nest import nests_from_mapping

    c = _case()
    n = nests_from_mapping(c.mapping, c.arch, c.file_problem)
    cost = price(c.file_problem, c.arch, n, sparse=c.sparse_opts)
    assert bool(cost.valid_fanout[0]) and bool(cost.valid[0])
    # a dense A: no spatial skipping, 512 PEs per RF > 256
    dense = c.file_problem.model_copy(update={"densities": {}})
    cost = price(dense, c.arch, nests_from_mapping(c.mapping, c.arch, dense), sparse=c.sparse_opts)
    assert not bool(cost.valid_fanout[0])


def test_study_stc_mapping_validates_with_its_sparse_optimizations() -> None:
    c = _case()
    assert c.mapping.level("RF").spatial == {"M": 16, "K": 32}
    assert c.arch.fanout(c.arch.level_names.index("RF")) == 256
    assert effective_spatial(c.mapping, c.arch, c.problem, "RF", c.sparse_opts) == {
        "M": 16,
        "K": 16,
    }
    validate_mapping(c.mapping, c.arch, c.problem, c.sparse_opts)  # no error
    # without the optimizations the aggregated arch has no sparsity support: 512 > 256
    with pytest.raises(MappingError, match="512 instances but the fan-out below it is 256"):
        validate_mapping(c.mapping, c.arch, c.problem)


def test_study_stc_mapping_validates_on_the_shipped_stc_spec() -> None:
    # arch_specs/sparseloop_stc.yaml states 2:4 support on A with action: skip
    c = _case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(ROOT / "arch_specs" / "sparseloop_stc.yaml")
    assert str(c.problem.density("A").pattern) == "2:4"
    validate_mapping(c.mapping, arch, c.problem)


def test_oversubscribed_mappings_still_fail() -> None:
    c = _case()
    dense = c.problem.model_copy(update={"densities": {}})
    # a dense A's uncompressed SMEM tiles also overflow SMEM (262,144 + 131,072 words > 262,144)
    with pytest.raises(MappingError, match=r"SMEM.*capacity"):
        validate_mapping(c.mapping, c.arch, dense, c.sparse_opts)
    # with twice the SMEM depth the fan-out check is reached: 16 x 32 = 512 > 256
    smem = c.arch.level("SMEM").model_copy(update={"depth": 8192})
    big = c.arch.model_copy(
        update={"levels": tuple(smem if x.name == "SMEM" else x for x in c.arch.levels)}
    )
    with pytest.raises(MappingError, match=r"RF.*512 instances but the fan-out below it is 256"):
        validate_mapping(c.mapping, big, dense, c.sparse_opts)
    # K64 spatially at RF (RF temporal K halved so the factors still multiply out):
    # effective 16 x 32 = 512 > 256
    rf = c.mapping.level("RF")
    k_t = rf.temporal["K"]
    assert k_t % 2 == 0
    rf2 = rf.model_copy(
        update={"spatial": {"M": 16, "K": 64}, "temporal": {**rf.temporal, "K": k_t // 2}}
    )
    m2 = c.mapping.model_copy(
        update={"levels": tuple(rf2 if x.target == "RF" else x for x in c.mapping.levels)}
    )
    with pytest.raises(MappingError, match=r"effective \{'M': 16, 'K': 32\}.*512 instances"):
        validate_mapping(m2, c.arch, c.problem, c.sparse_opts)


def test_effective_factor_is_the_worst_case_count() -> None:
    # 1:4 on A: of 32 aligned K positions at most 8 hold a non-zero; a run of 2 can hold 1
    # (an aligned 2-run lies inside one 4-block, which holds at most 1).
    c = _case()
    p14 = c.problem.model_copy(update={"densities": {"A": Density(kind="nm", pattern="1:4")}})
    assert effective_spatial(c.mapping, c.arch, p14, "RF", c.sparse_opts)["K"] == 8
    rf = c.mapping.level("RF")
    rf2 = rf.model_copy(update={"spatial": {"M": 16, "K": 2}})
    m2 = c.mapping.model_copy(
        update={"levels": tuple(rf2 if x.target == "RF" else x for x in c.mapping.levels)}
    )
    assert effective_spatial(m2, c.arch, p14, "RF", c.sparse_opts)["K"] == 1
    assert effective_spatial(m2, c.arch, c.problem, "RF", c.sparse_opts)["K"] == 2  # 2:4
