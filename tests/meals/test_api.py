"""The meals API as a client sees it: the answer shapes DESIGN.md "API shapes" pins, the
Idempotency-Key header, 409 bodies, the batch answer, voids, listing with X-Pagination, the
cash-up, and every bad input answered with a stable code and nothing written."""

from __future__ import annotations

import json
from datetime import date, timedelta

import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.extensions import db
from canteen.meals.models import IdempotencyKey, MealRecord
from tests.factories import CanteenFactory, canteen_staff
from tests.meals.conftest import meal_json, new_key, resident

CONTRACT_FIELDS = {
    "id",
    "resident_id",
    "canteen_id",
    "served_on",
    "slot",
    "mode",
    "price_fen",
    "subsidy_fen",
    "copay_fen",
    "rule",
    "warnings",
    "status",
}


def _post(api, user, body, key=None):
    return api(user).post("/api/v1/meals", json=body, headers={"Idempotency-Key": key or new_key()})


def _count(model) -> int:
    with scoping.unrestricted():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_recording_answers_201_in_the_contract_shape(site, api):
    person = resident(site["district"], birth=date(1950, 5, 1))
    served_at = f"{clock.today().isoformat()}T00:00:01"
    response = _post(api, site["staff"], meal_json(site["canteen"], person, served_at=served_at))
    assert response.status_code == 201, response.get_json()
    meal = response.get_json()
    assert set(meal) >= CONTRACT_FIELDS
    rule = next(r for r in site["policy"].rules if r.category == "aged_60_plus")
    assert meal["rule"] == {
        "id": rule.id,
        "policy_id": site["policy"].id,
        "category": "aged_60_plus",
        "amount_fen": 300,
        "unit": "per_meal",
    }
    assert (meal["price_fen"], meal["subsidy_fen"], meal["copay_fen"], meal["status"]) == (1500, 300, 1200, "valid")
    assert meal["served_at"] == f"{clock.today().isoformat()}T00:00:01+08:00"  # Asia/Shanghai, as sent
    assert meal["warnings"] == [
        {"code": "outside_opening_hours", "message": "Served at 00:00, outside lunch hours (11:00–13:30)."}
    ]
    assert "id_number" not in json.dumps(meal)


def test_the_idempotency_key_header_is_required(site, api):
    person = resident(site["district"])
    response = api(site["staff"]).post("/api/v1/meals", json=meal_json(site["canteen"], person))
    assert (response.status_code, response.get_json()["code"]) == (400, "idempotency_key_missing")
    bad = _post(api, site["staff"], meal_json(site["canteen"], person), key="with spaces inside")
    assert bad.status_code == 400
    assert _count(MealRecord) == 0


def test_a_retry_replays_and_a_reused_key_is_refused(site, api):
    person = resident(site["district"])
    key, body = new_key(), meal_json(site["canteen"], person)
    first = _post(api, site["staff"], body, key)
    again = _post(api, site["staff"], body, key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    other = _post(api, site["staff"], {**body, "slot": "dinner"}, key)
    assert (other.status_code, other.get_json()["code"]) == (422, "idempotency_key_reused")
    assert _count(MealRecord) == 1 and _count(IdempotencyKey) == 1


def test_a_second_meal_for_the_slot_answers_409_with_where(site, api):
    person = resident(site["district"])
    first = _post(api, site["staff"], meal_json(site["canteen"], person)).get_json()
    again = _post(api, site["staff"], meal_json(site["canteen"], person))
    body = again.get_json()
    assert (again.status_code, body["code"]) == (409, "meal_already_recorded")
    assert (body["meal_id"], body["canteen_name"], body["slot"]) == (first["id"], site["canteen"].name, "lunch")
    other = CanteenFactory(district=site["district"])
    elsewhere = _post(api, canteen_staff(other), meal_json(other, person)).get_json()
    assert "meal_id" not in elsewhere and elsewhere["canteen_name"] == site["canteen"].name


def test_bad_input_is_a_field_error_and_writes_nothing(site, api):
    person = resident(site["district"])
    cases = [
        ({**meal_json(site["canteen"], person), "price_fen": 12.5}, "price_fen"),
        ({**meal_json(site["canteen"], person), "price_fen": -1}, "price_fen"),
        ({**meal_json(site["canteen"], person), "price_fen": 10**30}, "price_fen"),
        ({**meal_json(site["canteen"], person), "slot": "supper"}, "slot"),
        ({**meal_json(site["canteen"], person), "mode": "drone"}, "mode"),
        ({**meal_json(site["canteen"], person), "verification": "staff_attested"}, "attest_reason"),
        ({**meal_json(site["canteen"], person), "served_on": "2026-13-01"}, "served_on"),
        ({**meal_json(site["canteen"], person), "card_no": "X1"}, "resident_id"),
        ({**meal_json(site["canteen"], person), "surprise": 1}, "surprise"),
        ({k: v for k, v in meal_json(site["canteen"], person).items() if k != "canteen_id"}, "canteen_id"),
    ]
    for body, field in cases:
        response = _post(api, site["staff"], body)
        error = response.get_json()
        assert response.status_code == 422, (field, error)
        assert field in error["errors"], (field, error)
    assert _count(MealRecord) == 0 and _count(IdempotencyKey) == 0


def test_refusals_answer_their_codes(site, api):
    person = resident(site["district"])
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    response = _post(api, site["staff"], meal_json(site["canteen"], person, served_on=tomorrow))
    assert (response.status_code, response.get_json()["code"]) == (422, "served_on_in_future")
    response = _post(api, site["staff"], {**meal_json(site["canteen"], person), "resident_id": 2**62})
    assert (response.status_code, response.get_json()["code"]) == (404, "resident_not_found")
    assert _count(MealRecord) == 0


def test_a_batch_over_http(site, api):
    people = [resident(site["district"]) for _ in range(2)]
    items = [
        {"idempotency_key": new_key(), **meal_json(site["canteen"], people[0])},
        {"idempotency_key": new_key(), **meal_json(site["canteen"], people[0])},
        {"idempotency_key": new_key(), **meal_json(site["canteen"], people[1], price_fen="15")},
    ]
    response = api(site["staff"]).post("/api/v1/meals/batch", json={"items": items})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["idempotency_key"], r["status"]) for r in results] == [
        (items[0]["idempotency_key"], "created"),
        (items[1]["idempotency_key"], "refused"),
        (items[2]["idempotency_key"], "refused"),
    ]
    assert results[0]["meal"]["resident_id"] == people[0].id and results[0]["error"] is None
    assert results[1]["error"]["code"] == "meal_already_recorded"
    assert results[2]["error"]["errors"] == {"price_fen": ["Not a valid integer."]}
    replay = api(site["staff"]).post("/api/v1/meals/batch", json={"items": items[:1]}).get_json()["results"]
    assert replay[0]["status"] == "replayed" and replay[0]["meal"] == results[0]["meal"]
    too_many = api(site["staff"]).post("/api/v1/meals/batch", json={"items": [{}] * 501})
    assert (too_many.status_code, list(too_many.get_json()["errors"])) == (422, ["items"])
    assert _count(MealRecord) == 1


def test_void_over_http(site, api):
    person = resident(site["district"])
    meal = _post(api, site["staff"], meal_json(site["canteen"], person)).get_json()
    blank = api(site["staff"]).post(f"/api/v1/meals/{meal['id']}/void", json={"reason": " "})
    assert blank.status_code == 422
    voided = api(site["staff"]).post(f"/api/v1/meals/{meal['id']}/void", json={"reason": "录错了"})
    assert voided.status_code == 200
    body = voided.get_json()
    assert (body["status"], body["void_reason"], body["voided_by_id"]) == ("void", "录错了", site["staff"].id)
    twice = api(site["staff"]).post(f"/api/v1/meals/{meal['id']}/void", json={"reason": "再来"})
    assert (twice.status_code, twice.get_json()["code"]) == (409, "meal_already_void")
    assert api(site["staff"]).get(f"/api/v1/meals/{meal['id']}").get_json()["status"] == "void"


def test_listing_filters_and_paginates(site, api):
    people = [resident(site["district"]) for _ in range(3)]
    ids = [_post(api, site["staff"], meal_json(site["canteen"], p)).get_json()["id"] for p in people]
    dinner = _post(api, site["staff"], meal_json(site["canteen"], people[0], slot="dinner")).get_json()["id"]
    response = api(site["officer"]).get("/api/v1/meals?page_size=2")
    assert [m["id"] for m in response.get_json()] == [dinner, ids[2]]
    assert json.loads(response.headers["X-Pagination"])["total"] == 4
    lunches = api(site["staff"]).get(f"/api/v1/meals?slot=lunch&resident_id={people[0].id}").get_json()
    assert [m["id"] for m in lunches] == [ids[0]]
    today = clock.today().isoformat()
    assert len(api(site["staff"]).get(f"/api/v1/meals?date_from={today}&date_to={today}").get_json()) == 4
    bad = api(site["staff"]).get("/api/v1/meals?status=eaten")
    assert (bad.status_code, list(bad.get_json()["errors"])) == (422, ["status"])


def test_the_cash_up_over_http(site, api):
    person = resident(site["district"], birth=date(1950, 5, 1))
    _post(api, site["staff"], meal_json(site["canteen"], person, payment_method="alipay"))
    today = clock.today().isoformat()
    response = api(site["staff"]).get(f"/api/v1/meals/cash-up?canteen_id={site['canteen'].id}&date={today}")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["canteen_id"], body["date"]) == (site["canteen"].id, today)
    assert body["total"]["copay_by_method"] == {"alipay": 1200}
    assert [a["username"] for a in body["accounts"]] == [site["staff"].username]
    missing = api(site["staff"]).get(f"/api/v1/meals/cash-up?canteen_id={site['canteen'].id}")
    assert (missing.status_code, list(missing.get_json()["errors"])) == (422, ["date"])
