"""The daily food-safety screen in a real headless Chromium: a morning at the site with JavaScript
switched off (every entry is a plain form: one tap for a morning check or a checklist item, a number
and a tap for a sample or a reading; what is due counts down; a 124 g sample and an 8.1 °C reading
show up as deviations at once), and a dish sampled on another tablet meanwhile, whose refusal shows
next to the form.

The app runs in a thread against a migrated database of its own (committed rows, CSRF on, as in
production), on whichever database the suite runs; tests/meals/browser.py decides whether Chromium
is there to run these (skipped with the reason where it is not, a failure under CI=true).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.food_safety.models import Deviation, RetainedSample
from tests.factories import PASSWORD, DistrictFactory
from tests.food_safety.conftest import make_site
from tests.meals import browser

pytestmark = pytest.mark.no_db


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium to drive, as tests/meals/browser.py decides: skipped with the reason where it is
    missing, a failure under CI=true."""
    problem = browser._missing()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires the browser tests: {problem}", pytrace=False)
        pytest.skip(f"browser tests skipped: {problem}")
    return browser.chromium_path()


def in_browser(executable: str, test: Callable[[Any], None], **options: Any) -> None:
    """Run `test(context)` with a fresh Chromium context on a thread of its own and re-raise what it
    raised. Playwright's sync API allows one session per thread, and the meals' browser tests keep
    theirs open on the main thread for the whole run."""
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        from playwright.sync_api import sync_playwright

        try:
            with (
                sync_playwright() as playwright,
                browser.Browser(playwright.chromium, executable).context(**options) as context,
            ):
                test(context)
        except BaseException as error:  # handed to the test's own thread below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="food-safety-browser", daemon=True)
    thread.start()
    thread.join(300)
    if thread.is_alive():
        pytest.fail("the browser test did not finish within 5 minutes")
    if "error" in outcome:
        raise outcome["error"]


@pytest.fixture(scope="module")
def live(new_database, chromium):
    """A canteen open for lunch all day with a sample refrigerator, a refrigerator and a freezer; a
    cook with a valid health certificate and a helper whose certificate expired yesterday."""
    import flask_migrate

    from tests.conftest import make_app

    app = make_app(new_database("food_safety_browser"), WTF_CSRF_ENABLED=True)
    with app.app_context():
        from canteen.extensions import db
        from canteen.food_safety import service as food_safety_service

        flask_migrate.upgrade()
        site = make_site(
            DistrictFactory(code="630104", name="城西区"),
            name="胜利路爱老幸福食堂",
            opening_hours={"lunch": ["00:00", "23:59"]},
        )
        today = clock.today()
        with scoping.unrestricted():
            helper = food_safety_service.add_staff(
                site_id=site.canteen.id, name="李秀英", job="kitchen_helper", started_on=today - timedelta(days=400)
            )
            food_safety_service.add_certificate(
                helper.id, number="JK-OLD", issued_on=today - timedelta(days=365), expires_on=today - timedelta(days=1)
            )
        db.session.commit()
        facts = {
            "username": site.staff.username,
            "site_id": site.canteen.id,
            "cook_id": site.cook.id,
            "helper_id": helper.id,
        }
        db.session.remove()
    with browser.LiveServer(app) as server:
        yield {"app": app, "url": server.url, **facts}
    with app.app_context():
        from canteen.extensions import db

        db.engine.dispose()


def _rows(live, model, *where) -> list:
    from canteen.extensions import db

    with live["app"].app_context(), scoping.unrestricted():
        try:
            rows = list(db.session.scalars(sa.select(model).where(*where).order_by(model.id)))
            db.session.expunge_all()
            return rows
        finally:
            db.session.remove()


def _log_in(page, live) -> None:
    page.goto(live["url"] + "/login")
    page.fill("input[name=username]", live["username"])
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.goto(live["url"] + "/food-safety/today?lang=en")


def _due(page) -> int:
    return int(page.locator("#due").get_attribute("data-due"))


def _submit(page, button) -> None:
    """Tap a form's button and wait for the screen to come back (a redirect, or the errors)."""
    with page.expect_navigation():
        button.click()


def test_a_morning_at_the_site_without_javascript(live, chromium):
    in_browser(chromium, lambda context: _a_morning(live, context), java_script_enabled=False)
    kinds = {d.kind for d in _rows(live, Deviation, Deviation.day == clock.today())}
    assert {"sample_underweight", "temperature_out_of_range"} <= kinds


def _a_morning(live, context) -> None:
    page = context.new_page()
    _log_in(page, live)
    # 4 checklist items, 2 morning checks, 3 devices × 2 readings, lunch to declare
    assert _due(page) == 13
    assert "Morning health check" in page.inner_text("#morning-check")

    cook = page.locator(f"#morning-{live['cook_id']}")
    _submit(page, cook.get_by_role("button", name="Fit to work"))
    assert page.url.endswith("#morning-check")
    assert "Fit to work" in page.locator(f"#morning-{live['cook_id']} .fs-result").inner_text()
    assert _due(page) == 12

    helper = page.locator(f"#morning-{live['helper_id']}")
    assert helper.locator("button[value=fit]").is_disabled()  # the certificate expired yesterday
    assert "Without a valid health certificate nobody is marked fit." in helper.inner_text()
    helper.locator("summary").click()
    helper.get_by_label("Fever").check()
    _submit(page, helper.get_by_role("button", name="Send home"))
    result = page.locator(f"#morning-{live['helper_id']} .fs-result").inner_text()
    assert "Sent home" in result and "Fever" in result

    _submit(page, page.locator("#item-pest_control").get_by_role("button", name="OK"))
    tableware = page.locator("#item-tableware_disinfection")
    tableware.locator("select[name=method]").select_option("steam")
    _submit(page, tableware.get_by_role("button", name="OK"))
    assert "Steam" in page.locator("#item-tableware_disinfection .fs-result").inner_text()
    separation = page.locator("#item-raw_cooked_separation")
    separation.locator("summary").click()
    separation.locator("input[name=note]").fill("生熟砧板混用")
    _submit(page, separation.get_by_role("button", name="Record the problem"))
    assert "Problem" in page.locator("#item-raw_cooked_separation .fs-result").inner_text()
    assert _due(page) == 9  # the failed item stays due until it is answered OK

    lunch = page.locator("#slot-lunch")
    lunch.locator("input[name=dish]").fill("西红柿炒蛋")
    _submit(page, lunch.get_by_role("button", name="Add dish"))
    dish = page.locator('#slot-lunch li[data-dish="西红柿炒蛋"]')
    dish.locator("input[name=weight_g]").fill("124")
    _submit(page, dish.get_by_role("button", name="Record sample"))
    assert "124 g" in page.locator('#slot-lunch li[data-dish="西红柿炒蛋"]').inner_text()
    assert "Sample under 125 g" in page.inner_text("#deviations")

    fridge = page.locator('li[data-device="冷藏柜"]')
    fridge.locator("input[name=temperature_c]").fill("8.1")
    _submit(page, fridge.get_by_role("button", name="Record reading"))
    assert "8.1 °C" in page.locator('li[data-device="冷藏柜"]').inner_text()
    assert "Temperature out of range" in page.inner_text("#deviations")
    sample_fridge = page.locator('li[data-device="留样冰箱"]')
    sample_fridge.locator("input[name=temperature_c]").fill("4")
    _submit(page, sample_fridge.get_by_role("button", name="Record reading"))
    assert _due(page) == 6  # 1 item, 4 readings and nothing else


def test_a_dish_sampled_on_another_tablet_shows_the_refusal_next_to_the_form(live, chromium):
    in_browser(chromium, lambda context: _two_tablets(live, context))
    samples = _rows(live, RetainedSample, RetainedSample.dish == "清蒸鲈鱼")
    assert [(s.weight_g, s.container_sealed) for s in samples] == [(150, True)]


def _two_tablets(live, context) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _log_in(page, live)
    lunch = page.locator("#slot-lunch")
    lunch.locator("input[name=dish]").fill("清蒸鲈鱼")
    _submit(page, lunch.get_by_role("button", name="Add dish"))

    other = context.new_page()  # a second tablet of the same canteen, same login
    other.goto(live["url"] + "/food-safety/today?lang=en")
    dish = other.locator('#slot-lunch li[data-dish="清蒸鲈鱼"]')
    dish.locator("input[name=weight_g]").fill("150")
    _submit(other, dish.get_by_role("button", name="Record sample"))

    stale = page.locator('#slot-lunch li[data-dish="清蒸鲈鱼"]')  # the first tablet still shows the form
    stale.locator("input[name=weight_g]").fill("130")
    _submit(page, stale.get_by_role("button", name="Record sample"))
    refused = page.locator('#slot-lunch li[data-dish="清蒸鲈鱼"]')
    assert "This dish already has a sample for this meal." in refused.locator(".fs-form-errors").inner_text()
    assert "150 g" in refused.inner_text()
    assert errors == []
