"""The registry through the HTTP API: registration, masking, reveal, search, look-up, scoping."""

from datetime import date

import sqlalchemy as sa

from canteen.core import scoping
from canteen.core.audit_log import AuditEntry
from canteen.extensions import db
from canteen.residents.id_numbers import check_character, make_number
from tests.factories import CanteenFactory, CommunityFactory, DistrictFactory, canteen_staff, officer, resident

NUMBER = make_number("630102", date(1948, 5, 17), 123)  # sequence 123: odd, male


def _register(caller, district, **overrides):
    body = {
        "name": "王秀英",
        "id_doc_type": "resident_id_card",
        "id_number": NUMBER,
        "phone": "13812345678",
        "district_id": district.id,
        "address": "东关大街 12 号",
        "card_no": "XN-10001",
        "delivery_registered": True,
        "emergency_contact": "王强 13900001111",
        "diet": {"restrictions": ["low_salt", "soft"], "allergens": ["peanut"], "notes": "假牙"},
    }
    body.update(overrides)
    return caller.post("/api/v1/residents", json=body)


def test_register_derives_identity_and_masks_everything(api):
    district = DistrictFactory(code="630102")
    community = CommunityFactory(district=district)
    response = _register(api(officer(district)), district, community_id=community.id)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["birth_date"] == "1948-05-17" and body["sex"] == "male"
    assert body["id_number_masked"] == NUMBER[:6] + "********" + NUMBER[-4:]
    assert body["phone_masked"] == "138****5678"
    assert body["emergency_contact_masked"] == "王强 139****1111"
    assert body["card_no"] == "XN-10001" and body["status"] == "active"
    assert "aged_60_plus" in body["categories"]
    assert body["diet"] == {"restrictions": ["low_salt", "soft"], "allergens": ["peanut"], "notes": "假牙"}
    text = response.get_data(as_text=True)
    assert NUMBER not in text and "13812345678" not in text and "13900001111" not in text


def test_raw_row_holds_no_number_or_phone(api):
    district = DistrictFactory()
    resident_id = _register(api(officer(district)), district).get_json()["id"]
    row = db.session.execute(sa.text("SELECT * FROM residents WHERE id = :id"), {"id": resident_id}).mappings().one()
    flat = " ".join(str(v) for v in row.values())
    assert NUMBER not in flat and NUMBER[-6:] not in flat and "13812345678" not in flat
    audit = db.session.execute(sa.text("SELECT after FROM audit_entries WHERE entity = 'residents'")).scalars().all()
    assert audit and all(NUMBER not in str(a) and "13812345678" not in str(a) for a in audit)


def test_invalid_numbers_answer_422_with_field(api):
    district = DistrictFactory()
    caller = api(officer(district))
    wrong_check = NUMBER[:17] + ("0" if NUMBER[17] != "0" else "1")
    bad_date = "630102" + "19480230" + "123"
    bad_date += check_character(bad_date)
    bad_province = "990102" + NUMBER[6:17]
    bad_province += check_character(bad_province)
    young = make_number("630102", date(1990, 1, 1), 11)
    for number, code in (
        (wrong_check, "invalid_id_number"),
        (bad_date, "invalid_id_number"),
        (bad_province, "invalid_id_number"),
        (young, "resident_too_young"),
    ):
        response = _register(caller, district, id_number=number, card_no=None)
        assert response.status_code == 422, number
        assert response.get_json()["code"] == code
        assert "id_number" in response.get_json()["errors"]
    with scoping.unrestricted():
        assert db.session.scalar(sa.text("SELECT count(*) FROM residents")) == 0


def test_duplicate_id_number_is_409(api):
    district = DistrictFactory()
    caller = api(officer(district))
    assert _register(caller, district).status_code == 201
    again = _register(caller, district, card_no="XN-10002")
    assert again.status_code == 409 and again.get_json()["code"] == "resident_exists"


def test_reveal_is_for_officers_and_audited(api):
    district = DistrictFactory()
    clerk = officer(district)
    resident_id = _register(api(clerk), district).get_json()["id"]
    revealed = api(clerk).post(f"/api/v1/residents/{resident_id}/reveal")
    assert revealed.status_code == 200
    assert revealed.get_json()["id_number"] == NUMBER and revealed.get_json()["phone"] == "13812345678"
    with scoping.unrestricted():
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "reveal")).all()
    assert [(e.entity_id, e.actor_user_id) for e in entries] == [(resident_id, clerk.id)]
    staff = canteen_staff(CanteenFactory(district=district))
    assert api(staff).post(f"/api/v1/residents/{resident_id}/reveal").status_code == 403
    assert api(officer(DistrictFactory())).post(f"/api/v1/residents/{resident_id}/reveal").status_code == 404


def test_search_by_pinyin_initials_name_card_and_tail(api):
    district = DistrictFactory()
    clerk = officer(district)
    zhang = resident(district, name="张三", card_no="XN-20001")
    li = resident(district, name="李四")
    caller = api(clerk)

    def found(q):
        response = caller.get("/api/v1/residents", query_string={"q": q})
        assert response.status_code == 200, response.get_json()
        return [row["id"] for row in response.get_json()]

    assert found("zhangsan") == [zhang.id]
    assert found("zs") == [zhang.id]
    assert found("ZS") == [zhang.id]
    assert found("张") == [zhang.id]
    assert found("XN-20001") == [zhang.id]
    assert li.id in found(li.id_number[-4:])
    assert found(li.id_number[-6:]) == [li.id]
    assert found("ls") == [li.id]
    refused = caller.get("/api/v1/residents", query_string={"q": li.id_number})
    assert refused.status_code == 400 and refused.get_json()["code"] == "id_number_in_url"


def test_staff_see_the_counter_summary_only(api):
    district = DistrictFactory()
    canteen = CanteenFactory(district=district)
    person = resident(district, name="张三", phone="13812345678", address="八一路 3 号", card_no="XN-30001")
    rows = api(canteen_staff(canteen)).get("/api/v1/residents?q=zs").get_json()
    assert [r["id"] for r in rows] == [person.id]
    assert "phone_masked" not in rows[0] and "address" not in rows[0] and "birth_date" not in rows[0]
    assert rows[0]["id_number_masked"].startswith(person.id_number[:6]) and "diet" in rows[0]


def test_staff_find_any_active_resident_of_the_city_by_exact_number(api):
    home, elsewhere = DistrictFactory(), DistrictFactory()
    staff = canteen_staff(CanteenFactory(district=home))
    visitor = resident(elsewhere, name="赵敏", card_no="XN-40001", registered_on=date(2026, 1, 1))
    caller = api(staff)
    # not by name: that is limited to their own district
    assert caller.get("/api/v1/residents?q=zm").get_json() == []
    by_number = caller.post("/api/v1/residents/lookup", json={"id_number": visitor.id_number})
    assert by_number.status_code == 200 and by_number.get_json()["id"] == visitor.id
    assert "phone_masked" not in by_number.get_json()
    by_card = caller.post("/api/v1/residents/lookup", json={"card_no": "XN-40001"})
    assert by_card.status_code == 200
    # but not the full record
    assert caller.get(f"/api/v1/residents/{visitor.id}").status_code == 404
    # an officer of another district cannot look them up at all
    assert api(officer(home)).post("/api/v1/residents/lookup", json={"card_no": "XN-40001"}).status_code == 404
    # a deceased resident is not found at the counter
    api(officer(elsewhere)).post(
        f"/api/v1/residents/{visitor.id}/status",
        json={"status": "deceased", "effective_on": "2026-02-01", "reason": "死亡"},
    )
    gone = caller.post("/api/v1/residents/lookup", json={"id_number": visitor.id_number})
    assert gone.status_code == 404 and gone.get_json()["code"] == "resident_not_found"


def test_categories_and_status_endpoints(api):
    district = DistrictFactory()
    clerk = officer(district)
    person = resident(district, birth=date(1946, 6, 1), registered_on=date(2026, 1, 1))
    caller = api(clerk)
    created = caller.post(
        f"/api/v1/residents/{person.id}/categories",
        json={"category": "extreme_poverty", "valid_from": "2026-01-01", "evidence": "特困证"},
    )
    assert created.status_code == 201 and created.get_json()["verified_by_id"] == clerk.id
    category_id = created.get_json()["id"]
    ended = caller.patch(f"/api/v1/residents/{person.id}/categories/{category_id}", json={"valid_to": "2026-03-31"})
    assert ended.status_code == 200
    held = caller.get(f"/api/v1/residents/{person.id}/held-categories?on=2026-03-31").get_json()
    assert held["categories"] == ["aged_60_plus", "extreme_poverty"]
    held = caller.get(f"/api/v1/residents/{person.id}/held-categories?on=2026-06-01").get_json()
    assert held["categories"] == ["aged_60_plus", "aged_80_plus"]
    status = caller.post(
        f"/api/v1/residents/{person.id}/status",
        json={"status": "suspended", "effective_on": "2026-02-01", "reason": "住院"},
    )
    assert status.status_code == 201
    history = caller.get(f"/api/v1/residents/{person.id}/status").get_json()
    assert [h["status"] for h in history] == ["active", "suspended"]
    bad = caller.post(f"/api/v1/residents/{person.id}/status", json={"status": "gone", "effective_on": "x"})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) >= {"status", "effective_on", "reason"}


def test_officers_list_residents_without_consent(api):
    district = DistrictFactory()
    with_consent = resident(district, name="甲", consent={"method": "signed_form", "given_on": date(2026, 1, 2)})
    without = resident(district, name="乙")
    rows = api(officer(district)).get("/api/v1/residents?without_consent=true").get_json()
    assert [r["id"] for r in rows] == [without.id]
    assert with_consent.consent_method == "signed_form"


def test_update_resident(api):
    district = DistrictFactory()
    person = resident(district, name="张三")
    response = api(officer(district)).patch(
        f"/api/v1/residents/{person.id}", json={"name": "张三丰", "diet": {"restrictions": ["halal"]}}
    )
    assert response.status_code == 200
    assert response.get_json()["diet"]["restrictions"] == ["halal"]
    assert person.name_pinyin == "zhangsanfeng"
    refused = api(officer(district)).patch(f"/api/v1/residents/{person.id}", json={"id_number": NUMBER})
    assert refused.status_code == 422
