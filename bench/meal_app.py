"""The app gunicorn serves in the meal-recording benchmark: the real app (`canteen.create_app()`,
settings from the environment) plus one bare endpoint that gives the ceiling of that app.

`POST /api/v1/bench/bare-insert` goes through the same request stack as `POST /api/v1/meals` —
the same before/after-request hooks, bearer-token authentication and scope, JSON body — and then
inserts one `idempotency_keys` row (the caller, the request's Idempotency-Key, the body's hash)
and commits: one INSERT … RETURNING and one COMMIT, nothing of the meal rules. It exists only in
this factory, never in the app itself. Run: `gunicorn 'bench.meal_app:create_app()'`.
"""

from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, request

BARE_PATH = "/api/v1/bench/bare-insert"

bp = Blueprint("bench_bare", __name__)


@bp.post("/api/v1/bench/bare-insert")
def bare_insert():
    """Insert one idempotency-key row for the authenticated caller and commit (the ceiling)."""
    from canteen.core.db import utcnow
    from canteen.core.errors import Unauthorized
    from canteen.extensions import db
    from canteen.meals import service as meal_service
    from canteen.meals.models import IdempotencyKey

    if g.get("user") is None:
        raise Unauthorized("Send a bearer token.")
    body = request.get_json()
    row = IdempotencyKey(
        user_id=g.user.id,
        key=request.headers.get("Idempotency-Key", ""),
        request_hash=meal_service.request_hash(body),
        created_at=utcnow(),
    )
    try:
        db.session.add(row)
        db.session.flush()
        answer = {"id": row.id}
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return jsonify(answer), 201


def create_app() -> Flask:
    """`canteen.create_app()` with the bare endpoint added (CSRF-exempt like every API blueprint)."""
    from canteen import create_app as create_canteen_app
    from canteen.extensions import csrf

    app = create_canteen_app()
    csrf.exempt(bp)
    app.register_blueprint(bp)
    return app
