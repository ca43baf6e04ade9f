"""The demo city: what `load_demo_city` creates, its audit trail, and `flask demo load [--if-empty]`."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.auth.models import User
from canteen.core import clock
from canteen.core.audit_log import Actor, AuditEntry, set_actor
from canteen.core.errors import Conflict
from canteen.demo import data
from canteen.demo import service as demo_service
from canteen.demo.residents import generate_residents
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.org.models import SLOTS, Canteen, CanteenKind, Community, District
from canteen.residents import id_numbers
from canteen.residents import service as resident_service
from canteen.residents.models import CATEGORIES, MealCard, Resident, ResidentCategory, ResidentStatusChange
from tests.factories import DistrictFactory

DIVISION_CODES = {
    "630102": "城东区",
    "630103": "城中区",
    "630104": "城西区",
    "630105": "城北区",
    "630106": "湟中区",
    "630121": "大通回族土族自治县",
    "630123": "湟源县",
}
USERNAME = re.compile(r"^[a-z0-9_.-]{3,60}$")
DEMO_PHONE = re.compile(r"^1700000\d{4}$")
CARD_NO = re.compile(r"^XN\d{8}$")
# the tests load a small city; `flask demo load` registers DEFAULT_RESIDENTS
FEW_RESIDENTS = 40
HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

_hashes: dict[str, str] = {}


@pytest.fixture(autouse=True)
def hash_each_password_once(monkeypatch):
    """argon2 is slow on purpose: a real hash of each password, computed once per test run."""
    real_hash = auth_service.hash_password

    def cached(password: str) -> str:
        if password not in _hashes:
            _hashes[password] = real_hash(password)
        return _hashes[password]

    monkeypatch.setattr(auth_service, "hash_password", cached)


def _load(app, residents: int = FEW_RESIDENTS, today: date | None = None) -> demo_service.DemoCity:
    return demo_service.load_demo_city(password=app.config["DEMO_PASSWORD"], residents=residents, today=today)


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _all(model, *where) -> list:
    return list(db.session.scalars(sa.select(model).where(*where)))


def test_the_content_is_consistent():
    canteens = {seed.code: seed for seed in (*data.KITCHENS, *data.CANTEENS)}
    districts = {seed.code: seed for seed in data.DISTRICTS}
    assert len(canteens) == len(data.KITCHENS) + len(data.CANTEENS), "canteen codes are unique"
    for seed in canteens.values():
        assert seed.community is None or seed.community in districts[seed.district_code].communities
        assert len(seed.code) <= 20 and len(seed.name) <= 100
        for slot, (opens, closes) in seed.opening_hours.items():
            assert slot in SLOTS and HOURS.match(opens) and HOURS.match(closes) and opens < closes
        if seed.supplied_by:
            supplier = canteens[seed.supplied_by]
            assert supplier.kind == "central_kitchen"
            # a halal canteen takes food only from a halal kitchen
            assert supplier.halal or not seed.halal, seed.code
    for seed in data.CANTEENS:
        assert "lunch" in seed.slots
    usernames = [account.username for account in data.ACCOUNTS]
    assert len(set(usernames)) == len(usernames)
    assert all(USERNAME.match(name) for name in usernames), usernames


def test_loads_the_districts_of_xining_with_their_division_codes(app):
    city = _load(app)

    assert {d.code: d.name for d in _all(District)} == DIVISION_CODES
    assert set(city.districts) == set(DIVISION_CODES)
    for district in city.districts.values():
        assert 2 <= len(district.communities) <= 4


def test_loads_canteens_meal_points_and_the_kitchens_that_supply_them(app):
    _load(app)

    every = _all(Canteen)
    kitchens = [c for c in every if c.kind == CanteenKind.CENTRAL_KITCHEN]
    canteens = [c for c in every if c.kind != CanteenKind.CENTRAL_KITCHEN]
    assert len(kitchens) == 2
    assert len(canteens) >= 12
    assert len([c for c in canteens if c.halal]) >= 3
    assert len({c.code for c in every}) == len(every)
    assert {c.district.code for c in canteens} == set(DIVISION_CODES), "every district has a canteen"
    for canteen in canteens:
        assert canteen.supplied_by is None or canteen.supplied_by.is_kitchen
        if canteen.kind == CanteenKind.MEAL_POINT:
            assert canteen.supplied_by is not None, canteen.code
        assert canteen.community is not None and canteen.community.district_id == canteen.district_id
        assert canteen.opening_hours["lunch"] == ["11:00", "13:30"]
        assert canteen.seats > 0 and canteen.address
    assert any(6 in c.closed_weekdays for c in canteens), "some are closed on Sunday"
    assert any("breakfast" in c.opening_hours for c in canteens)
    assert any("dinner" in c.opening_hours for c in canteens)
    # a kitchen may supply canteens of neighbouring districts
    assert any(c.supplied_by and c.supplied_by.district_id != c.district_id for c in canteens)


def test_creates_one_login_per_role_and_scope(app, as_user):
    city = _load(app)

    assert [u.username for u in _all(User, User.role == "admin")] == ["admin"]
    officers = _all(User, User.role == "district_officer")
    assert sorted(u.district_id for u in officers) == sorted(d.id for d in city.districts.values())
    staff = _all(User, User.role == "canteen_staff")
    canteen_ids = [c.id for c in _all(Canteen, Canteen.kind != CanteenKind.CENTRAL_KITCHEN)]
    assert sorted(u.canteen_id for u in staff) == sorted(canteen_ids)
    kitchen_staff = _all(User, User.role == "kitchen_staff")
    kitchen_ids = [c.id for c in _all(Canteen, Canteen.kind == CanteenKind.CENTRAL_KITCHEN)]
    assert sorted(u.canteen_id for u in kitchen_staff) == sorted(kitchen_ids)
    assert all(USERNAME.match(u.username) for u in _all(User))
    assert [login.username for login in city.logins] == [a.username for a in data.ACCOUNTS]

    user = auth_service.authenticate(username="staff.cd-dgdj", password=app.config["DEMO_PASSWORD"])
    assert user.canteen.name == "东关大街社区爱老幸福食堂"
    with pytest.raises(auth_service.InvalidCredentials):
        auth_service.authenticate(username="officer.chengdong", password="not-the-demo-password")

    # the officer of 城东区 sees that district's canteens and no other
    with as_user(city.users["officer.chengdong"]):
        seen = org_service.list_canteens(page_size=100).items
    assert seen and {c.district_id for c in seen} == {city.districts["630102"].id}


def test_writes_are_audit_logged_when_an_actor_is_set(app):
    set_actor(Actor(None, "test", "demo test"))
    city = _load(app)

    entries = _all(AuditEntry, AuditEntry.operation == "demo test")
    written = len(city.districts) + len(city.communities) + len(city.canteens) + len(city.users) + len(city.residents)
    assert len([e for e in entries if e.action == "insert"]) >= written
    user_entries = [e for e in entries if e.entity == "users"]
    assert user_entries and all("password_hash" not in e.after for e in user_entries)


def test_refuses_a_database_that_already_holds_districts(app):
    DistrictFactory()

    with pytest.raises(Conflict) as refused:
        _load(app)
    assert refused.value.code == "demo_city_not_empty"
    assert demo_service.find_demo_logins() == []


def test_command_loads_the_city_and_prints_the_logins(app):
    result = app.test_cli_runner().invoke(args=["demo", "load", "--residents", "25"])

    assert result.exit_code == 0, result.output
    assert _count(District) == 7
    assert "residents loaded: 25 (fictitious" in result.output
    assert _count(Resident) == 25
    for username in ("admin", "officer.datong", "kitchen.cb-zycf", "staff.cd-zjq"):
        assert username in result.output
    assert "东关大街社区爱老幸福食堂" in result.output
    assert app.config["DEMO_PASSWORD"] in result.output
    assert "http://127.0.0.1:5000" in result.output
    assert _count(AuditEntry, AuditEntry.operation == "flask demo load") > 0


def test_command_if_empty_leaves_a_loaded_city_alone(app):
    _load(app)
    db.session.commit()
    users, canteens = _count(User), _count(Canteen)

    result = app.test_cli_runner().invoke(args=["demo", "load", "--if-empty", "--residents", "5"])

    assert result.exit_code == 0, result.output
    assert "already" in result.output
    assert "officer.chengdong" in result.output and "DEMO_PASSWORD" in result.output
    assert (_count(District), _count(User), _count(Canteen)) == (7, users, canteens)


def test_command_refuses_a_non_empty_database(app):
    DistrictFactory()

    result = app.test_cli_runner().invoke(args=["demo", "load"])

    assert result.exit_code == 1
    assert "empty database" in result.output
    assert _count(District) == 1 and _count(User) == 0


def test_command_reports_a_weak_demo_password_and_writes_nothing(app, monkeypatch):
    monkeypatch.setitem(app.config, "DEMO_PASSWORD", "short")

    result = app.test_cli_runner().invoke(args=["demo", "load"])

    assert result.exit_code == 1
    assert "10 characters" in result.output
    assert _count(District) == 0


# --- residents ---------------------------------------------------------------------------------
TODAY = date(2026, 11, 23)


def test_generated_residents_are_valid_fictitious_and_deterministic():
    seeds = generate_residents(3000, today=TODAY)
    homes = {seed.code: seed for seed in data.CANTEENS}
    communities = {d.code: d.communities for d in data.DISTRICTS}

    assert seeds == generate_residents(3000, today=TODAY), "the same seed and date give the same residents"
    numbers = [s.id_number for s in seeds]
    assert len(set(numbers)) == len(numbers)
    cards = [s.card_no for s in seeds if s.card_no]
    assert len(set(cards)) == len(cards) and all(CARD_NO.match(c) for c in cards)
    for seed in seeds:
        identity = id_numbers.parse("resident_id_card", seed.id_number)  # valid check digit and date
        assert seed.id_number[:6] == seed.district_code
        assert (identity.birth_date, identity.sex) == (seed.birth_date, seed.sex)
        assert date(1930, 1, 1) <= identity.birth_date <= date(1965, 12, 31)
        assert seed.registered_on <= TODAY and id_numbers.age_on(identity.birth_date, seed.registered_on) >= 60
        assert 2 <= len(seed.name) <= 3
        assert seed.community in communities[seed.district_code]
        home = homes[seed.home_canteen_code]
        assert home.district_code == seed.district_code and home.kind != "central_kitchen"
        for phone in (seed.phone, (seed.emergency_contact or " 17000000000").split()[-1]):
            assert phone is None or (DEMO_PHONE.match(phone) and re.match(r"^1[3-9]\d{9}$", phone))
        assert set(seed.restrictions) <= {"low_salt", "low_sugar", "low_fat", "soft", "minced", "halal", "vegetarian"}
        if seed.hui:
            assert "halal" in seed.restrictions and seed.name[0] in {s for s, _ in data.HUI_SURNAMES}
        for category in seed.categories:
            assert category.category in CATEGORIES
            assert category.valid_from.year in (2025, 2026) and category.valid_from >= seed.registered_on
            assert category.valid_to is None or category.valid_from <= category.valid_to <= TODAY
        if seed.status_change:
            assert seed.registered_on < seed.status_change.effective_on <= TODAY

    def share(predicate) -> float:
        return sum(1 for seed in seeds if predicate(seed)) / len(seeds)

    assert share(lambda s: s.categories) == pytest.approx(0.30, abs=0.01)
    assert share(lambda s: s.restrictions or s.allergens) >= 0.40
    assert share(lambda s: s.allergens) > 0.01
    assert share(lambda s: s.status_change and s.status_change.status == "suspended") == pytest.approx(0.03, abs=0.005)
    assert share(lambda s: s.status_change and s.status_change.status == "deceased") == pytest.approx(0.01, abs=0.005)
    assert share(lambda s: s.consent_method) == pytest.approx(0.90, abs=0.01)
    assert share(lambda s: s.delivery_registered) == pytest.approx(0.22, abs=0.04)
    assert share(lambda s: s.card_no) > 0.9
    assert {s.consent_method for s in seeds} == {"signed_form", "family_on_behalf", None}
    # every district has residents, the most in 城东区; Hui residents live mostly where canteens cook halal
    by_district = Counter(s.district_code for s in seeds)
    assert set(by_district) == set(DIVISION_CODES) and by_district.most_common(1)[0][0] == "630102"
    hui = [s for s in seeds if s.hui]
    assert 0.1 < len(hui) / len(seeds) < 0.3
    assert sum(homes[s.home_canteen_code].halal or s.district_code == "630121" for s in hui) / len(hui) > 0.8
    assert len({s.name for s in seeds}) > 500, "realistic: many names, some shared"


def test_a_small_load_still_has_every_kind_of_resident():
    seeds = generate_residents(10, today=TODAY)
    statuses = Counter(s.status_change.status for s in seeds if s.status_change)
    assert statuses == {"suspended": 1, "deceased": 1}
    assert any(s.categories for s in seeds) and any(s.restrictions for s in seeds)


def test_loads_residents_through_the_registry(app):
    today = clock.today()
    city = _load(app, residents=FEW_RESIDENTS, today=today)
    db.session.flush()
    seeds = {s.id_number: s for s in generate_residents(FEW_RESIDENTS, today=today)}

    residents = _all(Resident)
    assert len(residents) == len(city.residents) == FEW_RESIDENTS
    officers = {u.district_id: u.id for u in city.users.values() if u.role == "district_officer"}
    for resident in residents:
        seed = seeds[resident.id_number]  # decrypted: the number round-trips
        assert resident.name == seed.name
        assert resident.registered_by_id == officers[resident.district_id], "registered by the district's officer"
        assert db.session.get(Canteen, resident.home_canteen_id).code == seed.home_canteen_code
        assert db.session.get(Community, resident.community_id).name == seed.community
        assert resident.status_changes[0].source == "registration"
        assert [c.category for c in resident.categories] == [c.category for c in seed.categories]
        assert all(c.verified_by_id == resident.registered_by_id for c in resident.categories)
        assert (resident.active_card.card_no if resident.active_card else None) == seed.card_no
        assert (resident.consent_method, resident.consent_given_on) == (
            seed.consent_method,
            seed.registered_on if seed.consent_method else None,
        )
        if seed.status_change:
            assert (resident.status, resident.status_effective_on) == (
                seed.status_change.status,
                seed.status_change.effective_on,
            )
            assert [c.status for c in resident.status_changes] == ["active", seed.status_change.status]
        else:
            assert resident.status == "active"
    assert {r.status for r in residents} == {"active", "suspended", "deceased"}
    assert _count(ResidentCategory) == sum(len(s.categories) for s in seeds.values())
    assert _count(ResidentStatusChange) == FEW_RESIDENTS + sum(1 for s in seeds.values() if s.status_change)
    assert _count(MealCard) == sum(1 for s in seeds.values() if s.card_no)
    assert city.resident_counts["active"] + city.resident_counts["suspended"] + city.resident_counts["deceased"] == (
        FEW_RESIDENTS
    )
    # the raw rows hold ciphertext, never the numbers
    raw = db.session.execute(sa.text("SELECT id_number, phone FROM residents")).all()
    assert not {n for n, _ in raw} & set(seeds) and all(p is None or "1700000" not in p for _, p in raw)


def test_demo_residents_are_found_at_the_counter(app, as_user):
    city = _load(app, residents=FEW_RESIDENTS)
    db.session.flush()
    resident = next(r for r in city.residents if r.status == "active" and r.active_card)
    staff = next(
        city.users[f"staff.{seed.code.lower()}"]
        for seed in data.CANTEENS
        if city.canteens[seed.code].district_id == resident.district_id
    )

    with as_user(staff):
        for q in (
            resident.active_card.card_no,
            resident.id_number[-4:],
            resident.id_number[-6:],
            resident.name,
            resident.name_initials,
            resident.name_pinyin[:5],
        ):
            assert resident in resident_service.search_residents(q=q, page_size=100).items, q
        assert resident_service.lookup_resident(id_number=resident.id_number) == resident
        assert resident_service.lookup_resident(card_no=resident.active_card.card_no) == resident
        # staff search their own district only
        assert {r.district_id for r in resident_service.search_residents(q="z", page_size=500).items} <= {
            resident.district_id
        }
