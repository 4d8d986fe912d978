"""Area of a design (estimators/area.py) against hand-computed cases."""

import pytest

from testy_model.estimators.area import area_breakdown_mm2, level_area_um2
from testy_model.spec.arch import Architecture, ComputeUnit, StorageLevel, TasdUnit

# SRAM class: 1.087942 um²/bit at 45 nm (area.py's fit); int8 MAC 773.6783 um².
SMEM_UM2 = 1.087942 * 8192 * 256  # 2,281,579.7 um² (8192 x 256 b)
RF_UM2 = 4 * 1.087942 * 2048 * 8  # four 2048 x 8 b RFs: 71,299.4 um²
MAC_UM2 = 1024 * 773.6783  # 792,246.6 um²


def _arch(tasd: TasdUnit | None = None, tech: str = "45nm") -> Architecture:
    return Architecture(
        technology=tech,
        levels=(
            StorageLevel(
                name="DRAM", kind="DRAM", width=64, datawidth=8, read_energy=64, write_energy=64
            ),
            StorageLevel(
                name="SMEM", depth=8192, width=256, datawidth=8, read_energy=1, write_energy=1
            ),
            StorageLevel(
                name="RF",
                depth=2048,
                width=8,
                datawidth=8,
                instances=4,
                read_energy=0.1,
                write_energy=0.1,
            ),
        ),
        compute=ComputeUnit(instances=1024, datawidth=8),
        tasd_unit=tasd,
    )


def test_hand_computed_breakdown() -> None:
    a = area_breakdown_mm2(_arch())
    assert pytest.approx(2_281_579.7, rel=1e-7) == SMEM_UM2
    assert a["SMEM"] == pytest.approx(SMEM_UM2 / 1e6, rel=1e-12)
    assert a["RF"] == pytest.approx(RF_UM2 / 1e6, rel=1e-12)
    assert a["mac"] == pytest.approx(MAC_UM2 / 1e6, rel=1e-12)
    assert a["DRAM"] == 0.0
    assert a["tasd_unit"] == 0.0
    assert a["total"] == pytest.approx((SMEM_UM2 + RF_UM2 + MAC_UM2) / 1e6, rel=1e-12)


def test_tasd_default_is_two_percent_and_given_area_wins() -> None:
    base = (SMEM_UM2 + RF_UM2 + MAC_UM2) / 1e6
    assert area_breakdown_mm2(_arch(TasdUnit()))["tasd_unit"] == pytest.approx(0.02 * base)
    assert area_breakdown_mm2(_arch(TasdUnit(area_mm2=0.5)))["tasd_unit"] == 0.5
    assert area_breakdown_mm2(_arch(TasdUnit(area_mm2=0.0)))["tasd_unit"] == 0.0  # zero is zero


def test_node_scaling_of_a_design() -> None:
    # 7 nm: every estimated area × 0.059 (Stillmaker & Baas area table, 45 nm row)
    a = area_breakdown_mm2(_arch(tech="7nm"))
    assert a["total"] == pytest.approx(0.059 * (SMEM_UM2 + RF_UM2 + MAC_UM2) / 1e6, rel=1e-12)


def test_given_level_area_and_zero_means_zero() -> None:
    def lvl(area: float | None) -> StorageLevel:
        return StorageLevel(
            name="X",
            depth=4,
            width=8,
            datawidth=8,
            instances=3,
            area_um2=area,
            read_energy=0,
            write_energy=0,
        )

    assert level_area_um2(lvl(10.0)) == 30.0
    assert level_area_um2(lvl(0.0)) == 0.0
    # None: estimated; depth 4 of a level with kind SRAM -> SRAM class, 3 x 1.087942 x 32 bits
    assert level_area_um2(lvl(None)) == pytest.approx(3 * 1.087942 * 32)


def test_metadata_storage_adds_its_own_array() -> None:
    smem = StorageLevel(
        name="SMEM",
        depth=4096,
        width=512,
        datawidth=8,
        metadata_depth=8192,
        metadata_width=64,
        read_energy=1,
        write_energy=1,
    )
    assert level_area_um2(smem) == pytest.approx(1.087942 * (4096 * 512 + 8192 * 64))
    # a one-word register LRF with a one-row metadata register: 3.228057 um²/bit x (8 + 8)
    lrf = StorageLevel(
        name="LRF",
        kind="regfile",
        depth=1,
        width=8,
        datawidth=8,
        metadata_depth=1,
        metadata_width=8,
        read_energy=1,
        write_energy=1,
    )
    assert level_area_um2(lrf) == pytest.approx(3.228057 * 16)
