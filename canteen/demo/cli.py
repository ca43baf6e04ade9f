"""`flask demo load`: load the demo city into an empty database and print the logins."""

from __future__ import annotations

from flask.cli import AppGroup

demo_cli = AppGroup("demo", help="The demo city.")
