"""The published per-action energies and areas the built-in estimators are fitted on, each cited.

Paths are relative to the shared data folder next to the project (``../shared``):

- ``reference.md``: the project's table of Accelergy reference values (45 nm exercises, 65 nm
  Eyeriss-like, 40 nm Aladdin);
- ``timeloop_v3_cases/<case>/ERT.yaml`` / ``ART.yaml``: the ERTs/ARTs Timeloop v3.0.3 was run with;
- ``sparseloop_stc_study/WD-*/*/<design>/ERT.yaml`` / ``ART.yaml``: the Sparseloop study's
  Accelergy outputs (identical in every layer and weight-density folder of a design).

Units: energies are pJ per action, where one storage action reads or writes one row of
``width`` bits (Accelergy's per-access energy; compound data + metadata components list the
metadata storage as its own point) and one MAC action is one multiply-accumulate; areas are µm²
per instance. ``parts`` lists the (depth, width) arrays a value covers: an ART entry of a compound
component (data + metadata storage) is one point with two parts, fitted as their sum.

Where several files give the same value for the same geometry, the point appears once (its
``source`` names the first file). Points with ``fitted=False`` are *held out*: published values the
fit does not use, reported with their error in the README (the Accelergy ERTs of the
Timeloop exercises that are not in ``reference.md``, repository
``Accelergy-Project/timeloop-accelergy-exercises``, ``workspace/example_designs/example_designs/
<design>/ref_outputs/default_problem/timeloop-mapper.ERT_summary.yaml``, commit 67b75f24).
Left out altogether: the v3 cases a03/a05/a07 SMEM 8192×256 at 142.857 pJ (a reshaped copy of
the study's 4096×512 SMEM with the energy halved by hand, see ``timeloop_v3_cases/README.md``)
and the exercises' register write energy 0.0 (a log-space fit cannot hold a zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Component = Literal["DRAM", "SRAM", "RF", "register", "MAC_int", "MAC_fp"]
Quantity = Literal["read", "write", "area"]


@dataclass(frozen=True)
class RefPoint:
    """One published value: ``component`` class, ``quantity``, ``value`` (pJ or µm²) at
    ``node_nm``, covering the ``parts`` (depth, width-bits) arrays (a MAC: ((1, width),))."""

    component: Component
    quantity: Quantity
    value: float
    node_nm: float
    parts: tuple[tuple[int, int], ...]
    source: str
    fitted: bool = True

    @property
    def label(self) -> str:
        """``depth×width`` of each part joined by ``+`` (a MAC: ``int8`` / ``fp32``)."""
        if self.component.startswith("MAC"):
            return f"{self.component[4:]}{self.parts[0][1]}"
        return "+".join(f"{d}×{w}" for d, w in self.parts)


_STC = "sparseloop_stc_study/WD-*/*/STC-RF2x-24-bandwidth"
_DSTC = "sparseloop_stc_study/WD-*/*/DSTC-RF2x-24-bandwidth"
_TC = "sparseloop_stc_study/WD-*/*/TC-RF2x-24-bandwidth"
_V3 = "timeloop_v3_cases"
_EX = "timeloop-accelergy-exercises (held out)"
_B01 = f"{_V3}/b01_sws_C16M64R3S3P28Q28"
_B07 = f"{_V3}/b07_simba_C64M128R3S3P14Q14"
_B05 = f"{_V3}/b05_eyeriss_C256M384R3S3P13Q13"
_C01 = f"{_V3}/c01_dotprod_K48_CP_skip_Ad0.25"
_C03 = f"{_V3}/c03_spmspm_M8K16N12_Ad0.2_Bd0.3"
_C05 = f"{_V3}/c05_conv1d_M32S5Q16_RLE_Wd0.3"
_C07 = f"{_V3}/c07_eyeriss_gating_C128M192P13Q13N2_I0.45W0.35O0.5"


def _rw(
    comp: Component,
    depth: int,
    width: int,
    read: float,
    write: float | None,
    node: float,
    source: str,
    fitted: bool = True,
) -> tuple[RefPoint, ...]:
    """A read point and (when given) a write point of one array."""
    parts = ((depth, width),)
    out = [RefPoint(comp, "read", read, node, parts, source, fitted)]
    if write is not None:
        out.append(RefPoint(comp, "write", write, node, parts, source, fitted))
    return tuple(out)


def _area(
    comp: Component, parts: tuple[tuple[int, int], ...], value: float, node: float, source: str
) -> RefPoint:
    return RefPoint(comp, "area", value, node, parts, source)


ENERGY_POINTS: tuple[RefPoint, ...] = (
    # --- SRAM class (CACTI: smartbuffer_SRAM, SRAM, SRAM_MD, smartbuffer_metadata,
    # regfile_metadata)
    *_rw("SRAM", 16384, 64, 32.38, 26.16, 45, "reference.md: SRAM 16384×64 (128 KB, 32 banks)"),
    *_rw("SRAM", 2048, 256, 51.87, 66.31, 45, "reference.md: SRAM 2048×256 (64 KB, 4 banks)"),
    *_rw("SRAM", 8192, 256, 124.7, 118.1, 45, "reference.md: SRAM 8192×256 (256 KB)"),
    *_rw("SRAM", 8192, 64, 25.95, 19.73, 45, "reference.md: metadata SRAM 8192×64"),
    *_rw("SRAM", 192, 16, 0.68, 1.58, 45, "reference.md: scratchpad 192×16"),
    *_rw("SRAM", 16384, 64, 18.18, 14.137929, 65, "reference.md: 65 nm Eyeriss-like global buffer"),
    *_rw("SRAM", 4096, 512, 285.71464, 316.96744, 45, f"{_STC}/ERT.yaml: SMEM"),
    *_rw("SRAM", 2048, 8, 1.65889, 1.67589, 45, f"{_STC}/ERT.yaml: RF"),
    *_rw("SRAM", 128, 16, 0.95642, 0.95642, 45, f"{_DSTC}/ERT.yaml: RF metadata"),
    *_rw("SRAM", 64, 16, 0.49218, 0.49218, 45, f"{_DSTC}/ERT.yaml: LRF"),
    *_rw("SRAM", 32, 4, 0.18108, 0.18108, 45, f"{_DSTC}/ERT.yaml: LRF metadata"),
    *_rw("SRAM", 4096, 512, 536.05005, 599.806, 45, f"{_TC}/ERT.yaml: SMEM"),
    *_rw("SRAM", 2048, 8, 3.1647, 3.20183, 45, f"{_TC}/ERT.yaml: RF"),
    *_rw("SRAM", 16384, 64, 26.1, 28.4, 45, f"{_B01}/ERT.yaml: shared_glb"),
    *_rw("SRAM", 192, 16, 0.95, 1.07, 45, f"{_B01}/ERT.yaml: pe_spad"),
    *_rw("SRAM", 2048, 256, 63.2, 70.5, 45, f"{_B07}/ERT.yaml: GlobalBuffer"),
    *_rw("SRAM", 16384, 64, 37.4, 41.8, 65, f"{_B05}/ERT.yaml: shared_glb"),
    *_rw("SRAM", 512, 32, 4.6232, 5.1177, 45, f"{_C03}/ERT.yaml: BackingStorage"),
    *_rw("SRAM", 256, 4, 0.3121, 0.3604, 45, f"{_C03}/ERT.yaml: BackingStorage metadata"),
    *_rw("SRAM", 128, 4, 0.3121, 0.3604, 45, f"{_C05}/ERT.yaml: BackingStorage metadata"),
    *_rw("SRAM", 64, 8, 0.4215, 0.4817, 45, f"{_C01}/ERT.yaml: Buffer"),
    *_rw("SRAM", 32, 4, 0.1178, 0.1342, 45, f"{_C01}/ERT.yaml: Buffer metadata"),
    *_rw("SRAM", 64, 4, 0.1178, 0.1342, 45, f"{_C03}/ERT.yaml: Buffer metadata"),
    *_rw("SRAM", 128, 8, 0.5521, 0.6313, 45, f"{_C05}/ERT.yaml: Buffer"),
    *_rw("SRAM", 12800, 64, 30.2, 33.4, 45, f"{_C07}/ERT.yaml: shared_glb"),
    *_rw("SRAM", 1, 8, 0.01674, 0.024774, 45, f"{_EX}: sparse_tensor_core_like LRF", False),
    # --- RF class (Accelergy smartbuffer_RF)
    *_rw("RF", 128, 24, 3.09, 2.88, 45, "reference.md: register file 128×24"),
    *_rw(
        "RF", 12, 16, 0.202442, 0.176713, 65, "reference.md: 65 nm PE register files (ifmap_spad)"
    ),
    *_rw(
        "RF",
        192,
        16,
        1.976602,
        1.881657,
        65,
        "reference.md: 65 nm PE register files (weights_spad)",
    ),
    *_rw("RF", 8192, 64, 14.1, 15.6, 45, f"{_B07}/ERT.yaml: PEInputBuffer"),
    *_rw("RF", 4096, 64, 9.8, 10.9, 45, f"{_B07}/ERT.yaml: PEWeightBuffer"),
    *_rw("RF", 128, 24, 0.93, 1.04, 45, f"{_B07}/ERT.yaml: PEAccuBuffer"),
    *_rw("RF", 1, 8, 0.05, 0.05, 45, f"{_B07}/ERT.yaml: PEWeightRegs"),
    *_rw("RF", 12, 16, 0.77, 0.83, 65, f"{_B05}/ERT.yaml: ifmap_spad"),
    *_rw("RF", 192, 16, 2.13, 2.29, 65, f"{_B05}/ERT.yaml: weights_spad"),
    *_rw("RF", 16, 16, 0.92, 1.01, 65, f"{_B05}/ERT.yaml: psum_spad"),
    *_rw("RF", 12, 17, 0.37, 0.40, 45, f"{_C07}/ERT.yaml: ifmap_spad"),
    *_rw("RF", 224, 16, 1.58, 1.71, 45, f"{_C07}/ERT.yaml: weights_spad"),
    *_rw("RF", 24, 16, 0.49, 0.54, 45, f"{_C07}/ERT.yaml: psum_spad"),
    *_rw("RF", 8192, 64, 242.046772, 241.470772, 45, f"{_EX}: simba_like PEInputBuffer", False),
    *_rw("RF", 4096, 64, 121.333633, 120.757633, 45, f"{_EX}: simba_like PEWeightBuffer", False),
    *_rw("RF", 1, 512, 0.257632, 0.077872, 45, f"{_EX}: simba_like PEWeightRegs", False),
    *_rw("RF", 2048, 8, 15.205133, 15.133133, 45, f"{_EX}: sparse_tensor_core_like RF", False),
    *_rw("RF", 16, 16, 0.2513, 0.2191, 65, f"{_EX}: eyeriss_like psum_spad", False),
    # --- register class (aladdin_register; depth-1 stores not declared smartbuffers)
    *_rw("register", 1, 16, 0.144, None, 45, "reference.md: register, 16 b (0.009 pJ/bit)"),
    *_rw("register", 1, 16, 0.06, 0.06, 45, f"{_B01}/ERT.yaml: weight_reg"),
    *_rw("register", 1, 8, 0.072, 0.072, 45, f"{_STC}/ERT.yaml: LRF"),
    *_rw("register", 1, 8, 0.02435, 0.02435, 45, f"{_TC}/ERT.yaml: LRF"),
    # --- MACs (width = multiplier width)
    *_rw("MAC_int", 1, 8, 0.315, None, 45, "reference.md: int8 MAC (8×8 multiply, 16-b add)"),
    *_rw("MAC_int", 1, 8, 0.208, None, 65, "reference.md: 65 nm Eyeriss-like MAC"),
    *_rw(
        "MAC_int",
        1,
        32,
        12.68 + 0.21,
        None,
        40,
        "reference.md: 40 nm Aladdin int32 multiplier + 32-b adder",
    ),
    *_rw("MAC_int", 1, 8, 0.5608, None, 45, f"{_STC}/ERT.yaml: MAC mac_random"),
    *_rw("MAC_int", 1, 8, 0.44688, None, 45, f"{_TC}/ERT.yaml: MAC mac_random"),
    *_rw("MAC_int", 1, 8, 0.56, None, 45, f"{_B07}/ERT.yaml: mac"),
    *_rw("MAC_int", 1, 8, 0.845, None, 45, f"{_B01}/ERT.yaml: mac"),
    *_rw("MAC_int", 1, 8, 1.85, None, 65, f"{_B05}/ERT.yaml: mac"),
    *_rw(
        "MAC_fp",
        1,
        32,
        35.3 + 16.7,
        None,
        40,
        "reference.md: 40 nm Aladdin fp32 multiplier + fp32 adder",
    ),
)

AREA_POINTS: tuple[RefPoint, ...] = (
    _area("SRAM", ((4096, 512), (8192, 64)), 2604256.0, 45, f"{_STC}/ART.yaml: SMEM"),
    _area("SRAM", ((4096, 512),), 3617260.0, 45, f"{_TC}/ART.yaml: SMEM"),
    _area("SRAM", ((2048, 8),), 23384.0, 45, f"{_STC}/ART.yaml: RF"),
    _area("SRAM", ((2048, 8),), 48735.6, 45, f"{_TC}/ART.yaml: RF"),
    _area("SRAM", ((2048, 8), (128, 16)), 25439.68, 45, f"{_DSTC}/ART.yaml: RF"),
    _area("SRAM", ((64, 16), (32, 4)), 1309.6, 45, f"{_DSTC}/ART.yaml: LRF"),
    _area("SRAM", ((16384, 64),), 1012000.0, 45, f"{_B01}/ART.yaml: shared_glb"),
    _area("SRAM", ((192, 16),), 3120.0, 45, f"{_B01}/ART.yaml: pe_spad"),
    _area("SRAM", ((2048, 256),), 1530000.0, 45, f"{_B07}/ART.yaml: GlobalBuffer"),
    _area("SRAM", ((16384, 64),), 1850000.0, 65, f"{_B05}/ART.yaml: shared_glb"),
    _area("SRAM", ((64, 8), (32, 4)), 265.1, 45, f"{_C01}/ART.yaml: Buffer"),
    _area("SRAM", ((64, 8), (64, 4)), 265.1, 45, f"{_C03}/ART.yaml: Buffer"),
    _area("SRAM", ((128, 8), (64, 4)), 402.6, 45, f"{_C05}/ART.yaml: Buffer"),
    _area("SRAM", ((512, 32), (256, 4)), 18213.7, 45, f"{_C03}/ART.yaml: BackingStorage"),
    _area("SRAM", ((512, 32), (128, 4)), 18213.7, 45, f"{_C05}/ART.yaml: BackingStorage"),
    _area("SRAM", ((12800, 64),), 1620000.0, 45, f"{_C07}/ART.yaml: shared_glb"),
    _area("RF", ((8192, 64),), 420000.0, 45, f"{_B07}/ART.yaml: PEInputBuffer"),
    _area("RF", ((4096, 64),), 218000.0, 45, f"{_B07}/ART.yaml: PEWeightBuffer"),
    _area("RF", ((128, 24),), 3900.0, 45, f"{_B07}/ART.yaml: PEAccuBuffer"),
    _area("RF", ((1, 8),), 60.0, 45, f"{_B07}/ART.yaml: PEWeightRegs"),
    _area("RF", ((12, 16),), 410.0, 65, f"{_B05}/ART.yaml: ifmap_spad"),
    _area("RF", ((192, 16),), 5100.0, 65, f"{_B05}/ART.yaml: weights_spad"),
    _area("RF", ((16, 16),), 690.0, 65, f"{_B05}/ART.yaml: psum_spad"),
    _area("RF", ((12, 17),), 450.0, 45, f"{_C07}/ART.yaml: ifmap_spad"),
    _area("RF", ((224, 16),), 5300.0, 45, f"{_C07}/ART.yaml: weights_spad"),
    _area("RF", ((24, 16),), 820.0, 45, f"{_C07}/ART.yaml: psum_spad"),
    _area("register", ((1, 16),), 72.0, 45, f"{_B01}/ART.yaml: weight_reg"),
    _area("register", ((1, 8), (1, 8)), 95.68, 45, f"{_STC}/ART.yaml: LRF"),
    _area("register", ((1, 8), (1, 8)), 20.0, 45, f"{_TC}/ART.yaml: LRF"),
    _area("MAC_int", ((1, 8),), 332.25, 45, f"{_STC}/ART.yaml: MAC"),
    _area("MAC_int", ((1, 8),), 687.74999, 45, f"{_TC}/ART.yaml: MAC"),
    _area("MAC_int", ((1, 8),), 1120.0, 45, f"{_B01}/ART.yaml: mac"),
    _area("MAC_int", ((1, 8),), 2100.0, 65, f"{_B05}/ART.yaml: mac"),
)


def points(component: Component, quantity: Quantity, fitted: bool | None = True) -> list[RefPoint]:
    """The reference points of one component class and quantity (``fitted=None``: all)."""
    pool = AREA_POINTS if quantity == "area" else ENERGY_POINTS
    return [
        p
        for p in pool
        if p.component == component
        and p.quantity == quantity
        and (fitted is None or p.fitted == fitted)
    ]
