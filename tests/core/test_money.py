"""Integer fen: formatting, parsing, largest-remainder splits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canteen.core.money import format_yuan, parse_yuan, split_largest_remainder


@pytest.mark.parametrize(("fen", "text"), [(0, "0.00"), (5, "0.05"), (1250, "12.50"), (-305, "-3.05")])
def test_format_yuan(fen, text):
    assert format_yuan(fen) == text


def test_parse_yuan_refuses_fractions_of_fen():
    assert parse_yuan("12.5") == 1250
    assert parse_yuan(" 3 ") == 300
    with pytest.raises(ValueError):
        parse_yuan("1.005")
    with pytest.raises(ValueError):
        parse_yuan("abc")


def test_split_example():
    # 100 fen over three equal shares: 34 + 33 + 33, the first remainder wins the tie
    assert split_largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
    assert split_largest_remainder(-100, [1, 1, 1]) == [-34, -33, -33]
    assert split_largest_remainder(10, [0, 5, 5]) == [0, 5, 5]


@given(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=20).filter(lambda w: sum(w) > 0),
)
def test_split_always_sums_exactly(total, weights):
    parts = split_largest_remainder(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = abs(total) * weight / weight_sum
        assert abs(abs(part) - exact) < 1
