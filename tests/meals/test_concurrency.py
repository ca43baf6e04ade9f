"""Counters racing: many threads, each with its own connection and transaction, committing for
real in a database of their own (no savepoint wrapping). The database — a partial unique index,
the resident's row lock, the idempotency key's unique constraint — decides, never a prior read."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import flask_migrate
import pytest
import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.auth.models import User
from canteen.core import clock, scoping
from canteen.core.db import transaction
from canteen.core.errors import CanteenError
from canteen.extensions import db
from canteen.meals import service as meal_service
from canteen.meals.models import MealRecord
from canteen.meals.schemas import MealSchema
from canteen.org import service as org_service
from canteen.org.models import CanteenKind
from canteen.residents import id_numbers
from canteen.residents import service as resident_service
from canteen.subsidies import service as subsidy_service
from tests.conftest import make_app

pytestmark = pytest.mark.no_db
THREADS = 12


@pytest.fixture(scope="module")
def racing_city(new_database):
    """A migrated database of its own with a district, a 60+ policy capped at one meal a month,
    two canteens with a counter account each, and residents."""
    app = make_app(new_database("meal_race"))
    with app.app_context():
        flask_migrate.upgrade()
        with transaction():
            district = org_service.create_district(code="639903", name="并发助餐区")
            canteens = [
                org_service.create_canteen(
                    code=f"RACE{n}",
                    name=f"并发{n}号食堂",
                    kind=CanteenKind.CANTEEN,
                    district_id=district.id,
                    opening_hours={"breakfast": ["00:00", "23:59"], "lunch": ["00:00", "23:59"]},
                )
                for n in (1, 2)
            ]
            subsidy_service.create_policy(
                district_id=district.id,
                name="并发政策",
                valid_from=date(2020, 1, 1),
                rules=[{"category": "aged_60_plus", "slot": "any", "amount_fen": 300, "max_per_month": 1}],
            )
            users = [
                auth_service.create_user(
                    username=f"race{n}", password="long-enough-password", role="canteen_staff", canteen_id=canteen.id
                )
                for n, canteen in enumerate(canteens, 1)
            ]
            residents = [
                resident_service.register_resident(
                    name=f"并发{n}",
                    id_doc_type="resident_id_card",
                    id_number=id_numbers.make_number("630102", date(1950, 3, 1), n * 2 + 1),
                    district_id=district.id,
                    registered_on=date(2020, 1, 1),
                )
                for n in range(4)
            ]
        ids = {
            "canteens": [c.id for c in canteens],
            "users": [u.id for u in users],
            "residents": [r.id for r in residents],
        }
        db.session.remove()
    yield app, ids
    with app.app_context():
        db.engine.dispose()


def _race(app, jobs):
    """Run each job (a function taking no arguments, called inside its own app context and
    transaction) in its own thread, all released at once; answers each job's outcome."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list = [None] * len(jobs)

    def run(index, job):
        with app.app_context():
            try:
                barrier.wait(10)
                with transaction():
                    outcomes[index] = job()
            except CanteenError as error:
                outcomes[index] = error.code
            except Exception as error:  # the test reports anything else as a failure
                outcomes[index] = f"error: {error!r}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _as_user(user_id):
    with scoping.unrestricted():
        user = db.session.get(User, user_id)
    return scoping.acting_as(auth_service.scope_for(user))


def _fields(ids, *, canteen=0, resident=0, slot="lunch", served_on=None):
    return {
        "canteen_id": ids["canteens"][canteen],
        "resident_id": ids["residents"][resident],
        "served_on": served_on or clock.today() - timedelta(days=1),
        "slot": slot,
        "mode": "dine_in",
        "price_fen": 1200,
        "verification": "card",
    }


def _meals(app, resident_id):
    with app.app_context():
        try:
            return db.session.execute(
                sa.select(MealRecord.slot, MealRecord.subsidy_fen, MealRecord.canteen_id).where(
                    MealRecord.resident_id == resident_id, MealRecord.status == "valid"
                )
            ).all()
        finally:
            db.session.remove()


def test_many_counters_recording_the_same_lunch_yield_exactly_one_meal(racing_city):
    app, ids = racing_city

    def job(n):
        def record():
            with _as_user(ids["users"][n % 2]):
                return meal_service.record_meal(**_fields(ids, canteen=n % 2, resident=0)).id

        return record

    outcomes = _race(app, [job(n) for n in range(THREADS)])
    created = [o for o in outcomes if isinstance(o, int)]
    assert len(created) == 1, outcomes
    assert sorted(o for o in outcomes if not isinstance(o, int)) == ["meal_already_recorded"] * (THREADS - 1)
    assert len(_meals(app, ids["residents"][0])) == 1


def test_the_resident_lock_orders_cap_decisions(racing_city):
    """Breakfast and lunch of one resident at two canteens at once, with a cap of one subsidised
    meal a month: both are recorded, exactly one is subsidised."""
    app, ids = racing_city
    day = clock.today().replace(day=1) - timedelta(days=3)  # last month: this month untouched by others

    def job(n):
        slot = ("breakfast", "lunch")[n % 2]

        def record():
            with _as_user(ids["users"][n % 2]):
                return meal_service.record_meal(**_fields(ids, canteen=n % 2, resident=1, slot=slot, served_on=day)).id

        return record

    outcomes = _race(app, [job(n) for n in range(THREADS)])
    assert sum(isinstance(o, int) for o in outcomes) == 2, outcomes
    meals = _meals(app, ids["residents"][1])
    assert sorted(slot for slot, _, _ in meals) == ["breakfast", "lunch"]
    assert sorted(subsidy for _, subsidy, _ in meals) == [0, 300]


def test_one_idempotency_key_sent_many_times_at_once_records_once_and_replays(racing_city):
    app, ids = racing_city
    key = "race-key-0001"

    def send():
        with _as_user(ids["users"][0]):
            answer = meal_service.record_meal_once(key, _fields(ids, resident=2), render=MealSchema().dump)
        return ("replayed" if answer.replayed else "created", answer.body["id"])

    outcomes = _race(app, [send for _ in range(THREADS)])
    assert sorted(status for status, _ in outcomes) == ["created"] + ["replayed"] * (THREADS - 1), outcomes
    assert len({meal_id for _, meal_id in outcomes}) == 1
    assert len(_meals(app, ids["residents"][2])) == 1
