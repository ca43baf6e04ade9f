"""Subsidy rules in the service: the best-rule decision exactly as DESIGN.md "The money path,
exactly" pins it, policies that never overlap, ending a policy, and who may do what."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
import sqlalchemy as sa

from canteen.core import scoping
from canteen.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from canteen.extensions import db
from canteen.residents import service as resident_service
from canteen.residents.models import Resident
from canteen.subsidies import service as subsidy_service
from canteen.subsidies.models import SubsidyPolicy, SubsidyRule
from tests.factories import (
    CanteenFactory,
    DistrictFactory,
    KitchenFactory,
    admin,
    canteen_staff,
    kitchen_staff,
    officer,
    resident,
)
from tests.subsidies.conftest import FakeUsage, make_policy, rule

MARCH_2 = date(2026, 3, 2)


@pytest.fixture
def place():
    district = DistrictFactory()
    return {"district": district, "canteen": CanteenFactory(district=district)}


def _decide(person, canteen, day, slot="lunch", price_fen=1500, usage=None):
    return subsidy_service.best_rule(
        resident=person, canteen=canteen, day=day, slot=slot, price_fen=price_fen, usage=usage or FakeUsage()
    )


def _add_category(person, category, valid_from, valid_to=None):
    with scoping.unrestricted():
        resident_service.add_category(person.id, category=category, valid_from=valid_from, valid_to=valid_to)
    db.session.commit()


def _codes(decision) -> list[str]:
    return [warning["code"] for warning in decision.warnings]


# --- the best rule ---------------------------------------------------------------------------
def test_best_rule_across_overlapping_categories(place):
    policy = make_policy(place["district"], [rule("aged_60_plus", "any", 300), rule("subsistence", "lunch", 800)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", date(2026, 1, 1))

    lunch = _decide(person, place["canteen"], MARCH_2, "lunch", 1500)
    assert lunch.rule.id == policy.rules[1].id
    assert (lunch.subsidy_fen, lunch.copay_fen, lunch.category, lunch.warnings) == (800, 700, "subsistence", [])

    # dinner: the subsistence rule is for lunch only, the age rule for any meal
    dinner = _decide(person, place["canteen"], MARCH_2, "dinner", 1500)
    assert (dinner.rule.id, dinner.subsidy_fen, dinner.copay_fen, dinner.category) == (
        policy.rules[0].id,
        300,
        1200,
        "aged_60_plus",
    )


def test_slot_rule_and_any_slot_rule(place):
    policy = make_policy(place["district"], [rule("aged_60_plus", "any", 300), rule("aged_60_plus", "lunch", 500)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    any_rule, lunch_rule = policy.rules
    assert _decide(person, place["canteen"], MARCH_2, "lunch").rule.id == lunch_rule.id
    assert _decide(person, place["canteen"], MARCH_2, "breakfast").rule.id == any_rule.id
    assert _decide(person, place["canteen"], MARCH_2, "dinner").subsidy_fen == 300


def test_minimum_price_as_in_xiamen(place):
    # Xiamen: the subsidy applies to meals of at least 10 yuan
    make_policy(place["district"], [rule("aged_60_plus", "any", 300, min_price_fen=1000)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    cheap = _decide(person, place["canteen"], MARCH_2, price_fen=999)
    assert (cheap.rule, cheap.subsidy_fen, cheap.copay_fen, _codes(cheap)) == (None, 0, 999, ["no_subsidy_rule"])
    exactly = _decide(person, place["canteen"], MARCH_2, price_fen=1000)
    assert (exactly.subsidy_fen, exactly.copay_fen, exactly.warnings) == (300, 700, [])


def test_minimum_price_falls_back_to_the_next_rule(place):
    policy = make_policy(
        place["district"],
        [rule("subsistence", "lunch", 800, min_price_fen=1000), rule("aged_60_plus", "any", 300)],
    )
    person = resident(place["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", date(2026, 1, 1))
    assert _decide(person, place["canteen"], MARCH_2, price_fen=900).rule.id == policy.rules[1].id
    assert _decide(person, place["canteen"], MARCH_2, price_fen=1000).rule.id == policy.rules[0].id


def test_category_ending_mid_month(place):
    make_policy(place["district"], [rule("subsistence", "lunch", 800), rule("aged_60_plus", "any", 300)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", date(2026, 3, 1), date(2026, 3, 15))
    on_15th = _decide(person, place["canteen"], date(2026, 3, 15))
    on_16th = _decide(person, place["canteen"], date(2026, 3, 16))
    assert (on_15th.category, on_15th.subsidy_fen) == ("subsistence", 800)
    assert (on_16th.category, on_16th.subsidy_fen) == ("aged_60_plus", 300)
    before = _decide(person, place["canteen"], date(2026, 2, 28))
    assert (before.category, before.subsidy_fen) == ("aged_60_plus", 300)


def test_turning_80_mid_month_counts_from_the_birthday(place):
    make_policy(place["district"], [rule("aged_60_plus", "any", 300), rule("aged_80_plus", "any", 500)])
    person = resident(place["district"], birth=date(1946, 6, 15))
    eve = _decide(person, place["canteen"], date(2026, 6, 14))
    birthday = _decide(person, place["canteen"], date(2026, 6, 15))
    assert (eve.category, eve.subsidy_fen) == ("aged_60_plus", 300)
    assert (birthday.category, birthday.subsidy_fen) == ("aged_80_plus", 500)
    assert _decide(person, place["canteen"], date(2026, 6, 30)).subsidy_fen == 500


def test_born_on_29_february(place):
    # 80 years after a leap year is a leap year again (in this century): the birthday exists
    make_policy(
        place["district"],
        [rule("aged_60_plus", "any", 300), rule("aged_80_plus", "any", 500)],
        valid_from=date(2024, 1, 1),
    )
    person = resident(place["district"], birth=date(1944, 2, 29))
    assert _decide(person, place["canteen"], date(2024, 2, 28)).category == "aged_60_plus"
    assert _decide(person, place["canteen"], date(2024, 2, 29)).category == "aged_80_plus"


def test_born_on_29_february_turns_80_on_1_march_in_a_common_year(place):
    # 1900 is not a leap year: someone born on 29 February 1820 turned 80 on 1 March 1900
    make_policy(
        place["district"],
        [rule("aged_60_plus", "any", 300), rule("aged_80_plus", "any", 500)],
        valid_from=date(1900, 1, 1),
        valid_to=date(1900, 12, 31),
    )
    person = Resident(birth_date=date(1820, 2, 29), categories=[])  # never stored: the ID rules refuse 1820
    assert _decide(person, place["canteen"], date(1900, 2, 28)).category == "aged_60_plus"
    assert _decide(person, place["canteen"], date(1900, 3, 1)).category == "aged_80_plus"


def test_per_day_rule_pays_once_a_day_then_the_next_best(place, usage):
    policy = make_policy(
        place["district"], [rule("subsistence", "any", 800, unit="per_day"), rule("aged_60_plus", "any", 300)]
    )
    per_day, per_meal = policy.rules
    person = resident(place["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", date(2026, 1, 1))

    lunch = _decide(person, place["canteen"], MARCH_2, "lunch", usage=usage)
    usage.record(lunch, MARCH_2)
    dinner = _decide(person, place["canteen"], MARCH_2, "dinner", usage=usage)
    usage.record(dinner, MARCH_2)
    assert (lunch.rule.id, lunch.subsidy_fen) == (per_day.id, 800)
    assert (dinner.rule.id, dinner.subsidy_fen, dinner.warnings) == (per_meal.id, 300, [])
    next_day = _decide(person, place["canteen"], date(2026, 3, 3), "breakfast", usage=usage)
    assert (next_day.rule.id, next_day.subsidy_fen) == (per_day.id, 800)


def test_per_day_rule_alone_leaves_the_second_meal_at_full_price(place, usage):
    make_policy(place["district"], [rule("aged_60_plus", "any", 500, unit="per_day")])
    person = resident(place["district"], birth=date(1950, 5, 1))
    usage.record(_decide(person, place["canteen"], MARCH_2, "lunch", usage=usage), MARCH_2)
    dinner = _decide(person, place["canteen"], MARCH_2, "dinner", 1200, usage=usage)
    assert (dinner.rule, dinner.subsidy_fen, dinner.copay_fen, _codes(dinner)) == (None, 0, 1200, ["cap_reached"])


def test_max_per_day(place, usage):
    make_policy(place["district"], [rule("aged_60_plus", "any", 300, max_per_day=2)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    for slot in ("breakfast", "lunch"):
        decision = _decide(person, place["canteen"], MARCH_2, slot, usage=usage)
        assert decision.subsidy_fen == 300
        usage.record(decision, MARCH_2)
    dinner = _decide(person, place["canteen"], MARCH_2, "dinner", usage=usage)
    assert (dinner.subsidy_fen, _codes(dinner)) == (0, ["cap_reached"])
    assert _decide(person, place["canteen"], date(2026, 3, 3), "dinner", usage=usage).subsidy_fen == 300


def test_max_per_month_counts_the_calendar_month(place, usage):
    policy = make_policy(
        place["district"], [rule("subsistence", "lunch", 800, max_per_month=2), rule("aged_60_plus", "lunch", 300)]
    )
    capped, fallback = policy.rules
    person = resident(place["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", date(2026, 1, 1))
    usage.add(capped.id, date(2026, 2, 27), count=5)  # last month's meals do not count
    usage.add(capped.id, date(2026, 3, 1))
    usage.add(capped.id, date(2026, 3, 2))
    third = _decide(person, place["canteen"], date(2026, 3, 31), usage=usage)
    assert (third.rule.id, third.subsidy_fen, third.warnings) == (fallback.id, 300, [])
    april = _decide(person, place["canteen"], date(2026, 4, 1), usage=usage)
    assert (april.rule.id, april.subsidy_fen) == (capped.id, 800)


def test_cap_reached_only_when_caps_alone_excluded_a_rule(place, usage):
    policy = make_policy(place["district"], [rule("aged_60_plus", "any", 300, min_price_fen=1000, max_per_month=1)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    usage.add(policy.rules[0].id, date(2026, 3, 1))
    # excluded by the minimum price as well as the cap: not a cap that stopped it
    assert _codes(_decide(person, place["canteen"], MARCH_2, price_fen=900, usage=usage)) == ["no_subsidy_rule"]
    assert _codes(_decide(person, place["canteen"], MARCH_2, price_fen=1000, usage=usage)) == ["cap_reached"]


def test_no_rule_for_the_category_or_slot(place):
    make_policy(place["district"], [rule("subsistence", "lunch", 800)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    decision = _decide(person, place["canteen"], MARCH_2, "lunch", 1500)
    assert (decision.rule, decision.subsidy_fen, decision.copay_fen, decision.category) == (None, 0, 1500, None)
    assert _codes(decision) == ["no_subsidy_rule"] and decision.warnings[0]["message"]


def test_no_policy_in_force(place):
    make_policy(place["district"], [rule("aged_60_plus", "any", 300)], valid_to=date(2026, 2, 28))
    person = resident(place["district"], birth=date(1950, 5, 1))
    decision = _decide(person, place["canteen"], MARCH_2)
    assert (decision.subsidy_fen, _codes(decision)) == (0, ["no_subsidy_rule"])
    assert "policy" in decision.warnings[0]["message"]
    assert _decide(person, place["canteen"], date(2026, 2, 28)).subsidy_fen == 300


def test_subsidy_never_above_the_price(place):
    make_policy(place["district"], [rule("aged_60_plus", "any", 800)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    decision = _decide(person, place["canteen"], MARCH_2, price_fen=200)
    assert (decision.subsidy_fen, decision.copay_fen, decision.warnings) == (200, 0, [])
    assert isinstance(decision.subsidy_fen, int) and isinstance(decision.copay_fen, int)


def test_ties_go_to_the_lowest_rule_id(place):
    first = make_policy(
        place["district"],
        [rule("aged_60_plus", "lunch", 500), rule("subsistence", "lunch", 500)],
        valid_to=date(2026, 5, 31),
    )
    second = make_policy(
        place["district"],
        [rule("subsistence", "lunch", 500), rule("aged_60_plus", "lunch", 500)],
        valid_from=date(2026, 6, 1),
    )
    person = resident(place["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", date(2026, 1, 1))
    in_first = _decide(person, place["canteen"], MARCH_2)
    in_second = _decide(person, place["canteen"], date(2026, 6, 2))
    assert (in_first.rule.id, in_first.category) == (first.rules[0].id, "aged_60_plus")
    assert (in_second.rule.id, in_second.category) == (second.rules[0].id, "subsistence")


def test_the_canteens_district_decides_not_the_residents():
    home, away = DistrictFactory(), DistrictFactory()
    make_policy(home, [rule("aged_60_plus", "any", 300)])
    make_policy(away, [rule("aged_60_plus", "any", 450)])
    person = resident(home, birth=date(1950, 5, 1))
    assert _decide(person, CanteenFactory(district=away), MARCH_2).subsidy_fen == 450
    assert _decide(person, CanteenFactory(district=home), MARCH_2).subsidy_fen == 300


def test_the_decision_does_not_depend_on_who_asks(as_user):
    # staff of another district serve a resident found by card: the categories their scope hides
    # still count, and the canteen's policy applies
    home, away = DistrictFactory(), DistrictFactory()
    canteen = CanteenFactory(district=away)
    make_policy(away, [rule("subsistence", "lunch", 800), rule("aged_60_plus", "any", 300)])
    person = resident(home, birth=date(1950, 5, 1), card_no="SUB-CARD-1")
    _add_category(person, "subsistence", date(2026, 1, 1))
    with as_user(canteen_staff(canteen)):
        found = resident_service.lookup_resident(card_no="SUB-CARD-1")
        db.session.expire(found, ["categories"])
        assert found.categories == []  # loaded again under the staff member's scope: hidden
        decision = subsidy_service.best_rule(
            resident=found, canteen=canteen, day=MARCH_2, slot="lunch", price_fen=1500, usage=FakeUsage()
        )
    assert (decision.category, decision.subsidy_fen) == ("subsistence", 800)


def test_bad_price_or_slot_is_refused(place):
    person = resident(place["district"], birth=date(1950, 5, 1))
    for price in (-1, 12.5, True):
        with pytest.raises(ValidationFailed):
            _decide(person, place["canteen"], MARCH_2, price_fen=price)
    with pytest.raises(ValidationFailed):
        _decide(person, place["canteen"], MARCH_2, slot="any")


def test_a_free_meal_is_not_subsidised(place):
    make_policy(place["district"], [rule("aged_60_plus", "any", 300)])
    person = resident(place["district"], birth=date(1950, 5, 1))
    decision = _decide(person, place["canteen"], MARCH_2, price_fen=0)
    assert (decision.subsidy_fen, decision.copay_fen) == (0, 0)


# --- creating policies -----------------------------------------------------------------------
def test_create_policy_stores_rules_in_order(place):
    policy = make_policy(
        place["district"],
        [
            rule("subsistence", "lunch", 800, max_per_month=31),
            rule("aged_60_plus", "any", 300, unit="per_day", min_price_fen=1000),
        ],
        operator_allowance_fen=300,
    )
    assert policy.operator_allowance_fen == 300 and policy.valid_to is None
    first, second = policy.rules
    assert first.id < second.id
    assert (first.category, first.slot, first.amount_fen, first.unit, first.max_per_month) == (
        "subsistence",
        "lunch",
        800,
        "per_meal",
        31,
    )
    assert (second.unit, second.min_price_fen, second.max_per_day) == ("per_day", 1000, None)


@pytest.mark.parametrize(
    ("existing", "new"),
    [
        ((date(2026, 1, 1), date(2026, 6, 30)), (date(2026, 6, 30), date(2026, 12, 31))),
        ((date(2026, 1, 1), date(2026, 6, 30)), (date(2025, 1, 1), date(2026, 1, 1))),
        ((date(2026, 1, 1), date(2026, 6, 30)), (date(2026, 2, 1), date(2026, 2, 28))),
        ((date(2026, 1, 1), date(2026, 6, 30)), (date(2025, 1, 1), None)),
        ((date(2026, 1, 1), None), (date(2030, 1, 1), date(2030, 12, 31))),
        ((date(2026, 1, 1), None), (date(2025, 1, 1), None)),
        ((date(2026, 1, 1), None), (date(2020, 1, 1), date(2026, 1, 1))),
    ],
)
def test_policies_of_a_district_never_overlap(place, existing, new):
    make_policy(place["district"], [rule("aged_60_plus", "any", 300)], valid_from=existing[0], valid_to=existing[1])
    with scoping.unrestricted(), pytest.raises(Conflict) as refused:
        subsidy_service.create_policy(
            district_id=place["district"].id,
            name="重叠",
            valid_from=new[0],
            valid_to=new[1],
            rules=[rule("aged_60_plus", "any", 400)],
        )
    assert refused.value.code == "policy_overlap" and refused.value.status == 409
    with scoping.unrestricted():
        assert subsidy_service.list_policies(district_id=place["district"].id).total == 1


def test_adjacent_policies_and_other_districts_do_not_overlap(place):
    make_policy(place["district"], [rule("aged_60_plus", "any", 300)], valid_to=date(2026, 6, 30))
    make_policy(place["district"], [rule("aged_60_plus", "any", 400)], valid_from=date(2026, 7, 1))
    make_policy(DistrictFactory(), [rule("aged_60_plus", "any", 300)])
    with scoping.unrestricted():
        assert subsidy_service.policy_in_force(place["district"].id, date(2026, 6, 30)).rules[0].amount_fen == 300
        assert subsidy_service.policy_in_force(place["district"].id, date(2026, 7, 1)).rules[0].amount_fen == 400
        assert subsidy_service.policy_in_force(place["district"].id, date(2025, 12, 31)) is None


@pytest.mark.parametrize(
    ("fields", "rules", "field"),
    [
        ({"valid_to": date(2025, 12, 31)}, [rule("aged_60_plus", "any", 300)], "valid_to"),
        ({}, [], "rules"),
        ({}, [rule("aged_60_plus", "any", 300), rule("aged_60_plus", "any", 500)], "rules"),
        ({}, [rule("aged_60_plus", "any", 300, unit="per_day", max_per_day=1)], "rules"),
        ({}, [rule("aged_60_plus", "any", 0)], "rules"),
        ({}, [rule("aged_60_plus", "any", 3.5)], "rules"),
        ({}, [rule("aged_60_plus", "any", 300, min_price_fen=-1)], "rules"),
        ({}, [rule("aged_60_plus", "any", 300, max_per_month=0)], "rules"),
        ({}, [rule("aged_70_plus", "any", 300)], "rules"),
        ({}, [rule("aged_60_plus", "brunch", 300)], "rules"),
        ({}, [rule("aged_60_plus", "any", 300, unit="per_week")], "rules"),
        ({}, [rule("aged_60_plus", "any", 300, discount=1)], "rules"),
        ({"operator_allowance_fen": -100}, [rule("aged_60_plus", "any", 300)], "operator_allowance_fen"),
        ({"operator_allowance_fen": 2.5}, [rule("aged_60_plus", "any", 300)], "operator_allowance_fen"),
    ],
)
def test_invalid_policies_are_refused(place, fields, rules, field):
    with scoping.unrestricted(), pytest.raises(ValidationFailed) as refused:
        subsidy_service.create_policy(
            district_id=place["district"].id, name="无效", valid_from=date(2026, 1, 1), rules=rules, **fields
        )
    assert field in refused.value.errors
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SubsidyPolicy)) == 0


def test_duplicate_and_per_day_errors_name_the_rule(place):
    with scoping.unrestricted(), pytest.raises(ValidationFailed) as refused:
        subsidy_service.create_policy(
            district_id=place["district"].id,
            name="无效",
            valid_from=date(2026, 1, 1),
            rules=[
                rule("aged_60_plus", "any", 300),
                rule("aged_60_plus", "any", 500),
                rule("subsistence", "lunch", 800, unit="per_day", max_per_day=2),
            ],
        )
    assert refused.value.errors["rules"] == [
        "1: slot: Each category and slot once per policy.",
        "2: max_per_day: A per-day rule is paid once a day; it takes no max_per_day.",
    ]


def test_who_may_create(as_user, place):
    other = DistrictFactory()
    body = {"name": "政策", "valid_from": date(2026, 1, 1), "rules": [rule("aged_60_plus", "any", 300)]}
    with as_user(officer(place["district"])):
        created = subsidy_service.create_policy(district_id=place["district"].id, **body)
        assert created.created_by_id is not None
        with pytest.raises(NotFound):
            subsidy_service.create_policy(district_id=other.id, **body)
    with as_user(canteen_staff(place["canteen"])), pytest.raises(Forbidden):
        subsidy_service.create_policy(district_id=place["district"].id, **body)
    with as_user(kitchen_staff(KitchenFactory(district=place["district"]))), pytest.raises(Forbidden):
        subsidy_service.create_policy(district_id=place["district"].id, **body)
    with as_user(admin()):
        assert subsidy_service.create_policy(district_id=other.id, **body).district_id == other.id


def test_who_may_read(as_user, place):
    other = DistrictFactory()
    mine = make_policy(place["district"], [rule("aged_60_plus", "any", 300)])
    theirs = make_policy(other, [rule("aged_60_plus", "any", 300)])
    with as_user(officer(place["district"])):
        assert subsidy_service.get_policy(mine.id).id == mine.id
        with pytest.raises(NotFound):
            subsidy_service.get_policy(theirs.id)
        assert [p.id for p in subsidy_service.list_policies().items] == [mine.id]
        assert subsidy_service.policy_in_force(other.id, MARCH_2) is None
    with as_user(canteen_staff(place["canteen"])):
        # staff read the policy in force at their canteen
        assert subsidy_service.policy_in_force(place["district"].id, MARCH_2).id == mine.id
        assert [p.id for p in subsidy_service.list_policies().items] == [mine.id]
        assert db.session.scalars(sa.select(SubsidyRule).order_by(SubsidyRule.id)).all() == mine.rules
    with as_user(kitchen_staff(KitchenFactory(district=place["district"]))):
        assert subsidy_service.list_policies().total == 0
        with pytest.raises(NotFound):
            subsidy_service.get_policy(mine.id)
        assert db.session.scalars(sa.select(SubsidyRule)).all() == []
    with as_user(admin()):
        assert {p.id for p in subsidy_service.list_policies().items} >= {mine.id, theirs.id}


def test_list_filters(place):
    make_policy(place["district"], [rule("aged_60_plus", "any", 300)], valid_to=date(2026, 6, 30))
    later = make_policy(place["district"], [rule("aged_60_plus", "any", 400)], valid_from=date(2026, 7, 1))
    make_policy(DistrictFactory(), [rule("aged_60_plus", "any", 300)])
    with scoping.unrestricted():
        district_page = subsidy_service.list_policies(district_id=place["district"].id)
        assert district_page.total == 2 and district_page.items[0].id == later.id  # newest first
        on = subsidy_service.list_policies(district_id=place["district"].id, on=date(2026, 8, 1))
        assert [p.id for p in on.items] == [later.id]


# --- ending policies -------------------------------------------------------------------------
def test_end_policy_and_start_a_successor(as_user, place, no_usage_checks):
    policy = make_policy(place["district"], [rule("aged_60_plus", "any", 300)])
    user = officer(place["district"])
    with as_user(user):
        ended = subsidy_service.end_policy(policy.id, valid_to=date(2026, 6, 30))
        assert ended.valid_to == date(2026, 6, 30) and ended.ended_by_id == user.id and ended.ended_at is not None
        successor = subsidy_service.create_policy(
            district_id=place["district"].id,
            name="新政策",
            valid_from=date(2026, 7, 1),
            rules=[rule("aged_60_plus", "any", 400)],
        )
        # shortening again is allowed; extending beyond the end is not
        assert subsidy_service.end_policy(policy.id, valid_to=date(2026, 5, 31)).valid_to == date(2026, 5, 31)
        with pytest.raises(ValidationFailed) as extended:
            subsidy_service.end_policy(policy.id, valid_to=date(2026, 6, 30))
        assert extended.value.code == "policy_cannot_extend"
        with pytest.raises(ValidationFailed) as before_start:
            subsidy_service.end_policy(successor.id, valid_to=date(2026, 6, 30))
        assert "valid_to" in before_start.value.errors
        assert subsidy_service.end_policy(successor.id, valid_to=date(2026, 7, 1)).valid_to == date(2026, 7, 1)


def test_end_policy_not_before_a_meal_used_it(place, no_usage_checks):
    policy = make_policy(place["district"], [rule("aged_60_plus", "any", 300)])
    asked = []

    def last_meal(checked: SubsidyPolicy) -> date | None:
        asked.append(checked.id)
        return date(2026, 3, 10) if checked.id == policy.id else None

    assert subsidy_service.register_usage_check(last_meal) is last_meal
    subsidy_service.register_usage_check(last_meal)  # registering twice changes nothing
    assert no_usage_checks == [last_meal]
    with scoping.unrestricted():
        with pytest.raises(Conflict) as refused:
            subsidy_service.end_policy(policy.id, valid_to=date(2026, 3, 9))
        assert refused.value.code == "policy_in_use" and refused.value.status == 409
        assert "2026-03-10" in refused.value.message
        assert subsidy_service.end_policy(policy.id, valid_to=date(2026, 3, 10)).valid_to == date(2026, 3, 10)
    assert asked == [policy.id, policy.id]


def test_without_usage_checks_nothing_is_in_use(place, no_usage_checks):
    policy = make_policy(place["district"], [rule("aged_60_plus", "any", 300)])
    assert subsidy_service.last_used_on(policy) is None
    with scoping.unrestricted():
        assert subsidy_service.end_policy(policy.id, valid_to=date(2026, 1, 1)).valid_to == date(2026, 1, 1)


def test_who_may_end(as_user, place):
    policy = make_policy(place["district"], [rule("aged_60_plus", "any", 300)])
    with as_user(officer(DistrictFactory())), pytest.raises(NotFound):
        subsidy_service.end_policy(policy.id, valid_to=date(2026, 6, 30))
    with as_user(canteen_staff(place["canteen"])), pytest.raises(Forbidden):
        subsidy_service.end_policy(policy.id, valid_to=date(2026, 6, 30))
    with as_user(admin()):
        assert subsidy_service.end_policy(policy.id, valid_to=date(2026, 6, 30)).valid_to == date(2026, 6, 30)


# --- two officers at once --------------------------------------------------------------------
def _advisory_lock_modes() -> set[str]:
    query = "SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    return set(db.session.execute(sa.text(query)).scalars())


def test_pricing_shares_the_policy_lock_that_writers_hold_alone(place, backend):
    if backend != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite has one writer at a time anyway")
    person = resident(place["district"], birth=date(1950, 5, 1))
    assert _advisory_lock_modes() == set()
    make_policy(place["district"], [rule("aged_60_plus", "any", 300)])
    assert _advisory_lock_modes() == {"ExclusiveLock"}
    _decide(person, place["canteen"], MARCH_2)
    assert _advisory_lock_modes() == {"ExclusiveLock", "ShareLock"}


@pytest.mark.no_db
def test_concurrent_overlapping_policies_one_wins(new_database):
    """Two transactions create overlapping policies for one district at the same time: the second
    waits for the first (advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), then sees it."""
    import flask_migrate

    from canteen.core.db import transaction
    from canteen.org import service as org_service
    from tests.conftest import make_app

    app = make_app(new_database("policy_race"))
    with app.app_context():
        flask_migrate.upgrade()
        with transaction():
            district_id = org_service.create_district(code="639902", name="并发政策区").id
        db.session.remove()

    created, outcomes = threading.Event(), {}
    body = {"district_id": district_id, "valid_from": date(2026, 1, 1), "rules": [rule("aged_60_plus", "any", 300)]}

    def first():
        with app.app_context():
            try:
                with transaction():
                    subsidy_service.create_policy(name="先到", **body)
                    created.set()
                    time.sleep(0.5)  # still uncommitted while the second one tries
                outcomes["first"] = "created"
            finally:
                created.set()
                db.session.remove()

    def second():
        created.wait(10)
        with app.app_context():
            try:
                with transaction():
                    subsidy_service.create_policy(name="后到", **body)
                outcomes["second"] = "created"
            except Conflict as error:
                outcomes["second"] = error.code
            finally:
                db.session.remove()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with app.app_context():
        try:
            names = db.session.scalars(sa.select(SubsidyPolicy.name)).all()
        finally:
            db.session.remove()
            db.engine.dispose()
    assert outcomes == {"first": "created", "second": "policy_overlap"}
    assert names == ["先到"]
