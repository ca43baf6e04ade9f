"""Tokens, /me and accounts through the HTTP API."""

from datetime import timedelta

import sqlalchemy as sa

from canteen.auth.models import ApiToken, User
from canteen.core import scoping
from canteen.core.db import utcnow
from canteen.extensions import db
from tests.factories import PASSWORD, CanteenFactory, DistrictFactory, KitchenFactory, admin, canteen_staff, officer


def test_token_then_me(client):
    district = DistrictFactory()
    user = officer(district)
    response = client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at"}
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json() == {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": "district_officer",
        "district_id": district.id,
        "canteen_id": None,
    }


def test_only_the_token_hash_is_stored(client):
    user = admin()
    token = client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD}).get_json()[
        "token"
    ]
    with scoping.unrestricted():
        stored = db.session.scalars(sa.select(ApiToken.token_hash).where(ApiToken.user_id == user.id)).all()
    assert len(stored) == 1
    assert token not in stored[0]
    assert len(token) >= 43  # 256 bits in URL-safe base64


def test_wrong_password_is_401_with_stable_code(client):
    user = admin()
    response = client.post("/api/v1/auth/token", json={"username": user.username, "password": "nope-nope-nope"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_credentials"
    unknown = client.post("/api/v1/auth/token", json={"username": "ghost", "password": "nope-nope-nope"})
    assert unknown.status_code == 401
    assert unknown.get_json()["code"] == "invalid_credentials"


def test_no_token_bad_token_expired_and_revoked_tokens_are_401(client, api):
    user = admin()
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").get_json()["code"] == "unauthorized"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    caller = api(user)
    assert caller.get("/api/v1/me").status_code == 200
    with scoping.unrestricted():
        token = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)).one()
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert caller.get("/api/v1/me").status_code == 401


def test_revoke_current_token(api):
    caller = api(admin())
    assert caller.delete("/api/v1/auth/token").status_code == 204
    assert caller.get("/api/v1/me").status_code == 401


def test_revoke_own_token_by_id_but_not_someone_elses(api):
    first, second = officer(DistrictFactory()), officer(DistrictFactory())
    first_caller, second_caller = api(first), api(second)
    tokens = first_caller.get("/api/v1/auth/tokens").get_json()
    assert len(tokens) == 1 and "token" not in tokens[0]
    assert second_caller.post(f"/api/v1/auth/tokens/{tokens[0]['id']}/revoke").status_code == 404
    assert first_caller.post(f"/api/v1/auth/tokens/{tokens[0]['id']}/revoke").status_code == 200
    assert first_caller.get("/api/v1/me").status_code == 401


def test_disabled_user_token_stops_working(api):
    boss, clerk = admin(), officer(DistrictFactory())
    clerk_caller = api(clerk)
    assert clerk_caller.get("/api/v1/me").status_code == 200
    response = api(boss).patch(f"/api/v1/users/{clerk.id}", json={"active": False})
    assert response.status_code == 200
    assert clerk_caller.get("/api/v1/me").status_code == 401


def test_admin_creates_users_with_scope_rules(api):
    boss = admin()
    district = DistrictFactory()
    canteen, kitchen = CanteenFactory(district=district), KitchenFactory(district=district)
    caller = api(boss)
    created = caller.post(
        "/api/v1/users",
        json={
            "username": "li.ming",
            "role": "canteen_staff",
            "canteen_id": canteen.id,
            "password": "long-enough-pw",
            "phone": "13812345678",
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["canteen_id"] == canteen.id and body["phone_masked"] == "138****5678"
    assert "password" not in body and "password_hash" not in body
    mismatch = caller.post(
        "/api/v1/users",
        json={"username": "wang.fang", "role": "kitchen_staff", "canteen_id": canteen.id, "password": "long-enough-pw"},
    )
    assert mismatch.status_code == 422 and mismatch.get_json()["code"] == "scope_mismatch"
    ok = caller.post(
        "/api/v1/users",
        json={"username": "wang.fang", "role": "kitchen_staff", "canteen_id": kitchen.id, "password": "long-enough-pw"},
    )
    assert ok.status_code == 201
    duplicate = caller.post(
        "/api/v1/users",
        json={"username": "li.ming", "role": "admin", "password": "long-enough-pw"},
    )
    assert duplicate.status_code == 409 and duplicate.get_json()["code"] == "username_taken"
    weak = caller.post("/api/v1/users", json={"username": "zhao", "role": "admin", "password": "short"})
    assert weak.status_code == 422 and weak.get_json()["errors"]["password"]
    no_scope = caller.post(
        "/api/v1/users", json={"username": "zhou", "role": "district_officer", "password": "long-enough-pw"}
    )
    assert no_scope.status_code == 422 and no_scope.get_json()["code"] == "scope_required"


def test_phone_is_encrypted_at_rest(api):
    boss = admin()
    api(boss).post(
        "/api/v1/users",
        json={"username": "sun.li", "role": "admin", "password": "long-enough-pw", "phone": "13900001111"},
    )
    raw = db.session.execute(sa.text("SELECT phone FROM users WHERE username = 'sun.li'")).scalar_one()
    assert "13900001111" not in raw and raw.startswith("t1:")
    with scoping.unrestricted():
        assert db.session.scalars(sa.select(User.phone).where(User.username == "sun.li")).one() == "13900001111"


def test_unlock_clears_lock(api, client):
    boss, clerk = admin(), canteen_staff(CanteenFactory())
    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": clerk.username, "password": "wrong-wrong-wrong"})
    # the fifth failure locks even the right password out
    locked = client.post("/api/v1/auth/token", json={"username": clerk.username, "password": PASSWORD})
    assert locked.status_code == 429 and locked.get_json()["code"] in ("account_locked", "login_throttled")
    assert api(boss).post(f"/api/v1/users/{clerk.id}/unlock").status_code == 200
    assert client.post("/api/v1/auth/token", json={"username": clerk.username, "password": PASSWORD}).status_code == 201


def test_admin_moves_users_between_scopes(api):
    first, second = DistrictFactory(), DistrictFactory()
    clerk = officer(first)
    caller = api(admin())
    moved = caller.patch(f"/api/v1/users/{clerk.id}", json={"district_id": second.id})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["district_id"] == second.id
    canteen = CanteenFactory(district=second)
    to_staff = caller.patch(f"/api/v1/users/{clerk.id}", json={"role": "canteen_staff", "canteen_id": canteen.id})
    assert to_staff.status_code == 200, to_staff.get_json()
    assert to_staff.get_json()["district_id"] is None and to_staff.get_json()["canteen_id"] == canteen.id


def test_admin_cannot_lock_the_city_out(api):
    boss = admin()
    caller = api(boss)
    own = caller.patch(f"/api/v1/users/{boss.id}", json={"active": False})
    assert own.status_code == 409 and own.get_json()["code"] == "cannot_change_own_account"
    demoted = caller.patch(
        f"/api/v1/users/{boss.id}", json={"role": "district_officer", "district_id": DistrictFactory().id}
    )
    assert demoted.status_code == 409
    other = admin()
    assert caller.patch(f"/api/v1/users/{other.id}", json={"active": False}).status_code == 200
    assert boss.active and not other.active


def test_card_and_canteen_codes_ignore_case(api):
    from tests.factories import resident

    district = DistrictFactory()
    caller = api(admin())
    created = caller.post(
        "/api/v1/canteens", json={"code": "cd-lower", "name": "小写", "kind": "canteen", "district_id": district.id}
    )
    assert created.status_code == 201 and created.get_json()["code"] == "CD-LOWER"
    again = caller.post(
        "/api/v1/canteens", json={"code": "CD-LOWER", "name": "大写", "kind": "canteen", "district_id": district.id}
    )
    assert again.status_code == 409
    person = resident(district, card_no="xn-7001")
    assert person.active_card.card_no == "XN-7001"
    found = caller.post("/api/v1/residents/lookup", json={"card_no": "xn-7001"})
    assert found.status_code == 200 and found.get_json()["id"] == person.id
    assert [r["id"] for r in caller.get("/api/v1/residents?q=xn-7001").get_json()] == [person.id]
