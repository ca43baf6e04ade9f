"""The resident search benchmark's own code on a small city, so `make bench` does not rot unnoticed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bench import percentile
from bench import resident_search as bench
from canteen.auth import service as auth_service
from canteen.core import crypto, scoping
from canteen.extensions import db
from canteen.residents import service as resident_service
from canteen.residents.models import MealCard, Resident

_hashes: dict[str, str] = {}


@pytest.fixture(autouse=True)
def hash_each_password_once(monkeypatch):
    real_hash = auth_service.hash_password
    monkeypatch.setattr(auth_service, "hash_password", lambda p: _hashes.setdefault(p, real_hash(p)))


@pytest.fixture
def small_city(backend):
    if backend != "postgresql":
        pytest.skip("the benchmark loads residents with PostgreSQL COPY: run with --db=postgresql")
    city = bench.prepare_city()
    scope = bench.staff_scope(city)
    loaded = bench.load_residents(db.session.connection(), city, count=2000, pool_district_id=scope.district_id)
    db.session.commit()  # releases the test's savepoint only: everything is rolled back afterwards
    return city, scope, loaded


def test_percentile_is_nearest_rank():
    samples = list(range(1, 101))
    assert (percentile(samples, 50), percentile(samples, 95), percentile(samples, 99)) == (50, 95, 99)
    assert percentile([7.0], 95) == 7.0


def test_loaded_rows_are_what_the_service_would_write(small_city):
    _city, scope, loaded = small_city
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Resident)) == loaded.rows == 2000
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MealCard)) == loaded.cards
    name, pinyin, initials, number, _card_no = loaded.sample_pool[0]
    with scoping.acting_as(scope):
        found = resident_service.lookup_resident(id_number=number)
    # ORM reads decrypt the COPYed ciphertext (associated data right); derived columns match the service's
    assert (found.id_number, found.name, found.district_id) == (number, name, scope.district_id)
    assert (found.name_pinyin, found.name_initials) == resident_service.name_keys(name) == (pinyin, initials)
    assert {k: getattr(found, k) for k in resident_service._index_columns("resident_id_card", number)} == (
        resident_service._index_columns("resident_id_card", number)
    )
    raw = db.session.execute(sa.text("SELECT id_number, phone FROM residents WHERE id = :id"), {"id": found.id}).one()
    assert number not in raw.id_number and crypto.decrypt(raw.id_number, "residents.id_number") == number
    assert raw.phone is None or crypto.decrypt(raw.phone, "residents.phone").startswith("170")


def test_every_query_kind_finds_its_resident_and_is_timed(small_city):
    _city, scope, loaded = small_city
    queries = bench.make_queries(loaded, per_kind=5)
    assert set(queries) == set(bench.KINDS) and all(len(qs) == 5 for qs in queries.values())

    timings, found = bench.time_queries(scope, queries)

    assert all(len(samples) == 5 and all(ms > 0 for ms in samples) for samples in timings.values())
    assert all(total >= 1 for totals in found.values() for total in totals), found
    answer_timings, _ = bench.time_queries(scope, queries, with_answer=True)
    assert bench.print_table("smoke", answer_timings) in (True, False)
    plans = bench.explain(scope, queries)
    assert set(plans) == set(bench.KINDS)
    # a table this small may well be read sequentially: only that every plan was produced is checked
    assert all(any("Execution Time" in line for line in lines) for lines in plans.values())


@pytest.mark.no_db
def test_meal_recording_quick_run_matches_the_database(backend, new_database):
    """The meal-recording benchmark end to end at smoke size: gunicorn serving the app on a new
    database, every load run answered 201, and the database holding exactly what was answered."""
    if backend != "postgresql":
        pytest.skip("the benchmark serves the app with gunicorn on PostgreSQL: run with --db=postgresql")
    import flask_migrate

    from bench import meal_recording
    from tests.conftest import make_app

    app = make_app(new_database("bench_meals"))
    with app.app_context():
        flask_migrate.upgrade()
    try:
        report = meal_recording.measure(app, meal_recording.Settings.quick())
    finally:
        with app.app_context():
            db.engine.dispose()

    runs = [report.meals_closed, report.meals_open, report.bare_closed, report.bare_open]
    assert all(run is not None and run.latencies and run.throughput > 0 for run in runs)
    failures = {run.name + " " + run.mode: run.error_samples for run in runs if run.not_2xx or run.transport_errors}
    assert not failures, failures
    assert report.database["meals"] == sum(run.created for run in report.meal_runs) > 0
    assert report.database["bare_keys"] == sum(run.created for run in report.bare_runs) > 0
    assert report.consistent
    # the policies' rules were applied: some meals subsidised by an age rule, some at full price or not
    assert {"aged_60_plus", "aged_80_plus"} <= {row[0] for row in report.breakdown}
    assert meal_recording.print_report(report) in (True, False)
