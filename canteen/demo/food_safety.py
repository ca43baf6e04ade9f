"""Demo food safety: a few weeks of what every site of the demo city recorded, with realistic lapses.

For every canteen, meal point and central kitchen: its cooks, helpers, servers and drivers with
their health certificates (one expiring within the month here and there, one expired, a newcomer
still without one), a sample refrigerator, a refrigerator and a freezer (a kitchen has two
refrigerators), and for each day before the load date the morning health check, the daily
checklist, the dishes served with their retained samples (disposed of after 48 hours) and two
temperature readings per device. Scattered among them, the lapses an inspector finds: a checklist
forgotten, a pest-control problem left unresolved (another fixed the same morning), a dish without
a sample, an underweight or unsealed sample, a missed afternoon reading, a refrigerator left open,
a freezer defrosting, a cook sent home with diarrhoea, samples nobody disposed of. The rules are
then checked for each of those days, raising the deviations, and the older deviations are worked
through the workflow — acknowledged, action recorded, most verified by the district's officer, one
corrected, one sent back and recorded again; the latest still open. The load date itself is left
for the daily screen.

Everything is recorded through `canteen.food_safety.service`, by each site's own account (its
`users` entry) and the district's officer, so every rule applies. The same city, date and seed
always give the same records. Only flushes: the caller commits.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.core.clock import TIME_ZONE
from canteen.extensions import db
from canteen.food_safety import rules
from canteen.food_safety import service as food_safety_service
from canteen.food_safety.models import Deviation
from canteen.org.models import Canteen

DAYS = 21  # three weeks of records before the load date
SEED = 8
SHARE_EXTRA_LAPSE = 0.03  # besides the one of each kind placed for sure, per site and day

STAFF_NAMES = (
    "张桂芳", "王建军", "李秀英", "刘志强", "陈玉兰", "杨国华", "赵春梅", "黄永明", "周丽娟", "吴海涛",
    "徐红梅", "孙德胜", "马淑珍", "朱建平", "胡晓燕", "郭志刚", "何金凤", "高文斌", "林素芬", "罗建华",
    "韩秀云", "冯立新", "邓玉梅", "曹永强", "彭桂英", "曾庆华", "谢春燕", "马成福", "冶玉兰", "韩有福",
)  # fmt: skip
# a site's people: (job, how many) — meal points cook little (their food comes from a kitchen)
CREWS = {
    "central_kitchen": (("manager", 1), ("cook", 3), ("kitchen_helper", 2), ("driver", 2)),
    "canteen": (("manager", 1), ("cook", 2), ("kitchen_helper", 1), ("server", 1)),
    "meal_point": (("server", 2), ("kitchen_helper", 1)),
}
DISHES = {
    "breakfast": ("小米粥", "白粥", "鸡蛋羹", "花卷", "馒头", "煮鸡蛋", "豆浆"),
    "lunch": (
        "西红柿炒蛋", "清蒸鲈鱼", "土豆烧牛肉", "蒜蓉西兰花", "白菜炖豆腐", "紫菜蛋花汤", "黄焖鸡",
        "清炒时蔬", "胡萝卜炖羊肉", "冬瓜汤", "红烧肉", "肉末茄子",
    ),
    "dinner": ("番茄鸡蛋面", "蔬菜粥", "蒸南瓜", "炒青菜", "羊肉饺子", "小米粥"),
}  # fmt: skip
NOT_HALAL = frozenset({"红烧肉", "肉末茄子"})
SLOT_TIMES = {"breakfast": "07:10", "lunch": "11:20", "dinner": "17:10"}  # when samples go into the fridge
LAPSES = (
    "checklist_forgotten",  # no checklist, no morning check → checklist_missing
    "item_failed",  # pest control failed and not fixed by 10:00 → checklist_failed
    "item_fixed",  # pest control failed at 07:40, fixed by 08:30 → kept in history, no deviation
    "sample_missing",  # one lunch dish without a sample → sample_missing
    "sample_underweight",  # 118 g → sample_underweight
    "sample_unsealed",  # a container not sealed → sample_unsealed
    "reading_missed",  # the freezer's afternoon reading missed → readings_missing
    "fridge_open",  # the refrigerator left open: 9.6 °C, back to 4.3 °C an hour later
    "freezer_defrost",  # the freezer defrosting: −12.5 °C
    "cook_sick",  # a cook sent home with diarrhoea
    "not_disposed",  # that day's samples never disposed of
)
ACTIONS = {
    rules.CHECKLIST_MISSING: ("当班负责人请假，交接时漏做晨检与检查表", "补做检查并重新明确交接流程", "无受影响食品"),
    rules.CHECKLIST_FAILED: (
        "后门纱窗破损，发现蟑螂",
        "更换纱窗，请有害生物防制公司上门消杀",
        "操作间裸露食材全部废弃",
    ),
    rules.SAMPLE_MISSING: ("新员工不熟悉留样要求", "对全体员工重新培训留样制度", "该菜品已全部供应完毕，无剩余"),
    rules.SAMPLE_UNDERWEIGHT: ("该菜品出餐时所剩不多", "今后出餐前先留样", "无受影响食品"),
    rules.SAMPLE_UNSEALED: ("留样盒盖未扣紧", "更换留样盒并检查密封", "无受影响食品"),
    rules.READINGS_MISSING: ("下午当班人员忘记记录温度", "在冷柜上张贴记录提醒", "冷冻柜温度正常，无受影响食品"),
    rules.TEMPERATURE_OUT_OF_RANGE: ("冰箱门未关严", "关紧柜门，一小时后复测温度正常", "柜内熟食 2 公斤已废弃"),
}


@dataclass
class FoodSafetyDemo:
    """What `load_food_safety_demo` recorded, for the loader's summary and the tests."""

    records: Counter[str] = field(default_factory=Counter)  # "staff", "samples", "readings", ...
    deviations: Counter[str] = field(default_factory=Counter)  # by kind
    statuses: Counter[str] = field(default_factory=Counter)  # deviations by workflow status
    days_from: date | None = None
    days_to: date | None = None


@dataclass
class _Site:
    site: Canteen
    account: Any  # the site's own user
    officer: Any  # the district's officer (verifies deviations)
    staff: list = field(default_factory=list)
    devices: dict[str, Any] = field(default_factory=dict)  # "sample", "fridge", "fridge2", "freezer"
    slots: tuple[str, ...] = ()


def load_food_safety_demo(
    city, today: date | None = None, *, days: int = DAYS, seed: int = SEED, now: datetime | None = None
) -> FoodSafetyDemo:
    """Record `days` days of food safety before `today` (default: today) at every site of `city`
    (a `canteen.demo.service.DemoCity`: its canteens, kitchens and users), check the rules for
    each of those days and work the older deviations through the workflow. See the module's
    docstring. Admin (or the command line) only; only flushes."""
    scoping.require_role(scoping.ADMIN)
    today = today or clock.today()
    now = now or clock.now()
    result = FoodSafetyDemo(days_from=today - timedelta(days=days), days_to=today - timedelta(days=1))
    sites = [
        _prepare(city, site, today=today, days=days, rng=random.Random(f"{seed}:{site.code}")) for site in _sites(city)
    ]
    for prepared in sites:
        result.records["staff"] += len(prepared.staff)
        result.records["devices"] += len(prepared.devices)
    lapses = _plan_lapses(sites, today=today, days=days, rng=random.Random(f"{seed}:lapses"))
    for offset in range(days, 0, -1):
        day = today - timedelta(days=offset)
        for prepared in sites:
            rng = random.Random(f"{seed}:{prepared.site.code}:{day.isoformat()}")
            _record_day(prepared, day, lapses.get((prepared.site.code, day), set()), rng, now, result.records)
    for prepared in sites:
        for offset in range(days, 0, -1):
            food_safety_service.check_site_day(prepared.site.id, today - timedelta(days=offset), now=now)
    _work_deviations(sites, today=today, rng=random.Random(f"{seed}:workflow"))
    with scoping.unrestricted():
        site_ids = [prepared.site.id for prepared in sites]
        for kind, status in db.session.execute(
            sa.select(Deviation.kind, Deviation.status).where(Deviation.site_id.in_(site_ids))
        ):
            result.deviations[kind] += 1
            result.statuses[status] += 1
    return result


def _sites(city) -> list[Canteen]:
    return sorted((site for site in city.canteens.values() if site.active), key=lambda site: site.code)


def _account(city, site: Canteen):
    users = [u for u in city.users.values() if u.canteen_id == site.id]
    if not users:
        raise ValueError(f"the demo city has no account for {site.code}")
    return sorted(users, key=lambda u: u.id)[0]


def _officer(city, site: Canteen):
    officers = [
        u for u in city.users.values() if u.role == scoping.DISTRICT_OFFICER and u.district_id == site.district_id
    ]
    return sorted(officers, key=lambda u: u.id)[0] if officers else None


def _as(user) -> scoping.Scope:
    # as the demo's other loaders do: the system's view of the rows, with the person's id on the records
    return scoping.Scope(role=scoping.SYSTEM.role, user_id=user.id if user is not None else None)


def _at(day: date, hh_mm: str, minutes: int = 0) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm), tzinfo=TIME_ZONE) + timedelta(minutes=minutes)


def _prepare(city, site: Canteen, *, today: date, days: int, rng: random.Random) -> _Site:
    prepared = _Site(site=site, account=_account(city, site), officer=_officer(city, site))
    first = today - timedelta(days=days)
    kind = site.kind.value
    prepared.slots = tuple(site.opening_hours) if site.opening_hours else ("lunch",)
    names = list(STAFF_NAMES)
    rng.shuffle(names)
    with scoping.acting_as(_as(prepared.account)):
        for job, how_many in CREWS[kind]:
            for _person in range(how_many):
                name = names.pop()
                person = food_safety_service.add_staff(
                    site_id=site.id,
                    name=name,
                    job=job,
                    phone=f"1700001{rng.randrange(10000):04d}",
                    started_on=first - timedelta(days=rng.randrange(60, 2000)),
                )
                issued = today - timedelta(days=rng.randrange(40, 330))
                food_safety_service.add_certificate(
                    person.id, number=f"QH{issued:%Y}{rng.randrange(10**6):06d}", issued_on=issued
                )
                prepared.staff.append(person)
        devices = [("sample", "留样冰箱", rules.SAMPLE_REFRIGERATOR), ("fridge", "冷藏柜", rules.REFRIGERATOR)]
        if kind == "central_kitchen":
            devices.append(("fridge2", "冷藏库", rules.REFRIGERATOR))
        devices.append(("freezer", "冷冻柜", rules.FREEZER))
        for key, name, device_kind in devices:
            prepared.devices[key] = food_safety_service.add_device(
                site_id=site.id, name=name, kind=device_kind, active_from=first - timedelta(days=30)
            )
    return prepared


def _certificate_lapses(sites: list[_Site], *, today: date) -> None:
    """One certificate expiring within the month, one expired (its holder is sent home), one newcomer
    without a certificate yet — each at a different site."""
    if not sites:
        return
    plans = (("expiring", 0), ("expired", len(sites) // 3), ("newcomer", (2 * len(sites)) // 3))
    for plan, index in plans:
        prepared = sites[index % len(sites)]
        with scoping.acting_as(_as(prepared.account)):
            if plan == "newcomer":
                person = food_safety_service.add_staff(
                    site_id=prepared.site.id,
                    name="新来的小刘",
                    job="kitchen_helper",
                    started_on=today - timedelta(days=3),
                )
                prepared.staff.append(person)
                continue
            person = prepared.staff[-1]
            expires = today + timedelta(days=12) if plan == "expiring" else today - timedelta(days=9)
            issued = expires - timedelta(days=364)  # a year's certificate
            food_safety_service.add_certificate(
                person.id, number=f"QH{issued:%Y}{person.id:06d}", issued_on=issued, expires_on=expires
            )


def _plan_lapses(sites: list[_Site], *, today: date, days: int, rng: random.Random) -> dict[tuple[str, date], set[str]]:
    """Each kind of lapse once for sure, each on a day of its own at a site open that day (sites
    and days taken in a shuffled turn), and a few more at random."""
    _certificate_lapses(sites, today=today)
    plan: dict[tuple[str, date], set[str]] = {}
    candidates = [
        (prepared, today - timedelta(days=offset))
        for offset in range(1, days + 1)
        for prepared in sites
        if not prepared.site.is_closed_on(today - timedelta(days=offset))
    ]
    rng.shuffle(candidates)
    for lapse, (prepared, day) in zip(LAPSES, candidates, strict=False):
        plan[(prepared.site.code, day)] = {lapse}
    for prepared in sites:
        for offset in range(1, days + 1):
            if rng.random() < SHARE_EXTRA_LAPSE:
                day = today - timedelta(days=offset)
                plan.setdefault((prepared.site.code, day), set()).add(rng.choice(LAPSES))
    return plan


def _record_day(prepared: _Site, day: date, lapses: set[str], rng: random.Random, now: datetime, records) -> None:
    site = prepared.site
    with scoping.acting_as(_as(prepared.account)):
        open_day = not site.is_closed_on(day)
        if open_day and "checklist_forgotten" not in lapses:
            _morning(prepared, day, lapses, rng, records)
            _checklist(prepared, day, lapses, rng, records)
        if open_day:
            _samples(prepared, day, lapses, rng, now, records)
        _readings(prepared, day, lapses, rng, records)


def _morning(prepared: _Site, day: date, lapses: set[str], rng: random.Random, records) -> None:
    sick = "cook_sick" in lapses
    for person in prepared.staff:
        if not person.works_on(day):
            continue
        checked_at = _at(day, "06:50", rng.randrange(30))
        fields: dict[str, Any] = {"present": True, "fit": True}
        status = food_safety_service.certificate_status(person, day)
        if rng.random() < 0.04:
            fields = {"present": False}
        elif sick and person.job == "cook":
            fields = {
                "present": True,
                "fit": False,
                "symptoms": ["diarrhoea", "abdominal_pain"],
                "note": "腹泻，已劝其回家就医",
            }
            sick = False
        elif status in (food_safety_service.CERTIFICATE_EXPIRED, food_safety_service.CERTIFICATE_MISSING):
            fields = {"present": True, "fit": False, "note": "健康证过期或未办理，暂停接触食品的工作"}
        food_safety_service.record_morning_check(
            site_id=prepared.site.id, day=day, staff_id=person.id, checked_at=checked_at, **fields
        )
        records["morning_checks"] += 1


def _checklist(prepared: _Site, day: date, lapses: set[str], rng: random.Random, records) -> None:
    method = "disinfection_cabinet" if prepared.site.kind.value != "central_kitchen" else "steam"
    for item in rules.checklist_items():
        extra: dict[str, Any] = {}
        if item.needs_method_and_time:
            extra = {"method": method, "done_at": _at(day, "07:20", rng.randrange(40))}
        if item.key == "pest_control" and lapses & {"item_failed", "item_fixed"}:
            food_safety_service.record_checklist_entry(
                site_id=prepared.site.id, day=day, item=item.key, passed=False, note="后门附近发现蟑螂"
            )
            records["checklist_entries"] += 1
            if "item_failed" in lapses:
                continue
            extra = {"note": "已消杀并封堵缝隙，复查未见虫害"}
        food_safety_service.record_checklist_entry(
            site_id=prepared.site.id, day=day, item=item.key, passed=True, **extra
        )
        records["checklist_entries"] += 1


def _dishes(prepared: _Site, slot: str, rng: random.Random) -> list[str]:
    choices = [dish for dish in DISHES[slot] if not (prepared.site.halal and dish in NOT_HALAL)]
    how_many = {"breakfast": 2, "lunch": 4, "dinner": 2}[slot]
    return rng.sample(choices, how_many)


def _samples(prepared: _Site, day: date, lapses: set[str], rng: random.Random, now: datetime, records) -> None:
    site = prepared.site
    cooks = [p for p in prepared.staff if p.job in ("cook", "kitchen_helper", "server") and p.works_on(day)]
    for slot in prepared.slots:
        dishes = _dishes(prepared, slot, rng)
        food_safety_service.declare_served_dishes(site_id=site.id, day=day, slot=slot, dishes=dishes)
        for index, dish in enumerate(dishes):
            last = index == len(dishes) - 1
            if slot == prepared.slots[-1] and last and "sample_missing" in lapses:
                continue
            weight = 118 if last and "sample_underweight" in lapses else rng.randrange(130, 181)
            stored_at = _at(day, SLOT_TIMES[slot], index * 3 + rng.randrange(5))
            sample = food_safety_service.record_sample(
                site_id=site.id,
                served_on=day,
                slot=slot,
                dish=dish,
                weight_g=weight,
                container_sealed=not (index == 0 and "sample_unsealed" in lapses),
                device_id=prepared.devices["sample"].id,
                stored_at=stored_at,
                taken_by_id=rng.choice(cooks).id if cooks else None,
            )
            records["samples"] += 1
            disposed_at = sample.disposable_from + timedelta(hours=rng.randrange(0, 4), minutes=rng.randrange(60))
            if "not_disposed" not in lapses and disposed_at <= now:
                food_safety_service.dispose_sample(sample.id, disposed_at=disposed_at)
                records["disposed"] += 1


def _readings(prepared: _Site, day: date, lapses: set[str], rng: random.Random, records) -> None:
    normal = {rules.REFRIGERATOR: (20, 60), rules.SAMPLE_REFRIGERATOR: (20, 50), rules.FREEZER: (-230, -185)}
    for key, device in prepared.devices.items():
        for reading_time in ("08:30", "16:30"):
            if reading_time == "16:30" and key == "freezer" and "reading_missed" in lapses:
                continue
            low, high = normal[device.kind]
            tenths = rng.randrange(low, high + 1)
            note = ""
            if reading_time == "16:30" and key == "fridge" and "fridge_open" in lapses:
                tenths, note = 96, "柜门未关严"
            if reading_time == "08:30" and key == "freezer" and "freezer_defrost" in lapses:
                tenths, note = -125, "除霜中"
            food_safety_service.record_reading(
                device_id=device.id,
                temperature_c=rules.to_celsius(tenths),
                read_at=_at(day, reading_time, rng.randrange(20)),
                note=note,
            )
            records["readings"] += 1
            if note == "柜门未关严":  # checked again after closing the door
                food_safety_service.record_reading(
                    device_id=device.id, temperature_c="4.3", read_at=_at(day, "17:40"), note="复测"
                )
                records["readings"] += 1


def _work_deviations(sites: list[_Site], *, today: date, rng: random.Random) -> None:
    """Older deviations worked through; the last few days' still waiting at various steps."""
    by_site = {prepared.site.id: prepared for prepared in sites}
    with scoping.unrestricted():
        deviations = list(
            db.session.scalars(
                sa.select(Deviation)
                .where(Deviation.site_id.in_(by_site), Deviation.status == rules.OPEN)
                .order_by(Deviation.day, Deviation.id)
            )
        )
    corrected = returned = False
    latest = {deviation.id for deviation in deviations[-2:]}  # the sites have not got round to these yet
    for deviation in deviations:
        prepared = by_site[deviation.site_id]
        age = (today - deviation.day).days
        draw = rng.random()
        if deviation.id in latest or age <= 1 or (age <= 3 and draw < 0.3):
            continue  # still open
        cause, action, food = ACTIONS.get(deviation.kind, ("原因待查", "已整改", "无受影响食品"))
        if deviation.details.get("device_kind") == rules.FREEZER:
            cause, action, food = ("冷冻柜除霜期间温度升高", "除霜完成后复测 -19.5 ℃", "冻品未解冻，继续冷冻保存")
        with scoping.acting_as(_as(prepared.account)):
            food_safety_service.acknowledge_deviation(deviation.id)
            if age <= 3 and draw < 0.6:
                continue  # acknowledged, the action not yet recorded
            food_safety_service.record_deviation_action(
                deviation.id, cause=cause, action_taken=action, affected_food=food
            )
            if not corrected and deviation.kind == rules.TEMPERATURE_OUT_OF_RANGE:
                food_safety_service.correct_deviation_action(
                    deviation.id,
                    cause=cause,
                    action_taken=action + "；更换门封条",
                    affected_food=food,
                    reason="补记更换门封条",
                )
                corrected = True
        if prepared.officer is None or (age <= 6 and draw < 0.8):
            continue  # waiting for the officer's verification
        with scoping.acting_as(_as(prepared.officer)):
            if not returned and age > 6:
                food_safety_service.return_deviation(deviation.id, reason="请写明受影响食品的数量和去向")
                returned = True
                with scoping.acting_as(_as(prepared.account)):
                    food_safety_service.record_deviation_action(
                        deviation.id, cause=cause, action_taken=action, affected_food=food + "（已核实数量并登记）"
                    )
            food_safety_service.verify_deviation(deviation.id, note="已核实整改情况")
