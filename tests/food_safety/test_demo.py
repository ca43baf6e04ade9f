"""The food-safety demo loader: days of records at every site of a (small) demo city through the
services, by each site's own account; every kind of lapse turning into its deviation; the workflow
worked at every step; certificates to renew; and its counts matching the database."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.demo.food_safety import load_food_safety_demo
from canteen.demo.service import DemoCity
from canteen.extensions import db
from canteen.food_safety import rules
from canteen.food_safety import service as food_safety_service
from canteen.food_safety.models import (
    ChecklistEntry,
    ColdDevice,
    Deviation,
    DeviationEvent,
    MorningCheck,
    RetainedSample,
    SiteStaff,
    TemperatureReading,
)
from canteen.org.models import CanteenKind
from tests.factories import CanteenFactory, DistrictFactory, canteen_staff, kitchen_staff, officer
from tests.food_safety.conftest import count

DAYS = 10


@pytest.fixture
def loaded():
    """A district with a central kitchen, a canteen (three meals, closed on Sundays) and a meal point
    (lunch, supplied by the kitchen), their accounts and the district's officer; the loader run."""
    district = DistrictFactory(code="630105", name="城北区")
    kitchen = CanteenFactory(district=district, code="CB-ZYCF", kind=CanteenKind.CENTRAL_KITCHEN, opening_hours={})
    canteen = CanteenFactory(district=district, code="CB-CY", closed_weekdays=[6])
    point = CanteenFactory(
        district=district,
        code="CB-MF",
        kind=CanteenKind.MEAL_POINT,
        supplied_by=kitchen,
        opening_hours={"lunch": ["11:00", "13:00"]},
    )
    users = {
        "kitchen.cb-zycf": kitchen_staff(kitchen),
        "staff.cb-cy": canteen_staff(canteen),
        "staff.cb-mf": canteen_staff(point),
        "officer.chengbei": officer(district),
    }
    city = DemoCity(canteens={site.code: site for site in (kitchen, canteen, point)}, users=users)
    today = clock.today()
    with scoping.unrestricted():
        result = load_food_safety_demo(city, today, days=DAYS)
    db.session.commit()
    return {"city": city, "result": result, "today": today, "users": users, "sites": (kitchen, canteen, point)}


def test_every_site_has_its_people_devices_and_days_of_records(loaded):
    kitchen, canteen, point = loaded["sites"]
    result = loaded["result"]
    assert result.days_from == loaded["today"] - timedelta(days=DAYS)
    assert result.days_to == loaded["today"] - timedelta(days=1)
    for site, devices in ((kitchen, 4), (canteen, 3), (point, 3)):
        assert count(ColdDevice, ColdDevice.site_id == site.id) == devices
        assert count(SiteStaff, SiteStaff.site_id == site.id) >= 3
        days_with_readings = db.session.scalar(
            sa.select(sa.func.count(sa.distinct(TemperatureReading.day))).where(TemperatureReading.site_id == site.id)
        )
        assert days_with_readings == DAYS  # fridges run on closed days too
    open_days = sum(
        1 for offset in range(1, DAYS + 1) if not canteen.is_closed_on(loaded["today"] - timedelta(days=offset))
    )
    days_with_samples = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(RetainedSample.served_on))).where(RetainedSample.site_id == canteen.id)
    )
    assert days_with_samples == open_days
    assert count(RetainedSample, RetainedSample.served_on >= loaded["today"]) == 0  # today is for the daily screen


def test_the_counts_match_the_database(loaded):
    records = loaded["result"].records
    assert records["samples"] == count(RetainedSample)
    assert records["readings"] == count(TemperatureReading)
    assert records["morning_checks"] == count(MorningCheck)
    assert records["checklist_entries"] == count(ChecklistEntry)
    assert records["disposed"] == count(RetainedSample, RetainedSample.disposed_at.is_not(None))
    assert sum(loaded["result"].deviations.values()) == count(Deviation)


def test_each_kind_of_lapse_becomes_its_deviation(loaded):
    kinds = set(loaded["result"].deviations)
    assert set(rules.RULE_KINDS) <= kinds
    weights = Counter(
        sample.weight_g >= rules.SAMPLE_MIN_WEIGHT_G for sample in db.session.scalars(sa.select(RetainedSample))
    )
    assert weights[False] >= 1 and weights[True] > 50  # the lapse, among many proper samples
    assert count(RetainedSample, RetainedSample.disposed_at.is_(None)) >= 1  # some never disposed of
    fixed = db.session.scalars(
        sa.select(ChecklistEntry).where(ChecklistEntry.item == "pest_control", ChecklistEntry.passed.is_(False))
    ).all()
    assert len(fixed) >= 2  # one left failed (a deviation), one fixed the same morning (none)


def test_the_workflow_is_worked_at_every_step(loaded):
    statuses = loaded["result"].statuses
    assert statuses["verified"] >= 1 and statuses["open"] >= 1
    assert statuses["acknowledged"] + statuses["action_recorded"] >= 1
    events = Counter(db.session.scalars(sa.select(DeviationEvent.event)))
    assert events["action_corrected"] == 1 and events["returned"] == 1
    officer_id = loaded["users"]["officer.chengbei"].id
    verifiers = set(db.session.scalars(sa.select(Deviation.verified_by_id).where(Deviation.status == "verified")))
    assert verifiers == {officer_id}


def test_records_are_made_by_each_site_s_own_account(loaded):
    kitchen, canteen, point = loaded["sites"]
    accounts = {kitchen.id: "kitchen.cb-zycf", canteen.id: "staff.cb-cy", point.id: "staff.cb-mf"}
    for site_id, username in accounts.items():
        recorders = set(
            db.session.scalars(
                sa.select(TemperatureReading.recorded_by_id).where(TemperatureReading.site_id == site_id)
            )
        )
        assert recorders == {loaded["users"][username].id}


def test_some_certificates_need_renewing(loaded):
    with scoping.unrestricted():
        statuses = {alert.status for alert in food_safety_service.list_certificate_alerts()}
    assert statuses == {"missing", "expired", "expiring"}
