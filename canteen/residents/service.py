"""Registry rules: who may register and change residents, valid identity numbers, status and
eligibility over time, meal cards, and the counter's search and look-ups."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import sqlalchemy as sa
from pypinyin import Style, lazy_pinyin
from sqlalchemy.orm import selectinload

from canteen.core import clock, crypto, scoping
from canteen.core.audit_log import record_event
from canteen.core.db import utcnow
from canteen.core.errors import Conflict, NotFound, ValidationFailed, field_error
from canteen.core.pagination import Page, paginate
from canteen.core.privacy import IdNumberInUrl
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.org.models import CanteenKind
from canteen.residents import id_numbers
from canteen.residents.models import (
    AGE_CATEGORIES,
    CATEGORIES,
    MealCard,
    Resident,
    ResidentCategory,
    ResidentStatusChange,
)

MIN_AGE = 60
OFFICERS = (scoping.DISTRICT_OFFICER,)  # and admin, who always passes require_role


# --- names -----------------------------------------------------------------------------------
def name_keys(name: str) -> tuple[str, str]:
    """Full pinyin and initials of a name, for the counter search: 张三 → ("zhangsan", "zs")."""
    syllables: list[str] = []
    for part in lazy_pinyin(name, style=Style.NORMAL, errors=lambda text: re.findall(r"[A-Za-z]+", text)):
        syllables.extend(re.findall(r"[a-z]+", part.lower()))
    return "".join(syllables)[:200], "".join(s[0] for s in syllables)[:50]


# --- identity --------------------------------------------------------------------------------
def _identity(doc_type: str, number: str, birth_date: date | None, sex: str | None) -> id_numbers.Identity:
    try:
        identity = id_numbers.parse(doc_type, number)
    except id_numbers.InvalidIdNumber as error:
        raise field_error("id_number", str(error), code="invalid_id_number") from None
    if doc_type == id_numbers.PASSPORT:
        errors = {}
        if birth_date is None:
            errors["birth_date"] = ["Required for a passport."]
        if sex is None:
            errors["sex"] = ["Required for a passport."]
        if errors:
            raise ValidationFailed("Birth date and sex are required for a passport.", errors=errors)
        return id_numbers.Identity(identity.number, birth_date, sex)
    given = {k: v for k, v in (("birth_date", birth_date), ("sex", sex)) if v is not None}
    derived = {"birth_date": identity.birth_date, "sex": identity.sex}
    wrong = {k: ["Derived from the ID number; leave it out."] for k, v in given.items() if v != derived[k]}
    if wrong:
        raise ValidationFailed("Birth date and sex come from the ID number.", errors=wrong)
    return identity


def _index_columns(doc_type: str, number: str) -> dict[str, str]:
    return {
        "id_number_index": crypto.blind_index(f"{doc_type}:{number}", "resident.id_number"),
        "id_tail4_index": crypto.blind_index(number[-4:], "resident.id_tail4"),
        "id_tail5_index": crypto.blind_index(number[-5:], "resident.id_tail5"),
        "id_tail6_index": crypto.blind_index(number[-6:], "resident.id_tail6"),
    }


def find_resident_by_id_number(number: str, *, options=()) -> Resident | None:
    """The resident with this full ID number (any document type), through the blind index and
    the caller's scope; None if there is none."""
    number = id_numbers.normalise(number)
    hashes = [crypto.blind_index(f"{t}:{number}", "resident.id_number") for t in id_numbers.DOC_TYPES]
    return db.session.scalars(sa.select(Resident).where(Resident.id_number_index.in_(hashes)).options(*options)).first()


# --- registration ----------------------------------------------------------------------------
def register_resident(
    *,
    name: str,
    id_doc_type: str,
    id_number: str,
    district_id: int,
    birth_date: date | None = None,
    sex: str | None = None,
    phone: str | None = None,
    community_id: int | None = None,
    address: str = "",
    home_canteen_id: int | None = None,
    card_no: str | None = None,
    delivery_registered: bool = False,
    emergency_contact: str | None = None,
    diet: dict[str, Any] | None = None,
    consent: dict[str, Any] | None = None,
    registered_on: date | None = None,
) -> Resident:
    """Officers of the district and admin register residents.

    The ID number must be valid (GB 11643 check digit, real birth date, real province; passports
    by format, with birth date and sex typed in); birth date and sex are derived from it, never
    typed twice. Residents under 60 on the registration date are refused (`resident_too_young`).
    One resident per ID number (409 `resident_exists`), one holder per card number (409
    `card_taken`). The community and home canteen must be in the resident's district.
    """
    scope = scoping.require_role(*OFFICERS)
    registered_on = registered_on or clock.today()
    district = org_service.get_district(district_id)
    identity = _identity(id_doc_type, id_number, birth_date, sex)
    if id_numbers.age_on(identity.birth_date, registered_on) < MIN_AGE:
        raise field_error(
            "id_number", f"The resident must be {MIN_AGE} or older on the registration date.", code="resident_too_young"
        )
    with scoping.unrestricted():
        existing = find_resident_by_id_number(identity.number)
    if existing is not None:
        raise Conflict(
            "A resident with this ID number is already registered.",
            code="resident_exists",
            errors={"id_number": ["Already registered."]},
        )
    if card_no:
        _refuse_taken_card(card_key(card_no))
    pinyin, initials = name_keys(name)
    resident = Resident(
        name=name,
        name_pinyin=pinyin,
        name_initials=initials,
        id_doc_type=id_doc_type,
        id_number=identity.number,
        birth_date=identity.birth_date,
        sex=identity.sex,
        phone=phone or None,
        district_id=district.id,
        address=address or "",
        delivery_registered=delivery_registered,
        emergency_contact=emergency_contact or None,
        status="active",
        status_effective_on=registered_on,
        registered_on=registered_on,
        registered_by_id=scope.user_id,
        **_index_columns(id_doc_type, identity.number),
    )
    _set_placement(resident, community_id=community_id, home_canteen_id=home_canteen_id)
    _set_diet(resident, diet or {})
    if consent:
        _set_consent(resident, consent, scope)
    db.session.add(resident)
    resident.status_changes.append(
        ResidentStatusChange(
            status="active",
            effective_on=registered_on,
            reason="registered",
            source="registration",
            recorded_by_id=scope.user_id,
        )
    )
    if card_no:
        _issue_card(resident, card_no, registered_on)
    db.session.flush()
    return resident


def _set_placement(resident: Resident, *, community_id: int | None, home_canteen_id: int | None) -> None:
    if community_id is not None:
        community = org_service.get_community(community_id)
        if community.district_id != resident.district_id:
            raise field_error("community_id", "The community is in another district.", code="community_mismatch")
    resident.community_id = community_id
    if home_canteen_id is not None:
        canteen = org_service.get_canteen(home_canteen_id)
        if canteen.kind == CanteenKind.CENTRAL_KITCHEN:
            raise field_error("home_canteen_id", "A central kitchen is not a home canteen.", code="not_a_canteen")
        if canteen.district_id != resident.district_id:
            raise field_error("home_canteen_id", "The canteen is in another district.", code="canteen_mismatch")
    resident.home_canteen_id = home_canteen_id


def _set_diet(resident: Resident, diet: dict[str, Any]) -> None:
    if "restrictions" in diet:
        resident.diet_restrictions = sorted(set(diet["restrictions"]))
    if "allergens" in diet:
        resident.allergens = sorted(set(diet["allergens"]))
    if "notes" in diet:
        resident.diet_notes = (diet["notes"] or "").strip()


def _set_consent(resident: Resident, consent: dict[str, Any], scope: scoping.Scope) -> None:
    resident.consent_method = consent["method"]
    resident.consent_given_on = consent.get("given_on") or clock.today()
    resident.consent_recorded_by_id = scope.user_id


def update_resident(resident_id: int, **fields: Any) -> Resident:
    """Officers of the resident's district and admin correct contact, placement, diet and consent.
    A changed name gets new pinyin keys; identity numbers are not edited (register anew)."""
    scope = scoping.require_role(*OFFICERS)
    resident = get_resident(resident_id)
    if "name" in fields:
        resident.name = fields.pop("name")
        resident.name_pinyin, resident.name_initials = name_keys(resident.name)
    if "community_id" in fields or "home_canteen_id" in fields:
        _set_placement(
            resident,
            community_id=fields.pop("community_id", resident.community_id),
            home_canteen_id=fields.pop("home_canteen_id", resident.home_canteen_id),
        )
    if "diet" in fields:
        _set_diet(resident, fields.pop("diet") or {})
    if "consent" in fields:
        consent = fields.pop("consent")
        if consent:
            _set_consent(resident, consent, scope)
        else:
            resident.consent_method = resident.consent_given_on = resident.consent_recorded_by_id = None
    if "card_no" in fields:
        raise field_error("card_no", "Replace a card with POST .../card.")
    for key in ("phone", "emergency_contact"):
        if key in fields:
            setattr(resident, key, fields.pop(key) or None)
    for key in ("address", "delivery_registered"):
        if key in fields:
            setattr(resident, key, fields.pop(key))
    if fields:
        raise ValidationFailed("Unknown fields.", errors={k: ["Unknown field."] for k in fields})
    db.session.flush()
    return resident


# --- reading ---------------------------------------------------------------------------------
def get_resident(resident_id: int) -> Resident:
    """One resident in the caller's scope (officers: their district; staff: their district), else 404."""
    return scoping.get_scoped(Resident, resident_id)


def search_residents(
    *,
    q: str | None = None,
    district_id: int | None = None,
    community_id: int | None = None,
    status: str | None = None,
    category: str | None = None,
    without_consent: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> Page[Resident]:
    """The counter and registry search, limited to the caller's scope.

    `q` is a card number (exact), an ID tail of 4–6 characters (exact tail, through its keyed
    hash), a name prefix, or pinyin / pinyin initials (prefix: "zhangs", "zs" find 张三). A full
    ID number is refused (400 `id_number_in_url`): exact ID look-ups are POST bodies.
    """
    # cards and categories are shown with every row: load them in two queries, not two per row
    if scoping.current_scope().role == scoping.CANTEEN_STAFF and not (q and q.strip()):
        # the counter finds the person in front of it; browsing the district's registry is not its job
        raise field_error("q", "Type a card number, ID tail, name or pinyin.", code="query_required")
    statement = (
        sa.select(Resident)
        .order_by(Resident.name_pinyin, Resident.id)
        .options(selectinload(Resident.cards), selectinload(Resident.categories))
    )
    if q:
        statement = statement.where(_query_condition(q.strip()))
    for column, value in (
        (Resident.district_id, district_id),
        (Resident.community_id, community_id),
        (Resident.status, status),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if category:
        statement = statement.where(_holds_category_condition(category, clock.today()))
    if without_consent:
        statement = statement.where(Resident.consent_given_on.is_(None))
    return paginate(statement, page=page, page_size=page_size)


_ID_LIKE = re.compile(r"^([0-9]{17}[0-9Xx]|[0-9]{15})$")
_TAIL = re.compile(r"^[0-9]{3,5}[0-9Xx]$")
_LETTERS = re.compile(r"^[A-Za-z]+$")


def looks_like_id_number(text: str) -> bool:
    """Whether `text` is shaped like a full ID number (18 characters, or the old 15 digits): such
    a number never travels in a URL, so a search for one is refused."""
    return bool(_ID_LIKE.match(text.strip()))


def _query_condition(q: str):
    if looks_like_id_number(q):
        raise IdNumberInUrl()
    if len(q) > 50:
        raise field_error("q", "At most 50 characters.")
    # card numbers are unique: an equality with a one-row subquery keeps every branch of the OR
    # below on its own index (an IN (subquery) inside an OR made PostgreSQL filter the district)
    card = Resident.id == (
        sa.select(MealCard.resident_id)
        .where(MealCard.card_no == card_key(q), MealCard.status == "active")
        .scalar_subquery()
    )
    if _TAIL.match(q):
        tail = q.upper()
        column = {4: Resident.id_tail4_index, 5: Resident.id_tail5_index, 6: Resident.id_tail6_index}[len(tail)]
        return sa.or_(column == crypto.blind_index(tail, f"resident.id_tail{len(tail)}"), card)
    if _LETTERS.match(q):
        key = q.lower()
        return sa.or_(
            Resident.name_pinyin.startswith(key, autoescape=True),
            Resident.name_initials.startswith(key, autoescape=True),
            card,
        )
    if re.search(r"[\u3400-\u9fff]", q):
        return Resident.name.startswith(q, autoescape=True)
    return card


def _holds_category_condition(category: str, day: date):
    if category in AGE_CATEGORIES:
        years = 80 if category == "aged_80_plus" else 60
        return Resident.birth_date <= _years_before(day, years)
    return Resident.id.in_(
        sa.select(ResidentCategory.resident_id).where(
            ResidentCategory.category == category,
            ResidentCategory.valid_from <= day,
            sa.or_(ResidentCategory.valid_to.is_(None), ResidentCategory.valid_to >= day),
        )
    )


def _years_before(day: date, years: int) -> date:
    # the last birth date that makes someone `years` old on `day` (29 Feb → 28 Feb in common years)
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def list_status_changes(resident_id: int) -> list[ResidentStatusChange]:
    """A resident's status history with its reasons (health, family matters): officers and admin
    only; the counter sees the current status in the summary."""
    scoping.require_role(*OFFICERS)
    return list(get_resident(resident_id).status_changes)


def list_categories(resident_id: int) -> list[ResidentCategory]:
    """A resident's categories over time with their evidence (incomes, certificates): officers and
    admin only; the counter sees the categories held today in the summary."""
    scoping.require_role(*OFFICERS)
    return list(get_resident(resident_id).categories)


def lookup_resident(*, id_number: str | None = None, card_no: str | None = None) -> Resident:
    """Exact look-up by full ID number (through the blind index) or active card number.

    Residents may eat at any canteen, so canteen staff find any *active* resident of the city
    this way (and see only the counter summary); officers find residents of their district;
    admin anyone. A blocked card finds nobody. Not found: 404 `resident_not_found`.
    """
    scope = scoping.current_scope()
    if (id_number is None) == (card_no is None):
        raise ValidationFailed(
            "Give exactly one of id_number and card_no.",
            errors={"id_number": ["Give exactly one of id_number and card_no."]},
        )
    city_wide = scope.role == scoping.CANTEEN_STAFF or scope.unrestricted
    # what the counter summary shows is loaded here, inside the wider scope
    loaded = (selectinload(Resident.categories), selectinload(Resident.cards), selectinload(Resident.status_changes))
    with scoping.acting_as(scoping.SYSTEM if city_wide else scope):
        if id_number is not None:
            resident = find_resident_by_id_number(id_number, options=loaded)
        else:
            resident = db.session.scalars(
                sa.select(Resident)
                .join(MealCard)
                .where(MealCard.card_no == card_key(card_no), MealCard.status == "active")
                .options(*loaded)
            ).first()
    if resident is None or (scope.role == scoping.CANTEEN_STAFF and resident.status != "active"):
        raise NotFound("No resident found.", code="resident_not_found")
    return resident


def reveal_identity(resident_id: int) -> Resident:
    """Officers of the resident's district and admin may read the full ID number and phone; every
    reveal is written to the audit log (who, whom, when)."""
    scoping.require_role(*OFFICERS)
    resident = get_resident(resident_id)
    record_event(
        action="reveal",
        entity="residents",
        entity_id=resident.id,
        district_id=resident.district_id,
        details={"fields": ["id_number", "phone", "emergency_contact"]},
    )
    return resident


# --- status ----------------------------------------------------------------------------------
def set_status(
    resident_id: int, *, status: str, effective_on: date, reason: str = "", source: str = "manual"
) -> ResidentStatusChange:
    """Record a status taking effect on a date — possibly in the past (a death reported late).

    A status records a fact, so it cannot take effect in the future (422 `effective_on_in_future`),
    and it cannot take effect before a status already recorded for a later date, which would
    silently override it (409 `later_status_recorded`: correct the history first). On the same
    date the newer record wins. The history is kept whole; the current status is the latest
    entry effective on or before today. Meals already recorded after an earlier effective date
    are found by the audit scan.
    """
    scope = scoping.require_role(*OFFICERS)
    resident = get_resident(resident_id)
    if effective_on < resident.birth_date:
        raise field_error("effective_on", "Before the resident's birth date.")
    if effective_on > clock.today():
        raise field_error(
            "effective_on", "A status change cannot take effect in the future.", code="effective_on_in_future"
        )
    later = [c for c in resident.status_changes if c.effective_on > effective_on]
    if later:
        last = max(later, key=lambda c: c.effective_on)
        message = f"A later status ({last.status}, effective {last.effective_on.isoformat()}) is already recorded."
        raise Conflict(message, code="later_status_recorded", errors={"effective_on": [message]})
    change = ResidentStatusChange(
        resident=resident,
        status=status,
        effective_on=effective_on,
        reason=reason,
        source=source,
        recorded_by_id=scope.user_id,
    )
    db.session.add(change)
    db.session.flush()  # the new entry gets its id, which breaks ties on the same date
    _refresh_current_status(resident)
    db.session.flush()
    return change


def _refresh_current_status(resident: Resident) -> None:
    current = status_entry_on(resident, clock.today())
    if current is not None:
        resident.status, resident.status_effective_on = current.status, current.effective_on


def status_entry_on(resident: Resident, day: date) -> ResidentStatusChange | None:
    """The status entry in force on `day`: the latest effective on or before it (ties: the later record)."""
    entries = [c for c in resident.status_changes if c.effective_on <= day]
    return max(entries, key=lambda c: (c.effective_on, c.id or 0, c.recorded_at), default=None)


def is_active_on(resident: Resident, day: date) -> bool:
    """Whether the resident is active on `day` (the money path's "active on a date")."""
    entry = status_entry_on(resident, day)
    return entry is not None and entry.status == "active"


# --- categories ------------------------------------------------------------------------------
def add_category(
    resident_id: int,
    *,
    category: str,
    valid_from: date,
    valid_to: date | None = None,
    evidence: str = "",
    source: str = "manual",
) -> ResidentCategory:
    """Officers record an eligibility category with its validity and evidence; they are its verifier.
    Periods of the same category must not overlap (409 `category_overlap`); age categories are
    derived, never stored."""
    scope = scoping.require_role(*OFFICERS)
    resident = get_resident(resident_id)
    if category not in CATEGORIES:
        raise field_error("category", f"One of {', '.join(CATEGORIES)}.")
    if valid_to is not None and valid_to < valid_from:
        raise field_error("valid_to", "Before valid_from.")
    for held in resident.categories:
        if held.category == category and _overlaps(held.valid_from, held.valid_to, valid_from, valid_to):
            raise Conflict(
                "The resident already holds this category in that period.",
                code="category_overlap",
                errors={"valid_from": ["Overlaps an existing period."]},
            )
    entry = ResidentCategory(
        resident=resident,
        category=category,
        valid_from=valid_from,
        valid_to=valid_to,
        evidence=evidence,
        source=source,
        verified_by_id=scope.user_id,
        verified_at=utcnow(),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def _overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    return a_from <= (b_to or date.max) and b_from <= (a_to or date.max)


def end_category(resident_id: int, category_id: int, *, valid_to: date) -> ResidentCategory:
    """End a category on `valid_to` (not before it started)."""
    scoping.require_role(*OFFICERS)
    resident = get_resident(resident_id)
    entry = next((c for c in resident.categories if c.id == category_id), None)
    if entry is None:
        raise NotFound(f"Category {category_id} not found.", code="category_not_found")
    if valid_to < entry.valid_from:
        raise field_error("valid_to", "Before the category started.")
    entry.valid_to = valid_to
    db.session.flush()
    return entry


def categories_on(resident: Resident, day: date) -> list[str]:
    """Every category the resident holds on `day`: stored ones valid that day plus the age
    categories from the birth date (calendar comparison, birthday included)."""
    held = {c.category for c in resident.categories if c.held_on(day)}
    age = id_numbers.age_on(resident.birth_date, day)
    if age >= 60:
        held.add("aged_60_plus")
    if age >= 80:
        held.add("aged_80_plus")
    return sorted(held)


# --- cards -----------------------------------------------------------------------------------
def card_key(card_no: str) -> str:
    """Card numbers are compared and stored in upper case: "xn0001" is card XN0001."""
    return card_no.strip().upper()


def _refuse_taken_card(card_no: str) -> None:
    with scoping.unrestricted():
        taken = db.session.scalar(sa.select(sa.exists().where(MealCard.card_no == card_no)))
    if taken:
        raise Conflict(f"Card {card_no} is already issued.", code="card_taken", errors={"card_no": ["Taken."]})


def _issue_card(resident: Resident, card_no: str, issued_on: date) -> MealCard:
    card_no = card_key(card_no)
    _refuse_taken_card(card_no)
    card = MealCard(resident=resident, card_no=card_no, status="active", issued_on=issued_on)
    db.session.add(card)
    return card


def replace_card(resident_id: int, *, card_no: str, reason: str = "lost") -> MealCard:
    """Block the resident's active card (if any) and issue a new one; numbers are never reused."""
    scoping.require_role(*OFFICERS)
    resident = get_resident(resident_id)
    _refuse_taken_card(card_key(card_no))  # before blocking the old card: a refusal changes nothing
    _block(resident, reason)
    db.session.flush()  # the partial unique index allows one active card per resident
    card = _issue_card(resident, card_no, clock.today())
    db.session.flush()
    return card


def block_card(resident_id: int, *, reason: str) -> MealCard:
    """Block the active card (lost, misused); from now on it finds nobody."""
    scoping.require_role(*OFFICERS)
    resident = get_resident(resident_id)
    card = _block(resident, reason)
    if card is None:
        raise NotFound("The resident has no active card.", code="card_not_found")
    db.session.flush()
    return card


def _block(resident: Resident, reason: str) -> MealCard | None:
    card = resident.active_card
    if card is not None:
        card.status, card.blocked_at, card.block_reason = "blocked", utcnow(), reason
    return card
