"""Subsidy rules: who may create and end a district's policies, that policies never overlap, and
the one decision of how much of a meal the programme pays (DESIGN.md "The money path, exactly")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from canteen.core import scoping
from canteen.core.db import advisory_lock, utcnow
from canteen.core.errors import Conflict, ValidationFailed, field_error
from canteen.core.pagination import Page, paginate
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.org.models import SLOTS, Canteen
from canteen.residents import service as resident_service
from canteen.residents.models import Resident
from canteen.subsidies.models import PER_DAY, PER_MEAL, RULE_CATEGORIES, RULE_SLOTS, UNITS, SubsidyPolicy, SubsidyRule

MANAGERS = (scoping.DISTRICT_OFFICER,)  # and admin, who always passes require_role
RULE_FIELDS = ("category", "slot", "amount_fen", "unit", "min_price_fen", "max_per_day", "max_per_month")

CAP_REACHED = "cap_reached"
NO_SUBSIDY_RULE = "no_subsidy_rule"
MESSAGE_CAP_REACHED = "The subsidy rules this resident could use have reached their caps; the meal is at full price."
MESSAGE_NO_RULE = "No subsidy rule applies to this resident, meal and price; the meal is at full price."
MESSAGE_NO_POLICY = "No subsidy policy is in force in this district on that date; the meal is at full price."
DUPLICATE_RULE = "Each category and slot once per policy."
PER_DAY_DAILY_CAP = "A per-day rule is paid once a day; it takes no max_per_day."


# --- policies that meals have used -------------------------------------------------------------
UsageCheck = Callable[[SubsidyPolicy], date | None]
_usage_checks: list[UsageCheck] = []


def register_usage_check(check: UsageCheck) -> UsageCheck:
    """Register a function answering the last date on which a valid meal used a policy (None:
    never). The meals domain registers one (meals → subsidies is the allowed direction); with
    none registered no meal exists, so nothing is in use. Usable as a decorator."""
    if check not in _usage_checks:
        _usage_checks.append(check)
    return check


def last_used_on(policy: SubsidyPolicy) -> date | None:
    """The last date on which a valid meal used `policy`, by every registered usage check."""
    dates = [used for check in _usage_checks if (used := check(policy)) is not None]
    return max(dates) if dates else None


# --- reads -------------------------------------------------------------------------------------
def list_policies(
    *, district_id: int | None = None, on: date | None = None, page: int = 1, page_size: int = 50
) -> Page[SubsidyPolicy]:
    """Policies the caller can see (admin: all; officers and canteen staff: their district's;
    kitchen staff: none), newest first; `on` keeps the ones valid on that date."""
    statement = (
        sa.select(SubsidyPolicy)
        .options(selectinload(SubsidyPolicy.rules))
        .order_by(SubsidyPolicy.district_id, SubsidyPolicy.valid_from.desc(), SubsidyPolicy.id.desc())
    )
    if district_id is not None:
        statement = statement.where(SubsidyPolicy.district_id == district_id)
    if on is not None:
        statement = statement.where(_covers(on))
    return paginate(statement, page=page, page_size=page_size)


def get_policy(policy_id: int) -> SubsidyPolicy:
    """One policy inside the caller's scope, else 404 `subsidy_policy_not_found`."""
    return scoping.get_scoped(SubsidyPolicy, policy_id)


def policy_in_force(district_id: int, day: date) -> SubsidyPolicy | None:
    """The district's policy whose validity covers `day` (at most one: policies never overlap),
    if the caller can see it."""
    return db.session.scalars(
        sa.select(SubsidyPolicy)
        .options(selectinload(SubsidyPolicy.rules))
        .where(SubsidyPolicy.district_id == district_id, _covers(day))
        .order_by(SubsidyPolicy.valid_from.desc())
        .limit(1)
    ).one_or_none()


def _covers(day: date):
    return (SubsidyPolicy.valid_from <= day) & (SubsidyPolicy.valid_to.is_(None) | (SubsidyPolicy.valid_to >= day))


# --- writes ------------------------------------------------------------------------------------
def create_policy(
    *,
    district_id: int,
    name: str,
    valid_from: date,
    valid_to: date | None = None,
    operator_allowance_fen: int = 0,
    rules: Iterable[dict[str, Any]],
) -> SubsidyPolicy:
    """Admin, or an officer of the district, creates a policy with at least one rule.

    Policies of one district never overlap, open-ended ones included (409 `policy_overlap`).
    Each (category, slot) appears once; amounts are positive integer fen; a `per_day` rule takes
    no `max_per_day`. A policy is never edited afterwards: a change is a new policy from a later
    date, after ending this one.
    """
    scope = scoping.require_role(*MANAGERS)
    district = org_service.get_district(district_id)
    if valid_to is not None and valid_to < valid_from:
        raise field_error("valid_to", "Before valid_from.")
    if not _is_whole(operator_allowance_fen):
        raise field_error("operator_allowance_fen", "Not a valid amount of fen.")
    rule_rows = _checked_rules(list(rules))
    _lock_district_policies(district.id)
    _refuse_overlap(district.id, valid_from, valid_to)
    policy = SubsidyPolicy(
        district=district,
        name=name,
        valid_from=valid_from,
        valid_to=valid_to,
        operator_allowance_fen=operator_allowance_fen,
        created_by_id=scope.user_id,
        created_at=utcnow(),
        rules=[SubsidyRule(**row) for row in rule_rows],
    )
    db.session.add(policy)
    db.session.flush()
    return policy


def end_policy(policy_id: int, *, valid_to: date) -> SubsidyPolicy:
    """Admin, or an officer of the district, sets the last day of a policy.

    Not before it starts (422); an ended policy may be shortened but never extended beyond its
    end (422 `policy_cannot_extend`: its successor may start the next day); and never before the
    last date on which a meal used it (409 `policy_in_use`).
    """
    scope = scoping.require_role(*MANAGERS)
    policy = get_policy(policy_id)
    if _lock_district_policies(policy.district_id):
        db.session.refresh(policy)  # as it is now that nobody else changes the district's policies
    if valid_to < policy.valid_from:
        raise field_error("valid_to", "Before valid_from.")
    if policy.valid_to is not None and valid_to > policy.valid_to:
        raise field_error(
            "valid_to",
            f"The policy already ends on {policy.valid_to.isoformat()}; it cannot be extended.",
            code="policy_cannot_extend",
        )
    used = last_used_on(policy)
    if used is not None and valid_to < used:
        message = f"Meals used this policy on {used.isoformat()}; it cannot end before that day."
        raise Conflict(message, code="policy_in_use", errors={"valid_to": [message]})
    if policy.valid_to != valid_to:
        policy.valid_to = valid_to
        policy.ended_at = utcnow()
        policy.ended_by_id = scope.user_id
    db.session.flush()
    return policy


def _lock_district_policies(district_id: int, *, shared: bool = False) -> bool:
    """Hold the district's policy lock until the transaction ends; True if a lock was taken.

    Check-then-insert under READ COMMITTED lets two officers create overlapping policies at
    once, and lets a policy end while a meal is being priced with it; a transaction-scoped
    advisory lock per district serialises them: writers (create, end) take it exclusively,
    pricing a meal takes it shared (meals never wait for each other). SQLite needs none: every
    write transaction there starts with BEGIN IMMEDIATE (one writer at a time).
    """
    return advisory_lock(db.session, f"subsidy_policies:district:{district_id}", shared=shared)


def _refuse_overlap(district_id: int, valid_from: date, valid_to: date | None) -> None:
    # checked without the caller's scope: any policy of the district counts
    condition = (SubsidyPolicy.district_id == district_id) & (
        SubsidyPolicy.valid_to.is_(None) | (SubsidyPolicy.valid_to >= valid_from)
    )
    if valid_to is not None:
        condition &= SubsidyPolicy.valid_from <= valid_to
    with scoping.unrestricted():
        overlapping = db.session.scalar(sa.select(sa.exists().where(condition)))
    if overlapping:
        message = "The district already has a policy in force during this period."
        raise Conflict(message, code="policy_overlap", errors={"valid_from": [message]})


def _is_whole(value: Any, *, minimum: int = 0) -> bool:
    # money is integer fen and caps are counts: no float, no Decimal, no bool
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _checked_rules(rules: list[Any]) -> list[dict[str, Any]]:
    """The rules as the model's columns, or one 422 listing every problem as "position: field: message"."""
    if not rules:
        raise field_error("rules", "At least one rule.")
    rows, problems = [], []
    seen: set[tuple[Any, Any]] = set()
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            problems.append(f"{index}: Not a rule.")
            continue
        row = {name: rule.get(name) for name in RULE_FIELDS}
        row["unit"] = row["unit"] or PER_MEAL
        errors = _rule_errors(row, unknown=set(rule) - set(RULE_FIELDS))
        if "category" not in errors and "slot" not in errors:
            if (row["category"], row["slot"]) in seen:
                errors["slot"] = DUPLICATE_RULE
            seen.add((row["category"], row["slot"]))
        problems.extend(f"{index}: {name}: {text}" for name, text in errors.items())
        rows.append(row)
    if problems:
        raise ValidationFailed(errors={"rules": problems})
    return rows


def _rule_errors(row: dict[str, Any], *, unknown: set[str]) -> dict[str, str]:
    errors: dict[str, str] = dict.fromkeys(sorted(unknown), "Unknown field.")
    if row["category"] not in RULE_CATEGORIES:
        errors["category"] = f"Must be one of: {', '.join(RULE_CATEGORIES)}."
    if row["slot"] not in RULE_SLOTS:
        errors["slot"] = f"Must be one of: {', '.join(RULE_SLOTS)}."
    if row["unit"] not in UNITS:
        errors["unit"] = f"Must be one of: {', '.join(UNITS)}."
    if not _is_whole(row["amount_fen"], minimum=1):
        errors["amount_fen"] = "A subsidy amount is more than 0."
    if row["min_price_fen"] is not None and not _is_whole(row["min_price_fen"]):
        errors["min_price_fen"] = "A price is 0 or more."
    for cap in ("max_per_day", "max_per_month"):
        if row[cap] is not None and not _is_whole(row[cap], minimum=1):
            errors[cap] = "At least 1, or empty for no cap."
    # A per-day rule pays once a day by definition: a daily cap would either repeat that (1) or
    # contradict it (more), so it is refused rather than guessed at.
    if row["unit"] == PER_DAY and row["max_per_day"] is not None:
        errors["max_per_day"] = PER_DAY_DAILY_CAP
    return errors


# --- the decision --------------------------------------------------------------------------------
class SubsidyUsage(Protocol):
    """What the meals domain tells the decision about the resident's earlier valid meals (lower
    meal ids) that a rule subsidised with more than 0 fen."""

    def subsidised_meals(self, rule_id: int, *, day: date) -> int:
        """Earlier valid meals of this resident on `day` subsidised by the rule."""
        ...

    def subsidised_meals_in_month(self, rule_id: int, *, month_of: date) -> int:
        """Earlier valid meals of this resident in the calendar month of `month_of` subsidised by the rule."""
        ...


class NoUsage:
    """The usage of a resident with no earlier meals (a first meal, or a preview)."""

    def subsidised_meals(self, rule_id: int, *, day: date) -> int:
        return 0

    def subsidised_meals_in_month(self, rule_id: int, *, month_of: date) -> int:
        return 0


@dataclass(frozen=True)
class RuleDecision:
    """The subsidy of one meal: the rule applied (None: full price), the amounts in fen, the
    warnings [{code, message}] and the category the rule paid for."""

    rule: SubsidyRule | None
    subsidy_fen: int
    copay_fen: int
    warnings: list[dict[str, str]] = field(default_factory=list)
    category: str | None = None


def best_rule(
    *, resident: Resident, canteen: Canteen, day: date, slot: str, price_fen: int, usage: SubsidyUsage
) -> RuleDecision:
    """Decide the subsidy of a meal exactly as DESIGN.md "The money path, exactly" pins it.

    The policy is the one in force on `day` in the canteen's district. Among its rules whose
    category the resident holds that day (stored categories valid that day plus the age
    categories), whose slot is the meal's slot or `any`, whose `min_price_fen` (if set) is at
    most the price, and whose caps are not used up — a `per_day` rule is used up for the day once
    an earlier meal that day was subsidised by it; `max_per_day` / `max_per_month` count the
    resident's earlier valid meals subsidised by that rule (calendar month of `day`) — the rule
    with the largest `amount_fen` wins (ties: the lowest rule id). Subsidy = min(amount, price);
    copay = price − subsidy. With no rule left the meal is at full price, with the warning
    `cap_reached` if some rule was excluded only by its caps, else `no_subsidy_rule`.

    The decision never depends on who asks: the policy and the resident's categories are read
    without the caller's scope (staff may serve a resident of another district). On PostgreSQL
    it holds the district's policy lock shared until the transaction ends, so a policy being
    ended waits for the meals being priced with it, and then sees them.
    """
    if not _is_whole(price_fen):
        raise field_error("price_fen", "A price is 0 or more.")
    if slot not in SLOTS:
        raise field_error("slot", f"Must be one of: {', '.join(SLOTS)}.")
    _lock_district_policies(canteen.district_id, shared=True)
    with scoping.unrestricted():
        policy = policy_in_force(canteen.district_id, day)
        held = set(_categories_on(resident, day))
    if policy is None:
        return _full_price(price_fen, NO_SUBSIDY_RULE, MESSAGE_NO_POLICY)
    candidates: list[SubsidyRule] = []
    capped = False
    for rule in policy.rules:
        if rule.category not in held or rule.slot not in (slot, "any"):
            continue
        if rule.min_price_fen is not None and price_fen < rule.min_price_fen:
            continue
        if _used_up(rule, day, usage):
            capped = True
            continue
        candidates.append(rule)
    if not candidates:
        if capped:
            return _full_price(price_fen, CAP_REACHED, MESSAGE_CAP_REACHED)
        return _full_price(price_fen, NO_SUBSIDY_RULE, MESSAGE_NO_RULE)
    rule = min(candidates, key=lambda r: (-r.amount_fen, r.id))
    subsidy = min(rule.amount_fen, price_fen)
    return RuleDecision(rule=rule, subsidy_fen=subsidy, copay_fen=price_fen - subsidy, category=rule.category)


def _used_up(rule: SubsidyRule, day: date, usage: SubsidyUsage) -> bool:
    daily_cap = 1 if rule.unit == PER_DAY else rule.max_per_day
    if daily_cap is not None and usage.subsidised_meals(rule.id, day=day) >= daily_cap:
        return True
    monthly_cap = rule.max_per_month
    return monthly_cap is not None and usage.subsidised_meals_in_month(rule.id, month_of=day) >= monthly_cap


def _categories_on(resident: Resident, day: date) -> list[str]:
    # The categories collection may have been loaded under a scope that hides it (staff of
    # another district): reload it unrestricted (the caller holds scoping.unrestricted()).
    state = sa.inspect(resident)
    if state.persistent and "categories" not in state.unloaded:
        db.session.refresh(resident, ["categories"])
    return resident_service.categories_on(resident, day)


def _full_price(price_fen: int, code: str, message: str) -> RuleDecision:
    return RuleDecision(rule=None, subsidy_fen=0, copay_fen=price_fen, warnings=[{"code": code, "message": message}])
