"""Users (one role each, bound to the district or canteen they work for) and API tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from canteen.core import scoping
from canteen.core.crypto import EncryptedString
from canteen.core.db import Base, utcnow
from canteen.org.models import Canteen, District


class User(Base):
    """A person with a login. admin: the city; district_officer: one district;
    canteen_staff: one canteen; kitchen_staff: one central kitchen (stored as `canteen_id`)."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "(role = 'admin' AND district_id IS NULL AND canteen_id IS NULL)"
            " OR (role = 'district_officer' AND district_id IS NOT NULL AND canteen_id IS NULL)"
            " OR (role IN ('canteen_staff', 'kitchen_staff') AND canteen_id IS NOT NULL AND district_id IS NULL)",
            name="role_matches_scope",
        ),
        sa.CheckConstraint("failed_login_count >= 0", name="failed_login_count_not_negative"),
    )
    # the password hash and login counters are not part of the audit trail
    __audit_exclude__ = frozenset(
        {
            "password_hash",
            "failed_login_count",
            "first_failed_login_at",
            "next_login_allowed_at",
            "last_login_at",
        }
    )

    username: Mapped[str] = mapped_column(sa.String(60), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(60))
    role: Mapped[str] = mapped_column(sa.String(20))
    district_id: Mapped[int | None] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    canteen_id: Mapped[int | None] = mapped_column(sa.ForeignKey("canteens.id"), index=True)
    phone: Mapped[str | None] = mapped_column(EncryptedString("users.phone"))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str | None] = mapped_column(sa.String(12))
    # bumped on logout, password change and disable: older session cookies stop working
    session_version: Mapped[int] = mapped_column(default=1)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    first_failed_login_at: Mapped[datetime | None]
    next_login_allowed_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    district: Mapped[District | None] = relationship()
    canteen: Mapped[Canteen | None] = relationship()

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        # only admin manages accounts; everyone else sees their own
        return cls.id == scope.user_id if scope.user_id else sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return None, None  # account changes are city administration

    # Flask-Login: the id carries the session version, so bumping it ends every old session
    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


class ApiToken(Base):
    """A bearer token for counter tablets and integrations. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __audit_exclude__ = frozenset({"token_hash", "last_used_at"})

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        return cls.user_id == scope.user_id if scope.user_id else sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return None, None

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now
