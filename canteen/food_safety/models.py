"""Food-safety records of a site — a canteen, meal point or central kitchen (a `canteens` row): its
staff and their health certificates, retained samples, the dishes declared served, checklist
answers and morning checks, cold-storage devices and their readings, and deviations with every
step of their workflow.

Records are kept, never rewritten: a correction is a new row and the latest row is the current
one. The migration makes the database refuse UPDATE and DELETE of the append-only tables, and
DELETE (and rewriting the facts) of samples and deviations.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from canteen.core import scoping
from canteen.core.crypto import EncryptedString
from canteen.core.db import Base, utcnow
from canteen.food_safety import rules
from canteen.org.models import SLOTS, Canteen


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class SiteRecord:
    """A row of one site (`site_id`, a canteen or kitchen) and its district (`district_id`).

    Staff of a site — canteen staff, and kitchen staff, whose scope's `canteen_id` is their
    kitchen — see and write their own site's rows only (a kitchen's staff do not see the food
    safety of the canteens it supplies); district officers read their district's; admin all.
    """

    site_id: Mapped[int]
    district_id: Mapped[int]

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        if scope.role == scoping.DISTRICT_OFFICER:
            return cls.district_id == scope.district_id
        if scope.role in (scoping.CANTEEN_STAFF, scoping.KITCHEN_STAFF) and scope.canteen_id is not None:
            return cls.site_id == scope.canteen_id
        return sa.false()

    def audit_scope(self) -> tuple[int | None, int | None]:
        return self.district_id, self.site_id


class SiteStaff(SiteRecord, Base):
    """A person working at a site — cook, server, driver… — most of whom have no login.

    Works there from `started_on` until the day before `left_on`. The phone is personal data:
    encrypted at rest, shown masked.
    """

    __tablename__ = "site_staff"
    __table_args__ = (
        sa.Index("ix_site_staff_site_id_name", "site_id", "name"),
        sa.CheckConstraint(_in("job", rules.JOBS), name="job_known"),
        sa.CheckConstraint("left_on IS NULL OR left_on >= started_on", name="left_after_start"),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    job: Mapped[str] = mapped_column(sa.String(20))
    phone: Mapped[str | None] = mapped_column(EncryptedString("site_staff.phone"))
    started_on: Mapped[date]
    left_on: Mapped[date | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Canteen] = relationship()
    certificates: Mapped[list[HealthCertificate]] = relationship(
        back_populates="staff", order_by="HealthCertificate.id"
    )

    def works_on(self, day: date) -> bool:
        return self.started_on <= day and (self.left_on is None or day < self.left_on)

    @property
    def certificate(self) -> HealthCertificate | None:
        """The current certificate: the one recorded last (a correction or a renewal supersedes)."""
        return self.certificates[-1] if self.certificates else None


class HealthCertificate(SiteRecord, Base):
    """A health certificate (健康证) of one staff member: number, issue date and last valid day."""

    __tablename__ = "health_certificates"
    __table_args__ = (sa.CheckConstraint("expires_on >= issued_on", name="expires_after_issue"),)

    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("site_staff.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"), index=True)
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(40))
    issued_on: Mapped[date]
    expires_on: Mapped[date]
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    staff: Mapped[SiteStaff] = relationship(back_populates="certificates")

    def valid_on(self, day: date) -> bool:
        """Valid from its issue date through its expiry date, both included."""
        return self.issued_on <= day <= self.expires_on


class ColdDevice(SiteRecord, Base):
    """A refrigerator, freezer or sample refrigerator of a site, in service from `active_from`
    until the day before `retired_on`."""

    __tablename__ = "cold_devices"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "name"),
        sa.CheckConstraint(_in("kind", rules.DEVICE_KINDS), name="kind_known"),
        sa.CheckConstraint("retired_on IS NULL OR retired_on >= active_from", name="retired_after_start"),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    kind: Mapped[str] = mapped_column(sa.String(20))
    active_from: Mapped[date]
    retired_on: Mapped[date | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def in_service_on(self, day: date) -> bool:
        return self.active_from <= day and (self.retired_on is None or day < self.retired_on)


class TemperatureReading(SiteRecord, Base):
    """One reading of a device. The limits it was judged by are stored with it, so a later change
    of the settings never reinterprets history."""

    __tablename__ = "temperature_readings"
    __table_args__ = (
        sa.Index("ix_temperature_readings_device_id_day", "device_id", "day"),
        sa.Index("ix_temperature_readings_site_id_day", "site_id", "day"),
    )

    device_id: Mapped[int] = mapped_column(sa.ForeignKey("cold_devices.id"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    day: Mapped[date]  # the business date (Asia/Shanghai) of read_at
    read_at: Mapped[datetime]
    temperature_tenths: Mapped[int]  # °C × 10
    min_tenths: Mapped[int | None]
    max_tenths: Mapped[int | None]
    in_range: Mapped[bool]
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    device: Mapped[ColdDevice] = relationship()

    @property
    def temperature_c(self) -> float:
        return rules.to_celsius(self.temperature_tenths)


class RetainedSample(SiteRecord, Base):
    """A retained sample (留样) of one dish of one slot: weight, sealed container, when it went
    into which sample refrigerator, who took it; and its disposal, not before 48 hours.

    One sample per site, date, slot and dish (`dish_key`: the dish name compared without case or
    extra spaces).
    """

    __tablename__ = "retained_samples"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "served_on", "slot", "dish_key"),
        sa.Index("ix_retained_samples_site_id_disposed_at", "site_id", "disposed_at"),
        sa.CheckConstraint("weight_g > 0", name="weight_g_positive"),
        sa.CheckConstraint(_in("slot", SLOTS), name="slot_known"),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    served_on: Mapped[date]
    slot: Mapped[str] = mapped_column(sa.String(10))
    dish: Mapped[str] = mapped_column(sa.String(100))
    dish_key: Mapped[str] = mapped_column(sa.String(100))
    weight_g: Mapped[int]
    container_sealed: Mapped[bool]
    stored_at: Mapped[datetime]
    device_id: Mapped[int] = mapped_column(sa.ForeignKey("cold_devices.id"), index=True)
    taken_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("site_staff.id"), index=True)
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    disposed_at: Mapped[datetime | None]
    disposed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    device: Mapped[ColdDevice] = relationship()
    taken_by: Mapped[SiteStaff | None] = relationship()

    @property
    def disposable_from(self) -> datetime:
        """The earliest moment the sample may be disposed of: 48 hours after it was stored."""
        return self.stored_at + rules.SAMPLE_MIN_RETENTION

    @property
    def underweight(self) -> bool:
        return self.weight_g < rules.SAMPLE_MIN_WEIGHT_G


class ServedDishes(SiteRecord, Base):
    """The dishes a site declares served in a slot of a day (typed by staff until menus exist),
    or that the slot was not served at all."""

    __tablename__ = "served_dishes"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "day", "slot"),
        sa.CheckConstraint(_in("slot", SLOTS), name="slot_known"),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    day: Mapped[date]
    slot: Mapped[str] = mapped_column(sa.String(10))
    dishes: Mapped[list[Any]] = mapped_column(default=list)
    not_served: Mapped[bool] = mapped_column(default=False)
    declared_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChecklistEntry(SiteRecord, Base):
    """One answer to one item of a site's daily checklist (not the morning check). Answering an item
    again later that day (after fixing a problem) adds a row; the latest answer counts."""

    __tablename__ = "checklist_entries"
    __table_args__ = (sa.Index("ix_checklist_entries_site_id_day", "site_id", "day"),)

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    day: Mapped[date]
    item: Mapped[str] = mapped_column(sa.String(40))
    passed: Mapped[bool]
    method: Mapped[str | None] = mapped_column(sa.String(30))  # how tableware was disinfected
    done_at: Mapped[datetime | None]  # when (tableware disinfection)
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class MorningCheck(SiteRecord, Base):
    """The morning health check (晨检) of one staff member on one day: present or not, symptoms,
    fit to work or sent home. A later check of the same person that day adds a row; the latest counts."""

    __tablename__ = "morning_checks"
    __table_args__ = (
        sa.Index("ix_morning_checks_site_id_day", "site_id", "day"),
        sa.CheckConstraint(
            "(present AND fit IS NOT NULL) OR (NOT present AND fit IS NULL)", name="fit_only_when_present"
        ),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    day: Mapped[date]
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("site_staff.id"), index=True)
    present: Mapped[bool]
    symptoms: Mapped[list[Any]] = mapped_column(default=list)
    fit: Mapped[bool | None]
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    staff: Mapped[SiteStaff] = relationship()


class Deviation(SiteRecord, Base):
    """One breach at a site, whatever found it (a rule of this domain, the kitchen's delivery rules,
    an inspection, a person): kind, when, what was found, and where it stands in the workflow
    open → acknowledged → action_recorded → verified.

    A rule's deviation names its source (`source_ref`, e.g. "sample:12"); (kind, source) is unique,
    so a rule checked again never raises it twice. The action taken — cause, what was done, what
    happened to the affected food — lives in the events: each recording or correction is a new
    revision, and the latest revision holds the current values.
    """

    __tablename__ = "deviations"
    __table_args__ = (
        sa.UniqueConstraint("kind", "source_ref"),
        sa.Index("ix_deviations_site_id_status", "site_id", "status"),
        sa.Index("ix_deviations_district_id_status", "district_id", "status"),
        sa.Index("ix_deviations_site_id_day", "site_id", "day"),
        sa.CheckConstraint(_in("kind", rules.DEVIATION_KINDS), name="kind_known"),
        sa.CheckConstraint(_in("status", rules.DEVIATION_STATUSES), name="status_known"),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"))
    kind: Mapped[str] = mapped_column(sa.String(30))
    day: Mapped[date]  # the business date it happened
    occurred_at: Mapped[datetime]
    found: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_ref: Mapped[str | None] = mapped_column(sa.String(120))
    status: Mapped[str] = mapped_column(sa.String(20), default=rules.OPEN)
    raised_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # None: a rule
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    verified_at: Mapped[datetime | None]
    verified_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    site: Mapped[Canteen] = relationship()
    events: Mapped[list[DeviationEvent]] = relationship(back_populates="deviation", order_by="DeviationEvent.id")

    @property
    def revisions(self) -> list[DeviationEvent]:
        """The action as recorded and each correction, oldest first."""
        return [event for event in self.events if event.revision is not None]

    @property
    def current_action(self) -> DeviationEvent | None:
        """The latest revision of the action: its cause, action and affected food are current."""
        revisions = self.revisions
        return revisions[-1] if revisions else None


EVENTS = ("raised", "acknowledged", "action_recorded", "action_corrected", "returned", "verified")


class DeviationEvent(SiteRecord, Base):
    """One step of a deviation's workflow, in order. An action recorded or corrected is a revision
    (numbered from 1) carrying the whole action; a return or verification carries the officer's note."""

    __tablename__ = "deviation_events"
    __table_args__ = (
        sa.UniqueConstraint("deviation_id", "revision"),
        sa.CheckConstraint(_in("event", EVENTS), name="event_known"),
        sa.CheckConstraint(
            "(event IN ('action_recorded', 'action_corrected')) = (revision IS NOT NULL)", name="revision_of_actions"
        ),
    )

    deviation_id: Mapped[int] = mapped_column(sa.ForeignKey("deviations.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("canteens.id"), index=True)
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    event: Mapped[str] = mapped_column(sa.String(20))
    revision: Mapped[int | None]
    cause: Mapped[str | None] = mapped_column(sa.Text)
    action_taken: Mapped[str | None] = mapped_column(sa.Text)
    affected_food: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    deviation: Mapped[Deviation] = relationship(back_populates="events")
