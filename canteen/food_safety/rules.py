"""The food-safety rules' numbers and vocabularies, each with its source, in one place.

Sources named below:
- GB 31654-2021 《食品安全国家标准 餐饮服务通用卫生规范》 (the national standard for catering hygiene,
  in force since 2022-02-22; it names 养老机构食堂 among the kitchens that must retain samples);
- SAMR 《餐饮服务食品安全操作规范》 (市场监管总局公告 2018 年第 12 号, "SAMR 2018" below);
- 《中华人民共和国食品安全法》 (Food Safety Law) article 45: people handling food have a health
  examination every year and work only with a valid health certificate (健康证).

What a city may set differently (cold-storage limits, deadlines, checklist items) is a setting
(config/base.py, FOOD_SAFETY_*), read through the functions at the end of this module. A setting
may tighten a statutory limit, never loosen it: a looser one is refused when it is first used.
Temperatures are integer tenths of a degree Celsius everywhere below the API (8.1 °C = 81), so
the boundary 8.0 vs 8.1 °C is exact on every database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app

from canteen.core.clock import TIME_ZONE

# --- retained samples (留样) ----------------------------------------------------------------------
# GB 31654-2021 and SAMR 2018: samples of every dish of every meal, each dish in its own cleaned and
# disinfected sealed container, kept refrigerated in dedicated cold storage for 48 hours or more;
# "每个品种的留样量应能满足检验检测需要，且不少于125g".
SAMPLE_MIN_WEIGHT_G = 125
SAMPLE_MIN_HOURS = 48
SAMPLE_MIN_RETENTION = timedelta(hours=SAMPLE_MIN_HOURS)
SAMPLE_MAX_WEIGHT_G = 5000  # not a rule: a typo guard (5 kg of one dish is no sample)
# SAMR 2018 defines refrigeration (冷藏) as storage at 0–8 °C: samples go to a sample refrigerator
# (专用冷藏设备), whose readings are held to these limits.
REFRIGERATED_MIN_TENTHS = 0
REFRIGERATED_MAX_TENTHS = 80

# --- cooked food (the kitchen's delivery rules use these) -------------------------------------------
# GB 31654-2021 and SAMR 2018: cooked food kept more than 2 hours before it is eaten is held above
# 60 °C or below 8 °C; between the two it must be eaten within 2 hours of cooking.
COOKED_HOT_HOLD_MIN_TENTHS = 600
COOKED_COLD_HOLD_MAX_TENTHS = 80
COOKED_MAX_HOURS_BETWEEN = 2


def cooked_food_held_safely(temperature_tenths: int) -> bool:
    """Whether cooked food at this temperature is held safely: at or above 60 °C, or at or below
    8 °C (GB 31654-2021, SAMR 2018). Between the two only a 2-hour window applies."""
    return temperature_tenths >= COOKED_HOT_HOLD_MIN_TENTHS or temperature_tenths <= COOKED_COLD_HOLD_MAX_TENTHS


# --- health certificates (健康证) -------------------------------------------------------------------
# Food Safety Law art. 45: a health examination every year. A certificate is valid for one year:
# its last valid day is at most the same date one year after issue (both printing customs exist:
# "valid to 2026-03-09" and "valid to 2026-03-10" for one issued 2025-03-10); the default is the day
# before. A certificate is valid on its expiry date itself and expired from the next day.
CERTIFICATE_VALIDITY_YEARS = 1


def certificate_longest_expiry(issued_on: date) -> date:
    """The latest expiry date a certificate issued on `issued_on` may carry (29 Feb → 28 Feb)."""
    try:
        return issued_on.replace(year=issued_on.year + CERTIFICATE_VALIDITY_YEARS)
    except ValueError:
        return issued_on.replace(year=issued_on.year + CERTIFICATE_VALIDITY_YEARS, day=28)


def certificate_default_expiry(issued_on: date) -> date:
    """One year of validity counted from the issue date: the day before the same date next year."""
    return certificate_longest_expiry(issued_on) - timedelta(days=1)


# --- morning health check (晨检) ------------------------------------------------------------------
# GB 31654-2021 and SAMR 2018: staff with fever, diarrhoea, an inflamed throat and the like, or with
# wounds or infections of the skin, report it and stop handling food that is eaten as it is, until
# the cause is found and cured. The fixed list of symptoms asked about each morning (issue 8).
# Anyone with one of them is sent home, never marked fit; nor is anyone without a valid certificate.
SYMPTOMS = (
    "fever",
    "nausea",
    "vomiting",
    "diarrhoea",
    "abdominal_pain",
    "wound",
    "burn",
    "eczema",
    "jaundice",
    "sore_throat",
    "cough",
    "other",
)

# --- site staff, devices, checklist items ---------------------------------------------------------
JOBS = ("cook", "kitchen_helper", "server", "driver", "cleaner", "manager", "other")
REFRIGERATOR = "refrigerator"
FREEZER = "freezer"
SAMPLE_REFRIGERATOR = "sample_refrigerator"  # 留样专用冰箱: only samples, refrigerated
DEVICE_KINDS = (REFRIGERATOR, FREEZER, SAMPLE_REFRIGERATOR)
# SAMR 2018 (餐用具清洗消毒): physical disinfection — a disinfection cabinet, steam or boiling — is
# preferred; chemical disinfection (e.g. chlorine solution) is followed by rinsing.
DISINFECTION_METHODS = ("disinfection_cabinet", "steam", "boiling", "chemical", "other")

TABLEWARE_DISINFECTION = "tableware_disinfection"


@dataclass(frozen=True)
class ChecklistItem:
    """One item of the daily checklist besides the morning check. `label` is the English name (a
    msgid for known items); custom items from the settings carry their Chinese name in `label_zh`.
    `needs_method_and_time`: a passed answer says how and when (tableware disinfection)."""

    key: str
    label: str
    label_zh: str | None = None
    needs_method_and_time: bool = False


# The items the issue names, plus two more a city may switch on (FOOD_SAFETY_CHECKLIST_ITEMS).
KNOWN_CHECKLIST_ITEMS = {
    item.key: item
    for item in (
        ChecklistItem(TABLEWARE_DISINFECTION, "Tableware disinfection", needs_method_and_time=True),
        ChecklistItem("pest_control", "Pest control"),
        ChecklistItem("raw_cooked_separation", "Raw and cooked food kept apart"),
        ChecklistItem("waste_disposal", "Waste disposal"),
        ChecklistItem("food_storage", "Food storage (labels, dates, off the floor)"),
        ChecklistItem("hand_hygiene", "Hand washing and disinfection facilities"),
    )
}

# --- deviations -----------------------------------------------------------------------------------
# Every breach in the system is one Deviation of one of these kinds. Raised by this domain's rules:
SAMPLE_MISSING = "sample_missing"  # a served dish of a slot has no retained sample by the deadline
SAMPLE_UNDERWEIGHT = "sample_underweight"  # a sample under SAMPLE_MIN_WEIGHT_G
SAMPLE_UNSEALED = "sample_unsealed"  # a sample not in a sealed container
CHECKLIST_MISSING = "checklist_missing"  # the day's checklist or a morning check not done by the deadline
CHECKLIST_FAILED = "checklist_failed"  # a checklist item still failed at the deadline
TEMPERATURE_OUT_OF_RANGE = "temperature_out_of_range"  # a reading outside its device's limits
READINGS_MISSING = "readings_missing"  # fewer readings of a device in a day than required
# Raised by other domains through service.raise_deviation, or reported by a person:
DELIVERY_TEMPERATURE = "delivery_temperature"  # kitchen deliveries: cooked food between 8 and 60 °C
DELIVERY_TIME = "delivery_time"  # kitchen deliveries: more than 2 hours from cooking to serving
INSPECTION_FINDING = "inspection_finding"  # an inspector's finding (inspections)
REPORTED = "reported"  # anything else a person saw and reported
RULE_KINDS = (
    SAMPLE_MISSING,
    SAMPLE_UNDERWEIGHT,
    SAMPLE_UNSEALED,
    CHECKLIST_MISSING,
    CHECKLIST_FAILED,
    TEMPERATURE_OUT_OF_RANGE,
    READINGS_MISSING,
)
REPORTABLE_KINDS = (REPORTED, INSPECTION_FINDING, DELIVERY_TEMPERATURE, DELIVERY_TIME)
DEVIATION_KINDS = (*RULE_KINDS, *REPORTABLE_KINDS)

# the workflow: open → acknowledged → action_recorded → verified (an officer may send it back to
# acknowledged, with a reason, for a better action)
OPEN = "open"
ACKNOWLEDGED = "acknowledged"
ACTION_RECORDED = "action_recorded"
VERIFIED = "verified"
DEVIATION_STATUSES = (OPEN, ACKNOWLEDGED, ACTION_RECORDED, VERIFIED)
UNVERIFIED_STATUSES = (OPEN, ACKNOWLEDGED, ACTION_RECORDED)


# --- temperatures ---------------------------------------------------------------------------------
def to_tenths(celsius: Decimal | int | float | str) -> int:
    """°C as integer tenths (8.1 → 81); the value must have at most one decimal place."""
    value = Decimal(str(celsius))
    tenths = value * 10
    if tenths != tenths.to_integral_value():
        raise ValueError("a temperature has at most one decimal place")
    return int(tenths)


def to_celsius(tenths: int) -> float:
    """Integer tenths of °C as a number for JSON and pages (81 → 8.1)."""
    return float(Decimal(tenths) / 10)


# --- settings ---------------------------------------------------------------------------------------
class SettingError(RuntimeError):
    """A FOOD_SAFETY_* setting that cannot be used (a broken value, or looser than the law)."""


def device_limits(kind: str) -> tuple[int | None, int | None]:
    """(lowest, highest) allowed reading of a device kind in tenths of °C; None: no limit that side.

    From FOOD_SAFETY_DEVICE_LIMITS_C. Refrigerators and sample refrigerators may not be set looser
    than SAMR 2018's 0–8 °C.
    """
    configured = current_app.config["FOOD_SAFETY_DEVICE_LIMITS_C"]
    if kind not in configured:
        raise SettingError(f"FOOD_SAFETY_DEVICE_LIMITS_C has no limits for {kind!r}")
    try:
        low, high = configured[kind]
        low_tenths = None if low is None else to_tenths(low)
        high_tenths = None if high is None else to_tenths(high)
    except (TypeError, ValueError, ArithmeticError) as error:
        raise SettingError(f"FOOD_SAFETY_DEVICE_LIMITS_C[{kind!r}] must be [low, high] in °C: {error}") from None
    if low_tenths is None and high_tenths is None:
        raise SettingError(f"FOOD_SAFETY_DEVICE_LIMITS_C[{kind!r}] sets no limit at all")
    if low_tenths is not None and high_tenths is not None and low_tenths > high_tenths:
        raise SettingError(f"FOOD_SAFETY_DEVICE_LIMITS_C[{kind!r}]: the low limit is above the high one")
    if kind in (REFRIGERATOR, SAMPLE_REFRIGERATOR) and (
        low_tenths is None
        or low_tenths < REFRIGERATED_MIN_TENTHS
        or high_tenths is None
        or high_tenths > REFRIGERATED_MAX_TENTHS
    ):
        raise SettingError(f"FOOD_SAFETY_DEVICE_LIMITS_C[{kind!r}] is looser than 0–8 °C (SAMR 2018 冷藏)")
    return low_tenths, high_tenths


def in_limits(temperature_tenths: int, limits: tuple[int | None, int | None]) -> bool:
    """Whether a reading is within (lowest, highest), both inclusive: 8.0 °C is in a 0–8 °C fridge, 8.1 is not."""
    low, high = limits
    return (low is None or temperature_tenths >= low) and (high is None or temperature_tenths <= high)


def readings_per_day() -> int:
    """Readings each fridge and freezer needs per day (issue 8: at least twice a day)."""
    value = current_app.config["FOOD_SAFETY_READINGS_PER_DAY"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        raise SettingError("FOOD_SAFETY_READINGS_PER_DAY must be a whole number of at least 2")
    return value


def _clock_time(name: str, value: Any) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name} must be a time of day like '10:00', not {value!r}") from None


def checklist_deadline(day: date) -> datetime:
    """When the day's checklist (morning checks included) must be complete and passed."""
    at = _clock_time("FOOD_SAFETY_CHECKLIST_DEADLINE", current_app.config["FOOD_SAFETY_CHECKLIST_DEADLINE"])
    return datetime.combine(day, at, tzinfo=TIME_ZONE)


def readings_deadline(day: date) -> datetime:
    """When the day's readings of every device must be in."""
    at = _clock_time("FOOD_SAFETY_READINGS_DEADLINE", current_app.config["FOOD_SAFETY_READINGS_DEADLINE"])
    return datetime.combine(day, at, tzinfo=TIME_ZONE)


def sample_deadline(day: date, slot: str, opening_hours: dict[str, Any]) -> datetime:
    """When the samples of a slot's served dishes must be in: the end of the site's opening hours
    for the slot plus FOOD_SAFETY_SAMPLE_GRACE_MINUTES, or FOOD_SAFETY_SAMPLE_DEADLINES[slot] where
    the site has no (readable) hours for it."""
    grace = current_app.config["FOOD_SAFETY_SAMPLE_GRACE_MINUTES"]
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        raise SettingError("FOOD_SAFETY_SAMPLE_GRACE_MINUTES must be a whole number of minutes, 0 or more")
    hours = opening_hours.get(slot) if isinstance(opening_hours, dict) else None
    if isinstance(hours, list | tuple) and len(hours) == 2:
        try:
            closes = time.fromisoformat(hours[1])
        except (TypeError, ValueError):
            closes = None
        if closes is not None:
            return datetime.combine(day, closes, tzinfo=TIME_ZONE) + timedelta(minutes=grace)
    defaults = current_app.config["FOOD_SAFETY_SAMPLE_DEADLINES"]
    if slot not in defaults:
        raise SettingError(f"FOOD_SAFETY_SAMPLE_DEADLINES has no time for {slot!r}")
    return datetime.combine(day, _clock_time("FOOD_SAFETY_SAMPLE_DEADLINES", defaults[slot]), tzinfo=TIME_ZONE)


def certificate_warning_days() -> int:
    """Certificates expiring within this many days are listed for the site and the district."""
    value = current_app.config["FOOD_SAFETY_CERTIFICATE_WARNING_DAYS"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SettingError("FOOD_SAFETY_CERTIFICATE_WARNING_DAYS must be a whole number of days")
    return value


def checklist_items() -> list[ChecklistItem]:
    """The day's checklist items besides the morning check, as FOOD_SAFETY_CHECKLIST_ITEMS lists
    them: a known key, or {"key", "label", "label_zh"} for an item of the city's own."""
    items: list[ChecklistItem] = []
    for entry in current_app.config["FOOD_SAFETY_CHECKLIST_ITEMS"]:
        if isinstance(entry, str):
            if entry not in KNOWN_CHECKLIST_ITEMS:
                known = ", ".join(KNOWN_CHECKLIST_ITEMS)
                raise SettingError(f"FOOD_SAFETY_CHECKLIST_ITEMS: unknown item {entry!r} (known: {known})")
            items.append(KNOWN_CHECKLIST_ITEMS[entry])
            continue
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry[k] for k in ("key", "label")):
            raise SettingError(f"FOOD_SAFETY_CHECKLIST_ITEMS: {entry!r} is neither a known key nor {{key, label}}")
        if len(entry["key"]) > 40 or entry["key"] in KNOWN_CHECKLIST_ITEMS:
            raise SettingError(f"FOOD_SAFETY_CHECKLIST_ITEMS: the key {entry['key']!r} is too long or taken")
        items.append(ChecklistItem(entry["key"], entry["label"], entry.get("label_zh") or None))
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise SettingError("FOOD_SAFETY_CHECKLIST_ITEMS lists an item twice")
    return items
