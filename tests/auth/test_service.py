"""Login rules: the per-account lock held in the database, sessions that die at logout, scopes."""

from datetime import timedelta

import pytest

from canteen.auth import service as auth_service
from canteen.core.db import utcnow
from canteen.core.errors import TooManyRequests
from tests.factories import PASSWORD, CanteenFactory, DistrictFactory, KitchenFactory, admin, canteen_staff


def _fail(user, now):
    with pytest.raises(auth_service.InvalidCredentials):
        auth_service.authenticate(username=user.username, password="wrong-password!", now=now)


def test_failures_slow_then_lock_the_account_not_others(app):
    user, neighbour = admin(), admin()
    start = utcnow()
    _fail(user, start)
    _fail(user, start + timedelta(seconds=1))
    _fail(user, start + timedelta(seconds=2))  # third failure: from now on, wait before retrying
    with pytest.raises(TooManyRequests) as throttled:
        auth_service.authenticate(username=user.username, password=PASSWORD, now=start + timedelta(seconds=3))
    assert throttled.value.code == "login_throttled"
    _fail(user, start + timedelta(seconds=10))
    _fail(user, start + timedelta(seconds=30))  # fifth failure inside 15 minutes: locked
    with pytest.raises(TooManyRequests) as locked:
        auth_service.authenticate(username=user.username, password=PASSWORD, now=start + timedelta(minutes=5))
    assert locked.value.code == "account_locked"
    assert int(locked.value.headers["Retry-After"]) > 0
    # the colleague at the same counter is not affected
    assert auth_service.authenticate(username=neighbour.username, password=PASSWORD, now=start + timedelta(minutes=5))
    # after the lock expires the right password works and the counters are reset
    later = start + timedelta(minutes=16)
    assert auth_service.authenticate(username=user.username, password=PASSWORD, now=later) == user
    assert user.failed_login_count == 0 and user.locked_until is None


def test_failures_outside_the_window_do_not_add_up(app):
    user = admin()
    start = utcnow()
    for minute in (0, 20, 40, 60, 80):  # five failures, but never two inside 15 minutes
        _fail(user, start + timedelta(minutes=minute))
    assert auth_service.authenticate(username=user.username, password=PASSWORD, now=start + timedelta(minutes=81))


def test_disabled_user_cannot_log_in(app):
    user = admin(active=False)
    with pytest.raises(auth_service.InvalidCredentials):
        auth_service.authenticate(username=user.username, password=PASSWORD)


def test_session_version_ends_old_sessions(app):
    user = admin()
    cookie_id = user.get_id()
    assert auth_service.load_session_user(cookie_id) == user
    auth_service.end_sessions(user)
    assert auth_service.load_session_user(cookie_id) is None
    assert auth_service.load_session_user(user.get_id()) == user
    assert auth_service.load_session_user("garbage") is None


def test_scope_of_each_role(app):
    district = DistrictFactory()
    kitchen = KitchenFactory(district=district)
    other_district = DistrictFactory()
    supplied_elsewhere = CanteenFactory(district=other_district, supplied_by=kitchen)
    canteen = CanteenFactory(district=district)
    staff_scope = auth_service.scope_for(canteen_staff(canteen))
    assert staff_scope.canteen_ids == {canteen.id} and staff_scope.district_ids == {district.id}
    kitchen_scope = auth_service.scope_for(
        auth_service.create_user(
            username="cook.one", role="kitchen_staff", canteen_id=kitchen.id, password="long-enough-pw"
        )
    )
    assert kitchen_scope.canteen_ids == {kitchen.id, supplied_elsewhere.id}
    assert kitchen_scope.district_ids == {district.id, other_district.id}
    assert auth_service.scope_for(admin()).unrestricted


def test_password_rehash_on_login_when_parameters_change(app, monkeypatch):
    from argon2 import PasswordHasher

    user = admin()
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    old_hash = user.password_hash
    auth_service.authenticate(username=user.username, password=PASSWORD)
    assert user.password_hash != old_hash
    assert auth_service.authenticate(username=user.username, password=PASSWORD) == user
