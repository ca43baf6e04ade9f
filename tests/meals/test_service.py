"""Recording meals through the service: the subsidy decided once and stored with its rule (DESIGN.md
"The money path, exactly"), caps counted from the resident's earlier valid meals, every refusal
code writing nothing, warnings, voids, frozen months, idempotent retries, offline batches and the
daily cash-up."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.core import clock, scoping
from canteen.core.audit_log import AuditEntry
from canteen.core.errors import CanteenError, Conflict, Forbidden, NotFound, ValidationFailed
from canteen.extensions import db
from canteen.meals import service as meal_service
from canteen.meals.models import IdempotencyKey, MealRecord
from canteen.meals.schemas import MealCreateSchema, MealSchema
from canteen.residents import service as resident_service
from canteen.subsidies import service as subsidy_service
from tests.factories import CanteenFactory, DistrictFactory, canteen_staff, kitchen_staff, officer
from tests.meals.conftest import meal_fields, new_key, record, resident
from tests.subsidies.conftest import make_policy, rule


def _last_month(day: int) -> date:
    """`day` of the previous calendar month (always in the past, whatever today is)."""
    return (clock.today().replace(day=1) - timedelta(days=1)).replace(day=day)


def _as(user):
    return scoping.acting_as(auth_service.scope_for(user))


def _count(model) -> int:
    with scoping.unrestricted():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _codes(meal) -> list[str]:
    return [warning["code"] for warning in meal.warnings]


def _add_category(person, category, valid_from, valid_to=None):
    with scoping.unrestricted():
        resident_service.add_category(person.id, category=category, valid_from=valid_from, valid_to=valid_to)
    db.session.commit()


# --- the subsidy decided and stored --------------------------------------------------------------
def test_a_meal_stores_the_subsidy_the_copay_and_the_rule_applied(site):
    person = resident(site["district"], birth=date(1950, 5, 1))
    meal = record(site["staff"], **meal_fields(site["canteen"], person, price_fen=1500))
    rule_60 = next(r for r in site["policy"].rules if r.category == "aged_60_plus")
    assert (meal.subsidy_fen, meal.copay_fen, meal.price_fen) == (300, 1200, 1500)
    assert (meal.rule_id, meal.policy_id, meal.subsidy_category) == (rule_60.id, site["policy"].id, "aged_60_plus")
    assert meal.recorded_by_id == site["staff"].id and meal.district_id == site["district"].id
    assert meal.resident_name == person.name and meal.status == "valid"


def test_best_rule_across_overlapping_categories(site):
    person = resident(site["district"], birth=date(1940, 5, 1))  # 80+ and 60+
    _add_category(person, "subsistence", date(2020, 1, 1))
    day = _last_month(10)
    lunch = record(site["staff"], **meal_fields(site["canteen"], person, served_on=day, slot="lunch"))
    dinner = record(site["staff"], **meal_fields(site["canteen"], person, served_on=day, slot="dinner"))
    assert (lunch.subsidy_category, lunch.subsidy_fen) == ("subsistence", 800)  # lunch-only rule, largest
    assert (dinner.subsidy_category, dinner.subsidy_fen) == ("aged_80_plus", 500)  # 80+ beats 60+


def test_a_category_ending_mid_month_changes_the_rule_from_the_next_day(site):
    person = resident(site["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", date(2020, 1, 1), valid_to=_last_month(15))
    on_last_day = record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(15)))
    day_after = record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(16)))
    assert (on_last_day.subsidy_category, on_last_day.subsidy_fen) == ("subsistence", 800)
    assert (day_after.subsidy_category, day_after.subsidy_fen) == ("aged_60_plus", 300)


def test_a_category_starting_mid_month_applies_from_its_first_day(site):
    person = resident(site["district"], birth=date(1950, 5, 1))
    _add_category(person, "subsistence", _last_month(20))
    before = record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(19)))
    first_day = record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(20)))
    assert (before.subsidy_fen, first_day.subsidy_fen) == (300, 800)


def test_a_resident_turning_80_mid_month_gets_the_80_plus_rule_from_the_birthday(site):
    birthday = _last_month(15)
    person = resident(site["district"], birth=birthday.replace(year=birthday.year - 80))
    eve = record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(14)))
    on_the_day = record(site["staff"], **meal_fields(site["canteen"], person, served_on=birthday))
    assert (eve.subsidy_category, eve.subsidy_fen) == ("aged_60_plus", 300)
    assert (on_the_day.subsidy_category, on_the_day.subsidy_fen) == ("aged_80_plus", 500)


def test_the_subsidy_never_exceeds_the_price(site):
    person = resident(site["district"], birth=date(1940, 5, 1))
    meal = record(site["staff"], **meal_fields(site["canteen"], person, price_fen=400))
    assert (meal.subsidy_fen, meal.copay_fen) == (400, 0)


def test_no_rule_is_full_price_with_a_warning():
    district = DistrictFactory()
    canteen = CanteenFactory(district=district)
    make_policy(district, [rule("subsistence", "lunch", 800)], valid_from=date(2020, 1, 1))
    meal = record(canteen_staff(canteen), **meal_fields(canteen, resident(district), served_on=_last_month(2)))
    assert (meal.subsidy_fen, meal.copay_fen, meal.rule_id) == (0, 1500, None)
    assert _codes(meal) == ["no_subsidy_rule"]


# --- caps --------------------------------------------------------------------------------------
@pytest.fixture
def capped():
    """A district paying 60+ 4 yuan per meal, at most 2 a month; and 6 yuan per day to 低保."""
    district = DistrictFactory()
    canteen = CanteenFactory(district=district)
    make_policy(
        district,
        [
            rule("aged_60_plus", "any", 400, max_per_month=2),
            rule("subsistence", "any", 600, unit="per_day"),
        ],
        valid_from=date(2020, 1, 1),
    )
    return {"district": district, "canteen": canteen, "staff": canteen_staff(canteen)}


def test_a_monthly_cap_puts_later_meals_at_full_price_but_still_records_them(capped):
    person = resident(capped["district"], birth=date(1950, 5, 1))
    meals = [
        record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=_last_month(day)))
        for day in (3, 4, 5)
    ]
    assert [m.subsidy_fen for m in meals] == [400, 400, 0]
    assert _codes(meals[2]) == ["cap_reached"] and meals[2].copay_fen == 1500
    # a new month starts a new count
    this_month = record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=clock.today()))
    assert this_month.subsidy_fen == 400


def test_a_per_day_rule_pays_the_first_subsidised_meal_of_the_day_only():
    district = DistrictFactory()
    canteen = CanteenFactory(district=district)
    make_policy(district, [rule("subsistence", "any", 600, unit="per_day")], valid_from=date(2020, 1, 1))
    staff, person = canteen_staff(canteen), resident(district)
    _add_category(person, "subsistence", date(2020, 1, 1))
    day = _last_month(6)
    breakfast = record(staff, **meal_fields(canteen, person, served_on=day, slot="breakfast"))
    lunch = record(staff, **meal_fields(canteen, person, served_on=day, slot="lunch"))
    next_day = record(staff, **meal_fields(canteen, person, served_on=_last_month(7)))
    assert (breakfast.subsidy_fen, lunch.subsidy_fen, next_day.subsidy_fen) == (600, 0, 600)
    assert _codes(lunch) == ["cap_reached"]


def test_when_the_best_rule_is_capped_the_next_best_applies(capped):
    person = resident(capped["district"], birth=date(1950, 5, 1))  # 60+ (capped 2/month) and 低保 (per day)
    _add_category(person, "subsistence", date(2020, 1, 1))
    day = _last_month(8)
    first = record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=day, slot="breakfast"))
    second = record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=day, slot="lunch"))
    assert (first.subsidy_category, first.subsidy_fen) == ("subsistence", 600)
    assert (second.subsidy_category, second.subsidy_fen) == ("aged_60_plus", 400)


def test_a_void_frees_the_cap_and_never_reprices_later_meals(capped):
    person = resident(capped["district"], birth=date(1950, 5, 1))
    first, _, third = (
        record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=_last_month(day)))
        for day in (10, 11, 12)
    )
    assert third.subsidy_fen == 0
    with _as(capped["staff"]):
        meal_service.void_meal(first.id, reason="录错了人")
    db.session.commit()
    db.session.refresh(third)
    assert third.subsidy_fen == 0  # stored, never recomputed
    fourth = record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=_last_month(13)))
    assert fourth.subsidy_fen == 400  # the void no longer counts towards the cap


def test_caps_count_meals_at_every_canteen(capped):
    other = CanteenFactory(district=capped["district"])
    person = resident(capped["district"], birth=date(1950, 5, 1))
    record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=_last_month(3)))
    record(canteen_staff(other), **meal_fields(other, person, served_on=_last_month(4)))
    third = record(capped["staff"], **meal_fields(capped["canteen"], person, served_on=_last_month(5)))
    assert third.subsidy_fen == 0 and _codes(third) == ["cap_reached"]


# --- one meal per resident, date and slot ----------------------------------------------------------
def test_a_second_meal_for_the_slot_is_refused_at_any_canteen(site):
    other_canteen = CanteenFactory(district=site["district"], name="隔壁食堂")
    person = resident(site["district"])
    first = record(site["staff"], **meal_fields(site["canteen"], person))
    with _as(canteen_staff(other_canteen)), pytest.raises(Conflict) as refused:
        meal_service.record_meal(**meal_fields(other_canteen, person))
    assert refused.value.code == "meal_already_recorded"
    # the other canteen's staff may not open the first meal: its name and slot, not its id
    assert refused.value.details == {"canteen_name": site["canteen"].name, "slot": "lunch"}
    with _as(site["staff"]), pytest.raises(Conflict) as again:
        meal_service.record_meal(**meal_fields(site["canteen"], person))
    assert again.value.details == {"meal_id": first.id, "canteen_name": site["canteen"].name, "slot": "lunch"}


def test_many_meals_on_one_connection(site):
    """psycopg prepares a statement from its 5th use on a connection and PostgreSQL plans it
    generically from the 6th execution after that: the insert must still find the partial unique
    index then (a bound parameter in its WHERE would not)."""
    people = [resident(site["district"]) for _ in range(15)]
    meals = [record(site["staff"], **meal_fields(site["canteen"], person)) for person in people]
    assert len({meal.id for meal in meals}) == 15
    with _as(site["staff"]), pytest.raises(Conflict):
        meal_service.record_meal(**meal_fields(site["canteen"], people[-1]))


def test_a_voided_meal_frees_the_slot(site):
    person = resident(site["district"])
    first = record(site["staff"], **meal_fields(site["canteen"], person))
    with _as(site["staff"]):
        meal_service.void_meal(first.id, reason="重复")
    again = record(site["staff"], **meal_fields(site["canteen"], person))
    assert again.id != first.id and again.status == "valid"


# --- refusals write nothing ------------------------------------------------------------------------
def _refused(user, fields) -> CanteenError:
    meals, entries = _count(MealRecord), _count(AuditEntry)
    with _as(user), pytest.raises(CanteenError) as refused:
        meal_service.record_meal(**fields)
    db.session.rollback()  # as the request boundary does
    assert (_count(MealRecord), _count(AuditEntry)) == (meals, entries)
    return refused.value


def test_a_resident_not_active_on_the_date_is_refused(site):
    person = resident(site["district"])
    with scoping.unrestricted():
        resident_service.set_status(person.id, status="suspended", effective_on=_last_month(10), reason="住院")
    db.session.commit()
    error = _refused(site["staff"], meal_fields(site["canteen"], person, served_on=_last_month(10)))
    assert (error.status, error.code) == (422, "resident_inactive")
    # before the suspension the resident was active: an old meal recorded late is accepted
    assert record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(9))).id


def test_a_deceased_resident_is_refused_from_the_date_of_death(site):
    person = resident(site["district"])
    with scoping.unrestricted():
        resident_service.set_status(person.id, status="deceased", effective_on=_last_month(5), reason="民政")
    db.session.commit()
    assert _refused(site["staff"], meal_fields(site["canteen"], person)).code == "resident_inactive"


def test_a_closed_canteen_is_refused(site):
    day = _last_month(12)
    closed = CanteenFactory(district=site["district"], closed_weekdays=[day.weekday()])
    holiday = CanteenFactory(district=site["district"], closed_dates=[_last_month(13).isoformat()])
    person = resident(site["district"])
    error = _refused(canteen_staff(closed), meal_fields(closed, person, served_on=day))
    assert (error.status, error.code) == (422, "canteen_closed")
    error = _refused(canteen_staff(holiday), meal_fields(holiday, person, served_on=_last_month(13)))
    assert error.code == "canteen_closed"


def test_a_future_date_is_refused(site):
    person = resident(site["district"])
    tomorrow = clock.today() + timedelta(days=1)
    error = _refused(site["staff"], meal_fields(site["canteen"], person, served_on=tomorrow))
    assert (error.status, error.code) == (422, "served_on_in_future")


def test_served_at_must_fall_on_the_date(site):
    person = resident(site["district"])
    day = _last_month(10)
    wrong = datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=12))
    error = _refused(site["staff"], meal_fields(site["canteen"], person, served_on=day, served_at=wrong))
    assert error.errors.keys() == {"served_at"}


def test_a_frozen_month_refuses_meals_and_voids_until_released(site):
    person = resident(site["district"])
    day = _last_month(20)
    meal = record(site["staff"], **meal_fields(site["canteen"], person, served_on=day, slot="breakfast"))
    with scoping.unrestricted():
        meal_service.freeze_month(site["canteen"].id, meal_service.month_of(day))
    db.session.commit()
    error = _refused(site["staff"], meal_fields(site["canteen"], person, served_on=day))
    assert (error.status, error.code) == (409, "month_frozen")
    with _as(site["staff"]), pytest.raises(Conflict) as void_refused:
        meal_service.void_meal(meal.id, reason="录错")
    assert void_refused.value.code == "month_frozen"
    db.session.rollback()
    # another canteen's month is not frozen
    other = CanteenFactory(district=site["district"])
    assert record(canteen_staff(other), **meal_fields(other, resident(site["district"]), served_on=day)).id
    with scoping.unrestricted():
        meal_service.release_month(site["canteen"].id, meal_service.month_of(day))
    db.session.commit()
    assert record(site["staff"], **meal_fields(site["canteen"], person, served_on=day)).id


def test_an_approved_month_never_reopens(site):
    month = meal_service.month_of(_last_month(1))
    with scoping.unrestricted():
        meal_service.freeze_month(site["canteen"].id, month, approved=True)
        with pytest.raises(Conflict) as refused:
            meal_service.release_month(site["canteen"].id, month)
    assert refused.value.code == "month_frozen"
    assert meal_service.is_month_frozen(site["canteen"].id, _last_month(28))


def test_price_and_attestation_reason_are_required(site):
    person = resident(site["district"])
    error = _refused(site["staff"], meal_fields(site["canteen"], person, price_fen=None))
    assert error.errors.keys() == {"price_fen"}
    error = _refused(site["staff"], meal_fields(site["canteen"], person, verification="staff_attested"))
    assert error.errors.keys() == {"attest_reason"}


def test_who_may_record(site):
    person = resident(site["district"])
    fields = meal_fields(site["canteen"], person)
    assert _refused(site["officer"], fields).status == 403
    kitchen = CanteenFactory(district=site["district"], kind="central_kitchen")
    assert isinstance(_refused(kitchen_staff(kitchen), fields), Forbidden)
    other_staff = canteen_staff(CanteenFactory(district=site["district"]))
    assert isinstance(_refused(other_staff, fields), NotFound)  # another canteen's counter


def test_staff_serve_active_residents_of_other_districts_but_cannot_probe_inactive_ones(site):
    elsewhere = DistrictFactory()
    visitor = resident(elsewhere, birth=date(1950, 5, 1))
    meal = record(site["staff"], **meal_fields(site["canteen"], visitor))
    assert meal.subsidy_fen == 300  # the canteen's district policy pays
    gone = resident(elsewhere)
    with scoping.unrestricted():
        resident_service.set_status(gone.id, status="moved_out", effective_on=clock.today(), reason="搬走")
    db.session.commit()
    error = _refused(site["staff"], meal_fields(site["canteen"], gone, slot="dinner"))
    assert (error.status, error.code) == (404, "resident_not_found")


def test_a_meal_by_card_number_finds_the_resident(site):
    person = resident(site["district"], card_no="XN-7788")
    fields = meal_fields(site["canteen"], person)
    del fields["resident_id"]
    meal = record(site["staff"], **fields, card_no="xn-7788")
    assert meal.resident_id == person.id


# --- warnings ------------------------------------------------------------------------------------------
def test_warnings_for_delivery_hours_and_proxy_collection(site):
    person = resident(site["district"], birth=date(1950, 5, 1))
    late = datetime.combine(_last_month(9), datetime.min.time().replace(hour=15, minute=5))
    meal = record(
        site["staff"],
        **meal_fields(
            site["canteen"], person, served_on=_last_month(9), served_at=late, mode="delivery", collected_by="女儿李梅"
        ),
    )
    assert _codes(meal) == ["outside_opening_hours", "not_registered_for_delivery", "collected_by_proxy"]
    assert meal.subsidy_fen == 300  # warnings are not refusals
    on_time = datetime.combine(_last_month(9), datetime.min.time().replace(hour=7, minute=30))
    quiet = record(
        site["staff"],
        **meal_fields(site["canteen"], person, served_on=_last_month(9), served_at=on_time, slot="breakfast"),
    )
    assert quiet.warnings == []


# --- voids --------------------------------------------------------------------------------------------
def test_a_void_keeps_the_record_with_who_when_and_why(site):
    person = resident(site["district"])
    meal = record(site["staff"], **meal_fields(site["canteen"], person))
    with _as(site["officer"]):
        voided = meal_service.void_meal(meal.id, reason="  重复录入 ")
    db.session.commit()
    assert (voided.status, voided.void_reason, voided.voided_by_id) == ("void", "重复录入", site["officer"].id)
    assert voided.voided_at is not None and voided.subsidy_fen == meal.subsidy_fen
    with _as(site["staff"]), pytest.raises(Conflict) as again:
        meal_service.void_meal(meal.id, reason="再来")
    assert again.value.code == "meal_already_void"
    with _as(site["staff"]), pytest.raises(ValidationFailed):
        meal_service.void_meal(meal.id, reason="  ")


def test_a_void_is_audited(site):
    person = resident(site["district"])
    meal = record(site["staff"], **meal_fields(site["canteen"], person))
    from canteen.core.audit_log import Actor, set_actor

    set_actor(Actor(site["staff"].id, site["staff"].username, "test void"))
    try:
        with _as(site["staff"]):
            meal_service.void_meal(meal.id, reason="错")
        db.session.commit()
    finally:
        set_actor(None)
    with scoping.unrestricted():
        actions = db.session.execute(
            sa.select(AuditEntry.action, AuditEntry.after).where(
                AuditEntry.entity == "meals", AuditEntry.entity_id == meal.id
            )
        ).all()
    assert [a for a, _ in actions] == ["insert", "update"]
    assert actions[1].after["status"] == "void"


def test_the_database_refuses_to_delete_or_rewrite_a_meal(site):
    person = resident(site["district"])
    meal = record(site["staff"], **meal_fields(site["canteen"], person))
    for statement in (
        sa.delete(MealRecord).where(MealRecord.id == meal.id),
        sa.update(MealRecord).where(MealRecord.id == meal.id).values(subsidy_fen=0, copay_fen=1500),
    ):
        savepoint = db.session.begin_nested()
        with scoping.unrestricted(), pytest.raises(sa.exc.DatabaseError):
            db.session.execute(statement)
        savepoint.rollback()


# --- policies used by meals ----------------------------------------------------------------------------
def test_a_policy_cannot_end_before_a_meal_it_paid_for(site):
    person = resident(site["district"], birth=date(1950, 5, 1))
    record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(20)))
    with scoping.unrestricted(), pytest.raises(Conflict) as refused:
        subsidy_service.end_policy(site["policy"].id, valid_to=_last_month(19))
    assert refused.value.code == "policy_in_use"
    with scoping.unrestricted():
        assert subsidy_service.end_policy(site["policy"].id, valid_to=_last_month(20)).valid_to == _last_month(20)


# --- idempotency -----------------------------------------------------------------------------------------
def _once(user, key, fields):
    with _as(user):
        answer = meal_service.record_meal_once(key, fields, render=MealSchema().dump)
    db.session.commit()
    return answer


def test_the_same_key_and_body_replays_the_first_answer(site):
    person = resident(site["district"])
    key, fields = new_key(), meal_fields(site["canteen"], person)
    first = _once(site["staff"], key, fields)
    again = _once(site["staff"], key, dict(fields))
    assert (first.status, first.replayed, again.status, again.replayed) == (201, False, 201, True)
    assert again.body == first.body
    with scoping.unrestricted():
        assert db.session.scalar(sa.select(sa.func.count()).where(MealRecord.resident_id == person.id)) == 1


def test_the_same_key_with_another_body_is_refused(site):
    person = resident(site["district"])
    key = new_key()
    _once(site["staff"], key, meal_fields(site["canteen"], person))
    with _as(site["staff"]), pytest.raises(ValidationFailed) as refused:
        meal_service.record_meal_once(
            key, meal_fields(site["canteen"], person, slot="dinner"), render=MealSchema().dump
        )
    assert refused.value.code == "idempotency_key_reused"


def test_a_refused_request_keeps_no_key_so_a_retry_is_evaluated_again(site):
    person = resident(site["district"])
    key = new_key()
    fields = meal_fields(site["canteen"], person, served_on=clock.today() + timedelta(days=1))
    with _as(site["staff"]), pytest.raises(ValidationFailed):
        meal_service.record_meal_once(key, fields, render=MealSchema().dump)
    db.session.rollback()
    assert _count(IdempotencyKey) == 0
    retry = _once(site["staff"], key, meal_fields(site["canteen"], person))
    assert retry.status == 201 and not retry.replayed


def test_keys_belong_to_one_account(site):
    person, other = resident(site["district"]), resident(site["district"])
    colleague = canteen_staff(site["canteen"])
    key = new_key()
    first = _once(site["staff"], key, meal_fields(site["canteen"], person))
    second = _once(colleague, key, meal_fields(site["canteen"], other))
    assert not second.replayed and second.body["id"] != first.body["id"]


def test_old_keys_are_purged_after_the_retention_days(site, app):
    person = resident(site["district"])
    _once(site["staff"], new_key(), meal_fields(site["canteen"], person))
    days = app.config["MEAL_IDEMPOTENCY_DAYS"]
    assert meal_service.purge_idempotency_keys(now=clock.now() + timedelta(days=days) - timedelta(hours=1)) == 0
    assert meal_service.purge_idempotency_keys(now=clock.now() + timedelta(days=days, hours=1)) == 1
    assert _count(MealRecord) == 1  # the meal keeps its key


# --- offline batches ----------------------------------------------------------------------------------------
def _batch(user, items):
    with _as(user):
        results = meal_service.record_meal_batch(items, load=MealCreateSchema().load, render=MealSchema().dump)
    db.session.commit()
    return results


def _item(canteen, person, key=None, **extra):
    body = meal_fields(canteen, person, **extra)
    body["served_on"] = body["served_on"].isoformat()
    return {"idempotency_key": key or new_key(), **body}


def test_a_batch_answers_each_item_and_one_bad_item_blocks_nothing(site):
    people = [resident(site["district"]) for _ in range(3)]
    items = [
        _item(site["canteen"], people[0]),
        _item(site["canteen"], people[1], served_on=clock.today() + timedelta(days=2)),  # refused: future
        {"idempotency_key": new_key(), "canteen_id": site["canteen"].id},  # refused: invalid
        _item(site["canteen"], people[0], slot="lunch"),  # refused: the same lunch again
        _item(site["canteen"], people[2], slot="dinner"),
        "not an object",
        {k: v for k, v in _item(site["canteen"], people[1]).items() if k != "idempotency_key"},  # no key
    ]
    results = _batch(site["staff"], items)
    assert [r.status for r in results] == ["created", "refused", "refused", "refused", "created", "refused", "refused"]
    assert [r.error["code"] for r in results if r.error] == [
        "served_on_in_future",
        "validation_error",
        "meal_already_recorded",
        "validation_error",
        "idempotency_key_missing",
    ]
    with scoping.unrestricted():
        recorded = set(db.session.scalars(sa.select(MealRecord.resident_id)))
    assert recorded == {people[0].id, people[2].id}


def test_a_retried_batch_creates_nothing_twice(site):
    people = [resident(site["district"]) for _ in range(4)]
    items = [_item(site["canteen"], person) for person in people]
    first = _batch(site["staff"], items)
    again = _batch(site["staff"], items)
    assert [r.status for r in first] == ["created"] * 4
    assert [r.status for r in again] == ["replayed"] * 4
    assert [r.meal["id"] for r in again] == [r.meal["id"] for r in first]
    assert _count(MealRecord) == 4


def test_a_batch_holds_at_most_500_meals(site):
    with _as(site["staff"]), pytest.raises(ValidationFailed) as refused:
        meal_service.record_meal_batch([{}] * 501, load=MealCreateSchema().load, render=MealSchema().dump)
    assert refused.value.code == "batch_too_large"


# --- listing, cash-up, preview, roster ------------------------------------------------------------------------
def test_the_cash_up_totals_each_counter_account(site):
    colleague = canteen_staff(site["canteen"])
    people = [resident(site["district"], birth=date(1950, 5, 1)) for _ in range(3)]
    day = _last_month(14)
    record(site["staff"], **meal_fields(site["canteen"], people[0], served_on=day, payment_method="cash"))
    record(site["staff"], **meal_fields(site["canteen"], people[1], served_on=day, payment_method="wechat"))
    voided = record(colleague, **meal_fields(site["canteen"], people[2], served_on=day, payment_method="cash"))
    record(colleague, **meal_fields(site["canteen"], people[2], served_on=day, slot="dinner", price_fen=1000))
    with _as(colleague):
        meal_service.void_meal(voided.id, reason="退餐")
    with _as(site["staff"]):
        cash = meal_service.cash_up(site["canteen"].id, day)
    by_name = {account.username: account for account in cash.accounts}
    mine, theirs = by_name[site["staff"].username], by_name[colleague.username]
    assert (mine.meal_count, mine.copay_fen, mine.copay_by_method) == (2, 2400, {"cash": 1200, "wechat": 1200})
    assert (theirs.meal_count, theirs.copay_fen, theirs.void_count, theirs.void_copay_fen) == (1, 700, 1, 1200)
    assert (cash.total.meal_count, cash.total.subsidy_fen, cash.total.copay_fen) == (3, 900, 3100)


def test_listing_filters_within_scope(site):
    people = [resident(site["district"]) for _ in range(2)]
    lunch = record(site["staff"], **meal_fields(site["canteen"], people[0]))
    dinner = record(site["staff"], **meal_fields(site["canteen"], people[1], slot="dinner"))
    elsewhere = CanteenFactory()
    record(canteen_staff(elsewhere), **meal_fields(elsewhere, resident(elsewhere.district)))
    with _as(site["staff"]):
        assert [m.id for m in meal_service.list_meals().items] == [dinner.id, lunch.id]
        assert [m.id for m in meal_service.list_meals(slot="lunch").items] == [lunch.id]
        assert meal_service.list_meals(date_to=clock.today() - timedelta(days=1)).total == 0
    with _as(officer(elsewhere.district)):
        assert meal_service.list_meals(canteen_id=site["canteen"].id).total == 0


def test_the_preview_shows_what_recording_would_decide_and_writes_nothing(site):
    person = resident(site["district"], birth=date(1950, 5, 1))
    with _as(site["staff"]):
        preview = meal_service.preview_meal(
            canteen_id=site["canteen"].id, resident_id=person.id, served_on=clock.today(), slot="lunch", price_fen=1500
        )
    assert (preview.decision.subsidy_fen, preview.decision.copay_fen, preview.already_recorded) == (300, 1200, None)
    assert _count(MealRecord) == 0
    meal = record(site["staff"], **meal_fields(site["canteen"], person))
    with _as(site["staff"]):
        again = meal_service.preview_meal(
            canteen_id=site["canteen"].id, resident_id=person.id, served_on=clock.today(), slot="lunch", price_fen=1500
        )
    assert again.already_recorded.id == meal.id


def test_the_roster_holds_home_residents_and_recent_eaters_only(site):
    home = resident(site["district"], home_canteen_id=site["canteen"].id)
    visitor = resident(DistrictFactory())
    stranger = resident(site["district"])
    record(site["staff"], **meal_fields(site["canteen"], visitor))
    with _as(site["staff"]):
        roster = {r.id for r in meal_service.counter_roster(site["canteen"].id)}
    assert roster == {home.id, visitor.id}
    assert stranger.id not in roster


# --- the civil-affairs feed sees meals -----------------------------------------------------------------------
def test_a_death_reported_late_lists_the_meals_recorded_after_it(site, api):
    from tests.residents.test_imports import FEED, upload
    from tests.residents.workbooks import feed_csv

    person = resident(site["district"])
    before = record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(9)))
    after = [
        record(site["staff"], **meal_fields(site["canteen"], person, served_on=_last_month(day))) for day in (10, 11)
    ]
    with _as(site["staff"]):
        meal_service.void_meal(after[1].id, reason="退餐")
    db.session.commit()
    rows = [{"id_number": person.id_number, "event": "死亡", "effective_on": _last_month(10).isoformat()}]
    response = api(site["officer"]).post(FEED, **upload(feed_csv(rows), "feed.csv"))
    (matched,) = response.get_json()["matched"]
    assert matched["meals_after_effective_date"] == [
        {
            "id": after[0].id,
            "served_on": _last_month(10).isoformat(),
            "slot": "lunch",
            "canteen_name": site["canteen"].name,
            "subsidy_fen": after[0].subsidy_fen,
        }
    ]
    assert before.id not in {m["id"] for m in matched["meals_after_effective_date"]}
