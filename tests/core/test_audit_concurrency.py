"""Concurrent writers in separate processes never fork an audit chain (advisory lock on
PostgreSQL, BEGIN IMMEDIATE on SQLite). Real processes, real commits, no test transaction."""

from __future__ import annotations

import multiprocessing

import pytest

from tests.conftest import make_app

pytestmark = pytest.mark.no_db
WRITERS, WRITES = 4, 15


def _writer(url: str, canteen_id: int, offset: int) -> None:
    app = make_app(url)
    with app.app_context():
        from canteen.core.audit_log import Actor, set_actor
        from canteen.core.db import transaction
        from canteen.org import service as org_service

        set_actor(Actor(None, f"writer-{offset}", "concurrency test"))
        for n in range(WRITES):
            with transaction():
                org_service.update_canteen(canteen_id, seats=offset * 1000 + n + 1)  # never the initial 0


def test_parallel_writers_keep_one_unbroken_chain(new_database):
    import flask_migrate

    url = new_database("concurrency")
    app = make_app(url)
    with app.app_context():
        from canteen.core.audit_log import verify_chains
        from canteen.core.db import transaction
        from canteen.extensions import db
        from canteen.org import service as org_service

        flask_migrate.upgrade()
        with transaction():
            district = org_service.create_district(code="639901", name="并发区")
            canteen = org_service.create_canteen(code="CC-1", name="并发食堂", kind="canteen", district_id=district.id)
        canteen_id = canteen.id
        db.session.remove()
        db.engine.dispose()

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(url, canteen_id, i)) for i in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * WRITERS

    with app.app_context():
        import sqlalchemy as sa

        from canteen.core.audit_log import AuditEntry

        try:
            seqs = db.session.scalars(
                sa.select(AuditEntry.seq).where(AuditEntry.chain == f"canteen:{canteen_id}").order_by(AuditEntry.seq)
            ).all()
            checked, breaks = verify_chains(db.session)
        finally:
            db.session.remove()
            db.engine.dispose()
        assert seqs == list(range(1, WRITERS * WRITES + 1))
        assert breaks == [] and checked >= WRITERS * WRITES
