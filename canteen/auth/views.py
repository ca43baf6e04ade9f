"""Pages: log in, log out, the home page of each role, the caller's own account and tokens.
Also `identify_caller`, run before every request to set the user, scope and audit actor."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from canteen.auth import service as auth_service
from canteen.core import scoping
from canteen.core.audit_log import Actor, set_actor
from canteen.core.errors import CanteenError
from canteen.extensions import limiter, login_manager

bp = Blueprint("auth", __name__, template_folder="templates")


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
    return render_template(f"auth/home_{g.user.role}.html", user=g.user, scope=scoping.current_scope())


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
    return render_template("auth/account.html", form=form, tokens=auth_service.list_tokens(user=g.user))


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    name = (request.form.get("name") or "").strip()[:80]
    issued = auth_service.issue_token(user=g.user, name=name)
    return render_template("auth/token_created.html", token=issued.token, record=issued.record)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    auth_service.revoke_token(token_id)
    flash(_("Token revoked."), "info")
    return redirect(url_for("auth.account"))
