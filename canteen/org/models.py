"""District → community → canteen. A central kitchen is a canteen of kind `central_kitchen`."""

from __future__ import annotations

import enum
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from canteen.core import scoping
from canteen.core.db import Base

SLOTS = ("breakfast", "lunch", "dinner")


class CanteenKind(enum.StrEnum):
    CENTRAL_KITCHEN = "central_kitchen"
    CANTEEN = "canteen"
    MEAL_POINT = "meal_point"


class District(Base):
    """A county-level district, identified by its administrative division code (e.g. 630102)."""

    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(sa.String(6), unique=True)
    name: Mapped[str] = mapped_column(sa.String(60), unique=True)

    communities: Mapped[list[Community]] = relationship(back_populates="district", order_by="Community.name")

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        return cls.id.in_(scope.district_ids) if scope.district_ids else sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.id, None


class Community(Base):
    """A residents' community (社区) inside a district."""

    __tablename__ = "communities"
    __table_args__ = (sa.UniqueConstraint("district_id", "name"),)

    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(60))

    district: Mapped[District] = relationship(back_populates="communities")

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        return cls.district_id.in_(scope.district_ids) if scope.district_ids else sa.false()


class Canteen(Base):
    """A community canteen, meal point or central kitchen.

    `opening_hours` maps a slot to ["HH:MM", "HH:MM"]; `closed_weekdays` holds 0–6 (Monday = 0)
    and `closed_dates` ISO dates. A central kitchen supplies canteens; it is supplied by nobody.
    """

    __tablename__ = "canteens"
    __table_args__ = (
        sa.CheckConstraint("seats >= 0", name="seats_not_negative"),
        sa.CheckConstraint("supplied_by_id IS NULL OR supplied_by_id <> id", name="not_self_supplied"),
    )

    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[CanteenKind] = mapped_column(
        sa.Enum(
            CanteenKind,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
            create_constraint=True,
            name="canteen_kind",
        )
    )
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("communities.id"), index=True)
    supplied_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("canteens.id"), index=True)
    address: Mapped[str] = mapped_column(sa.String(200), default="")
    halal: Mapped[bool] = mapped_column(default=False)
    seats: Mapped[int] = mapped_column(default=0)
    opening_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    closed_weekdays: Mapped[list[Any]] = mapped_column(default=list)
    closed_dates: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)

    district: Mapped[District] = relationship()
    community: Mapped[Community | None] = relationship()
    supplied_by: Mapped[Canteen | None] = relationship(remote_side="Canteen.id")

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        if scope.role == scoping.DISTRICT_OFFICER:
            return cls.district_id == scope.district_id
        return cls.id.in_(scope.canteen_ids) if scope.canteen_ids else sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.district_id, self.id

    @property
    def is_kitchen(self) -> bool:
        return self.kind == CanteenKind.CENTRAL_KITCHEN

    def is_closed_on(self, day: date) -> bool:
        return day.weekday() in self.closed_weekdays or day.isoformat() in self.closed_dates
