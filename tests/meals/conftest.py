"""Helpers for the meal tests: a canteen with staff and a district policy, residents, and
meals recorded through the service or the API."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from canteen.core import clock, scoping
from canteen.extensions import db
from canteen.meals import service as meal_service
from tests import factories
from tests.factories import CanteenFactory, DistrictFactory, admin, canteen_staff, officer
from tests.subsidies.conftest import make_policy, rule

_keys = itertools.count(1)


def new_key() -> str:
    return f"test-{next(_keys)}-{uuid.uuid4()}"


def resident(district, **kwargs):
    """A resident registered (and active) since 2020, so meals of past months are theirs to eat."""
    kwargs.setdefault("registered_on", date(2020, 1, 1))
    return factories.resident(district, **kwargs)


def a_past_weekday(days_back: int = 1) -> date:
    """A date `days_back` days ago (the factory canteens are open every day)."""
    return clock.today() - timedelta(days=days_back)


@pytest.fixture
def site():
    """A district with a policy (60+: 3 yuan any slot; 80+: 5 yuan; 低保: 8 yuan lunch), a canteen,
    its counter staff, an officer and an admin."""
    district = DistrictFactory()
    canteen = CanteenFactory(district=district)
    policy = make_policy(
        district,
        [rule("aged_60_plus", "any", 300), rule("aged_80_plus", "any", 500), rule("subsistence", "lunch", 800)],
        valid_from=date(2020, 1, 1),
    )
    return {
        "district": district,
        "canteen": canteen,
        "policy": policy,
        "staff": canteen_staff(canteen),
        "officer": officer(district),
        "admin": admin(),
    }


def meal_fields(canteen, person, **extra: Any) -> dict[str, Any]:
    """The fields of one meal as the service takes them (a lunch of 15 yuan, by card)."""
    fields = {
        "canteen_id": canteen.id,
        "resident_id": person.id,
        "served_on": clock.today(),
        "slot": "lunch",
        "mode": "dine_in",
        "price_fen": 1500,
        "verification": "card",
    }
    fields.update(extra)
    return fields


def meal_json(canteen, person, **extra: Any) -> dict[str, Any]:
    """The same as a JSON request body."""
    body = meal_fields(canteen, person, **extra)
    for name in ("served_on",):
        if isinstance(body.get(name), date):
            body[name] = body[name].isoformat()
    return body


def record(user_scope_user, **fields: Any):
    """Record through the service as `user`, committing like a request."""
    from canteen.auth import service as auth_service

    with scoping.acting_as(auth_service.scope_for(user_scope_user)):
        meal = meal_service.record_meal(**fields)
    db.session.commit()
    return meal


__all__ = ["a_past_weekday", "meal_fields", "meal_json", "new_key", "record", "resident", "site"]
