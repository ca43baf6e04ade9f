"""`flask users create` for first set-up and scripts."""

import sqlalchemy as sa

from canteen.auth import service as auth_service
from canteen.auth.models import User
from canteen.core import scoping
from canteen.core.audit_log import AuditEntry
from canteen.extensions import db
from tests.factories import CanteenFactory, DistrictFactory, KitchenFactory


def _user(username):
    with scoping.unrestricted():
        return db.session.scalars(sa.select(User).where(User.username == username)).one_or_none()


def test_create_admin_reads_password_from_stdin(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "root.admin", "--role", "admin", "--password-stdin"], input="a-long-password\n"
    )
    assert result.exit_code == 0, result.output
    user = _user("root.admin")
    assert user.role == "admin"
    assert auth_service.authenticate(username="root.admin", password="a-long-password") == user
    with scoping.unrestricted():
        logged = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.entity == "users", AuditEntry.entity_id == user.id)
        ).all()
    assert [e.actor_name for e in logged] == ["cli"]


def test_create_scoped_accounts_by_code(app):
    district = DistrictFactory(code="630199")
    canteen = CanteenFactory(district=district, code="CD-01")
    kitchen = KitchenFactory(district=district, code="CK-01")
    runner = app.test_cli_runner()
    for args in (
        ["officer.x", "--role", "district_officer", "--district", "630199"],
        ["staff.x", "--role", "canteen_staff", "--canteen", "CD-01"],
        ["cook.x", "--role", "kitchen_staff", "--canteen", "CK-01"],
    ):
        result = runner.invoke(args=["users", "create", *args, "--password-stdin"], input="a-long-password\n")
        assert result.exit_code == 0, result.output
    assert _user("officer.x").district_id == district.id
    assert _user("staff.x").canteen_id == canteen.id
    assert _user("cook.x").canteen_id == kitchen.id


def test_create_refuses_bad_input_and_writes_nothing(app):
    runner = app.test_cli_runner()
    unknown = runner.invoke(
        args=["users", "create", "o.y", "--role", "district_officer", "--district", "999999", "--password-stdin"],
        input="a-long-password\n",
    )
    assert unknown.exit_code != 0 and "no district" in unknown.output
    weak = runner.invoke(args=["users", "create", "a.y", "--role", "admin", "--password-stdin"], input="short\n")
    assert weak.exit_code != 0 and "password" in weak.output
    assert _user("o.y") is None and _user("a.y") is None
