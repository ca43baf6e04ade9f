"""Pages of the auth domain: logging in and out, each role's home page, the language switch,
the caller's own account and API tokens, and the accounts pages (admin)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from canteen.auth import service as auth_service
from canteen.core import scoping
from canteen.core.db import utcnow
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
from tests.pages import csrf_token_in, text


def _redirected_to_login(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- language --------------------------------------------------------------------------------
def test_pages_are_chinese_by_default(client):
    html = text(client.get("/login"))
    assert 'lang="zh-CN"' in html
    assert "老年助餐管理系统" in html
    assert "用户名" in html and "密码" in html


def test_language_switch_shows_english_and_is_remembered(client):
    html = text(client.get("/login?lang=en"))
    assert 'lang="en"' in html
    assert "Senior meal assistance" in html and "Username" in html
    assert "老年助餐管理系统" not in html
    assert "Username" in text(client.get("/login")), "the choice is kept for the next page"
    assert "老年助餐管理系统" in text(client.get("/login?lang=zh_Hans_CN"))


def test_language_switch_links_keep_the_page_and_its_filters(client, login):
    login(admin())
    html = text(client.get("/org/canteens?kind=meal_point"))
    assert 'href="/org/canteens?kind=meal_point&amp;lang=en"' in html


def test_pages_use_only_local_assets(client):
    html = text(client.get("/login"))
    assert 'href="/static/canteen.css"' in html
    assert "http://" not in html and "https://" not in html, "no CDN, no external fonts"
    with client.get("/static/canteen.css") as stylesheet:
        assert stylesheet.status_code == 200
        assert b"@import" not in stylesheet.data and b"url(" not in stylesheet.data


# --- login and logout ------------------------------------------------------------------------
def test_login_lands_on_the_home_page(client):
    user = admin(display_name="王建国")
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "王建国" in text(client.get("/"))


def test_login_follows_a_local_next_only(client):
    user = admin()
    response = client.post("/login?next=/org/canteens", data={"username": user.username, "password": PASSWORD})
    assert response.headers["Location"] == "/org/canteens"
    client.post("/logout")
    response = client.post("/login?next=//evil.example/x", data={"username": user.username, "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_wrong_password_shows_the_message_and_does_not_log_in(client):
    user = admin()
    response = client.post("/login", data={"username": user.username, "password": "not-the-password"})
    assert response.status_code == 200
    assert "用户名或密码错误" in text(response)
    assert _redirected_to_login(client.get("/"))
    assert user.failed_login_count == 1, "the failure is counted (and committed) for the account lock"


def test_wrong_password_message_in_english(client):
    user = admin()
    client.get("/login?lang=en")
    response = client.post("/login", data={"username": user.username, "password": "not-the-password"})
    assert "Wrong username or password." in text(response)


def test_locked_account_says_so(client, session):
    user = admin()
    user.locked_until = utcnow() + timedelta(minutes=10)
    session.commit()
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert "此账号因多次登录失败已被锁定" in text(response)
    assert _redirected_to_login(client.get("/"))


def test_pages_need_a_login(client):
    response = client.get("/account")
    assert _redirected_to_login(response)
    assert "next=%2Faccount" in response.headers["Location"] or "next=/account" in response.headers["Location"]
    assert "请先登录再打开此页面。" in text(client.get(response.headers["Location"]))


def test_logout_ends_the_session_even_for_a_copied_cookie(client, login):
    login(admin())
    copied = client.get_cookie("session").value
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert _redirected_to_login(client.get("/"))
    client.set_cookie("session", copied)  # a stolen cookie, replayed after logout
    assert _redirected_to_login(client.get("/"))


def test_forms_carry_the_csrf_token(app, client, monkeypatch):
    # CSRF is off in the test settings; switched on here to prove the pages send the token
    user = admin()
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    token = csrf_token_in(text(client.get("/login")))
    credentials = {"username": user.username, "password": PASSWORD}
    assert client.post("/login", data=credentials).status_code == 400
    assert client.post("/login", data={**credentials, "csrf_token": token}).status_code == 302
    home = text(client.get("/"))
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": csrf_token_in(home)}).status_code == 302


# --- home pages ------------------------------------------------------------------------------
@pytest.fixture
def city():
    district = DistrictFactory(name="城中区")
    kitchen = KitchenFactory(district=district, name="城中区中央厨房")
    canteen = CanteenFactory(district=district, name="南关街爱老幸福食堂", supplied_by=kitchen)
    return district, kitchen, canteen


def test_admin_home_shows_the_city_and_the_admin_links(client, login, city):
    html = text(login(admin(display_name="李管理")).get("/"))
    assert "李管理" in html and "系统管理员" in html and "全市" in html
    for link in ('href="/org/districts"', 'href="/org/canteens"', 'href="/users"', 'href="/api/docs"'):
        assert link in html


def test_officer_home_shows_the_district(client, login, city):
    district, _, _ = city
    html = text(login(officer(district)).get("/"))
    assert "城中区" in html and "民政专管员" in html
    assert f'href="/org/districts/{district.id}/communities"' in html
    assert 'href="/org/canteens"' in html
    assert 'href="/users"' not in html


def test_canteen_staff_home_shows_the_canteen(client, login, city):
    _, _, canteen = city
    html = text(login(canteen_staff(canteen)).get("/"))
    assert "南关街爱老幸福食堂" in html and "食堂工作人员" in html and "城中区" in html
    assert 'href="/org/canteens"' not in html and 'href="/users"' not in html


def test_kitchen_staff_home_shows_the_kitchen_and_the_canteens_it_supplies(client, login, city):
    _, kitchen, _ = city
    html = text(login(kitchen_staff(kitchen)).get("/"))
    assert "城中区中央厨房" in html and "厨房工作人员" in html
    assert "南关街爱老幸福食堂" in html


# --- own account and tokens ------------------------------------------------------------------
def test_token_is_shown_once_and_works_until_revoked(client, login, city):
    _, _, canteen = city
    user = canteen_staff(canteen)
    login(user)
    response = client.post("/account/tokens", data={"name": "柜台平板1"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "不会再次显示" in text(response)
    token = re.search(r'<textarea id="token"[^>]*>([^<]+)</textarea>', text(response)).group(1).strip()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=bearer).get_json()["id"] == user.id

    account = text(client.get("/account"))
    assert "柜台平板1" in account
    assert token not in account

    (record,) = auth_service.list_tokens(user=user)
    assert client.post(f"/account/tokens/{record.id}/revoke").status_code == 302
    assert client.get("/api/v1/me", headers=bearer).status_code == 401


def test_password_change_needs_the_current_password(client, login):
    user = admin()
    login(user)
    client.get("/account?lang=en")
    response = client.post("/account", data={"current_password": "wrong-one-here", "new_password": "a-new-secret-42"})
    assert response.status_code == 422
    assert "Wrong password." in text(response)
    response = client.post("/account", data={"current_password": PASSWORD, "new_password": "a-new-secret-42"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200, "this session goes on"
    assert auth_service.authenticate(username=user.username, password="a-new-secret-42") == user


# --- accounts (admin) ------------------------------------------------------------------------
def test_admin_creates_a_canteen_staff_account(client, login, city):
    _, _, canteen = city
    login(admin())
    response = client.post(
        "/users/new",
        data={
            "username": "zhang.wei",
            "display_name": "张伟",
            "role": "canteen_staff",
            "canteen_code": canteen.code,
            "district_id": "",
            "phone": "13812345678",
            "password": "counter-pass-2026",
        },
    )
    assert response.status_code == 302, text(response)
    with scoping.unrestricted():
        created = auth_service.get_user_by_username("zhang.wei")
    assert (created.role, created.canteen_id, created.district_id) == ("canteen_staff", canteen.id, None)
    assert created.phone == "13812345678"

    listing = text(client.get("/users"))
    assert "张伟" in listing
    assert "138****5678" in listing and "13812345678" not in listing


def test_account_form_errors_are_shown_and_nothing_is_written(client, login):
    taken = admin()
    login(admin())
    client.get("/users?lang=en")
    response = client.post(
        "/users/new",
        data={"username": "wang.fang", "role": "district_officer", "district_id": "", "password": "short"},
    )
    assert response.status_code == 422
    html = text(response)
    assert "At least 10 characters." in html
    assert 'value="wang.fang"' in html, "what was typed is kept"
    assert "short" not in re.findall(r'value="([^"]*)"', html), "a password is never written back"

    response = client.post(
        "/users/new", data={"username": taken.username, "role": "admin", "password": "long-enough-9"}
    )
    assert response.status_code == 422
    assert "Taken." in text(response)

    response = client.post(
        "/users/new",
        data={"username": "li.na", "role": "canteen_staff", "canteen_code": "NO-SUCH", "password": "x" * 12},
    )
    assert "NO-SUCH" in text(response)
    with scoping.unrestricted():
        assert auth_service.list_users(q="wang.fang").total == 0
        assert auth_service.list_users(q="li.na").total == 0


def test_admin_disables_and_unlocks_an_account(client, login, session, city):
    district, _, _ = city
    target = officer(district, display_name="赵专管")
    target.locked_until = utcnow() + timedelta(minutes=10)
    session.commit()
    login(admin())
    edit_page = text(client.get(f"/users/{target.id}/edit"))
    assert "赵专管" in edit_page
    assert f'action="/users/{target.id}/unlock"' in edit_page

    assert client.post(f"/users/{target.id}/unlock").status_code == 302
    assert target.locked_until is None

    response = client.post(
        f"/users/{target.id}/edit",
        data={"display_name": "赵专管", "role": "district_officer", "district_id": str(district.id)},
    )
    assert response.status_code == 302, text(response)
    assert target.active is False


def test_admin_moves_an_officer_to_another_district(client, login, city):
    district, _, _ = city
    other = DistrictFactory()
    target = officer(district)
    login(admin())
    response = client.post(
        f"/users/{target.id}/edit",
        data={
            "display_name": target.display_name,
            "role": "district_officer",
            "district_id": str(other.id),
            "active": "1",
        },
    )
    assert response.status_code == 302, text(response)
    assert target.district_id == other.id


@pytest.mark.parametrize("path", ["/users", "/users/new"])
def test_officer_cannot_open_the_accounts_pages(client, login, city, path):
    district, _, _ = city
    login(officer(district))
    assert client.get(path).status_code == 403


def test_officer_cannot_create_or_edit_accounts(client, login, city):
    district, _, _ = city
    somebody = admin()
    login(officer(district))
    response = client.post("/users/new", data={"username": "sneaky", "role": "admin", "password": "long-enough-9"})
    assert response.status_code == 403
    assert client.get(f"/users/{somebody.id}/edit").status_code == 403
    with scoping.unrestricted():
        assert auth_service.list_users(q="sneaky").total == 0
