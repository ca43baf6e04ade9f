"""The role × endpoint matrix: every API endpoint, called by every role, answers as DESIGN.md's
"Who uses it" sets out — in scope 2xx, out-of-scope ids 404, forbidden actions 403, no token 401.

Later issues add their endpoints to ENDPOINTS; `test_every_api_endpoint_is_in_the_matrix`
fails when one is missing.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from canteen.core import clock, scoping
from canteen.meals import service as meal_service
from canteen.residents import service as resident_service
from canteen.subsidies import service as subsidy_service
from tests.factories import (
    CanteenFactory,
    CommunityFactory,
    DistrictFactory,
    KitchenFactory,
    admin,
    canteen_staff,
    kitchen_staff,
    officer,
    resident,
)
from tests.food_safety import scope_rows

ROLES = ("anonymous", "admin", "officer", "staff", "kitchen")
_unique = itertools.count(1)


@dataclass
class City:
    """District A (kitchen K supplying canteen CA) and district B (canteen CB)."""

    a: Any
    b: Any
    community_a: Any
    community_b: Any
    kitchen: Any
    canteen_a: Any
    canteen_b: Any
    users: dict[str, Any]
    resident_a: Any = None
    resident_b: Any = None
    category_a: Any = None
    policy_a: Any = None
    policy_b: Any = None
    meal_a: Any = None  # resident_a's breakfast today at canteen_a
    meal_b: Any = None  # resident_b's breakfast today at canteen_b
    food_safety: Any = None  # staff, devices, samples, deviations of A, B and K (tests/food_safety/scope_rows.py)


@pytest.fixture
def city() -> City:
    a, b = DistrictFactory(), DistrictFactory()
    kitchen = KitchenFactory(district=a)
    canteen_a = CanteenFactory(district=a, supplied_by=kitchen)
    canteen_b = CanteenFactory(district=b)
    users = {
        "anonymous": None,
        "admin": admin(),
        "officer": officer(a),
        "staff": canteen_staff(canteen_a),
        "kitchen": kitchen_staff(kitchen),
    }
    resident_a = resident(a, name="甲一", card_no=f"CA-{next(_unique)}")
    resident_b = resident(b, name="乙一", card_no=f"CB-{next(_unique)}")
    with scoping.unrestricted():
        category_a = resident_service.add_category(resident_a.id, category="living_alone", valid_from=date(2026, 1, 1))
        policy_a, policy_b = (
            subsidy_service.create_policy(
                district_id=district.id,
                name="矩阵政策",
                valid_from=date(2026, 1, 1),
                valid_to=date(2099, 12, 31),
                rules=[{"category": "aged_60_plus", "slot": "any", "amount_fen": 300}],
            )
            for district in (a, b)
        )
        meal_a, meal_b = (
            meal_service.record_meal(
                canteen_id=canteen.id,
                resident_id=person.id,
                served_on=clock.today(),
                slot="breakfast",
                mode="dine_in",
                price_fen=800,
                verification="card",
            )
            for canteen, person in ((canteen_a, resident_a), (canteen_b, resident_b))
        )
    return City(
        a,
        b,
        CommunityFactory(district=a),
        CommunityFactory(district=b),
        kitchen,
        canteen_a,
        canteen_b,
        users,
        resident_a,
        resident_b,
        category_a,
        policy_a,
        policy_b,
        meal_a,
        meal_b,
        scope_rows.food_safety_rows(canteen_a, canteen_b, kitchen),
    )


def _district_body(c: City) -> dict:
    n = next(_unique)
    return {"code": f"{640000 + n}", "name": f"矩阵{n}区"}


def _canteen_body(district_attr: str):
    def body(c: City) -> dict:
        n = next(_unique)
        return {
            "code": f"M{n:05d}",
            "name": f"矩阵{n}食堂",
            "kind": "canteen",
            "district_id": getattr(c, district_attr).id,
        }

    return body


def _resident_body(district_attr: str):
    def body(c: City) -> dict:
        from canteen.residents.id_numbers import make_number

        n = next(_unique)
        number = make_number("630102", date(1950, 1, 1), n % 999)
        return {"name": "新居民", "id_number": number, "district_id": getattr(c, district_attr).id}

    return body


@dataclass(frozen=True)
class Upload:
    """A multipart body carrying one file in the field `file` (the spreadsheet endpoints)."""

    content: bytes
    filename: str


def _import_upload(district_attr: str):
    def body(c: City) -> Upload:
        from canteen.residents.id_numbers import make_number
        from tests.residents.workbooks import workbook

        number = make_number("630102", date(1951, 2, 3), next(_unique) % 999)
        code = getattr(c, district_attr).code
        return Upload(workbook([{"name": "导入居民", "id_number": number, "district_code": code}]), "import.xlsx")

    return body


def _feed_upload(resident_attr: str):
    def body(c: City) -> Upload:
        from tests.residents.workbooks import feed_csv

        number = getattr(c, resident_attr).id_number
        return Upload(feed_csv([{"id_number": number, "event": "低保认定", "effective_on": "2026-02-01"}]), "feed.csv")

    return body


def _policy_body(district_attr: str):
    def body(c: City) -> dict:
        # each call its own ten days after the fixture's policies end, so no two bodies overlap
        start = date(2100, 1, 1) + timedelta(days=10 * next(_unique))
        return {
            "district_id": getattr(c, district_attr).id,
            "name": "矩阵新政策",
            "valid_from": start.isoformat(),
            "valid_to": (start + timedelta(days=9)).isoformat(),
            "rules": [{"category": "subsistence", "slot": "lunch", "amount_fen": 800}],
        }

    return body


def _meal_body(canteen_attr: str, resident_attr: str = "resident_a"):
    def body(c: City) -> dict:
        return {
            "canteen_id": getattr(c, canteen_attr).id,
            "resident_id": getattr(c, resident_attr).id,
            "served_on": clock.today().isoformat(),
            "slot": "lunch",
            "price_fen": 1500,
            "verification": "card",
        }

    return body


def _batch_body(canteen_attr: str):
    def body(c: City) -> dict:
        return {"items": [{"idempotency_key": f"matrix-{next(_unique)}", **_meal_body(canteen_attr)(c)}]}

    return body


def _user_body(c: City) -> dict:
    return {"username": f"matrix.{next(_unique)}", "role": "admin", "password": "long-enough-pw"}


# (method, path template, body maker, expected status per role)
# path templates are formatted with the City: {c.a.id} etc.
ALL_OK = {"admin": 200, "officer": 200, "staff": 200, "kitchen": 200}
ADMIN_ONLY = {"admin": 200, "officer": 403, "staff": 403, "kitchen": 403}
READ_A = {"admin": 200, "officer": 200, "staff": 200, "kitchen": 404}
OFFICERS_READ_A = {"admin": 200, "officer": 200, "staff": 403, "kitchen": 403}
ONLY_ADMIN_SEES = {"admin": 200, "officer": 404, "staff": 404, "kitchen": 404}
WRITE_A = {"admin": 200, "officer": 200, "staff": 403, "kitchen": 403}
WRITE_B = {"admin": 200, "officer": 404, "staff": 403, "kitchen": 403}
CREATE_A = {"admin": 201, "officer": 201, "staff": 403, "kitchen": 403}
CREATE_B = {"admin": 201, "officer": 404, "staff": 403, "kitchen": 403}
RECORD_A = {"admin": 201, "officer": 403, "staff": 201, "kitchen": 403}
RECORD_B = {"admin": 201, "officer": 403, "staff": 404, "kitchen": 403}
# food safety: a site's own staff record (kitchen staff at their kitchen only); officers read
FS_RECORD_A = {"admin": 201, "officer": 403, "staff": 201, "kitchen": 404}
FS_RECORD_B = {"admin": 201, "officer": 403, "staff": 404, "kitchen": 404}
FS_RECORD_K = {"admin": 201, "officer": 403, "staff": 404, "kitchen": 201}
FS_WRITE_A = {"admin": 200, "officer": 403, "staff": 200, "kitchen": 404}
FS_WRITE_B = {"admin": 200, "officer": 403, "staff": 404, "kitchen": 404}
FS_WRITE_K = {"admin": 200, "officer": 403, "staff": 404, "kitchen": 200}


def _fs_action(c: City) -> dict:
    return {"cause": "冰箱门未关严", "action_taken": "调整门封，复测温度", "affected_food": "无受影响食品"}


ENDPOINTS: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/api/v1/me", None, ALL_OK),
    ("GET", "/api/v1/auth/tokens", None, ALL_OK),
    ("GET", "/api/v1/districts", None, ALL_OK),
    ("GET", "/api/v1/districts/{c.a.id}", None, ALL_OK),
    ("GET", "/api/v1/districts/{c.b.id}", None, {"admin": 200, "officer": 404, "staff": 404, "kitchen": 404}),
    ("POST", "/api/v1/districts", _district_body, {"admin": 201, "officer": 403, "staff": 403, "kitchen": 403}),
    ("PATCH", "/api/v1/districts/{c.a.id}", lambda c: {"name": f"改名{next(_unique)}区"}, ADMIN_ONLY),
    ("GET", "/api/v1/communities", None, ALL_OK),
    ("GET", "/api/v1/communities/{c.community_a.id}", None, ALL_OK),
    (
        "GET",
        "/api/v1/communities/{c.community_b.id}",
        None,
        {"admin": 200, "officer": 404, "staff": 404, "kitchen": 404},
    ),
    (
        "POST",
        "/api/v1/communities",
        lambda c: {"district_id": c.a.id, "name": f"新{next(_unique)}社区"},
        {"admin": 201, "officer": 201, "staff": 403, "kitchen": 403},
    ),
    (
        "POST",
        "/api/v1/communities",
        lambda c: {"district_id": c.b.id, "name": f"新{next(_unique)}社区"},
        {"admin": 201, "officer": 404, "staff": 403, "kitchen": 403},
    ),
    (
        "PATCH",
        "/api/v1/communities/{c.community_a.id}",
        lambda c: {"name": f"改{next(_unique)}社区"},
        {"admin": 200, "officer": 200, "staff": 403, "kitchen": 403},
    ),
    (
        "PATCH",
        "/api/v1/communities/{c.community_b.id}",
        lambda c: {"name": f"改{next(_unique)}社区"},
        {"admin": 200, "officer": 404, "staff": 403, "kitchen": 403},
    ),
    ("GET", "/api/v1/canteens", None, ALL_OK),
    ("GET", "/api/v1/canteens/{c.canteen_a.id}", None, ALL_OK),
    ("GET", "/api/v1/canteens/{c.canteen_b.id}", None, {"admin": 200, "officer": 404, "staff": 404, "kitchen": 404}),
    ("GET", "/api/v1/canteens/{c.kitchen.id}", None, {"admin": 200, "officer": 200, "staff": 404, "kitchen": 200}),
    ("POST", "/api/v1/canteens", _canteen_body("a"), {"admin": 201, "officer": 201, "staff": 403, "kitchen": 403}),
    ("POST", "/api/v1/canteens", _canteen_body("b"), {"admin": 201, "officer": 404, "staff": 403, "kitchen": 403}),
    (
        "PATCH",
        "/api/v1/canteens/{c.canteen_a.id}",
        lambda c: {"seats": 60},
        {"admin": 200, "officer": 200, "staff": 403, "kitchen": 403},
    ),
    (
        "PATCH",
        "/api/v1/canteens/{c.canteen_b.id}",
        lambda c: {"seats": 60},
        {"admin": 200, "officer": 404, "staff": 403, "kitchen": 403},
    ),
    ("GET", "/api/v1/users", None, ADMIN_ONLY),
    ("GET", "/api/v1/users/{c.users[staff].id}", None, ADMIN_ONLY),
    ("POST", "/api/v1/users", _user_body, {"admin": 201, "officer": 403, "staff": 403, "kitchen": 403}),
    ("PATCH", "/api/v1/users/{c.users[staff].id}", lambda c: {"display_name": "改名"}, ADMIN_ONLY),
    ("POST", "/api/v1/users/{c.users[staff].id}/unlock", None, ADMIN_ONLY),
    # residents: staff read their district and find anyone by exact number; kitchens see no identities
    ("GET", "/api/v1/residents", None, {"admin": 200, "officer": 200, "staff": 422, "kitchen": 200}),
    ("GET", "/api/v1/residents?q=jy", None, ALL_OK),
    ("POST", "/api/v1/residents", _resident_body("a"), {"admin": 201, "officer": 201, "staff": 403, "kitchen": 403}),
    ("POST", "/api/v1/residents", _resident_body("b"), {"admin": 201, "officer": 404, "staff": 403, "kitchen": 403}),
    ("POST", "/api/v1/residents/lookup", lambda c: {"card_no": c.resident_a.active_card.card_no}, READ_A),
    (
        "POST",
        "/api/v1/residents/lookup",
        lambda c: {"card_no": c.resident_b.active_card.card_no},
        {"admin": 200, "officer": 404, "staff": 200, "kitchen": 404},
    ),
    ("GET", "/api/v1/residents/{c.resident_a.id}", None, READ_A),
    ("GET", "/api/v1/residents/{c.resident_b.id}", None, ONLY_ADMIN_SEES),
    ("PATCH", "/api/v1/residents/{c.resident_a.id}", lambda c: {"address": "新地址"}, WRITE_A),
    ("PATCH", "/api/v1/residents/{c.resident_b.id}", lambda c: {"address": "新地址"}, WRITE_B),
    ("POST", "/api/v1/residents/{c.resident_a.id}/reveal", None, WRITE_A),
    ("POST", "/api/v1/residents/{c.resident_b.id}/reveal", None, WRITE_B),
    ("GET", "/api/v1/residents/{c.resident_a.id}/categories", None, OFFICERS_READ_A),
    ("GET", "/api/v1/residents/{c.resident_b.id}/categories", None, WRITE_B),
    (
        "POST",
        "/api/v1/residents/{c.resident_a.id}/categories",
        lambda c: {"category": "disabled", "valid_from": "2026-01-01"},
        CREATE_A,
    ),
    (
        "POST",
        "/api/v1/residents/{c.resident_b.id}/categories",
        lambda c: {"category": "disabled", "valid_from": "2026-01-01"},
        CREATE_B,
    ),
    (
        "PATCH",
        "/api/v1/residents/{c.resident_a.id}/categories/{c.category_a.id}",
        lambda c: {"valid_to": "2026-06-30"},
        WRITE_A,
    ),
    ("GET", "/api/v1/residents/{c.resident_a.id}/held-categories", None, READ_A),
    ("GET", "/api/v1/residents/{c.resident_b.id}/held-categories", None, ONLY_ADMIN_SEES),
    ("GET", "/api/v1/residents/{c.resident_a.id}/status", None, OFFICERS_READ_A),
    (
        "POST",
        "/api/v1/residents/{c.resident_a.id}/status",
        lambda c: {"status": "suspended", "effective_on": clock.today().isoformat(), "reason": "住院"},
        CREATE_A,
    ),
    (
        "POST",
        "/api/v1/residents/{c.resident_b.id}/status",
        lambda c: {"status": "suspended", "effective_on": clock.today().isoformat(), "reason": "住院"},
        CREATE_B,
    ),
    ("POST", "/api/v1/residents/{c.resident_a.id}/card", lambda c: {"card_no": f"NEW-{next(_unique)}"}, CREATE_A),
    ("POST", "/api/v1/residents/{c.resident_b.id}/card", lambda c: {"card_no": f"NEW-{next(_unique)}"}, CREATE_B),
    ("POST", "/api/v1/residents/{c.resident_a.id}/card/block", lambda c: {"reason": "遗失"}, WRITE_A),
    # spreadsheets are officers' tools; a row of another district is that row's error (422), see test_imports
    ("GET", "/api/v1/residents/import-template.xlsx", None, WRITE_A),
    ("POST", "/api/v1/residents/import", _import_upload("a"), CREATE_A),
    (
        "POST",
        "/api/v1/residents/import",
        _import_upload("b"),
        {"admin": 201, "officer": 422, "staff": 403, "kitchen": 403},
    ),
    ("GET", "/api/v1/residents/export.xlsx", None, WRITE_A),
    ("POST", "/api/v1/residents/civil-affairs-feed", _feed_upload("resident_a"), WRITE_A),
    # another district's resident is a conflicting row of the answer, not a 404, see test_imports
    ("POST", "/api/v1/residents/civil-affairs-feed", _feed_upload("resident_b"), WRITE_A),
    # subsidy policies: staff read their district's (the policy in force at the counter); kitchens none
    ("GET", "/api/v1/subsidy-policies", None, ALL_OK),
    ("GET", "/api/v1/subsidy-policies/{c.policy_a.id}", None, READ_A),
    ("GET", "/api/v1/subsidy-policies/{c.policy_b.id}", None, ONLY_ADMIN_SEES),
    ("POST", "/api/v1/subsidy-policies", _policy_body("a"), CREATE_A),
    ("POST", "/api/v1/subsidy-policies", _policy_body("b"), CREATE_B),
    ("POST", "/api/v1/subsidy-policies/{c.policy_a.id}/end", lambda c: {"valid_to": "2026-12-31"}, WRITE_A),
    ("POST", "/api/v1/subsidy-policies/{c.policy_b.id}/end", lambda c: {"valid_to": "2026-12-31"}, WRITE_B),
    # meals: staff record and see their canteen's counter; officers audit their district; kitchens none
    ("GET", "/api/v1/meals", None, ALL_OK),
    ("GET", "/api/v1/meals/{c.meal_a.id}", None, READ_A),
    ("GET", "/api/v1/meals/{c.meal_b.id}", None, ONLY_ADMIN_SEES),
    ("POST", "/api/v1/meals", _meal_body("canteen_a"), RECORD_A),
    # staff may serve a resident of another district (residents eat where they like)
    ("POST", "/api/v1/meals", _meal_body("canteen_a", "resident_b"), RECORD_A),
    ("POST", "/api/v1/meals", _meal_body("canteen_b"), RECORD_B),
    ("POST", "/api/v1/meals/batch", _batch_body("canteen_a"), {**RECORD_A, "admin": 200, "staff": 200}),
    ("POST", "/api/v1/meals/{c.meal_a.id}/void", lambda c: {"reason": "记错了"}, {**ALL_OK, "kitchen": 403}),
    ("POST", "/api/v1/meals/{c.meal_b.id}/void", lambda c: {"reason": "记错了"}, {**WRITE_B, "staff": 404}),
    ("GET", "/api/v1/meals/cash-up?canteen_id={c.canteen_a.id}&date=2026-11-23", None, {**ALL_OK, "kitchen": 403}),
    (
        "GET",
        "/api/v1/meals/cash-up?canteen_id={c.canteen_b.id}&date=2026-11-23",
        None,
        {"admin": 200, "officer": 404, "staff": 404, "kitchen": 403},
    ),
    # food safety: each site's own staff (canteen or kitchen) record for their site only; officers
    # read their district's and verify deviations; a kitchen's staff see nothing of the canteens it supplies
    ("GET", "/api/v1/food-safety/staff", None, ALL_OK),
    ("POST", "/api/v1/food-safety/staff", scope_rows.site_body("canteen_a", name="厨师", job="cook"), FS_RECORD_A),
    ("POST", "/api/v1/food-safety/staff", scope_rows.site_body("canteen_b", name="厨师", job="cook"), FS_RECORD_B),
    ("POST", "/api/v1/food-safety/staff", scope_rows.site_body("kitchen", name="司机", job="driver"), FS_RECORD_K),
    ("GET", "/api/v1/food-safety/staff/{c.food_safety.a.staff.id}", None, READ_A),
    ("GET", "/api/v1/food-safety/staff/{c.food_safety.b.staff.id}", None, ONLY_ADMIN_SEES),
    ("PATCH", "/api/v1/food-safety/staff/{c.food_safety.a.staff.id}", lambda c: {"job": "server"}, FS_WRITE_A),
    ("PATCH", "/api/v1/food-safety/staff/{c.food_safety.b.staff.id}", lambda c: {"job": "server"}, FS_WRITE_B),
    (
        "POST",
        "/api/v1/food-safety/staff/{c.food_safety.a.staff.id}/certificates",
        lambda c: {"number": f"JKZ{next(_unique)}", "issued_on": clock.today().isoformat()},
        FS_RECORD_A,
    ),
    (
        "POST",
        "/api/v1/food-safety/staff/{c.food_safety.b.staff.id}/certificates",
        lambda c: {"number": f"JKZ{next(_unique)}", "issued_on": clock.today().isoformat()},
        FS_RECORD_B,
    ),
    ("GET", "/api/v1/food-safety/certificate-alerts", None, ALL_OK),
    ("GET", "/api/v1/food-safety/devices", None, ALL_OK),
    (
        "POST",
        "/api/v1/food-safety/devices",
        scope_rows.site_body("canteen_a", name="冷藏柜", kind="refrigerator"),
        FS_RECORD_A,
    ),
    (
        "POST",
        "/api/v1/food-safety/devices",
        scope_rows.site_body("canteen_b", name="冷藏柜", kind="refrigerator"),
        FS_RECORD_B,
    ),
    ("GET", "/api/v1/food-safety/devices/{c.food_safety.a.device.id}", None, READ_A),
    ("GET", "/api/v1/food-safety/devices/{c.food_safety.b.device.id}", None, ONLY_ADMIN_SEES),
    ("PATCH", "/api/v1/food-safety/devices/{c.food_safety.a.device.id}", lambda c: {"retired_on": None}, FS_WRITE_A),
    ("PATCH", "/api/v1/food-safety/devices/{c.food_safety.b.device.id}", lambda c: {"retired_on": None}, FS_WRITE_B),
    ("GET", "/api/v1/food-safety/readings", None, ALL_OK),
    (
        "POST",
        "/api/v1/food-safety/readings",
        lambda c: {"device_id": c.food_safety.a.device.id, "temperature_c": 4.5},
        FS_RECORD_A,
    ),
    (
        "POST",
        "/api/v1/food-safety/readings",
        lambda c: {"device_id": c.food_safety.b.device.id, "temperature_c": 4.5},
        FS_RECORD_B,
    ),
    ("GET", "/api/v1/food-safety/served-dishes?site_id={c.canteen_a.id}&day=2026-11-23", None, READ_A),
    ("GET", "/api/v1/food-safety/served-dishes?site_id={c.canteen_b.id}&day=2026-11-23", None, ONLY_ADMIN_SEES),
    (
        "POST",
        "/api/v1/food-safety/served-dishes",
        scope_rows.site_body("canteen_a", day="2026-11-23", slot="lunch", dishes=["米饭", "红烧肉"]),
        FS_WRITE_A,
    ),
    (
        "POST",
        "/api/v1/food-safety/served-dishes",
        scope_rows.site_body("canteen_b", day="2026-11-23", slot="lunch", dishes=["米饭"]),
        FS_WRITE_B,
    ),
    ("GET", "/api/v1/food-safety/samples", None, ALL_OK),
    ("POST", "/api/v1/food-safety/samples", scope_rows.sample_body("canteen_a", "a"), FS_RECORD_A),
    ("POST", "/api/v1/food-safety/samples", scope_rows.sample_body("canteen_b", "b"), FS_RECORD_B),
    ("POST", "/api/v1/food-safety/samples", scope_rows.sample_body("kitchen", "kitchen"), FS_RECORD_K),
    ("GET", "/api/v1/food-safety/samples/{c.food_safety.a.sample.id}", None, READ_A),
    ("GET", "/api/v1/food-safety/samples/{c.food_safety.b.sample.id}", None, ONLY_ADMIN_SEES),
    ("POST", "/api/v1/food-safety/samples/{c.food_safety.a.sample.id}/dispose", None, FS_WRITE_A),
    ("POST", "/api/v1/food-safety/samples/{c.food_safety.b.sample.id}/dispose", None, FS_WRITE_B),
    (
        "POST",
        "/api/v1/food-safety/checklist-entries",
        scope_rows.site_body("canteen_a", day="2026-11-23", item="pest_control", passed=True),
        FS_RECORD_A,
    ),
    (
        "POST",
        "/api/v1/food-safety/checklist-entries",
        scope_rows.site_body("canteen_b", day="2026-11-23", item="pest_control", passed=True),
        FS_RECORD_B,
    ),
    ("POST", "/api/v1/food-safety/morning-checks", scope_rows.morning_check_body("canteen_a", "a"), FS_RECORD_A),
    ("POST", "/api/v1/food-safety/morning-checks", scope_rows.morning_check_body("canteen_b", "b"), FS_RECORD_B),
    ("GET", "/api/v1/food-safety/day?site_id={c.canteen_a.id}", None, READ_A),
    ("GET", "/api/v1/food-safety/day?site_id={c.canteen_b.id}", None, ONLY_ADMIN_SEES),
    ("GET", "/api/v1/food-safety/day?site_id={c.kitchen.id}", None, {**READ_A, "staff": 404, "kitchen": 200}),
    ("GET", "/api/v1/food-safety/deviations", None, ALL_OK),
    (
        "POST",
        "/api/v1/food-safety/deviations",
        scope_rows.site_body("canteen_a", kind="reported", found="发现鼠迹"),
        {**CREATE_A, "staff": 201, "kitchen": 404},
    ),
    (
        "POST",
        "/api/v1/food-safety/deviations",
        scope_rows.site_body("canteen_b", kind="reported", found="发现鼠迹"),
        {"admin": 201, "officer": 404, "staff": 404, "kitchen": 404},
    ),
    (
        "POST",
        "/api/v1/food-safety/deviations",
        scope_rows.site_body("kitchen", kind="delivery_temperature", found="送达时菜品 45 ℃"),
        {**CREATE_A, "staff": 404, "kitchen": 201},
    ),
    ("GET", "/api/v1/food-safety/deviations/{c.food_safety.a.open.id}", None, READ_A),
    ("GET", "/api/v1/food-safety/deviations/{c.food_safety.b.open.id}", None, ONLY_ADMIN_SEES),
    ("POST", "/api/v1/food-safety/deviations/{c.food_safety.a.open.id}/acknowledge", None, FS_WRITE_A),
    ("POST", "/api/v1/food-safety/deviations/{c.food_safety.b.open.id}/acknowledge", None, FS_WRITE_B),
    ("POST", "/api/v1/food-safety/deviations/{c.food_safety.kitchen.open.id}/acknowledge", None, FS_WRITE_K),
    ("POST", "/api/v1/food-safety/deviations/{c.food_safety.a.acknowledged.id}/action", _fs_action, FS_WRITE_A),
    ("POST", "/api/v1/food-safety/deviations/{c.food_safety.b.acknowledged.id}/action", _fs_action, FS_WRITE_B),
    (
        "POST",
        "/api/v1/food-safety/deviations/{c.food_safety.a.action_recorded.id}/corrections",
        lambda c: {**_fs_action(c), "reason": "补充说明"},
        FS_WRITE_A,
    ),
    (
        "POST",
        "/api/v1/food-safety/deviations/{c.food_safety.b.action_recorded.id}/corrections",
        lambda c: {**_fs_action(c), "reason": "补充说明"},
        FS_WRITE_B,
    ),
    ("POST", "/api/v1/food-safety/deviations/{c.food_safety.a.action_recorded.id}/verify", None, WRITE_A),
    ("POST", "/api/v1/food-safety/deviations/{c.food_safety.b.action_recorded.id}/verify", None, WRITE_B),
    (
        "POST",
        "/api/v1/food-safety/deviations/{c.food_safety.a.action_recorded.id}/return",
        lambda c: {"reason": "请说明剩余食品去向"},
        WRITE_A,
    ),
    (
        "POST",
        "/api/v1/food-safety/deviations/{c.food_safety.b.action_recorded.id}/return",
        lambda c: {"reason": "请说明剩余食品去向"},
        WRITE_B,
    ),
    ("GET", "/api/v1/food-safety/compliance", None, ALL_OK),
]
# Endpoints exercised by their own tests rather than the matrix, with the reason.
COVERED_ELSEWHERE = {
    ("POST", "/api/v1/auth/token"): "public: tests/auth/test_api.py",
    ("DELETE", "/api/v1/auth/token"): "revokes the caller's own token: tests/auth/test_api.py",
    ("POST", "/api/v1/auth/tokens/<int:token_id>/revoke"): "owner vs other: tests/auth/test_api.py",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "expected"), ENDPOINTS, ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS])
def test_role_endpoint_matrix(api, city, role, method, path, body, expected):
    url = path.format(c=city)
    payload = body(city) if body else None
    call = getattr(api(city.users[role]), method.lower())
    if isinstance(payload, Upload):
        files = {"file": (io.BytesIO(payload.content), payload.filename)}
        response = call(url, data=files, content_type="multipart/form-data")
    else:
        # every POST carries a fresh Idempotency-Key (recording a meal needs one; others ignore it)
        response = call(url, json=payload, headers={"Idempotency-Key": f"matrix-{next(_unique)}"})
    want = 401 if role == "anonymous" else expected[role]
    assert response.status_code == want, (role, method, url, response.get_json())
    if want >= 400:
        error = response.get_json()
        assert set(error) >= {"code", "message", "errors"}


def test_every_api_endpoint_is_in_the_matrix(app, city):
    adapter = app.url_map.bind("localhost")
    in_matrix = set()
    for method, path, *_ in ENDPOINTS:
        rule, _ = adapter.match(path.format(c=city).split("?")[0], method=method, return_rule=True)
        in_matrix.add((method, rule.rule))
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            key = (method, rule.rule)
            assert key in in_matrix or key in COVERED_ELSEWHERE, f"{method} {rule.rule} is missing from the matrix"


def test_lists_hold_only_rows_in_scope(api, city):
    def ids(role, url):
        response = api(city.users[role]).get(url)
        assert response.status_code == 200
        return {row["id"] for row in response.get_json()}

    everyone = {city.kitchen.id, city.canteen_a.id, city.canteen_b.id}
    assert everyone <= ids("admin", "/api/v1/canteens?page_size=500")
    assert ids("officer", "/api/v1/canteens") == {city.kitchen.id, city.canteen_a.id}
    assert ids("staff", "/api/v1/canteens") == {city.canteen_a.id}
    assert ids("kitchen", "/api/v1/canteens") == {city.kitchen.id, city.canteen_a.id}
    assert ids("officer", "/api/v1/districts") == {city.a.id}
    assert ids("staff", "/api/v1/communities") == {city.community_a.id} | {c.id for c in city.a.communities}
    assert ids("officer", "/api/v1/communities") == {c.id for c in city.a.communities}
    assert {city.policy_a.id, city.policy_b.id} <= ids("admin", "/api/v1/subsidy-policies?page_size=500")
    assert ids("officer", "/api/v1/subsidy-policies") == {city.policy_a.id}
    assert ids("staff", "/api/v1/subsidy-policies") == {city.policy_a.id}
    assert ids("kitchen", "/api/v1/subsidy-policies") == set()
    assert ids("admin", "/api/v1/meals?page_size=500") >= {city.meal_a.id, city.meal_b.id}
    assert ids("officer", "/api/v1/meals") == {city.meal_a.id}
    assert ids("staff", "/api/v1/meals") == {city.meal_a.id}
    assert ids("kitchen", "/api/v1/meals") == set()


def test_pagination_header_counts_scoped_rows(api, city):
    for _ in range(3):
        CanteenFactory(district=city.a)
    response = api(city.users["officer"]).get("/api/v1/canteens?page=1&page_size=2")
    import json

    meta = json.loads(response.headers["X-Pagination"])
    assert meta["total"] == 5 and meta["total_pages"] == 3
    assert len(response.get_json()) == 2
