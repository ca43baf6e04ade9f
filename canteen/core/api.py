"""API conventions: the flask-smorest Api and Blueprint used by every domain, authentication
required by default, pagination with `page`/`page_size`, errors in the one shape."""

from __future__ import annotations

import json
import os

import flask_smorest
import marshmallow as ma
from flask import Flask, current_app, g, redirect, request, send_from_directory, url_for
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

from canteen.core.errors import Unauthorized


class ErrorSchema(ma.Schema):
    """Every API error: a stable snake_case code, a message, field errors."""

    code = ma.fields.String(required=True, metadata={"example": "validation_error"})
    message = ma.fields.String(required=True)
    errors = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()), metadata={"example": {}}
    )


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        # canteen.core.errors renders every error app-wide in one shape; see register_error_handlers
        pass


class RequestParser(FlaskParser):
    """webargs' parser, refusing as bad JSON what Python's json module accepts but nothing
    downstream can hold: nesting deep enough to exhaust the stack, integers of thousands of
    digits, lone UTF-16 surrogates (which no database encodes) — and a body sent with another
    content type, which would otherwise be silently ignored."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            if req.get_data(cache=True):
                raise UnsupportedMediaType("Send JSON with Content-Type: application/json.")
            return core.missing
        try:
            data = super()._raw_load_json(req)
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError, UnicodeError) as error:
            self._handle_invalid_json_error(error, req)
        return data


class Blueprint(flask_smorest.Blueprint):
    """A REST blueprint whose endpoints need an authenticated caller unless marked `public`."""

    ARGUMENTS_PARSER = RequestParser()
    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 50, "max_page_size": 500}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(self._require_caller)

    def _require_caller(self):
        view = current_app.view_functions.get(request.endpoint or "")
        view_class = getattr(view, "view_class", None)
        if view_class is not None:  # a MethodView: the method handling this request decides
            view = getattr(view_class, request.method.lower(), view_class)
        if getattr(view, "_canteen_public", False):
            return None
        if g.get("user") is None:
            raise Unauthorized(
                "Send a valid API token: Authorization: Bearer <token>.",
                code="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None


def one_page(listing, args: dict, pagination_parameters) -> list:
    """Call a service `list_*` function for the requested page and set the X-Pagination total."""
    page = listing(**args, page=pagination_parameters.page, page_size=pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


def public(view):
    """Mark a view (function or MethodView class) as reachable without a token, e.g. the token endpoint."""
    view._canteen_public = True
    return view


def register_api_docs_assets(app: Flask) -> None:
    """Serve Swagger UI's files from the installed swagger-ui-bundle package (no CDN)."""
    import swagger_ui_bundle

    folder = swagger_ui_bundle.swagger_ui_path

    @app.route("/api/docs/static/<path:filename>", endpoint="api_docs_static")
    def api_docs_static(filename: str):
        return send_from_directory(folder, filename, max_age=86400)

    if not os.path.isdir(folder):  # pragma: no cover - broken install
        raise RuntimeError(f"swagger-ui-bundle files missing at {folder}")


def login_required_for_docs(app: Flask) -> None:
    """In production the API docs and spec are behind a page login, as the intranet policy asks."""

    @app.before_request
    def _docs_login():
        if not app.config.get("API_DOCS_REQUIRE_LOGIN"):
            return None
        in_docs = request.blueprint == "api-docs" or request.endpoint == "api_docs_static"
        if in_docs and g.get("user") is None:
            return redirect(url_for("auth.login", next=request.full_path))
        return None
