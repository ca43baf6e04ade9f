"""Recording meals at the counter: who may record, what is refused, how the subsidy is decided
and stored, one valid meal per resident, date and slot, idempotent retries, offline batches,
voids, frozen months and the daily cash-up. DESIGN.md "The money path, exactly" pins the rules.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from marshmallow import ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import selectinload

from canteen.auth.models import User
from canteen.core import clock, scoping
from canteen.core.audit_log import record_event
from canteen.core.db import advisory_lock, utcnow
from canteen.core.errors import CanteenError, Conflict, Forbidden, NotFound, ValidationFailed, field_error
from canteen.core.pagination import Page, paginate
from canteen.extensions import db
from canteen.meals.models import VALID, VOID, FrozenMonth, IdempotencyKey, MealRecord
from canteen.org.models import Canteen
from canteen.residents import imports as resident_imports
from canteen.residents import service as resident_service
from canteen.residents.models import Resident
from canteen.subsidies import service as subsidy_service
from canteen.subsidies.models import SubsidyPolicy

RECORDERS = (scoping.CANTEEN_STAFF,)  # and admin
VOIDERS = (scoping.CANTEEN_STAFF, scoping.DISTRICT_OFFICER)  # and admin
BATCH_LIMIT = 500

OUTSIDE_OPENING_HOURS = "outside_opening_hours"
NOT_REGISTERED_FOR_DELIVERY = "not_registered_for_delivery"
COLLECTED_BY_PROXY = "collected_by_proxy"


# --- reads -------------------------------------------------------------------------------------
def get_meal(meal_id: int) -> MealRecord:
    """One meal inside the caller's scope (staff: their canteen; officers: their district), else 404."""
    return scoping.get_scoped(MealRecord, meal_id, code="meal_not_found")


def list_meals(
    *,
    canteen_id: int | None = None,
    resident_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    slot: str | None = None,
    mode: str | None = None,
    status: str | None = None,
    recorded_by_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[MealRecord]:
    """Meals the caller can see (staff: their canteen's; officers: their district's; admin: all;
    kitchen staff: none), newest first, filtered."""
    statement = sa.select(MealRecord).order_by(MealRecord.served_on.desc(), MealRecord.id.desc())
    filters = {
        MealRecord.canteen_id: canteen_id,
        MealRecord.resident_id: resident_id,
        MealRecord.slot: slot,
        MealRecord.mode: mode,
        MealRecord.status: status,
        MealRecord.recorded_by_id: recorded_by_id,
    }
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(column == value)
    if date_from is not None:
        statement = statement.where(MealRecord.served_on >= date_from)
    if date_to is not None:
        statement = statement.where(MealRecord.served_on <= date_to)
    return paginate(statement, page=page, page_size=page_size)


# --- frozen months -----------------------------------------------------------------------------
def month_of(day: date) -> str:
    """The settlement month ("YYYY-MM") a business date belongs to: meals freeze by month."""
    return day.strftime("%Y-%m")


def is_month_frozen(canteen_id: int, day: date) -> bool:
    """Whether the canteen's month of `day` is closed to new meals and voids (its settlement is
    submitted or approved)."""
    with scoping.unrestricted():
        state = db.session.scalar(
            sa.select(FrozenMonth.state).where(FrozenMonth.canteen_id == canteen_id, FrozenMonth.month == month_of(day))
        )
    return state in ("submitted", "approved")


def freeze_month(canteen_id: int, month: str, *, approved: bool = False) -> FrozenMonth:
    """Close a canteen's month to new meals and voids: while its settlement is submitted, and for
    good once `approved`. The settlements domain decides when; an approved month never reopens
    (409 `month_frozen`)."""
    frozen = _month_row(canteen_id, month)
    if frozen is not None and frozen.state == "approved":
        raise Conflict(f"{month} is approved and closed for good.", code="month_frozen")
    state = "approved" if approved else "submitted"
    if frozen is None:
        frozen = FrozenMonth(canteen_id=canteen_id, month=month, state=state)
        db.session.add(frozen)
    frozen.state, frozen.changed_at = state, utcnow()
    frozen.changed_by_id = scoping.current_scope().user_id
    db.session.flush()
    return frozen


def release_month(canteen_id: int, month: str) -> FrozenMonth | None:
    """Reopen a submitted month (its settlement was rejected); an approved month never reopens
    (409 `month_frozen`)."""
    frozen = _month_row(canteen_id, month)
    if frozen is None or frozen.state == "released":
        return frozen
    if frozen.state == "approved":
        raise Conflict(f"{month} is approved and closed for good.", code="month_frozen")
    frozen.state, frozen.changed_at = "released", utcnow()
    frozen.changed_by_id = scoping.current_scope().user_id
    db.session.flush()
    return frozen


def _month_row(canteen_id: int, month: str) -> FrozenMonth | None:
    # exclusive: no meal of this month is being recorded or voided while its state changes
    advisory_lock(db.session, _month_lock_name(canteen_id, month))
    with scoping.unrestricted():
        return db.session.scalars(
            sa.select(FrozenMonth).where(FrozenMonth.canteen_id == canteen_id, FrozenMonth.month == month)
        ).one_or_none()


def _month_lock_name(canteen_id: int, month: str) -> str:
    return f"meals:month:{canteen_id}:{month}"


def _refuse_frozen_month(canteen_id: int, day: date) -> None:
    # shared: counters never wait for each other, only for a settlement changing the month
    advisory_lock(db.session, _month_lock_name(canteen_id, month_of(day)), shared=True)
    if is_month_frozen(canteen_id, day):
        message = f"Meals of {month_of(day)} at this canteen are settled; corrections there are adjustments."
        raise Conflict(message, code="month_frozen", errors={"served_on": [message]})


# --- recording -----------------------------------------------------------------------------------
class ResidentMealUsage:
    """The resident's earlier valid meals that a rule subsidised (DESIGN.md: "earlier" is a lower
    meal id; with the resident's row locked, that is every meal already recorded), read once for
    the month of the meal — across every canteen, whoever asks."""

    def __init__(self, resident_id: int, day: date) -> None:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        with scoping.unrestricted():
            rows = db.session.execute(
                sa.select(MealRecord.rule_id, MealRecord.served_on).where(
                    MealRecord.resident_id == resident_id,
                    MealRecord.served_on >= first,
                    MealRecord.served_on < following,
                    MealRecord.status == VALID,
                    MealRecord.subsidy_fen > 0,
                )
            ).all()
        self._by_day = Counter((rule_id, served_on) for rule_id, served_on in rows)
        self._by_month = Counter(rule_id for rule_id, _ in rows)

    def subsidised_meals(self, rule_id: int, *, day: date) -> int:
        return self._by_day[(rule_id, day)]

    def subsidised_meals_in_month(self, rule_id: int, *, month_of: date) -> int:
        return self._by_month[rule_id]


def record_meal(
    *,
    canteen_id: int,
    served_on: date,
    slot: str,
    mode: str,
    verification: str,
    price_fen: int | None = None,
    resident_id: int | None = None,
    card_no: str | None = None,
    served_at: datetime | None = None,
    price_reason: str = "",
    payment_method: str = "cash",
    attest_reason: str = "",
    collected_by: str = "",
    idempotency_key: str | None = None,
) -> MealRecord:
    """Canteen staff of the canteen (and admin) record one meal; the subsidy is decided here, once.

    Refused, writing nothing: a date in the future (422 `served_on_in_future`), the canteen
    closed that day (422 `canteen_closed`), its month frozen by a settlement (409
    `month_frozen`), the resident not active on the date (422 `resident_inactive`), a second
    valid meal of the resident for the date and slot at any canteen (409
    `meal_already_recorded`, enforced by a partial unique index, not by a prior read). Staff
    may serve any active resident of the city (residents eat where they like); the canteen's
    district policy pays. Caps are not refusals: the meal is at full price with a warning.
    Warned, not refused: served outside the slot's opening hours, delivery to a resident not
    registered for delivery, a meal collected by someone else.
    """
    scope = scoping.require_role(*RECORDERS)
    canteen = scoping.get_scoped(Canteen, canteen_id, code="canteen_not_found")
    today = clock.today()
    if served_on > today:
        raise field_error("served_on", "A meal cannot be recorded for a future date.", code="served_on_in_future")
    if served_at is None and served_on == today:
        served_at = clock.now()
    if served_at is not None:
        served_at = _checked_served_at(served_at, served_on)
    if price_fen is None:
        # the menu's price becomes the default when menus exist; until then the counter says it
        raise field_error("price_fen", "The meal's price is required.")
    if verification == "staff_attested" and not attest_reason.strip():
        raise field_error("attest_reason", "Say why staff vouch for the resident instead of a card or ID.")
    if not canteen.active or canteen.is_closed_on(served_on):
        message = f"{canteen.name} is closed on {served_on.isoformat()}."
        raise ValidationFailed(message, code="canteen_closed", errors={"served_on": [message]})
    _refuse_frozen_month(canteen.id, served_on)
    resident = _locked_resident(resident_id=resident_id, card_no=card_no, scope=scope)
    if not resident_service.is_active_on(resident, served_on):
        entry = resident_service.status_entry_on(resident, served_on)
        status = entry.status if entry else "not yet registered"
        message = f"The resident is not active on {served_on.isoformat()} ({status})."
        raise ValidationFailed(message, code="resident_inactive", errors={"resident_id": [message]})

    decision = subsidy_service.best_rule(
        resident=resident,
        canteen=canteen,
        day=served_on,
        slot=slot,
        price_fen=price_fen,
        usage=ResidentMealUsage(resident.id, served_on),
    )
    warnings = _warnings(canteen, resident, slot=slot, mode=mode, served_at=served_at, collected_by=collected_by)
    values = {
        "resident_id": resident.id,
        "resident_name": resident.name,
        "canteen_id": canteen.id,
        "district_id": canteen.district_id,
        "served_on": served_on,
        "served_at": served_at,
        "slot": slot,
        "mode": mode,
        "price_fen": price_fen,
        "price_reason": price_reason.strip(),
        "subsidy_fen": decision.subsidy_fen,
        "copay_fen": decision.copay_fen,
        "payment_method": payment_method,
        "rule_id": decision.rule.id if decision.rule else None,
        "policy_id": decision.rule.policy_id if decision.rule else None,
        "subsidy_category": decision.category,
        "verification": verification,
        "attest_reason": attest_reason.strip(),
        "collected_by": collected_by.strip(),
        "warnings": warnings + decision.warnings,
        "status": VALID,
        "idempotency_key": idempotency_key,
        "recorded_by_id": scope.user_id,
        "recorded_at": utcnow(),
    }
    meal = _insert_unless_recorded(values)
    if meal is None:
        raise _already_recorded(resident.id, served_on, slot, scope)
    record_event(
        action="insert",
        entity="meals",
        entity_id=meal.id,
        district_id=canteen.district_id,
        canteen_id=canteen.id,
        details={k: v for k, v in values.items() if k not in ("warnings", "idempotency_key")},
    )
    return meal


def _checked_served_at(served_at: datetime, served_on: date) -> datetime:
    if served_at.tzinfo is None:  # a counter's local clock: Asia/Shanghai
        served_at = served_at.replace(tzinfo=clock.TIME_ZONE)
    local = served_at.astimezone(clock.TIME_ZONE)
    if local.date() != served_on:
        raise field_error("served_at", f"Not on {served_on.isoformat()} (Asia/Shanghai).")
    if served_at > clock.now() + timedelta(minutes=5):  # a counter clock a little fast is tolerated
        raise field_error("served_at", "In the future.", code="served_on_in_future")
    return served_at


def _locked_resident(*, resident_id: int | None, card_no: str | None, scope: scoping.Scope) -> Resident:
    """The resident, their row locked until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite
    is already one writer at a time), so their meals are decided one after the other.

    Read without the caller's scope: staff serve residents of any district. A resident outside
    the caller's district who is not active now is not found, as in the counter look-up."""
    if (resident_id is None) == (card_no is None):
        message = "Give exactly one of resident_id and card_no."
        raise ValidationFailed(message, errors={"resident_id": [message]})
    if card_no is not None:
        resident_id = resident_service.lookup_resident(card_no=card_no).id
    with scoping.unrestricted():
        # the status history is read whole, whoever asks: it decides `resident_inactive`
        resident = db.session.scalars(
            sa.select(Resident)
            .where(Resident.id == resident_id)
            .options(selectinload(Resident.status_changes))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
    _refuse_unservable(resident, scope)
    return resident


def _refuse_unservable(resident: Resident | None, scope: scoping.Scope) -> None:
    """404 `resident_not_found` for no such resident, and — as in the counter look-up — for a
    resident of another district who is not active now (staff serve any active resident)."""
    in_district = scope.unrestricted or (resident is not None and resident.district_id == scope.district_id)
    if resident is None or (not in_district and resident.status != "active"):
        raise NotFound("No resident found.", code="resident_not_found")


def _warnings(
    canteen: Canteen, resident: Resident, *, slot: str, mode: str, served_at: datetime | None, collected_by: str
) -> list[dict[str, str]]:
    warnings = []
    if served_at is not None and not _within_opening_hours(canteen, slot, served_at):
        hours = canteen.opening_hours.get(slot)
        when = f"{hours[0]}–{hours[1]}" if hours else "not served here"
        warnings.append(
            {
                "code": OUTSIDE_OPENING_HOURS,
                "message": f"Served at {served_at.astimezone(clock.TIME_ZONE):%H:%M}, outside {slot} hours ({when}).",
            }
        )
    if mode == "delivery" and not resident.delivery_registered:
        warnings.append(
            {"code": NOT_REGISTERED_FOR_DELIVERY, "message": "The resident is not registered for home delivery."}
        )
    if collected_by.strip():
        warnings.append(
            {"code": COLLECTED_BY_PROXY, "message": f"Collected on the resident's behalf by {collected_by.strip()}."}
        )
    return warnings


def _within_opening_hours(canteen: Canteen, slot: str, served_at: datetime) -> bool:
    hours = canteen.opening_hours.get(slot)
    if not hours:
        return False
    local = served_at.astimezone(clock.TIME_ZONE).time()
    return time.fromisoformat(hours[0]) <= local <= time.fromisoformat(hours[1])


def _upsert_insert(model):
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL's and SQLite's)."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _insert_unless_recorded(values: dict[str, Any]) -> MealRecord | None:
    """INSERT … ON CONFLICT DO NOTHING … RETURNING against the partial unique index: the database,
    not a prior read, decides which of two racing counters records the meal (check-then-insert
    under READ COMMITTED lets both through)."""
    statement = (
        _upsert_insert(MealRecord)
        .values(**values)
        .on_conflict_do_nothing(
            # a literal, never a bound parameter: once psycopg prepares the statement and PostgreSQL
            # plans it generically, "status = $1" no longer matches the partial index
            index_elements=["resident_id", "served_on", "slot"],
            index_where=sa.text("status = 'valid'"),
        )
        .returning(MealRecord)
    )
    return db.session.scalars(statement).one_or_none()


def _already_recorded(resident_id: int, served_on: date, slot: str, scope: scoping.Scope) -> Conflict:
    existing = _valid_meal_for(resident_id, served_on, slot)
    with scoping.unrestricted():
        canteen_name = existing.canteen.name if existing else ""
    details: dict[str, Any] = {"canteen_name": canteen_name, "slot": slot}
    # the meal's id only for a caller who may open it (DESIGN.md "API shapes")
    if existing is not None and _can_see(existing, scope):
        details = {"meal_id": existing.id, **details}
    message = f"This resident's {slot} on {served_on.isoformat()} is already recorded at {canteen_name}."
    return Conflict(message, code="meal_already_recorded", errors={"slot": [message]}, details=details)


def _valid_meal_for(resident_id: int, served_on: date, slot: str) -> MealRecord | None:
    """The resident's valid meal for the date and slot at any canteen, whoever asks."""
    with scoping.unrestricted():
        return db.session.scalars(
            sa.select(MealRecord).where(
                MealRecord.resident_id == resident_id,
                MealRecord.served_on == served_on,
                MealRecord.slot == slot,
                MealRecord.status == VALID,
            )
        ).one_or_none()


def _can_see(meal: MealRecord, scope: scoping.Scope) -> bool:
    if scope.unrestricted:
        return True
    if scope.role == scoping.DISTRICT_OFFICER:
        return meal.district_id == scope.district_id
    return scope.role == scoping.CANTEEN_STAFF and meal.canteen_id in scope.canteen_ids


# --- idempotency ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """What a recording request answered: HTTP status, JSON body, and whether it was replayed."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(fields: dict[str, Any]) -> str:
    """The fingerprint of a request body (canonical JSON of its fields, dates as ISO text)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_meal_once(key: str, fields: dict[str, Any], *, render: Callable[[MealRecord], dict[str, Any]]) -> Answer:
    """Record a meal under the caller's `Idempotency-Key`: the first request records it and keeps
    its answer; the same key with the same body replays that answer and writes nothing; the same
    key with another body is 422 `idempotency_key_reused`. A request still in flight with the
    key is waited for (409 `idempotency_in_flight` past the lock timeout). A refused request
    keeps no key (its transaction rolls back), so a retry is evaluated again."""
    scope = scoping.require_role(*RECORDERS)
    if scope.user_id is None:
        raise Forbidden("Meals are recorded by a person's account.")
    fingerprint = request_hash(fields)
    stored = _claim_key(scope.user_id, key, fingerprint)
    if stored is not None:
        return stored
    meal = record_meal(**fields, idempotency_key=key)
    body = render(meal)
    db.session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.user_id == scope.user_id, IdempotencyKey.key == key)
        .values(response_status=201, response_body=body, meal_id=meal.id)
    )
    return Answer(201, body)


def _claim_key(user_id: int, key: str, fingerprint: str) -> Answer | None:
    """Insert the key, or answer from the stored one. On PostgreSQL the insert waits while another
    transaction holds the same key uncommitted, and then sees its outcome: committed (replay) or
    rolled back (the key is free again)."""
    dialect = db.session.get_bind().dialect.name
    statement = (
        _upsert_insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=fingerprint, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.id)
    )
    timeout_ms = int(current_app.config["MEAL_IDEMPOTENCY_WAIT_MS"])
    try:
        if dialect == "postgresql":
            db.session.execute(sa.select(sa.func.set_config("lock_timeout", f"{timeout_ms}ms", True)))
        claimed = db.session.execute(statement).scalar_one_or_none()
        if dialect == "postgresql":
            db.session.execute(sa.select(sa.func.set_config("lock_timeout", "0", True)))
    except OperationalError as error:
        if "lock timeout" not in str(error.orig) and "lock_timeout" not in str(error.orig):
            raise
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_in_flight",
        ) from error
    if claimed is not None:
        return None
    stored = db.session.execute(
        sa.select(IdempotencyKey.request_hash, IdempotencyKey.response_status, IdempotencyKey.response_body).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
    ).one()
    if stored.request_hash != fingerprint:
        raise ValidationFailed(
            "This Idempotency-Key was used for a different request; use a new key for a new meal.",
            code="idempotency_key_reused",
            errors={"idempotency_key": ["Used for a different request."]},
        )
    if stored.response_status is None:  # the same request, earlier in this very transaction (a batch)
        raise Conflict("This Idempotency-Key is still being processed.", code="idempotency_in_flight")
    return Answer(stored.response_status, stored.response_body, replayed=True)


def purge_idempotency_keys(*, now: datetime | None = None) -> int:
    """Delete keys older than `MEAL_IDEMPOTENCY_DAYS` (at least 7: offline tablets retry days
    later); the meals keep their key. Answers how many were deleted."""
    days = max(7, int(current_app.config["MEAL_IDEMPOTENCY_DAYS"]))
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = db.session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return result.rowcount or 0


# --- offline batches -------------------------------------------------------------------------------
@dataclass
class BatchResult:
    idempotency_key: str | None
    status: str  # created | replayed | refused
    meal: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def record_meal_batch(
    items: Iterable[Any],
    *,
    load: Callable[[dict[str, Any]], dict[str, Any]],
    render: Callable[[MealRecord], dict[str, Any]],
) -> list[BatchResult]:
    """Record up to 500 meals a counter queued while offline, each under its own idempotency key
    and in its own savepoint: one refused item does not block the others, and a retried batch
    creates nothing twice (its items replay). `load` validates an item's fields (raising
    marshmallow's ValidationError), `render` gives a meal's answer."""
    scoping.require_role(*RECORDERS)
    items = list(items)
    if len(items) > BATCH_LIMIT:
        raise field_error("items", f"At most {BATCH_LIMIT} meals per batch.", code="batch_too_large")
    results = []
    for item in items:
        key = item.get("idempotency_key") if isinstance(item, dict) else None
        try:
            fields = _batch_item_fields(item, load)
            with db.session.begin_nested():
                answer = record_meal_once(key, fields, render=render)
        except CanteenError as error:
            results.append(BatchResult(key if isinstance(key, str) else None, "refused", error=error.to_dict()))
            continue
        results.append(BatchResult(key, "replayed" if answer.replayed else "created", meal=answer.body))
    return results


def _batch_item_fields(item: Any, load: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValidationFailed("Each item is an object.", errors={"_schema": ["Each item is an object."]})
    key = item.get("idempotency_key")
    if not isinstance(key, str) or not valid_key(key):
        message = "Each item needs its own idempotency_key (1–255 visible ASCII characters)."
        raise ValidationFailed(message, code="idempotency_key_missing", errors={"idempotency_key": [message]})
    try:
        return load({k: v for k, v in item.items() if k != "idempotency_key"})
    except ValidationError as error:
        raise ValidationFailed(errors=_messages(error.messages)) from error


def valid_key(key: str) -> bool:
    """An Idempotency-Key is 1–255 visible ASCII characters (a UUID, typically)."""
    return 0 < len(key) <= 255 and all(33 <= ord(c) <= 126 for c in key)


def _messages(messages: Any) -> dict[str, list[str]]:
    if isinstance(messages, dict):
        return {str(k): v if isinstance(v, list) else [str(v)] for k, v in messages.items()}
    return {"_schema": [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]}


# --- voids ---------------------------------------------------------------------------------------
def void_meal(meal_id: int, *, reason: str) -> MealRecord:
    """Canteen staff of the meal's canteen, officers of its district and admin void a meal with a
    reason. The record stays, marked void with who and when; it no longer counts towards
    caps, and later meals are not re-priced. Refused for a meal already void (409
    `meal_already_void`) and in a month frozen by a settlement (409 `month_frozen`: corrections
    there are adjustments)."""
    scope = scoping.require_role(*VOIDERS)
    if not reason.strip():
        raise field_error("reason", "Say why the meal is void.")
    get_meal(meal_id)  # 404 outside the caller's scope
    meal = db.session.scalars(
        sa.select(MealRecord)
        .where(MealRecord.id == meal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if meal.status == VOID:
        raise Conflict("The meal is already void.", code="meal_already_void")
    _refuse_frozen_month(meal.canteen_id, meal.served_on)
    meal.status = VOID
    meal.voided_at = utcnow()
    meal.voided_by_id = scope.user_id
    meal.void_reason = reason.strip()
    db.session.flush()
    return meal


# --- cash-up ---------------------------------------------------------------------------------------
@dataclass
class AccountCashUp:
    """One counter account's day: valid meals and money by payment method, and its voids."""

    user_id: int | None
    username: str
    meal_count: int = 0
    subsidy_fen: int = 0
    copay_fen: int = 0
    copay_by_method: dict[str, int] = field(default_factory=dict)
    void_count: int = 0
    void_copay_fen: int = 0


@dataclass
class CashUp:
    canteen: Canteen
    day: date
    accounts: list[AccountCashUp]
    total: AccountCashUp


def cash_up(canteen_id: int, day: date) -> CashUp:
    """The day's takings at a canteen per counter account, for closing: valid meals, subsidy
    claimed, copay collected by payment method, and voids (count and the copay they returned).
    Staff of the canteen, officers of its district, admin."""
    scoping.require_role(scoping.CANTEEN_STAFF, scoping.DISTRICT_OFFICER)  # kitchens handle no money
    canteen = scoping.get_scoped(Canteen, canteen_id, code="canteen_not_found")
    rows = db.session.execute(
        sa.select(
            MealRecord.recorded_by_id,
            MealRecord.status,
            MealRecord.payment_method,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(MealRecord.subsidy_fen), 0),
            sa.func.coalesce(sa.func.sum(MealRecord.copay_fen), 0),
        )
        .where(MealRecord.canteen_id == canteen.id, MealRecord.served_on == day)
        .group_by(MealRecord.recorded_by_id, MealRecord.status, MealRecord.payment_method)
    ).all()
    user_ids = {row[0] for row in rows if row[0] is not None}
    with scoping.unrestricted():  # the names of colleagues' counter accounts, nothing more
        names = dict(db.session.execute(sa.select(User.id, User.username).where(User.id.in_(user_ids))).all())
    accounts: dict[int | None, AccountCashUp] = {}
    total = AccountCashUp(user_id=None, username="")
    for user_id, status, method, count, subsidy, copay in rows:
        account = accounts.setdefault(user_id, AccountCashUp(user_id=user_id, username=names.get(user_id, "system")))
        for target in (account, total):
            if status == VALID:
                target.meal_count += count
                target.subsidy_fen += int(subsidy)
                target.copay_fen += int(copay)
                target.copay_by_method[method] = target.copay_by_method.get(method, 0) + int(copay)
            else:
                target.void_count += count
                target.void_copay_fen += int(copay)
    ordered = sorted(accounts.values(), key=lambda a: a.username)
    return CashUp(canteen=canteen, day=day, accounts=ordered, total=total)


# --- what the counter shows before recording -------------------------------------------------------
@dataclass(frozen=True)
class MealPreview:
    """What recording this meal now would decide, without writing anything: the subsidy and
    copay, the rule, warnings, and the meal already recorded for the slot (if any)."""

    decision: subsidy_service.RuleDecision
    warnings: list[dict[str, str]]
    already_recorded: MealRecord | None


def preview_meal(
    *, canteen_id: int, resident_id: int, served_on: date, slot: str, price_fen: int, mode: str = "dine_in"
) -> MealPreview:
    """The counter's summary of a resident for a meal about to be recorded (staff of the
    canteen and admin): the subsidy the best rule would give now, counting the resident's meals
    so far. Writes nothing and takes no lock, so the recorded meal may differ if another
    counter records first."""
    scope = scoping.require_role(*RECORDERS)
    canteen = scoping.get_scoped(Canteen, canteen_id, code="canteen_not_found")
    with scoping.unrestricted():
        resident = db.session.scalars(
            sa.select(Resident).where(Resident.id == resident_id).options(selectinload(Resident.status_changes))
        ).one_or_none()
    _refuse_unservable(resident, scope)
    decision = subsidy_service.best_rule(
        resident=resident,
        canteen=canteen,
        day=served_on,
        slot=slot,
        price_fen=price_fen,
        usage=ResidentMealUsage(resident.id, served_on),
    )
    served_at = clock.now() if served_on == clock.today() else None
    warnings = _warnings(canteen, resident, slot=slot, mode=mode, served_at=served_at, collected_by="")
    existing = _valid_meal_for(resident.id, served_on, slot)
    return MealPreview(decision=decision, warnings=warnings + decision.warnings, already_recorded=existing)


def counter_roster(canteen_id: int, *, days: int = 30) -> list[Resident]:
    """The residents a counter may need while offline: active residents whose home canteen this
    is, or who ate here in the last `days` days (any district). Staff of the canteen and admin.
    The counter keeps only ids, names, card numbers and pinyin from it — never ID numbers."""
    scoping.require_role(*RECORDERS)
    canteen = scoping.get_scoped(Canteen, canteen_id, code="canteen_not_found")
    since = clock.today() - timedelta(days=days)
    ate_here = sa.select(MealRecord.resident_id).where(
        MealRecord.canteen_id == canteen.id, MealRecord.served_on >= since, MealRecord.status == VALID
    )
    with scoping.unrestricted():
        return list(
            db.session.scalars(
                sa.select(Resident)
                .where(
                    Resident.status == "active",
                    (Resident.home_canteen_id == canteen.id) | Resident.id.in_(ate_here),
                )
                .options(selectinload(Resident.cards), selectinload(Resident.categories))
                .order_by(Resident.name_pinyin, Resident.id)
            )
        )


# --- what other domains ask about meals ---------------------------------------------------------------
@resident_imports.register_meal_finder
def meals_on_or_after(resident_id: int, day: date, *, limit: int = 100) -> list[dict[str, Any]]:
    """A resident's valid meals on or after `day` at any canteen, oldest first (at most `limit`):
    what a civil-affairs feed reporting a death or move with that effective date shows the officer."""
    with scoping.unrestricted():
        rows = db.session.execute(
            sa.select(MealRecord.id, MealRecord.served_on, MealRecord.slot, Canteen.name, MealRecord.subsidy_fen)
            .join(Canteen, Canteen.id == MealRecord.canteen_id)
            .where(MealRecord.resident_id == resident_id, MealRecord.served_on >= day, MealRecord.status == VALID)
            .order_by(MealRecord.served_on, MealRecord.id)
            .limit(limit)
        ).all()
    return [
        {"id": id_, "served_on": served_on.isoformat(), "slot": slot, "canteen_name": name, "subsidy_fen": subsidy}
        for id_, served_on, slot, name, subsidy in rows
    ]


@subsidy_service.register_usage_check
def last_meal_using(policy: SubsidyPolicy) -> date | None:
    """The last date on which a valid meal was subsidised under `policy` (any canteen, anyone asking)."""
    with scoping.unrestricted():
        return db.session.scalar(
            sa.select(sa.func.max(MealRecord.served_on)).where(
                MealRecord.policy_id == policy.id, MealRecord.status == VALID
            )
        )
