"""Pages: log in, log out, the home page of each role, the caller's own account and tokens, and
the accounts pages (admin). Also `identify_caller`, run before every request to set the user,
scope and audit actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from canteen.auth import schemas as auth_schemas
from canteen.auth import service as auth_service
from canteen.auth.models import User
from canteen.core import scoping
from canteen.core.audit_log import Actor, set_actor
from canteen.core.db import utcnow
from canteen.core.errors import CanteenError
from canteen.core.privacy import mask_phone
from canteen.extensions import limiter, login_manager
from canteen.org import service as org_service
from canteen.pages import N_, FormInput, submit_form, template_helpers, translate_known

bp = Blueprint("auth", __name__, template_folder="templates")
bp.app_context_processor(template_helpers)  # labels and the language switch, for every page

# Flask-Login flashes this when a page needs a login; translated when flashed, in the user's language
login_manager.login_message = N_("Log in to open this page.")
login_manager.login_message_category = "info"
login_manager.localize_callback = _

USERS_PAGE_SIZE = 50
CHOICES_LIMIT = 1000
STAFF_ROLES = (scoping.CANTEEN_STAFF, scoping.KITCHEN_STAFF)


@login_manager.user_loader
def _load_user(session_id: str):
    return auth_service.load_session_user(session_id)


def identify_caller() -> None:
    """Set g.user, the row scope and the audit actor for this request.

    API requests authenticate only by bearer token (so no cookie can be replayed cross-site);
    pages only by the session cookie.
    """
    user = None
    g.api_token = None
    if request.path.startswith("/api/v1/"):
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer " and header[7:].strip():
            found = auth_service.find_token_user(header[7:].strip())
            if found is not None:
                user, g.api_token = found
    elif current_user.is_authenticated:
        user = current_user._get_current_object()
    g.user = user
    scoping.set_scope(auth_service.scope_for(user) if user is not None else scoping.ANONYMOUS)
    operation = f"{request.method} {request.url_rule.rule if request.url_rule else request.path}"
    set_actor(Actor(user.id, user.username, operation) if user else Actor(None, "anonymous", operation))


class LoginForm(FlaskForm):
    username = StringField("username", validators=[DataRequired(), Length(max=60)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current_password = PasswordField("current_password", validators=[DataRequired()])
    new_password = PasswordField("new_password", validators=[DataRequired(), Length(max=200)])


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
def login():
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(url_for("auth.home"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = auth_service.authenticate(username=form.username.data.strip(), password=form.password.data)
        except CanteenError as failure:
            # answered 200 with the form again, so the request commits the failure counter
            error = _login_error_message(failure.code)
        else:
            login_user(user)
            g.user = user
            return redirect(_safe_next(request.args.get("next")) or url_for("auth.home"))
    elif form.is_submitted():
        error = _("Enter your username and password.")
    return render_template("auth/login.html", form=form, error=error)


def _login_error_message(code: str) -> str:
    return {
        "account_locked": _("This account is locked after repeated failed logins. Try later or ask an administrator."),
        "login_throttled": _("Too many failed logins. Wait a few seconds and try again."),
    }.get(code, _("Wrong username or password."))


def _safe_next(target: str | None) -> str | None:
    # only local paths: an open redirect would hand the login page to phishers
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    auth_service.end_sessions(g.user)
    logout_user()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/")
@login_required
def home():
    user = g.user
    return render_template(
        f"auth/home_{user.role}.html", user=user, scope=scoping.current_scope(), **_home_summary(user)
    )


def _home_summary(user: User) -> dict[str, Any]:
    """What each role's home page shows besides the user's own scope."""
    if user.role == scoping.ADMIN:
        counts = {
            "districts": org_service.list_districts(page_size=1).total,
            "canteens": org_service.list_canteens(page_size=1).total,
            "users": auth_service.list_users(page_size=1).total,
        }
        return {"counts": counts}
    if user.role == scoping.DISTRICT_OFFICER:
        counts = {
            "communities": org_service.list_communities(district_id=user.district_id, page_size=1).total,
            "canteens": org_service.list_canteens(district_id=user.district_id, page_size=1).total,
        }
        return {"counts": counts}
    if user.role == scoping.KITCHEN_STAFF:
        return {"supplied": org_service.list_canteens(supplied_by_id=user.canteen_id, page_size=CHOICES_LIMIT).items}
    # business dates are in the city's time zone, not the server's
    return {"today": datetime.now(ZoneInfo(current_app.config["TIME_ZONE"])).date()}


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            auth_service.change_own_password(
                g.user, current_password=form.current_password.data, new_password=form.new_password.data
            )
        except CanteenError as failure:
            for field, messages in failure.errors.items():
                getattr(form, field, form.new_password).errors = list(messages)
        else:
            login_user(g.user)  # this session continues with the new session version
            flash(_("Password changed. Other sessions have been logged out."), "success")
            return redirect(url_for("auth.account"))
    errors = {field.name: [translate_known(m) for m in field.errors] for field in form if field.errors}
    page = render_template("auth/account.html", errors=errors, tokens=auth_service.list_tokens(user=g.user))
    return page, (422 if errors else 200)


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    name = (request.form.get("name") or "").strip()[:80]
    issued = auth_service.issue_token(user=g.user, name=name)
    response = current_app.make_response(
        render_template("auth/token_created.html", token=issued.token, record=issued.record)
    )
    # the token is on this page only: no browser or proxy may keep a copy
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    auth_service.revoke_token(token_id)
    flash(_("Token revoked."), "info")
    return redirect(url_for("auth.account"))


# --- accounts (admin) ------------------------------------------------------------------------
# Account pages live with auth, not org: auth calls org, never the other way round.
_USER_FORM_FIELDS = {"canteen_id": "canteen_code"}  # the form names a canteen by its code


@bp.route("/users")
@login_required
def users():
    filters = {
        "role": request.args.get("role") if request.args.get("role") in scoping.ROLES else None,
        "active": {"1": True, "0": False}.get(request.args.get("active", "")),
        "q": request.args.get("q", "").strip()[:60] or None,
    }
    page = _page()
    found = auth_service.list_users(**filters, page=page, page_size=USERS_PAGE_SIZE)
    return render_template(
        "auth/users.html",
        users=found,
        filters=filters,
        roles=scoping.ROLES,
        now=utcnow(),
        mask_phone=mask_phone,
        page=page,
        page_size=USERS_PAGE_SIZE,
    )


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
def new_user():
    scoping.require_role(scoping.ADMIN)
    values: dict[str, Any] = {"role": scoping.CANTEEN_STAFF}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _submitted_user_values()
        form = FormInput(request.form)
        role = form.field("role")
        data: dict[str, Any] = {
            "username": form.field("username"),
            "role": role,
            "password": request.form.get("password", ""),
            **_optional_text(form, "display_name", "phone", "language"),
            **_scope_input(form, role),
        }
        user, errors = submit_form(
            auth_schemas.UserCreateSchema(),
            data,
            lambda loaded: auth_service.create_user(**loaded),
            form_input=form,
            field_names=_USER_FORM_FIELDS,
        )
        if user is not None:
            flash(_("Account %(username)s created.", username=user.username), "success")
            return redirect(url_for("auth.users"))
    return _user_form(None, values, errors)


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@login_required
def edit_user(user_id: int):
    account_user = auth_service.get_user(user_id)
    values, errors = _user_values(account_user), {}
    if request.method == "POST":
        values = _submitted_user_values()
        form = FormInput(request.form)
        data = _user_changes(form, account_user)
        updated, errors = submit_form(
            auth_schemas.UserUpdateSchema(),
            data,
            lambda loaded: auth_service.update_user(user_id, **loaded, fields_given=frozenset(loaded)),
            form_input=form,
            field_names=_USER_FORM_FIELDS,
        )
        if updated is not None:
            flash(_("Account %(username)s saved.", username=updated.username), "success")
            return redirect(url_for("auth.users"))
    return _user_form(account_user, values, errors)


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
@login_required
def unlock_user(user_id: int):
    account_user = auth_service.unlock_user(user_id)
    flash(_("Login lock lifted for %(username)s.", username=account_user.username), "success")
    return redirect(url_for("auth.edit_user", user_id=user_id))


def _user_changes(form: FormInput, account_user: User) -> dict[str, Any]:
    """Only what changed: the service ends a user's sessions when their role or scope changes."""
    data: dict[str, Any] = {"display_name": form.field("display_name"), "active": form.flag("active")}
    role = form.field("role")
    scope = _scope_input(form, role)
    new_scope = (role, scope.get("district_id"), scope.get("canteen_id"))
    if new_scope != (account_user.role, account_user.district_id, account_user.canteen_id):
        data.update(role=role, district_id=scope.get("district_id"), canteen_id=scope.get("canteen_id"))
    if form.field("phone"):
        data["phone"] = form.field("phone")
    elif form.flag("remove_phone"):
        data["phone"] = None
    if request.form.get("password"):
        data["password"] = request.form["password"]
    data.update(_optional_text(form, "language"))
    return data


def _scope_input(form: FormInput, role: str) -> dict[str, Any]:
    """The district (officers) or the canteen, by code (staff), that the role works for."""
    if role == scoping.DISTRICT_OFFICER:
        return {"district_id": form.integer("district_id")}
    if role in STAFF_ROLES:
        code = form.field("canteen_code")
        if not code:
            return {"canteen_id": None}  # the service says what is missing
        canteen = org_service.find_canteen_by_code(code)
        if canteen is None:
            form.add_error("canteen_code", _("No canteen or kitchen has the code %(code)s.", code=code))
            return {}
        return {"canteen_id": canteen.id}
    return {}


def _optional_text(form: FormInput, *names: str) -> dict[str, str]:
    return {name: form.field(name) for name in names if form.field(name)}


def _user_values(account_user: User) -> dict[str, Any]:
    return {
        "username": account_user.username,
        "display_name": account_user.display_name,
        "role": account_user.role,
        "district_id": str(account_user.district_id or ""),
        "canteen_code": account_user.canteen.code if account_user.canteen is not None else "",
        "language": account_user.language or "",
        "active": account_user.active,
    }


def _submitted_user_values() -> dict[str, Any]:
    values = request.form.to_dict()
    values.pop("password", None)  # a password is never written back into a page
    values.pop("csrf_token", None)
    return values


def _user_form(account_user: User | None, values: dict[str, Any], errors: dict[str, list[str]]):
    page = render_template(
        "auth/user_form.html",
        account_user=account_user,
        values=values,
        errors=errors,
        roles=scoping.ROLES,
        districts=org_service.list_districts(page_size=CHOICES_LIMIT).items,
        canteens=org_service.list_canteens(page_size=CHOICES_LIMIT).items,
        masked_phone=mask_phone(account_user.phone) if account_user is not None else None,
        now=utcnow(),
    )
    # with errors: 422, so the request's transaction is rolled back and nothing is written
    return page, (422 if errors else 200)


def _page() -> int:
    page = request.args.get("page", "1")
    return int(page) if page.isascii() and page.isdigit() and int(page) > 0 else 1
