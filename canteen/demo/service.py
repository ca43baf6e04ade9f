"""Loading the demo city through the domain services, so the demo obeys the same rules as real data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.auth.models import User
from canteen.core import clock, scoping
from canteen.core.db import advisory_lock
from canteen.core.errors import Conflict
from canteen.demo import data
from canteen.demo import food_safety as demo_food_safety
from canteen.demo import meals as demo_meals
from canteen.demo import residents as demo_residents
from canteen.extensions import db
from canteen.meals import service as meal_service
from canteen.meals.models import MealRecord
from canteen.org import service as org_service
from canteen.org.models import Canteen, Community, District
from canteen.residents import service as resident_service
from canteen.residents.models import Resident
from canteen.subsidies import service as subsidy_service
from canteen.subsidies.models import SubsidyPolicy

# the same key in every process, so two loaders started at once take turns (PostgreSQL)

DEFAULT_RESIDENTS = 3000


@dataclass(frozen=True)
class DemoLogin:
    """One demo account as printed for the person trying the demo out."""

    username: str
    role: str
    display_name: str
    scope_name: str  # the city, a district or a canteen


@dataclass
class DemoCity:
    """What `load_demo_city` created, by the codes and names used in `canteen.demo.data`.

    Each loading step adds its part, and later steps (residents, menus, meals) look up what
    earlier ones made here instead of querying again.
    """

    districts: dict[str, District] = field(default_factory=dict)  # by division code
    communities: dict[tuple[str, str], Community] = field(default_factory=dict)  # by (division code, name)
    canteens: dict[str, Canteen] = field(default_factory=dict)  # kitchens too, by canteen code
    users: dict[str, User] = field(default_factory=dict)  # by username
    residents: list[Resident] = field(default_factory=list)  # in the order they were registered
    resident_counts: Counter[str] = field(default_factory=Counter)  # "with_card", "suspended", ... (from the seeds)
    policies: list[SubsidyPolicy] = field(default_factory=list)  # in the order they were created
    meal_counts: Counter[str] = field(default_factory=Counter)  # "valid", "void", "delivery", "subsidy_fen", ...
    meals_from: date | None = None  # the first day with meals
    meals_to: date | None = None  # the load date
    food_safety: demo_food_safety.FoodSafetyDemo | None = None  # samples, checks, readings, deviations

    @property
    def logins(self) -> list[DemoLogin]:
        return [_login(account) for account in data.ACCOUNTS if account.username in self.users]


def city_is_empty() -> bool:
    """Whether no district exists yet — the only state the demo city may be loaded into.

    On PostgreSQL this first takes a transaction-scoped advisory lock, so two loaders started at
    once (several containers running `flask demo load --if-empty`) take turns and the second one
    sees the first one's city; on SQLite every write transaction is already exclusive.
    """
    advisory_lock(db.session, "canteen:demo-load")
    with scoping.unrestricted():
        return not db.session.scalar(sa.select(sa.exists().where(District.id.is_not(None))))


def load_demo_city(*, password: str, residents: int = DEFAULT_RESIDENTS, today: date | None = None) -> DemoCity:
    """Admin (or the command line) only. Load the demo city 西宁市 into an empty database.

    Creates, through the organisation, account and residents services so every rule applies:
    - the 7 districts of 西宁市 with their real division codes and 2–4 communities each;
    - 2 central kitchens (城东区, 城北区; the 城东区 kitchen cooks halal) and 16 canteens and
      meal points spread over every district, some halal, some closed on Sunday, each meal
      point supplied by a kitchen, some canteens supplied by a kitchen of a neighbouring district;
    - one account per role and scope: `admin`, `officer.<district>` for each district,
      `kitchen.<code>` for each kitchen and `staff.<code>` for each canteen, all with `password`;
    - `residents` fictitious residents (default 3,000; see `canteen.demo.residents`), registered
      by their district's officer on dates up to `today` (default: today), with categories, diet
      profiles, consent, meal cards and a few suspensions and deaths;
    - a subsidy policy per district (`data.POLICIES`: amounts by category and slot, a per-day
      rule, caps, a minimum price, an operator allowance; in 城东区 an ended policy and its
      successor), created by the district's officer;
    - the meals of the four weeks before `today` and those of `today` served by now (see
      `canteen.demo.meals`), recorded through the meals service by each canteen's counter
      account (`staff.<code>`), so every subsidy is decided by the money path; a few voided;
    - a few weeks of food-safety records at every site with some realistic lapses and their
      deviations worked through the workflow (see `canteen.demo.food_safety`).

    Refused (409 `demo_city_not_empty`) when any district exists. Only flushes: the caller
    commits. Writes are audit-logged when an actor is set.
    """
    scoping.require_role(scoping.ADMIN)
    if not city_is_empty():
        raise Conflict(
            "The database already holds districts; the demo city loads only into an empty one.",
            code="demo_city_not_empty",
        )
    today = today or clock.today()
    city = DemoCity()
    _load_organisation(city)
    _load_accounts(city, password=password)
    seeds = demo_residents.generate_residents(residents, today=today)
    _load_residents(city, seeds)
    _load_policies(city)
    _load_meals(city, seeds, today=today)
    city.food_safety = demo_food_safety.load_food_safety_demo(city, today)
    return city


def find_demo_logins() -> list[DemoLogin]:
    """The demo accounts that exist in the database (for reminding who can log in)."""
    usernames = [account.username for account in data.ACCOUNTS]
    with scoping.unrestricted():
        existing = set(db.session.scalars(sa.select(User.username).where(User.username.in_(usernames))))
    return [_login(account) for account in data.ACCOUNTS if account.username in existing]


def _load_organisation(city: DemoCity) -> None:
    for seed in data.DISTRICTS:
        district = org_service.create_district(code=seed.code, name=seed.name)
        city.districts[seed.code] = district
        for name in seed.communities:
            city.communities[(seed.code, name)] = org_service.create_community(district_id=district.id, name=name)
    # kitchens first: canteens name their supplier
    for seed in (*data.KITCHENS, *data.CANTEENS):
        community = city.communities[(seed.district_code, seed.community)] if seed.community else None
        supplier = city.canteens[seed.supplied_by] if seed.supplied_by else None
        city.canteens[seed.code] = org_service.create_canteen(
            code=seed.code,
            name=seed.name,
            kind=seed.kind,
            district_id=city.districts[seed.district_code].id,
            community_id=community.id if community else None,
            supplied_by_id=supplier.id if supplier else None,
            address=seed.address,
            halal=seed.halal,
            seats=seed.seats,
            opening_hours=seed.opening_hours,
            closed_weekdays=list(seed.closed_weekdays),
        )


def _load_accounts(city: DemoCity, *, password: str) -> None:
    for account in data.ACCOUNTS:
        city.users[account.username] = auth_service.create_user(
            username=account.username,
            role=account.role,
            password=password,
            display_name=account.display_name,
            district_id=city.districts[account.district_code].id if account.district_code else None,
            canteen_id=city.canteens[account.canteen_code].id if account.canteen_code else None,
        )


def _load_residents(city: DemoCity, seeds: list[demo_residents.ResidentSeed]) -> None:
    # each resident is recorded as registered by their district's officer
    officers = _officer_scopes(city)
    for seed in seeds:
        with scoping.acting_as(officers[seed.district_code]):
            resident = resident_service.register_resident(
                name=seed.name,
                id_doc_type="resident_id_card",
                id_number=seed.id_number,
                district_id=city.districts[seed.district_code].id,
                phone=seed.phone,
                community_id=city.communities[(seed.district_code, seed.community)].id,
                address=seed.address,
                home_canteen_id=city.canteens[seed.home_canteen_code].id,
                card_no=seed.card_no,
                delivery_registered=seed.delivery_registered,
                emergency_contact=seed.emergency_contact,
                diet=seed.diet,
                consent=seed.consent,
                registered_on=seed.registered_on,
            )
            for category in seed.categories:
                resident_service.add_category(
                    resident.id,
                    category=category.category,
                    valid_from=category.valid_from,
                    valid_to=category.valid_to,
                    evidence=category.evidence,
                )
            if seed.status_change is not None:
                resident_service.set_status(
                    resident.id,
                    status=seed.status_change.status,
                    effective_on=seed.status_change.effective_on,
                    reason=seed.status_change.reason,
                )
        city.residents.append(resident)
        city.resident_counts.update(_features(seed))


def _officer_scopes(city: DemoCity) -> dict[str, scoping.Scope]:
    # Each district's writes are recorded as its officer's. The loader keeps the system scope while
    # doing so (a scope with the officer's user id): the services apply the same rules, and
    # thousands of writes skip building the officer's row filters for every query.
    return {
        seed.code: scoping.Scope(role=scoping.SYSTEM.role, user_id=city.users[f"officer.{seed.slug}"].id)
        for seed in data.DISTRICTS
    }


def _load_policies(city: DemoCity) -> None:
    officers = _officer_scopes(city)
    for seed in data.POLICIES:
        with scoping.acting_as(officers[seed.district_code]):
            policy = subsidy_service.create_policy(
                district_id=city.districts[seed.district_code].id,
                name=seed.name,
                valid_from=seed.valid_from,
                operator_allowance_fen=seed.operator_allowance_fen,
                rules=[rule.as_rule() for rule in seed.rules],
            )
            # an ended policy ran open-ended until the officer ended it, before its successor
            if seed.valid_to is not None:
                subsidy_service.end_policy(policy.id, valid_to=seed.valid_to)
        city.policies.append(policy)


def _load_meals(city: DemoCity, seeds: list[demo_residents.ResidentSeed], *, today: date) -> None:
    # Only meals served by now: the meals service refuses a meal served in the future.
    until = min(clock.now(), datetime.combine(today, time.max, tzinfo=clock.TIME_ZONE))
    plan = demo_meals.plan_meals(seeds, today=today, until=until)
    city.meals_from, city.meals_to = today - timedelta(days=demo_meals.DAYS), today
    # Each canteen's meals are recorded by its counter account. As for the residents, the loader
    # keeps the system scope with that account's user id: for what the demo records (active
    # residents, at the account's own canteen) the meals service applies exactly the counter's
    # rules, and some six thousand meals skip building staff row filters for every query.
    counters = {
        seed.code: scoping.Scope(role=scoping.SYSTEM.role, user_id=city.users[f"staff.{seed.code.lower()}"].id)
        for seed in data.CANTEENS
    }
    for seed in plan:
        with scoping.acting_as(counters[seed.canteen_code]):
            meal = _record(city, seed)
            if seed.void_reason:
                meal_service.void_meal(meal.id, reason=seed.void_reason)
                city.meal_counts["void"] += 1
                if seed.replaced_by is not None:
                    meal = _record(city, seed.replaced_by)
            if meal.is_valid:
                city.meal_counts.update(_meal_features(meal))


def _record(city: DemoCity, seed: demo_meals.MealSeed) -> MealRecord:
    return meal_service.record_meal(
        canteen_id=city.canteens[seed.canteen_code].id,
        resident_id=city.residents[seed.resident].id,
        served_on=seed.served_on,
        served_at=seed.served_at,
        slot=seed.slot,
        mode=seed.mode,
        price_fen=seed.price_fen,
        payment_method=seed.payment_method,
        verification=seed.verification,
        attest_reason=seed.attest_reason,
        collected_by=seed.collected_by,
    )


def _meal_features(meal: MealRecord) -> Counter[str]:
    counts = Counter({"valid": 1, meal.mode: 1, "subsidy_fen": meal.subsidy_fen, "copay_fen": meal.copay_fen})
    counts["subsidised" if meal.subsidy_fen else "full_price"] += 1
    counts.update(warning["code"] for warning in meal.warnings)
    return counts


def _features(seed: demo_residents.ResidentSeed) -> list[str]:
    features = [
        name
        for name, present in (
            ("with_categories", seed.categories),
            ("with_diet", seed.restrictions or seed.allergens),
            ("halal", "halal" in seed.restrictions),
            ("with_card", seed.card_no),
            ("with_consent", seed.consent_method),
            ("delivery", seed.delivery_registered),
        )
        if present
    ]
    return [*features, seed.status_change.status if seed.status_change else "active"]


def _login(account: data.AccountSeed) -> DemoLogin:
    return DemoLogin(account.username, account.role, account.display_name, account.scope_name)
