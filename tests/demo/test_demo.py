"""The demo city: what `load_demo_city` creates, its audit trail, and `flask demo load [--if-empty]`."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.auth.models import User
from canteen.core.audit_log import Actor, AuditEntry, set_actor
from canteen.core.errors import Conflict
from canteen.demo import data
from canteen.demo import service as demo_service
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.org.models import SLOTS, Canteen, CanteenKind, District
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


def _load(app) -> demo_service.DemoCity:
    return demo_service.load_demo_city(password=app.config["DEMO_PASSWORD"])


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
    written = len(city.districts) + len(city.communities) + len(city.canteens) + len(city.users)
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
    result = app.test_cli_runner().invoke(args=["demo", "load"])

    assert result.exit_code == 0, result.output
    assert _count(District) == 7
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

    result = app.test_cli_runner().invoke(args=["demo", "load", "--if-empty"])

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
