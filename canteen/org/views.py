"""Pages to manage districts, communities and canteens."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("org", __name__, template_folder="templates", url_prefix="/org")
