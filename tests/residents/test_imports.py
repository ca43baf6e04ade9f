"""Spreadsheets and the registry: the import template, the all-or-nothing import (API and CLI),
the masked export, and the civil-affairs feed."""

from __future__ import annotations

import io
import itertools
from datetime import date, timedelta

import openpyxl
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.core.audit_log import AuditEntry
from canteen.extensions import db
from canteen.residents import imports
from canteen.residents import service as resident_service
from canteen.residents.id_numbers import make_number
from canteen.residents.models import ALLERGENS, CATEGORIES, CONSENT_METHODS, RESTRICTIONS, Resident
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
from tests.residents.workbooks import XLSX, feed_csv, upload, workbook

IMPORT = "/api/v1/residents/import"
TEMPLATE = "/api/v1/residents/import-template.xlsx"
EXPORT = "/api/v1/residents/export.xlsx"
FEED = "/api/v1/residents/civil-affairs-feed"
_sequence = itertools.count(101)


def number(region: str = "630102", birth: date = date(1950, 3, 1)) -> str:
    """A valid, fictitious ID number, different on each call."""
    return make_number(region, birth, next(_sequence) % 999)


def wrong_check_digit(valid: str) -> str:
    return valid[:17] + ("0" if valid[17] != "0" else "1")


def good_row(**overrides) -> dict:
    row = {"name": "王秀英", "id_number": number()}
    row.update(overrides)
    return row


def count_residents() -> int:
    with scoping.unrestricted():
        return db.session.scalar(sa.select(sa.func.count(Resident.id)))


def find(id_number: str) -> Resident:
    with scoping.unrestricted():
        return resident_service.lookup_resident(id_number=id_number)


def cells(content: bytes) -> list[str]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]


# --- vocabularies ----------------------------------------------------------------------------
def test_every_code_of_the_registry_has_a_chinese_name():
    assert set(imports.RESTRICTION_NAMES) == set(RESTRICTIONS)
    assert set(imports.ALLERGEN_NAMES) == set(ALLERGENS)
    assert set(imports.CATEGORY_NAMES) == set(CATEGORIES)
    assert set(imports.CONSENT_NAMES) == set(CONSENT_METHODS)


# --- the template ----------------------------------------------------------------------------
def test_template_opens_with_openpyxl_and_keeps_id_numbers_as_text(api):
    district = DistrictFactory()
    response = api(officer(district)).get(TEMPLATE)
    assert response.status_code == 200
    assert response.mimetype == XLSX
    assert "attachment" in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["居民", "填写说明"]
    sheet = book["居民"]
    headers = [cell.value for cell in sheet[1]]
    assert headers[:3] == ["姓名\nname", "证件类型\nid_doc_type", "证件号码\nid_number"]
    letters = {value.split("\n")[1]: cell.column_letter for value, cell in zip(headers, sheet[1], strict=True)}
    for key in ("id_number", "phone", "card_no", "district_code"):
        assert sheet.column_dimensions[letters[key]].number_format == "@", key
    explained = " ".join(cells(response.data))
    for word in (
        "居民身份证",
        "港澳台居民居住证",
        "护照",
        "低盐",
        "low_salt",
        "花生",
        "低保",
        "subsistence",
        "家属代签",
    ):
        assert word in explained


def test_a_filled_in_template_imports(api):
    district = DistrictFactory()
    template = api(officer(district)).get(TEMPLATE).data
    book = openpyxl.load_workbook(io.BytesIO(template))
    sheet = book["居民"]
    first, second = number(), number()
    sheet.append(["张三", "居民身份证", first, None, None, "13812345678"])
    sheet.append(["李四", None, second])
    filled = io.BytesIO()
    book.save(filled)
    response = api(officer(district)).post(IMPORT, **upload(filled.getvalue()))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == 2
    assert find(first).phone == "13812345678" and find(second).name == "李四"


def test_staff_and_kitchen_may_not_use_the_spreadsheets(api):
    district = DistrictFactory()
    kitchen = KitchenFactory(district=district)
    content = workbook([good_row()])
    feed = feed_csv([{"id_number": number(), "event": "death", "effective_on": "2026-03-01"}])
    for user in (canteen_staff(CanteenFactory(district=district)), kitchen_staff(kitchen)):
        caller = api(user)
        assert caller.get(TEMPLATE).status_code == 403
        assert caller.get(EXPORT).status_code == 403
        assert caller.post(IMPORT, **upload(content)).status_code == 403
        assert caller.post(FEED, **upload(feed, "feed.csv")).status_code == 403
        # refused before the file is even read
        assert caller.post(IMPORT, **upload(b"not a workbook")).status_code == 403
    assert count_residents() == 0


# --- the import ------------------------------------------------------------------------------
def test_a_good_import_registers_every_row_with_every_rule(api):
    district = DistrictFactory(code="630104")
    community = CommunityFactory(district=district, name="八一路社区")
    clerk = officer(district)
    ids = [number(), number(), number()]
    rows = [
        {
            "name": "王秀英",
            "id_doc_type": "居民身份证",
            "id_number": ids[0],
            "phone": "13812345678",
            "district_code": "630104",
            "community": "八一路社区",
            "address": "八一路 3 号",
            "card_no": "XN-50001",
            "delivery": "是",
            "emergency_contact": "王强 13900001111",
            "restrictions": "低盐、软食",
            "allergens": "花生, shellfish",
            "diet_notes": "假牙",
            "categories": "低保:2026-01-01、living_alone：2025-06-01~2026-12-31",
            "consent_method": "本人签字",
            "consent_date": date(2026, 2, 1),
        },
        {"name": "李四", "id_number": ids[1].lower(), "delivery": "否", "categories": "特困 2026/3/1"},
        {"name": "赵敏", "id_number": ids[2], "consent_method": "family_on_behalf"},
        {
            "name": "Anna Smith",
            "id_doc_type": "护照",
            "id_number": "E12345678",
            "birth_date": "1950年3月2日",
            "sex": "女",
        },
    ]
    response = api(clerk).post(IMPORT, **upload(workbook(rows)))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == 4 and len(response.get_json()["resident_ids"]) == 4

    first = find(ids[0])
    assert (first.name, first.district_id, first.community_id) == ("王秀英", district.id, community.id)
    assert first.phone == "13812345678" and first.emergency_contact == "王强 13900001111"
    assert first.active_card.card_no == "XN-50001" and first.delivery_registered
    assert first.diet_restrictions == ["low_salt", "soft"] and first.allergens == ["peanut", "shellfish"]
    assert first.diet_notes == "假牙"
    assert (first.consent_method, first.consent_given_on, first.consent_recorded_by_id) == (
        "signed_form",
        date(2026, 2, 1),
        clerk.id,
    )
    held = {(c.category, c.valid_from, c.valid_to, c.source) for c in first.categories}
    assert held == {
        ("subsistence", date(2026, 1, 1), None, "import"),
        ("living_alone", date(2025, 6, 1), date(2026, 12, 31), "import"),
    }
    assert resident_service.categories_on(first, date(2026, 6, 1)) == ["aged_60_plus", "living_alone", "subsistence"]
    second = find(ids[1])
    assert not second.delivery_registered and [c.category for c in second.categories] == ["extreme_poverty"]
    assert second.categories[0].valid_from == date(2026, 3, 1)
    assert find(ids[2]).consent_method == "family_on_behalf" and find(ids[2]).consent_given_on == clock.today()
    passport = find("E12345678")
    assert (passport.birth_date, passport.sex, passport.id_doc_type) == (date(1950, 3, 2), "female", "passport")
    with scoping.unrestricted():
        logged = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.entity == "residents", AuditEntry.action == "insert")
        ).all()
    assert {e.actor_user_id for e in logged} == {clerk.id} and len(logged) == 4


def test_one_bad_row_among_many_writes_nothing(api):
    district = DistrictFactory()
    already = resident(district, name="老住户")
    before = count_residents()
    rows = [good_row(name=f"居民{i}", card_no=f"XN-6{i:04d}") for i in range(40)]
    rows[25]["id_number"] = wrong_check_digit(rows[25]["id_number"])
    response = api(officer(district)).post(IMPORT, **upload(workbook(rows)))
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "import_rejected" and set(body) >= {"code", "message", "errors", "rows"}
    assert body["rows"] == [
        {
            "row": 27,  # the header is row 1, so the 26th resident sits on row 27
            "field": "id_number",
            "column": "证件号码",
            "code": "invalid_id_number",
            "message_zh": "校验位错误：号码有输入错误",
            "message_en": "The check digit is wrong: the number has a typing error.",
        }
    ]
    assert body["bad_rows"] == 1 and "40" in body["message"] and "40" in body["message_zh"]
    assert count_residents() == before
    with scoping.unrestricted():
        assert (
            db.session.scalar(sa.select(sa.func.count()).select_from(Resident).where(Resident.name.like("居民%"))) == 0
        )
    assert find(already.id_number).name == "老住户"


def test_duplicates_inside_the_file_are_refused(api):
    district = DistrictFactory()
    twin = number()
    rows = [
        good_row(id_number=twin, card_no="XN-70001"),
        good_row(card_no="XN-70001"),
        good_row(id_number=f" {twin.lower()} "),
    ]
    response = api(officer(district)).post(IMPORT, **upload(workbook(rows)))
    assert response.status_code == 422
    problems = {(p["row"], p["field"], p["code"]): p for p in response.get_json()["rows"]}
    assert set(problems) == {(3, "card_no", "duplicate_in_file"), (4, "id_number", "duplicate_in_file")}
    assert problems[(4, "id_number", "duplicate_in_file")]["message_zh"] == "与第 2 行的证件号码重复"
    assert problems[(3, "card_no", "duplicate_in_file")]["message_en"] == "Same card number as row 2."
    assert count_residents() == 0


def test_an_officer_imports_into_their_own_district_only(api):
    home, other = DistrictFactory(code="630105"), DistrictFactory(code="630121")
    rows = [good_row(district_code="630105"), good_row(), good_row(district_code="630121")]
    response = api(officer(home)).post(IMPORT, **upload(workbook(rows)))
    assert response.status_code == 422
    assert [(p["row"], p["field"], p["message_zh"], p["message_en"]) for p in response.get_json()["rows"]] == [
        (4, "district_code", "不在您的辖区", "Not in your district.")
    ]
    # a default district outside the officer's scope is not found
    elsewhere = api(officer(home)).post(f"{IMPORT}?district_id={other.id}", **upload(workbook(rows[:2])))
    assert elsewhere.status_code == 404
    assert count_residents() == 0
    ok = api(officer(home)).post(IMPORT, **upload(workbook(rows[:2])))
    assert ok.status_code == 201 and ok.get_json()["created"] == 2
    with scoping.unrestricted():
        assert {find(r["id_number"]).district_id for r in rows[:2]} == {home.id}


def test_admin_names_the_district_in_each_row_or_by_default(api):
    district = DistrictFactory(code="630123")
    caller = api(admin())
    rows = [
        good_row(),
        good_row(district_code="630123"),
        good_row(district_code="999999"),
        good_row(district_code="12"),
    ]
    refused = caller.post(IMPORT, **upload(workbook(rows)))
    assert refused.status_code == 422
    assert [(p["row"], p["code"], p["message_zh"]) for p in refused.get_json()["rows"]] == [
        (2, "required", "区划代码必填"),
        (4, "district_not_found", "区划代码 999999 不存在"),
        (5, "invalid_value", "区划代码“12”应为 6 位数字"),
    ]
    created = caller.post(f"{IMPORT}?district_id={district.id}", **upload(workbook(rows[:2])))
    assert created.status_code == 201 and created.get_json()["created"] == 2


def test_every_bad_row_gets_a_chinese_and_an_english_reason(api):
    district = DistrictFactory()
    CommunityFactory(district=district, name="东关社区")
    existing = resident(district, card_no="XN-80001")
    valid = number()
    rows = [
        good_row(id_number=make_number("630102", clock.today() - timedelta(days=365 * 50), 11)),  # 2: too young
        good_row(id_number=existing.id_number),  # 3
        good_row(card_no="XN-80001"),  # 4
        good_row(restrictions="低盐、辣"),  # 5
        good_row(categories="低保:2026-13-01"),  # 6
        good_row(community="不存在社区"),  # 7
        good_row(id_doc_type="护照", id_number="P7654321"),  # 8: passport without birth date and sex
        good_row(name=None),  # 9
        good_row(phone="call me"),  # 10
        good_row(id_number=valid, birth_date="1960-01-01"),  # 11: typed twice, and differently
        good_row(id_doc_type="驾驶证"),  # 12
        good_row(delivery="也许"),  # 13
        good_row(categories="贫困:2026-01-01"),  # 14
        good_row(consent_date="2026-01-05"),  # 15
        good_row(id_number="1234"),  # 16
    ]
    response = api(officer(district)).post(IMPORT, **upload(workbook(rows)))
    assert response.status_code == 422
    found = {(p["row"], p["field"], p["code"]): p for p in response.get_json()["rows"]}
    expected = {
        (2, "id_number", "resident_too_young"): "未满 60 周岁",
        (3, "id_number", "resident_exists"): "已登记",
        (4, "card_no", "card_taken"): "助餐卡号已被使用",
        (5, "restrictions", "unknown_value"): "“辣”不在可选范围内",
        (6, "categories", "invalid_value"): "不是有效日期",
        (7, "community", "community_not_found"): "没有名为“不存在社区”的社区",
        (8, "birth_date", "validation_error"): "护照须填写出生日期",
        (8, "sex", "validation_error"): "护照须填写性别",
        (9, "name", "required"): "姓名必填",
        (10, "phone", "validation_error"): "手机号码格式不对",
        (11, "birth_date", "validation_error"): "出生日期与证件号码不符",
        (12, "id_doc_type", "unknown_value"): "证件类型“驾驶证”无法识别",
        (13, "delivery", "unknown_value"): "送餐应填 是 或 否",
        (14, "categories", "unknown_value"): "类别“贫困:2026-01-01”无法识别",
        (15, "consent_method", "required"): "须同时填写同意方式",
        (16, "id_number", "validation_error"): "证件号码长度",
    }
    assert set(found) == set(expected)
    for key, chinese in expected.items():
        assert chinese in found[key]["message_zh"], (key, found[key])
        assert found[key]["message_en"] and found[key]["message_en"] != found[key]["message_zh"]
        assert found[key]["message_zh"] != imports.GENERIC_ZH, key
    text = response.get_data(as_text=True)
    assert existing.id_number not in text and valid not in text  # no full ID number in an answer
    assert found[(3, "id_number", "resident_exists")]["message_en"] == (
        "A resident with this ID number is already registered."
    )
    assert count_residents() == 1


def test_an_id_number_excel_turned_into_a_number_is_caught(api):
    district = DistrictFactory()
    content = workbook([good_row(id_number=number())], numbers_as_numbers=True)
    response = api(officer(district)).post(IMPORT, **upload(content))
    assert response.status_code == 422
    (problem,) = response.get_json()["rows"]
    assert problem["code"] == "id_number_as_number" and "文本" in problem["message_zh"]


def test_officers_own_headers_with_a_title_row_are_read(api):
    district = DistrictFactory()
    rows = [{"seq": 1, "name": "张三", "id_number": number(), "phone": "13812345678", "extra": "忽略"}]
    headers = {"seq": "序号", "name": "姓名*", "id_number": "身份证号码（必填）", "phone": "联系电话", "extra": "说明"}
    content = workbook(
        rows, columns=["seq", "name", "id_number", "phone", "extra"], headers=headers, title="城中区名单"
    )
    response = api(officer(district)).post(IMPORT, **upload(content))
    assert response.status_code == 201, response.get_json()
    assert find(rows[0]["id_number"]).phone == "13812345678"


def test_files_that_are_not_workbooks_are_refused(api, app, monkeypatch):
    caller = api(officer(DistrictFactory()))
    cases = {
        b"name,id_number\n": "unsupported_file",
        b"PK\x03\x04 broken zip": "unreadable_file",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old": "unsupported_file",
        workbook([], columns=["address"]): "missing_columns",
        workbook([]): "empty_import",
    }
    for content, code in cases.items():
        response = caller.post(IMPORT, **upload(content))
        assert response.status_code == 422, code
        assert response.get_json()["code"] == code and response.get_json()["message_zh"]
    missing = caller.post(IMPORT, data={}, content_type="multipart/form-data")
    assert missing.status_code == 422 and "file" in missing.get_json()["errors"]
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 10_000)
    too_big = caller.post(IMPORT, **upload(b"PK\x03\x04" + b"0" * 20_000))
    assert too_big.status_code == 413 and too_big.get_json()["code"] == "payload_too_large"


# --- the command line ------------------------------------------------------------------------
def test_cli_import_commits_all_rows(app, tmp_path):
    district = DistrictFactory(code="630106")
    clerk = officer(district)
    rows = [good_row(), good_row(card_no="XN-90001"), good_row()]
    path = tmp_path / "名单.xlsx"
    path.write_bytes(workbook(rows))
    result = app.test_cli_runner().invoke(args=["residents", "import", str(path), "--as", clerk.username])
    assert result.exit_code == 0, result.output
    assert "imported 3 residents" in result.output
    assert {find(r["id_number"]).district_id for r in rows} == {district.id}
    with scoping.unrestricted():
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.entity == "residents")).first()
    assert (entry.actor_user_id, entry.operation) == (clerk.id, "flask residents import")


def test_cli_import_as_the_system_needs_a_district(app, tmp_path):
    district = DistrictFactory(code="630107")
    rows = [good_row()]
    path = tmp_path / "list.xlsx"
    path.write_bytes(workbook(rows))
    runner = app.test_cli_runner()
    without = runner.invoke(args=["residents", "import", str(path)])
    assert without.exit_code == 1 and "区划代码必填" in without.output
    result = runner.invoke(args=["residents", "import", str(path), "--district", "630107"])
    assert result.exit_code == 0, result.output
    assert find(rows[0]["id_number"]).district_id == district.id
    with scoping.unrestricted():
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.entity == "residents")).first()
    assert (entry.actor_user_id, entry.actor_name, entry.operation) == (None, "cli", "flask residents import")


def test_cli_import_prints_every_bad_row_and_writes_nothing(app, tmp_path):
    district = DistrictFactory()
    clerk = officer(district)
    rows = [good_row() for _ in range(5)]
    rows[3]["id_number"] = wrong_check_digit(rows[3]["id_number"])
    rows[4]["restrictions"] = "辣"
    path = tmp_path / "bad.xlsx"
    path.write_bytes(workbook(rows))
    result = app.test_cli_runner().invoke(args=["residents", "import", str(path), "--as", clerk.username])
    assert result.exit_code == 1
    assert (
        "第 5 行 证件号码：校验位错误" in result.output and "row 5 id_number: The check digit is wrong" in result.output
    )
    assert "第 6 行 饮食限制" in result.output and "row 6 restrictions" in result.output
    assert "nothing was imported" in result.output
    assert count_residents() == 0
    staff = canteen_staff(CanteenFactory(district=district))
    refused = app.test_cli_runner().invoke(args=["residents", "import", str(path), "--as", staff.username])
    assert refused.exit_code == 1 and "may not" in refused.output
    unknown = app.test_cli_runner().invoke(args=["residents", "import", str(path), "--as", "nobody"])
    assert unknown.exit_code == 1 and "not found" in unknown.output


# --- the export ------------------------------------------------------------------------------
def test_the_export_is_masked_and_scoped(api):
    home, other = DistrictFactory(), DistrictFactory()
    community = CommunityFactory(district=home, name="南山社区")
    mine = resident(
        home,
        name="王秀英",
        phone="13812345678",
        card_no="XN-11001",
        community_id=community.id,
        address="南山路 1 号，儿子 13700001111",
        emergency_contact="王强 13900001111",
        diet={"restrictions": ["low_salt"], "allergens": ["peanut"], "notes": "女儿电话 13600002222"},
        registered_on=date(2026, 1, 1),
        birth=date(1950, 5, 6),
    )
    with scoping.unrestricted():
        resident_service.add_category(mine.id, category="subsistence", valid_from=date(2026, 1, 1))
    second = resident(home, name="李四", phone="13512345678")
    theirs = resident(other, name="赵敏", phone="13312345678")
    secrets = [p.id_number for p in (mine, second, theirs)] + [
        "13812345678",
        "13700001111",
        "13900001111",
        "13600002222",
        "13512345678",
        "13312345678",
    ]

    response = api(officer(home)).get(EXPORT)
    assert response.status_code == 200 and response.mimetype == XLSX
    everything = cells(response.data)
    for secret in secrets:
        assert not any(secret in value for value in everything), secret
    sheet = openpyxl.load_workbook(io.BytesIO(response.data))["居民"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    keys = [header.split("\n")[1] for header in rows[0]]
    by_name = {row[keys.index("name")]: dict(zip(keys, row, strict=True)) for row in rows[1:]}
    assert set(by_name) == {"王秀英", "李四"}
    exported = by_name["王秀英"]
    assert exported["id_number_masked"] == mine.id_number[:6] + "********" + mine.id_number[-4:]
    assert exported["phone_masked"] == "138****5678" and exported["card_no"] == "XN-11001"
    assert exported["community"] == "南山社区" and exported["district_code"] == home.code
    assert exported["categories_today"] == "低保、60周岁以上" and exported["status"] == "在册"
    assert exported["restrictions"] == "低盐" and exported["allergens"] == "花生"
    assert exported["diet_notes"] == "女儿电话 136****2222"

    everyone = cells(api(admin()).get(EXPORT).data)
    assert {"王秀英", "李四", "赵敏"} <= set(everyone)
    assert not any(secret in value for value in everyone for secret in secrets)
    filtered = cells(api(officer(home)).get(EXPORT, query_string={"q": "ls"}).data)
    assert "李四" in filtered and "王秀英" not in filtered
    by_category = cells(api(officer(home)).get(EXPORT, query_string={"category": "subsistence"}).data)
    assert "王秀英" in by_category and "李四" not in by_category
    with scoping.unrestricted():
        exports = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id)
        ).all()
    assert [(e.district_id, e.after["rows"]) for e in exports] == [(home.id, 2), (None, 3), (home.id, 1), (home.id, 1)]


def test_a_formula_like_name_is_exported_as_text(api):
    district = DistrictFactory()
    resident(district, name="=HYPERLINK(1)")
    sheet = openpyxl.load_workbook(io.BytesIO(api(admin()).get(EXPORT).data))["居民"]
    assert sheet.cell(row=2, column=2).data_type == "s" and sheet.cell(row=2, column=2).value == "=HYPERLINK(1)"


# --- the civil-affairs feed ------------------------------------------------------------------
def _feed(caller, rows, *, name="feed.csv", **options):
    content = (
        feed_csv(rows, **options)
        if name.endswith(".csv")
        else workbook(rows, columns=["id_number", "event", "effective_on", "note"])
    )
    response = caller.post(FEED, **upload(content, name))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_death_reported_late_takes_effect_from_its_date(api):
    district = DistrictFactory()
    person = resident(district, name="王秀英", registered_on=date(2026, 1, 1))
    body = _feed(
        api(officer(district)), [{"id_number": person.id_number, "event": "死亡", "effective_on": "2026-03-01"}]
    )
    assert body["unmatched"] == [] and body["conflicting"] == [] and body["rows"] == 1
    (matched,) = body["matched"]
    assert matched["resident_id"] == person.id and matched["name"] == "王秀英" and matched["event"] == "death"
    assert matched["applied"]["kind"] == "status" and matched["applied"]["status"] == "deceased"
    assert matched["effective_on"] == "2026-03-01" and matched["meals_after_effective_date"] == []  # no meals yet
    with scoping.unrestricted():
        person = resident_service.get_resident(person.id)
        db.session.refresh(person)
        assert resident_service.is_active_on(person, date(2026, 2, 28))
        assert not resident_service.is_active_on(person, date(2026, 3, 1))
        assert not resident_service.is_active_on(person, clock.today())
        assert person.status == "deceased" and person.status_effective_on == date(2026, 3, 1)
        assert person.status_changes[-1].source == "civil_affairs"


def test_grants_and_revocations_change_categories_from_their_dates(api):
    district = DistrictFactory()
    person = resident(district, registered_on=date(2026, 1, 1))
    with scoping.unrestricted():
        resident_service.add_category(person.id, category="subsistence", valid_from=date(2026, 1, 1))
    rows = [
        {"id_number": person.id_number, "event": "subsistence_revoked", "effective_on": "2026-06-01"},
        {"id_number": person.id_number, "event": "特困认定", "effective_on": "2026/4/1", "note": "民政局 2026-12 号"},
    ]
    body = _feed(api(officer(district)), rows, name="民政.xlsx")
    assert body["conflicting"] == [] and len(body["matched"]) == 2
    revoked, granted = body["matched"]
    assert revoked["applied"]["kind"] == "category_ended" and revoked["applied"]["valid_to"] == "2026-05-31"
    assert granted["applied"] == {
        "kind": "category_granted",
        "category": "extreme_poverty",
        "valid_from": "2026-04-01",
        "record_id": granted["applied"]["record_id"],
    }
    with scoping.unrestricted():
        person = resident_service.get_resident(person.id)
        db.session.refresh(person)
        assert "subsistence" in resident_service.categories_on(person, date(2026, 5, 31))
        assert "subsistence" not in resident_service.categories_on(person, date(2026, 6, 1))
        assert "extreme_poverty" not in resident_service.categories_on(person, date(2026, 3, 31))
        assert "extreme_poverty" in resident_service.categories_on(person, date(2026, 4, 1))
        granted_entry = next(c for c in person.categories if c.category == "extreme_poverty")
        assert granted_entry.source == "civil_affairs" and "民政局 2026-12 号" in granted_entry.evidence


def test_unmatched_and_conflicting_rows_are_reported_and_left_alone(api):
    home, other = DistrictFactory(), DistrictFactory()
    clerk = officer(home)
    alive = resident(home, name="甲", registered_on=date(2026, 1, 1))
    dead = resident(home, name="乙", registered_on=date(2026, 1, 1))
    held = resident(home, name="丙", registered_on=date(2026, 1, 1))
    elsewhere = resident(other, name="丁", registered_on=date(2026, 1, 1))
    with scoping.unrestricted():
        resident_service.set_status(dead.id, status="deceased", effective_on=date(2026, 2, 1), reason="死亡")
        resident_service.add_category(held.id, category="subsistence", valid_from=date(2026, 1, 1))
    nobody = number()
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    rows = [
        {"id_number": nobody, "event": "death", "effective_on": "2026-03-01"},  # 2 unmatched
        {"id_number": elsewhere.id_number, "event": "death", "effective_on": "2026-03-01"},  # 3
        {"id_number": dead.id_number, "event": "death", "effective_on": "2026-03-01"},  # 4
        {"id_number": alive.id_number, "event": "低保取消", "effective_on": "2026-03-01"},  # 5
        {"id_number": held.id_number, "event": "低保认定", "effective_on": "2026-03-01"},  # 6
        {"id_number": alive.id_number, "event": "death", "effective_on": tomorrow},  # 7
        {"id_number": alive.id_number, "event": "death", "effective_on": "2025-12-01"},  # 8 before registration
        {"id_number": alive.id_number, "event": "结婚", "effective_on": "2026-03-01"},  # 9
        {"id_number": alive.id_number, "event": "death", "effective_on": "2026-02-30"},  # 10
        {"id_number": dead.id_number, "event": "moved_out", "effective_on": "2026-03-01"},  # 11
        {"id_number": held.id_number, "event": "subsistence_revoked", "effective_on": "2026-01-01"},  # 12
        {"id_number": "", "event": "death", "effective_on": "2026-03-01"},  # 13
        {"id_number": alive.id_number, "event": "迁出", "effective_on": "2026-03-01"},  # 14 applied
        {"id_number": alive.id_number, "event": "迁出", "effective_on": "2026-03-01"},  # 15 repeated
    ]
    body = _feed(api(clerk), rows, bom=False)
    assert body["rows"] == 14
    assert body["unmatched"] == [
        {
            "row": 2,
            "id_number_masked": nobody[:6] + "********" + nobody[-4:],
            "event": "death",
            "effective_on": "2026-03-01",
        }
    ]
    reasons = {c["row"]: c["reason"] for c in body["conflicting"]}
    assert reasons == {
        3: "out_of_scope",
        4: "already_deceased",
        5: "no_open_category",
        6: "category_overlap",
        7: "impossible_date",
        8: "later_status_recorded",
        9: "invalid_row",
        10: "invalid_row",
        11: "already_deceased",
        12: "impossible_date",
        13: "invalid_row",
        15: "already_recorded",
    }
    for conflict in body["conflicting"]:
        assert conflict["message_zh"] and conflict["message_en"] and conflict["message_zh"] != imports.GENERIC_ZH
    out_of_scope = next(c for c in body["conflicting"] if c["row"] == 3)
    assert "resident_id" not in out_of_scope and "name" not in out_of_scope
    assert out_of_scope["message_zh"] == "该居民登记在其他区，不在您的辖区"
    assert [m["row"] for m in body["matched"]] == [14]
    text = str(body)
    assert not any(p.id_number in text for p in (alive, dead, held, elsewhere)) and nobody not in text
    with scoping.unrestricted():
        for person in (alive, dead, held, elsewhere):
            db.session.refresh(resident_service.get_resident(person.id))
        assert resident_service.get_resident(elsewhere.id).status == "active"
        assert resident_service.get_resident(alive.id).status == "moved_out"
        assert [c.status for c in resident_service.get_resident(dead.id).status_changes] == ["active", "deceased"]
        assert resident_service.get_resident(held.id).categories[0].valid_to is None


def test_admin_applies_a_feed_anywhere(api):
    district = DistrictFactory()
    person = resident(district, registered_on=date(2026, 1, 1))
    rows = [{"id_number": person.id_number, "event": "extreme_poverty_granted", "effective_on": "2026-02-01"}]
    body = _feed(api(admin()), rows)
    assert [m["resident_id"] for m in body["matched"]] == [person.id]
