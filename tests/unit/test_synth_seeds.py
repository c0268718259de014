"""Seed lists of the scripts (``--seeds 7,101-105``): parsed strictly, written back compactly."""

from __future__ import annotations

import argparse

import pytest

from baseline.synth.seeds import parse_seed_list, seed_list_arg, seed_list_text


@pytest.mark.parametrize(("text", "seeds"), [
    ("2025-2031", list(range(2025, 2032))),
    ("2025,2026", [2025, 2026]),
    ("7,101-105", [7, 101, 102, 103, 104, 105]),
    ("", []),
    (" 5 , 8-9 ", [5, 8, 9]),
])
def test_seed_lists_name_their_seeds_in_order(text: str, seeds: list[int]) -> None:
    assert parse_seed_list(text) == seeds


@pytest.mark.parametrize("text", ["x-y", "5-3", "1,a", "3-", "-4"])
def test_a_mistyped_seed_list_is_refused_naming_the_part(text: str) -> None:
    """Before this, 'x-y' raised a bare int() error and '5-3' silently named no seed."""
    with pytest.raises(ValueError, match="seed list"):
        parse_seed_list(text)
    with pytest.raises(argparse.ArgumentTypeError, match="seed list"):
        seed_list_arg(text)


@pytest.mark.parametrize("seeds", [[7, 101, 102, 103, 104, 105], [5000, 5001], [3], [], [1, 3, 5]])
def test_written_seed_lists_read_back_the_same(seeds: list[int]) -> None:
    assert parse_seed_list(seed_list_text(seeds)) == seeds
    assert seed_list_text(list(range(5000, 5120))) == "5000-5119"
