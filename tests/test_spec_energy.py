"""The loader's default energies from the built-in estimators, each number derived by hand."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from testy_model.errors import SpecError
from testy_model.estimators import energy as et
from testy_model.model import energy as en
from testy_model.spec.arch import Architecture
from testy_model.spec.arch_loader import load_arch

SHARED = Path(__file__).resolve().parents[2] / "shared"
EX = SHARED / "timeloop_examples"


def _quiet_load(path: Path, overrides: list[str] | None = None) -> Architecture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_arch(path, overrides=overrides)


def test_dram_per_word() -> None:
    # LPDDR4: 512 pJ per 64-bit access = 8 pJ/bit; a 16-bit word costs 128 pJ (reference.md)
    e, src = et.dram_word_energy("LPDDR4", 16)
    assert e == pytest.approx(128.0)
    assert "DRAM LPDDR4" in src
    # HBM2 3.9 pJ/bit x 8 b = 31.2 pJ
    assert et.dram_word_energy("HBM2", 8)[0] == pytest.approx(31.2)
    # unknown type falls back to LPDDR4 and says so
    e, src = et.dram_word_energy("XDR", 8)
    assert e == pytest.approx(64.0) and "XDR->LPDDR4" in src


# -- the loader's use of the estimators (formulas: estimators/energy.py, tests/test_estimators.py)

F45 = 1.018 - 0.3107 + 0.1539  # Stillmaker & Baas F_45(1.0 V)
F65 = 3.755 * 1.1**2 - 4.398 * 1.1 + 1.975  # F_65(1.1 V); S_E(65 nm) = F65 / F45 = 1.951637


def test_estimator_class() -> None:
    assert et.estimator_class("DRAM", "", None) == "DRAM"
    assert et.estimator_class("storage", "aladdin_register", 1) == "register"
    assert et.estimator_class("storage", "smartbuffer_RF", 1) == "RF"
    assert et.estimator_class("smartbuffer_RF", "", 192) == "RF"
    assert et.estimator_class("storage", "smartbuffer_metadata", 1) == "SRAM"
    assert et.estimator_class("regfile", "", 1) == "register"
    assert et.estimator_class("regfile", "", 2048) == "SRAM"
    assert et.estimator_class("smartbuffer_SRAM", "", 192) == "SRAM"
    assert et.mac_class("intmac", "") == "MAC_int" and et.mac_class("fpmac", "") == "MAC_fp"


def test_loader_uses_class_and_node() -> None:
    # eyeriss_like: weights_spad is a 65 nm smartbuffer_RF 192x16 with 8-b words (2 per row):
    # RF read 0.02302453 · 192^0.5192339 · 16^0.4526112 pJ per row at 45 nm, × S_E(65 nm),
    # / 2 words; MAC int8 0.4506375 pJ × S_E(65 nm) = 0.879481 pJ
    arch = _quiet_load(EX / "eyeriss_like" / "arch.yaml")
    row = 0.02302453 * 192**0.5192339 * 16**0.4526112 * F65 / F45
    spad = arch.level("weights_spad")
    assert spad.read_energy == pytest.approx(row / 2, rel=1e-9)
    assert spad.estimator == "RF" and spad.energy_source == et.TABLE_SOURCE + ", RF"
    assert arch.compute.mac_energy == pytest.approx(0.4506375 * F65 / F45, rel=1e-9)
    assert arch.compute.mac_energy == pytest.approx(0.879481, rel=1e-6)
    # an override of the depth re-derives with the same (RF) rule: 384 rows -> × 2^0.5192339
    arch = _quiet_load(EX / "eyeriss_like" / "arch.yaml", ["levels.weights_spad.depth=384"])
    assert arch.level("weights_spad").read_energy == pytest.approx(row / 2 * 2**0.5192339)


def test_mac_energy_uses_the_multiplier_width(tmp_path: Path) -> None:
    # datawidth 16 but an 8-bit multiplier (the v3 b01 case): an int8 MAC, 0.4506375 pJ
    arch = _quiet_load(SHARED / "timeloop_v3_cases" / "b01_sws_C16M64R3S3P28Q28" / "arch.yaml")
    assert arch.compute.datawidth == 16 and arch.compute.multiplier_width == 8
    assert arch.compute.mac_energy == pytest.approx(0.4506375)


@pytest.mark.parametrize("junk", ["fast", "5nm", "250 nm"])
def test_bad_technology_names_file_line_and_key(tmp_path: Path, junk: str) -> None:
    src = (EX / "simple_weight_stationary" / "arch.yaml").read_text()
    bad = tmp_path / "arch.yaml"
    bad.write_text(src.replace('technology: "45nm"', f'technology: "{junk}"'))
    assert bad.read_text() != src
    with pytest.raises(SpecError) as err:
        _quiet_load(bad)
    msg = str(err.value)
    assert str(bad) in msg and "technology" in msg
    assert "expected" in msg


def test_whole_vector_words() -> None:
    # 65 words in 32-word rows: 32 · ceil(65/32) = 96; 64 words: exactly 2 rows = 64
    got = en.whole_vector_words(np.array([65.0, 64.0, 0.0, 1.0]), np.array(32.0))
    assert got.tolist() == [96.0, 64.0, 0.0, 32.0]
    # float noise does not add a row; block 1 leaves fractional expected counts unchanged
    assert en.whole_vector_words(np.array(64.0 + 1e-12), np.array(8.0)) == 64.0
    assert en.whole_vector_words(np.array(10.3), np.array(1.0)) == pytest.approx(10.3)
