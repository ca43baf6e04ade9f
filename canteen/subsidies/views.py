"""Pages for subsidy policies (admin; district officers for their district): the list with the
policy in force today, a policy with its rules, the creation form and the form to end a policy.

Amounts are typed and shown in yuan; the API's input schemas and the services work in fen.
Views read the form, validate it with the API's input schema, call one service function and
redirect; the services decide who may do what and which policies each caller sees.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from canteen.core import clock, scoping
from canteen.core.errors import CanteenError, Forbidden
from canteen.core.money import format_yuan, parse_yuan
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.pages import FORM, FORM_ERROR_STATUSES, FormInput, errors_of, translate_known
from canteen.subsidies import schemas
from canteen.subsidies import service as subsidy_service
from canteen.subsidies.models import PER_MEAL, RULE_CATEGORIES, RULE_SLOTS, UNITS, SubsidyPolicy

bp = Blueprint("subsidies", __name__, template_folder="templates", url_prefix="/subsidies")

PAGE_SIZE = 50
CHOICES_LIMIT = 1000
BLANK_RULE_ROWS = 8  # rows offered by the creation form; unused rows stay empty
MAX_RULE_ROWS = 50
# plain yuan as typed at a desk: 3, 3.5, 3.50 (a ¥ in front or 元 behind is tolerated)
_YUAN = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,2})?$")
# API field → form field, where the form types yuan instead of fen
_RULE_FORM_FIELDS = {"amount_fen": "amount", "min_price_fen": "min_price"}
_POLICY_FORM_FIELDS = {"operator_allowance_fen": "operator_allowance"}


@bp.before_request
def _managers_only():
    # policies are managed by officers and admin; staff read the one in force at the counter,
    # not here. login_required on each view sends the anonymous to the login page
    if current_user.is_authenticated and g.user.role not in (scoping.ADMIN, scoping.DISTRICT_OFFICER):
        raise Forbidden()


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"yuan": format_yuan, "today": clock.today(), "policy_status": policy_status}


def _page() -> int:
    page = request.args.get("page", "1")
    return int(page) if page.isascii() and page.isdigit() and int(page) > 0 else 1


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _districts():
    return org_service.list_districts(page_size=CHOICES_LIMIT).items


# --- the list ----------------------------------------------------------------------------------
@bp.route("")
@login_required
def index():
    districts = _districts()
    district_id = _int_arg("district_id") if len(districts) > 1 else None
    found = subsidy_service.list_policies(district_id=district_id, page=_page(), page_size=PAGE_SIZE)
    # one district in view (an officer's, or the admin's choice): its policy in force today on top
    single = district_id or (districts[0].id if len(districts) == 1 else None)
    in_force = subsidy_service.policy_in_force(single, clock.today()) if single is not None else None
    return render_template(
        "subsidies/index.html",
        policies=found,
        districts=districts,
        district_names={d.id: d.name for d in districts},
        district_id=district_id,
        single_district=single,
        in_force=in_force,
        page=_page(),
        page_size=PAGE_SIZE,
    )


# --- one policy --------------------------------------------------------------------------------
@bp.route("/<int:policy_id>")
@login_required
def show(policy_id: int):
    return _show(subsidy_service.get_policy(policy_id))


def _show(policy: SubsidyPolicy, *, errors: dict[str, list[str]] | None = None, values: dict | None = None):
    today = clock.today()
    default_end = policy.valid_to or max(today, policy.valid_from)
    return render_template(
        "subsidies/show.html",
        policy=policy,
        district=org_service.get_district(policy.district_id),
        errors=errors or {},
        values=values or {"valid_to": default_end.isoformat()},
    ), (422 if errors else 200)


@bp.route("/<int:policy_id>/end", methods=["POST"])
@login_required
def end(policy_id: int):
    scoping.require_role(scoping.DISTRICT_OFFICER)
    policy = subsidy_service.get_policy(policy_id)
    values = {"valid_to": FormInput(request.form).field("valid_to")}
    try:
        loaded = schemas.PolicyEndSchema().load(values)
    except ma.ValidationError as error:
        return _show(policy, errors=_schema_errors(error.messages, []), values=values)
    try:
        ended = subsidy_service.end_policy(policy_id, **loaded)
    except CanteenError as error:
        if error.status not in FORM_ERROR_STATUSES:
            raise
        db.session.rollback()
        return _show(subsidy_service.get_policy(policy_id), errors=errors_of(error), values=values)
    flash(_("%(name)s ends on %(date)s.", name=ended.name, date=ended.valid_to.isoformat()), "success")
    return redirect(url_for("subsidies.show", policy_id=policy_id))


# --- creation ----------------------------------------------------------------------------------
@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    scoping.require_role(scoping.DISTRICT_OFFICER)  # a refused role sees 403, never a form
    own_district = scoping.current_scope().district_id
    values: dict[str, Any] = {"valid_from": clock.today().isoformat(), "operator_allowance": "0"}
    if own_district is not None:
        values["district_id"] = str(own_district)
    rows = [{"slot": "lunch", "unit": PER_MEAL} for _row in range(BLANK_RULE_ROWS)]
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {key: form.field(key) for key in _POLICY_VALUES}
        data, positions, rows = _policy_input(form, own_district)
        policy, errors = _create(data, positions, form)
        if policy is not None:
            flash(_("Policy %(name)s created.", name=policy.name), "success")
            return redirect(url_for("subsidies.show", policy_id=policy.id))
        rows += [{"slot": "lunch", "unit": PER_MEAL} for _row in range(max(0, BLANK_RULE_ROWS - len(rows)))]
    return render_template(
        "subsidies/form.html",
        values=values,
        rows=rows,
        errors=errors,
        districts=_districts(),
        own_district=own_district,
        categories=RULE_CATEGORIES,
        slots=RULE_SLOTS,
        units=UNITS,
    ), (422 if errors else 200)


def _policy_input(form: FormInput, own_district: int | None) -> tuple[dict[str, Any], list[int], list[dict]]:
    """The form as the API's policy body (amounts converted from yuan to fen), the form row of
    each rule sent, and every row as typed (to show again next to the errors)."""
    data: dict[str, Any] = {
        "name": form.field("name"),
        "valid_from": form.field("valid_from"),
        "valid_to": form.field("valid_to") or None,
        "operator_allowance_fen": _yuan(form, "operator_allowance") or 0,
    }
    district_id = own_district if own_district is not None else form.integer("district_id")
    if district_id is not None:  # missing: the schema names the field as required
        data["district_id"] = district_id
    rules, positions, rows = [], [], []
    for row in range(MAX_RULE_ROWS):
        prefix = f"rules-{row}-"
        if prefix + "category" not in form.form:
            break
        typed = {name: form.field(prefix + name) for name in _ROW_FIELDS}
        rows.append(typed)
        if not any(typed[name] for name in ("category", "amount", "min_price", "max_per_day", "max_per_month")):
            continue  # an unused row
        rule: dict[str, Any] = {"category": typed["category"], "slot": typed["slot"], "unit": typed["unit"]}
        amount = _yuan(form, prefix + "amount")
        if amount is not None:  # missing: the schema names the field as required
            rule["amount_fen"] = amount
        rule["min_price_fen"] = _yuan(form, prefix + "min_price")
        rule["max_per_day"] = form.integer(prefix + "max_per_day")
        rule["max_per_month"] = form.integer(prefix + "max_per_month")
        rules.append(rule)
        positions.append(row)
    data["rules"] = rules
    return data, positions, rows


_POLICY_VALUES = ("district_id", "name", "valid_from", "valid_to", "operator_allowance")
_ROW_FIELDS = ("category", "slot", "amount", "unit", "min_price", "max_per_day", "max_per_month")


def _yuan(form: FormInput, name: str) -> int | None:
    """An amount typed in yuan ("3", "3.50") as fen; a bad amount is an error next to the field."""
    raw = form.field(name).lstrip("¥￥").removesuffix("元").strip()
    if not raw:
        return None
    if not _YUAN.match(raw):
        form.add_error(name, _("Enter an amount in yuan, e.g. 3 or 3.50."))
        return None
    return parse_yuan(raw)


def _create(data: dict[str, Any], positions: list[int], form: FormInput):
    """Validate with the API's schema, then create; errors keyed by the form's fields."""
    try:
        loaded = schemas.PolicyCreateSchema().load(data)
    except ma.ValidationError as error:
        # what could not be read at all (a bad amount) replaces the schema's message for it
        return None, {**_schema_errors(error.messages, positions), **form.errors}
    if form.errors:
        return None, dict(form.errors)
    try:
        return subsidy_service.create_policy(**loaded), {}
    except CanteenError as error:
        if error.status not in FORM_ERROR_STATUSES:
            raise
        # re-rendering the form queries the database; autoflush must not meet half-made rows
        db.session.rollback()
        return None, {_POLICY_FORM_FIELDS.get(k, k): v for k, v in errors_of(error).items()}


def _schema_errors(messages: Any, positions: list[int]) -> dict[str, list[str]]:
    """Marshmallow's nested messages as form fields: rule errors go to their row's cells."""
    errors: dict[str, list[str]] = {}
    if not isinstance(messages, dict):
        return {FORM: _texts(messages)}
    for name, value in messages.items():
        if name == "rules" and isinstance(value, dict):
            for index, rule_errors in value.items():
                row = positions[index] if isinstance(index, int) and index < len(positions) else index
                for rule_field, texts in rule_errors.items() if isinstance(rule_errors, dict) else []:
                    cell = _RULE_FORM_FIELDS.get(rule_field, rule_field)
                    key = f"rules-{row}-{cell}" if rule_field != "_schema" else "rules"
                    errors.setdefault(key, []).extend(_texts(texts))
            continue
        key = FORM if name == "_schema" else _POLICY_FORM_FIELDS.get(name, name)
        errors.setdefault(key, []).extend(_texts(value))
    return errors


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [translate_known(value)]
    if isinstance(value, dict):
        return [text for inner in value.values() for text in _texts(inner)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return [str(value)]


def policy_status(policy: SubsidyPolicy, today: date) -> str:
    """in_force, upcoming or ended, as the list and the policy page show it."""
    if policy.covers(today):
        return "in_force"
    return "upcoming" if policy.valid_from > today else "ended"
