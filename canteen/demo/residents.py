"""Demo residents, generated: fictitious elderly people for the demo city, not real persons.

Names are put together from common surnames and given names; ID numbers are made up — the
region code of the resident's district, a birth date between 1930 and 1965 (60 or older on the
registration date), a random sequence number and a valid GB 11643 check digit — so they pass
validation but were not taken from anyone. Phones are all in the block 170 0000 xxxx, meal cards
are "XN" + 8 digits. The same seed and date always give the same residents.

This module only decides who the residents are (`ResidentSeed`); `canteen.demo.service`
registers them through the residents service.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from canteen.demo import data
from canteen.residents.id_numbers import make_number

MIN_AGE = 60
EARLIEST_BIRTH = date(1930, 1, 1)
LATEST_BIRTH = date(1965, 12, 31)
CATEGORY_YEARS_START = date(2025, 1, 1)

# shares of the residents (the rest of each profile is left empty)
SHARE_WITH_CATEGORIES = 0.30
SHARE_WITH_DIET = 0.40
SHARE_SUSPENDED = 0.03
SHARE_DECEASED = 0.01
SHARE_WITH_CONSENT = 0.90
SHARE_DELIVERY = 0.20
SHARE_WITH_CARD = 0.93
SHARE_WITH_PHONE = 0.85
SHARE_WITH_EMERGENCY_CONTACT = 0.70
SHARE_FEMALE = 0.55
# chance that a resident comes from a Hui family: where the home canteen cooks halal, in the
# Hui and Tu autonomous county, elsewhere
HUI_WHERE_HALAL = 0.70
HUI_IN_DATONG = 0.35
HUI_ELSEWHERE = 0.04
DATONG = "630121"

CATEGORY_WEIGHTS = (
    ("subsistence", 30),
    ("living_alone", 25),
    ("low_income", 15),
    ("disabled", 15),
    ("extreme_poverty", 8),
    ("special_care", 7),
)


@dataclass(frozen=True)
class CategorySeed:
    category: str
    valid_from: date
    valid_to: date | None
    evidence: str


@dataclass(frozen=True)
class StatusSeed:
    status: str  # suspended | deceased
    effective_on: date
    reason: str


@dataclass
class ResidentSeed:
    """One generated resident, by the codes and names of `canteen.demo.data`."""

    name: str
    sex: str
    id_number: str
    district_code: str
    community: str
    home_canteen_code: str
    address: str
    registered_on: date
    hui: bool = False
    phone: str | None = None
    card_no: str | None = None
    delivery_registered: bool = False
    emergency_contact: str | None = None
    restrictions: tuple[str, ...] = ()
    allergens: tuple[str, ...] = ()
    diet_notes: str = ""
    consent_method: str | None = None
    categories: list[CategorySeed] = field(default_factory=list)
    status_change: StatusSeed | None = None

    @property
    def birth_date(self) -> date:
        return date(int(self.id_number[6:10]), int(self.id_number[10:12]), int(self.id_number[12:14]))

    @property
    def diet(self) -> dict:
        return {"restrictions": list(self.restrictions), "allergens": list(self.allergens), "notes": self.diet_notes}

    @property
    def consent(self) -> dict | None:
        if self.consent_method is None:
            return None
        return {"method": self.consent_method, "given_on": self.registered_on}


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _chosen(rng: random.Random, count: int, share: float) -> set[int]:
    """A random set of round(count × share) positions, at least one when the share is above zero."""
    size = min(count, max(1, round(count * share))) if share > 0 and count else 0
    return set(rng.sample(range(count), size))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _day_between(rng: random.Random, first: date, last: date) -> date:
    if last <= first:
        return first
    return first + timedelta(days=rng.randint(0, (last - first).days))


def _homes() -> dict[str, list[tuple[str, str]]]:
    """(community, home canteen code) per district: the community's own canteen, or else one of
    the district's canteens for communities without one."""
    canteens_by_district: dict[str, list[data.CanteenSeed]] = {}
    for seed in data.CANTEENS:
        canteens_by_district.setdefault(seed.district_code, []).append(seed)
    homes: dict[str, list[tuple[str, str]]] = {}
    for district in data.DISTRICTS:
        canteens = canteens_by_district[district.code]
        by_community = {c.community: c.code for c in canteens}
        homes[district.code] = [
            (community, by_community.get(community) or canteens[i % len(canteens)].code)
            for i, community in enumerate(district.communities)
        ]
    return homes


def generate_residents(count: int, *, today: date, seed: int = 2026) -> list[ResidentSeed]:
    """`count` fictitious residents spread over the districts by `data.RESIDENT_SHARES`.

    Registered within the last 900 days (by `today`), all 60 or older on that day; about 30 %
    hold eligibility categories from 2025 on, 40 % a diet profile (Hui residents eat halal), 3 %
    are suspended and 1 % deceased (at least one of each), 90 % have consent on file, 20 % are
    registered for delivery and most hold a meal card. Deterministic for a given seed and date.
    """
    rng = random.Random(seed)
    halal_canteens = {c.code for c in data.CANTEENS if c.halal}
    homes = _homes()
    districts = list(data.RESIDENT_SHARES)
    shares = [data.RESIDENT_SHARES[code] for code in districts]
    with_categories = _chosen(rng, count, SHARE_WITH_CATEGORIES)
    with_diet = _chosen(rng, count, SHARE_WITH_DIET)
    # suspended and deceased: disjoint, and at least one of each in any city of two or more
    n_deceased, n_suspended = (max(1, round(count * share)) for share in (SHARE_DECEASED, SHARE_SUSPENDED))
    inactive = rng.sample(range(count), min(count, n_deceased + n_suspended))
    deceased, suspended = set(inactive[:n_deceased]), set(inactive[n_deceased:])
    with_consent = _chosen(rng, count, SHARE_WITH_CONSENT)
    delivery = _chosen(rng, count, SHARE_DELIVERY)
    with_card = _chosen(rng, count, SHARE_WITH_CARD)
    card_numbers = iter(rng.sample(range(10_000_000, 100_000_000), len(with_card)))
    used_numbers: set[str] = set()
    residents: list[ResidentSeed] = []
    for i in range(count):
        district_code = rng.choices(districts, weights=shares)[0]
        community, canteen_code = rng.choice(homes[district_code])
        if canteen_code in halal_canteens:
            hui_chance = HUI_WHERE_HALAL
        elif district_code == DATONG:
            hui_chance = HUI_IN_DATONG
        else:
            hui_chance = HUI_ELSEWHERE
        hui = rng.random() < hui_chance
        female = rng.random() < SHARE_FEMALE
        surname = _weighted(rng, data.HUI_SURNAMES if hui else data.SURNAMES)
        if female:
            given = rng.choice(data.GIVEN_NAMES_FEMALE)
        else:
            given = rng.choice(data.GIVEN_NAMES_HUI_MALE if hui and rng.random() < 0.5 else data.GIVEN_NAMES_MALE)
        registered_on = today - timedelta(days=rng.randint(30, 900))
        latest_birth = min(LATEST_BIRTH, _years_before(registered_on, MIN_AGE))
        # more people in their sixties and seventies than in their nineties
        span = (latest_birth - EARLIEST_BIRTH).days
        birth = EARLIEST_BIRTH + timedelta(days=round(span * rng.betavariate(2.2, 1.0)))
        while True:
            sequence = rng.randrange(0, 500) * 2 + (0 if female else 1)  # odd: male, even: female
            number = make_number(district_code, birth, sequence)
            if number not in used_numbers:
                used_numbers.add(number)
                break
        resident = ResidentSeed(
            name=surname + given,
            sex="female" if female else "male",
            id_number=number,
            district_code=district_code,
            community=community,
            home_canteen_code=canteen_code,
            address=(
                f"{community}{rng.randint(1, 30)}号楼{rng.randint(1, 4)}单元{rng.randint(1, 6)}0{rng.randint(1, 4)}室"
            ),
            registered_on=registered_on,
            hui=hui,
        )
        if rng.random() < SHARE_WITH_PHONE:
            resident.phone = f"{data.DEMO_PHONE_PREFIX}{rng.randint(0, 9999):04d}"
        if rng.random() < SHARE_WITH_EMERGENCY_CONTACT:
            relation = rng.choice(data.EMERGENCY_RELATIONS)
            resident.emergency_contact = f"{relation} {data.DEMO_PHONE_PREFIX}{rng.randint(0, 9999):04d}"
        if i in with_card:
            resident.card_no = f"{data.DEMO_CARD_PREFIX}{next(card_numbers)}"
        if i in with_consent:
            resident.consent_method = "signed_form" if rng.random() < 0.75 else "family_on_behalf"
        if i in with_categories:
            resident.categories = _categories(rng, registered_on, today)
        if i in with_diet:
            restrictions, allergens, notes = rng.choice(data.DIET_PROFILES)
            resident.restrictions, resident.allergens, resident.diet_notes = restrictions, allergens, notes
        if hui:
            resident.restrictions = tuple(sorted({*resident.restrictions, "halal"} - {"vegetarian"}))
            resident.diet_notes = resident.diet_notes or "回族，清真"
        disabled = any(c.category == "disabled" for c in resident.categories)
        resident.delivery_registered = i in delivery or (disabled and rng.random() < 0.6)
        if i in deceased:
            effective_on = _day_between(rng, registered_on + timedelta(days=20), today - timedelta(days=1))
            resident.status_change = StatusSeed("deceased", effective_on, data.DEATH_REASON)
        elif i in suspended:
            effective_on = _day_between(rng, registered_on + timedelta(days=10), today)
            resident.status_change = StatusSeed("suspended", effective_on, rng.choice(data.SUSPENSION_REASONS))
        residents.append(resident)
    return residents


def _categories(rng: random.Random, registered_on: date, today: date) -> list[CategorySeed]:
    names = {_weighted(rng, CATEGORY_WEIGHTS)}
    if rng.random() < 0.2:
        names.add(_weighted(rng, CATEGORY_WEIGHTS))
    held = []
    for name in sorted(names):
        valid_from = _day_between(rng, max(registered_on, CATEGORY_YEARS_START), today)
        # some grants have ended (a 低收入 household re-assessed, a 低保 grant revoked)
        valid_to = None
        if name in ("low_income", "subsistence") and rng.random() < 0.15 and valid_from < today:
            valid_to = _day_between(rng, valid_from, today)
        held.append(CategorySeed(name, valid_from, valid_to, data.CATEGORY_EVIDENCE[name]))
    return held
