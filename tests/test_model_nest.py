"""Loop nests: conversion from/to mappings, stacking, design-point arrays, errors."""

from __future__ import annotations

import numpy as np
import pytest

from testy_model.errors import MappingError, SpecError
from testy_model.model import (
    LoopNests,
    arch_arrays,
    mapping_from_nests,
    nests_from_mapping,
    stack_nests,
)
from testy_model.spec import (
    Architecture,
    ComputeUnit,
    LevelMapping,
    Mapping,
    StorageLevel,
    gemm,
)

ARCH = Architecture(
    levels=(
        StorageLevel(name="DRAM", kind="DRAM", width=8, datawidth=8, read_energy=1, write_energy=1),
        StorageLevel(
            name="GLB",
            depth=1024,
            width=8,
            datawidth=8,
            read_energy=1,
            write_energy=1,
            bypass=("Z",),
        ),
    ),
    compute=ComputeUnit(instances=4),
)
PROB = gemm(16, 8, 32)
MAP = Mapping(
    levels=(
        LevelMapping(target="DRAM", temporal={"K": 4, "M": 2}, temporal_permutation=("K", "M")),
        LevelMapping(
            target="GLB",
            temporal={"M": 2, "N": 8, "K": 8},
            spatial={"M": 4},
            temporal_permutation=("N", "M", "K"),
        ),
    )
)


def test_nests_from_mapping_arrays() -> None:
    n = nests_from_mapping(MAP, ARCH, PROB)
    # dims in problem order M, N, K; levels DRAM, GLB; tensors A, B, Z
    np.testing.assert_array_equal(n.temporal[0], [[2, 1, 4], [2, 8, 8]])
    np.testing.assert_array_equal(n.spatial[0], [[1, 1, 1], [4, 1, 1]])
    # DRAM permutation K (innermost), M; N is missing -> appended outermost (Timeloop pads the
    # permutation at its end): K=0, M=1, N=2.
    np.testing.assert_array_equal(n.order[0, 0], [1, 2, 0])
    np.testing.assert_array_equal(n.order[0, 1], [1, 0, 2])
    # GLB bypasses Z (architecture), DRAM keeps everything.
    np.testing.assert_array_equal(n.keep[0], [[True, True, True], [True, True, False]])


def test_round_trip_and_stack() -> None:
    n = nests_from_mapping(MAP, ARCH, PROB)
    back = nests_from_mapping(mapping_from_nests(n, 0, ARCH, PROB), ARCH, PROB)
    for f in ("temporal", "spatial", "order", "keep"):
        np.testing.assert_array_equal(getattr(back, f), getattr(n, f))
    s = stack_nests([n, back, n])
    assert s.batch == 3 and len(s.select([0, 2])) == 2
    with pytest.raises(MappingError, match="at least one"):
        stack_nests([])
    other = nests_from_mapping(Mapping(levels=()), ARCH, gemm(2, 2, 2))
    odd = LoopNests(
        other.temporal[:, :1], other.spatial[:, :1], other.order[:, :1], other.keep[:, :1]
    )
    with pytest.raises(MappingError, match="differ in shape"):
        stack_nests([n, odd])


def test_mapping_errors_name_the_place() -> None:
    bad_level = Mapping(levels=(LevelMapping(target="L3"),))
    with pytest.raises(MappingError, match=r"unknown level 'L3'.*'DRAM', 'GLB'"):
        nests_from_mapping(bad_level, ARCH, PROB)
    bad_dim = Mapping(levels=(LevelMapping(target="GLB", temporal={"X": 2}),))
    with pytest.raises(MappingError, match=r"'GLB'.*unknown dimension 'X'"):
        nests_from_mapping(bad_dim, ARCH, PROB)
    with pytest.raises(MappingError, match="shape"):
        LoopNests(np.ones((1, 2, 3)), np.ones((1, 2, 2)), np.ones((1, 2, 3)), np.ones((1, 2, 3)))


def test_arch_arrays_stack_and_replace() -> None:
    big = ARCH.model_copy(update={"compute": ComputeUnit(instances=8)})
    aa = arch_arrays([ARCH, big])
    assert aa.points == 2
    np.testing.assert_array_equal(aa.mac_instances, [4, 8])
    # GLB capacity 1024 rows × 8 bits; DRAM unbounded.
    assert aa.capacity_bits[0, 1] == 8192 and np.isinf(aa.capacity_bits[0, 0])
    # One design point widened to three by replacing the clock (other fields broadcast).
    r = arch_arrays(ARCH).replace(clock_ghz=np.array([1.0, 2.0, 3.0]))
    assert r.points == 3 and r.read_energy.shape == (3, 2)
    np.testing.assert_array_equal(r.mac_instances, [4, 4, 4])
    other = Architecture(
        levels=(StorageLevel(name="X", width=8, datawidth=8, read_energy=1, write_energy=1),),
        compute=ComputeUnit(),
    )
    with pytest.raises(SpecError, match="levels"):
        arch_arrays([ARCH, other])
