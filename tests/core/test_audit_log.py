"""The audit log: every write by a person recorded, chained per scope, tampering detected."""

import pytest
import sqlalchemy as sa

from canteen.core import scoping
from canteen.core.audit_log import AuditEntry, verify_chains
from canteen.extensions import db
from tests.factories import CanteenFactory, DistrictFactory, admin, officer


def _entries(**filters):
    with scoping.unrestricted():
        statement = sa.select(AuditEntry).order_by(AuditEntry.id)
        for key, value in filters.items():
            statement = statement.where(getattr(AuditEntry, key) == value)
        return db.session.scalars(statement).all()


def test_api_write_is_logged_with_before_and_after(api):
    district = DistrictFactory()
    canteen = CanteenFactory(district=district, seats=40)
    clerk = officer(district)
    response = api(clerk).patch(f"/api/v1/canteens/{canteen.id}", json={"seats": 55})
    assert response.status_code == 200
    (entry,) = _entries(entity="canteens", entity_id=canteen.id, action="update")
    assert entry.actor_user_id == clerk.id and entry.actor_name == clerk.username
    assert entry.operation == "PATCH /api/v1/canteens/<int:canteen_id>"
    assert entry.before == {"seats": 40} and entry.after == {"seats": 55}
    assert entry.chain == f"canteen:{canteen.id}" and entry.district_id == district.id


def test_failed_request_logs_nothing(api):
    district = DistrictFactory()
    count = len(_entries())
    api(admin()).post(
        "/api/v1/canteens", json={"code": "bad code!", "name": "x", "kind": "canteen", "district_id": district.id}
    )
    assert len(_entries()) == count


def test_secrets_are_not_logged_and_phones_masked(api):
    api(admin()).post(
        "/api/v1/users",
        json={"username": "log.me", "role": "admin", "password": "long-enough-pw", "phone": "13712345678"},
    )
    (entry,) = [e for e in _entries(entity="users", action="insert") if e.after["username"] == "log.me"]
    assert "password_hash" not in entry.after
    assert "13712345678" not in str(entry.after) and entry.after["phone"].endswith("5678")


def test_chains_are_per_scope_and_sequential(api):
    district = DistrictFactory()
    first, second = CanteenFactory(district=district), CanteenFactory(district=district)
    caller = api(officer(district))
    for seats in (1, 2, 3):
        caller.patch(f"/api/v1/canteens/{first.id}", json={"seats": seats})
    caller.patch(f"/api/v1/canteens/{second.id}", json={"seats": 9})
    chain = _entries(chain=f"canteen:{first.id}")
    assert [e.seq for e in chain] == [1, 2, 3]
    assert chain[1].prev_hash == chain[0].entry_hash and chain[2].prev_hash == chain[1].entry_hash
    assert [e.seq for e in _entries(chain=f"canteen:{second.id}")] == [1]
    checked, breaks = verify_chains(db.session)
    assert checked >= 4 and breaks == []


def _tamper(sql: str, backend: str) -> None:
    # a DBA with direct access: the append-only trigger must be bypassed first
    if backend == "postgresql":
        db.session.execute(sa.text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"))
        db.session.execute(sa.text(sql))
        db.session.execute(sa.text("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only"))
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_entries_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_entries_no_delete"))
        db.session.execute(sa.text(sql))


def test_database_refuses_update_and_delete(api, backend):
    district = DistrictFactory()
    api(officer(district)).patch(f"/api/v1/canteens/{CanteenFactory(district=district).id}", json={"seats": 7})
    entry = _entries()[-1]
    for statement in (
        f"UPDATE audit_entries SET actor_name = 'x' WHERE id = {entry.id}",
        f"DELETE FROM audit_entries WHERE id = {entry.id}",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.session.begin_nested():
            db.session.execute(sa.text(statement))


def test_verify_command_detects_an_edited_row(api, app, backend):
    district = DistrictFactory()
    canteen = CanteenFactory(district=district)
    caller = api(officer(district))
    for seats in (10, 20, 30):
        caller.patch(f"/api/v1/canteens/{canteen.id}", json={"seats": seats})
    runner = app.test_cli_runner()
    intact = runner.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output
    middle = _entries(chain=f"canteen:{canteen.id}")[1]
    _tamper(f"UPDATE audit_entries SET actor_name = 'someone-else' WHERE id = {middle.id}", backend)
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"chain canteen:{canteen.id} at entry id={middle.id} seq=2" in broken.output


def test_verify_detects_a_removed_row(api, backend):
    district = DistrictFactory()
    canteen = CanteenFactory(district=district)
    caller = api(officer(district))
    for seats in (10, 20, 30):
        caller.patch(f"/api/v1/canteens/{canteen.id}", json={"seats": seats})
    first = _entries(chain=f"canteen:{canteen.id}")[0]
    _tamper(f"DELETE FROM audit_entries WHERE id = {first.id}", backend)
    _, breaks = verify_chains(db.session)
    assert [(b.chain, b.seq) for b in breaks] == [(f"canteen:{canteen.id}", 2)]
    assert "gap" in breaks[0].reason
