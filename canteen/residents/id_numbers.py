"""Identity document numbers: the GB 11643-1999 citizen ID number (also used by Hong Kong, Macao
and Taiwan residence permits) and passports.

GB 11643: 6-digit region code, 8-digit birth date, 3-digit sequence (odd = male, even = female)
and a check character by ISO 7064 MOD 11-2 (weights 2^(17-i) mod 11; "10X98765432").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

RESIDENT_ID_CARD = "resident_id_card"
HMT_RESIDENCE_PERMIT = "hmt_residence_permit"
PASSPORT = "passport"
DOC_TYPES = (RESIDENT_ID_CARD, HMT_RESIDENCE_PERMIT, PASSPORT)

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
# first two digits of the region code: the provinces, autonomous regions and municipalities
# of GB/T 2260 (71 Taiwan, 81 Hong Kong, 82 Macao)
PROVINCE_CODES = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    }
)
# residence permits for Hong Kong, Macao and Taiwan residents use 810000, 820000, 830000
HMT_REGION_CODES = frozenset({"810000", "820000", "830000"})
_SHAPE = re.compile(r"^\d{17}[\dX]$")
_PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")


class InvalidIdNumber(ValueError):
    """Why a number is not a valid identity document number (English; the API adds the field)."""


@dataclass(frozen=True)
class Identity:
    number: str  # normalised: upper case, no spaces
    birth_date: date | None
    sex: str | None  # "male" | "female"


def check_character(first_17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first_17, _WEIGHTS, strict=True)) % 11]


def normalise(number: str) -> str:
    return re.sub(r"\s+", "", number or "").upper()


def parse(doc_type: str, number: str) -> Identity:
    """Validate `number` for `doc_type` and derive birth date and sex where the number holds them.

    Raises InvalidIdNumber naming the first problem found.
    """
    number = normalise(number)
    if doc_type == PASSPORT:
        if not _PASSPORT.match(number):
            raise InvalidIdNumber("A passport number is 5–20 letters and digits.")
        return Identity(number, None, None)
    if doc_type not in (RESIDENT_ID_CARD, HMT_RESIDENCE_PERMIT):
        raise InvalidIdNumber(f"Unknown document type {doc_type!r}.")
    if not _SHAPE.match(number):
        raise InvalidIdNumber("An ID number is 18 characters: 17 digits and a digit or X.")
    if doc_type == HMT_RESIDENCE_PERMIT:
        if number[:6] not in HMT_REGION_CODES:
            raise InvalidIdNumber(
                "A Hong Kong, Macao or Taiwan residence permit number starts with 810000, 820000 or 830000."
            )
    elif number[:2] not in PROVINCE_CODES:
        raise InvalidIdNumber(f"{number[:2]} is not a province code.")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber("The birth date inside the ID number is not a real date.") from None
    if birth.year < 1890:
        raise InvalidIdNumber("The birth date inside the ID number is not plausible.")
    if check_character(number[:17]) != number[17]:
        raise InvalidIdNumber("The check digit is wrong: the number has a typing error.")
    return Identity(number, birth, "male" if int(number[16]) % 2 else "female")


def age_on(birth_date: date, day: date) -> int:
    """Completed years on `day`, by calendar comparison (born 29 February: a year older on
    1 March in common years)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def make_number(region: str, birth: date, sequence: int) -> str:
    """A well-formed ID number (demo data and tests): region, birth date, 3-digit sequence, check."""
    first_17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first_17 + check_character(first_17)
