"""Meal records, the idempotency keys of the requests that created them, and frozen months.

A meal is one resident's meal on one date and slot at one canteen, with the price, the
subsidy decided when it was recorded and the rule that decided it. It is never deleted or
edited: a mistake is voided (who, when, why). Money is integer fen.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from canteen.core import scoping
from canteen.core.db import Base, utcnow
from canteen.org.models import Canteen
from canteen.residents.models import Resident
from canteen.subsidies.models import SubsidyRule

MODES = ("dine_in", "pickup", "delivery")
VERIFICATIONS = ("card", "id_card", "face", "qr", "staff_attested")
PAYMENT_METHODS = ("cash", "wechat", "alipay", "card", "account")
VALID = "valid"
VOID = "void"
MEAL_STATUSES = (VALID, VOID)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MealRecord(Base):
    """One meal served. At most one valid meal per resident, date and slot, across all canteens:
    a partial unique index enforces it, so two counters racing cannot both record it.

    `district_id` is the canteen's district (whose policy paid the subsidy and whose officers
    audit it). `rule_id` / `policy_id` / `subsidy_category` record the rule applied (None: full
    price); the subsidy is decided once and never recomputed.
    """

    __tablename__ = "meals"
    __table_args__ = (
        sa.Index(
            "uq_meals_resident_id_served_on_slot_valid",
            "resident_id",
            "served_on",
            "slot",
            unique=True,
            sqlite_where=sa.text("status = 'valid'"),
            postgresql_where=sa.text("status = 'valid'"),
        ),
        sa.Index("ix_meals_canteen_id_served_on", "canteen_id", "served_on"),
        sa.Index("ix_meals_district_id_served_on", "district_id", "served_on"),
        sa.Index("ix_meals_resident_id_served_on", "resident_id", "served_on"),
        sa.Index("ix_meals_policy_id_served_on", "policy_id", "served_on"),
        sa.CheckConstraint("price_fen >= 0", name="price_fen_not_negative"),
        sa.CheckConstraint("subsidy_fen >= 0", name="subsidy_fen_not_negative"),
        sa.CheckConstraint("copay_fen >= 0", name="copay_fen_not_negative"),
        sa.CheckConstraint("subsidy_fen + copay_fen = price_fen", name="amounts_add_up"),
        sa.CheckConstraint(_in("slot", ("breakfast", "lunch", "dinner")), name="slot_known"),
        sa.CheckConstraint(_in("mode", MODES), name="mode_known"),
        sa.CheckConstraint(_in("verification", VERIFICATIONS), name="verification_known"),
        sa.CheckConstraint(_in("payment_method", PAYMENT_METHODS), name="payment_method_known"),
        sa.CheckConstraint(_in("status", MEAL_STATUSES), name="status_known"),
        sa.CheckConstraint(
            "(status = 'void') = (voided_at IS NOT NULL)", name="void_has_time"
        ),  # a void always says when
    )

    resident_id: Mapped[int] = mapped_column(sa.ForeignKey("residents.id"))
    # the name as served, for the counter list and statements: staff serve residents of other
    # districts, whose registry rows they cannot read
    resident_name: Mapped[str] = mapped_column(sa.String(50))
    canteen_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"))
    served_on: Mapped[date]
    served_at: Mapped[datetime | None]
    slot: Mapped[str] = mapped_column(sa.String(10))
    mode: Mapped[str] = mapped_column(sa.String(10))
    price_fen: Mapped[int]
    price_reason: Mapped[str] = mapped_column(sa.String(200), default="")
    subsidy_fen: Mapped[int]
    copay_fen: Mapped[int]
    payment_method: Mapped[str] = mapped_column(sa.String(10), default="cash")
    rule_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subsidy_rules.id"))
    policy_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subsidy_policies.id"))
    subsidy_category: Mapped[str | None] = mapped_column(sa.String(30))
    verification: Mapped[str] = mapped_column(sa.String(20))
    attest_reason: Mapped[str] = mapped_column(sa.String(200), default="")
    # someone collecting the meal on the resident's behalf (a daughter, a neighbour): who
    collected_by: Mapped[str] = mapped_column(sa.String(60), default="")
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(sa.String(10), default=VALID)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None]
    voided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    void_reason: Mapped[str] = mapped_column(sa.String(200), default="")

    resident: Mapped[Resident] = relationship()
    canteen: Mapped[Canteen] = relationship()
    rule: Mapped[SubsidyRule | None] = relationship()

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        # officers audit their district's canteens; staff see their canteen's counter
        if scope.role == scoping.DISTRICT_OFFICER:
            return cls.district_id == scope.district_id
        if scope.role == scoping.CANTEEN_STAFF:
            return cls.canteen_id.in_(scope.canteen_ids) if scope.canteen_ids else sa.false()
        return sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.district_id, self.canteen_id

    @property
    def is_valid(self) -> bool:
        return self.status == VALID


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` for one request, written in the same transaction as the meal
    it created: the hash of the request and the answer given, replayed for a retry.

    A refused request stores no key (its transaction is rolled back), so a retry is evaluated
    again. Kept at least 7 days (`MEAL_IDEMPOTENCY_DAYS`), then purged.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"), sa.Index("ix_idempotency_keys_created_at", "created_at"))
    __audited__ = False  # a technical record of a request, not a change made by a person

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int | None]
    response_body: Mapped[dict[str, Any] | None]
    meal_id: Mapped[int | None] = mapped_column(sa.ForeignKey("meals.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FrozenMonth(Base):
    """A canteen's month closed to new meals and voids while its settlement is submitted
    (`submitted`) and for good once approved (`approved`); `released` when a rejection
    reopened it. Meals owns the record; settlements ask for the changes."""

    __tablename__ = "frozen_months"
    __table_args__ = (
        sa.UniqueConstraint("canteen_id", "month"),
        sa.CheckConstraint("state IN ('submitted', 'approved', 'released')", name="state_known"),
    )

    canteen_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    month: Mapped[str] = mapped_column(sa.String(7))  # "YYYY-MM"
    state: Mapped[str] = mapped_column(sa.String(10))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    canteen: Mapped[Canteen] = relationship()

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        if scope.role == scoping.DISTRICT_OFFICER:
            return cls.canteen_id.in_(sa.select(Canteen.id).where(Canteen.district_id == scope.district_id))
        return cls.canteen_id.in_(scope.canteen_ids) if scope.canteen_ids else sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.canteen.district_id, self.canteen_id

    @property
    def is_frozen(self) -> bool:
        return self.state in ("submitted", "approved")
