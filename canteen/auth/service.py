"""Accounts and login: password checks with a database-held lock, API tokens, and the scope
each user works in."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from canteen.auth.models import ApiToken, User
from canteen.core import scoping
from canteen.core.db import utcnow
from canteen.core.errors import CanteenError, Conflict, NotFound, TooManyRequests, field_error
from canteen.core.pagination import Page, paginate
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.org.models import Canteen, CanteenKind

_hasher = PasswordHasher()
# verified against when the username is unknown, so a miss costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 10


class InvalidCredentials(CanteenError):
    status = 401
    code = "invalid_credentials"
    message = "Wrong username or password."
    keep_changes = True  # the failure counter must survive the refusal


# --- passwords and login ---------------------------------------------------------------------
def hash_password(password: str) -> str:
    """argon2id with the library's current parameters (above OWASP's minimum)."""
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    """Passwords have at least 10 characters and are not all one character."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise field_error("password", f"At least {MIN_PASSWORD_LENGTH} characters.", code="weak_password")
    if len(set(password)) < 4:
        raise field_error("password", "Too simple.", code="weak_password")


def authenticate(*, username: str, password: str, now: datetime | None = None) -> User:
    """Check a username and password, enforcing the per-account lock held in the database.

    After `LOGIN_SLOW_AFTER_FAILURES` failures inside the window each further attempt must wait
    (2, 4, 8 … seconds, 429 `login_throttled`); at `LOGIN_MAX_FAILURES` failures inside
    `LOGIN_FAILURE_WINDOW_MINUTES` the account is locked for `LOGIN_LOCK_MINUTES` (429
    `account_locked`) unless an admin unlocks it. Other accounts are unaffected, and the lock
    holds across every worker and server because it lives in the users table.
    """
    now = now or utcnow()
    config = current_app.config
    with scoping.unrestricted():
        user = db.session.scalars(sa.select(User).where(User.username == username)).one_or_none()
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise InvalidCredentials()
    if user.is_locked(now):
        raise TooManyRequests(
            "This account is locked after repeated failed logins; try later or ask an administrator.",
            code="account_locked",
            headers={"Retry-After": str(_seconds_until(user.locked_until, now))},
        )
    if user.next_login_allowed_at is not None and user.next_login_allowed_at > now:
        raise TooManyRequests(
            "Too many failed logins; wait a moment before trying again.",
            code="login_throttled",
            headers={"Retry-After": str(_seconds_until(user.next_login_allowed_at, now))},
        )
    if not _verify(user.password_hash, password) or not user.active:
        if user.active:
            _count_failure(user, now, config)
        db.session.flush()
        raise InvalidCredentials()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_login_count = 0
    user.first_failed_login_at = user.next_login_allowed_at = user.locked_until = None
    user.last_login_at = now
    db.session.flush()
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _count_failure(user: User, now: datetime, config) -> None:
    window = timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"])
    if user.first_failed_login_at is None or now - user.first_failed_login_at > window:
        user.failed_login_count, user.first_failed_login_at = 0, now
    user.failed_login_count += 1
    if user.failed_login_count >= config["LOGIN_MAX_FAILURES"]:
        user.locked_until = now + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
        user.failed_login_count, user.first_failed_login_at, user.next_login_allowed_at = 0, None, None
    elif user.failed_login_count >= config["LOGIN_SLOW_AFTER_FAILURES"]:
        delay = 2 ** (user.failed_login_count - config["LOGIN_SLOW_AFTER_FAILURES"] + 1)
        user.next_login_allowed_at = now + timedelta(seconds=delay)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds()) + 1)


def end_sessions(user: User) -> None:
    """Log out everywhere: bumping the session version invalidates every session cookie."""
    user.session_version += 1
    db.session.flush()


def load_session_user(session_id: str) -> User | None:
    """The user of a session cookie id "<user id>:<session version>", if still valid and active."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    with scoping.unrestricted():
        user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


# --- API tokens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    record: ApiToken


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(*, user: User, name: str = "", now: datetime | None = None) -> IssuedToken:
    """A random 256-bit bearer token for `user`, valid for `API_TOKEN_LIFETIME_HOURS`."""
    now = now or utcnow()
    raw = secrets.token_urlsafe(32)
    record = ApiToken(
        user=user,
        token_hash=_token_hash(raw),
        name=name,
        created_at=now,
        expires_at=now + timedelta(hours=current_app.config["API_TOKEN_LIFETIME_HOURS"]),
    )
    db.session.add(record)
    db.session.flush()
    return IssuedToken(token=raw, record=record)


def find_token_user(raw: str, *, now: datetime | None = None) -> tuple[User, ApiToken] | None:
    """The active user behind an unexpired, unrevoked token, looked up by its hash."""
    now = now or utcnow()
    with scoping.unrestricted():
        token = db.session.scalars(sa.select(ApiToken).where(ApiToken.token_hash == _token_hash(raw))).one_or_none()
        if token is None or not token.is_usable(now) or not token.user.active:
            return None
        # a write per request would serialise counters; minute precision is plenty
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
            token.last_used_at = now
        return token.user, token


def list_tokens(*, user: User) -> list[ApiToken]:
    """The user's own tokens, newest first (the token itself is never shown again)."""
    return list(
        db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc()))
    )


def revoke_token(token_id: int, *, now: datetime | None = None) -> ApiToken:
    """Revoke one token: its owner may revoke their own, admin any. Revoking twice is harmless."""
    token = scoping.get_scoped(ApiToken, token_id, code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
    db.session.flush()
    return token


def revoke_all_tokens(user: User, *, now: datetime | None = None) -> int:
    """Revoke every live token of `user` (disable, password reset); returns how many."""
    now = now or utcnow()
    count = 0
    with scoping.unrestricted():
        for token in db.session.scalars(
            sa.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ):
            token.revoked_at = now
            count += 1
    db.session.flush()
    return count


# --- scope -----------------------------------------------------------------------------------
def scope_for(user: User) -> scoping.Scope:
    """The rows `user` may see, as DESIGN.md "Who uses it" sets out."""
    with scoping.unrestricted():
        if user.role == scoping.ADMIN:
            return scoping.Scope(role=user.role, user_id=user.id)
        if user.role == scoping.DISTRICT_OFFICER:
            return scoping.Scope(
                role=user.role,
                user_id=user.id,
                district_id=user.district_id,
                district_ids=frozenset({user.district_id}),
            )
        canteen = db.session.get(Canteen, user.canteen_id)
        canteen_ids = {canteen.id}
        district_ids = {canteen.district_id}
        if user.role == scoping.KITCHEN_STAFF:
            for supplied_id, district_id in db.session.execute(
                sa.select(Canteen.id, Canteen.district_id).where(Canteen.supplied_by_id == canteen.id)
            ):
                canteen_ids.add(supplied_id)
                district_ids.add(district_id)
        return scoping.Scope(
            role=user.role,
            user_id=user.id,
            district_id=canteen.district_id,
            canteen_id=canteen.id,
            canteen_ids=frozenset(canteen_ids),
            district_ids=frozenset(district_ids),
        )


# --- accounts (admin) ------------------------------------------------------------------------
def list_users(
    *,
    role: str | None = None,
    district_id: int | None = None,
    canteen_id: int | None = None,
    active: bool | None = None,
    q: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[User]:
    """Accounts (admin only; everyone's own account is `/me`)."""
    scoping.require_role(scoping.ADMIN)
    statement = sa.select(User).order_by(User.username)
    for column, value in (
        (User.role, role),
        (User.district_id, district_id),
        (User.canteen_id, canteen_id),
        (User.active, active),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if q:
        statement = statement.where(sa.or_(User.username.contains(q), User.display_name.contains(q)))
    return paginate(statement, page=page, page_size=page_size)


def get_user(user_id: int) -> User:
    """One account (admin only), else 404 `user_not_found`."""
    scoping.require_role(scoping.ADMIN)
    return scoping.get_scoped(User, user_id)


def create_user(
    *,
    username: str,
    role: str,
    password: str,
    display_name: str | None = None,
    district_id: int | None = None,
    canteen_id: int | None = None,
    phone: str | None = None,
    language: str | None = None,
) -> User:
    """Admin only. Usernames are unique (409 `username_taken`); the role fixes the scope: an
    officer names a district, canteen staff a canteen or meal point, kitchen staff a central kitchen."""
    scoping.require_role(scoping.ADMIN)
    with scoping.unrestricted():
        if db.session.scalar(sa.select(sa.exists().where(User.username == username))):
            raise Conflict(f"Username {username} is taken.", code="username_taken", errors={"username": ["Taken."]})
    check_password_strength(password)
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        phone=phone or None,
        language=language,
    )
    _assign_scope(user, role=role, district_id=district_id, canteen_id=canteen_id)
    db.session.add(user)
    db.session.flush()
    return user


def update_user(
    user_id: int,
    *,
    display_name: str | None = None,
    role: str | None = None,
    district_id: int | None = None,
    canteen_id: int | None = None,
    phone: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    language: str | None = None,
    fields_given: frozenset[str] = frozenset(),
) -> User:
    """Admin only. Changing role, scope, password or disabling ends the user's sessions and tokens."""
    scoping.require_role(scoping.ADMIN)
    user = get_user(user_id)
    ends_sessions = False
    if display_name is not None:
        user.display_name = display_name
    if "phone" in fields_given:
        user.phone = phone or None
    if language is not None:
        user.language = language
    if role is not None or "district_id" in fields_given or "canteen_id" in fields_given:
        new_role = role or user.role
        if user.role == scoping.ADMIN and new_role != scoping.ADMIN:
            _refuse_locking_out_the_city(user)
        _assign_scope(user, role=new_role, district_id=district_id, canteen_id=canteen_id)
        ends_sessions = True
    if password is not None:
        check_password_strength(password)
        user.password_hash = hash_password(password)
        ends_sessions = True
    if active is not None and active != user.active:
        if not active:
            _refuse_locking_out_the_city(user)
        user.active = active
        ends_sessions = ends_sessions or not active
    if ends_sessions:
        user.session_version += 1
        revoke_all_tokens(user)
    db.session.flush()
    return user


def _refuse_locking_out_the_city(user: User) -> None:
    # an admin cannot disable or demote themselves, and the city always keeps one active admin,
    # or nobody could manage accounts any more (only `flask users create` would help)
    if user.id == scoping.current_scope().user_id:
        raise Conflict("You cannot disable or demote your own account.", code="cannot_change_own_account")
    if user.role == scoping.ADMIN:
        with scoping.unrestricted():
            others = db.session.scalar(
                sa.select(sa.func.count()).where(User.role == scoping.ADMIN, User.active.is_(True), User.id != user.id)
            )
        if not others:
            raise Conflict("The city needs at least one active administrator.", code="last_admin")


def unlock_user(user_id: int) -> User:
    """Admin only: lift a login lock and clear the failure counters."""
    scoping.require_role(scoping.ADMIN)
    user = get_user(user_id)
    user.failed_login_count = 0
    user.first_failed_login_at = user.next_login_allowed_at = user.locked_until = None
    db.session.flush()
    return user


def change_own_password(user: User, *, current_password: str, new_password: str) -> User:
    """A user changes their own password after proving the current one; other sessions end."""
    if not _verify(user.password_hash, current_password):
        raise field_error("current_password", "Wrong password.", code="invalid_credentials")
    check_password_strength(new_password)
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    db.session.flush()
    return user


def _assign_scope(user: User, *, role: str, district_id: int | None, canteen_id: int | None) -> None:
    # everything is looked up before the user is touched: a look-up autoflushes, and a half-changed
    # user (role without its district) would hit the role_matches_scope constraint
    if role not in scoping.ROLES:
        raise field_error("role", f"One of {', '.join(scoping.ROLES)}.")
    new_district_id = new_canteen_id = None
    if role == scoping.DISTRICT_OFFICER:
        if district_id is None:
            raise field_error("district_id", "A district officer needs a district.", code="scope_required")
        new_district_id = org_service.get_district(district_id).id
    elif role in (scoping.CANTEEN_STAFF, scoping.KITCHEN_STAFF):
        if canteen_id is None:
            raise field_error("canteen_id", "Staff need a canteen or kitchen.", code="scope_required")
        canteen = org_service.get_canteen(canteen_id)
        is_kitchen = canteen.kind == CanteenKind.CENTRAL_KITCHEN
        if (role == scoping.KITCHEN_STAFF) != is_kitchen:
            wanted = "a central kitchen" if role == scoping.KITCHEN_STAFF else "a canteen or meal point"
            raise field_error("canteen_id", f"This role works at {wanted}.", code="scope_mismatch")
        new_canteen_id = canteen.id
    elif district_id is not None or canteen_id is not None:
        raise field_error("role", "An admin works for the whole city, without district or canteen.")
    user.role, user.district_id, user.canteen_id = role, new_district_id, new_canteen_id


def get_user_by_username(username: str) -> User:
    """Look up an account by username (CLI and admin pages); 404 `user_not_found`."""
    user = db.session.scalars(sa.select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise NotFound(f"User {username} not found.", code="user_not_found")
    return user
