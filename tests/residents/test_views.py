"""Pages of the registry: the officer's list and resident page, registration and correction
forms, the counter search and exact look-up, the audited reveal, and that no page but the reveal
ever shows a full ID number or phone."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.core.audit_log import AuditEntry
from canteen.extensions import db
from canteen.residents import id_numbers
from canteen.residents import service as resident_service
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
from tests.pages import text

PHONE = "13812345678"
CONTACT_PHONE = "13900001111"
NUMBER = id_numbers.make_number("630102", date(1948, 5, 17), 123)  # sequence 123: odd, male
ID_CHECK_JS = Path(__file__).resolve().parents[2] / "canteen" / "static" / "id_check.js"


def _client_for(app, user):
    from tests.factories import PASSWORD

    client = app.test_client()
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _registry_count() -> int:
    with scoping.unrestricted():
        return resident_service.search_residents(page_size=1).total


def _find(number: str):
    with scoping.unrestricted():
        try:
            return resident_service.lookup_resident(id_number=number)
        except Exception:
            return None


def _assert_masked(html: str, *residents) -> None:
    for person in residents:
        assert person.id_number not in html, "a full ID number on a page"
        if person.phone:
            assert person.phone not in html, "a full phone number on a page"
        if person.emergency_contact:
            assert CONTACT_PHONE not in html


@pytest.fixture
def city():
    """Two districts, each with a community and a canteen; a kitchen in the first."""
    east, west = DistrictFactory(name="城东区"), DistrictFactory(name="城西区")
    east_community = CommunityFactory(district=east, name="东关社区")
    west_community = CommunityFactory(district=west, name="西关社区")
    return {
        "east": east,
        "west": west,
        "east_community": east_community,
        "west_community": west_community,
        "east_canteen": CanteenFactory(district=east, community=east_community, name="东关爱老幸福食堂"),
        "west_canteen": CanteenFactory(district=west, community=west_community, name="西关爱老幸福食堂"),
        "kitchen": KitchenFactory(district=east, name="城东中央厨房"),
    }


# --- the officer's list ----------------------------------------------------------------------
def test_officer_lists_residents_of_the_own_district_masked(client, login, city):
    zhang = resident(
        city["east"],
        name="张三",
        phone=PHONE,
        card_no="XN-20001",
        community_id=city["east_community"].id,
        emergency_contact=f"张强 {CONTACT_PHONE}",
    )
    wang = resident(city["west"], name="王五", phone="13700001234")
    login(officer(city["east"]))
    html = text(client.get("/residents"))
    assert "张三" in html and "王五" not in html
    assert id_numbers.normalise(zhang.id_number)[:6] + "********" + zhang.id_number[-4:] in html
    assert "XN-20001" in html and "东关社区" in html and "60周岁以上" in html
    assert "找到居民：1 人" in html
    for url in (
        "/residents",
        "/residents?q=zs",
        f"/residents?q={zhang.id_number[-4:]}",
        "/residents/counter?q=zhangsan",
        f"/residents/{zhang.id}",
        f"/residents/{zhang.id}/edit",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_masked(text(response), zhang, wang)
    assert "138****5678" in text(client.get(f"/residents/{zhang.id}"))
    assert client.get(f"/residents/{wang.id}").status_code == 404


def test_admin_lists_every_district_with_its_name(client, login, city):
    resident(city["east"], name="张三")
    resident(city["west"], name="王五")
    login(admin())
    html = text(client.get("/residents"))
    assert "张三" in html and "王五" in html and "城东区" in html and "城西区" in html
    html = text(client.get(f"/residents?district_id={city['west'].id}"))
    assert "王五" in html and ">张三<" not in html


def test_officer_filters_by_status_category_community_and_consent(client, login, city, as_user):
    clerk = officer(city["east"])
    with_consent = resident(
        city["east"], name="李四", community_id=city["east_community"].id, consent={"method": "signed_form"}
    )
    poor = resident(city["east"], name="赵六")
    gone = resident(city["east"], name="钱七")
    with as_user(clerk):
        resident_service.add_category(poor.id, category="subsistence", valid_from=clock.today() - timedelta(days=30))
        resident_service.set_status(gone.id, status="moved_out", effective_on=clock.today(), reason="迁往外省")
    db.session.commit()
    login(clerk)

    def names(query: str) -> set[str]:
        html = text(client.get(f"/residents?{query}"))
        return {name for name in ("李四", "赵六", "钱七") if f">{name}</a>" in html}

    assert names("") == {"李四", "赵六", "钱七"}
    assert names("status=moved_out") == {"钱七"}
    assert names("status=active") == {"李四", "赵六"}
    assert names("category=subsistence") == {"赵六"}
    assert names(f"community_id={city['east_community'].id}") == {"李四"}
    assert names("without_consent=1") == {"赵六", "钱七"}
    assert names("q=ls") == {"李四"}
    html = text(client.get("/residents?category=subsistence"))
    assert "低保对象" in html, "categories held today, by name"
    assert with_consent.consent_given_on is not None


def test_pages_are_chinese_by_default_and_english_on_request(client, login, city):
    resident(city["east"], name="张三", diet={"allergens": ["peanut"]})
    login(officer(city["east"]))
    html = text(client.get("/residents"))
    assert "登记居民" in html and "证件号码" in html and "未登记同意书" in html
    html = text(client.get("/residents?lang=en"))
    assert "Register a resident" in html and "Without consent on file" in html and "登记居民" not in html
    assert "Allergies:" in text(client.get("/residents/counter?q=zs"))


def test_a_full_id_number_in_a_search_url_is_refused(client, login, city):
    person = resident(city["east"], name="张三")
    login(officer(city["east"]))
    assert client.get(f"/residents?q={person.id_number}").status_code == 400
    assert client.get(f"/residents/counter?q={person.id_number}").status_code == 400
    html = text(client.get("/residents"))
    assert "精确查找" in html and 'method="post" action="/residents/lookup"' in html
    assert "完整号码绝不放进网址" in html


def test_kitchen_staff_may_not_open_the_registry(client, login, city):
    person = resident(city["east"], name="张三")
    login(kitchen_staff(city["kitchen"]))
    for url in ("/residents", "/residents/counter", f"/residents/{person.id}", "/residents/new"):
        assert client.get(url).status_code == 403, url


def test_the_navigation_links_to_the_registry_by_role(app, city):
    officer_html = text(_client_for(app, officer(city["east"])).get("/"))
    assert 'href="/residents"' in officer_html and ">居民<" in officer_html
    staff_html = text(_client_for(app, canteen_staff(city["east_canteen"])).get("/"))
    assert 'href="/residents/counter"' in staff_html and ">窗口查询<" in staff_html
    assert 'href="/residents"' not in staff_html


# --- registration ----------------------------------------------------------------------------
def _registration(city, **overrides):
    form = {
        "name": "王秀英",
        "id_doc_type": "resident_id_card",
        "id_number": NUMBER,
        "phone": PHONE,
        "community_id": str(city["east_community"].id),
        "address": "东关大街 12 号",
        "home_canteen_id": str(city["east_canteen"].id),
        "card_no": "XN-10001",
        "delivery_registered": "1",
        "emergency_contact": f"王强 {CONTACT_PHONE}",
        "diet_restrictions": ["low_salt", "soft"],
        "allergens": ["peanut"],
        "diet_notes": "假牙",
        "consent_method": "signed_form",
        "consent_given_on": (clock.today() - timedelta(days=3)).isoformat(),
    }
    form.update(overrides)
    return form


def test_officer_registers_a_resident_through_the_form(client, login, city):
    clerk = officer(city["east"])
    login(clerk)
    form_html = text(client.get("/residents/new"))
    assert "data-id-check" in form_html and "校验位不对" in form_html, "the browser check has its messages"
    assert 'src="/static/id_check.js"' in form_html
    assert "西关社区" not in form_html, "only the officer's district is offered"
    assert "城东中央厨房" not in form_html, "a central kitchen is no home canteen"

    response = client.post("/residents/new", data=_registration(city))
    assert response.status_code == 302, text(response)[:2000]
    registered = _find(NUMBER)
    assert registered is not None
    assert response.headers["Location"] == f"/residents/{registered.id}"
    assert (registered.name, registered.district_id, registered.birth_date, registered.sex) == (
        "王秀英",
        city["east"].id,
        date(1948, 5, 17),
        "male",
    )
    assert registered.phone == PHONE and registered.emergency_contact == f"王强 {CONTACT_PHONE}"
    assert (registered.community_id, registered.home_canteen_id) == (city["east_community"].id, city["east_canteen"].id)
    assert registered.active_card.card_no == "XN-10001" and registered.delivery_registered
    assert registered.diet_restrictions == ["low_salt", "soft"] and registered.allergens == ["peanut"]
    assert registered.diet_notes == "假牙"
    assert registered.consent_method == "signed_form" and registered.consent_recorded_by_id == clerk.id
    assert registered.consent_given_on == clock.today() - timedelta(days=3)

    page = client.get(f"/residents/{registered.id}")
    html = text(page)
    assert "王秀英 已登记" in html
    assert "东关社区" in html and "东关爱老幸福食堂" in html and "花生" in html and "本人签署同意书" in html
    _assert_masked(html, registered)


def test_a_wrong_check_digit_is_explained_and_nothing_is_written(client, login, city):
    login(officer(city["east"]))
    wrong = NUMBER[:17] + ("0" if NUMBER[17] != "0" else "1")
    response = client.post("/residents/new", data=_registration(city, id_number=wrong))
    assert response.status_code == 422
    html = text(response)
    assert "校验位不对：号码有输入错误。" in html
    assert f'value="{wrong}"' in html, "what was typed is kept for correcting"
    assert 'value="low_salt" checked' in html
    assert _registry_count() == 0

    client.get("/residents?lang=en")
    html = text(client.post("/residents/new", data=_registration(city, id_number=wrong)))
    assert "The check digit is wrong: the number has a typing error." in html


def test_a_bad_province_and_an_impossible_date_are_explained(client, login, city):
    login(officer(city["east"]))
    bad_province = "990102" + NUMBER[6:17]
    bad_province += id_numbers.check_character(bad_province)
    html = text(client.post("/residents/new", data=_registration(city, id_number=bad_province)))
    assert "99 不是有效的省级行政区代码。" in html
    bad_date = "630102" + "19480230" + "123"
    bad_date += id_numbers.check_character(bad_date)
    html = text(client.post("/residents/new", data=_registration(city, id_number=bad_date)))
    assert "证件号码中的出生日期不是有效日期。" in html
    assert _registry_count() == 0


def test_a_resident_under_60_is_refused(client, login, city):
    login(officer(city["east"]))
    young = id_numbers.make_number("630102", clock.today().replace(year=clock.today().year - 59), 11)
    response = client.post("/residents/new", data=_registration(city, id_number=young))
    assert response.status_code == 422
    assert "登记当日须年满 60 周岁。" in text(response)
    assert _registry_count() == 0


def test_a_duplicate_number_and_a_taken_card_are_shown_next_to_the_fields(client, login, city):
    existing = resident(city["east"], name="张三", card_no="XN-30001")
    login(officer(city["east"]))
    html = text(client.post("/residents/new", data=_registration(city, id_number=existing.id_number, card_no="")))
    assert 'id="id_number-errors"' in html and "已登记。" in html
    html = text(client.post("/residents/new", data=_registration(city, card_no="XN-30001")))
    assert 'id="card_no-errors"' in html and "已被占用" in html
    assert _registry_count() == 1


def test_a_passport_holder_gives_birth_date_and_sex(client, login, city):
    login(officer(city["east"]))
    data = _registration(city, id_doc_type="passport", id_number="E12345678", card_no="")
    response = client.post("/residents/new", data=data)
    assert response.status_code == 422
    assert "护照须填写此项。" in text(response)
    data.update(birth_date="1950-03-04", sex="female")
    assert client.post("/residents/new", data=data).status_code == 302
    registered = _find("E12345678")
    assert (registered.birth_date, registered.sex, registered.id_doc_type) == (date(1950, 3, 4), "female", "passport")


def test_admin_chooses_the_district(client, login, city):
    login(admin())
    html = text(client.get("/residents/new"))
    assert 'name="district_id"' in html and "城西区" in html and "西关社区" in html
    data = _registration(
        city,
        district_id=str(city["west"].id),
        community_id=str(city["west_community"].id),
        home_canteen_id=str(city["west_canteen"].id),
    )
    assert client.post("/residents/new", data=data).status_code == 302
    assert _find(NUMBER).district_id == city["west"].id
    # a community of another district is refused by the service and shown at the field
    other = _registration(city, id_number=id_numbers.make_number("630102", date(1950, 1, 1), 5))
    other.update(district_id=str(city["west"].id), home_canteen_id="", card_no="")
    html = text(client.post("/residents/new", data=other))
    assert 'id="community_id-errors"' in html


def test_staff_cannot_register_or_correct_residents(client, login, city):
    person = resident(city["east"], name="张三")
    login(canteen_staff(city["east_canteen"]))
    assert client.get("/residents/new").status_code == 403
    assert client.post("/residents/new", data=_registration(city)).status_code == 403
    assert client.get(f"/residents/{person.id}/edit").status_code == 403
    assert client.post(f"/residents/{person.id}/status", data={"status": "deceased"}).status_code == 403
    assert _registry_count() == 1


# --- correcting ------------------------------------------------------------------------------
def test_an_empty_phone_input_keeps_the_phone(client, login, city):
    person = resident(city["east"], name="张三", phone=PHONE, diet={"allergens": ["egg"]})
    login(officer(city["east"]))
    html = text(client.get(f"/residents/{person.id}/edit"))
    assert "当前：138****5678。留空则保持不变。" in html
    _assert_masked(html, person)
    form = {
        "name": "张叁",
        "phone": "",
        "community_id": str(city["east_community"].id),
        "address": "新地址 1 号",
        "home_canteen_id": "",
        "allergens": ["egg", "milk"],
        "diet_restrictions": ["soft"],
        "diet_notes": "",
    }
    assert client.post(f"/residents/{person.id}/edit", data=form).status_code == 302
    assert (person.name, person.phone, person.address, person.allergens) == (
        "张叁",
        PHONE,
        "新地址 1 号",
        ["egg", "milk"],
    )
    assert person.name_initials == "zs" and person.consent_given_on is None
    assert client.post(f"/residents/{person.id}/edit", data={**form, "phone": "13700009999"}).status_code == 302
    assert person.phone == "13700009999"
    response = client.post(f"/residents/{person.id}/edit", data={**form, "phone": "abc"})
    assert response.status_code == 422 and "5–15 位数字" in text(response)
    assert person.phone == "13700009999"
    assert client.post(f"/residents/{person.id}/edit", data={**form, "remove_phone": "1"}).status_code == 302
    assert person.phone is None


def test_consent_recorded_and_withdrawn_through_the_edit_form(client, login, city):
    person = resident(city["east"], name="张三")
    clerk = officer(city["east"])
    login(clerk)
    form = {"name": "张三", "consent_method": "family_on_behalf", "consent_given_on": ""}
    assert client.post(f"/residents/{person.id}/edit", data=form).status_code == 302
    assert (person.consent_method, person.consent_given_on, person.consent_recorded_by_id) == (
        "family_on_behalf",
        clock.today(),
        clerk.id,
    )
    assert "家属代为签署" in text(client.get(f"/residents/{person.id}"))
    assert client.post(f"/residents/{person.id}/edit", data={"name": "张三"}).status_code == 302
    assert person.consent_method is None and person.consent_given_on is None


# --- the resident page: reveal, categories, status, card -------------------------------------
def test_reveal_shows_the_full_number_once_and_is_audited(app, client, login, city):
    person = resident(city["east"], name="张三", phone=PHONE)
    clerk = officer(city["east"])
    login(clerk)
    assert person.id_number not in text(client.get(f"/residents/{person.id}"))
    response = client.post(f"/residents/{person.id}/reveal")
    assert response.status_code == 200
    html = text(response)
    assert person.id_number in html and PHONE in html and "审计日志" in html
    assert response.headers["Cache-Control"] == "no-store"
    with scoping.unrestricted():
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "reveal")).all()
    assert [(e.entity, e.entity_id, e.actor_user_id) for e in entries] == [("residents", person.id, clerk.id)]
    assert person.id_number not in text(client.get(f"/residents/{person.id}")), "shown once, not kept"

    staff_client = _client_for(app, canteen_staff(city["east_canteen"]))
    assert staff_client.post(f"/residents/{person.id}/reveal").status_code == 403
    other_client = _client_for(app, officer(city["west"]))
    assert other_client.post(f"/residents/{person.id}/reveal").status_code == 404
    with scoping.unrestricted():
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "reveal")) == 1


def test_categories_are_added_and_ended_through_the_forms(client, login, city):
    person = resident(city["east"], name="张三")
    clerk = officer(city["east"])
    login(clerk)
    start = clock.today() - timedelta(days=10)
    data = {
        "category": "extreme_poverty",
        "valid_from": start.isoformat(),
        "valid_to": "",
        "evidence": "民政证明 2026-17",
    }
    response = client.post(f"/residents/{person.id}/categories", data=data)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/residents/{person.id}#categories")
    (held,) = person.categories
    assert (held.category, held.valid_from, held.valid_to, held.verified_by_id) == (
        "extreme_poverty",
        start,
        None,
        clerk.id,
    )
    html = text(client.get(f"/residents/{person.id}"))
    assert "特困人员" in html and "民政证明 2026-17" in html and "今日有效" in html and clerk.display_name in html

    # the same category again in an overlapping period: explained, nothing written
    response = client.post(f"/residents/{person.id}/categories", data=data)
    assert response.status_code == 422 and "与已有的有效期重叠。" in text(response)
    assert len(person.categories) == 1

    # ending before it started is refused; ending yesterday works
    before = (start - timedelta(days=1)).isoformat()
    response = client.post(f"/residents/{person.id}/categories/{held.id}/end", data={"valid_to": before})
    assert response.status_code == 422 and "早于该类别的生效日期。" in text(response)
    assert held.valid_to is None
    yesterday = clock.today() - timedelta(days=1)
    response = client.post(f"/residents/{person.id}/categories/{held.id}/end", data={"valid_to": yesterday.isoformat()})
    assert response.status_code == 302
    assert held.valid_to == yesterday
    with scoping.unrestricted():
        assert "extreme_poverty" not in resident_service.categories_on(person, clock.today())


def test_a_status_change_is_recorded_through_the_form(client, login, city):
    person = resident(city["east"], name="张三", registered_on=clock.today() - timedelta(days=100))
    login(officer(city["east"]))
    response = client.post(
        f"/residents/{person.id}/status",
        data={"status": "deceased", "effective_on": "", "reason": ""},
    )
    assert response.status_code == 422
    assert len(person.status_changes) == 1 and person.status == "active"
    died = clock.today() - timedelta(days=5)
    response = client.post(
        f"/residents/{person.id}/status",
        data={"status": "deceased", "effective_on": died.isoformat(), "reason": "家属告知"},
    )
    assert response.status_code == 302
    assert (person.status, person.status_effective_on) == ("deceased", died)
    html = text(client.get(f"/residents/{person.id}"))
    assert "已故" in html and "家属告知" in html and "登记入册" in html


def test_a_lost_card_is_blocked_and_replaced_through_the_forms(app, client, login, city):
    person = resident(city["east"], name="张三", card_no="XN-40001")
    login(officer(city["east"]))
    assert client.post(f"/residents/{person.id}/card/block", data={"reason": ""}).status_code == 422
    assert person.active_card.card_no == "XN-40001"
    assert client.post(f"/residents/{person.id}/card/block", data={"reason": "遗失"}).status_code == 302
    assert person.active_card is None
    assert client.post(f"/residents/{person.id}/card", data={"card_no": "XN-40001"}).status_code == 422
    assert client.post(f"/residents/{person.id}/card", data={"card_no": "XN-40002"}).status_code == 302
    assert person.active_card.card_no == "XN-40002"
    staff_client = _client_for(app, canteen_staff(city["east_canteen"]))
    assert "XN-40002" in text(staff_client.post("/residents/lookup", data={"number": "XN-40002"}))
    response = staff_client.post("/residents/lookup", data={"number": "XN-40001"})
    assert response.status_code == 303, "a blocked card finds nobody"


def test_every_form_on_the_registry_pages_carries_the_csrf_token(client, login, city):
    person = resident(city["east"], name="张三", card_no="XN-45001")
    category = {"category": "living_alone", "valid_from": clock.today().isoformat()}
    login(officer(city["east"]))
    client.post(f"/residents/{person.id}/categories", data=category)
    for url in (
        "/residents",
        "/residents/counter",
        "/residents/new",
        f"/residents/{person.id}",
        f"/residents/{person.id}/edit",
    ):
        html = text(client.get(url))
        forms = [chunk.split("</form>")[0] for chunk in html.split("<form")[1:]]
        posts = [form for form in forms if 'method="post"' in form.split(">")[0]]
        assert posts, url
        for form in posts:
            assert 'name="csrf_token"' in form, (url, form[:200])


# --- the counter -----------------------------------------------------------------------------
def test_staff_counter_search_finds_by_pinyin_initials_and_shows_allergens(client, login, city):
    zhang = resident(
        city["east"],
        name="张三",
        phone=PHONE,
        card_no="XN-50001",
        address="东关大街 88 号",
        diet={"restrictions": ["low_salt"], "allergens": ["peanut", "shellfish"], "notes": "假牙"},
    )
    resident(city["east"], name="李四")
    resident(city["west"], name="张三丰")
    login(canteen_staff(city["east_canteen"]))
    assert client.get("/residents").headers["Location"].startswith("/residents/counter")
    response = client.get("/residents/counter?q=zs")
    assert response.status_code == 200
    html = text(response)
    assert "张三" in html and "李四" not in html and "张三丰" not in html, "only the own district"
    assert "badge-allergen" in html and "花生" in html and "虾蟹贝类" in html and "低盐" in html and "假牙" in html
    assert "XN-50001" in html and "60周岁以上" in html
    _assert_masked(html, zhang)
    assert "张三" in text(client.get(f"/residents/counter?q={zhang.id_number[-6:]}"))
    assert "张三" in text(client.get("/residents/counter?q=XN-50001"))

    # the resident's page for staff is the counter summary only
    html = text(client.get(f"/residents/{zhang.id}"))
    assert "花生" in html and "东关大街 88 号" not in html
    assert "查看完整证件号码" not in html and "状态记录" not in html and "138****5678" not in html
    _assert_masked(html, zhang)


def test_staff_may_not_open_another_districts_resident(client, login, city):
    far = resident(city["west"], name="王五")
    login(canteen_staff(city["east_canteen"]))
    assert client.get(f"/residents/{far.id}").status_code == 404
    assert "王五" not in text(client.get("/residents/counter?q=ww"))


def test_staff_look_up_finds_another_districts_resident_by_card(client, login, city):
    far = resident(city["west"], name="王五", card_no="XN-60001", diet={"allergens": ["milk"]})
    login(canteen_staff(city["east_canteen"]))
    response = client.post("/residents/lookup", data={"number": "XN-60001", "from": "counter"})
    assert response.status_code == 200
    html = text(response)
    assert "王五" in html and "牛奶" in html and "精确查找结果" in html
    assert f'href="/residents/{far.id}"' not in html, "no link to a page the staff member may not open"
    _assert_masked(html, far)
    response = client.post("/residents/lookup", data={"number": far.id_number})
    assert response.status_code == 200 and "王五" in text(response)
    _assert_masked(text(response), far)

    response = client.post("/residents/lookup", data={"number": "XN-99999"})
    assert response.status_code == 303 and response.headers["Location"] == "/residents/counter"
    assert "没有居民使用这个证件号码或在用卡号" in text(client.get("/residents/counter"))


def test_officer_look_up_opens_the_residents_page_of_the_own_district_only(app, city):
    own = resident(city["east"], name="张三", card_no="XN-70001")
    far = resident(city["west"], name="王五", card_no="XN-70002")
    client = _client_for(app, officer(city["east"]))
    response = client.post("/residents/lookup", data={"number": own.id_number, "from": "list"})
    assert response.status_code == 303 and response.headers["Location"] == f"/residents/{own.id}"
    response = client.post("/residents/lookup", data={"number": "XN-70001"})
    assert response.headers["Location"] == f"/residents/{own.id}"
    response = client.post("/residents/lookup", data={"number": far.id_number, "from": "list"})
    assert response.status_code == 303 and response.headers["Location"] == "/residents"
    assert "王五" not in text(client.get("/residents"))


# --- the browser's ID check ------------------------------------------------------------------
def _samples() -> list[tuple[str, str]]:
    base = id_numbers.make_number("110105", date(1949, 12, 31), 2)
    wrong = base[:17] + ("0" if base[17] != "0" else "1")
    samples = [("resident_id_card", "11010519491231002X"), ("resident_id_card", base), ("resident_id_card", wrong)]
    for prefix in range(10, 100):
        number = f"{prefix}0105" + "19500101" + "123"
        samples.append(("resident_id_card", number + id_numbers.check_character(number)))
    for day in ("19480230", "19490229", "20000229", "18800101", "19481301"):
        number = "630102" + day + "456"
        samples.append(("resident_id_card", number + id_numbers.check_character(number)))
    for region in ("810000", "830000", "630102"):
        number = region + "19500101" + "021"
        samples.append(("hmt_residence_permit", number + id_numbers.check_character(number)))
    samples += [("resident_id_card", "63010219480517123"), ("resident_id_card", "6301021948051712345")]
    return samples


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_browser_check_agrees_with_the_server():
    samples = _samples()
    script = (
        f"const c = require({json.dumps(str(ID_CHECK_JS))});"
        "const samples = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(samples.map(([t, n]) => c.checkIdNumber(t, n, '2026-06-30'))));"
    )
    completed = subprocess.run(
        ["node", "-e", script, json.dumps(samples)], capture_output=True, text=True, timeout=30, check=True
    )
    results = json.loads(completed.stdout)
    assert results[0] == {
        "status": "valid",
        "number": "11010519491231002X",
        "birthDate": "1949-12-31",
        "sex": "female",
        "age": 76,
    }
    assert results[2]["error"] == "check_digit"
    for (doc_type, number), result in zip(samples, results, strict=True):
        try:
            identity = id_numbers.parse(doc_type, number)
        except id_numbers.InvalidIdNumber:
            assert result["status"] in ("invalid", "typing"), (doc_type, number, result)
        else:
            assert result["status"] == "valid", (doc_type, number, result)
            assert (result["birthDate"], result["sex"]) == (identity.birth_date.isoformat(), identity.sex)
            assert result["age"] == id_numbers.age_on(identity.birth_date, date(2026, 6, 30))
