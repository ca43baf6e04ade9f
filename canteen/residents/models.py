"""The registry: residents, their status history, eligibility categories and meal cards.

Identity numbers and phones are encrypted at rest (AES-GCM); exact look-ups go through keyed
blind indexes, including the 4/5/6-character ID tails the counter searches by.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from canteen.core import scoping
from canteen.core.crypto import EncryptedString
from canteen.core.db import Base, utcnow

STATUSES = ("active", "suspended", "deceased", "moved_out")
CATEGORIES = ("extreme_poverty", "subsistence", "low_income", "disabled", "living_alone", "special_care")
AGE_CATEGORIES = ("aged_60_plus", "aged_80_plus")
RESTRICTIONS = ("low_salt", "low_sugar", "low_fat", "soft", "minced", "halal", "vegetarian")
ALLERGENS = ("peanut", "tree_nut", "milk", "egg", "soy", "wheat", "fish", "shellfish", "sesame")
CONSENT_METHODS = ("signed_form", "family_on_behalf")
CARD_STATUSES = ("active", "blocked")
SEXES = ("male", "female")


class ResidentRecord:
    """A row belonging to one resident (its `resident_id` and `resident`): visible and audited
    where the resident is."""

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        if scope.role in (scoping.DISTRICT_OFFICER, scoping.CANTEEN_STAFF):
            return cls.resident_id.in_(sa.select(Resident.id).where(Resident.district_id == scope.district_id))
        return sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.resident.district_id, None


class Resident(Base):
    """An elderly resident registered for meal assistance."""

    __tablename__ = "residents"
    __table_args__ = (
        sa.Index("ix_residents_district_id_name", "district_id", "name", postgresql_ops={"name": "text_pattern_ops"}),
        sa.Index(
            "ix_residents_district_id_name_pinyin",
            "district_id",
            "name_pinyin",
            postgresql_ops={"name_pinyin": "text_pattern_ops"},
        ),
        sa.Index(
            "ix_residents_district_id_name_initials",
            "district_id",
            "name_initials",
            postgresql_ops={"name_initials": "text_pattern_ops"},
        ),
        sa.Index("ix_residents_district_id_id_tail4_index", "district_id", "id_tail4_index"),
        sa.Index("ix_residents_district_id_id_tail5_index", "district_id", "id_tail5_index"),
        sa.Index("ix_residents_district_id_id_tail6_index", "district_id", "id_tail6_index"),
        sa.CheckConstraint("status IN ('active', 'suspended', 'deceased', 'moved_out')", name="status_known"),
        sa.CheckConstraint("sex IN ('male', 'female')", name="sex_known"),
        sa.CheckConstraint(
            "id_doc_type IN ('resident_id_card', 'hmt_residence_permit', 'passport')", name="id_doc_type_known"
        ),
    )
    __audit_exclude__ = frozenset({"id_number_index", "id_tail4_index", "id_tail5_index", "id_tail6_index"})

    name: Mapped[str] = mapped_column(sa.String(50))
    name_pinyin: Mapped[str] = mapped_column(sa.String(200))  # "zhangsan"
    name_initials: Mapped[str] = mapped_column(sa.String(50))  # "zs"
    id_doc_type: Mapped[str] = mapped_column(sa.String(30))
    id_number: Mapped[str] = mapped_column(EncryptedString("residents.id_number"))
    id_number_index: Mapped[str] = mapped_column(sa.String(64), unique=True)
    id_tail4_index: Mapped[str] = mapped_column(sa.String(64))
    id_tail5_index: Mapped[str] = mapped_column(sa.String(64))
    id_tail6_index: Mapped[str] = mapped_column(sa.String(64))
    birth_date: Mapped[date]
    sex: Mapped[str] = mapped_column(sa.String(6))
    phone: Mapped[str | None] = mapped_column(EncryptedString("residents.phone"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("communities.id"), index=True)
    address: Mapped[str] = mapped_column(sa.String(200), default="")
    home_canteen_id: Mapped[int | None] = mapped_column(sa.ForeignKey("canteens.id"), index=True)
    emergency_contact: Mapped[str | None] = mapped_column(EncryptedString("residents.emergency_contact"))
    delivery_registered: Mapped[bool] = mapped_column(default=False)
    # the current status; the history in resident_status_changes is the record of truth
    status: Mapped[str] = mapped_column(sa.String(12), default="active")
    status_effective_on: Mapped[date]
    diet_restrictions: Mapped[list[Any]] = mapped_column(default=list)
    allergens: Mapped[list[Any]] = mapped_column(default=list)
    diet_notes: Mapped[str] = mapped_column(sa.Text, default="")
    consent_given_on: Mapped[date | None]
    consent_method: Mapped[str | None] = mapped_column(sa.String(20))
    consent_recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    registered_on: Mapped[date]
    registered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    categories: Mapped[list[ResidentCategory]] = relationship(
        back_populates="resident", order_by="ResidentCategory.valid_from"
    )
    status_changes: Mapped[list[ResidentStatusChange]] = relationship(
        back_populates="resident", order_by="(ResidentStatusChange.effective_on, ResidentStatusChange.id)"
    )
    cards: Mapped[list[MealCard]] = relationship(back_populates="resident", order_by="MealCard.id")

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        # canteen staff search their own district; city-wide exact look-ups are a service exception
        if scope.role in (scoping.DISTRICT_OFFICER, scoping.CANTEEN_STAFF):
            return cls.district_id == scope.district_id
        return sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.district_id, None

    @property
    def active_card(self) -> MealCard | None:
        return next((card for card in self.cards if card.status == "active"), None)


class ResidentStatusChange(ResidentRecord, Base):
    """A status taking effect on a date (possibly earlier than when it was recorded)."""

    __tablename__ = "resident_status_changes"
    __table_args__ = (
        sa.CheckConstraint("status IN ('active', 'suspended', 'deceased', 'moved_out')", name="status_known"),
    )

    resident_id: Mapped[int] = mapped_column(sa.ForeignKey("residents.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(12))
    effective_on: Mapped[date]
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    source: Mapped[str] = mapped_column(sa.String(30), default="manual")  # manual | registration | civil_affairs
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    resident: Mapped[Resident] = relationship(back_populates="status_changes")


class ResidentCategory(ResidentRecord, Base):
    """An eligibility category held from `valid_from` to `valid_to` (open: still held)."""

    __tablename__ = "resident_categories"
    __table_args__ = (
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_range"),
        sa.Index("ix_resident_categories_resident_id_category", "resident_id", "category"),
    )

    resident_id: Mapped[int] = mapped_column(sa.ForeignKey("residents.id"))
    category: Mapped[str] = mapped_column(sa.String(30))
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]
    evidence: Mapped[str] = mapped_column(sa.String(500), default="")
    source: Mapped[str] = mapped_column(sa.String(30), default="manual")
    verified_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)

    resident: Mapped[Resident] = relationship(back_populates="categories")

    def held_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class MealCard(ResidentRecord, Base):
    """A meal card. Card numbers are never reused; a lost card is blocked and finds nobody."""

    __tablename__ = "meal_cards"
    __table_args__ = (
        sa.CheckConstraint("status IN ('active', 'blocked')", name="status_known"),
        # one active card per resident
        sa.Index(
            "uq_meal_cards_active_resident",
            "resident_id",
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        ),
    )

    resident_id: Mapped[int] = mapped_column(sa.ForeignKey("residents.id"), index=True)
    card_no: Mapped[str] = mapped_column(sa.String(30), unique=True)
    status: Mapped[str] = mapped_column(sa.String(10), default="active")
    issued_on: Mapped[date]
    blocked_at: Mapped[datetime | None]
    block_reason: Mapped[str | None] = mapped_column(sa.String(200))

    resident: Mapped[Resident] = relationship(back_populates="cards")
