"""`flask residents ...`: the registry from the command line (bulk import of a workbook)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
from flask.cli import AppGroup

from canteen.auth import service as auth_service
from canteen.core import scoping
from canteen.core.audit_log import Actor, set_actor
from canteen.core.db import transaction
from canteen.core.errors import CanteenError
from canteen.org import service as org_service
from canteen.residents import imports as resident_imports

residents_cli = AppGroup("residents", help="The elderly registry.")

OPERATION = "flask residents import"


@residents_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--district", "district_code", help="Division code for rows with a blank 区划代码, e.g. 630102.")
@click.option("--as", "username", help="Import with this user's scope (default: the system, every district).")
def import_command(file: Path, district_code: str | None, username: str | None) -> None:
    """Import residents from an Excel workbook (the template of GET /api/v1/residents/import-template.xlsx).

    Every row is checked with the registry's rules; if any row is bad, each bad row is printed
    in Chinese and English, nothing is written and the exit code is 1. Otherwise all rows are
    committed at once.
    """
    scope_block: contextlib.AbstractContextManager = contextlib.nullcontext()
    actor = Actor(None, "cli", OPERATION)
    if username:
        try:
            with scoping.unrestricted():
                user = auth_service.get_user_by_username(username)
        except CanteenError as error:
            raise click.ClickException(error.message) from None
        if not user.active:
            raise click.ClickException(f"user {username} is disabled")
        scope_block = scoping.acting_as(auth_service.scope_for(user))
        actor = Actor(user.id, user.username, OPERATION)
    set_actor(actor)
    try:
        with scope_block, transaction():
            default_district_id = None
            if district_code:
                district = org_service.find_district_by_code(district_code)
                if district is None:
                    raise click.ClickException(f"no district with code {district_code} in scope")
                default_district_id = district.id
            with file.open("rb") as stream:
                sheet = resident_imports.read_resident_workbook(stream)
            with click.progressbar(length=len(sheet.rows), label=f"{file.name}: 检查 / checking") as bar:
                result = resident_imports.import_residents(
                    sheet, default_district_id=default_district_id, progress=bar.update
                )
    except CanteenError as error:
        for problem in error.details.get("rows", ()):
            click.echo(
                f"第 {problem['row']} 行 {problem['column']}：{problem['message_zh']} / "
                f"row {problem['row']} {problem['field']}: {problem['message_en']}",
                err=True,
            )
        if error.details.get("truncated"):
            click.echo("（仅列出前若干项 / only the first problems are listed）", err=True)
        message_zh = error.details.get("message_zh")
        raise click.ClickException(f"{message_zh} / {error.message}" if message_zh else error.message) from None
    click.echo(f"已导入 {result.created} 位居民 / imported {result.created} residents")
