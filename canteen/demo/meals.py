"""Demo meals, generated: several weeks of what the demo residents ate, up to the load date.

About one resident in fifteen is a regular who eat lunch at their home canteen on most days it
is open, some of them breakfast or dinner too; residents registered for delivery mostly have
their meals delivered. Another share eat there now and then, sometimes at another canteen of
the city. Nobody eats on a day their canteen is closed or while they are not active
(not yet registered, suspended, deceased). Payments are mixed (cash, WeChat, Alipay, card),
residents show their meal card (or ID card), and a few meals are out of the ordinary: staff
vouched for the resident, a relative collected the meal, the counter recorded it after the
slot's hours, or it was voided at once (once voided and recorded again, corrected).

This module only decides the meals (`MealSeed`); `canteen.demo.service` records them through
the meals service, which decides every subsidy. The same residents, date and seed always give
the same meals (those served after `until` are left out).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from canteen.core.clock import TIME_ZONE
from canteen.demo import data
from canteen.demo.residents import ResidentSeed

DAYS = 28  # meals from four weeks before the load date up to that day

SHARE_REGULAR = 0.07
SHARE_OCCASIONAL = 0.06
LUNCH_CHANCE = {"regular": (0.85, 0.55), "occasional": (0.18, 0.08)}  # (weekday, weekend)
SHARE_BREAKFAST_HABIT = 0.35
BREAKFAST_CHANCE = 0.7
SHARE_DINNER_HABIT = 0.30
DINNER_CHANCE = 0.6
SHARE_DELIVERED = 0.8  # of the regulars registered for delivery
SHARE_PICKUP = 0.08
SHARE_AWAY = 0.2  # of an occasional eater's meals: at another canteen
# out of the ordinary, as shares of the meals before the load date (at least one of each)
SHARE_OUTSIDE_HOURS = 0.002
SHARE_ATTESTED = 0.02
SHARE_VOID = 0.004
COLLECTED_BY_RELATIVE = 2

PAYMENT_WEIGHTS = (("cash", 40), ("wechat", 30), ("alipay", 10), ("card", 20))
SHARE_PREFERRED_PAYMENT = 0.85
# with a meal card at hand most residents tap it; a few use the face or QR terminal
CARD_VERIFICATIONS = (("card", 92), ("face", 5), ("qr", 3))
SLOT_ORDER = (data.BREAKFAST, data.LUNCH, data.DINNER)
WEEKEND = (5, 6)


@dataclass(frozen=True)
class MealSeed:
    """One meal to record, by the resident's position in the generated residents and codes."""

    resident: int  # index into the residents the meals were planned for
    canteen_code: str
    served_on: date
    served_at: datetime
    slot: str
    mode: str  # dine_in | pickup | delivery
    price_fen: int
    payment_method: str
    verification: str
    attest_reason: str = ""
    collected_by: str = ""
    void_reason: str = ""  # voided at the counter right after it was recorded
    replaced_by: MealSeed | None = None  # recorded again, corrected, right after the void


@dataclass
class _Eater:
    index: int
    seed: ResidentSeed
    kind: str  # regular | occasional
    breakfast: float = 0.0
    dinner: float = 0.0
    delivered: bool = False
    payment: str = "cash"


def meal_price(canteen: data.CanteenSeed, slot: str) -> int:
    """What a meal costs at a demo canteen (fen)."""
    return data.MEAL_PRICE_OVERRIDES.get(canteen.code, {}).get(slot) or data.MEAL_PRICES[canteen.kind][slot]


def is_active_on(seed: ResidentSeed, day: date) -> bool:
    """Whether the generated resident is active on `day`: registered, and not yet suspended or deceased."""
    if day < seed.registered_on:
        return False
    return seed.status_change is None or day < seed.status_change.effective_on


def is_open(canteen: data.CanteenSeed, day: date, slot: str) -> bool:
    return slot in canteen.slots and day.weekday() not in canteen.closed_weekdays


def plan_meals(
    residents: Sequence[ResidentSeed], *, today: date, until: datetime, days: int = DAYS, seed: int = 2026
) -> list[MealSeed]:
    """The meals of the `days` days before `today` and of `today` itself, in the order a counter
    would record them (by time served), leaving out those served after `until`."""
    rng = random.Random(seed)
    canteens = {c.code: c for c in data.CANTEENS}
    eaters = _eaters(rng, residents, canteens)
    meals: list[MealSeed] = []
    for offset in range(days, -1, -1):
        day = today - timedelta(days=offset)
        for eater in eaters:
            # a generator per resident and day: one resident's meals never shift another's
            day_rng = random.Random(f"{seed}:{eater.index}:{day.isoformat()}")
            meals.extend(_meals_of_day(day_rng, eater, day, canteens))
    meals.sort(key=lambda meal: meal.served_at)
    meals = _out_of_the_ordinary(rng, meals, today=today, residents=residents)
    meals.sort(key=lambda meal: meal.served_at)
    return [meal for meal in meals if meal.served_at <= until]


def _eaters(
    rng: random.Random, residents: Sequence[ResidentSeed], canteens: dict[str, data.CanteenSeed]
) -> list[_Eater]:
    count = len(residents)
    order = rng.sample(range(count), count)
    n_regular = min(count, round(count * SHARE_REGULAR))
    n_occasional = min(count - n_regular, round(count * SHARE_OCCASIONAL))
    regular = set(order[:n_regular])
    occasional = set(order[n_regular : n_regular + n_occasional])
    # even a small demo has someone whose meals are delivered
    delivered = next((i for i in order[:n_regular] if residents[i].delivery_registered), None)
    if delivered is None:
        delivered = next((i for i in order if residents[i].delivery_registered), None)
        if delivered is not None:
            occasional.discard(delivered)
            regular.add(delivered)
    eaters = []
    for index in sorted(regular | occasional):
        resident = residents[index]
        home = canteens[resident.home_canteen_code]
        eater = _Eater(index, resident, "regular" if index in regular else "occasional")
        eater.payment = _weighted(rng, PAYMENT_WEIGHTS)
        if eater.kind == "regular":
            eater.delivered = (resident.delivery_registered and rng.random() < SHARE_DELIVERED) or index == delivered
            if data.BREAKFAST in home.slots and not eater.delivered and rng.random() < SHARE_BREAKFAST_HABIT:
                eater.breakfast = BREAKFAST_CHANCE
            if data.DINNER in home.slots and rng.random() < SHARE_DINNER_HABIT:
                eater.dinner = DINNER_CHANCE
        eaters.append(eater)
    # and someone who comes for breakfast, and for dinner, where a regular's canteen serves them
    regulars = [e for e in eaters if e.kind == "regular" and not e.delivered]
    for slot, chance, attribute in (
        (data.BREAKFAST, BREAKFAST_CHANCE, "breakfast"),
        (data.DINNER, DINNER_CHANCE, "dinner"),
    ):
        if not any(getattr(e, attribute) for e in eaters):
            serving = [e for e in regulars if slot in canteens[e.seed.home_canteen_code].slots]
            if serving:
                setattr(serving[0], attribute, chance)
    return eaters


def _meals_of_day(
    rng: random.Random, eater: _Eater, day: date, canteens: dict[str, data.CanteenSeed]
) -> list[MealSeed]:
    weekday, weekend = LUNCH_CHANCE[eater.kind]
    chances = {
        data.BREAKFAST: eater.breakfast,
        data.LUNCH: weekend if day.weekday() in WEEKEND else weekday,
        data.DINNER: eater.dinner,
    }
    draws = {slot: rng.random() for slot in SLOT_ORDER}
    away = eater.kind == "occasional" and rng.random() < SHARE_AWAY
    pick = rng.random()
    active = is_active_on(eater.seed, day)
    home = canteens[eater.seed.home_canteen_code]
    meals = []
    for slot in SLOT_ORDER:
        if not active or draws[slot] >= chances[slot]:
            continue
        canteen = home
        if away and slot == data.LUNCH:
            others = [c for c in canteens.values() if c.code != home.code and is_open(c, day, slot)]
            canteen = rng.choice(others) if others else home
        if not is_open(canteen, day, slot):
            continue
        if eater.delivered and canteen is home:
            mode = "delivery"
        else:
            mode = "pickup" if pick < SHARE_PICKUP else "dine_in"
        meals.append(
            MealSeed(
                resident=eater.index,
                canteen_code=canteen.code,
                served_on=day,
                served_at=_served_at(rng, day, slot, mode),
                slot=slot,
                mode=mode,
                price_fen=meal_price(canteen, slot),
                payment_method=(
                    eater.payment if rng.random() < SHARE_PREFERRED_PAYMENT else _weighted(rng, PAYMENT_WEIGHTS)
                ),
                verification=_weighted(rng, CARD_VERIFICATIONS) if eater.seed.card_no else "id_card",
            )
        )
    return meals


def _served_at(rng: random.Random, day: date, slot: str, mode: str) -> datetime:
    opens, closes = (_minutes(text) for text in data.SLOT_HOURS[slot])
    if mode == "delivery":  # recorded when the round leaves, early in the slot
        minute = opens + rng.uniform(0, 30)
    else:  # most come early
        minute = rng.triangular(opens, closes, opens + (closes - opens) * 0.3)
    return _at(day, min(minute, closes))


def _out_of_the_ordinary(
    rng: random.Random, meals: list[MealSeed], *, today: date, residents: Sequence[ResidentSeed]
) -> list[MealSeed]:
    """A few meals before `today` (so they do not depend on the time of loading) made unusual."""
    before = [i for i, meal in enumerate(meals) if meal.served_on < today]
    counts = {
        name: max(1, round(len(before) * share))
        for name, share in (("outside", SHARE_OUTSIDE_HOURS), ("attested", SHARE_ATTESTED), ("void", SHARE_VOID))
    }
    # only meals eaten at the counter can be collected by someone else or recorded late
    at_counter = [i for i in before if meals[i].mode == "dine_in"]
    collected = rng.sample(at_counter, min(COLLECTED_BY_RELATIVE, len(at_counter)))
    at_counter = [i for i in at_counter if i not in collected]
    outside = rng.sample(at_counter, min(counts["outside"], len(at_counter)))
    taken = {*collected, *outside}
    rest = [i for i in before if i not in taken]
    chosen = rng.sample(rest, min(counts["attested"] + counts["void"], len(rest)))
    attested, voided = chosen[: counts["attested"]], chosen[counts["attested"] :]
    result = list(meals)
    for i in collected:
        meal = meals[i]
        relation, title, family = rng.choice(data.COLLECTORS)
        surname = residents[meal.resident].name[0] if family else _weighted(rng, data.SURNAMES)
        result[i] = dataclasses.replace(meal, mode="pickup", collected_by=f"{relation} {surname}{title}")
    for i in outside:  # recorded after the slot closed
        meal = meals[i]
        closes = _minutes(data.SLOT_HOURS[meal.slot][1])
        result[i] = dataclasses.replace(meal, served_at=_at(meal.served_on, closes + rng.randint(10, 40)))
    for i in attested:
        result[i] = dataclasses.replace(
            meals[i], verification="staff_attested", attest_reason=rng.choice(data.ATTEST_REASONS)
        )
    for n, i in enumerate(voided):
        meal = meals[i]
        if n == 0 and meal.mode != "pickup":  # recorded as eaten here, then corrected
            again = dataclasses.replace(meal, mode="pickup", served_at=meal.served_at + timedelta(minutes=2))
            result[i] = dataclasses.replace(meal, void_reason=data.CORRECTION_REASON, replaced_by=again)
        else:
            result[i] = dataclasses.replace(meal, void_reason=rng.choice(data.VOID_REASONS))
    return result


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _minutes(text: str) -> float:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _at(day: date, minute: float) -> datetime:
    seconds = round(minute * 60)
    return datetime.combine(day, time(seconds // 3600, seconds % 3600 // 60, seconds % 60), tzinfo=TIME_ZONE)
