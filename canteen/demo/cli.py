"""`flask demo load`: load the demo city into an empty database and print the logins."""

from __future__ import annotations

import unicodedata

import click
from flask import current_app
from flask.cli import AppGroup

from canteen.core.audit_log import Actor, set_actor
from canteen.core.db import transaction
from canteen.core.errors import CanteenError
from canteen.core.money import format_yuan
from canteen.demo import data
from canteen.demo import service as demo_service
from canteen.demo.data import CITY_NAME

demo_cli = AppGroup("demo", help="The demo city.")

DEMO_URL = "http://127.0.0.1:5000"


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when the database already holds a city.")
@click.option(
    "--residents",
    type=click.IntRange(min=0),
    default=demo_service.DEFAULT_RESIDENTS,
    show_default=True,
    help="How many fictitious residents to register.",
)
def load_command(if_empty: bool, residents: int) -> None:
    """Load the demo city 西宁市 (districts, canteens, kitchens, one login per role and scope,
    a few thousand fictitious residents, a subsidy policy per district and four weeks of meals).

    Only into an empty database: without --if-empty a database that already holds districts is
    refused with exit code 1. The password of every demo login is the DEMO_PASSWORD setting.
    """
    password = current_app.config["DEMO_PASSWORD"]
    set_actor(Actor(None, "cli", "flask demo load"))
    try:
        with transaction():
            if not demo_service.city_is_empty():
                if not if_empty:
                    raise click.ClickException(
                        "the database already holds districts: the demo city loads only into an empty database "
                        "(use --if-empty to skip quietly)"
                    )
                existing = demo_service.find_demo_logins()
                click.echo("demo city already loaded; nothing written.")
                if existing:
                    click.echo(_login_table(existing))
                    click.echo(
                        "password: the DEMO_PASSWORD setting used when it was loaded (default canteen-demo-2026)"
                    )
                    click.echo(_counter_hint())
                    click.echo(f"open {DEMO_URL}")
                else:
                    click.echo("(the database holds districts but none of the demo accounts)")
                return
            city = demo_service.load_demo_city(password=password, residents=residents)
    except CanteenError as error:
        raise click.ClickException(_describe(error)) from None
    click.echo(
        f"demo city {CITY_NAME} loaded: {len(city.districts)} districts, {len(city.communities)} communities, "
        f"{len(city.canteens)} canteens and kitchens, {len(city.users)} logins"
    )
    click.echo(_residents_summary(city))
    click.echo(_policies_summary(city))
    click.echo(_meals_summary(city))
    click.echo(_food_safety_summary(city))
    click.echo(_login_table(city.logins))
    click.echo(f"password for every login: {password}")
    click.echo(_counter_hint())
    click.echo(f"open {DEMO_URL}")


def _residents_summary(city: demo_service.DemoCity) -> str:
    counts = city.resident_counts
    return (
        f"residents loaded: {len(city.residents)} (fictitious: {counts['with_categories']} with eligibility "
        f"categories, {counts['with_diet']} with a diet profile, {counts['with_card']} with a meal card, "
        f"{counts['suspended']} suspended, {counts['deceased']} deceased)"
    )


def _policies_summary(city: demo_service.DemoCity) -> str:
    ended = sum(1 for policy in city.policies if policy.valid_to is not None)
    districts = len({policy.district_id for policy in city.policies})
    return (
        f"subsidy policies loaded: {len(city.policies)} in {districts} districts ({ended} ended and replaced), "
        f"{sum(len(policy.rules) for policy in city.policies)} rules"
    )


def _meals_summary(city: demo_service.DemoCity) -> str:
    counts = city.meal_counts
    return (
        f"meals loaded: {counts['valid']} from {city.meals_from} to {city.meals_to} "
        f"({counts['delivery']} delivered, {counts['pickup']} picked up, {counts['subsidised']} subsidised, "
        f"{counts['cap_reached']} over a cap; {counts['void']} voided), subsidies {format_yuan(counts['subsidy_fen'])} "
        f"yuan, copay {format_yuan(counts['copay_fen'])} yuan"
    )


def _food_safety_summary(city: demo_service.DemoCity) -> str:
    loaded = city.food_safety
    if loaded is None:
        return "food safety: nothing loaded"
    records = ", ".join(f"{count} {name}" for name, count in sorted(loaded.records.items()))
    statuses = ", ".join(f"{count} {name}" for name, count in sorted(loaded.statuses.items()))
    return (
        f"food safety from {loaded.days_from} to {loaded.days_to}: {records}; "
        f"{sum(loaded.deviations.values())} deviations ({statuses})"
    )


def _counter_hint() -> str:
    canteen = data.CANTEENS[0]  # it serves breakfast, lunch and dinner
    return (
        "to record meals at a counter, log in as that canteen's staff (role canteen_staff, staff.<canteen code>), "
        f"e.g. staff.{canteen.code.lower()} for {canteen.name}"
    )


def _describe(error: CanteenError) -> str:
    # the only field a person running this command controls is the password, via DEMO_PASSWORD
    details = [
        f"{'DEMO_PASSWORD' if name == 'password' else name}: {'; '.join(messages)}"
        for name, messages in error.errors.items()
    ]
    if len(details) == 1 and next(iter(error.errors.values())) == [error.message]:
        return details[0]
    return " ".join([error.message, *details])


def _login_table(logins: list[demo_service.DemoLogin]) -> str:
    rows = [("username", "role", "name", "works for")]
    rows += [(login.username, login.role, login.display_name, login.scope_name) for login in logins]
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(_pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
