"""Tablets and the scheduler racing: threads with connections and transactions of their own, committing
for real in a database of their own. The daily screen opened on several tablets and the scheduled
check at once raise each deviation once; two tablets sampling the same dish record one sample; two
people taking the same workflow step take it once."""

from __future__ import annotations

import threading
from datetime import timedelta

import flask_migrate
import pytest
import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.core.db import transaction
from canteen.core.errors import CanteenError
from canteen.extensions import db
from canteen.food_safety import service as food_safety_service
from canteen.food_safety.models import Deviation, DeviationEvent, RetainedSample
from canteen.org import service as org_service
from canteen.org.models import CanteenKind
from tests.conftest import make_app

pytestmark = pytest.mark.no_db
THREADS = 8


@pytest.fixture(scope="module")
def racing_site(new_database):
    """A migrated database of its own with a canteen (three meals a day), its sample refrigerator,
    a refrigerator and a freezer."""
    app = make_app(new_database("food_safety_race"))
    with app.app_context():
        flask_migrate.upgrade()
        with transaction(), scoping.unrestricted():
            district = org_service.create_district(code="639904", name="并发食安区")
            canteen = org_service.create_canteen(
                code="FSRACE",
                name="并发食安食堂",
                kind=CanteenKind.CANTEEN,
                district_id=district.id,
                opening_hours={
                    "breakfast": ["07:00", "09:00"],
                    "lunch": ["11:00", "13:30"],
                    "dinner": ["17:00", "19:00"],
                },
            )
            first = clock.today() - timedelta(days=30)
            fridge = food_safety_service.add_device(
                site_id=canteen.id, name="留样冰箱", kind="sample_refrigerator", active_from=first
            )
            for name, kind in (("冷藏柜", "refrigerator"), ("冷冻柜", "freezer")):
                food_safety_service.add_device(site_id=canteen.id, name=name, kind=kind, active_from=first)
        ids = {"site": canteen.id, "fridge": fridge.id}
        db.session.remove()
    yield app, ids
    with app.app_context():
        db.engine.dispose()


def _race(app, jobs):
    """Each job in its own thread, app context and transaction, all released at once; the outcomes."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list = [None] * len(jobs)

    def run(index, job):
        with app.app_context():
            try:
                barrier.wait(10)
                with transaction(), scoping.unrestricted():
                    outcomes[index] = job()
            except CanteenError as error:
                outcomes[index] = error.code
            except Exception as error:  # reported by the test as a failure
                outcomes[index] = f"error: {error!r}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _count(app, model, *where) -> int:
    with app.app_context():
        try:
            return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
        finally:
            db.session.remove()


def test_checks_racing_raise_each_deviation_once(racing_site):
    app, ids = racing_site
    day = clock.today() - timedelta(days=2)

    def check():
        return len(food_safety_service.check_site_day(ids["site"], day))

    outcomes = _race(app, [check] * THREADS)
    assert all(isinstance(o, int) for o in outcomes), outcomes
    # the checklist, three meals without samples, three devices without readings: once each
    assert sum(outcomes) == 7 and sorted(outcomes)[-1] == 7
    assert _count(app, Deviation, Deviation.day == day) == 7


def test_two_tablets_sampling_the_same_dish_record_one_sample(racing_site):
    app, ids = racing_site
    day = clock.today() - timedelta(days=3)

    def record(weight):
        def job():
            return food_safety_service.record_sample(
                site_id=ids["site"],
                served_on=day,
                slot="lunch",
                dish="清蒸鲈鱼",
                weight_g=weight,
                container_sealed=True,
                device_id=ids["fridge"],
            ).id

        return job

    outcomes = _race(app, [record(130 + n) for n in range(THREADS)])
    assert len([o for o in outcomes if isinstance(o, int)]) == 1, outcomes
    assert sorted(o for o in outcomes if not isinstance(o, int)) == ["sample_exists"] * (THREADS - 1)
    assert _count(app, RetainedSample, RetainedSample.served_on == day) == 1


def test_the_same_step_taken_twice_at_once_is_taken_once(racing_site):
    app, ids = racing_site
    with app.app_context():
        with transaction(), scoping.unrestricted():
            deviation = food_safety_service.report_deviation(site_id=ids["site"], kind="reported", found="门未关")
        deviation_id = deviation.id
        db.session.remove()

    def acknowledge():
        return food_safety_service.acknowledge_deviation(deviation_id).status

    outcomes = _race(app, [acknowledge] * THREADS)
    assert sorted(outcomes) == ["acknowledged"] + ["deviation_wrong_status"] * (THREADS - 1), outcomes
    assert _count(app, DeviationEvent, DeviationEvent.deviation_id == deviation_id) == 2
