"""One error vocabulary: domain errors carry a stable `code`, an HTTP status and field errors,
and one set of handlers renders them — JSON under /api and /healthz, a page everywhere else."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class CanteenError(Exception):
    """Base of every error a user or client can cause; never a 500."""

    status = 400
    code = "bad_request"
    message = "The request cannot be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, list[str]] | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.errors = errors or {}
        self.details = details or {}
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "errors": self.errors, **self.details}


class ValidationFailed(CanteenError):
    status = 422
    code = "validation_error"
    message = "Some fields are invalid."


class Unauthorized(CanteenError):
    status = 401
    code = "unauthorized"
    message = "Log in first."


class Forbidden(CanteenError):
    status = 403
    code = "forbidden"
    message = "Your role may not do this."


class NotFound(CanteenError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(CanteenError):
    status = 409
    code = "conflict"
    message = "This conflicts with existing data."


class TooManyRequests(CanteenError):
    status = 429
    code = "too_many_requests"
    message = "Too many attempts; wait and try again."


def field_error(field: str, message: str, *, code: str = "validation_error") -> ValidationFailed:
    """A 422 for one field, the common case in services."""
    return ValidationFailed(message, code=code, errors={field: [message]})


# stable codes for the HTTP errors Flask, Werkzeug and webargs raise themselves
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/healthz"))


def http_error_body(error: HTTPException) -> dict[str, Any]:
    """Rewrite Werkzeug's and flask-smorest's/webargs' error bodies to {code, message, errors}."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or {}
    errors: dict[str, list[str]] = {}
    code = HTTP_CODES.get(status, "error")
    message = error.description if status != 500 else "Internal error."
    if messages:
        # webargs nests errors by location: {"json": {...}, "query": {...}}
        for location, location_errors in messages.items():
            if isinstance(location_errors, dict):
                for field, field_errors in location_errors.items():
                    errors[str(field)] = _flatten(field_errors)
            else:
                errors[f"_{location}"] = _flatten(location_errors)
        if status == 400 and "_json" in errors:
            code, message = "malformed_json", "The request body is not valid JSON."
        elif status == 422:
            message = "Some fields are invalid."
    if status == 413:
        message = "The request body is too large."
    return {"code": code, "message": message, "errors": errors}


def _flatten(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        # nested fields (lists of objects, nested schemas): keep the path in the message
        flat: list[str] = []
        for key, inner in value.items():
            flat.extend(f"{key}: {m}" for m in _flatten(inner))
        return flat
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _render(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    if wants_json():
        response = jsonify(body)
    else:
        response = render_template("error.html", status=status, error=body)
    return response, status, headers or {}


def register_error_handlers(app: Flask) -> None:
    from canteen.extensions import db

    @app.errorhandler(CanteenError)
    def handle_domain_error(error: CanteenError):
        db.session.rollback()
        return _render(error.status, error.to_dict(), error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        db.session.rollback()
        headers = dict(getattr(error, "data", {}).get("headers") or {})
        if error.code == 429 and error.get_headers():
            headers.update({k: v for k, v in error.get_headers() if k.lower() == "retry-after"})
        return _render(error.code or 500, http_error_body(error), headers)

    @app.errorhandler(IntegrityError)
    def handle_integrity_error(error: IntegrityError):
        # services check what they can; a race that still hits a constraint is a conflict
        db.session.rollback()
        log.info("integrity error turned into 409: %s", error.orig)
        body = {"code": "conflict", "message": "This conflicts with existing data.", "errors": {}}
        return _render(409, body)

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def handle_out_of_range(error: Exception):
        # a number too large for a 64-bit column (an id or page number of 30 digits)
        db.session.rollback()
        body = {"code": "value_out_of_range", "message": "A number in the request is out of range.", "errors": {}}
        return _render(422, body)

    @app.errorhandler(OperationalError)
    def handle_operational_error(error: OperationalError):
        db.session.rollback()
        log.exception("database unavailable")
        body = {"code": "unavailable", "message": "The database is busy or unreachable.", "errors": {}}
        return _render(503, body)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        body = {"code": "internal_error", "message": "Internal error.", "errors": {}}
        return _render(500, body)
