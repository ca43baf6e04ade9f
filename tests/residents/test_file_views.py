"""The spreadsheets page: the import template, the all-or-nothing import, the masked export and
the civil-affairs list, from the browser — the same services as the API, in the page's language."""

from __future__ import annotations

import io
import itertools
from datetime import date
from urllib.parse import quote

import openpyxl
import pytest
import sqlalchemy as sa

from canteen.core import scoping
from canteen.extensions import db
from canteen.residents import imports, views
from canteen.residents import service as resident_service
from canteen.residents.id_numbers import make_number
from canteen.residents.models import Resident
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
from tests.pages import csrf_token_in, text
from tests.residents.workbooks import XLSX, feed_csv, upload, workbook

PAGE = "/residents/files"
TEMPLATE = "/residents/files/import-template.xlsx"
IMPORT = "/residents/files/import"
EXPORT = "/residents/files/export.xlsx"
FEED = "/residents/files/civil-affairs-feed"
CHECK_DIGIT_ZH = "校验位错误：号码有输入错误"
CHECK_DIGIT_EN = "The check digit is wrong: the number has a typing error."
_sequence = itertools.count(301)


def number(region: str = "630102", birth: date = date(1950, 3, 1)) -> str:
    """A valid, fictitious ID number, different on each call."""
    return make_number(region, birth, next(_sequence) % 999)


def wrong_check_digit(valid: str) -> str:
    return valid[:17] + ("0" if valid[17] != "0" else "1")


def count_residents() -> int:
    with scoping.unrestricted():
        return db.session.scalar(sa.select(sa.func.count(Resident.id)))


def find(id_number: str) -> Resident | None:
    with scoping.unrestricted():
        return resident_service.find_resident_by_id_number(id_number)


def cells(content: bytes) -> list[str]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]


def post_forms(html: str) -> list[str]:
    forms = [chunk.split("</form>")[0] for chunk in html.split("<form")[1:]]
    return [form for form in forms if 'method="post"' in form.split(">")[0]]


@pytest.fixture
def city():
    east, west = DistrictFactory(name="城东区"), DistrictFactory(name="城西区")
    return {
        "east": east,
        "west": west,
        "east_community": CommunityFactory(district=east, name="东关社区"),
        "west_community": CommunityFactory(district=west, name="西关社区"),
        "east_canteen": CanteenFactory(district=east, name="东关爱老幸福食堂"),
        "kitchen": KitchenFactory(district=east, name="城东中央厨房"),
    }


# --- the page ----------------------------------------------------------------------------------
def test_the_list_page_links_to_the_spreadsheets_page_with_its_filters(client, login, city):
    login(officer(city["east"]))
    html = text(client.get("/residents?status=deceased&without_consent=1"))
    assert 'href="/residents/files?' in html and "status=deceased" in html and "without_consent=1" in html
    assert "导入和导出" in html
    page = text(client.get(f"{PAGE}?status=deceased&without_consent=1"))
    assert '<option value="deceased" selected>' in page and 'name="without_consent" value="1" checked' in page


def test_the_page_has_four_parts_and_documents_the_feed(client, login, city):
    login(officer(city["east"]))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = text(response)
    for part in ("1. 导入模板", "2. 从工作簿导入居民", "3. 导出居民名册", "4. 民政数据名单"):
        assert part in html, part
    assert f'href="{TEMPLATE}"' in html and f'action="{IMPORT}"' in html
    assert f'action="{EXPORT}"' in html and f'action="{FEED}"' in html
    assert "东关社区" in html and "西关社区" not in html, "the export offers the officer's own communities"
    assert 'name="district_id"' not in html, "an officer imports into and exports their own district"
    for column in imports.FEED_COLUMNS:
        assert column.title in html and f"<code>{column.key}</code>" in html
    assert set(views.FEED_EVENT_LABELS) == set(views.FEED_EVENT_EFFECTS) == set(imports.FEED_EVENTS)
    for code, names in imports.FEED_EVENTS.items():
        assert f"<code>{code}</code>" in html and names[0] in html
    assert "GBK/GB18030" in html and "UTF-8" in html and "2 MB" in html

    english = text(client.get(f"{PAGE}?lang=en"))
    assert "1. The import template" in english and "4. The civil-affairs list" in english
    assert "Status “deceased” from the effective date" in english and "Subsistence allowance (低保) granted" in english


def test_admin_chooses_districts(client, login, city):
    login(admin())
    html = text(client.get(PAGE))
    assert 'id="import-district" name="district_id"' in html and 'id="export-district" name="district_id"' in html
    assert "东关社区" in html and "西关社区" in html


# --- the template --------------------------------------------------------------------------------
def test_an_officer_downloads_the_import_template(client, login, city):
    login(officer(city["east"]))
    response = client.get(TEMPLATE)
    assert response.status_code == 200 and response.mimetype == XLSX
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"filename*=UTF-8''{quote('居民导入模板.xlsx')}" in disposition
    assert 'filename="resident-import-template.xlsx"' in disposition
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["居民", "填写说明"]
    assert book["居民"].cell(row=1, column=1).value == "姓名\nname"


# --- the import ------------------------------------------------------------------------------------
def test_an_import_through_the_page_registers_every_row(client, login, city):
    login(officer(city["east"]))
    first, second = number(), number()
    rows = [
        {"name": "张三", "id_number": first, "phone": "13812345678", "community": "东关社区"},
        {"name": "李四", "id_number": second, "categories": "低保:2026-01-01"},
    ]
    response = client.post(IMPORT, **upload(workbook(rows)))
    assert response.status_code == 303 and response.headers["Location"] == "/residents"
    assert "已导入 2 位居民。" in text(client.get("/residents"))
    zhang, li = find(first), find(second)
    assert zhang.name == "张三" and zhang.district_id == city["east"].id
    assert zhang.community_id == city["east_community"].id and zhang.phone == "13812345678"
    assert li.categories[0].category == "subsistence" and li.categories[0].source == "import"

    client.post(IMPORT + "?lang=en", **upload(workbook([{"name": "王五", "id_number": number()}])))
    assert "1 resident imported." in text(client.get("/residents"))


def test_admin_imports_into_the_chosen_district(client, login, city):
    login(admin())
    content = workbook([{"name": "赵六", "id_number": (chosen := number())}])
    response = client.post(
        IMPORT,
        data={"file": (io.BytesIO(content), "x.xlsx"), "district_id": str(city["west"].id)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert find(chosen).district_id == city["west"].id


def test_one_bad_row_among_several_writes_nothing_and_is_shown(client, login, city):
    login(officer(city["east"]))
    before = count_residents()
    rows = [{"name": f"居民{i}", "id_number": number(), "card_no": f"XN-8{i:04d}"} for i in range(6)]
    bad = wrong_check_digit(rows[3]["id_number"])
    rows[3]["id_number"] = bad
    content = workbook(rows)

    response = client.post(IMPORT, **upload(content))
    assert response.status_code == 422
    html = text(response)
    assert "导入被拒绝：没有导入任何数据" in html
    assert "共 6 行，其中 1 行有误，全部未导入" in html
    assert "<td>5</td><td>证件号码</td><td>" + CHECK_DIGIT_ZH + "</td>" in html  # the header is row 1
    assert CHECK_DIGIT_EN not in html and bad not in html
    assert count_residents() == before
    assert all(find(row["id_number"]) is None for row in rows)

    english = client.post(IMPORT + "?lang=en", **upload(content))
    assert english.status_code == 422
    html = text(english)
    assert "Import refused: nothing was imported" in html and "1 of 6 rows have errors; nothing was imported." in html
    assert "<td>5</td><td>id_number</td><td>" + CHECK_DIGIT_EN + "</td>" in html
    assert CHECK_DIGIT_ZH not in html
    assert count_residents() == before


def test_files_that_cannot_be_imported_are_explained(client, login, city):
    login(officer(city["east"]))
    response = client.post(IMPORT, **upload(b"name,id_number\n", "residents.csv"))
    assert response.status_code == 422 and "请上传 .xlsx 工作簿" in text(response)
    response = client.post(IMPORT, **upload(workbook([]), "empty.xlsx"))
    assert response.status_code == 422 and "工作簿中没有数据行" in text(response)
    response = client.post(IMPORT, data={}, content_type="multipart/form-data")
    assert response.status_code == 422 and "请选择要上传的工作簿（.xlsx）" in text(response)
    response = client.post(IMPORT + "?lang=en", **upload(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old", "old.xls"))
    assert response.status_code == 422 and "Old .xls workbooks are not read: save as .xlsx." in text(response)
    assert count_residents() == 0


def test_an_upload_over_the_size_limit_gets_a_readable_page(app, client, login, city, monkeypatch):
    login(officer(city["east"]))
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 10_000)
    too_big = b"PK\x03\x04" + b"0" * 20_000
    for url in (IMPORT, FEED):
        response = client.post(url, **upload(too_big))
        assert response.status_code == 413, url
        html = text(response)
        assert "内容过大" in html and "提交的内容过大。" in html and "Traceback" not in html
    english = text(client.post(FEED + "?lang=en", **upload(too_big)))
    assert "Too large" in english and "What you sent is too large." in english
    # with CSRF on, the form is read (and refused) before the view runs: the same page
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    response = client.post(IMPORT + "?lang=zh_Hans_CN", **upload(too_big))
    assert response.status_code == 413 and "内容过大" in text(response)
    assert count_residents() == 0


# --- the export ------------------------------------------------------------------------------------
def test_the_export_through_the_page_is_masked_and_of_the_own_district(client, login, city):
    mine = resident(
        city["east"],
        name="王秀英",
        phone="13812345678",
        community_id=city["east_community"].id,
        emergency_contact="王强 13900001111",
    )
    with scoping.unrestricted():
        resident_service.add_category(mine.id, category="subsistence", valid_from=date(2026, 1, 1))
    db.session.commit()
    second = resident(city["east"], name="李四", phone="13512345678")
    theirs = resident(city["west"], name="赵敏", phone="13312345678")
    secrets = [p.id_number for p in (mine, second, theirs)] + ["13812345678", "13900001111", "13512345678"]
    login(officer(city["east"]))

    response = client.get(EXPORT)
    assert response.status_code == 200 and response.mimetype == XLSX
    assert f"filename*=UTF-8''{quote('居民名册-')}" in response.headers["Content-Disposition"]
    everything = cells(response.data)
    for secret in secrets:
        assert not any(secret in value for value in everything), secret
    sheet = openpyxl.load_workbook(io.BytesIO(response.data))["居民"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    keys = [header.split("\n")[1] for header in rows[0]]
    exported = [dict(zip(keys, row, strict=True)) for row in rows[1:]]
    assert {row["name"] for row in exported} == {"王秀英", "李四"}
    assert {row["district_code"] for row in exported} == {city["east"].code}
    assert "赵敏" not in everything
    by_name = {row["name"]: row for row in exported}
    assert by_name["王秀英"]["phone_masked"] == "138****5678"
    assert by_name["王秀英"]["id_number_masked"] == mine.id_number[:6] + "********" + mine.id_number[-4:]

    # the list page's filters; an officer's district_id is ignored (their own district only)
    filtered = cells(client.get(EXPORT, query_string={"category": "subsistence"}).data)
    assert "王秀英" in filtered and "李四" not in filtered
    filtered = cells(client.get(EXPORT, query_string={"community_id": city["east_community"].id}).data)
    assert "王秀英" in filtered and "李四" not in filtered
    assert "李四" in cells(client.get(EXPORT, query_string={"without_consent": "1"}).data)
    assert "王秀英" not in cells(client.get(EXPORT, query_string={"status": "deceased"}).data)
    assert "赵敏" not in cells(client.get(EXPORT, query_string={"district_id": city["west"].id}).data)


# --- the civil-affairs list --------------------------------------------------------------------------
def test_a_feed_through_the_page_applies_a_past_death_and_lists_the_rest(client, login, city):
    person = resident(city["east"], name="王秀英", registered_on=date(2026, 1, 1))
    other = resident(city["east"], name="李四", registered_on=date(2026, 1, 1))
    nobody = number()
    rows = [
        {"id_number": person.id_number, "event": "死亡", "effective_on": "2026-03-01", "note": "民政局通知"},
        {"id_number": nobody, "event": "death", "effective_on": "2026-03-01"},
        {"id_number": other.id_number, "event": "低保取消", "effective_on": "2026-03-01"},
    ]
    login(officer(city["east"]))
    response = client.post(FEED, **upload(feed_csv(rows), "民政名单.csv"))
    assert response.status_code == 200
    html = text(response)
    assert "民政数据名单已处理：民政名单.csv" in html
    matched = html.split('class="feed-matched"')[1].split("</table>")[0]
    assert "王秀英" in matched and "死亡" in matched and "2026-03-01" in matched
    assert "状态：自 2026-03-01 起已故" in matched and "<td>—</td>" in matched
    unmatched = html.split('class="feed-unmatched"')[1].split("</table>")[0]
    assert nobody[:6] + "********" + nobody[-4:] in unmatched and "<td>3</td>" in unmatched
    conflicting = html.split('class="feed-conflicting"')[1].split("</table>")[0]
    assert "李四" in conflicting and "没有有效的低保记录，无从取消" in conflicting
    assert not any(full in html for full in (person.id_number, other.id_number, nobody))
    with scoping.unrestricted():
        dead = resident_service.get_resident(person.id)
        db.session.refresh(dead)
        assert dead.status == "deceased" and dead.status_effective_on == date(2026, 3, 1)
        assert resident_service.is_active_on(dead, date(2026, 2, 28))
        assert resident_service.get_resident(other.id).status == "active"


def test_a_feed_workbook_in_english(client, login, city):
    person = resident(city["east"], name="王秀英", registered_on=date(2026, 1, 1))
    rows = [
        {"id_number": person.id_number, "event": "moved_out", "effective_on": date(2026, 2, 1)},
        {"id_number": person.id_number, "event": "结婚", "effective_on": "2026-03-01"},
    ]
    content = workbook(rows, columns=["id_number", "event", "effective_on", "note"])
    login(officer(city["east"]))
    html = text(client.post(FEED + "?lang=en", **upload(content, "feed.xlsx")))
    matched = html.split('class="feed-matched"')[1].split("</table>")[0]
    assert "Moved out" in matched and "Status: Moved out from 2026-02-01" in matched
    conflicting = html.split('class="feed-conflicting"')[1].split("</table>")[0]
    assert "Unknown event &#39;结婚&#39;" in conflicting and "结婚" in conflicting
    assert "Every row names a registered resident." in html


def test_meals_after_the_effective_date_are_counted_once_there_are_meals(client, login, city, monkeypatch):
    # meals are not recorded yet, so the service lists none; the page shows a count when it does
    def with_meals(stream, *, source_name=""):
        return imports.FeedResult(
            rows=1,
            matched=[
                {
                    "row": 2,
                    "resident_id": 7,
                    "name": "王秀英",
                    "event": "death",
                    "effective_on": date(2026, 3, 1),
                    "applied": {"kind": "status", "status": "deceased", "effective_on": date(2026, 3, 1)},
                    "meals_after_effective_date": [{"id": 1}, {"id": 2}],
                }
            ],
        )

    monkeypatch.setattr(imports, "apply_civil_affairs_feed", with_meals)
    login(officer(city["east"]))
    matched = text(client.post(FEED, **upload(b"ignored", "feed.csv"))).split('class="feed-matched"')[1]
    assert '<span class="badge badge-warn">2 餐</span>' in matched.split("</table>")[0]
    english = text(client.post(FEED + "?lang=en", **upload(b"ignored", "feed.csv")))
    assert '<span class="badge badge-warn">2 meals</span>' in english


def test_a_feed_that_cannot_be_read_changes_nothing(client, login, city):
    login(officer(city["east"]))
    response = client.post(FEED, **upload(b"a,b\n1,2\n", "feed.csv"))
    assert response.status_code == 422
    assert "找不到表头" in text(response) and "民政数据名单无法读取：没有作任何更改" in text(response)
    response = client.post(FEED + "?lang=en", data={}, content_type="multipart/form-data")
    assert response.status_code == 422 and "Choose a file (.xlsx or .csv) to upload." in text(response)


# --- who may -------------------------------------------------------------------------------------------
def test_staff_and_kitchen_staff_are_refused_everywhere(app, city):
    from tests.factories import PASSWORD

    person = resident(city["east"], registered_on=date(2026, 1, 1))
    feed = feed_csv([{"id_number": person.id_number, "event": "death", "effective_on": "2026-03-01"}])
    before = count_residents()
    for user in (canteen_staff(city["east_canteen"]), kitchen_staff(city["kitchen"])):
        client = app.test_client()
        assert client.post("/login", data={"username": user.username, "password": PASSWORD}).status_code == 302
        assert client.get(PAGE).status_code == 403
        assert client.get(TEMPLATE).status_code == 403
        assert client.get(EXPORT).status_code == 403
        assert client.post(IMPORT, **upload(workbook([{"name": "张三", "id_number": number()}]))).status_code == 403
        assert client.post(IMPORT, **upload(b"not a workbook")).status_code == 403
        assert client.post(FEED, **upload(feed, "feed.csv")).status_code == 403
    assert count_residents() == before
    with scoping.unrestricted():
        assert resident_service.get_resident(person.id).status == "active"


def test_the_anonymous_are_sent_to_the_login_page(client, city):
    for method, url in (("get", PAGE), ("get", TEMPLATE), ("get", EXPORT), ("post", IMPORT), ("post", FEED)):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url


def test_every_post_form_carries_the_csrf_token(app, client, login, city):
    login(officer(city["east"]))
    html = text(client.get(PAGE))
    forms = post_forms(html)
    assert len(forms) == 3  # import, civil-affairs list, log out
    for form in forms:
        assert 'name="csrf_token"' in form, form[:200]
    uploads = [form for form in forms if 'action="/logout"' not in form.split(">")[0]]
    assert [f'action="{IMPORT}"' in uploads[0], f'action="{FEED}"' in uploads[1]] == [True, True]
    for form in uploads:
        assert 'enctype="multipart/form-data"' in form.split(">")[0]
    # the rejected import re-renders the page with its forms: still carrying the token
    rejected = text(client.post(IMPORT, **upload(b"nothing")))
    assert all('name="csrf_token"' in form for form in post_forms(rejected))

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    try:
        content = workbook([{"name": "张三", "id_number": (first := number())}])
        assert client.post(IMPORT, **upload(content)).status_code == 400
        assert find(first) is None
        token = csrf_token_in(text(client.get(PAGE)))
        response = client.post(
            IMPORT,
            data={"file": (io.BytesIO(content), "residents.xlsx"), "csrf_token": token},
            content_type="multipart/form-data",
        )
        assert response.status_code == 303 and find(first) is not None
    finally:
        monkeypatch.undo()
