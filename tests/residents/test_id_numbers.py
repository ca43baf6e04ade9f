"""GB 11643 ID numbers: check digit, real dates, real provinces; passports by format; ages."""

from datetime import date

import pytest

from canteen.residents import id_numbers
from canteen.residents.id_numbers import InvalidIdNumber, age_on, check_character, make_number, parse

# the standard's own worked example
STANDARD_EXAMPLE = "11010519491231002X"


def test_standard_example_and_derived_fields():
    identity = parse("resident_id_card", STANDARD_EXAMPLE.lower())
    assert identity.number == STANDARD_EXAMPLE
    assert identity.birth_date == date(1949, 12, 31)
    assert identity.sex == "female"  # 17th digit 2 is even
    odd = make_number("630102", date(1950, 3, 15), 1)
    assert parse("resident_id_card", odd).sex == "male"


def test_check_digit_is_iso_7064_mod_11_2():
    # recompute the example's check character by hand: sum(a_i * W_i) mod 11 -> "10X98765432"
    digits = "11010519491231002"
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    assert "10X98765432"[sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11] == "X"
    assert check_character(digits) == "X"


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("110105194912310021", "check digit"),  # wrong check digit
        ("110105194902300023", "not a real date"),  # 30 February
        ("990105194912310021", "province"),  # no province 99
        ("11010519491231002", "18 characters"),
        ("1101051949123100ZX", "18 characters"),
    ],
)
def test_invalid_numbers(number, problem):
    if problem in ("not a real date", "province"):
        number = number[:17] + check_character(number[:17])  # a correct check digit, to test the rule itself
    with pytest.raises(InvalidIdNumber, match=problem):
        parse("resident_id_card", number)


def test_residence_permits_need_hmt_region():
    permit = make_number("810000", date(1950, 5, 1), 11)
    assert parse("hmt_residence_permit", permit).birth_date == date(1950, 5, 1)
    with pytest.raises(InvalidIdNumber, match="810000"):
        parse("hmt_residence_permit", make_number("630102", date(1950, 5, 1), 11))


def test_passport_format_only():
    assert parse("passport", " e1234 5678 ").number == "E12345678"
    with pytest.raises(InvalidIdNumber):
        parse("passport", "!!")
    assert parse("passport", "E12345678").birth_date is None


def test_age_by_calendar_comparison():
    leap = date(1944, 2, 29)
    assert age_on(leap, date(2024, 2, 28)) == 79
    assert age_on(leap, date(2024, 2, 29)) == 80  # the birthday itself counts
    assert age_on(date(1946, 11, 23), date(2026, 11, 22)) == 79
    assert age_on(date(1946, 11, 23), date(2026, 11, 23)) == 80


def test_born_29_february_reaches_age_on_1_march_in_common_years():
    leap = date(1944, 2, 29)
    assert age_on(leap, date(2025, 2, 28)) == 80
    assert age_on(leap, date(2025, 3, 1)) == 81


def test_make_number_round_trips():
    number = make_number("630102", date(1955, 7, 9), 123)
    assert parse(id_numbers.RESIDENT_ID_CARD, number).birth_date == date(1955, 7, 9)
