"""Tests of NMPattern / TasdSeries: parsing, printing, ordering, hashing, containment, metadata."""

from __future__ import annotations

import pytest

from testy_model.tasd.pattern import NMPattern, TasdSeries


@pytest.mark.parametrize("text", ["2:4", "1:8", "4:4", "1:1", " 2 : 8 ", "16:32"])
def test_pattern_parse_and_print_back(text: str) -> None:
    p = NMPattern.parse(text)
    assert str(p) == text.replace(" ", "")
    assert NMPattern.parse(str(p)) == p
    assert repr(p) == f"NMPattern('{p}')"


def test_pattern_fields() -> None:
    p = NMPattern.parse("2:8")
    assert (p.n, p.m) == (2, 8)
    assert p.density == 0.25
    assert not p.is_dense
    assert NMPattern.parse("4:4").is_dense


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("3:2", "N must not exceed M"),
        ("0:4", "N must be >= 1"),
        ("2:0", "M must be >= 1"),
        ("2/4", "not of the form N:M"),
        ("2:4+", "not of the form N:M"),
        ("", "not of the form N:M"),
        ("a:b", "not of the form N:M"),
        ("-1:4", "not of the form N:M"),
    ],
)
def test_pattern_invalid_strings_quote_the_string(text: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        NMPattern.parse(text)
    msg = str(info.value)
    assert repr(text) in msg
    assert why in msg
    assert "expected 'N:M'" in msg


def test_pattern_constructor_validates() -> None:
    with pytest.raises(ValueError, match="N must not exceed M"):
        NMPattern(5, 4)
    with pytest.raises(ValueError, match="integers"):
        NMPattern(2.0, 4)  # type: ignore[arg-type]


def test_pattern_hash_and_equality() -> None:
    assert NMPattern.parse("2:4") == NMPattern(2, 4)
    assert hash(NMPattern.parse("2:4")) == hash(NMPattern(2, 4))
    # 2:4 and 4:8 have the same density but are different patterns
    assert NMPattern(2, 4) != NMPattern(4, 8)
    assert len({NMPattern(2, 4), NMPattern.parse("2:4"), NMPattern(4, 8)}) == 2


def test_pattern_ordering_by_density_then_m() -> None:
    # densities: 1:8 = .125, 1:4 = .25, 2:8 = .25 (M 8 > 4, so after 1:4), 2:4 = .5, 4:4 = 1
    shuffled = [NMPattern(4, 4), NMPattern(2, 8), NMPattern(1, 8), NMPattern(2, 4), NMPattern(1, 4)]
    assert [str(p) for p in sorted(shuffled)] == ["1:8", "1:4", "2:8", "2:4", "4:4"]
    assert NMPattern(1, 8) < NMPattern(2, 4)
    assert NMPattern(2, 4) > NMPattern(1, 4)
    assert NMPattern(2, 4) <= NMPattern(2, 4)


@pytest.mark.parametrize(
    ("text", "bits"), [("2:4", 2), ("1:8", 3), ("2:16", 4), ("1:2", 1), ("1:1", 0), ("2:5", 3)]
)
def test_metadata_bits_ceil_log2_m(text: str, bits: int) -> None:
    # ceil(log2 M): 4 -> 2, 8 -> 3, 16 -> 4, 2 -> 1, 1 -> 0 (nothing to index), 5 -> ceil(2.32) = 3
    assert NMPattern.parse(text).metadata_bits == bits


@pytest.mark.parametrize(
    ("term", "hardware", "fits"),
    [
        ("1:8", "2:4", True),  # an aligned 4-block lies in one 8-block: at most 1 <= 2
        ("4:8", "2:4", False),  # all 4 non-zeros of an 8-block may sit in one 4-block
        ("2:8", "2:4", True),  # min(2, 4) = 2 <= 2
        ("1:2", "2:4", True),  # a 4-block holds two 2-blocks: 2 * 1 = 2 <= 2
        ("2:2", "2:4", False),  # dense 2-blocks: 4 > 2
        ("2:4", "2:4", True),
        ("1:4", "1:8", False),  # two 4-blocks in an 8-block: 2 > 1
        ("1:4", "2:8", True),
        ("3:4", "4:4", True),  # anything fits dense hardware
        ("1:3", "2:4", True),  # a 4-block overlaps at most two 3-blocks: 2 <= 2
        # 8-block 8..15 overlaps 3-blocks 6-8, 9-11, 12-14, 15-17 (1+3+3+1 values): 4 > 2
        ("1:3", "2:8", False),
        ("1:3", "4:8", True),
    ],
)
def test_containment(term: str, hardware: str, fits: bool) -> None:
    assert NMPattern.parse(term).fits(hardware) is fits


def test_worst_case_per_block_misaligned() -> None:
    # 2:3 against 4-blocks: the block 4..7 overlaps 3-blocks 3-5 (2 values) and 6-8 (2 values),
    # each can hold min(2, 2) = 2, so 4 non-zeros (the whole 4-block) are possible.
    assert NMPattern(2, 3).worst_case_per_block(4) == 4
    # 1:6 against 4-blocks: block 4..7 overlaps 6-blocks 0-5 (2) and 6-11 (2): 1 + 1 = 2
    assert NMPattern(1, 6).worst_case_per_block(4) == 2


@pytest.mark.parametrize("text", ["2:8+1:8", "1:4", "dense", "2:4+1:4+1:8", "2:8+1:4"])
def test_series_parse_and_print_back(text: str) -> None:
    s = TasdSeries.parse(text)
    assert str(s) == text
    assert TasdSeries.parse(str(s)) == s
    assert hash(TasdSeries.parse(text)) == hash(s)


def test_series_structure() -> None:
    s = TasdSeries.parse("2:8+1:8")
    assert s.terms == (NMPattern(2, 8), NMPattern(1, 8))
    assert len(s) == 2
    assert list(s) == [NMPattern(2, 8), NMPattern(1, 8)]
    assert s.max_density == 0.375  # 2/8 + 1/8
    assert not s.is_dense
    dense = TasdSeries.parse(" Dense ")
    assert dense.is_dense and len(dense) == 0 and dense.max_density == 1.0
    assert TasdSeries.parse(NMPattern(1, 4)) == TasdSeries.parse("1:4")


def test_series_lossless() -> None:
    assert TasdSeries.parse("2:4+2:4").is_lossless_for_blocks()  # 2 + 2 = 4 = M
    assert not TasdSeries.parse("2:8+1:8").is_lossless_for_blocks()  # 3 < 8
    assert not TasdSeries.parse("2:4+2:8").is_lossless_for_blocks()  # mixed M
    assert TasdSeries.parse("dense").is_lossless_for_blocks()


def test_series_ordering() -> None:
    # (number of terms, max density): dense () < 1:8 < 2:4 < 1:8+1:8 < 2:8+1:8
    items = ["2:8+1:8", "2:4", "1:8+1:8", "dense", "1:8"]
    assert [str(s) for s in sorted(TasdSeries.parse(t) for t in items)] == [
        "dense",
        "1:8",
        "2:4",
        "1:8+1:8",
        "2:8+1:8",
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("2:4+", "term ''"),
        ("+1:4", "term ''"),
        ("3:2", "N must not exceed M"),
        ("2:8+0:8", "N must be >= 1"),
        ("2/4", "not of the form N:M"),
    ],
)
def test_series_invalid_strings_quote_the_string(text: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        TasdSeries.parse(text)
    msg = str(info.value)
    assert f"invalid TASD series {text!r}" in msg
    assert why in msg
    assert "2:8+1:8" in msg  # says what is expected


def test_series_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="not a string"):
        TasdSeries.parse(24)  # type: ignore[arg-type]
