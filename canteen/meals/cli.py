"""`flask meals ...`: upkeep of the meal records from the command line."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from canteen.core.db import transaction
from canteen.meals import service as meal_service

meals_cli = AppGroup("meals", help="Meals recorded at the counter.")


@meals_cli.command("purge-keys")
def purge_keys_command() -> None:
    """Delete Idempotency-Keys older than MEAL_IDEMPOTENCY_DAYS (at least 7); the meals keep theirs.

    Meant for a daily scheduled run; safe to run at any time and from several hosts.
    """
    with transaction():
        purged = meal_service.purge_idempotency_keys()
    click.echo(f"purged {purged} idempotency keys")
