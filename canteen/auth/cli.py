"""`flask users ...`: create accounts from the command line (first set-up, scripts)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from canteen.auth import service as auth_service
from canteen.core.audit_log import Actor, set_actor
from canteen.core.db import transaction
from canteen.core.errors import CanteenError
from canteen.org import service as org_service

users_cli = AppGroup("users", help="User accounts.")


@users_cli.command("create")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "district_officer", "canteen_staff", "kitchen_staff"]),
)
@click.option("--district", "district_code", help="Division code of an officer's district, e.g. 630102.")
@click.option("--canteen", "canteen_code", help="Code of a staff member's canteen or kitchen.")
@click.option("--display-name", help="Name shown in pages; defaults to the username.")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
def create_user_command(username, role, district_code, canteen_code, display_name, password_stdin):
    """Create an account; the password is read from standard input, never from the command line."""
    password = sys.stdin.readline().rstrip("\r\n")
    set_actor(Actor(None, "cli", "flask users create"))
    try:
        with transaction():
            district_id = canteen_id = None
            if district_code:
                district = org_service.find_district_by_code(district_code)
                if district is None:
                    raise click.ClickException(f"no district with code {district_code}")
                district_id = district.id
            if canteen_code:
                canteen = org_service.find_canteen_by_code(canteen_code)
                if canteen is None:
                    raise click.ClickException(f"no canteen with code {canteen_code}")
                canteen_id = canteen.id
            user = auth_service.create_user(
                username=username,
                role=role,
                password=password,
                display_name=display_name,
                district_id=district_id,
                canteen_id=canteen_id,
            )
    except CanteenError as error:
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in error.errors.items())
        raise click.ClickException(f"{error.message} {details}".strip()) from None
    click.echo(f"created {user.username} ({user.role}), id {user.id}")


@users_cli.command("unlock")
@click.argument("username")
def unlock_user_command(username):
    """Lift a login lock."""
    set_actor(Actor(None, "cli", "flask users unlock"))
    try:
        with transaction():
            auth_service.unlock_user(auth_service.get_user_by_username(username).id)
    except CanteenError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"unlocked {username}")
