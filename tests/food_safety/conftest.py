"""Helpers for the food-safety tests: a canteen (breakfast 07:00–09:00, lunch 11:00–13:30, dinner
17:00–19:00) with its counter account, an officer, an admin, a sample refrigerator, a refrigerator
and a freezer, and a cook with a valid certificate; and service calls made as a given user."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.core import clock, scoping
from canteen.core.clock import TIME_ZONE
from canteen.extensions import db
from canteen.food_safety import service as food_safety_service
from tests.factories import CanteenFactory, DistrictFactory, admin, canteen_staff, officer

LONG_AGO = date(2020, 1, 1)


@contextmanager
def acting(user) -> Iterator[None]:
    """Service calls made as `user` (None: the system, as the CLI and the rules run)."""
    if user is None:
        with scoping.unrestricted():
            yield
        return
    with scoping.acting_as(auth_service.scope_for(user)):
        yield


def as_user(user, call, *args: Any, **kwargs: Any):
    """Call a service function as `user` and commit, like a request that succeeded."""
    with acting(user):
        result = call(*args, **kwargs)
    db.session.commit()
    return result


def at(day: date, hh_mm: str) -> datetime:
    """A wall-clock time of a business date in Asia/Shanghai."""
    return datetime.combine(day, time.fromisoformat(hh_mm), tzinfo=TIME_ZONE)


def count(model, *where) -> int:
    with scoping.unrestricted():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def make_site(district=None, **canteen_fields: Any) -> SimpleNamespace:
    district = district or DistrictFactory()
    canteen = CanteenFactory(district=district, **canteen_fields)
    staff_user = canteen_staff(canteen)
    with scoping.unrestricted():
        sample_fridge = food_safety_service.add_device(
            site_id=canteen.id, name="留样冰箱", kind="sample_refrigerator", active_from=LONG_AGO
        )
        fridge = food_safety_service.add_device(
            site_id=canteen.id, name="冷藏柜", kind="refrigerator", active_from=LONG_AGO
        )
        freezer = food_safety_service.add_device(
            site_id=canteen.id, name="冷冻柜", kind="freezer", active_from=LONG_AGO
        )
        cook = food_safety_service.add_staff(
            site_id=canteen.id, name="王师傅", job="cook", phone="13912345678", started_on=LONG_AGO
        )
        food_safety_service.add_certificate(cook.id, number="JK-0001", issued_on=clock.today() - timedelta(days=100))
    db.session.commit()
    return SimpleNamespace(
        district=district,
        canteen=canteen,
        staff=staff_user,
        sample_fridge=sample_fridge,
        fridge=fridge,
        freezer=freezer,
        cook=cook,
    )


@pytest.fixture
def site() -> SimpleNamespace:
    """A canteen with its counter account, devices and a cook; `officer` and `admin` as well."""
    made = make_site()
    made.officer = officer(made.district)
    made.admin = admin()
    return made


def sample_fields(site, **extra: Any) -> dict[str, Any]:
    """A sample as the service takes it: lunch of two days ago, 150 g, sealed, in the sample fridge."""
    served_on = clock.today() - timedelta(days=2)
    fields = {
        "site_id": site.canteen.id,
        "served_on": served_on,
        "slot": "lunch",
        "dish": "红烧肉",
        "weight_g": 150,
        "container_sealed": True,
        "device_id": site.sample_fridge.id,
        "stored_at": at(served_on, "11:30"),
    }
    fields.update(extra)
    return fields
