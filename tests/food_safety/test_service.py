"""Food-safety rules through the services, each at its boundary: 124 g vs 125 g, disposal at 47 h 59 min
vs 48 h, 8.0 vs 8.1 °C (and 0.0/−0.1, −18.0/−17.9), a certificate expiring today; the deadline rules
(checklist, served dishes without samples, readings) raising deviations once; the deviation workflow
and its revisions; who may do what; and nothing written on a refusal."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.core.errors import CanteenError, Conflict, Forbidden, NotFound, ValidationFailed
from canteen.extensions import db
from canteen.food_safety import rules
from canteen.food_safety import service as fs
from canteen.food_safety.models import (
    ChecklistEntry,
    Deviation,
    DeviationEvent,
    HealthCertificate,
    MorningCheck,
    RetainedSample,
    TemperatureReading,
)
from canteen.org.models import CanteenKind
from tests.factories import CanteenFactory, DistrictFactory, KitchenFactory, canteen_staff, kitchen_staff, officer
from tests.food_safety.conftest import LONG_AGO, acting, as_user, at, count, make_site, sample_fields


def _deviations(kind: str | None = None, site=None) -> list[Deviation]:
    statement = sa.select(Deviation).order_by(Deviation.id)
    if kind is not None:
        statement = statement.where(Deviation.kind == kind)
    if site is not None:
        statement = statement.where(Deviation.site_id == site.canteen.id)
    with scoping.unrestricted():
        return list(db.session.scalars(statement))


def _refused(user, call, *args, **kwargs) -> CanteenError:
    """Call as `user`, expect a refusal, roll back like the request would; the error."""
    with acting(user), pytest.raises(CanteenError) as refused:
        call(*args, **kwargs)
    db.session.rollback()
    return refused.value


# --- the rules' numbers ------------------------------------------------------------------------------
def test_cooked_food_is_held_safely_at_or_above_60_or_at_or_below_8_degrees():
    assert rules.cooked_food_held_safely(600) and rules.cooked_food_held_safely(80)
    assert not rules.cooked_food_held_safely(599) and not rules.cooked_food_held_safely(81)


def test_a_certificate_is_valid_one_year():
    assert rules.certificate_default_expiry(date(2025, 3, 10)) == date(2026, 3, 9)
    assert rules.certificate_longest_expiry(date(2025, 3, 10)) == date(2026, 3, 10)
    assert rules.certificate_longest_expiry(date(2024, 2, 29)) == date(2025, 2, 28)


def test_temperatures_are_tenths_with_one_decimal_at_most():
    assert rules.to_tenths("8.1") == 81 and rules.to_tenths(-18) == -180 and rules.to_tenths(8.10) == 81
    with pytest.raises(ValueError):
        rules.to_tenths("8.05")
    assert rules.to_celsius(81) == 8.1


def test_a_setting_looser_than_the_law_is_refused(app, monkeypatch):
    monkeypatch.setitem(app.config, "FOOD_SAFETY_DEVICE_LIMITS_C", {"refrigerator": [0, 10]})
    with pytest.raises(rules.SettingError):
        rules.device_limits("refrigerator")
    monkeypatch.setitem(app.config, "FOOD_SAFETY_DEVICE_LIMITS_C", {"refrigerator": [1, 5], "freezer": [None, -20]})
    assert rules.device_limits("refrigerator") == (10, 50) and rules.device_limits("freezer") == (None, -200)


def test_checklist_items_are_configurable(app, monkeypatch):
    own = {"key": "gas_safety", "label": "Gas safety", "label_zh": "燃气安全检查"}
    monkeypatch.setitem(app.config, "FOOD_SAFETY_CHECKLIST_ITEMS", ["pest_control", own])
    assert [item.key for item in rules.checklist_items()] == ["pest_control", "gas_safety"]
    monkeypatch.setitem(app.config, "FOOD_SAFETY_CHECKLIST_ITEMS", ["no_such_item"])
    with pytest.raises(rules.SettingError):
        rules.checklist_items()


# --- retained samples ------------------------------------------------------------------------------------
def test_a_sample_of_125_g_raises_nothing_and_one_of_124_g_an_underweight_deviation(site):
    enough = as_user(site.staff, fs.record_sample, **sample_fields(site, dish="米饭", weight_g=125))
    light = as_user(site.staff, fs.record_sample, **sample_fields(site, dish="炒青菜", weight_g=124))
    assert not enough.underweight and light.underweight  # recorded as weighed: it is still the evidence kept
    (deviation,) = _deviations(rules.SAMPLE_UNDERWEIGHT)
    assert deviation.source_ref == f"sample:{light.id}" and deviation.site_id == site.canteen.id
    assert deviation.details["weight_g"] == 124 and deviation.details["minimum_g"] == 125
    assert deviation.occurred_at == light.stored_at and deviation.status == "open"


def test_an_unsealed_sample_raises_a_deviation(site):
    sample = as_user(site.staff, fs.record_sample, **sample_fields(site, container_sealed=False))
    (deviation,) = _deviations(rules.SAMPLE_UNSEALED)
    assert deviation.source_ref == f"sample:{sample.id}"
    assert _deviations(rules.SAMPLE_UNDERWEIGHT) == []


def test_samples_are_kept_in_a_sample_refrigerator_of_the_site(site):
    error = _refused(site.staff, fs.record_sample, **sample_fields(site, device_id=site.fridge.id))
    assert error.code == "device_not_sample_refrigerator" and "device_id" in error.errors
    other = make_site(site.district)
    assert _refused(site.staff, fs.record_sample, **sample_fields(site, device_id=other.sample_fridge.id)).status == 404
    error = _refused(site.admin, fs.record_sample, **sample_fields(site, device_id=other.sample_fridge.id))
    assert error.errors == {"device_id": ["Not at this site."]}
    assert count(RetainedSample) == 0


def test_one_sample_per_dish_and_slot_whatever_the_spacing_and_case(site):
    as_user(site.staff, fs.record_sample, **sample_fields(site, dish="Tofu  soup"))
    error = _refused(site.staff, fs.record_sample, **sample_fields(site, dish=" tofu soup "))
    assert isinstance(error, Conflict) and error.code == "sample_exists"
    as_user(site.staff, fs.record_sample, **sample_fields(site, dish="tofu soup", slot="dinner"))
    assert count(RetainedSample) == 2


def test_a_sample_is_stored_neither_in_the_future_nor_before_its_day(site):
    served_on = clock.today() - timedelta(days=2)
    error = _refused(site.staff, fs.record_sample, **sample_fields(site, stored_at=clock.now() + timedelta(hours=1)))
    assert error.code == "time_in_future"
    error = _refused(
        site.staff, fs.record_sample, **sample_fields(site, stored_at=at(served_on, "00:00") - timedelta(minutes=1))
    )
    assert error.errors == {"stored_at": ["Before the day it was served."]}
    error = _refused(site.staff, fs.record_sample, **sample_fields(site, served_on=clock.today() + timedelta(days=1)))
    assert error.code == "date_in_future"
    assert count(RetainedSample) == 0 and count(Deviation) == 0


def test_disposal_at_47_h_59_min_is_refused_and_at_48_h_accepted(site):
    served_on = clock.today() - timedelta(days=3)
    sample = as_user(
        site.staff, fs.record_sample, **sample_fields(site, served_on=served_on, stored_at=at(served_on, "11:30"))
    )
    too_early = sample.stored_at + timedelta(hours=47, minutes=59)
    error = _refused(site.staff, fs.dispose_sample, sample.id, disposed_at=too_early)
    assert isinstance(error, Conflict) and error.code == "sample_retention_not_over"
    db.session.refresh(sample)
    assert sample.disposed_at is None  # nothing written
    disposed = as_user(site.staff, fs.dispose_sample, sample.id, disposed_at=sample.stored_at + timedelta(hours=48))
    assert disposed.disposed_at == sample.stored_at + timedelta(hours=48) and disposed.disposed_by_id == site.staff.id
    assert _refused(site.staff, fs.dispose_sample, sample.id).code == "sample_already_disposed"


def test_a_sample_is_not_disposed_of_in_the_future_or_by_an_officer(site):
    sample = as_user(site.staff, fs.record_sample, **sample_fields(site))
    assert _refused(site.staff, fs.dispose_sample, sample.id, disposed_at=clock.now() + timedelta(hours=1)).code == (
        "time_in_future"
    )
    assert isinstance(_refused(site.officer, fs.dispose_sample, sample.id), Forbidden)


def test_served_dishes_are_those_declared_plus_those_with_samples(site):
    day = clock.today() - timedelta(days=2)
    as_user(
        site.staff,
        fs.declare_served_dishes,
        site_id=site.canteen.id,
        day=day,
        slot="lunch",
        dishes=["米饭", "红烧肉", "米饭"],
    )
    as_user(site.staff, fs.record_sample, **sample_fields(site, dish="紫菜汤"))
    as_user(site.staff, fs.record_sample, **sample_fields(site, dish="红烧肉"))
    assert fs.served_dishes_of(site.canteen.id, day, "lunch") == ["米饭", "红烧肉", "紫菜汤"]


def test_a_slot_with_samples_is_never_declared_not_served_and_the_reverse(site):
    day = clock.today() - timedelta(days=2)
    as_user(site.staff, fs.record_sample, **sample_fields(site))
    error = _refused(
        site.staff, fs.declare_served_dishes, site_id=site.canteen.id, day=day, slot="lunch", dishes=[], not_served=True
    )
    assert error.code == "slot_has_samples"
    as_user(
        site.staff,
        fs.declare_served_dishes,
        site_id=site.canteen.id,
        day=day,
        slot="dinner",
        dishes=[],
        not_served=True,
    )
    error = _refused(site.staff, fs.record_sample, **sample_fields(site, slot="dinner"))
    assert error.code == "slot_not_served"


# --- the sample deadline ----------------------------------------------------------------------------------
def test_a_declared_dish_without_a_sample_at_the_slot_deadline_is_one_deviation(site):
    day = clock.today() - timedelta(days=2)
    as_user(
        site.staff, fs.declare_served_dishes, site_id=site.canteen.id, day=day, slot="lunch", dishes=["米饭", "红烧肉"]
    )
    as_user(site.staff, fs.record_sample, **sample_fields(site, dish="米饭"))
    deadline = at(day, "14:30")  # lunch closes 13:30, plus the 60 minutes of grace

    def lunch_missing(raised):
        return [d for d in raised if d.kind == rules.SAMPLE_MISSING and d.details["slot"] == "lunch"]

    assert lunch_missing(fs.check_site_day(site.canteen.id, day, now=deadline - timedelta(minutes=1))) == []
    assert len(lunch_missing(fs.check_site_day(site.canteen.id, day, now=deadline))) == 1
    missing = lunch_missing(_deviations())
    assert len(missing) == 1 and missing[0].details["dishes"] == ["红烧肉"]
    assert missing[0].occurred_at == deadline and missing[0].source_ref == f"samples:{site.canteen.id}:{day}:lunch"
    fs.check_site_day(site.canteen.id, day, now=deadline + timedelta(hours=10))
    assert len([d for d in _deviations(rules.SAMPLE_MISSING) if d.details["slot"] == "lunch"]) == 1  # never twice


def test_an_open_slot_with_nothing_declared_is_a_deviation_unless_declared_not_served(site):
    day = clock.today() - timedelta(days=3)
    as_user(
        site.staff,
        fs.declare_served_dishes,
        site_id=site.canteen.id,
        day=day,
        slot="dinner",
        dishes=[],
        not_served=True,
    )
    as_user(site.staff, fs.declare_served_dishes, site_id=site.canteen.id, day=day, slot="lunch", dishes=["面条"])
    with scoping.unrestricted():
        fs.record_sample(**sample_fields(site, served_on=day, dish="面条", stored_at=at(day, "11:20")))
    db.session.commit()
    fs.check_site_day(site.canteen.id, day, now=at(day, "23:00"))
    slots = {d.details["slot"]: d for d in _deviations(rules.SAMPLE_MISSING)}
    assert set(slots) == {"breakfast"}  # opened 07:00–09:00, nothing declared, no sample
    assert slots["breakfast"].details["nothing_declared"] is True


def test_a_closed_day_asks_only_for_the_fridge_readings(site):
    day = clock.today() - timedelta(days=4)
    with scoping.unrestricted():
        site.canteen.closed_dates = [day.isoformat()]
    db.session.commit()
    raised = fs.check_site_day(site.canteen.id, day, now=at(day, "23:59"))
    assert {d.kind for d in raised} == {rules.READINGS_MISSING}
    assert len(raised) == 3  # every device, each with no reading


# --- the daily checklist and the morning check -----------------------------------------------------------------
def _complete_checklist(site, day, *, failing: str | None = None) -> None:
    with acting(site.staff):
        for item in rules.checklist_items():
            extra = {}
            if item.needs_method_and_time:
                extra = {"method": "disinfection_cabinet", "done_at": at(day, "07:10")}
            passed = item.key != failing
            fs.record_checklist_entry(
                site_id=site.canteen.id,
                day=day,
                item=item.key,
                passed=passed,
                note="" if passed else "发现鼠粪",
                **extra,
            )
        fs.record_morning_check(
            site_id=site.canteen.id, day=day, staff_id=site.cook.id, present=True, fit=True, checked_at=at(day, "07:00")
        )
    db.session.commit()


def test_a_checklist_complete_and_passed_by_the_deadline_raises_nothing(site):
    day = clock.today() - timedelta(days=1)
    _complete_checklist(site, day)
    raised = fs.check_site_day(site.canteen.id, day, now=at(day, "10:00"))
    assert [d for d in raised if d.kind.startswith("checklist")] == []


def test_a_missing_item_or_morning_check_at_the_deadline_is_a_deviation(site):
    day = clock.today() - timedelta(days=1)
    as_user(site.staff, fs.record_checklist_entry, site_id=site.canteen.id, day=day, item="pest_control", passed=True)
    assert fs.check_site_day(site.canteen.id, day, now=at(day, "09:59")) == []
    raised = fs.check_site_day(site.canteen.id, day, now=at(day, "10:00"))
    (missing,) = [d for d in raised if d.kind == rules.CHECKLIST_MISSING]
    assert missing.details["missing_items"] == ["tableware_disinfection", "raw_cooked_separation", "waste_disposal"]
    assert missing.details["missing_staff"] == [{"id": site.cook.id, "name": "王师傅"}]
    assert missing.occurred_at == at(day, "10:00") and _deviations(rules.CHECKLIST_FAILED) == []
    fs.check_site_day(site.canteen.id, day, now=at(day, "23:00"))
    assert len(_deviations(rules.CHECKLIST_MISSING)) == 1


def test_a_failed_item_fixed_before_the_deadline_is_no_deviation_and_both_answers_are_kept(site):
    day = clock.today() - timedelta(days=1)
    _complete_checklist(site, day, failing="pest_control")
    as_user(site.staff, fs.record_checklist_entry, site_id=site.canteen.id, day=day, item="pest_control", passed=True)
    fs.check_site_day(site.canteen.id, day, now=at(day, "10:00"))
    assert _deviations(rules.CHECKLIST_FAILED) == [] and _deviations(rules.CHECKLIST_MISSING) == []
    assert count(ChecklistEntry, ChecklistEntry.item == "pest_control") == 2


def test_a_failed_item_at_the_deadline_is_a_deviation(site):
    day = clock.today() - timedelta(days=1)
    _complete_checklist(site, day, failing="waste_disposal")
    fs.check_site_day(site.canteen.id, day, now=at(day, "10:00"))
    (failed,) = _deviations(rules.CHECKLIST_FAILED)
    assert failed.details["failed_items"] == ["waste_disposal"] and failed.details["notes"] == {
        "waste_disposal": "发现鼠粪"
    }


def test_a_site_without_staff_cannot_complete_its_morning_check():
    bare = CanteenFactory()
    day = clock.today() - timedelta(days=1)
    fs.check_site_day(bare.id, day, now=at(day, "10:00"))
    with scoping.unrestricted():
        (missing,) = db.session.scalars(sa.select(Deviation).where(Deviation.kind == rules.CHECKLIST_MISSING)).all()
    assert missing.details["no_staff"] is True


def test_tableware_disinfection_says_how_and_when_and_a_problem_says_what(site):
    day = clock.today()
    error = _refused(
        site.staff,
        fs.record_checklist_entry,
        site_id=site.canteen.id,
        day=day,
        item="tableware_disinfection",
        passed=True,
    )
    assert set(error.errors) == {"method", "done_at"}
    error = _refused(
        site.staff, fs.record_checklist_entry, site_id=site.canteen.id, day=day, item="pest_control", passed=False
    )
    assert error.errors == {"note": ["Say what was wrong."]}
    error = _refused(
        site.staff,
        fs.record_checklist_entry,
        site_id=site.canteen.id,
        day=day,
        item="pest_control",
        passed=True,
        method="steam",
    )
    assert "method" in error.errors
    error = _refused(
        site.staff, fs.record_checklist_entry, site_id=site.canteen.id, day=day, item="gas_safety", passed=True
    )
    assert error.code == "unknown_checklist_item"
    assert count(ChecklistEntry) == 0


def test_a_city_item_from_the_settings_is_asked_and_required(site, app, monkeypatch):
    items = [*app.config["FOOD_SAFETY_CHECKLIST_ITEMS"], {"key": "gas_safety", "label": "Gas safety"}]
    monkeypatch.setitem(app.config, "FOOD_SAFETY_CHECKLIST_ITEMS", items)
    day = clock.today() - timedelta(days=1)
    _complete_checklist(site, day)  # every item, the city's own included
    assert count(ChecklistEntry, ChecklistEntry.item == "gas_safety") == 1
    monkeypatch.setitem(app.config, "FOOD_SAFETY_CHECKLIST_ITEMS", [*items, {"key": "ventilation", "label": "Air"}])
    fs.check_site_day(site.canteen.id, day, now=at(day, "10:00"))
    (missing,) = _deviations(rules.CHECKLIST_MISSING)
    assert missing.details["missing_items"] == ["ventilation"]


def _check(site, user=None, **fields):
    values = {"site_id": site.canteen.id, "day": clock.today(), "staff_id": site.cook.id, "present": True, "fit": True}
    values.update(fields)
    return as_user(user or site.staff, fs.record_morning_check, **values)


def _certify(person, *, issued_on: date, expires_on: date) -> None:
    with scoping.unrestricted():
        fs.add_certificate(person.id, number=f"JK-{person.id}-{expires_on}", issued_on=issued_on, expires_on=expires_on)
    db.session.commit()


def test_a_certificate_expiring_today_still_allows_fit(site):
    today = clock.today()
    _certify(site.cook, issued_on=today - timedelta(days=364), expires_on=today)
    assert fs.certificate_status(site.cook, today) == fs.CERTIFICATE_EXPIRING
    assert _check(site).fit is True
    (alert,) = fs.list_certificate_alerts(site_id=site.canteen.id)
    assert (alert.status, alert.days_left) == ("expiring", 0)


def test_a_certificate_expired_yesterday_keeps_the_person_from_being_fit(site):
    today = clock.today()
    _certify(site.cook, issued_on=today - timedelta(days=365), expires_on=today - timedelta(days=1))
    assert fs.certificate_status(site.cook, today) == fs.CERTIFICATE_EXPIRED
    error = _refused(
        site.staff,
        fs.record_morning_check,
        site_id=site.canteen.id,
        day=today,
        staff_id=site.cook.id,
        present=True,
        fit=True,
    )
    assert error.code == "certificate_expired" and "fit" in error.errors
    assert count(MorningCheck) == 0
    sent_home = _check(site, fit=False, note="健康证过期，待复查")
    assert sent_home.present and sent_home.fit is False
    (alert,) = fs.list_certificate_alerts(site_id=site.canteen.id)
    assert (alert.status, alert.days_left) == ("expired", -1)


def test_nobody_without_a_certificate_is_fit(site):
    newcomer = as_user(
        site.staff, fs.add_staff, site_id=site.canteen.id, name="李四", job="server", started_on=LONG_AGO
    )
    error = _refused(
        site.staff,
        fs.record_morning_check,
        site_id=site.canteen.id,
        day=clock.today(),
        staff_id=newcomer.id,
        present=True,
        fit=True,
    )
    assert error.code == "certificate_missing"


def test_someone_with_symptoms_is_sent_home_never_fit(site):
    error = _refused(
        site.staff,
        fs.record_morning_check,
        site_id=site.canteen.id,
        day=clock.today(),
        staff_id=site.cook.id,
        present=True,
        symptoms=["fever"],
        fit=True,
    )
    assert error.code == "symptoms_not_fit"
    assert _refused(
        site.staff,
        fs.record_morning_check,
        site_id=site.canteen.id,
        day=clock.today(),
        staff_id=site.cook.id,
        present=True,
        symptoms=["other"],
        fit=False,
    ).errors == {"note": ["Describe the other symptom."]}
    check = _check(site, symptoms=["fever", "cough", "fever"], fit=False)
    assert check.symptoms == ["fever", "cough"] and check.fit is False
    absent = _refused(
        site.staff,
        fs.record_morning_check,
        site_id=site.canteen.id,
        day=clock.today(),
        staff_id=site.cook.id,
        present=False,
        symptoms=["cough"],
    )
    assert "symptoms" in absent.errors


def test_the_latest_morning_check_counts(site):
    day = clock.today()
    _check(site, present=False, fit=None)
    _check(site)
    status = fs.daily_status(site.canteen.id, day)
    (person,) = status.staff_checks
    assert person.check.present and person.check.fit and count(MorningCheck) == 2


def test_morning_checks_are_for_the_site_s_own_working_staff(site):
    other = make_site(site.district)
    assert (
        _refused(
            site.staff,
            fs.record_morning_check,
            site_id=site.canteen.id,
            day=clock.today(),
            staff_id=other.cook.id,
            present=False,
        ).status
        == 404
    )
    left = as_user(site.staff, fs.add_staff, site_id=site.canteen.id, name="赵六", job="driver", started_on=LONG_AGO)
    as_user(site.staff, fs.update_staff, left.id, left_on=clock.today())
    error = _refused(
        site.staff, fs.record_morning_check, site_id=site.canteen.id, day=clock.today(), staff_id=left.id, present=False
    )
    assert error.code == "staff_not_working"


# --- certificates -------------------------------------------------------------------------------------------
def test_a_certificate_longer_than_one_year_is_refused(site):
    issued = date(2025, 3, 10)
    error = _refused(
        site.staff, fs.add_certificate, site.cook.id, number="X1", issued_on=issued, expires_on=date(2026, 3, 11)
    )
    assert error.code == "certificate_too_long"
    kept = count(HealthCertificate)
    longest = as_user(
        site.staff, fs.add_certificate, site.cook.id, number="X2", issued_on=issued, expires_on=date(2026, 3, 10)
    )
    default = as_user(site.staff, fs.add_certificate, site.cook.id, number="X3", issued_on=issued)
    assert (longest.expires_on, default.expires_on) == (date(2026, 3, 10), date(2026, 3, 9))
    assert count(HealthCertificate) == kept + 2
    db.session.refresh(site.cook)
    assert site.cook.certificate.number == "X3"  # the one recorded last is current


def test_certificates_expiring_within_30_days_are_listed_for_the_site_and_the_district(site):
    today = clock.today()
    day_30 = as_user(site.staff, fs.add_staff, site_id=site.canteen.id, name="三十天", job="cook", started_on=LONG_AGO)
    day_31 = as_user(
        site.staff, fs.add_staff, site_id=site.canteen.id, name="三十一天", job="cook", started_on=LONG_AGO
    )
    _certify(day_30, issued_on=today - timedelta(days=300), expires_on=today + timedelta(days=30))
    _certify(day_31, issued_on=today - timedelta(days=300), expires_on=today + timedelta(days=31))
    elsewhere = make_site(DistrictFactory())
    _certify(elsewhere.cook, issued_on=today - timedelta(days=360), expires_on=today + timedelta(days=1))
    with acting(site.officer):
        names = [alert.staff.name for alert in fs.list_certificate_alerts()]
    assert names == ["三十天"]
    with acting(site.admin):
        assert {alert.staff.name for alert in fs.list_certificate_alerts()} >= {"三十天", "王师傅"}


# --- temperatures --------------------------------------------------------------------------------------------
def _read(site, device, celsius, **extra):
    return as_user(site.staff, fs.record_reading, device_id=device.id, temperature_c=celsius, **extra)


def test_a_refrigerator_at_8_0_is_in_range_and_at_8_1_raises_a_deviation(site):
    assert _read(site, site.fridge, "8.0").in_range
    assert _deviations() == []
    high = _read(site, site.fridge, "8.1")
    assert not high.in_range and (high.min_tenths, high.max_tenths) == (0, 80)
    (deviation,) = _deviations(rules.TEMPERATURE_OUT_OF_RANGE)
    assert deviation.source_ref == f"reading:{high.id}" and deviation.details["temperature_c"] == 8.1
    assert deviation.occurred_at == high.read_at


def test_the_lower_limits_are_inclusive_too(site):
    assert _read(site, site.fridge, 0).in_range and not _read(site, site.fridge, "-0.1").in_range
    assert _read(site, site.freezer, "-18.0").in_range and not _read(site, site.freezer, "-17.9").in_range
    assert _read(site, site.freezer, -30).in_range
    assert len(_deviations(rules.TEMPERATURE_OUT_OF_RANGE)) == 2


def test_a_sample_refrigerator_out_of_range_counts_the_samples_in_it(site):
    as_user(site.staff, fs.record_sample, **sample_fields(site))
    _read(site, site.sample_fridge, "9")
    (deviation,) = _deviations(rules.TEMPERATURE_OUT_OF_RANGE)
    assert deviation.details["samples_stored"] == 1


def test_a_reading_keeps_the_limits_it_was_judged_by(site, app, monkeypatch):
    reading = _read(site, site.fridge, "7.5")
    monkeypatch.setitem(
        app.config, "FOOD_SAFETY_DEVICE_LIMITS_C", {**app.config["FOOD_SAFETY_DEVICE_LIMITS_C"], "refrigerator": [0, 5]}
    )
    assert not _read(site, site.fridge, "7.5").in_range
    db.session.refresh(reading)
    assert reading.in_range and reading.max_tenths == 80


def test_readings_refused_write_nothing(site):
    assert _refused(site.staff, fs.record_reading, device_id=site.fridge.id, temperature_c="4.25").errors == {
        "temperature_c": ["A temperature in °C with at most one decimal place."]
    }
    assert _refused(site.staff, fs.record_reading, device_id=site.fridge.id, temperature_c=80).status == 422
    as_user(site.staff, fs.update_device, site.fridge.id, retired_on=clock.today())
    assert (
        _refused(site.staff, fs.record_reading, device_id=site.fridge.id, temperature_c=4).code
        == "device_not_in_service"
    )
    assert isinstance(
        _refused(site.officer, fs.record_reading, device_id=site.freezer.id, temperature_c=-20), Forbidden
    )
    assert count(TemperatureReading) == 0


def test_fewer_than_two_readings_by_the_deadline_is_a_deviation_per_device(site):
    day = clock.today() - timedelta(days=1)
    _read(site, site.fridge, 4, read_at=at(day, "08:00"))
    _read(site, site.fridge, 5, read_at=at(day, "15:00"))
    _read(site, site.freezer, -20, read_at=at(day, "08:00"))
    raised = fs.check_site_day(site.canteen.id, day, now=at(day, "19:59"))
    assert [d for d in raised if d.kind == rules.READINGS_MISSING] == []
    fs.check_site_day(site.canteen.id, day, now=at(day, "20:00"))
    missing = {d.details["device_name"]: d.details["readings"] for d in _deviations(rules.READINGS_MISSING)}
    assert missing == {"冷冻柜": 1, "留样冰箱": 0}


def test_a_retired_device_needs_no_readings(site):
    day = clock.today() - timedelta(days=1)
    for device in (site.fridge, site.sample_fridge):
        _read(site, device, 3, read_at=at(day, "08:00"))
        _read(site, device, 3, read_at=at(day, "16:00"))
    as_user(site.staff, fs.update_device, site.freezer.id, retired_on=day)
    fs.check_site_day(site.canteen.id, day, now=at(day, "23:00"))
    assert _deviations(rules.READINGS_MISSING) == []


# --- deviations ---------------------------------------------------------------------------------------------
def test_raise_deviation_is_idempotent_per_kind_and_source(site):
    args = {
        "site_id": site.canteen.id,
        "occurred_at": clock.now(),
        "found": "送达时 45 ℃",
        "source_ref": "delivery_batch:7",
    }
    first = fs.raise_deviation(kind=rules.DELIVERY_TEMPERATURE, **args)
    again = fs.raise_deviation(kind=rules.DELIVERY_TEMPERATURE, **args)
    other_kind = fs.raise_deviation(kind=rules.DELIVERY_TIME, **args)
    assert first.id == again.id != other_kind.id
    assert count(DeviationEvent, DeviationEvent.deviation_id == first.id) == 1  # raised once
    with pytest.raises(ValidationFailed):
        fs.raise_deviation(kind="no_such_kind", **args)


def _recorded(site, **overrides) -> Deviation:
    deviation = as_user(
        site.staff, fs.report_deviation, site_id=site.canteen.id, kind="reported", found="冷藏柜门封破损"
    )
    as_user(site.staff, fs.acknowledge_deviation, deviation.id)
    action = {"cause": "门封老化", "action_taken": "更换门封", "affected_food": "无受影响食品", **overrides}
    return as_user(site.staff, fs.record_deviation_action, deviation.id, **action)


def test_the_workflow_open_acknowledged_action_recorded_verified(site):
    deviation = as_user(site.staff, fs.report_deviation, site_id=site.canteen.id, kind="reported", found="地面湿滑")
    assert deviation.status == "open" and deviation.raised_by_id == site.staff.id
    acknowledged = as_user(site.staff, fs.acknowledge_deviation, deviation.id)
    assert acknowledged.status == "acknowledged" and acknowledged.acknowledged_by_id == site.staff.id
    recorded = as_user(
        site.staff,
        fs.record_deviation_action,
        deviation.id,
        cause="拖地后未放警示牌",
        action_taken="放置警示牌",
        affected_food="无",
    )
    assert recorded.status == "action_recorded" and recorded.current_action.revision == 1
    verified = as_user(site.officer, fs.verify_deviation, deviation.id, note="现场已核实")
    assert verified.status == "verified" and verified.verified_by_id == site.officer.id
    assert [e.event for e in verified.events] == ["raised", "acknowledged", "action_recorded", "verified"]


def test_steps_out_of_order_are_refused_and_write_nothing(site):
    deviation = as_user(site.staff, fs.report_deviation, site_id=site.canteen.id, kind="reported", found="垃圾未清")
    action = {"cause": "a", "action_taken": "b", "affected_food": "c"}
    assert _refused(site.staff, fs.record_deviation_action, deviation.id, **action).code == "deviation_wrong_status"
    assert _refused(site.officer, fs.verify_deviation, deviation.id).code == "deviation_wrong_status"
    assert (
        _refused(site.staff, fs.correct_deviation_action, deviation.id, reason="x", **action).code
        == "deviation_wrong_status"
    )
    as_user(site.staff, fs.acknowledge_deviation, deviation.id)
    assert _refused(site.staff, fs.acknowledge_deviation, deviation.id).code == "deviation_wrong_status"
    assert _refused(
        site.staff, fs.record_deviation_action, deviation.id, cause=" ", action_taken="b", affected_food=""
    ).errors == {
        "cause": ["Required."],
        "affected_food": ["Required."],
    }
    assert count(DeviationEvent, DeviationEvent.deviation_id == deviation.id) == 2


def test_a_correction_adds_a_revision_and_never_overwrites(site):
    deviation = _recorded(site)
    corrected = as_user(
        site.staff,
        fs.correct_deviation_action,
        deviation.id,
        cause="门封老化",
        action_taken="更换门封并复测温度 4 ℃",
        affected_food="冷藏柜内 2 kg 熟食已废弃",
        reason="补记废弃的熟食",
    )
    first, second = corrected.revisions
    assert (first.revision, second.revision) == (1, 2)
    assert first.affected_food == "无受影响食品"  # the first revision stays as it was recorded
    assert corrected.current_action is second and second.note == "补记废弃的熟食"
    assert corrected.status == "action_recorded"


def test_the_database_refuses_to_rewrite_or_delete_a_revision(site):
    deviation = _recorded(site)
    for statement in (
        "UPDATE deviation_events SET cause = 'rewritten'",
        f"DELETE FROM deviation_events WHERE deviation_id = {deviation.id}",
        f"DELETE FROM deviations WHERE id = {deviation.id}",
        f"UPDATE deviations SET found = 'rewritten' WHERE id = {deviation.id}",
    ):
        with pytest.raises(sa.exc.DBAPIError), db.session.begin_nested():
            db.session.execute(sa.text(statement))
    db.session.expire_all()
    assert get_events(deviation.id)[2].cause == "门封老化"


def get_events(deviation_id: int) -> list[DeviationEvent]:
    with scoping.unrestricted():
        return list(
            db.session.scalars(
                sa.select(DeviationEvent).where(DeviationEvent.deviation_id == deviation_id).order_by(DeviationEvent.id)
            )
        )


def test_an_officer_sends_an_action_back_and_the_next_one_is_a_new_revision(site):
    deviation = _recorded(site, affected_food="不清楚")
    returned = as_user(site.officer, fs.return_deviation, deviation.id, reason="请说明熟食去向")
    assert returned.status == "acknowledged"
    again = as_user(
        site.staff,
        fs.record_deviation_action,
        deviation.id,
        cause="门封老化",
        action_taken="更换门封",
        affected_food="2 kg 熟食废弃",
    )
    assert [r.revision for r in again.revisions] == [1, 2] and again.current_action.affected_food == "2 kg 熟食废弃"
    as_user(site.officer, fs.verify_deviation, deviation.id)
    error = _refused(
        site.staff,
        fs.correct_deviation_action,
        deviation.id,
        cause="a",
        action_taken="b",
        affected_food="c",
        reason="d",
    )
    assert error.code == "deviation_wrong_status"  # verified: nothing changes any more
    assert [e.event for e in get_events(deviation.id)] == [
        "raised",
        "acknowledged",
        "action_recorded",
        "returned",
        "action_recorded",
        "verified",
    ]


def test_who_does_which_step(site):
    deviation = as_user(
        site.officer, fs.report_deviation, site_id=site.canteen.id, kind="inspection_finding", found="生熟混放"
    )
    assert deviation.raised_by_id == site.officer.id
    assert isinstance(_refused(site.officer, fs.acknowledge_deviation, deviation.id), Forbidden)
    other = make_site(site.district)
    assert isinstance(_refused(other.staff, fs.acknowledge_deviation, deviation.id), NotFound)
    as_user(site.staff, fs.acknowledge_deviation, deviation.id)
    as_user(site.staff, fs.record_deviation_action, deviation.id, cause="a", action_taken="b", affected_food="c")
    assert isinstance(_refused(site.staff, fs.verify_deviation, deviation.id), Forbidden)
    assert isinstance(_refused(officer(DistrictFactory()), fs.verify_deviation, deviation.id), NotFound)
    kitchen = KitchenFactory(district=site.district)
    assert isinstance(_refused(kitchen_staff(kitchen), fs.verify_deviation, deviation.id), Forbidden)
    assert count(DeviationEvent, DeviationEvent.deviation_id == deviation.id) == 3


def test_people_report_only_the_kinds_people_report(site):
    error = _refused(site.staff, fs.report_deviation, site_id=site.canteen.id, kind=rules.SAMPLE_MISSING, found="x")
    assert "kind" in error.errors
    assert _refused(site.staff, fs.report_deviation, site_id=site.canteen.id, kind="reported", found="  ").errors == {
        "found": ["Required."]
    }
    assert count(Deviation) == 0


# --- scoping -------------------------------------------------------------------------------------------------
def test_a_kitchen_s_staff_see_their_kitchen_only_not_the_canteens_it_supplies():
    district = DistrictFactory()
    kitchen = make_site(district, kind=CanteenKind.CENTRAL_KITCHEN)
    canteen = make_site(district, supplied_by=kitchen.canteen)
    cook = kitchen_staff(kitchen.canteen)
    with acting(cook):
        assert {p.site_id for p in fs.list_staff().items} == {kitchen.canteen.id}
        assert [s.id for s in fs.list_sites()] == [kitchen.canteen.id]
        with pytest.raises(NotFound):
            fs.daily_status(canteen.canteen.id)
    as_user(cook, fs.record_reading, device_id=kitchen.fridge.id, temperature_c=3)


def test_officers_read_their_district_and_nothing_else(site):
    elsewhere = make_site(DistrictFactory())
    as_user(site.staff, fs.record_sample, **sample_fields(site))
    as_user(elsewhere.staff, fs.record_sample, **sample_fields(elsewhere))
    with acting(site.officer):
        assert {s.site_id for s in fs.list_samples().items} == {site.canteen.id}
        assert {s.site.id for s in fs.site_compliance()} == {site.canteen.id}
        with pytest.raises(NotFound):
            fs.get_site(elsewhere.canteen.id)
    with acting(site.staff):
        assert {s.site.id for s in fs.site_compliance()} == {site.canteen.id}


# --- compliance and the day ----------------------------------------------------------------------------------------
def test_a_site_is_compliant_without_unverified_deviations_and_with_valid_certificates(site):
    with acting(site.officer):
        (entry,) = fs.site_compliance()
    assert entry.compliant
    deviation = _recorded(site)
    with acting(site.officer):
        (entry,) = fs.site_compliance()
    assert not entry.compliant and (entry.open, entry.action_recorded) == (0, 1)
    as_user(site.officer, fs.verify_deviation, deviation.id)
    as_user(site.staff, fs.add_staff, site_id=site.canteen.id, name="无证", job="server", started_on=LONG_AGO)
    with acting(site.officer):
        (entry,) = fs.site_compliance()
    assert entry.unverified == 0 and entry.certificates_missing_or_expired == 1 and not entry.compliant


def test_the_day_counts_what_is_still_due(site):
    day = clock.today()
    status = fs.daily_status(site.canteen.id, day, now=at(day, "06:00"))
    # 4 checklist items + 1 morning check + 3 devices × 2 readings + 3 open slots to declare
    assert status.due_count == 4 + 1 + 6 + 3
    as_user(
        site.staff,
        fs.declare_served_dishes,
        site_id=site.canteen.id,
        day=day,
        slot="lunch",
        dishes=["米饭", "鱼香肉丝"],
    )
    status = fs.daily_status(site.canteen.id, day, now=at(day, "06:00"))
    assert status.due_count == 4 + 1 + 6 + 2 + 2  # the lunch declared: its two dishes need samples


def test_samples_of_48_hours_are_due_for_disposal(site):
    sample = as_user(site.staff, fs.record_sample, **sample_fields(site))
    status = fs.daily_status(site.canteen.id, now=sample.stored_at + timedelta(hours=47, minutes=59))
    assert status.kept == [sample] and status.disposal_due == []
    status = fs.daily_status(site.canteen.id, now=sample.stored_at + timedelta(hours=48))
    assert status.disposal_due == [sample]


def test_the_checks_of_the_screen_cover_the_day_before(site):
    with acting(site.staff):
        raised = fs.run_due_checks(site.canteen.id, clock.today(), now=at(clock.today(), "00:30"))
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    assert raised and {d.day.isoformat() for d in raised} == {yesterday}


def test_nothing_is_checked_for_an_inactive_site_or_a_future_day(site):
    with scoping.unrestricted():
        site.canteen.active = False
    db.session.commit()
    assert fs.check_site_day(site.canteen.id, clock.today() - timedelta(days=1)) == []
    with scoping.unrestricted():
        site.canteen.active = True
    db.session.commit()
    assert fs.check_site_day(site.canteen.id, clock.today() + timedelta(days=1)) == []
    other = canteen_staff(CanteenFactory())
    assert isinstance(_refused(other, fs.record_sample, **sample_fields(site)), NotFound)
