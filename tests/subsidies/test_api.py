"""Subsidy policies through the HTTP API: the shapes of DESIGN.md "API shapes", refusals in the
one error shape with nothing written, and who may create, read and end."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from canteen.core.audit_log import AuditEntry
from canteen.extensions import db
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
)
from tests.subsidies.conftest import make_policy, rule

URL = "/api/v1/subsidy-policies"


def _body(district, **overrides):
    body = {
        "district_id": district.id,
        "name": "2026 年助餐补贴",
        "valid_from": "2026-01-01",
        "valid_to": None,
        "operator_allowance_fen": 300,
        "rules": [
            {
                "category": "subsistence",
                "slot": "lunch",
                "amount_fen": 800,
                "unit": "per_meal",
                "min_price_fen": None,
                "max_per_day": None,
                "max_per_month": 31,
            },
            {
                "category": "aged_60_plus",
                "slot": "any",
                "amount_fen": 300,
                "unit": "per_day",
                "min_price_fen": 1000,
                "max_per_day": None,
                "max_per_month": None,
            },
        ],
    }
    body.update(overrides)
    return body


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_create_answers_the_policy_with_rule_ids(api):
    district = DistrictFactory()
    response = api(officer(district)).post(URL, json=_body(district))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {
        "id",
        "district_id",
        "name",
        "valid_from",
        "valid_to",
        "operator_allowance_fen",
        "rules",
        "created_at",
        "ended_at",
    }
    assert (body["district_id"], body["name"], body["valid_from"], body["valid_to"]) == (
        district.id,
        "2026 年助餐补贴",
        "2026-01-01",
        None,
    )
    assert body["operator_allowance_fen"] == 300 and body["ended_at"] is None
    first, second = body["rules"]
    assert isinstance(first["id"], int) and second["id"] > first["id"]
    assert {k: v for k, v in first.items() if k != "id"} == _body(district)["rules"][0]
    assert {k: v for k, v in second.items() if k != "id"} == _body(district)["rules"][1]
    # what was stored is what was answered, in integer fen
    stored = db.session.get(SubsidyPolicy, body["id"])
    assert [r.amount_fen for r in stored.rules] == [800, 300]
    assert all(type(r.amount_fen) is int for r in stored.rules)


def test_optional_fields_have_defaults(api):
    district = DistrictFactory()
    body = {
        "district_id": district.id,
        "name": "最简",
        "valid_from": "2026-01-01",
        "rules": [{"category": "aged_80_plus", "slot": "lunch", "amount_fen": 500}],
    }
    created = api(admin()).post(URL, json=body)
    assert created.status_code == 201, created.get_json()
    answer = created.get_json()
    assert answer["valid_to"] is None and answer["operator_allowance_fen"] == 0
    assert answer["rules"][0]["unit"] == "per_meal"
    assert answer["rules"][0]["min_price_fen"] is None and answer["rules"][0]["max_per_month"] is None


def test_get_list_and_end(api):
    district = DistrictFactory()
    caller = api(officer(district))
    created = caller.post(URL, json=_body(district)).get_json()

    one = caller.get(f"{URL}/{created['id']}")
    assert one.status_code == 200 and one.get_json() == created

    listing = caller.get(f"{URL}?district_id={district.id}&on=2026-03-01&page=1&page_size=10")
    assert listing.status_code == 200
    assert [p["id"] for p in listing.get_json()] == [created["id"]]
    assert json.loads(listing.headers["X-Pagination"])["total"] == 1
    assert caller.get(f"{URL}?on=2025-12-31").get_json() == []

    ended = caller.post(f"{URL}/{created['id']}/end", json={"valid_to": "2026-06-30"})
    assert ended.status_code == 200, ended.get_json()
    assert ended.get_json()["valid_to"] == "2026-06-30" and ended.get_json()["ended_at"] is not None
    assert caller.get(f"{URL}?on=2026-07-01").get_json() == []

    successor = caller.post(URL, json=_body(district, name="2026 下半年", valid_from="2026-07-01"))
    assert successor.status_code == 201, successor.get_json()


def test_pagination_header(api):
    district = DistrictFactory()
    for month in range(1, 6):
        make_policy(
            district,
            [rule("aged_60_plus", "any", 300)],
            valid_from=date(2026, month, 1),
            valid_to=date(2026, month, 28),
        )
    response = api(officer(district)).get(f"{URL}?page=2&page_size=2")
    assert response.status_code == 200
    meta = json.loads(response.headers["X-Pagination"])
    assert meta["total"] == 5 and meta["total_pages"] == 3 and meta["page"] == 2
    assert [p["valid_from"] for p in response.get_json()] == ["2026-03-01", "2026-02-01"]


def test_overlap_is_409_in_the_one_shape(api):
    district = DistrictFactory()
    caller = api(officer(district))
    assert caller.post(URL, json=_body(district)).status_code == 201
    for valid_from, valid_to in (("2027-01-01", None), ("2025-01-01", "2026-01-01")):
        response = caller.post(URL, json=_body(district, valid_from=valid_from, valid_to=valid_to))
        assert response.status_code == 409
        error = response.get_json()
        assert set(error) == {"code", "message", "errors"}
        assert error["code"] == "policy_overlap" and error["errors"]["valid_from"]
    assert _count(SubsidyPolicy) == 1


def _with_rule(district, **changes):
    rules = _body(district)["rules"]
    rules[0] = {**rules[0], **changes}
    return _body(district, rules=rules)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda d: _with_rule(d, amount_fen=800.0), "rules"),
        (lambda d: _with_rule(d, amount_fen=7.5), "rules"),
        (lambda d: _with_rule(d, amount_fen="800"), "rules"),
        (lambda d: _with_rule(d, amount_fen=-800), "rules"),
        (lambda d: _with_rule(d, amount_fen=0), "rules"),
        (lambda d: _with_rule(d, amount_fen=True), "rules"),
        (lambda d: _with_rule(d, amount_fen=10**20), "rules"),
        (lambda d: _with_rule(d, min_price_fen=-1), "rules"),
        (lambda d: _with_rule(d, min_price_fen=9.99), "rules"),
        (lambda d: _with_rule(d, max_per_month=0), "rules"),
        (lambda d: _with_rule(d, max_per_day=1.5), "rules"),
        (lambda d: _with_rule(d, category="aged_70_plus"), "rules"),
        (lambda d: _with_rule(d, slot="supper"), "rules"),
        (lambda d: _with_rule(d, unit="per_week"), "rules"),
        (lambda d: _with_rule(d, discount_fen=100), "rules"),
        (lambda d: _with_rule(d, unit="per_day", max_per_day=1), "rules"),
        (lambda d: _with_rule(d, category="aged_60_plus", slot="any"), "rules"),
        (lambda d: _body(d, rules=[]), "rules"),
        (lambda d: {k: v for k, v in _body(d).items() if k != "rules"}, "rules"),
        (lambda d: _body(d, operator_allowance_fen=3.0), "operator_allowance_fen"),
        (lambda d: _body(d, operator_allowance_fen=-300), "operator_allowance_fen"),
        (lambda d: _body(d, valid_from="2026-02-30"), "valid_from"),
        (lambda d: _body(d, valid_to="2025-12-31"), "valid_to"),
        (lambda d: _body(d, name=" "), "name"),
        (lambda d: _body(d, policy_no="X-1"), "policy_no"),
        (lambda d: _body(d, district_id="1"), "district_id"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(api, make, field):
    district = DistrictFactory()
    response = api(officer(district)).post(URL, json=make(district))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert set(error) == {"code", "message", "errors"}
    assert error["code"] == "validation_error" and field in error["errors"], error
    assert _count(SubsidyPolicy) == 0 and _count(SubsidyRule) == 0


def test_rule_errors_name_the_rule_and_field(api):
    district = DistrictFactory()
    response = api(officer(district)).post(URL, json=_with_rule(district, amount_fen=7.5, slot="supper"))
    assert response.get_json()["errors"]["rules"] == [
        "0: slot: Must be one of: breakfast, lunch, dinner, any.",
        "0: amount_fen: Not a valid integer.",
    ]


def test_malformed_json_is_400(api):
    district = DistrictFactory()
    response = api(officer(district)).post(URL, data="{", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["code"] == "malformed_json"


def test_end_refusals(api, no_usage_checks):
    district = DistrictFactory()
    caller = api(officer(district))
    created = caller.post(URL, json=_body(district)).get_json()
    end_url = f"{URL}/{created['id']}/end"

    before = caller.post(end_url, json={"valid_to": "2025-12-31"})
    assert before.status_code == 422 and "valid_to" in before.get_json()["errors"]
    for bad in ({}, {"valid_to": "tomorrow"}, {"valid_to": "2026-06-30", "reason": "x"}):
        assert caller.post(end_url, json=bad).status_code == 422

    subsidy_service.register_usage_check(lambda policy: date(2026, 4, 10))
    in_use = caller.post(end_url, json={"valid_to": "2026-04-09"})
    assert in_use.status_code == 409
    assert in_use.get_json()["code"] == "policy_in_use" and in_use.get_json()["errors"]["valid_to"]
    assert db.session.get(SubsidyPolicy, created["id"]).valid_to is None

    assert caller.post(end_url, json={"valid_to": "2026-04-10"}).status_code == 200
    extended = caller.post(end_url, json={"valid_to": "2026-12-31"})
    assert extended.status_code == 422 and extended.get_json()["code"] == "policy_cannot_extend"


def test_scoping(api):
    district, other = DistrictFactory(), DistrictFactory()
    canteen = CanteenFactory(district=district)
    theirs = make_policy(other, [rule("aged_60_plus", "any", 300)])
    mine = make_policy(district, [rule("aged_60_plus", "any", 300)])
    me = api(officer(district))

    # another district: not found, whether reading, creating or ending
    assert me.get(f"{URL}/{theirs.id}").status_code == 404
    refused = me.post(URL, json=_body(other, valid_from="2030-01-01"))
    assert refused.status_code == 404 and refused.get_json()["code"] == "district_not_found"
    assert me.post(f"{URL}/{theirs.id}/end", json={"valid_to": "2026-12-31"}).status_code == 404
    assert [p["id"] for p in me.get(URL).get_json()] == [mine.id]

    staff = api(canteen_staff(canteen))
    assert staff.get(f"{URL}/{mine.id}").status_code == 200  # the policy in force at their counter
    assert staff.get(f"{URL}/{theirs.id}").status_code == 404
    assert staff.post(URL, json=_body(district, valid_from="2030-01-01")).status_code == 403
    assert staff.post(f"{URL}/{mine.id}/end", json={"valid_to": "2026-12-31"}).status_code == 403

    kitchen = api(kitchen_staff(KitchenFactory(district=district)))
    assert kitchen.get(URL).get_json() == []
    assert kitchen.get(f"{URL}/{mine.id}").status_code == 404

    assert api(None).get(URL).status_code == 401
    assert _count(SubsidyPolicy) == 2


def test_writes_are_in_the_district_audit_chain(api):
    district = DistrictFactory()
    created = api(officer(district)).post(URL, json=_body(district)).get_json()
    entries = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.entity.in_(("subsidy_policies", "subsidy_rules")))
    ).all()
    assert {(e.entity, e.action) for e in entries} == {("subsidy_policies", "insert"), ("subsidy_rules", "insert")}
    assert len(entries) == 3 and {e.chain for e in entries} == {f"district:{district.id}"}
    assert any(e.entity_id == created["id"] and e.after["operator_allowance_fen"] == 300 for e in entries)


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/api/openapi.json").get_json()
    assert {"/api/v1/subsidy-policies", "/api/v1/subsidy-policies/{policy_id}"} <= set(spec["paths"])
    assert "post" in spec["paths"]["/api/v1/subsidy-policies/{policy_id}/end"]
