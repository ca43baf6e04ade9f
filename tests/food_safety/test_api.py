"""Food safety through the HTTP API: the answer shapes, the boundaries as a client sees them, refusals
in the one error shape with a stable code and nothing written, hostile input never a 500, personal
data masked in answers and in the audit log, and the deviation workflow with its revisions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.core.audit_log import AuditEntry
from canteen.extensions import db
from canteen.food_safety.models import Deviation, DeviationEvent, MorningCheck, RetainedSample, TemperatureReading
from tests.factories import (
    CanteenFactory,
    DistrictFactory,
    KitchenFactory,
    admin,
    canteen_staff,
    kitchen_staff,
    officer,
)
from tests.food_safety.conftest import at, count
from tests.food_safety.scope_rows import site_rows

BASE = "/api/v1/food-safety"


def _sample_body(site, **overrides):
    served_on = clock.today() - timedelta(days=3)
    body = {
        "site_id": site.canteen.id,
        "served_on": served_on.isoformat(),
        "slot": "lunch",
        "dish": "宫保鸡丁",
        "weight_g": 150,
        "container_sealed": True,
        "device_id": site.sample_fridge.id,
        "stored_at": f"{served_on.isoformat()}T11:30:00",  # no offset: Asia/Shanghai
    }
    body.update(overrides)
    return body


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) >= {"code", "message", "errors"}
    if code is not None:
        assert body["code"] == code, body
    return body


def test_a_sample_is_answered_in_full_with_its_warnings(api, site):
    response = api(site.staff).post(f"{BASE}/samples", json=_sample_body(site, weight_g=124))
    assert response.status_code == 201, response.get_json()
    sample = response.get_json()
    assert sample["dish"] == "宫保鸡丁" and sample["weight_g"] == 124 and sample["container_sealed"] is True
    assert sample["stored_at"].endswith("+00:00") and sample["stored_at"][11:16] == "03:30"  # 11:30 in Shanghai
    assert [w["code"] for w in sample["warnings"]] == ["sample_underweight"]
    assert sample["disposed_at"] is None and sample["recorded_by_id"] == site.staff.id
    deviations = api(site.staff).get(f"{BASE}/deviations?site_id={site.canteen.id}").get_json()
    assert [(d["kind"], d["status"], d["source_ref"]) for d in deviations] == [
        ("sample_underweight", "open", f"sample:{sample['id']}")
    ]
    assert (
        api(site.staff)
        .post(f"{BASE}/samples", json=_sample_body(site, weight_g=125, dish="米饭"))
        .get_json()["warnings"]
        == []
    )


def test_the_disposal_boundary_through_the_api(api, site):
    sample = api(site.staff).post(f"{BASE}/samples", json=_sample_body(site)).get_json()
    stored = clock.today() - timedelta(days=3)
    early = at(stored, "11:30") + timedelta(hours=47, minutes=59)
    body = _error(
        api(site.staff).post(f"{BASE}/samples/{sample['id']}/dispose", json={"disposed_at": early.isoformat()}),
        409,
        "sample_retention_not_over",
    )
    assert "disposed_at" in body["errors"]
    on_time = at(stored, "11:30") + timedelta(hours=48)
    response = api(site.staff).post(f"{BASE}/samples/{sample['id']}/dispose", json={"disposed_at": on_time.isoformat()})
    assert response.status_code == 200 and response.get_json()["disposed_at"] is not None
    _error(api(site.staff).post(f"{BASE}/samples/{sample['id']}/dispose", json={}), 409, "sample_already_disposed")


def test_a_refrigerator_at_8_0_and_at_8_1_through_the_api(api, site):
    ok = api(site.staff).post(f"{BASE}/readings", json={"device_id": site.fridge.id, "temperature_c": 8.0})
    high = api(site.staff).post(f"{BASE}/readings", json={"device_id": site.fridge.id, "temperature_c": 8.1})
    assert ok.get_json()["in_range"] is True and high.get_json()["in_range"] is False
    assert high.get_json()["temperature_c"] == 8.1 and high.get_json()["max_c"] == 8.0
    kinds = [d["kind"] for d in api(site.officer).get(f"{BASE}/deviations").get_json()]
    assert kinds == ["temperature_out_of_range"]


def test_a_certificate_expiring_today_and_one_expired_through_the_api(api, site):
    today = clock.today()
    staff_url = f"{BASE}/staff/{site.cook.id}"
    api(site.staff).post(
        f"{staff_url}/certificates",
        json={
            "number": "JK-9",
            "issued_on": (today - timedelta(days=364)).isoformat(),
            "expires_on": today.isoformat(),
        },
    )
    assert api(site.staff).get(staff_url).get_json()["certificate_status"] == "expiring"
    check = {
        "site_id": site.canteen.id,
        "day": today.isoformat(),
        "staff_id": site.cook.id,
        "present": True,
        "fit": True,
    }
    assert api(site.staff).post(f"{BASE}/morning-checks", json=check).status_code == 201
    api(site.staff).post(
        f"{staff_url}/certificates",
        json={
            "number": "JK-10",
            "issued_on": (today - timedelta(days=365)).isoformat(),
            "expires_on": (today - timedelta(days=1)).isoformat(),
        },
    )
    body = _error(api(site.staff).post(f"{BASE}/morning-checks", json=check), 422, "certificate_expired")
    assert "fit" in body["errors"] and count(MorningCheck) == 1
    alerts = api(site.officer).get(f"{BASE}/certificate-alerts").get_json()
    assert [(a["staff_name"], a["status"], a["days_left"]) for a in alerts] == [("王师傅", "expired", -1)]


def test_staff_phones_are_masked_in_answers_and_in_the_audit_log(api, site):
    response = api(site.staff).post(
        f"{BASE}/staff", json={"site_id": site.canteen.id, "name": "刘洋", "job": "driver", "phone": "138-1234-5678"}
    )
    person = response.get_json()
    assert response.status_code == 201 and person["phone_masked"] == "138****5678" and "phone" not in person
    stored = db.session.execute(sa.text("SELECT phone FROM site_staff WHERE id = :id"), {"id": person["id"]}).scalar()
    assert "13812345678" not in stored and stored.startswith("t1:")  # AES-GCM at rest, key id first
    assert person["certificate"] is None and person["certificate_status"] == "missing"
    with scoping.unrestricted():
        entry = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.entity == "site_staff", AuditEntry.entity_id == person["id"])
        ).one()
    assert entry.after["phone"] == "138****5678" and entry.actor_user_id == site.staff.id
    assert entry.canteen_id == site.canteen.id and entry.district_id == site.district.id
    listed = api(site.officer).get(f"{BASE}/staff?site_id={site.canteen.id}").get_json()
    assert {p["phone_masked"] for p in listed} == {"138****5678", "139****5678"}
    api(site.staff).patch(f"{BASE}/staff/{person['id']}", json={"phone": None})
    assert api(site.staff).get(f"{BASE}/staff/{person['id']}").get_json()["phone_masked"] is None


def test_the_deviation_workflow_and_its_revisions_through_the_api(api, site):
    created = api(site.staff).post(
        f"{BASE}/deviations", json={"site_id": site.canteen.id, "kind": "reported", "found": "冷冻柜结霜严重"}
    )
    deviation = created.get_json()
    assert created.status_code == 201 and deviation["status"] == "open" and deviation["current_action"] is None
    url = f"{BASE}/deviations/{deviation['id']}"
    _error(api(site.officer).post(f"{url}/acknowledge"), 403, "forbidden")
    assert api(site.staff).post(f"{url}/acknowledge").get_json()["status"] == "acknowledged"
    action = {"cause": "除霜不及时", "action_taken": "除霜并复测 -20 ℃", "affected_food": "无受影响食品"}
    assert api(site.staff).post(f"{url}/action", json=action).get_json()["current_action"]["revision"] == 1
    corrected = api(site.staff).post(
        f"{url}/corrections", json={**action, "affected_food": "3 kg 冻肉转移至备用冷冻柜", "reason": "补记食品去向"}
    )
    assert corrected.status_code == 200
    current = corrected.get_json()["current_action"]
    assert (current["revision"], current["affected_food"], current["note"]) == (
        2,
        "3 kg 冻肉转移至备用冷冻柜",
        "补记食品去向",
    )
    _error(api(site.staff).post(f"{url}/verify", json={}), 403)
    verified = api(site.officer).post(f"{url}/verify", json={"note": "已现场核实"}).get_json()
    assert verified["status"] == "verified" and verified["verified_by_id"] == site.officer.id
    events = api(site.admin).get(url).get_json()["events"]
    assert [(e["event"], e["revision"]) for e in events] == [
        ("raised", None),
        ("acknowledged", None),
        ("action_recorded", 1),
        ("action_corrected", 2),
        ("verified", None),
    ]
    assert events[2]["affected_food"] == "无受影响食品"  # the first revision is kept as it was
    _error(api(site.staff).post(f"{url}/corrections", json={**action, "reason": "x"}), 409, "deviation_wrong_status")


def test_the_day_answers_what_is_due(api, site):
    today = clock.today()
    api(site.staff).post(
        f"{BASE}/served-dishes",
        json={"site_id": site.canteen.id, "day": today.isoformat(), "slot": "lunch", "dishes": ["米饭", "番茄炒蛋"]},
    )
    day = api(site.staff).get(f"{BASE}/day?site_id={site.canteen.id}").get_json()
    assert day["site_id"] == site.canteen.id and day["day"] == today.isoformat() and day["open"] is True
    lunch = next(slot for slot in day["slots"] if slot["slot"] == "lunch")
    assert lunch["missing"] == ["米饭", "番茄炒蛋"] and lunch["expected"] is True
    assert [item["item"] for item in day["checklist"]] == [
        "tableware_disinfection",
        "pest_control",
        "raw_cooked_separation",
        "waste_disposal",
    ]
    assert [check["staff_name"] for check in day["morning_checks"]] == ["王师傅"]
    assert {device["device"]["name"]: device["due"] for device in day["devices"]} == {
        "冷冻柜": 2,
        "冷藏柜": 2,
        "留样冰箱": 2,
    }
    assert day["due_count"] == 4 + 1 + 6 + 2 + 2


def test_served_dishes_replace_the_list(api, site):
    day = clock.today().isoformat()
    body = {"site_id": site.canteen.id, "day": day, "slot": "dinner", "dishes": ["饺子", "  饺子 ", "小米粥"]}
    assert api(site.staff).post(f"{BASE}/served-dishes", json=body).get_json()["dishes"] == ["饺子", "小米粥"]
    body["dishes"] = ["面条"]
    api(site.staff).post(f"{BASE}/served-dishes", json=body)
    listed = api(site.staff).get(f"{BASE}/served-dishes?site_id={site.canteen.id}&day={day}").get_json()
    assert [(row["slot"], row["dishes"]) for row in listed] == [("dinner", ["面条"])]


def test_compliance_lists_sites_not_compliant_first(api, site):
    api(site.staff).post(f"{BASE}/deviations", json={"site_id": site.canteen.id, "kind": "reported", "found": "x"})
    (entry,) = api(site.officer).get(f"{BASE}/compliance").get_json()
    assert entry["site_id"] == site.canteen.id and entry["compliant"] is False and entry["open"] == 1
    assert entry["oldest_unverified"] == clock.today().isoformat()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/samples", {"weight_g": "150"}, "weight_g"),
        ("/samples", {"weight_g": 150.5}, "weight_g"),
        ("/samples", {"weight_g": 0}, "weight_g"),
        ("/samples", {"container_sealed": 1}, "container_sealed"),
        ("/samples", {"slot": "supper"}, "slot"),
        ("/samples", {"served_on": "2026-02-30"}, "served_on"),
        ("/samples", {"stored_at": "yesterday"}, "stored_at"),
        ("/samples", {"dish": ""}, "dish"),
        ("/samples", {"device_id": 2**70}, "device_id"),
        ("/samples", {"colour": "red"}, "colour"),
        ("/readings", {"temperature_c": 8.05}, "temperature_c"),
        ("/readings", {"temperature_c": "NaN"}, "temperature_c"),
        ("/readings", {"temperature_c": 1e308}, "temperature_c"),
        ("/readings", {"temperature_c": True}, "temperature_c"),
        ("/morning-checks", {"symptoms": ["headache"]}, "symptoms"),
        ("/morning-checks", {"present": "yes"}, "present"),
        ("/served-dishes", {"dishes": "米饭"}, "dishes"),
        ("/deviations", {"kind": "sample_missing"}, "kind"),
        ("/checklist-entries", {"method": "sunlight"}, "method"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(api, site, path, body, field):
    bases = {
        "/samples": _sample_body(site),
        "/readings": {"device_id": site.fridge.id, "temperature_c": 4},
        "/morning-checks": {"site_id": site.canteen.id, "day": clock.today().isoformat(), "staff_id": site.cook.id},
        "/served-dishes": {"site_id": site.canteen.id, "day": clock.today().isoformat(), "slot": "lunch"},
        "/deviations": {"site_id": site.canteen.id, "kind": "reported", "found": "x"},
        "/checklist-entries": {
            "site_id": site.canteen.id,
            "day": clock.today().isoformat(),
            "item": "tableware_disinfection",
            "passed": True,
        },
    }
    before = [count(model) for model in (RetainedSample, TemperatureReading, MorningCheck, Deviation, DeviationEvent)]
    payload = {**bases[path], **body}
    if path == "/morning-checks":
        payload.setdefault("present", True)
    response = api(site.staff).post(f"{BASE}{path}", json=payload)
    error = _error(response, 422)
    assert field in error["errors"], error
    after = [count(model) for model in (RetainedSample, TemperatureReading, MorningCheck, Deviation, DeviationEvent)]
    assert after == before


def test_bodies_that_are_not_json_objects_are_refused_not_crashed(api, site):
    assert api(site.staff).post(f"{BASE}/samples", data="weight=150", content_type="text/plain").status_code == 415
    assert api(site.staff).post(f"{BASE}/samples", data="{", content_type="application/json").status_code == 400
    assert api(site.staff).post(f"{BASE}/samples", json=[1, 2]).status_code == 422
    assert api(site.staff).get(f"{BASE}/samples?site_id=abc").status_code == 422
    assert api(site.staff).get(f"{BASE}/day?site_id=99999999").status_code == 404
    assert api(site.staff).get(f"{BASE}/deviations/{2**70}").status_code == 404


def test_lists_hold_only_rows_in_scope(api):
    a, b = DistrictFactory(), DistrictFactory()
    kitchen = KitchenFactory(district=a)
    canteen_a = CanteenFactory(district=a, supplied_by=kitchen)
    canteen_b = CanteenFactory(district=b)
    rows = {site.id: site_rows(site) for site in (kitchen, canteen_a, canteen_b)}
    callers = {
        "admin": admin(),
        "officer": officer(a),
        "staff": canteen_staff(canteen_a),
        "kitchen": kitchen_staff(kitchen),
    }
    expected = {
        "officer": {kitchen.id, canteen_a.id},
        "staff": {canteen_a.id},
        "kitchen": {kitchen.id},  # not the canteen it supplies
    }
    for role, sites in expected.items():
        for path in ("/staff", "/devices", "/samples", "/deviations", "/readings"):
            listed = api(callers[role]).get(f"{BASE}{path}?page_size=500").get_json()
            assert {row["site_id"] for row in listed} <= sites, (role, path)
            if path != "/readings":
                assert {row["site_id"] for row in listed} == sites, (role, path)
        compliance = api(callers[role]).get(f"{BASE}/compliance").get_json()
        assert {entry["site_id"] for entry in compliance} == sites, role
    everything = {row["site_id"] for row in api(callers["admin"]).get(f"{BASE}/deviations?page_size=500").get_json()}
    assert everything >= set(rows)
