"""45 nm energy table and Accelergy scaling, each number derived by hand in the comments."""

from __future__ import annotations

import pytest

from testy_model.spec import energy_table as et


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


def test_exact_entry_has_no_scaling() -> None:
    # 16384 x 64 SRAM, 16-bit words: 32.38 pJ per 64-b row / 4 words = 8.095 pJ
    r, w, src = et.sram_word_energy(16384, 64, 16)
    assert r == pytest.approx(8.095)
    assert w == pytest.approx(26.16 / 4)
    assert "16384x64" in src


def test_depth_and_width_scaling() -> None:
    # 8192 x 128: nearest 8192 x 256 (distance ln 2 = 0.69; 16384 x 64 is 2 ln 2 = 1.39 away)
    # row read = 124.7 x (128/256) x (8192/8192)^0.78 = 62.35 pJ; per 8-b word /16 = 3.896875
    read, _, ref = et.sram_row_energy(8192, 128)
    assert ref.name.startswith("SRAM 8192x256")
    assert read == pytest.approx(62.35)
    assert et.sram_word_energy(8192, 128, 8)[0] == pytest.approx(3.896875)
    # depth ratio 4 with the same width: 4^0.78 = exp(0.78 x 1.386294) = exp(1.081309) = 2.94854
    read4, _, _ = et.sram_row_energy(4 * 8192, 256)
    assert read4 / 124.7 == pytest.approx(4**0.78) == pytest.approx(2.94854, rel=1e-5)


def test_register_metadata_mac() -> None:
    assert et.register_word_energy(16) == pytest.approx(0.144)  # 0.009 pJ/bit x 16
    assert et.metadata_energy_per_bit(0, 0) == (0.0, 0.0)
    assert et.metadata_energy_per_bit(1, 8) == (0.009, 0.009)
    # metadata SRAM 8192 x 64 exact: 25.95 / 64 and 19.73 / 64 pJ per bit
    r, w = et.metadata_energy_per_bit(8192, 64)
    assert (r, w) == (pytest.approx(0.40546875), pytest.approx(0.30828125))
    assert et.mac_energy(8) == pytest.approx(0.315)
    assert et.mac_energy(16) == pytest.approx(1.26)  # 0.315 x (16/8)^2
