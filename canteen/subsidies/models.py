"""A district's subsidy policy (valid from a date to an optional date) and its rules.

Money is integer fen. A policy is never edited once created: a change is a new policy from a
later date, and a meal stores the rule it used, so history is never rewritten.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from canteen.core import scoping
from canteen.core.db import Base, utcnow
from canteen.org.models import SLOTS, District
from canteen.residents.models import AGE_CATEGORIES, CATEGORIES

ANY_SLOT = "any"
RULE_SLOTS = (*SLOTS, ANY_SLOT)
RULE_CATEGORIES = (*CATEGORIES, *AGE_CATEGORIES)
PER_MEAL = "per_meal"
PER_DAY = "per_day"  # paid once a day, on the first meal it subsidises (Xining, Beijing, Xiamen)
UNITS = (PER_MEAL, PER_DAY)


class SubsidyPolicy(Base):
    """A district's subsidy policy, valid from `valid_from` to `valid_to` (open: until ended).

    Policies of one district never overlap, so at most one is in force on any date.
    `operator_allowance_fen` is paid to the canteen once per resident and day served.
    """

    __tablename__ = "subsidy_policies"
    __table_args__ = (
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_range"),
        sa.CheckConstraint("operator_allowance_fen >= 0", name="operator_allowance_fen_not_negative"),
        sa.Index("ix_subsidy_policies_district_id_valid_from", "district_id", "valid_from"),
    )

    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]
    operator_allowance_fen: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    ended_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    district: Mapped[District] = relationship()
    rules: Mapped[list[SubsidyRule]] = relationship(
        back_populates="policy", order_by="SubsidyRule.id", cascade="all, delete-orphan"
    )

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        # staff read the policy in force at their canteen's counter; kitchens handle no money
        if scope.role in (scoping.DISTRICT_OFFICER, scoping.CANTEEN_STAFF):
            return cls.district_id == scope.district_id
        return sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.district_id, None

    def covers(self, day: date) -> bool:
        """Whether the policy is valid on `day`."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class SubsidyRule(Base):
    """What a policy pays for one category and meal slot (or `any` slot).

    `per_meal` pays each meal; `per_day` pays once a day, on the first meal it subsidises.
    `min_price_fen`: the meal must cost at least this much; `max_per_day` / `max_per_month`:
    how many of the resident's meals the rule may subsidise per day / calendar month.
    """

    __tablename__ = "subsidy_rules"
    __table_args__ = (
        sa.UniqueConstraint("policy_id", "category", "slot"),
        sa.CheckConstraint("amount_fen > 0", name="amount_fen_positive"),
        sa.CheckConstraint("min_price_fen IS NULL OR min_price_fen >= 0", name="min_price_fen_not_negative"),
        sa.CheckConstraint("max_per_day IS NULL OR max_per_day >= 1", name="max_per_day_positive"),
        sa.CheckConstraint("max_per_month IS NULL OR max_per_month >= 1", name="max_per_month_positive"),
        sa.CheckConstraint("slot IN ('breakfast', 'lunch', 'dinner', 'any')", name="slot_known"),
        sa.CheckConstraint("unit IN ('per_meal', 'per_day')", name="unit_known"),
        sa.CheckConstraint("unit = 'per_meal' OR max_per_day IS NULL", name="per_day_without_daily_cap"),
    )

    policy_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_policies.id"))
    # a stored category (canteen.residents.models.CATEGORIES) or a derived age category
    category: Mapped[str] = mapped_column(sa.String(30))
    slot: Mapped[str] = mapped_column(sa.String(10))
    amount_fen: Mapped[int]
    unit: Mapped[str] = mapped_column(sa.String(10), default=PER_MEAL)
    min_price_fen: Mapped[int | None]
    max_per_day: Mapped[int | None]
    max_per_month: Mapped[int | None]

    policy: Mapped[SubsidyPolicy] = relationship(back_populates="rules")

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        if scope.role in (scoping.DISTRICT_OFFICER, scoping.CANTEEN_STAFF):
            return cls.policy_id.in_(sa.select(SubsidyPolicy.id).where(SubsidyPolicy.district_id == scope.district_id))
        return sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.policy.district_id, None
