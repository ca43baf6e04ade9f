"""Food-safety rows of the role × endpoint matrix (tests/test_scope_matrix.py): for canteen A
(district A), canteen B (district B) and kitchen K (district A, supplying A), a staff member with a
valid certificate, a sample refrigerator, a sample kept 3 days (disposable), and deviations in each
workflow status an endpoint needs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from canteen.core import clock, scoping
from canteen.extensions import db
from canteen.food_safety import rules
from canteen.food_safety import service as food_safety_service

_unique = itertools.count(1)


@dataclass
class SiteRows:
    staff: Any
    device: Any
    sample: Any
    open: Any  # a deviation just raised
    acknowledged: Any
    action_recorded: Any


@dataclass
class FoodSafetyRows:
    a: SiteRows  # canteen A
    b: SiteRows  # canteen B
    kitchen: SiteRows  # kitchen K


def site_rows(site) -> SiteRows:
    """One site's rows, written with the system's scope (as a fixture, not through a role)."""
    today = clock.today()
    with scoping.unrestricted():
        staff = food_safety_service.add_staff(
            site_id=site.id, name=f"厨师{next(_unique)}", job="cook", phone="13800001234", started_on=today
        )
        food_safety_service.add_certificate(staff.id, number=f"JKZ-{next(_unique)}", issued_on=today)
        device = food_safety_service.add_device(
            site_id=site.id,
            name=f"留样冰箱{next(_unique)}",
            kind=rules.SAMPLE_REFRIGERATOR,
            active_from=today - timedelta(days=30),
        )
        three_days_ago = clock.now() - timedelta(days=3)
        sample = food_safety_service.record_sample(
            site_id=site.id,
            served_on=three_days_ago.date(),
            slot="lunch",
            dish=f"红烧肉{next(_unique)}",
            weight_g=150,
            container_sealed=True,
            device_id=device.id,
            stored_at=three_days_ago,
        )
        deviations = []
        for _step in range(3):
            deviations.append(
                food_safety_service.report_deviation(site_id=site.id, kind="reported", found="地面有积水")
            )
        food_safety_service.acknowledge_deviation(deviations[1].id)
        food_safety_service.acknowledge_deviation(deviations[2].id)
        food_safety_service.record_deviation_action(
            deviations[2].id, cause="水管漏水", action_taken="已修理", affected_food="无"
        )
    db.session.commit()
    return SiteRows(staff, device, sample, *deviations)


class LazyRows:
    """The FoodSafetyRows of the three sites, written on first use only, so that the matrix's other
    endpoints do not pay for them."""

    def __init__(self, canteen_a, canteen_b, kitchen) -> None:
        self._sites = (canteen_a, canteen_b, kitchen)
        self._rows: FoodSafetyRows | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._rows is None:
            self._rows = FoodSafetyRows(*(site_rows(site) for site in self._sites))
        return getattr(self._rows, name)


def sample_body(site_attr: str, rows_attr: str):
    """A new sample at a site of the matrix's City, a dish of its own each call."""

    def body(c) -> dict:
        return {
            "site_id": getattr(c, site_attr).id,
            "served_on": clock.today().isoformat(),
            "slot": "lunch",
            "dish": f"清炒时蔬{next(_unique)}",
            "weight_g": 130,
            "container_sealed": True,
            "device_id": getattr(c.food_safety, rows_attr).device.id,
        }

    return body


def morning_check_body(site_attr: str, rows_attr: str):
    def body(c) -> dict:
        return {
            "site_id": getattr(c, site_attr).id,
            "day": clock.today().isoformat(),
            "staff_id": getattr(c.food_safety, rows_attr).staff.id,
            "present": True,
            "symptoms": [],
            "fit": True,
        }

    return body


def site_body(site_attr: str, **fields: Any):
    """{site_id: the City's site, **fields}, with a unique name where the endpoint needs one."""

    def body(c) -> dict:
        values = {"site_id": getattr(c, site_attr).id, **fields}
        if "name" in values:
            values["name"] = f"{values['name']}{next(_unique)}"
        return values

    return body


def food_safety_rows(canteen_a, canteen_b, kitchen) -> LazyRows:
    """The City's food-safety rows (`c.food_safety.a.staff`, ...), written when first used."""
    return LazyRows(canteen_a, canteen_b, kitchen)
