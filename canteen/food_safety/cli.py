"""`flask food-safety check [--date]`: raise the deviations of every site whose deadlines have passed
(a one-shot for the scheduler; safe to run any number of times, from several hosts)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import click
from flask.cli import AppGroup

from canteen.core import clock
from canteen.core.audit_log import Actor, set_actor
from canteen.core.db import transaction
from canteen.food_safety import service as food_safety_service

food_safety_cli = AppGroup("food-safety", help="Food safety at every site.")
OPERATION = "flask food-safety check"
# the scheduler checks today and yesterday; a catch-up may go back a month. Further back, sites
# set up since would be charged with days before they kept any records.
MAX_DAYS_BACK = 31


@food_safety_cli.command("check")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The business date to check (YYYY-MM-DD); default: today in Asia/Shanghai.",
)
def check_command(day) -> None:
    """Check every active site's day: a checklist missing or failed by its deadline, served dishes
    without samples, too few fridge and freezer readings. Only deadlines already passed count
    (for a past date, all of them); a deviation already raised is never raised again.
    """
    checked_day: date = day.date() if day is not None else clock.today()
    if checked_day > clock.today():
        raise click.BadParameter("a date in the future has no deadlines passed yet", param_hint="--date")
    if checked_day < clock.today() - timedelta(days=MAX_DAYS_BACK):
        raise click.BadParameter(f"at most {MAX_DAYS_BACK} days back", param_hint="--date")
    set_actor(Actor(None, "cli", OPERATION))
    with transaction():
        raised = food_safety_service.check_all_sites(checked_day)
    kinds = Counter(deviation.kind for deviations in raised.values() for deviation in deviations)
    total = sum(kinds.values())
    summary = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none"
    click.echo(f"{checked_day.isoformat()}: {len(raised)} sites checked, {total} deviations raised ({summary})")
