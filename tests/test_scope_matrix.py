"""The role × endpoint matrix: every API endpoint, called by every role, answers as DESIGN.md's
"Who uses it" sets out — in scope 2xx, out-of-scope ids 404, forbidden actions 403, no token 401.

Later issues add their endpoints to ENDPOINTS; `test_every_api_endpoint_is_in_the_matrix`
fails when one is missing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import (
    CanteenFactory,
    CommunityFactory,
    DistrictFactory,
    KitchenFactory,
    admin,
    canteen_staff,
    kitchen_staff,
    officer,
)

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
    return City(a, b, CommunityFactory(district=a), CommunityFactory(district=b), kitchen, canteen_a, canteen_b, users)


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


def _user_body(c: City) -> dict:
    return {"username": f"matrix.{next(_unique)}", "role": "admin", "password": "long-enough-pw"}


# (method, path template, body maker, expected status per role)
# path templates are formatted with the City: {c.a.id} etc.
ALL_OK = {"admin": 200, "officer": 200, "staff": 200, "kitchen": 200}
ADMIN_ONLY = {"admin": 200, "officer": 403, "staff": 403, "kitchen": 403}
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
    response = getattr(api(city.users[role]), method.lower())(url, json=payload)
    want = 401 if role == "anonymous" else expected[role]
    assert response.status_code == want, (role, method, url, response.get_json())
    if want >= 400:
        error = response.get_json()
        assert set(error) >= {"code", "message", "errors"}


def test_every_api_endpoint_is_in_the_matrix(app):
    in_matrix = {(m, p.replace("{c.a.id}", "<int:district_id>")) for m, p, *_ in ENDPOINTS}
    normalised = set()
    for method, path in in_matrix:
        for placeholder, rule in (
            ("{c.b.id}", "<int:district_id>"),
            ("{c.community_a.id}", "<int:community_id>"),
            ("{c.community_b.id}", "<int:community_id>"),
            ("{c.canteen_a.id}", "<int:canteen_id>"),
            ("{c.canteen_b.id}", "<int:canteen_id>"),
            ("{c.kitchen.id}", "<int:canteen_id>"),
            ("{c.users[staff].id}", "<int:user_id>"),
        ):
            path = path.replace(placeholder, rule)
        normalised.add((method, path))
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            key = (method, rule.rule)
            assert key in normalised or key in COVERED_ELSEWHERE, f"{method} {rule.rule} is missing from the matrix"


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


def test_pagination_header_counts_scoped_rows(api, city):
    for _ in range(3):
        CanteenFactory(district=city.a)
    response = api(city.users["officer"]).get("/api/v1/canteens?page=1&page_size=2")
    import json

    meta = json.loads(response.headers["X-Pagination"])
    assert meta["total"] == 5 and meta["total_pages"] == 3
    assert len(response.get_json()) == 2
