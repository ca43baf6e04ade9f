"""The demo city: what `load_demo_city` creates, its audit trail, and `flask demo load [--if-empty]`."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.auth.models import User
from canteen.core import clock
from canteen.core.audit_log import Actor, AuditEntry, set_actor
from canteen.core.errors import Conflict
from canteen.demo import data
from canteen.demo import service as demo_service
from canteen.demo.meals import DAYS, is_active_on, is_open, plan_meals
from canteen.demo.residents import generate_residents
from canteen.extensions import db
from canteen.meals.models import VALID, VOID, MealRecord
from canteen.org import service as org_service
from canteen.org.models import SLOTS, Canteen, CanteenKind, Community, District
from canteen.residents import id_numbers
from canteen.residents import service as resident_service
from canteen.residents.models import CATEGORIES, MealCard, Resident, ResidentCategory, ResidentStatusChange
from canteen.subsidies import service as subsidy_service
from canteen.subsidies.models import RULE_CATEGORIES, SubsidyPolicy, SubsidyRule
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
    assert f"subsidy policies loaded: {len(data.POLICIES)} in 7 districts (1 ended and replaced)" in result.output
    assert f"meals loaded: {_count(MealRecord, MealRecord.status == VALID)} from " in result.output
    assert "log in as that canteen's staff (role canteen_staff" in result.output and "staff.cd-dgdj" in result.output
    for username in ("admin", "officer.datong", "kitchen.cb-zycf", "staff.cd-zjq"):
        assert username in result.output
    assert "东关大街社区爱老幸福食堂" in result.output
    assert app.config["DEMO_PASSWORD"] in result.output
    assert "http://127.0.0.1:5000" in result.output
    assert _count(AuditEntry, AuditEntry.operation == "flask demo load") > 0


def test_command_if_empty_leaves_a_loaded_city_alone(app):
    _load(app)
    db.session.commit()
    before = [_count(model) for model in (User, Canteen, Resident, SubsidyPolicy, MealRecord, AuditEntry)]
    assert before[3] and before[4], "policies and meals were loaded"

    result = app.test_cli_runner().invoke(args=["demo", "load", "--if-empty", "--residents", "5"])

    assert result.exit_code == 0, result.output
    assert "already" in result.output
    assert "officer.chengdong" in result.output and "DEMO_PASSWORD" in result.output
    assert _count(District) == 7
    assert [_count(model) for model in (User, Canteen, Resident, SubsidyPolicy, MealRecord, AuditEntry)] == before


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


# --- subsidy policies and meals -------------------------------------------------------------------
MEAL_RESIDENTS = 120  # enough for regulars, delivery and the unusual meals, still quick


def test_policy_content_is_consistent():
    districts = {seed.code for seed in data.DISTRICTS}
    assert {seed.district_code for seed in data.POLICIES} == districts, "a policy in every district"
    for seed in data.POLICIES:
        assert seed.rules and len({(r.category, r.slot) for r in seed.rules}) == len(seed.rules)
        for rule in seed.rules:
            assert rule.category in RULE_CATEGORIES and rule.slot in (*SLOTS, "any") and rule.amount_fen > 0
    rules = [rule for seed in data.POLICIES for rule in seed.rules]
    assert any(rule.unit == "per_day" for rule in rules)
    assert any(rule.min_price_fen for rule in rules) and any(rule.max_per_month for rule in rules)
    assert any(seed.operator_allowance_fen for seed in data.POLICIES)
    for canteen in data.CANTEENS:
        assert all(data.MEAL_PRICES[canteen.kind].get(slot) for slot in canteen.slots), canteen.code


def test_loads_a_policy_per_district_without_overlaps(app):
    today = clock.today()
    city = _load(app, today=today)
    db.session.flush()

    policies = _all(SubsidyPolicy)
    assert len(policies) == len(city.policies) == len(data.POLICIES)
    officers = {u.district_id: u.id for u in city.users.values() if u.role == "district_officer"}
    for district in city.districts.values():
        own = sorted((p for p in policies if p.district_id == district.id), key=lambda p: p.valid_from)
        assert own, district.name
        for earlier, later in itertools.pairwise(own):
            assert earlier.valid_to is not None and earlier.valid_to < later.valid_from, "policies never overlap"
        assert own[-1].valid_to is None, "the newest one is open-ended"
        assert own[-1].valid_from <= today - timedelta(days=DAYS), "in force before the first meal"
        assert subsidy_service.policy_in_force(district.id, today) == own[-1]
        assert all(p.created_by_id == officers[district.id] for p in own), "created by the district's officer"
    ended = [p for p in policies if p.valid_to is not None]
    assert len(ended) == 1 and ended[0].ended_by_id == ended[0].created_by_id and ended[0].ended_at
    assert _count(SubsidyRule) == sum(len(seed.rules) for seed in data.POLICIES)


class _EarlierMeals:
    """The usage the meals service saw when it recorded `meal`: the resident's valid meals with a
    lower id that a rule subsidised (the demo voids a meal at once, before the resident's next)."""

    def __init__(self, meal: MealRecord) -> None:
        self.rows = db.session.execute(
            sa.select(MealRecord.rule_id, MealRecord.served_on).where(
                MealRecord.resident_id == meal.resident_id,
                MealRecord.id < meal.id,
                MealRecord.status == VALID,
                MealRecord.subsidy_fen > 0,
            )
        ).all()

    def subsidised_meals(self, rule_id: int, *, day: date) -> int:
        return sum(1 for rule, served_on in self.rows if rule == rule_id and served_on == day)

    def subsidised_meals_in_month(self, rule_id: int, *, month_of: date) -> int:
        month = (month_of.year, month_of.month)
        return sum(1 for rule, on in self.rows if rule == rule_id and (on.year, on.month) == month)


# a past load date: every meal of that day was served; its four weeks cross a month and 城东区's
# change of policy on 1 January
MEALS_LOADED_ON = date(2026, 1, 20)


def test_loads_weeks_of_meals_through_the_counters(app):
    today = MEALS_LOADED_ON
    city = _load(app, residents=MEAL_RESIDENTS, today=today)
    db.session.flush()

    meals = _all(MealRecord)
    valid = [m for m in meals if m.status == VALID]
    assert city.meal_counts["valid"] == len(valid) and city.meal_counts["void"] == len(meals) - len(valid)
    days = {m.served_on for m in meals}
    assert min(days) == today - timedelta(days=DAYS) and max(days) == today, "four weeks up to the load date"
    assert len(days) >= 21
    assert "lunch" in {m.slot for m in valid} and {m.mode for m in valid} == {"dine_in", "pickup", "delivery"}
    assert len({m.payment_method for m in valid}) >= 3
    assert len({m.resident_id for m in valid}) >= MEAL_RESIDENTS // 10

    canteens = {c.id: c for c in _all(Canteen)}
    residents = {r.id: r for r in _all(Resident)}
    staff = {u.canteen_id: u.id for u in city.users.values() if u.role == "canteen_staff"}
    assert Counter((m.resident_id, m.served_on, m.slot) for m in valid).most_common(1)[0][1] == 1
    for meal in meals:
        canteen, resident = canteens[meal.canteen_id], residents[meal.resident_id]
        assert not canteen.is_closed_on(meal.served_on) and meal.slot in canteen.opening_hours, meal.id
        assert resident_service.is_active_on(resident, meal.served_on), meal.id
        assert meal.recorded_by_id == staff[canteen.id], "recorded by the canteen's counter account"
        assert meal.served_at is not None and meal.served_at.astimezone(clock.TIME_ZONE).date() == meal.served_on
        assert meal.mode != "delivery" or resident.delivery_registered
        assert (meal.verification == "staff_attested") == bool(meal.attest_reason)
        codes = {w["code"] for w in meal.warnings}
        opens, closes = canteen.opening_hours[meal.slot]
        served = meal.served_at.astimezone(clock.TIME_ZONE).time()
        assert ("outside_opening_hours" in codes) != (time.fromisoformat(opens) <= served <= time.fromisoformat(closes))
        assert ("collected_by_proxy" in codes) == bool(meal.collected_by)
        assert (meal.status == VOID) == bool(meal.void_reason) and (meal.status == VOID) == (
            meal.voided_by_id is not None
        )
    assert any(m.verification == "staff_attested" for m in meals)
    assert any(m.collected_by for m in meals) and any(m.status == VOID for m in meals)
    assert any("outside_opening_hours" in {w["code"] for w in m.warnings} for m in meals)
    corrected = next(m for m in meals if m.void_reason == data.CORRECTION_REASON)
    again = [
        m
        for m in valid
        if (m.resident_id, m.served_on, m.slot) == (corrected.resident_id, corrected.served_on, corrected.slot)
    ]
    assert len(again) == 1 and again[0].mode == "pickup" and again[0].id > corrected.id

    # every subsidy is the money path's decision, given the meals recorded before it
    for meal in valid:
        decision = subsidy_service.best_rule(
            resident=residents[meal.resident_id],
            canteen=canteens[meal.canteen_id],
            day=meal.served_on,
            slot=meal.slot,
            price_fen=meal.price_fen,
            usage=_EarlierMeals(meal),
        )
        assert (meal.rule_id, meal.subsidy_fen, meal.copay_fen) == (
            decision.rule.id if decision.rule else None,
            decision.subsidy_fen,
            decision.copay_fen,
        ), meal.id
        assert meal.subsidy_fen <= meal.price_fen and meal.copay_fen == meal.price_fen - meal.subsidy_fen
        if meal.rule_id is not None:
            held = resident_service.categories_on(residents[meal.resident_id], meal.served_on)
            assert meal.subsidy_category in held and meal.rule.policy.covers(meal.served_on)
            assert meal.rule.policy.district_id == canteens[meal.canteen_id].district_id
    assert any(m.subsidy_fen for m in valid) and any(not m.subsidy_fen for m in valid)
    used = {m.policy_id for m in valid if m.policy_id}
    assert {p.name for p in city.policies if p.id in used} >= {
        s.name for s in data.POLICIES if s.district_code == "630102"
    }


def test_meals_are_dated_relative_to_the_load_date_and_only_served_ones():
    today = TODAY
    seeds = generate_residents(3000, today=today)
    morning = datetime.combine(today, time(10, 0), tzinfo=clock.TIME_ZONE)
    plan = plan_meals(seeds, today=today, until=morning)

    assert plan == plan_meals(seeds, today=today, until=morning), "deterministic"
    assert (
        plan[: len(plan) // 2] == plan_meals(seeds, today=today, until=morning - timedelta(hours=12))[: len(plan) // 2]
    )
    # `flask demo load` records these through the service: keep it to some thousands
    assert 4000 <= len(plan) <= 7000
    assert {m.slot for m in plan if m.served_on == today} == {"breakfast"}, "today: only what was served by 10:00"
    assert {m.slot for m in plan} == set(SLOTS) and {m.mode for m in plan} == {"dine_in", "pickup", "delivery"}
    assert len({m.canteen_code for m in plan}) == len(data.CANTEENS)
    assert all(m.served_at <= morning for m in plan)
    assert min(m.served_on for m in plan) == today - timedelta(days=DAYS)
    canteens = {c.code: c for c in data.CANTEENS}
    for meal in plan:
        assert is_open(canteens[meal.canteen_code], meal.served_on, meal.slot)
        assert is_active_on(seeds[meal.resident], meal.served_on)
        assert meal.mode != "delivery" or seeds[meal.resident].delivery_registered
    assert Counter((m.resident, m.served_on, m.slot) for m in plan).most_common(1)[0][1] == 1
