"""The counter page in a real headless Chromium: recording with the keyboard alone, voiding with a
reason, and the offline queue — meals recorded offline wait in the browser (never with an ID
number), survive a reload, and are created exactly once when the network returns, a refused one
showing its reason in the page's language.

The app runs in a thread against its own migrated database (committed rows, CSRF on, as in
production); tests/meals/browser.py decides whether Chromium is there to run these.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.meals.models import MealRecord
from tests.factories import PASSWORD, CanteenFactory, DistrictFactory, canteen_staff, resident
from tests.meals import browser
from tests.subsidies.conftest import make_policy, rule

pytestmark = pytest.mark.no_db
chromium = browser.chromium  # the fixture: Chromium, or a skip (a failure under CI=true)

COUNTER_CACHE = "canteen-counter-v1"


def go_offline(live, context) -> None:
    context.set_offline(True)
    live["server"].browser_network_down = True  # see LiveServer: set_offline alone can leak


def go_online(live, context) -> None:
    live["server"].browser_network_down = False
    context.set_offline(False)


@pytest.fixture(scope="module")
def live(new_database, chromium):
    """A migrated database of its own with a canteen open all day (lunch is always the slot of
    the moment), a 3-yuan policy for the over-60s, counter staff, and residents whose home
    canteen it is (so they are on the offline roster); the app served on a free port."""
    import flask_migrate

    from tests.conftest import make_app

    app = make_app(new_database("browser"), WTF_CSRF_ENABLED=True)
    with app.app_context():
        from canteen.auth import service as auth_service
        from canteen.extensions import db
        from canteen.meals import service as meal_service

        flask_migrate.upgrade()
        district = DistrictFactory(code="630103", name="城中区")
        canteen = CanteenFactory(
            district=district, name="南关街爱老幸福食堂", opening_hours={"lunch": ["00:00", "23:59"]}
        )
        make_policy(district, [rule("aged_60_plus", "any", 300)], valid_from=date(2020, 1, 1))
        staff = canteen_staff(canteen, username="staff.nanguan")
        people = {}
        for key, name, card in (
            ("wang", "王秀兰", "NG-0001"),
            ("li", "李四", "NG-0002"),
            ("liu", "刘三", "NG-0003"),
            ("zhao", "赵桂英", "NG-0004"),
            ("sun", "孙建国", "NG-0005"),
            ("zhou", "周玉梅", "NG-0006"),
            ("wu", "吴德明", "NG-0007"),
        ):
            person = resident(
                district, name=name, card_no=card, home_canteen_id=canteen.id, phone=f"1391234{len(people):04d}"
            )
            people[key] = {"id": person.id, "name": name, "card": card, "id_number": person.id_number}
            people[key]["phone"] = person.phone
        # 吴德明 already had lunch today: a second one queued offline is refused
        with scoping.acting_as(auth_service.scope_for(staff)):
            meal_service.record_meal(
                canteen_id=canteen.id,
                resident_id=people["wu"]["id"],
                served_on=clock.today(),
                slot="lunch",
                mode="dine_in",
                price_fen=1500,
                verification="card",
            )
        db.session.commit()
        facts = {"canteen_id": canteen.id, "canteen_name": canteen.name, "staff": staff.username, "people": people}
        db.session.remove()
    with browser.LiveServer(app) as server:
        yield {"app": app, "url": server.url, "server": server, **facts}
    with app.app_context():
        from canteen.extensions import db

        db.engine.dispose()


def meals_of(live, resident_id: int) -> list[MealRecord]:
    """The resident's meals as the database has them now (read in a transaction of its own)."""
    from canteen.extensions import db

    with live["app"].app_context(), scoping.unrestricted():
        try:
            meals = list(
                db.session.scalars(
                    sa.select(MealRecord).where(MealRecord.resident_id == resident_id).order_by(MealRecord.id)
                )
            )
            db.session.expunge_all()
            return meals
        finally:
            db.session.remove()


@pytest.fixture
def browser_context(chromium):
    with chromium.context() as context:
        yield context


@pytest.fixture
def counter(live, browser_context):
    """The counter page, logged in as the canteen's staff, the price set, and the page ready to
    work offline (its copy cached by the service worker, the roster kept for the session)."""
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live["url"] + "/login")
    page.fill("input[name=username]", live["staff"])
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live["url"] + "/")
    page.goto(live["url"] + "/meals/counter")
    page.wait_for_selector("#counter[data-offline-ready=true]")
    page.wait_for_function(f"sessionStorage.getItem('canteen.counter.roster.v1.canteen.{live['canteen_id']}')")
    yield page
    assert errors == [], errors


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def row_of(page, name: str):
    return page.locator("#today-rows tr", has_text=name)


def test_keyboard_only_recording_by_card_and_by_pinyin(live, counter):
    page = counter
    wang, liu = live["people"]["wang"], live["people"]["liu"]
    assert page.locator("#slot").input_value() == "lunch"  # the slot of the moment, preselected
    assert focused_id(page) == "counter-q"

    # the price once per shift: type it, Enter goes back to the search box
    page.locator("#price").focus()
    page.keyboard.type("15")
    page.keyboard.press("Enter")
    assert focused_id(page) == "counter-q"

    # a card reader types the number and Enter: picked; Enter again records
    page.keyboard.type(wang["card"])
    page.keyboard.press("Enter")
    summary = page.locator("#counter-summary")
    summary.wait_for(state="visible")
    assert wang["name"] in summary.inner_text()
    assert wang["id_number"][:6] + "********" + wang["id_number"][-4:] in summary.inner_text()  # masked only
    page.wait_for_selector("#summary-money .counter-figure")
    assert "¥3.00" in summary.inner_text() and "¥12.00" in summary.inner_text()  # the preview: subsidy, copay
    page.keyboard.press("Enter")
    row = row_of(page, wang["name"])
    row.locator(".counter-status-recorded").wait_for()
    assert re.search(r"15\.00\s+3\.00\s+12\.00", row.inner_text())
    assert "已记录" in row.inner_text()  # the page speaks Chinese by default
    assert focused_id(page) == "counter-q" and page.locator("#counter-q").input_value() == ""

    (meal,) = meals_of(live, wang["id"])
    assert (meal.status, meal.slot, meal.price_fen) == ("valid", "lunch", 1500)
    assert (meal.subsidy_fen, meal.copay_fen) == (300, 1200)
    assert meal.verification == "card" and meal.payment_method == "cash" and meal.idempotency_key

    # pinyin initials: 李四 (lisi) and 刘三 (liusan) both match "ls"; ↓ moves to the second
    page.keyboard.type("ls")
    page.wait_for_selector("#counter-results li:nth-child(2)")
    page.keyboard.press("ArrowDown")
    assert page.locator("#counter-results li[aria-selected=true]").inner_text().startswith(liu["name"])
    page.keyboard.press("Enter")
    summary.wait_for(state="visible")
    assert page.locator("#summary-name").inner_text() == liu["name"]
    page.keyboard.press("Enter")
    row_of(page, liu["name"]).locator(".counter-status-recorded").wait_for()
    assert [m.subsidy_fen for m in meals_of(live, liu["id"])] == [300]

    # Escape clears whatever was typed, and the focus stays in the search box
    page.keyboard.type("zgy")
    page.wait_for_selector("#counter-results li")
    page.keyboard.press("Escape")
    assert page.locator("#counter-q").input_value() == "" and page.locator("#counter-results").is_hidden()
    assert focused_id(page) == "counter-q"


def test_void_asks_for_a_reason(live, counter):
    page = counter
    zhao = live["people"]["zhao"]
    page.locator("#price").fill("12")
    page.locator("#counter-q").focus()
    page.keyboard.type(zhao["card"])
    page.keyboard.press("Enter")
    page.locator("#counter-summary").wait_for(state="visible")
    page.keyboard.press("Enter")
    row = row_of(page, zhao["name"])
    row.locator(".counter-status-recorded").wait_for()

    row.get_by_role("button", name="作废").click()
    dialog = page.locator("#void-dialog")
    dialog.wait_for(state="visible")
    page.keyboard.press("Enter")  # no reason yet: refused in the page
    assert dialog.locator("#void-error").is_visible()
    page.keyboard.type("录错了人")
    page.keyboard.press("Enter")
    row.locator(".counter-status-void").wait_for()
    assert "录错了人" in row.inner_text()
    assert focused_id(page) == "counter-q"

    (meal,) = meals_of(live, zhao["id"])
    assert meal.status == "void" and meal.void_reason == "录错了人" and meal.voided_by_id is not None


def storage_dump(page) -> str:
    return page.evaluate(
        """() => {
            const dump = {};
            for (const store of [localStorage, sessionStorage]) {
                for (let i = 0; i < store.length; i++) dump[store.key(i)] = store.getItem(store.key(i));
            }
            return JSON.stringify(dump);
        }"""
    )


def cached_counter_page(page) -> str:
    return page.evaluate(
        f"""async () => {{
            const cache = await caches.open({json.dumps(COUNTER_CACHE)});
            const texts = [];
            for (const request of await cache.keys()) texts.push(await (await cache.match(request)).text());
            return texts.join("\\n");
        }}"""
    )


def record_with_keyboard(page, text: str) -> None:
    """Search, pick the single match with Enter, record with Enter (the keyboard flow)."""
    page.locator("#counter-q").focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    page.locator("#counter-summary").wait_for(state="visible")
    page.keyboard.press("Enter")


def test_offline_meals_wait_survive_a_reload_and_are_created_once(live, counter, browser_context):
    page = counter
    people = live["people"]
    sun, zhou, wu = people["sun"], people["zhou"], people["wu"]
    page.locator("#price").fill("15")

    go_offline(live, browser_context)
    record_with_keyboard(page, sun["card"])  # by card, found in the roster kept for the session
    record_with_keyboard(page, "周玉")  # by name
    record_with_keyboard(page, wu["card"])  # a second lunch today: the server will refuse it
    waiting = page.locator("#today-rows tr.counter-row-waiting .counter-status-waiting")
    waiting.nth(2).wait_for()  # each failed to send at once and waits (not "sending")
    assert waiting.count() == 3 and waiting.first.inner_text() == "等待发送"
    assert "3" in page.locator("#connection-queue").inner_text()
    assert meals_of(live, sun["id"]) == [] and meals_of(live, zhou["id"]) == []
    assert len(meals_of(live, wu["id"])) == 1

    # nothing personal beyond names is kept by the browser: no ID number, no phone, anywhere
    kept = storage_dump(page) + cached_counter_page(page)
    for person in people.values():
        assert person["id_number"] not in kept
        assert person["phone"] not in kept
    assert not re.search(r"\d{15,}", kept)
    queue = json.loads(page.evaluate("localStorage.getItem(Object.keys(localStorage).find(k => k.includes('queue')))"))
    assert {tuple(sorted(entry["body"])) for entry in queue} == {
        (
            "attest_reason",
            "canteen_id",
            "collected_by",
            "mode",
            "payment_method",
            "price_fen",
            "resident_id",
            "served_at",
            "served_on",
            "slot",
            "verification",
        )
    }

    # reloaded while offline: the service worker's copy of the page, the queue still there
    page.reload()
    page.locator("#today-rows tr.counter-row-waiting").nth(2).wait_for()
    assert page.locator("#today-rows tr.counter-row-waiting").count() == 3
    assert sun["name"] in page.locator("#today-rows").inner_text()  # names kept for this session

    # the first batch reaches the server but its answer is lost (the network drops on the way
    # back): sent here exactly as the page sends it; the page still shows the meals waiting
    items = [{"idempotency_key": entry["key"], **entry["body"]} for entry in queue]
    first = lost_answer_batch(live, page, items)
    assert [r["status"] for r in first] == ["created", "created", "refused"]
    assert len(meals_of(live, sun["id"])) == 1

    # the network returns: the page's retry sends the same keys again; the server replays
    go_online(live, browser_context)
    row_of(page, sun["name"]).locator(".counter-status-recorded").wait_for(timeout=20_000)
    row_of(page, zhou["name"]).locator(".counter-status-recorded").wait_for()
    refused = page.locator("#today-rows tr.counter-row-refused")
    refused.wait_for()
    assert wu["name"] in refused.inner_text()
    assert f"已在{live['canteen_name']}记录" in refused.inner_text()  # the reason, in Chinese
    assert page.locator("#today-rows tr.counter-row-waiting").count() == 0

    for person in (sun, zhou):
        (meal,) = meals_of(live, person["id"])  # exactly once, though sent twice
        assert (meal.subsidy_fen, meal.copay_fen) == (300, 1200)
    assert len([m for m in meals_of(live, wu["id"]) if m.status == "valid"]) == 1
    assert re.search(r"15\.00\s+3\.00\s+12\.00", row_of(page, sun["name"]).inner_text())

    # the refused meal leaves the queue when dismissed
    refused.get_by_role("button", name="知道了").click()
    assert page.locator("#today-rows tr.counter-row-refused").count() == 0
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('queue')).length") == 0


def lost_answer_batch(live, page, items) -> list[dict]:
    """POST the batch with the page's own cookie and CSRF token, from outside the page (whose
    network is off): the server records it, the page never hears the answer."""
    import urllib.request

    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    request = urllib.request.Request(
        live["url"] + "/meals/counter/batch",
        data=json.dumps({"items": items}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Cookie": cookies,
            "X-CSRFToken": page.locator("#counter").get_attribute("data-csrf"),
            "Referer": live["url"] + "/meals/counter",
        },
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())["results"]
