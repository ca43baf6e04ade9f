"""create_app(): settings → extensions → request hooks → blueprints → error handlers → commands.

Runs no SQL and starts no scheduler: the app can be created by any process (web worker,
CLI, tests) without side effects.
"""

from __future__ import annotations

import json
import os
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, g
from werkzeug.routing import IntegerConverter

import config
from canteen.core import crypto
from canteen.core.privacy import install_log_filter

# (import path, attribute) of every blueprint, API and pages alike, in registration order
API_BLUEPRINTS = (
    "canteen.auth.api",
    "canteen.org.api",
    "canteen.residents.api",
    "canteen.subsidies.api",
    "canteen.meals.api",
    "canteen.food_safety.api",
)
PAGE_BLUEPRINTS = (
    "canteen.auth.views",
    "canteen.org.views",
    "canteen.residents.views",
    "canteen.subsidies.views",
    "canteen.meals.views",
    "canteen.food_safety.views",
)


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: ids are positive 64-bit integers; a larger number matches no
    route (404) instead of overflowing the database driver."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    app.url_map.converters["int"] = IdConverter
    load_settings(app, overrides)
    register_extensions(app)
    register_request_hooks(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    wrap_views_in_transactions(app)
    return app


def load_settings(app: Flask, overrides: dict[str, Any] | None) -> None:
    app.config.update(config.load(os.environ.get("CANTEEN_ENV")))
    if overrides:
        app.config.update(overrides)
        if "DATABASE_URL" in overrides:
            from config.base import _normalise_database_url

            app.config["SQLALCHEMY_DATABASE_URI"] = _normalise_database_url(overrides["DATABASE_URL"])
    if app.config.get("GENERATE_MISSING_SECRETS"):
        _fill_development_secrets(app)
    missing = [k for k in ("SECRET_KEY", "CANTEEN_DATA_KEY", "CANTEEN_INDEX_KEY") if not app.config.get(k)]
    if missing:
        raise RuntimeError(f"settings missing: {', '.join(missing)} (set them in the environment)")
    crypto.configure(app.config["CANTEEN_DATA_KEY"], app.config["CANTEEN_INDEX_KEY"])
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        Path(app.instance_path).mkdir(exist_ok=True)
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("connect_args", {})["timeout"] = app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000
    if app.config.get("PROXY_FIX_HOPS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    install_log_filter()


def _fill_development_secrets(app: Flask) -> None:
    # development keys live in instance/ (git-ignored), made once so data stays readable
    path = Path(app.instance_path) / "dev-secrets.json"
    path.parent.mkdir(exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    generated = {
        "SECRET_KEY": lambda: crypto.new_key(),
        "CANTEEN_DATA_KEY": lambda: f"dev1:{crypto.new_key()}",
        "CANTEEN_INDEX_KEY": lambda: crypto.new_key(),
    }
    changed = False
    for key, make in generated.items():
        if app.config.get(key):
            continue
        if key not in stored:
            stored[key], changed = make(), True
        app.config[key] = stored[key]
    if changed:
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)


def register_extensions(app: Flask) -> None:
    from canteen.core.api import register_api_docs_assets
    from canteen.extensions import api, babel, csrf, db, limiter, login_manager, migrate
    from canteen.i18n import select_locale

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    app.config.setdefault("API_SPEC_OPTIONS", {}).update(
        {
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        }
    )
    api.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    babel.init_app(app, locale_selector=select_locale)
    register_api_docs_assets(app)


def register_request_hooks(app: Flask) -> None:
    from canteen.auth.views import identify_caller
    from canteen.core.api import login_required_for_docs
    from canteen.core.privacy import refuse_id_numbers_in_urls

    app.before_request(refuse_id_numbers_in_urls)
    app.before_request(identify_caller)
    login_required_for_docs(app)  # after identify_caller: it needs to know who is asking

    @app.teardown_request
    def forget_request_state(exc):
        # the app context can outlive the request (tests, CLI): nothing of this request's caller,
        # language or CSRF token may leak into the next one
        for name in list(g):
            g.pop(name, None)

    @app.after_request
    def security_headers(response):
        # Flask-WTF refuses HTTPS form posts without a referrer; same-origin keeps it and leaks nothing
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response


def register_blueprints(app: Flask) -> None:
    import importlib

    from canteen.extensions import api, csrf

    for module_path in API_BLUEPRINTS:
        blueprint = importlib.import_module(module_path).blp
        csrf.exempt(blueprint)  # bearer tokens, never cookies: no CSRF to guard against
        api.register_blueprint(blueprint)
    for module_path in PAGE_BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module_path).bp)

    from canteen.core.health import bp as health_bp

    app.register_blueprint(health_bp)


def register_error_handlers(app: Flask) -> None:
    from canteen.core.errors import register_error_handlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from canteen.auth.cli import users_cli
    from canteen.core.audit_log import audit_cli
    from canteen.demo.cli import demo_cli
    from canteen.food_safety.cli import food_safety_cli
    from canteen.meals.cli import meals_cli
    from canteen.residents.cli import residents_cli

    for group in (users_cli, audit_cli, demo_cli, residents_cli, meals_cli, food_safety_cli):
        app.cli.add_command(group)


def wrap_views_in_transactions(app: Flask) -> None:
    """Each request is one transaction: committed when the view answers below 400, rolled back
    otherwise. Errors that must keep their writes (a failed login's counter) say so."""
    from canteen.core.errors import CanteenError
    from canteen.extensions import db

    def transactional(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            try:
                response = app.make_response(view(*args, **kwargs))
            except CanteenError as error:
                if getattr(error, "keep_changes", False):
                    db.session.commit()
                else:
                    db.session.rollback()
                raise
            except BaseException:
                db.session.rollback()
                raise
            if response.status_code < 400:
                db.session.commit()
            else:
                db.session.rollback()
            return response

        return wrapper

    for endpoint, view in list(app.view_functions.items()):
        if endpoint == "static" or endpoint.endswith(".static") or endpoint == "api_docs_static":
            continue
        app.view_functions[endpoint] = transactional(view)
