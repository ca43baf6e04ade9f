"""The meal pages on the server side: who may open the counter and the cash-up, the slot of the
moment, and the counter's JSON endpoints — search (POST, so a full ID number never sits in a
URL), preview, roster, today's list, the batch and voids — answering the API's shapes, refusals
as JSON in the user's language, and nothing the browser keeps carrying an ID number or a phone."""

from __future__ import annotations

import json
import re
from datetime import date, time

import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.extensions import db
from canteen.meals import service as meal_service
from canteen.meals.models import MealRecord
from canteen.meals.schemas import MealSchema
from canteen.meals.views import current_slot
from tests.factories import CanteenFactory, DistrictFactory, KitchenFactory, canteen_staff, kitchen_staff, officer
from tests.meals.conftest import meal_fields, new_key, record, resident
from tests.pages import csrf_token_in, text

HOURS = {"breakfast": ["07:00", "09:00"], "lunch": ["11:00", "13:30"], "dinner": ["17:00", "19:00"]}


@pytest.mark.parametrize(
    ("now", "hours", "slot"),
    [
        (time(7, 30), HOURS, "breakfast"),
        (time(10, 50), HOURS, "lunch"),  # early customers: lunch starts in 10 minutes
        (time(13, 45), HOURS, "lunch"),  # late lunch, recorded after closing
        (time(15, 30), HOURS, "dinner"),  # nearer to dinner than to lunch
        (time(23, 0), HOURS, "dinner"),
        (time(3, 0), HOURS, "breakfast"),
        (time(8, 0), {"lunch": ["11:00", "13:30"]}, "lunch"),  # a lunch-only meal point
        (time(8, 0), {}, "lunch"),
    ],
)
def test_the_slot_of_the_moment_comes_from_the_opening_hours(now, hours, slot):
    assert current_slot(hours, now) == slot


def _config(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="counter-config">(.*?)</script>', html, re.S)
    assert match, "no counter configuration on the page"
    return json.loads(match.group(1))


def test_staff_open_their_counter_in_chinese_or_english(site, client, login):
    login(site["staff"])
    page = client.get("/meals/counter")
    assert page.status_code == 200
    html = text(page)
    assert "就餐登记" in html and site["canteen"].name in html
    assert 'id="counter-q"' in html and "autofocus" in html
    config = _config(html)
    assert config["canteen_id"] == site["canteen"].id and config["user_id"] == site["staff"].id
    assert config["urls"]["batch"] == "/meals/counter/batch"
    assert config["urls"]["void"] == "/meals/counter/meals/{id}/void"
    assert config["labels"]["errors"]["meal_already_recorded"].startswith("已记录")
    assert config["text"]["status_waiting"] == "等待发送"
    assert 'href="/meals/counter"' in html  # in the navigation

    english = text(client.get("/meals/counter?lang=en"))
    assert "Record meals" in english
    assert _config(english)["text"]["status_waiting"] == "Waiting to send"
    assert _config(english)["labels"]["mode"]["delivery"] == "Home delivery"


def test_the_counter_is_for_canteen_staff_and_admin(site, client, login):
    assert client.get("/meals/counter").status_code == 302  # to the login page

    login(officer(site["district"]))
    assert client.get("/meals/counter").status_code == 403
    assert client.get("/meals/counter/roster").status_code == 403
    client.post("/logout")

    kitchen = KitchenFactory(district=site["district"])
    login(kitchen_staff(kitchen))
    refused = client.get("/meals/counter")
    assert refused.status_code == 403 and "无权访问" in text(refused)
    client.post("/logout")

    login(site["admin"])
    chooser = text(client.get("/meals/counter"))
    assert f'value="{site["canteen"].id}"' in chooser and f'value="{kitchen.id}"' not in chooser
    assert client.get(f"/meals/counter?canteen_id={site['canteen'].id}").status_code == 200
    assert client.get(f"/meals/counter?canteen_id={kitchen.id}").status_code == 404
    unchosen = client.get("/meals/counter/roster")  # admin's JSON calls name their canteen
    assert unchosen.status_code == 422 and "canteen_id" in unchosen.get_json()["errors"]
    assert client.get(f"/meals/counter/roster?canteen_id={site['canteen'].id}").status_code == 200


def test_staff_cannot_open_another_canteens_counter(site, client, login):
    other = CanteenFactory(district=site["district"])
    login(site["staff"])
    assert client.get(f"/meals/counter?canteen_id={other.id}").status_code == 404
    answer = client.get(f"/meals/counter/today?canteen_id={other.id}")
    assert answer.status_code == 404 and answer.get_json()["code"] == "canteen_not_found"


def _search(client, q, canteen_id=None):
    url = "/meals/counter/search" + (f"?canteen_id={canteen_id}" if canteen_id else "")
    return client.post(url, json={"q": q})


def test_search_by_card_name_pinyin_and_full_id_number_shows_masked_identity_only(site, client, login):
    person = resident(site["district"], name="张秀英", card_no="XN-7001", phone="13912345678")
    elsewhere = resident(DistrictFactory(), name="张德华", card_no="XN-7002")
    login(site["staff"])

    for q in ("XN-7001", "xn-7001", "张秀", "zhangx", "zxy", person.id_number[-4:]):
        found = _search(client, q).get_json()["residents"]
        assert [r["id"] for r in found] == [person.id], q

    full = _search(client, person.id_number)  # the number travels in the body, never in a URL
    assert full.status_code == 200
    (summary,) = full.get_json()["residents"]
    assert summary["id_number_masked"] == person.id_number[:6] + "********" + person.id_number[-4:]
    assert summary["card_no"] == "XN-7001" and summary["active"] is True
    assert {c["code"] for c in summary["categories"]} >= {"aged_60_plus"}
    raw = full.get_data(as_text=True)
    assert person.id_number not in raw and "13912345678" not in raw

    # another district's resident eats here too: found by card (city-wide), not by name
    assert [r["id"] for r in _search(client, "XN-7002").get_json()["residents"]] == [elsewhere.id]
    assert _search(client, "张德").get_json()["residents"] == []
    assert _search(client, "  ").get_json()["residents"] == []


def test_preview_gives_the_subsidy_now_and_the_warnings_in_chinese(site, client, login):
    person = resident(site["district"], birth=date(1950, 5, 1))
    login(site["staff"])
    url = f"/meals/counter/preview?canteen_id={site['canteen'].id}&resident_id={person.id}&slot=lunch&price_fen=1500"
    preview = client.get(url).get_json()
    assert (preview["subsidy_fen"], preview["copay_fen"]) == (300, 1200)
    assert preview["rule"]["category"] == "aged_60_plus" and preview["already_recorded"] is None

    delivery = client.get(url + "&mode=delivery").get_json()
    assert {"code": "not_registered_for_delivery", "message": "未登记送餐上门。"} in delivery["warnings"]

    record(site["staff"], **meal_fields(site["canteen"], person))
    again = client.get(url).get_json()
    assert again["already_recorded"] == {"canteen_name": site["canteen"].name, "slot": "lunch", "here": True}

    bad = client.get(url.replace("slot=lunch", "slot=supper"))
    assert bad.status_code == 422 and bad.get_json()["code"] == "validation_error"
    assert bad.get_json()["message"] == "部分内容填写有误。" and "slot" in bad.get_json()["errors"]


def test_the_roster_kept_offline_carries_no_id_number_and_no_phone(site, client, login):
    at_home = resident(
        site["district"],
        name="王秀兰",
        card_no="XN-7101",
        phone="13812345678",
        home_canteen_id=site["canteen"].id,
        diet={"restrictions": ["low_salt"], "allergens": ["peanut"], "notes": "女儿电话 13987654321"},
    )
    elsewhere = resident(site["district"], name="李四")  # no meal here, another home canteen: not listed
    login(site["staff"])
    answer = client.get("/meals/counter/roster")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    residents = answer.get_json()["residents"]
    assert [r["id"] for r in residents] == [at_home.id] and elsewhere.id not in {r["id"] for r in residents}
    (entry,) = residents
    assert (entry["name"], entry["card_no"], entry["pinyin"], entry["initials"]) == (
        "王秀兰",
        "XN-7101",
        "wangxiulan",
        "wxl",
    )
    assert entry["restrictions"] == ["低盐"] and entry["allergens"] == ["花生"]
    raw = answer.get_data(as_text=True)
    assert at_home.id_number not in raw and "13812345678" not in raw and "13987654321" not in raw
    assert "id_number" not in raw and "phone" not in raw


def _item(site, person, **extra):
    body = meal_fields(site["canteen"], person, **extra)
    body["served_on"] = body["served_on"].isoformat()
    return {"idempotency_key": new_key(), **body}


def _meals(person) -> list[MealRecord]:
    with scoping.unrestricted():
        return list(db.session.scalars(sa.select(MealRecord).where(MealRecord.resident_id == person.id)))


def test_the_batch_records_each_meal_once_and_answers_as_the_api(site, client, login):
    first = resident(site["district"], birth=date(1950, 5, 1))
    second = resident(site["district"], birth=date(1950, 6, 1))
    items = [_item(site, first), _item(site, second), _item(site, first)]  # the last: a second lunch
    login(site["staff"])

    answer = client.post("/meals/counter/batch", json={"items": items})
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    assert [r["status"] for r in results] == ["created", "created", "refused"]
    assert [r["idempotency_key"] for r in results] == [i["idempotency_key"] for i in items]
    assert set(results[0]["meal"]) == set(MealSchema().fields)
    assert (results[0]["meal"]["subsidy_fen"], results[0]["meal"]["copay_fen"]) == (300, 1200)
    error = results[2]["error"]
    assert error["code"] == "meal_already_recorded" and error["canteen_name"] == site["canteen"].name
    assert error["meal_id"] == results[0]["meal"]["id"]

    again = client.post("/meals/counter/batch", json={"items": items}).get_json()["results"]  # the answer was lost
    assert [r["status"] for r in again] == ["replayed", "replayed", "refused"]
    assert again[0]["meal"] == results[0]["meal"]
    assert len(_meals(first)) == 1 and len(_meals(second)) == 1

    too_many = client.post("/meals/counter/batch", json={"items": [items[0]] * 501})
    assert too_many.status_code == 422 and too_many.get_json()["code"] == "validation_error"
    assert client.post("/meals/counter/batch", data="[1]", content_type="application/json").status_code == 422


def test_json_endpoints_answer_json_when_logged_out_or_without_a_csrf_token(site, app):
    from tests.conftest import make_app
    from tests.factories import PASSWORD

    anonymous = app.test_client().post("/meals/counter/batch", json={"items": []})
    assert anonymous.status_code == 401 and anonymous.get_json()["code"] == "unauthorized"
    assert "重新登录" in anonymous.get_json()["message"]

    guarded = make_app(app.config["DATABASE_URL"], WTF_CSRF_ENABLED=True)
    client = guarded.test_client()
    login_page = text(client.get("/login"))
    data = {"username": site["staff"].username, "password": PASSWORD, "csrf_token": csrf_token_in(login_page)}
    assert client.post("/login", data=data).status_code == 302
    person = resident(site["district"])
    body = {"items": [_item(site, person)]}
    refused = client.post("/meals/counter/batch", json=body)
    assert refused.status_code == 400 and refused.get_json()["code"] == "csrf_failed"
    assert _meals(person) == []

    token = client.get("/meals/counter").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', token).group(1)
    accepted = client.post("/meals/counter/batch", json=body, headers={"X-CSRFToken": token})
    assert accepted.status_code == 200 and accepted.get_json()["results"][0]["status"] == "created"


def test_voids_need_a_reason_and_refusals_are_readable(site, client, login):
    person = resident(site["district"])
    meal = record(site["staff"], **meal_fields(site["canteen"], person))
    login(site["staff"])
    url = f"/meals/counter/meals/{meal.id}/void"

    missing = client.post(url, json={"reason": " "})
    assert missing.status_code == 422 and missing.get_json()["code"] == "validation_error"
    assert missing.get_json()["message"] == "部分内容填写有误。"

    voided = client.post(url, json={"reason": "录错了人"})
    assert voided.status_code == 200
    assert (voided.get_json()["status"], voided.get_json()["void_reason"]) == ("void", "录错了人")
    twice = client.post(url, json={"reason": "again"})
    assert twice.status_code == 409 and twice.get_json()["message"] == "该就餐记录已作废。"

    frozen = record(site["staff"], **meal_fields(site["canteen"], person))
    with scoping.unrestricted():
        meal_service.freeze_month(site["canteen"].id, clock.today().strftime("%Y-%m"))
    db.session.commit()
    settled = client.post(f"/meals/counter/meals/{frozen.id}/void", json={"reason": "late"})
    assert settled.status_code == 409 and settled.get_json()["code"] == "month_frozen"
    assert settled.get_json()["message"] == "本月已结算，不能再记录或作废就餐。"

    elsewhere = CanteenFactory()
    other = record(canteen_staff(elsewhere), **meal_fields(elsewhere, resident(site["district"])))
    assert client.post(f"/meals/counter/meals/{other.id}/void", json={"reason": "x"}).status_code == 404


def test_today_lists_the_canteens_meals_of_the_day_valid_and_void(site, client, login):
    person, other = resident(site["district"]), resident(site["district"])
    kept = record(site["staff"], **meal_fields(site["canteen"], person))
    voided = record(site["staff"], **meal_fields(site["canteen"], other))
    with scoping.acting_as(scoping.SYSTEM):
        meal_service.void_meal(voided.id, reason="mistake")
    db.session.commit()
    login(site["staff"])
    answer = client.get("/meals/counter/today").get_json()
    assert answer["date"] == clock.today().isoformat()
    assert [(m["id"], m["status"]) for m in answer["meals"]] == [(voided.id, "void"), (kept.id, "valid")]
    assert answer["meals"][1]["resident_name"] == person.name


def test_the_service_worker_keeps_only_the_page_and_its_scripts(client):
    worker = client.get("/meals/counter-sw.js")
    assert worker.status_code == 200 and worker.headers["Content-Type"].startswith("text/javascript")
    source = text(worker)
    assert '"/meals/counter"' in source and "/static/counter.js" in source
    assert 'request.method !== "GET"' in source


# --- the cash-up --------------------------------------------------------------------------------
def test_staff_see_their_cash_up_per_account_and_payment_method(site, client, login):
    colleague = canteen_staff(site["canteen"], username="counter2")
    a, b, c = (resident(site["district"], birth=date(1950, 5, 1)) for _ in range(3))
    record(site["staff"], **meal_fields(site["canteen"], a, payment_method="wechat"))
    record(colleague, **meal_fields(site["canteen"], b, price_fen=1000))
    mistake = record(colleague, **meal_fields(site["canteen"], c))
    with scoping.acting_as(scoping.SYSTEM):
        meal_service.void_meal(mistake.id, reason="wrong person")
    db.session.commit()

    login(site["staff"])
    page = client.get("/meals/cash-up")
    assert page.status_code == 200
    html = text(page)
    assert "每日对账" in html and site["canteen"].name in html
    assert 'class="print-only signatures"' in html
    with client.get("/static/canteen.css") as stylesheet:
        assert "@media print" in text(stylesheet)  # on paper: the figures and the signature lines
    assert "data-print" in html and "counter2" in html and site["staff"].username in html
    total = re.search(r'<tr class="total">(.*?)</tr>', html, re.S).group(1)
    figures = re.findall(r'<td class="num">([^<]+)</td>', total)
    # meals, subsidy, copay, cash, wechat, alipay, card, account, voids, copay of voids
    assert figures == ["2", "6.00", "19.00", "7.00", "12.00", "0.00", "0.00", "0.00", "1", "12.00"]

    yesterday = text(client.get("/meals/cash-up?date=2020-01-01"))
    assert "当天没有就餐记录" in yesterday
    assert "日期无效" in text(client.get("/meals/cash-up?date=31/12"))
    assert "Daily cash-up" in text(client.get("/meals/cash-up?lang=en"))


def test_officers_choose_a_canteen_of_their_district(site, client, login):
    CanteenFactory(district=site["district"])  # two canteens: the officer chooses
    outside = CanteenFactory()
    login(site["officer"])
    chooser = text(client.get("/meals/cash-up"))
    assert "选择食堂以查看对账" in chooser and f'value="{site["canteen"].id}"' in chooser
    assert f'value="{outside.id}"' not in chooser
    assert client.get(f"/meals/cash-up?canteen_id={site['canteen'].id}").status_code == 200
    not_theirs = client.get(f"/meals/cash-up?canteen_id={outside.id}")
    assert not_theirs.status_code == 404 and "不在您的管辖范围内" in text(not_theirs)
    assert 'href="/meals/cash-up"' in chooser and 'href="/meals/counter"' not in chooser


def test_kitchen_staff_handle_no_money(site, client, login):
    login(kitchen_staff(KitchenFactory(district=site["district"])))
    assert client.get("/meals/cash-up").status_code == 403
