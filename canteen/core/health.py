"""`GET /healthz`: is the app up and the database reachable (for load balancers and monitoring)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    from canteen.extensions import db

    try:
        db.session.execute(sa.select(1))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
