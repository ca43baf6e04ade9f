"""Food-safety rules at every site (canteens, meal points, central kitchens): who records what,
retained samples and their 48 hours, the daily checklist with the morning health check, cold-storage
readings, health certificates, the checks that raise deviations when something is missing by its
deadline, and the one deviation workflow open → acknowledged → action recorded → verified.

The numbers and their sources are in `canteen.food_safety.rules`. Other domains raise deviations
through `raise_deviation` (idempotent per kind and source), never by writing rows themselves.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from canteen.core import clock, scoping
from canteen.core.clock import TIME_ZONE
from canteen.core.db import advisory_lock, utcnow
from canteen.core.errors import Conflict, NotFound, ValidationFailed, field_error
from canteen.core.pagination import Page, paginate
from canteen.extensions import db
from canteen.food_safety import rules
from canteen.food_safety.models import (
    ChecklistEntry,
    ColdDevice,
    Deviation,
    DeviationEvent,
    HealthCertificate,
    MorningCheck,
    RetainedSample,
    ServedDishes,
    SiteStaff,
    TemperatureReading,
)
from canteen.org.models import SLOTS, Canteen

STAFF_ROLES = (scoping.CANTEEN_STAFF, scoping.KITCHEN_STAFF)
RECORDERS = STAFF_ROLES  # and admin: the site's own people record its food safety
REPORTERS = (*STAFF_ROLES, scoping.DISTRICT_OFFICER)  # and admin: anyone who sees a breach reports it
VERIFIERS = (scoping.DISTRICT_OFFICER,)  # and admin: an officer verifies the action taken
FUTURE_TOLERANCE = timedelta(minutes=5)  # a tablet's clock may run a little ahead of the server's
MAX_DISHES_PER_SLOT = 30
TEMPERATURE_RANGE_TENTHS = (-500, 500)  # −50.0 … 50.0 °C: anything else is a typing error
UNSET: Any = object()  # "not given" in partial updates (None clears a value)

CERTIFICATE_MISSING = "missing"
CERTIFICATE_EXPIRED = "expired"
CERTIFICATE_EXPIRING = "expiring"
CERTIFICATE_VALID = "valid"

# fixed service messages (pages translate them; see canteen.food_safety.views.KNOWN_MESSAGES)
IN_FUTURE = "In the future."
NOT_AT_THIS_SITE = "Not at this site."


# --- small helpers --------------------------------------------------------------------------------
def normalise_dish(name: str) -> str:
    """A dish name as stored: full-width forms folded (NFKC), surrounding and repeated spaces removed."""
    return " ".join(unicodedata.normalize("NFKC", name).split())


def dish_key(name: str) -> str:
    """What makes two dish names the same dish: the normalised name without case."""
    return normalise_dish(name).casefold()


def business_date(moment: datetime) -> date:
    """The Asia/Shanghai date of a moment."""
    return _aware(moment).astimezone(TIME_ZONE).date()


def _aware(moment: datetime) -> datetime:
    # a time without an offset is wall-clock time in Asia/Shanghai, as tablets send it
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=TIME_ZONE)


def _shown(moment: datetime) -> str:
    return _aware(moment).astimezone(TIME_ZONE).strftime("%Y-%m-%d %H:%M")


def _refuse_future_day(day: date, name: str) -> None:
    if day > clock.today():
        raise field_error(name, IN_FUTURE, code="date_in_future")


def _moment(value: datetime | None, name: str, *, now: datetime | None = None) -> datetime:
    """A recorded time in UTC: now when not given, never in the future."""
    now = now or clock.now()
    if value is None:
        return now.astimezone(UTC)
    value = _aware(value)
    if value > now + FUTURE_TOLERANCE:
        raise field_error(name, IN_FUTURE, code="time_in_future")
    return value.astimezone(UTC)


def _text(value: Any, name: str, *, max_length: int, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise field_error(name, "Not a valid string.")
    if required and not text:
        raise field_error(name, "Required.", code="required")
    if len(text) > max_length:
        raise field_error(name, f"At most {max_length} characters.")
    return text


def _whole(value: Any, name: str, *, low: int, high: int, message: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise field_error(name, message)
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise field_error(name, "Not a valid boolean.")
    return value


def _lock_site(site_id: int) -> None:
    """Serialise the check-then-write rules of one site (one deviation per kind and source, one
    sample per dish) until the transaction ends. PostgreSQL: an advisory transaction lock; SQLite
    needs none (every write transaction starts with BEGIN IMMEDIATE)."""
    advisory_lock(db.session, f"food_safety:site:{site_id}")


# --- sites ---------------------------------------------------------------------------------------
def get_site(site_id: int) -> Canteen:
    """A site (canteen, meal point or kitchen) whose food safety the caller may see, else 404
    `site_not_found`: staff their own site only (kitchen staff not the canteens they supply),
    officers their district's, admin every one."""
    scope = scoping.current_scope()
    site = None
    if isinstance(site_id, int) and not isinstance(site_id, bool):
        site = db.session.scalars(sa.select(Canteen).where(Canteen.id == site_id)).one_or_none()
    if site is not None and scope.role in STAFF_ROLES and site.id != scope.canteen_id:
        site = None
    if site is None:
        raise NotFound(f"Site {site_id} not found.", code="site_not_found")
    return site


def list_sites(*, district_id: int | None = None, include_inactive: bool = False) -> list[Canteen]:
    """The sites whose food safety the caller may see, by district and code."""
    scope = scoping.current_scope()
    statement = sa.select(Canteen).order_by(Canteen.district_id, Canteen.code)
    if scope.role in STAFF_ROLES:
        statement = statement.where(Canteen.id == scope.canteen_id)
    if district_id is not None:
        statement = statement.where(Canteen.district_id == district_id)
    if not include_inactive:
        statement = statement.where(Canteen.active.is_(True))
    return list(db.session.scalars(statement))


def _recording_site(site_id: int) -> Canteen:
    """The site the caller records for: staff of the site and admin (403 for other roles, 404 for
    another site); an inactive site takes no records (409 `site_inactive`)."""
    scoping.require_role(*RECORDERS)
    site = get_site(site_id)
    if not site.active:
        raise Conflict("The site is not active.", code="site_inactive", errors={"site_id": ["The site is not active."]})
    return site


# --- site staff and health certificates --------------------------------------------------------------
def list_staff(
    *, site_id: int | None = None, include_left: bool = False, page: int = 1, page_size: int = 50
) -> Page[SiteStaff]:
    """Staff of the sites the caller sees, by site and name; those who left only on request."""
    statement = (
        sa.select(SiteStaff)
        .options(selectinload(SiteStaff.certificates))
        .order_by(SiteStaff.site_id, SiteStaff.name, SiteStaff.id)
    )
    if site_id is not None:
        statement = statement.where(SiteStaff.site_id == site_id)
    if not include_left:
        today = clock.today()
        statement = statement.where(SiteStaff.left_on.is_(None) | (SiteStaff.left_on > today))
    return paginate(statement, page=page, page_size=page_size)


def get_staff(staff_id: int) -> SiteStaff:
    """One staff member inside the caller's scope, else 404 `site_staff_not_found`."""
    return scoping.get_scoped(SiteStaff, staff_id)


def add_staff(
    *, site_id: int, name: str, job: str, phone: str | None = None, started_on: date | None = None
) -> SiteStaff:
    """Staff of the site (and admin) register a person working there; most have no login.

    The phone is personal data: stored encrypted, shown masked.
    """
    site = _recording_site(site_id)
    name = _text(name, "name", max_length=50)
    if job not in rules.JOBS:
        raise field_error("job", f"Must be one of: {', '.join(rules.JOBS)}.")
    started_on = started_on or clock.today()
    person = SiteStaff(
        site_id=site.id,
        district_id=site.district_id,
        name=name,
        job=job,
        phone=(phone or None),
        started_on=started_on,
        created_by_id=scoping.current_scope().user_id,
        created_at=utcnow(),
    )
    db.session.add(person)
    db.session.flush()
    return person


def update_staff(
    staff_id: int, *, name: str = UNSET, job: str = UNSET, phone: str | None = UNSET, left_on: date | None = UNSET
) -> SiteStaff:
    """Staff of the site (and admin) change a person's name, job or phone, or record the day they
    left (`left_on`: from that day on they are no longer checked; None: working again)."""
    scoping.require_role(*RECORDERS)
    person = get_staff(staff_id)
    if name is not UNSET:
        person.name = _text(name, "name", max_length=50)
    if job is not UNSET:
        if job not in rules.JOBS:
            raise field_error("job", f"Must be one of: {', '.join(rules.JOBS)}.")
        person.job = job
    if phone is not UNSET:
        person.phone = phone or None
    if left_on is not UNSET:
        if left_on is not None and left_on < person.started_on:
            raise field_error("left_on", "Before the day they started.")
        person.left_on = left_on
    db.session.flush()
    return person


def add_certificate(
    staff_id: int, *, number: str, issued_on: date, expires_on: date | None = None
) -> HealthCertificate:
    """Staff of the site (and admin) record a person's health certificate (健康证).

    Valid one year (Food Safety Law art. 45): the expiry date defaults to the day before the same
    date next year and may be at most that date itself (422 `certificate_too_long`). Not issued
    in the future. The certificate recorded last is the person's current one (a renewal or a
    correction supersedes the earlier row, which is kept).
    """
    scoping.require_role(*RECORDERS)
    person = get_staff(staff_id)
    number = _text(number, "number", max_length=40)
    _refuse_future_day(issued_on, "issued_on")
    if expires_on is None:
        expires_on = rules.certificate_default_expiry(issued_on)
    if expires_on < issued_on:
        raise field_error("expires_on", "Before the issue date.")
    longest = rules.certificate_longest_expiry(issued_on)
    if expires_on > longest:
        raise field_error(
            "expires_on",
            f"A health certificate is valid one year: at most until {longest.isoformat()}.",
            code="certificate_too_long",
        )
    certificate = HealthCertificate(
        staff=person,
        site_id=person.site_id,
        district_id=person.district_id,
        number=number,
        issued_on=issued_on,
        expires_on=expires_on,
        recorded_by_id=scoping.current_scope().user_id,
        recorded_at=utcnow(),
    )
    db.session.add(certificate)
    db.session.flush()
    return certificate


def certificate_status(person: SiteStaff, day: date) -> str:
    """`missing`, `expired` (expiry date before `day`), `expiring` (valid, but expiring within
    FOOD_SAFETY_CERTIFICATE_WARNING_DAYS of `day`, the expiry day itself included) or `valid`."""
    certificate = person.certificate
    if certificate is None or certificate.issued_on > day:
        return CERTIFICATE_MISSING
    if certificate.expires_on < day:
        return CERTIFICATE_EXPIRED
    if (certificate.expires_on - day).days <= rules.certificate_warning_days():
        return CERTIFICATE_EXPIRING
    return CERTIFICATE_VALID


@dataclass(frozen=True)
class CertificateAlert:
    """A working staff member whose certificate is missing, expired or expiring soon."""

    staff: SiteStaff
    status: str
    certificate: HealthCertificate | None
    days_left: int | None  # until the expiry date (0: expires today; negative: expired)


def list_certificate_alerts(
    *, site_id: int | None = None, within_days: int | None = None, on: date | None = None
) -> list[CertificateAlert]:
    """Staff working on `on` (default today) at the sites the caller sees whose certificate is
    missing, expired, or expires within `within_days` (default FOOD_SAFETY_CERTIFICATE_WARNING_DAYS)
    — for one site, or for every site of the caller's district. Soonest first."""
    on = on or clock.today()
    within = rules.certificate_warning_days() if within_days is None else within_days
    statement = sa.select(SiteStaff).options(selectinload(SiteStaff.certificates), selectinload(SiteStaff.site))
    statement = statement.where(SiteStaff.started_on <= on, SiteStaff.left_on.is_(None) | (SiteStaff.left_on > on))
    if site_id is not None:
        statement = statement.where(SiteStaff.site_id == site_id)
    alerts = []
    for person in db.session.scalars(statement):
        certificate = person.certificate
        if certificate is None or certificate.issued_on > on:
            alerts.append(CertificateAlert(person, CERTIFICATE_MISSING, certificate, None))
            continue
        days_left = (certificate.expires_on - on).days
        if days_left < 0:
            alerts.append(CertificateAlert(person, CERTIFICATE_EXPIRED, certificate, days_left))
        elif days_left <= within:
            alerts.append(CertificateAlert(person, CERTIFICATE_EXPIRING, certificate, days_left))
    rank = {CERTIFICATE_MISSING: 0, CERTIFICATE_EXPIRED: 1, CERTIFICATE_EXPIRING: 2}
    alerts.sort(key=lambda a: (rank[a.status], a.days_left or 0, a.staff.site_id, a.staff.name, a.staff.id))
    return alerts


def _working_staff(site_id: int, day: date) -> list[SiteStaff]:
    return list(
        db.session.scalars(
            sa.select(SiteStaff)
            .options(selectinload(SiteStaff.certificates))
            .where(
                SiteStaff.site_id == site_id,
                SiteStaff.started_on <= day,
                SiteStaff.left_on.is_(None) | (SiteStaff.left_on > day),
            )
            .order_by(SiteStaff.name, SiteStaff.id)
        )
    )


# --- cold-storage devices and readings -----------------------------------------------------------------
def list_devices(
    *, site_id: int | None = None, include_retired: bool = False, page: int = 1, page_size: int = 50
) -> Page[ColdDevice]:
    """Refrigerators, freezers and sample refrigerators of the sites the caller sees."""
    statement = sa.select(ColdDevice).order_by(ColdDevice.site_id, ColdDevice.name)
    if site_id is not None:
        statement = statement.where(ColdDevice.site_id == site_id)
    if not include_retired:
        today = clock.today()
        statement = statement.where(ColdDevice.retired_on.is_(None) | (ColdDevice.retired_on > today))
    return paginate(statement, page=page, page_size=page_size)


def get_device(device_id: int) -> ColdDevice:
    """One device inside the caller's scope, else 404 `cold_device_not_found`."""
    return scoping.get_scoped(ColdDevice, device_id)


def add_device(*, site_id: int, name: str, kind: str, active_from: date | None = None) -> ColdDevice:
    """Staff of the site (and admin) register a refrigerator, freezer or sample refrigerator;
    its readings are held to the limits of its kind (FOOD_SAFETY_DEVICE_LIMITS_C). Names are
    unique per site (409 `device_exists`)."""
    site = _recording_site(site_id)
    name = _text(name, "name", max_length=60)
    if kind not in rules.DEVICE_KINDS:
        raise field_error("kind", f"Must be one of: {', '.join(rules.DEVICE_KINDS)}.")
    rules.device_limits(kind)  # a broken setting shows here, not at the first reading
    _lock_site(site.id)
    with scoping.unrestricted():
        taken = db.session.scalar(sa.select(sa.exists().where(ColdDevice.site_id == site.id, ColdDevice.name == name)))
    if taken:
        message = "The site already has a device of this name."
        raise Conflict(message, code="device_exists", errors={"name": [message]})
    device = ColdDevice(
        site_id=site.id,
        district_id=site.district_id,
        name=name,
        kind=kind,
        active_from=active_from or clock.today(),
        created_by_id=scoping.current_scope().user_id,
        created_at=utcnow(),
    )
    db.session.add(device)
    db.session.flush()
    return device


def update_device(device_id: int, *, name: str = UNSET, retired_on: date | None = UNSET) -> ColdDevice:
    """Staff of the site (and admin) rename a device or take it out of service from `retired_on`
    (no readings are due from that day; None: back in service)."""
    scoping.require_role(*RECORDERS)
    device = get_device(device_id)
    if name is not UNSET:
        name = _text(name, "name", max_length=60)
        if name != device.name:
            _lock_site(device.site_id)
            with scoping.unrestricted():
                taken = db.session.scalar(
                    sa.select(sa.exists().where(ColdDevice.site_id == device.site_id, ColdDevice.name == name))
                )
            if taken:
                message = "The site already has a device of this name."
                raise Conflict(message, code="device_exists", errors={"name": [message]})
            device.name = name
    if retired_on is not UNSET:
        if retired_on is not None and retired_on < device.active_from:
            raise field_error("retired_on", "Before the device came into service.")
        device.retired_on = retired_on
    db.session.flush()
    return device


def record_reading(
    *, device_id: int, temperature_c: Decimal | int | float | str, read_at: datetime | None = None, note: str = ""
) -> TemperatureReading:
    """Staff of the site (and admin) record a device's temperature (default: read now).

    The reading is judged against its kind's limits, both inclusive (a 0–8 °C refrigerator at
    8.0 °C is in range, at 8.1 °C it is not); the limits used are stored with the reading. A
    reading out of range raises a `temperature_out_of_range` deviation at once. A device out of
    service that day takes no readings (409 `device_not_in_service`).
    """
    scoping.require_role(*RECORDERS)
    device = get_device(device_id)
    read_at = _moment(read_at, "read_at")
    day = business_date(read_at)
    if not device.in_service_on(day):
        message = "The device is not in service on that day."
        raise Conflict(message, code="device_not_in_service", errors={"device_id": [message]})
    try:
        tenths = rules.to_tenths(temperature_c)
    except (ValueError, InvalidOperation, ArithmeticError):
        raise field_error("temperature_c", "A temperature in °C with at most one decimal place.") from None
    low, high = TEMPERATURE_RANGE_TENTHS
    if not low <= tenths <= high:
        raise field_error("temperature_c", "Between -50 and 50 °C.")
    limits = rules.device_limits(device.kind)
    reading = TemperatureReading(
        device=device,
        site_id=device.site_id,
        district_id=device.district_id,
        day=day,
        read_at=read_at,
        temperature_tenths=tenths,
        min_tenths=limits[0],
        max_tenths=limits[1],
        in_range=rules.in_limits(tenths, limits),
        note=_text(note, "note", max_length=200, required=False),
        recorded_by_id=scoping.current_scope().user_id,
        recorded_at=utcnow(),
    )
    db.session.add(reading)
    db.session.flush()
    if not reading.in_range:
        _raise_out_of_range(device, reading)
    return reading


def _raise_out_of_range(device: ColdDevice, reading: TemperatureReading) -> Deviation:
    with scoping.unrestricted():
        stored = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(RetainedSample)
            .where(RetainedSample.device_id == device.id, RetainedSample.disposed_at.is_(None))
        )
    limits = _limits_text(reading.min_tenths, reading.max_tenths)
    return raise_deviation(
        site_id=device.site_id,
        kind=rules.TEMPERATURE_OUT_OF_RANGE,
        occurred_at=reading.read_at,
        found=f"{device.name} read {reading.temperature_c:g} °C at {_shown(reading.read_at)}, outside {limits}.",
        source_ref=f"reading:{reading.id}",
        details={
            "device_id": device.id,
            "device_name": device.name,
            "device_kind": device.kind,
            "reading_id": reading.id,
            "temperature_c": reading.temperature_c,
            "min_c": None if reading.min_tenths is None else rules.to_celsius(reading.min_tenths),
            "max_c": None if reading.max_tenths is None else rules.to_celsius(reading.max_tenths),
            "samples_stored": stored or 0,
        },
    )


def _limits_text(low: int | None, high: int | None) -> str:
    if low is None:
        return f"at most {rules.to_celsius(high):g} °C"
    if high is None:
        return f"at least {rules.to_celsius(low):g} °C"
    return f"{rules.to_celsius(low):g}–{rules.to_celsius(high):g} °C"


def list_readings(
    *,
    site_id: int | None = None,
    device_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    in_range: bool | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[TemperatureReading]:
    """Readings at the sites the caller sees, newest first."""
    statement = sa.select(TemperatureReading).order_by(TemperatureReading.read_at.desc(), TemperatureReading.id.desc())
    filters = {TemperatureReading.site_id: site_id, TemperatureReading.device_id: device_id}
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(column == value)
    if date_from is not None:
        statement = statement.where(TemperatureReading.day >= date_from)
    if date_to is not None:
        statement = statement.where(TemperatureReading.day <= date_to)
    if in_range is not None:
        statement = statement.where(TemperatureReading.in_range.is_(in_range))
    return paginate(statement, page=page, page_size=page_size)


# --- dishes served and retained samples ----------------------------------------------------------------
def list_served_dishes(*, site_id: int, day: date) -> list[ServedDishes]:
    """The slots of a site's day with dishes declared served (or declared not served)."""
    get_site(site_id)
    return list(
        db.session.scalars(
            sa.select(ServedDishes)
            .where(ServedDishes.site_id == site_id, ServedDishes.day == day)
            .order_by(ServedDishes.slot)
        )
    )


def declare_served_dishes(
    *, site_id: int, day: date, slot: str, dishes: Iterable[str], not_served: bool = False
) -> ServedDishes:
    """Staff of the site (and admin) declare the dishes served in a slot of a day, replacing the
    earlier list, or declare the slot not served at all (then without dishes).

    Until menus exist this list, together with the dishes that have samples, is what the slot
    served: each of those dishes needs a retained sample by the slot's deadline. A slot with
    samples cannot be declared not served (409 `slot_has_samples`).
    """
    site = _recording_site(site_id)
    _refuse_future_day(day, "day")
    if slot not in SLOTS:
        raise field_error("slot", f"Must be one of: {', '.join(SLOTS)}.")
    names = _dish_list(dishes)
    _flag(not_served, "not_served")
    if not_served and names:
        raise field_error("dishes", "A slot declared not served has no dishes.")
    _lock_site(site.id)
    if not_served and _samples_of(site.id, day, slot):
        message = "Samples were retained for this meal: it was served."
        raise Conflict(message, code="slot_has_samples", errors={"not_served": [message]})
    row = _served_row(site.id, day, slot)
    if row is None:
        row = ServedDishes(site_id=site.id, district_id=site.district_id, day=day, slot=slot)
        db.session.add(row)
    row.dishes = names
    row.not_served = not_served
    row.declared_by_id = scoping.current_scope().user_id
    row.declared_at = utcnow()
    db.session.flush()
    return row


def add_served_dish(*, site_id: int, day: date, slot: str, dish: str) -> ServedDishes:
    """Add one dish to a slot's declared dishes (the daily screen's form); a dish already there
    is not added twice, and a slot declared not served becomes served."""
    site = get_site(site_id)
    row = _served_row(site.id, day, slot) if slot in SLOTS else None
    current = list(row.dishes) if row is not None else []
    return declare_served_dishes(site_id=site_id, day=day, slot=slot, dishes=[*current, dish])


def _dish_list(dishes: Iterable[str]) -> list[str]:
    if isinstance(dishes, str) or not isinstance(dishes, Iterable):
        raise field_error("dishes", "A list of dish names.")
    names, seen = [], set()
    for raw in dishes:
        if not isinstance(raw, str) or not normalise_dish(raw):
            raise field_error("dishes", "A dish name is 1–100 characters.")
        name = normalise_dish(raw)
        if len(name) > 100:
            raise field_error("dishes", "A dish name is 1–100 characters.")
        if dish_key(name) not in seen:
            seen.add(dish_key(name))
            names.append(name)
    if len(names) > MAX_DISHES_PER_SLOT:
        raise field_error("dishes", f"At most {MAX_DISHES_PER_SLOT} dishes per meal.")
    return names


def _served_row(site_id: int, day: date, slot: str) -> ServedDishes | None:
    with scoping.unrestricted():
        return db.session.scalars(
            sa.select(ServedDishes).where(
                ServedDishes.site_id == site_id, ServedDishes.day == day, ServedDishes.slot == slot
            )
        ).one_or_none()


def _samples_of(site_id: int, day: date, slot: str | None = None) -> list[RetainedSample]:
    statement = sa.select(RetainedSample).where(RetainedSample.site_id == site_id, RetainedSample.served_on == day)
    if slot is not None:
        statement = statement.where(RetainedSample.slot == slot)
    with scoping.unrestricted():
        return list(db.session.scalars(statement.order_by(RetainedSample.id)))


def served_dishes_of(site_id: int, day: date, slot: str) -> list[str]:
    """What a slot served, as far as the system knows until menus exist: the dishes declared
    served on the daily screen (or by the API) plus every dish that has a sample, declared ones
    first. A slot declared not served served nothing. A later menus issue replaces this source."""
    row = _served_row(site_id, day, slot)
    if row is not None and row.not_served:
        return []
    names = list(row.dishes) if row is not None else []
    keys = {dish_key(name) for name in names}
    for sample in _samples_of(site_id, day, slot):
        if sample.dish_key not in keys:
            keys.add(sample.dish_key)
            names.append(sample.dish)
    return names


def record_sample(
    *,
    site_id: int,
    served_on: date,
    slot: str,
    dish: str,
    weight_g: int,
    container_sealed: bool,
    device_id: int,
    stored_at: datetime | None = None,
    taken_by_id: int | None = None,
    note: str = "",
) -> RetainedSample:
    """Staff of the site (and admin) record the retained sample of one dish of a slot.

    Kept in a sample refrigerator of the site (422 on another kind of device: samples are
    refrigerated at 0–8 °C in dedicated cold storage, SAMR 2018), stored not in the future and
    not before the day it was served. One sample per dish and slot (409 `sample_exists`); not
    for a slot declared not served (409 `slot_not_served`). A sample under 125 g, or not in a
    sealed container, is recorded as it is — it is still the evidence kept — and raises a
    `sample_underweight` / `sample_unsealed` deviation at once.
    """
    site = _recording_site(site_id)
    _refuse_future_day(served_on, "served_on")
    if slot not in SLOTS:
        raise field_error("slot", f"Must be one of: {', '.join(SLOTS)}.")
    name = normalise_dish(_text(dish, "dish", max_length=100))
    weight_g = _whole(
        weight_g, "weight_g", low=1, high=rules.SAMPLE_MAX_WEIGHT_G, message="A weight in grams, 1 to 5000."
    )
    container_sealed = _flag(container_sealed, "container_sealed")
    stored_at = _moment(stored_at, "stored_at")
    if business_date(stored_at) < served_on:
        raise field_error("stored_at", "Before the day it was served.")
    device = _device_of_site(device_id, site, business_date(stored_at))
    if device.kind != rules.SAMPLE_REFRIGERATOR:
        raise field_error(
            "device_id", "Samples are kept in a sample refrigerator.", code="device_not_sample_refrigerator"
        )
    taken_by = _staff_of_site(taken_by_id, site, served_on, "taken_by_id") if taken_by_id is not None else None
    _lock_site(site.id)
    row = _served_row(site.id, served_on, slot)
    if row is not None and row.not_served:
        message = "This meal was declared not served."
        raise Conflict(message, code="slot_not_served", errors={"slot": [message]})
    key = dish_key(name)
    if any(sample.dish_key == key for sample in _samples_of(site.id, served_on, slot)):
        message = "This dish already has a sample for this meal."
        raise Conflict(message, code="sample_exists", errors={"dish": [message]})
    sample = RetainedSample(
        site_id=site.id,
        district_id=site.district_id,
        served_on=served_on,
        slot=slot,
        dish=name,
        dish_key=key,
        weight_g=weight_g,
        container_sealed=container_sealed,
        stored_at=stored_at,
        device=device,
        taken_by=taken_by,
        note=_text(note, "note", max_length=200, required=False),
        recorded_by_id=scoping.current_scope().user_id,
        recorded_at=utcnow(),
    )
    db.session.add(sample)
    db.session.flush()
    where = f"{sample.dish} ({sample.slot}, {sample.served_on.isoformat()})"
    base = {"sample_id": sample.id, "dish": sample.dish, "slot": sample.slot, "served_on": sample.served_on.isoformat()}
    if sample.underweight:
        raise_deviation(
            site_id=site.id,
            kind=rules.SAMPLE_UNDERWEIGHT,
            occurred_at=stored_at,
            found=f"The sample of {where} weighs {weight_g} g, under {rules.SAMPLE_MIN_WEIGHT_G} g.",
            source_ref=f"sample:{sample.id}",
            details={**base, "weight_g": weight_g, "minimum_g": rules.SAMPLE_MIN_WEIGHT_G},
        )
    if not container_sealed:
        raise_deviation(
            site_id=site.id,
            kind=rules.SAMPLE_UNSEALED,
            occurred_at=stored_at,
            found=f"The sample of {where} was not in a sealed container.",
            source_ref=f"sample:{sample.id}",
            details=base,
        )
    return sample


def _device_of_site(device_id: Any, site: Canteen, day: date) -> ColdDevice:
    if not isinstance(device_id, int) or isinstance(device_id, bool):
        raise field_error("device_id", "Not a valid integer.")
    device = scoping.get_scoped(ColdDevice, device_id)
    if device.site_id != site.id:
        raise field_error("device_id", NOT_AT_THIS_SITE)
    if not device.in_service_on(day):
        raise field_error("device_id", "The device is not in service on that day.", code="device_not_in_service")
    return device


def _staff_of_site(staff_id: Any, site: Canteen, day: date, name: str) -> SiteStaff:
    if not isinstance(staff_id, int) or isinstance(staff_id, bool):
        raise field_error(name, "Not a valid integer.")
    person = get_staff(staff_id)
    if person.site_id != site.id:
        raise field_error(name, NOT_AT_THIS_SITE)
    if not person.works_on(day):
        raise field_error(name, "Not working at the site on that day.", code="staff_not_working")
    return person


def get_sample(sample_id: int) -> RetainedSample:
    """One sample inside the caller's scope, else 404 `retained_sample_not_found`."""
    return scoping.get_scoped(RetainedSample, sample_id)


def list_samples(
    *,
    site_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    slot: str | None = None,
    disposed: bool | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[RetainedSample]:
    """Samples of the sites the caller sees, newest first."""
    statement = sa.select(RetainedSample).order_by(
        RetainedSample.served_on.desc(), RetainedSample.slot, RetainedSample.id.desc()
    )
    if site_id is not None:
        statement = statement.where(RetainedSample.site_id == site_id)
    if date_from is not None:
        statement = statement.where(RetainedSample.served_on >= date_from)
    if date_to is not None:
        statement = statement.where(RetainedSample.served_on <= date_to)
    if slot is not None:
        statement = statement.where(RetainedSample.slot == slot)
    if disposed is not None:
        column = RetainedSample.disposed_at
        statement = statement.where(column.is_not(None) if disposed else column.is_(None))
    return paginate(statement, page=page, page_size=page_size)


def dispose_sample(sample_id: int, *, disposed_at: datetime | None = None) -> RetainedSample:
    """Staff of the site (and admin) record that a sample was disposed of (default: now), and who.

    Refused before 48 hours in cold storage (409 `sample_retention_not_over`: at 47 h 59 min it
    is refused, at 48 h it is accepted; SAMR 2018, GB 31654-2021), twice (409
    `sample_already_disposed`) and in the future.
    """
    scoping.require_role(*RECORDERS)
    sample = get_sample(sample_id)
    if sample.disposed_at is not None:
        message = "The sample was already disposed of."
        raise Conflict(message, code="sample_already_disposed", errors={"disposed_at": [message]})
    disposed_at = _moment(disposed_at, "disposed_at")
    if disposed_at < sample.disposable_from:
        message = (
            f"Samples are kept at least {rules.SAMPLE_MIN_HOURS} hours: "
            f"this one may be disposed of from {_shown(sample.disposable_from)}."
        )
        raise Conflict(message, code="sample_retention_not_over", errors={"disposed_at": [message]})
    sample.disposed_at = disposed_at
    sample.disposed_by_id = scoping.current_scope().user_id
    db.session.flush()
    return sample


# --- the daily checklist and the morning check ------------------------------------------------------------
def record_checklist_entry(
    *,
    site_id: int,
    day: date,
    item: str,
    passed: bool,
    method: str | None = None,
    done_at: datetime | None = None,
    note: str = "",
) -> ChecklistEntry:
    """Staff of the site (and admin) answer one item of the day's checklist (not in the future).

    The items are FOOD_SAFETY_CHECKLIST_ITEMS. Tableware disinfection, when passed, says how
    (`method`) and when (`done_at`, that day). A failed item says what was wrong (`note`).
    Answering again later (a problem fixed) adds an answer; the latest counts at the deadline.
    """
    site = _recording_site(site_id)
    _refuse_future_day(day, "day")
    items = {entry.key: entry for entry in rules.checklist_items()}
    if item not in items:
        raise field_error("item", f"Must be one of: {', '.join(items)}.", code="unknown_checklist_item")
    definition = items[item]
    passed = _flag(passed, "passed")
    note = _text(note, "note", max_length=500, required=False)
    errors: dict[str, list[str]] = {}
    if not passed and not note:
        errors["note"] = ["Say what was wrong."]
    if definition.needs_method_and_time:
        if method is None and passed:
            errors["method"] = ["Say how it was done."]
        elif method is not None and method not in rules.DISINFECTION_METHODS:
            errors["method"] = [f"Must be one of: {', '.join(rules.DISINFECTION_METHODS)}."]
        if done_at is None and passed:
            errors["done_at"] = ["Say when it was done."]
        elif done_at is not None:
            done_at = _moment(done_at, "done_at")
            if business_date(done_at) != day:
                errors["done_at"] = ["Not on that day."]
    else:
        for name, value in (("method", method), ("done_at", done_at)):
            if value is not None:
                errors[name] = ["Only tableware disinfection takes a method and time."]
    if errors:
        raise ValidationFailed(errors=errors)
    entry = ChecklistEntry(
        site_id=site.id,
        district_id=site.district_id,
        day=day,
        item=item,
        passed=passed,
        method=method,
        done_at=_aware(done_at) if done_at is not None else None,
        note=note,
        recorded_by_id=scoping.current_scope().user_id,
        recorded_at=utcnow(),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def record_morning_check(
    *,
    site_id: int,
    day: date,
    staff_id: int,
    present: bool,
    symptoms: Iterable[str] = (),
    fit: bool | None = None,
    note: str = "",
    checked_at: datetime | None = None,
) -> MorningCheck:
    """Staff of the site (and admin) record a staff member's morning health check (晨检).

    Present or absent; symptoms from the fixed list (`other` needs a note); fit to work or sent
    home. Nobody with a symptom is marked fit (422 `symptoms_not_fit`, GB 31654-2021), nor anyone
    without a health certificate valid that day (422 `certificate_expired` /
    `certificate_missing`; a certificate expiring that very day is still valid). An absent person
    has no symptoms and no fitness. Checking the person again that day adds a check; the latest counts.
    """
    site = _recording_site(site_id)
    _refuse_future_day(day, "day")
    person = _staff_of_site(staff_id, site, day, "staff_id")
    present = _flag(present, "present")
    if isinstance(symptoms, str) or not isinstance(symptoms, Iterable):
        raise field_error("symptoms", "A list of symptoms.")
    symptoms = list(dict.fromkeys(symptoms))
    unknown = [s for s in symptoms if s not in rules.SYMPTOMS]
    if unknown:
        raise field_error("symptoms", f"Must be one of: {', '.join(rules.SYMPTOMS)}.")
    note = _text(note, "note", max_length=500, required=False)
    checked_at = _moment(checked_at, "checked_at")
    if business_date(checked_at) < day:
        raise field_error("checked_at", "Before that day.")
    if not present:
        if symptoms:
            raise field_error("symptoms", "An absent person has no symptoms to record.")
        if fit is not None:
            raise field_error("fit", "An absent person is neither fit nor sent home.")
    else:
        if fit is None:
            raise field_error("fit", "Say whether the person is fit to work or sent home.", code="fit_required")
        fit = _flag(fit, "fit")
        if "other" in symptoms and not note:
            raise field_error("note", "Describe the other symptom.")
        if fit and symptoms:
            raise field_error(
                "fit",
                "Someone with symptoms does not handle food: send them home.",
                code="symptoms_not_fit",
            )
        if fit:
            status = certificate_status(person, day)
            if status == CERTIFICATE_MISSING:
                raise field_error(
                    "fit", "No valid health certificate: cannot be marked fit.", code="certificate_missing"
                )
            if status == CERTIFICATE_EXPIRED:
                raise field_error(
                    "fit", "The health certificate has expired: cannot be marked fit.", code="certificate_expired"
                )
    check = MorningCheck(
        site_id=site.id,
        district_id=site.district_id,
        day=day,
        staff=person,
        present=present,
        symptoms=symptoms,
        fit=fit if present else None,
        note=note,
        checked_at=checked_at,
        recorded_by_id=scoping.current_scope().user_id,
    )
    db.session.add(check)
    db.session.flush()
    return check


def _latest(rows: Iterable[Any], key) -> dict[Any, Any]:
    """The latest row (highest id) per key."""
    latest: dict[Any, Any] = {}
    for row in sorted(rows, key=lambda r: r.id):
        latest[key(row)] = row
    return latest


# --- what a site's day holds and what is still due ----------------------------------------------------
@dataclass
class DishStatus:
    dish: str
    sample: RetainedSample | None


@dataclass
class SlotStatus:
    """A slot of the day: the dishes it served (declared ∪ sampled), each with its sample or none."""

    slot: str
    deadline: datetime
    expected: bool  # the site is open for this slot that day (opening hours)
    declared: bool  # dishes (or "not served") declared for it
    not_served: bool
    dishes: list[DishStatus]

    @property
    def missing(self) -> list[str]:
        return [d.dish for d in self.dishes if d.sample is None]

    @property
    def needs_declaration(self) -> bool:
        return self.expected and not self.not_served and not self.dishes


@dataclass
class ItemStatus:
    item: rules.ChecklistItem
    entry: ChecklistEntry | None  # the latest answer

    @property
    def due(self) -> bool:
        return self.entry is None or not self.entry.passed


@dataclass
class StaffCheckStatus:
    staff: SiteStaff
    check: MorningCheck | None  # the latest check of the day
    certificate: str  # missing | expired | expiring | valid, on the day


@dataclass
class DeviceStatus:
    device: ColdDevice
    limits: tuple[int | None, int | None]
    readings: list[TemperatureReading]
    required: int

    @property
    def due(self) -> int:
        return max(self.required - len(self.readings), 0)


@dataclass
class DailyStatus:
    """Everything the daily food-safety screen shows for one site and day."""

    site: Canteen
    day: date
    now: datetime
    open: bool  # the site is active and not closed that day
    slots: list[SlotStatus]
    items: list[ItemStatus]
    staff_checks: list[StaffCheckStatus]
    devices: list[DeviceStatus]
    checklist_deadline: datetime
    readings_deadline: datetime
    disposal_due: list[RetainedSample] = field(default_factory=list)  # 48 hours kept, not yet disposed
    kept: list[RetainedSample] = field(default_factory=list)  # still within their 48 hours
    open_deviations: list[Deviation] = field(default_factory=list)

    @property
    def checklist_missing(self) -> list[str]:
        return [s.item.key for s in self.items if s.entry is None]

    @property
    def checklist_failed(self) -> list[str]:
        return [s.item.key for s in self.items if s.entry is not None and not s.entry.passed]

    @property
    def unchecked_staff(self) -> list[SiteStaff]:
        return [s.staff for s in self.staff_checks if s.check is None]

    @property
    def checklist_needed(self) -> bool:
        return self.open

    @property
    def due_count(self) -> int:
        """What is still to be done that day: samples, declarations, checklist items and morning
        checks (on open days), and readings."""
        count = sum(device.due for device in self.devices)
        if self.open:
            count += sum(1 for item in self.items if item.due) + len(self.unchecked_staff)
            count += 0 if self.staff_checks else 1  # no staff registered: the morning check cannot be done
        for slot in self.slots:
            count += len(slot.missing) + (1 if slot.needs_declaration else 0)
        return count


def daily_status(site_id: int, day: date | None = None, *, now: datetime | None = None) -> DailyStatus:
    """What a site's day holds and what is still due: samples per served dish and slot, the
    checklist with each working staff member's morning check, each device's readings against
    the readings required, samples that may be disposed of, and the site's unverified deviations.
    Reads only."""
    site = get_site(site_id)
    now = now or clock.now()
    day = day or business_date(now)
    with scoping.unrestricted():
        return _day_of(site, day, now)


def _day_of(site: Canteen, day: date, now: datetime) -> DailyStatus:
    is_open = site.active and not site.is_closed_on(day)
    served = {
        row.slot: row
        for row in db.session.scalars(
            sa.select(ServedDishes).where(ServedDishes.site_id == site.id, ServedDishes.day == day)
        )
    }
    samples_by_slot: dict[str, list[RetainedSample]] = defaultdict(list)
    for sample in _samples_of(site.id, day):
        samples_by_slot[sample.slot].append(sample)
    slots = []
    for slot in SLOTS:
        hours = site.opening_hours if isinstance(site.opening_hours, dict) else {}
        expected = is_open and bool(hours.get(slot))
        row = served.get(slot)
        if not expected and row is None and not samples_by_slot[slot]:
            continue
        by_key = {sample.dish_key: sample for sample in samples_by_slot[slot]}
        names = [] if row is None or row.not_served else list(row.dishes)
        keys = {dish_key(name) for name in names}
        names += [s.dish for s in samples_by_slot[slot] if s.dish_key not in keys]
        slots.append(
            SlotStatus(
                slot=slot,
                deadline=rules.sample_deadline(day, slot, site.opening_hours),
                expected=expected,
                declared=row is not None,
                not_served=row is not None and row.not_served,
                dishes=[DishStatus(name, by_key.get(dish_key(name))) for name in names],
            )
        )
    entries = _latest(
        db.session.scalars(
            sa.select(ChecklistEntry).where(ChecklistEntry.site_id == site.id, ChecklistEntry.day == day)
        ),
        key=lambda e: e.item,
    )
    items = [ItemStatus(item, entries.get(item.key)) for item in rules.checklist_items()]
    checks = _latest(
        db.session.scalars(sa.select(MorningCheck).where(MorningCheck.site_id == site.id, MorningCheck.day == day)),
        key=lambda c: c.staff_id,
    )
    staff_checks = [
        StaffCheckStatus(person, checks.get(person.id), certificate_status(person, day))
        for person in _working_staff(site.id, day)
    ]
    devices = []
    device_rows = db.session.scalars(
        sa.select(ColdDevice)
        .where(
            ColdDevice.site_id == site.id,
            ColdDevice.active_from <= day,
            ColdDevice.retired_on.is_(None) | (ColdDevice.retired_on > day),
        )
        .order_by(ColdDevice.name)
    ).all()
    readings: dict[int, list[TemperatureReading]] = defaultdict(list)
    for reading in db.session.scalars(
        sa.select(TemperatureReading)
        .where(TemperatureReading.site_id == site.id, TemperatureReading.day == day)
        .order_by(TemperatureReading.read_at, TemperatureReading.id)
    ):
        readings[reading.device_id].append(reading)
    required = rules.readings_per_day()
    for device in device_rows:
        devices.append(DeviceStatus(device, rules.device_limits(device.kind), readings[device.id], required))
    waiting = db.session.scalars(
        sa.select(RetainedSample)
        .where(RetainedSample.site_id == site.id, RetainedSample.disposed_at.is_(None))
        .order_by(RetainedSample.stored_at, RetainedSample.id)
    ).all()
    open_deviations = db.session.scalars(
        sa.select(Deviation)
        .options(selectinload(Deviation.events))
        .where(Deviation.site_id == site.id, Deviation.status.in_(rules.UNVERIFIED_STATUSES))
        .order_by(Deviation.occurred_at.desc(), Deviation.id.desc())
    ).all()
    return DailyStatus(
        site=site,
        day=day,
        now=now,
        open=is_open,
        slots=slots,
        items=items,
        staff_checks=staff_checks,
        devices=devices,
        checklist_deadline=rules.checklist_deadline(day),
        readings_deadline=rules.readings_deadline(day),
        disposal_due=[s for s in waiting if s.disposable_from <= now],
        kept=[s for s in waiting if s.disposable_from > now],
        open_deviations=list(open_deviations),
    )


# --- the checks: what is missing by its deadline becomes a deviation --------------------------------------
def check_site_day(site_id: int, day: date, *, now: datetime | None = None) -> list[Deviation]:
    """Raise the deviations of a site's day whose deadline has passed by `now` (default: now);
    return those newly raised. Idempotent: checking again raises nothing twice.

    - `checklist_missing`: at FOOD_SAFETY_CHECKLIST_DEADLINE an item has no answer, a working
      staff member has no morning check, or the site has no staff registered (open days only);
    - `checklist_failed`: at that deadline an item's latest answer is still failed;
    - `sample_missing`: at a slot's deadline (the end of its opening hours plus
      FOOD_SAFETY_SAMPLE_GRACE_MINUTES) a served dish has no sample — the served dishes of a
      slot being those declared served plus those with samples (`served_dishes_of`; menus will
      replace this source) — or a slot the site is open for has nothing declared and no sample
      and was not declared not served;
    - `readings_missing`: at FOOD_SAFETY_READINGS_DEADLINE a device in service that day has
      fewer than FOOD_SAFETY_READINGS_PER_DAY readings (every day, closed days included: the
      fridges run).
    Run by `flask food-safety check` (the scheduler) and when the daily screen is opened. Runs
    with the system's view of the site's rows, whoever triggers it.
    """
    now = now or clock.now()
    with scoping.unrestricted():
        site = db.session.get(Canteen, site_id)
        if site is None:
            raise NotFound(f"Site {site_id} not found.", code="site_not_found")
        if not site.active or day > business_date(now):
            return []
        status = _day_of(site, day, now)
        raised: list[Deviation] = []
        if status.open and now >= status.checklist_deadline:
            raised += _check_checklist(status)
        for slot in status.slots:
            if now >= slot.deadline and not slot.not_served:
                raised += _check_samples(status, slot)
        if now >= status.readings_deadline:
            for device in status.devices:
                if device.due:
                    raised += _check_readings(status, device)
        return raised


def check_all_sites(day: date, *, now: datetime | None = None) -> dict[int, list[Deviation]]:
    """`check_site_day` for every active site of the city (the scheduled run); newly raised by site."""
    with scoping.unrestricted():
        site_ids = list(db.session.scalars(sa.select(Canteen.id).where(Canteen.active.is_(True)).order_by(Canteen.id)))
    return {site_id: check_site_day(site_id, day, now=now) for site_id in site_ids}


def run_due_checks(site_id: int, day: date, *, now: datetime | None = None) -> list[Deviation]:
    """The checks the daily screen runs when it is opened: the day shown and the day before (whose
    readings deadline usually passes after everyone has gone home). Only a site the caller sees."""
    site = get_site(site_id)
    return check_site_day(site.id, day - timedelta(days=1), now=now) + check_site_day(site.id, day, now=now)


def _check_checklist(status: DailyStatus) -> list[Deviation]:
    raised = []
    site, day, deadline = status.site, status.day, status.checklist_deadline
    missing_items = status.checklist_missing
    missing_staff = [{"id": person.id, "name": person.name} for person in status.unchecked_staff]
    no_staff = not status.staff_checks
    if missing_items or missing_staff or no_staff:
        parts = []
        if missing_items:
            parts.append(f"items not answered: {', '.join(missing_items)}")
        if missing_staff:
            parts.append(f"no morning check of {', '.join(p['name'] for p in missing_staff)}")
        if no_staff:
            parts.append("no staff registered for the morning check")
        created = _raise(
            site=site,
            kind=rules.CHECKLIST_MISSING,
            occurred_at=deadline,
            found=f"The checklist of {day.isoformat()} was not complete by {_shown(deadline)}: {'; '.join(parts)}.",
            source_ref=f"checklist:{site.id}:{day.isoformat()}",
            details={
                "day": day.isoformat(),
                "deadline": deadline.isoformat(),
                "missing_items": missing_items,
                "missing_staff": missing_staff,
                "no_staff": no_staff,
            },
        )
        raised += [created[0]] if created[1] else []
    failed = status.checklist_failed
    if failed:
        notes = {item.item.key: item.entry.note for item in status.items if item.item.key in failed and item.entry}
        created = _raise(
            site=site,
            kind=rules.CHECKLIST_FAILED,
            occurred_at=deadline,
            found=f"Checklist items of {day.isoformat()} still failed at {_shown(deadline)}: {', '.join(failed)}.",
            source_ref=f"checklist:{site.id}:{day.isoformat()}",
            details={"day": day.isoformat(), "deadline": deadline.isoformat(), "failed_items": failed, "notes": notes},
        )
        raised += [created[0]] if created[1] else []
    return raised


def _check_samples(status: DailyStatus, slot: SlotStatus) -> list[Deviation]:
    site, day = status.site, status.day
    nothing = slot.expected and not slot.dishes
    if not nothing and not slot.missing:
        return []
    if nothing:
        found = (
            f"Nothing was declared served and no sample retained for {slot.slot} of {day.isoformat()} "
            f"by {_shown(slot.deadline)}."
        )
    else:
        found = (
            f"No retained sample by {_shown(slot.deadline)} for {slot.slot} of {day.isoformat()}: "
            f"{', '.join(slot.missing)}."
        )
    deviation, created = _raise(
        site=site,
        kind=rules.SAMPLE_MISSING,
        occurred_at=slot.deadline,
        found=found,
        source_ref=f"samples:{site.id}:{day.isoformat()}:{slot.slot}",
        details={
            "day": day.isoformat(),
            "slot": slot.slot,
            "deadline": slot.deadline.isoformat(),
            "dishes": slot.missing,
            "nothing_declared": nothing,
        },
    )
    return [deviation] if created else []


def _check_readings(status: DailyStatus, device: DeviceStatus) -> list[Deviation]:
    site, day, deadline = status.site, status.day, status.readings_deadline
    deviation, created = _raise(
        site=site,
        kind=rules.READINGS_MISSING,
        occurred_at=deadline,
        found=(
            f"{device.device.name}: {len(device.readings)} of {device.required} readings on {day.isoformat()} "
            f"by {_shown(deadline)}."
        ),
        source_ref=f"readings:{device.device.id}:{day.isoformat()}",
        details={
            "day": day.isoformat(),
            "deadline": deadline.isoformat(),
            "device_id": device.device.id,
            "device_name": device.device.name,
            "readings": len(device.readings),
            "required": device.required,
        },
    )
    return [deviation] if created else []


# --- deviations ------------------------------------------------------------------------------------------
def raise_deviation(
    *,
    site_id: int,
    kind: str,
    occurred_at: datetime,
    found: str,
    source_ref: str | None = None,
    details: dict[str, Any] | None = None,
) -> Deviation:
    """Raise a deviation for a rule that found a breach at a site — this domain's rules, and the
    kitchen's delivery rules and inspections through this function.

    `kind` is one of `rules.DEVIATION_KINDS`; `found` says what was found (plain text, at most
    1000 characters); `source_ref` names what the rule looked at ("delivery_batch:12"), and a
    deviation of the same kind and source already raised is returned instead of a second one, so
    a rule checked again never duplicates. `details` is kept as JSON for the pages to describe it.
    The caller has decided the breach: the site is not checked against the caller's scope. Only
    flushes; the caller's transaction commits.
    """
    with scoping.unrestricted():
        site = db.session.get(Canteen, site_id)
    if site is None:
        raise NotFound(f"Site {site_id} not found.", code="site_not_found")
    return _raise(site=site, kind=kind, occurred_at=occurred_at, found=found, source_ref=source_ref, details=details)[0]


def _raise(
    *,
    site: Canteen,
    kind: str,
    occurred_at: datetime,
    found: str,
    source_ref: str | None,
    details: dict[str, Any] | None,
    raised_by_id: int | None = None,
) -> tuple[Deviation, bool]:
    """The deviation and whether it was raised now (False: it existed for this kind and source)."""
    if kind not in rules.DEVIATION_KINDS:
        raise field_error("kind", f"Must be one of: {', '.join(rules.DEVIATION_KINDS)}.")
    found = _text(found, "found", max_length=1000)
    if source_ref is not None and (not isinstance(source_ref, str) or not 0 < len(source_ref) <= 120):
        raise field_error("source_ref", "1 to 120 characters.")
    occurred_at = _aware(occurred_at).astimezone(UTC)
    if source_ref is not None:
        # raised already (the common case of a rule checked again): no lock needed to say so;
        # otherwise look again holding the site's lock, so two checks at once raise it once
        existing = _raised(kind, source_ref)
        if existing is None:
            _lock_site(site.id)
            existing = _raised(kind, source_ref)
        if existing is not None:
            return existing, False
    now = utcnow()
    deviation = Deviation(
        site_id=site.id,
        district_id=site.district_id,
        kind=kind,
        day=business_date(occurred_at),
        occurred_at=occurred_at,
        found=found,
        details=details or {},
        source_ref=source_ref,
        status=rules.OPEN,
        raised_by_id=raised_by_id,
        raised_at=now,
    )
    db.session.add(deviation)
    db.session.flush()
    _event(deviation, "raised", user_id=raised_by_id, at=now)
    return deviation, True


def _raised(kind: str, source_ref: str) -> Deviation | None:
    with scoping.unrestricted():
        return db.session.scalars(
            sa.select(Deviation).where(Deviation.kind == kind, Deviation.source_ref == source_ref)
        ).one_or_none()


def _event(deviation: Deviation, event: str, *, user_id: int | None, at: datetime, **values: Any) -> DeviationEvent:
    row = DeviationEvent(
        deviation=deviation,
        site_id=deviation.site_id,
        district_id=deviation.district_id,
        event=event,
        user_id=user_id,
        at=at,
        **values,
    )
    db.session.add(row)
    db.session.flush()
    return row


def report_deviation(*, site_id: int, kind: str, found: str, occurred_at: datetime | None = None) -> Deviation:
    """A person reports a breach they saw at a site: its staff, an officer of its district, or
    admin. Kinds a person reports: `reported`, `inspection_finding`, `delivery_temperature`,
    `delivery_time` (the rules' own kinds are raised by the rules only). When: not in the future,
    default now."""
    scope = scoping.require_role(*REPORTERS)
    site = get_site(site_id)
    if kind not in rules.REPORTABLE_KINDS:
        raise field_error("kind", f"Must be one of: {', '.join(rules.REPORTABLE_KINDS)}.")
    occurred_at = _moment(occurred_at, "occurred_at")
    return _raise(
        site=site,
        kind=kind,
        occurred_at=occurred_at,
        found=found,
        source_ref=None,
        details={},
        raised_by_id=scope.user_id,
    )[0]


def list_deviations(
    *,
    site_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    unverified: bool | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[Deviation]:
    """Deviations at the sites the caller sees, newest first; `unverified` keeps those still open,
    acknowledged or with an action recorded."""
    statement = (
        sa.select(Deviation)
        .options(selectinload(Deviation.events), selectinload(Deviation.site))
        .order_by(Deviation.occurred_at.desc(), Deviation.id.desc())
    )
    filters = {Deviation.site_id: site_id, Deviation.status: status, Deviation.kind: kind}
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(column == value)
    if unverified is not None:
        condition = Deviation.status.in_(rules.UNVERIFIED_STATUSES)
        statement = statement.where(condition if unverified else ~condition)
    if date_from is not None:
        statement = statement.where(Deviation.day >= date_from)
    if date_to is not None:
        statement = statement.where(Deviation.day <= date_to)
    return paginate(statement, page=page, page_size=page_size)


def get_deviation(deviation_id: int) -> Deviation:
    """One deviation inside the caller's scope, with its events, else 404 `deviation_not_found`."""
    return scoping.get_scoped(Deviation, deviation_id)


def _deviation_for_change(deviation_id: int, *allowed: str) -> Deviation:
    """The deviation, locked against a concurrent step (PostgreSQL row lock; SQLite has one writer),
    in one of the `allowed` statuses, else 409 `deviation_wrong_status`."""
    deviation = get_deviation(deviation_id)
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(Deviation.id).where(Deviation.id == deviation.id).with_for_update())
        db.session.refresh(deviation)
    if deviation.status not in allowed:
        message = f"Not possible while the deviation is {deviation.status}."
        raise Conflict(message, code="deviation_wrong_status", errors={"status": [message]})
    return deviation


def acknowledge_deviation(deviation_id: int) -> Deviation:
    """Staff of the site (and admin) acknowledge an open deviation: they know and are on it."""
    scope = scoping.require_role(*RECORDERS)
    deviation = _deviation_for_change(deviation_id, rules.OPEN)
    now = utcnow()
    deviation.status = rules.ACKNOWLEDGED
    deviation.acknowledged_at, deviation.acknowledged_by_id = now, scope.user_id
    _event(deviation, "acknowledged", user_id=scope.user_id, at=now)
    return deviation


def _action_values(cause: str, action_taken: str, affected_food: str) -> dict[str, str]:
    values, errors = {}, {}
    for name, value in (("cause", cause), ("action_taken", action_taken), ("affected_food", affected_food)):
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            errors[name] = ["Required."]
        elif len(text) > 1000:
            errors[name] = ["At most 1000 characters."]
        values[name] = text
    if errors:
        raise ValidationFailed(errors=errors)
    return values


def _next_revision(deviation: Deviation) -> int:
    with scoping.unrestricted():
        highest = db.session.scalar(
            sa.select(sa.func.max(DeviationEvent.revision)).where(DeviationEvent.deviation_id == deviation.id)
        )
    return (highest or 0) + 1


def record_deviation_action(deviation_id: int, *, cause: str, action_taken: str, affected_food: str) -> Deviation:
    """Staff of the site (and admin) record what caused an acknowledged deviation, what was done,
    and what happened to the affected food (e.g. "all 3 kg discarded", "none affected"): the first
    revision of the action, or the next one after an officer sent it back."""
    scope = scoping.require_role(*RECORDERS)
    values = _action_values(cause, action_taken, affected_food)
    deviation = _deviation_for_change(deviation_id, rules.ACKNOWLEDGED)
    now = utcnow()
    deviation.status = rules.ACTION_RECORDED
    _event(deviation, "action_recorded", user_id=scope.user_id, at=now, revision=_next_revision(deviation), **values)
    return deviation


def correct_deviation_action(
    deviation_id: int, *, cause: str, action_taken: str, affected_food: str, reason: str
) -> Deviation:
    """Staff of the site (and admin) correct the recorded action before it is verified: a new
    revision with the whole action and why it was corrected; the earlier revisions are kept."""
    scope = scoping.require_role(*RECORDERS)
    values = _action_values(cause, action_taken, affected_food)
    reason = _text(reason, "reason", max_length=500)
    deviation = _deviation_for_change(deviation_id, rules.ACTION_RECORDED)
    _event(
        deviation,
        "action_corrected",
        user_id=scope.user_id,
        at=utcnow(),
        revision=_next_revision(deviation),
        note=reason,
        **values,
    )
    return deviation


def verify_deviation(deviation_id: int, *, note: str = "") -> Deviation:
    """An officer of the site's district (or admin) verifies the action recorded: the deviation is
    closed. Nothing about it changes afterwards."""
    scope = scoping.require_role(*VERIFIERS)
    note = _text(note, "note", max_length=1000, required=False)
    deviation = _deviation_for_change(deviation_id, rules.ACTION_RECORDED)
    now = utcnow()
    deviation.status = rules.VERIFIED
    deviation.verified_at, deviation.verified_by_id = now, scope.user_id
    _event(deviation, "verified", user_id=scope.user_id, at=now, note=note)
    return deviation


def return_deviation(deviation_id: int, *, reason: str) -> Deviation:
    """An officer of the site's district (or admin) sends the recorded action back: not enough,
    with the reason. The deviation is acknowledged again and waits for a new revision of the action."""
    scope = scoping.require_role(*VERIFIERS)
    reason = _text(reason, "reason", max_length=1000)
    deviation = _deviation_for_change(deviation_id, rules.ACTION_RECORDED)
    deviation.status = rules.ACKNOWLEDGED
    _event(deviation, "returned", user_id=scope.user_id, at=utcnow(), note=reason)
    return deviation


# --- compliance at a glance ---------------------------------------------------------------------------------
@dataclass
class SiteCompliance:
    """One site's food-safety state for the officers' overview."""

    site: Canteen
    open: int = 0  # raised, not yet acknowledged
    acknowledged: int = 0
    action_recorded: int = 0  # waiting for an officer's verification
    oldest_unverified: date | None = None
    certificates_missing_or_expired: int = 0
    certificates_expiring: int = 0

    @property
    def unverified(self) -> int:
        return self.open + self.acknowledged + self.action_recorded

    @property
    def compliant(self) -> bool:
        """No deviation waiting and every working staff member holds a valid certificate."""
        return self.unverified == 0 and self.certificates_missing_or_expired == 0


def site_compliance(*, district_id: int | None = None, on: date | None = None) -> list[SiteCompliance]:
    """The sites the caller sees with their unverified deviations by status and their certificate
    problems on `on` (default today); sites that are not compliant first, then by code."""
    on = on or clock.today()
    sites = list_sites(district_id=district_id)
    by_site = {site.id: SiteCompliance(site) for site in sites}
    if not by_site:
        return []
    rows = db.session.execute(
        sa.select(Deviation.site_id, Deviation.status, sa.func.count(), sa.func.min(Deviation.day))
        .where(Deviation.site_id.in_(by_site), Deviation.status.in_(rules.UNVERIFIED_STATUSES))
        .group_by(Deviation.site_id, Deviation.status)
    )
    for site_id, status, count, oldest in rows:
        entry = by_site[site_id]
        setattr(entry, status, count)
        if entry.oldest_unverified is None or oldest < entry.oldest_unverified:
            entry.oldest_unverified = oldest
    for alert in list_certificate_alerts(on=on):
        entry = by_site.get(alert.staff.site_id)
        if entry is None:
            continue
        if alert.status == CERTIFICATE_EXPIRING:
            entry.certificates_expiring += 1
        else:
            entry.certificates_missing_or_expired += 1
    return sorted(by_site.values(), key=lambda e: (e.compliant, e.site.district_id, e.site.code))
