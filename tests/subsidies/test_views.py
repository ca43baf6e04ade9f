"""Pages for subsidy policies: the list with the policy in force today, a policy's rules in yuan,
creating a policy through the form with amounts typed in yuan, ending one, and who may open them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from canteen.core import clock
from canteen.extensions import db
from canteen.subsidies import service as subsidy_service
from canteen.subsidies.models import SubsidyPolicy
from tests.factories import (
    PASSWORD,
    CanteenFactory,
    DistrictFactory,
    KitchenFactory,
    admin,
    canteen_staff,
    kitchen_staff,
    officer,
)
from tests.pages import text
from tests.subsidies.conftest import make_policy, rule


def _form(**overrides):
    data = {
        "name": "2027 年助餐补贴",
        "valid_from": "2027-01-01",
        "valid_to": "",
        "operator_allowance": "3",
        "rules-0-category": "subsistence",
        "rules-0-slot": "lunch",
        "rules-0-amount": "8",
        "rules-0-unit": "per_meal",
        "rules-0-min_price": "",
        "rules-0-max_per_day": "",
        "rules-0-max_per_month": "31",
        "rules-1-category": "aged_60_plus",
        "rules-1-slot": "any",
        "rules-1-amount": "3.50",
        "rules-1-unit": "per_day",
        "rules-1-min_price": "10",
        "rules-1-max_per_day": "",
        "rules-1-max_per_month": "",
        # an unused row, as the form always sends some
        "rules-2-category": "",
        "rules-2-slot": "lunch",
        "rules-2-amount": "",
        "rules-2-unit": "per_meal",
        "rules-2-min_price": "",
        "rules-2-max_per_day": "",
        "rules-2-max_per_month": "",
    }
    data.update(overrides)
    return data


def _policies() -> list[SubsidyPolicy]:
    return list(db.session.scalars(sa.select(SubsidyPolicy).order_by(SubsidyPolicy.id)))


@pytest.fixture
def district():
    return DistrictFactory(name="城中区")


def test_officer_creates_a_policy_with_amounts_in_yuan(client, login, district):
    login(officer(district))
    form_page = client.get("/subsidies/new")
    assert form_page.status_code == 200
    assert "新建补贴政策" in text(form_page) and 'name="rules-7-amount"' in text(form_page)

    response = client.post("/subsidies/new", data=_form())
    assert response.status_code == 302, text(response)[:2000]
    (policy,) = _policies()
    assert response.headers["Location"] == f"/subsidies/{policy.id}"
    assert (policy.district_id, policy.valid_from, policy.valid_to) == (district.id, date(2027, 1, 1), None)
    assert policy.operator_allowance_fen == 300
    subsistence, aged = policy.rules
    assert (subsistence.category, subsistence.slot, subsistence.amount_fen, subsistence.max_per_month) == (
        "subsistence",
        "lunch",
        800,
        31,
    )
    assert (aged.amount_fen, aged.unit, aged.min_price_fen, aged.max_per_day) == (350, "per_day", 1000, None)

    page = text(client.get(f"/subsidies/{policy.id}"))
    assert "补贴政策 2027 年助餐补贴 已创建" in page
    for shown in ("8.00", "3.50", "10.00", "低保对象", "60周岁以上", "午餐", "任一餐", "每天一次", "尚未生效"):
        assert shown in page, shown


@pytest.mark.parametrize(
    ("field", "typed"),
    [("rules-0-amount", "八元"), ("rules-0-amount", "3.555"), ("rules-1-min_price", "-10"), ("rules-0-amount", "1e3")],
)
def test_a_bad_amount_is_a_field_error_and_nothing_is_written(client, login, district, field, typed):
    login(officer(district))
    response = client.post("/subsidies/new", data=_form(**{field: typed}))
    assert response.status_code == 422
    html = text(response)
    assert "请输入以元为单位的金额" in html
    assert f'id="{field}-errors"' in html, "the message sits next to the amount"
    assert f'value="{typed}"' in html, "what was typed is kept for correcting"
    assert 'value="2027 年助餐补贴"' in html
    assert _policies() == []


def test_row_errors_from_the_schema_are_shown_in_their_row(client, login, district):
    login(officer(district))
    response = client.post(
        "/subsidies/new",
        data=_form(**{"rules-1-max_per_day": "1", "rules-0-amount": "0", "rules-2-category": "disabled"}),
    )
    assert response.status_code == 422
    html = text(response)
    assert 'id="rules-1-max_per_day-errors"' in html and "按天补贴的规则每天只补贴一次" in html
    assert 'id="rules-0-amount-errors"' in html and "补贴金额须大于 0" in html
    assert 'id="rules-2-amount-errors"' in html and "此项为必填项" in html  # a category without an amount
    assert _policies() == []


def test_overlap_and_missing_rules_are_explained(client, login, district):
    make_policy(district, [rule("aged_60_plus", "any", 300)], valid_from=date(2026, 1, 1))
    login(officer(district))
    overlap = client.post("/subsidies/new", data=_form())
    assert overlap.status_code == 422
    assert "该区在此期间已有生效的补贴政策" in text(overlap)
    no_rules = {
        k: ("" if k.endswith(("-category", "-amount", "-max_per_month", "-min_price")) else v)
        for k, v in _form().items()
    }
    empty = client.post("/subsidies/new", data=no_rules)
    assert empty.status_code == 422 and "至少需要一条规则" in text(empty)
    assert len(_policies()) == 1


def test_admin_chooses_the_district(client, login, district):
    login(admin())
    missing = client.post("/subsidies/new", data=_form())
    assert missing.status_code == 422 and 'id="district_id-errors"' in text(missing)
    response = client.post("/subsidies/new", data=_form(district_id=str(district.id)))
    assert response.status_code == 302
    assert _policies()[0].district_id == district.id


def test_list_highlights_the_policy_in_force_today(client, login, district):
    today = clock.today()
    past = make_policy(
        district,
        [rule("aged_60_plus", "any", 300)],
        valid_from=date(2020, 1, 1),
        valid_to=today - timedelta(days=1),
        name="旧政策",
    )
    current = make_policy(
        district,
        [rule("aged_60_plus", "any", 400)],
        valid_from=today,
        valid_to=today + timedelta(days=30),
        name="现行政策",
    )
    make_policy(district, [rule("aged_60_plus", "any", 500)], valid_from=today + timedelta(days=31), name="新政策")
    make_policy(DistrictFactory(), [rule("aged_60_plus", "any", 300)], name="别区政策")
    login(officer(district))
    html = text(client.get("/subsidies"))
    assert "城中区今日生效的政策" in html
    assert f'href="/subsidies/{current.id}"><strong>现行政策</strong>' in html
    assert 'aria-current="true"' in html and html.count("今日生效") >= 2
    assert "旧政策" in html and "新政策" in html and "已结束" in html and "尚未生效" in html
    assert "别区政策" not in html
    assert f"/subsidies/{past.id}" in html


def test_list_without_a_policy_in_force_warns(client, login, district):
    login(officer(district))
    assert "今日没有生效的补贴政策" in text(client.get("/subsidies"))


def test_end_through_the_form(client, login, district, no_usage_checks):
    policy = make_policy(district, [rule("aged_60_plus", "any", 300)], valid_from=date(2026, 1, 1))
    login(officer(district))
    before = client.post(f"/subsidies/{policy.id}/end", data={"valid_to": "2025-12-31"})
    assert before.status_code == 422 and "valid_to-errors" in text(before)
    assert db.session.get(SubsidyPolicy, policy.id).valid_to is None

    subsidy_service.register_usage_check(lambda checked: date(2026, 5, 20))
    in_use = client.post(f"/subsidies/{policy.id}/end", data={"valid_to": "2026-05-19"})
    assert in_use.status_code == 422
    assert "2026-05-20 已有就餐记录使用此政策" in text(in_use)

    response = client.post(f"/subsidies/{policy.id}/end", data={"valid_to": "2026-06-30"})
    assert response.status_code == 302 and response.headers["Location"] == f"/subsidies/{policy.id}"
    assert db.session.get(SubsidyPolicy, policy.id).valid_to == date(2026, 6, 30)
    assert "将于 2026-06-30 结束" in text(client.get(f"/subsidies/{policy.id}"))


def test_english_on_request(client, login, district):
    policy = make_policy(district, [rule("aged_80_plus", "lunch", 500, max_per_day=1)], valid_from=date(2026, 1, 1))
    login(officer(district))
    html = text(client.get(f"/subsidies/{policy.id}?lang=en"))
    assert "Rules" in html and "Aged 80+" in html and "5.00" in html and "Per meal" in html
    bad = client.post("/subsidies/new", data=_form(**{"rules-0-amount": "eight"}))
    assert "Enter an amount in yuan, e.g. 3 or 3.50." in text(bad)


def test_who_may_open_the_pages(app, client, login, district):
    policy = make_policy(district, [rule("aged_60_plus", "any", 300)])
    theirs = make_policy(DistrictFactory(), [rule("aged_60_plus", "any", 300)])
    assert client.get("/subsidies").status_code == 302  # to the login page

    login(officer(district))
    assert client.get(f"/subsidies/{theirs.id}").status_code == 404
    assert client.post(f"/subsidies/{theirs.id}/end", data={"valid_to": "2026-12-31"}).status_code == 404
    assert 'href="/subsidies"' in text(client.get("/"))  # in the menu

    canteen = CanteenFactory(district=district)
    for user in (canteen_staff(canteen), kitchen_staff(KitchenFactory(district=district))):
        other = app.test_client()
        assert other.post("/login", data={"username": user.username, "password": PASSWORD}).status_code == 302
        for url in ("/subsidies", "/subsidies/new", f"/subsidies/{policy.id}"):
            assert other.get(url).status_code == 403, (user.role, url)
        assert other.post(f"/subsidies/{policy.id}/end", data={"valid_to": "2026-12-31"}).status_code == 403
        assert 'href="/subsidies"' not in text(other.get("/"))
    assert db.session.get(SubsidyPolicy, policy.id).valid_to is None
