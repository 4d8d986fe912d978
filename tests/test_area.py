"""Area model against hand-computed cases."""

import pytest

from testy_model.estimators.area import area_breakdown_mm2, level_area_um2, node_scale
from testy_model.spec.arch import Architecture, ComputeUnit, StorageLevel, TasdUnit


def _arch(tasd: TasdUnit | None = None, tech: str = "45nm") -> Architecture:
    return Architecture(
        technology=tech,
        levels=(
            StorageLevel(
                name="DRAM", kind="DRAM", width=64, datawidth=8, read_energy=64, write_energy=64
            ),
            # 8192 x 256 b = 2,097,152 bits (> 65,536): large SRAM, 0.99344 um^2/bit
            StorageLevel(
                name="SMEM", depth=8192, width=256, datawidth=8, read_energy=1, write_energy=1
            ),
            # 2048 x 8 b = 16,384 bits: small SRAM, 23384/16384 = 1.42725 um^2/bit, 4 instances
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
    # SMEM: 2,097,152 bits * 2604256 / 2,621,440 um^2/bit = 2,083,404.8 um^2 = 2.0834048 mm^2
    assert a["SMEM"] == pytest.approx(2.0834048, rel=1e-9)
    # RF: 4 * 23384 um^2 = 93,536 um^2 = 0.093536 mm^2
    assert a["RF"] == pytest.approx(0.093536, rel=1e-9)
    # MAC: 1024 * 332.25 um^2 = 340,224 um^2 (the ART's MAC total) = 0.340224 mm^2
    assert a["mac"] == pytest.approx(0.340224, rel=1e-9)
    assert a["DRAM"] == 0.0
    assert a["tasd_unit"] == 0.0
    assert a["total"] == pytest.approx(2.0834048 + 0.093536 + 0.340224, rel=1e-9)


def test_tasd_area_from_its_parts_and_given_area_wins() -> None:
    # TasdUnit(): 16 units of top-4 over 8-blocks, int8 (c = 3): comparators 4·9 bits · 4.256,
    # kept list 4·(8+3) bits · 5.98, index encoder 3 bits · 5.98 -> 153.216 + 263.12 + 17.94 =
    # 434.276 µm² per unit; 16 units 0.006948416 mm²
    want = 16 * (4 * 9 * 4.256 + 4 * 11 * 5.98 + 3 * 5.98) / 1e6
    assert area_breakdown_mm2(_arch(TasdUnit()))["tasd_unit"] == pytest.approx(want)
    assert area_breakdown_mm2(_arch(TasdUnit(area_mm2=0.5)))["tasd_unit"] == 0.5


def test_node_scaling_and_given_level_area() -> None:
    assert node_scale("7nm") == pytest.approx((7 / 45) ** 2)
    assert node_scale("unknown") == 1.0
    lvl = StorageLevel(
        name="X",
        depth=4,
        width=8,
        datawidth=8,
        instances=3,
        area_um2=10.0,
        read_energy=0,
        write_energy=0,
    )
    assert level_area_um2(lvl) == 30.0
