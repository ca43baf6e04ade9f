"""`flask food-safety check [--date]`: every active site's passed deadlines become deviations, once,
written by the command (audited as the CLI); a date in the future is refused."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.core.audit_log import AuditEntry
from canteen.extensions import db
from canteen.food_safety.models import Deviation
from tests.food_safety.conftest import count


def test_the_check_raises_each_deviation_once(app, site):
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["food-safety", "check", "--date", yesterday])
    assert first.exit_code == 0, first.output
    raised = count(Deviation, Deviation.site_id == site.canteen.id)
    # nothing recorded: the checklist, three meals without samples, three devices without readings
    assert raised == 7
    assert f"{yesterday}: " in first.output and "checklist_missing: 1" in first.output
    assert "readings_missing: 3" in first.output and "sample_missing: 3" in first.output
    again = runner.invoke(args=["food-safety", "check", "--date", yesterday])
    assert again.exit_code == 0 and "0 deviations raised (none)" in again.output
    assert count(Deviation, Deviation.site_id == site.canteen.id) == raised
    with scoping.unrestricted():
        actors = set(db.session.scalars(sa.select(AuditEntry.operation).where(AuditEntry.entity == "deviations")))
    assert actors == {"flask food-safety check"}


def test_a_date_in_the_future_or_more_than_a_month_back_is_refused(app, site):
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    result = app.test_cli_runner().invoke(args=["food-safety", "check", "--date", tomorrow])
    assert result.exit_code == 2 and "future" in result.output
    long_ago = (clock.today() - timedelta(days=32)).isoformat()
    result = app.test_cli_runner().invoke(args=["food-safety", "check", "--date", long_ago])
    assert result.exit_code == 2 and "31 days back" in result.output
    assert count(Deviation) == 0
