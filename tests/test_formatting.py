"""The formatters every front end shares: sizes, parameter counts, counted nouns."""
from __future__ import annotations

import pytest

from common.task import format_bytes, format_parameters, plural


@pytest.mark.parametrize("n, text", [
    (None, "?"), (-1, "?"), (float("nan"), "?"), (float("inf"), "?"),
    (0, "0 B"), (1, "1 B"), (999, "999 B"), (999.6, "1.0 KB"), (1234, "1.2 KB"),
    (999_949, "999.9 KB"), (999_950, "1.0 MB"), (103_200_000, "103.2 MB"), (4.4e9, "4.4 GB"),
])
def test_sizes_small_unknown_and_at_unit_edges(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize("n, text", [
    (None, "?"), (0, "?"), (-5, "?"), (float("nan"), "?"), (12, "12"), (12_345, "12.3 K"),
    (1_705_216, "1.71 M"), (134_515_008, "135 M"), (999_600_000, "1 B"), (1_235_814_400, "1.24 B"),
    (8_030_261_248, "8.03 B"), (70_553_706_496, "70.6 B"), (405_000_000_000, "405 B"),
])
def test_parameter_counts_read_the_same_everywhere(n, text):
    assert format_parameters(n) == text


def test_counted_nouns():
    assert [plural(n, "model") for n in (0, 1, 2)] == ["0 models", "1 model", "2 models"]
    assert plural(3, "entry", "entries") == "3 entries"
