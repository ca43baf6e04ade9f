"""Pages to manage districts, communities and canteens (admin; district officers for their district).

Views read the form, validate it with the API's input schemas, call one service function and
redirect; the services decide who may do what and which rows each caller sees.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from canteen.core import scoping
from canteen.core.errors import Forbidden
from canteen.org import schemas
from canteen.org import service as org_service
from canteen.org.models import SLOTS, Canteen, CanteenKind
from canteen.pages import FormInput, submit_form

bp = Blueprint("org", __name__, template_folder="templates", url_prefix="/org")

PAGE_SIZE = 50
# choices in a select: every district or kitchen a caller can see fits easily in one list
CHOICES_LIMIT = 1000
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*[-–—~～至到]\s*(\d{1,2}):(\d{2})$")
_DATE_SEPARATORS = re.compile(r"[\s,，、;；]+")


@bp.before_request
def _managers_only():
    # staff manage nothing here; login_required on each view sends the anonymous to the login page
    if current_user.is_authenticated and g.user.role not in (scoping.ADMIN, scoping.DISTRICT_OFFICER):
        raise Forbidden()


def _page() -> int:
    page = request.args.get("page", "1")
    return int(page) if page.isascii() and page.isdigit() and int(page) > 0 else 1


# --- districts -------------------------------------------------------------------------------
@bp.route("/districts")
@login_required
def districts():
    q = request.args.get("q", "").strip()[:60]
    found = org_service.list_districts(q=q or None, page=_page(), page_size=PAGE_SIZE)
    return render_template("org/districts.html", districts=found, q=q, page=_page(), page_size=PAGE_SIZE)


@bp.route("/districts/new", methods=["GET", "POST"])
@login_required
def new_district():
    scoping.require_role(scoping.ADMIN)
    values, errors = {}, {}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {"code": form.field("code"), "name": form.field("name")}
        district, errors = submit_form(
            schemas.DistrictCreateSchema(), values, lambda data: org_service.create_district(**data)
        )
        if district is not None:
            flash(_("District %(name)s created.", name=district.name), "success")
            return redirect(url_for("org.districts"))
    return _form_page("org/district_form.html", errors, values=values, district=None)


@bp.route("/districts/<int:district_id>/edit", methods=["GET", "POST"])
@login_required
def edit_district(district_id: int):
    scoping.require_role(scoping.ADMIN)
    district = org_service.get_district(district_id)
    values, errors = {"code": district.code, "name": district.name}, {}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {"code": district.code, "name": form.field("name")}
        updated, errors = submit_form(
            schemas.DistrictUpdateSchema(),
            {"name": values["name"]},
            lambda data: org_service.update_district(district_id, **data),
        )
        if updated is not None:
            flash(_("District renamed to %(name)s.", name=updated.name), "success")
            return redirect(url_for("org.districts"))
    return _form_page("org/district_form.html", errors, values=values, district=district)


# --- communities -----------------------------------------------------------------------------
@bp.route("/districts/<int:district_id>/communities", methods=["GET", "POST"])
@login_required
def communities(district_id: int):
    district = org_service.get_district(district_id)
    values, errors = {}, {}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {"name": form.field("name")}
        community, errors = submit_form(
            schemas.CommunityCreateSchema(),
            {"district_id": district.id, "name": values["name"]},
            lambda data: org_service.create_community(**data),
        )
        if community is not None:
            flash(_("Community %(name)s created.", name=community.name), "success")
            return redirect(url_for("org.communities", district_id=district.id))
    found = org_service.list_communities(district_id=district.id, page=_page(), page_size=PAGE_SIZE)
    return _form_page(
        "org/communities.html",
        errors,
        district=district,
        communities=found,
        values=values,
        page=_page(),
        page_size=PAGE_SIZE,
    )


@bp.route("/communities/<int:community_id>/edit", methods=["GET", "POST"])
@login_required
def edit_community(community_id: int):
    community = org_service.get_community(community_id)
    scoping.require_role(scoping.DISTRICT_OFFICER)
    values, errors = {"name": community.name}, {}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {"name": form.field("name")}
        updated, errors = submit_form(
            schemas.CommunityUpdateSchema(), values, lambda data: org_service.update_community(community_id, **data)
        )
        if updated is not None:
            flash(_("Community renamed to %(name)s.", name=updated.name), "success")
            return redirect(url_for("org.communities", district_id=updated.district_id))
    return _form_page("org/community_form.html", errors, community=community, values=values)


# --- canteens --------------------------------------------------------------------------------
@bp.route("/canteens")
@login_required
def canteens():
    filters = {
        "district_id": _int_arg("district_id"),
        "kind": request.args.get("kind") if request.args.get("kind") in {k.value for k in CanteenKind} else None,
        "q": request.args.get("q", "").strip()[:100] or None,
    }
    found = org_service.list_canteens(**filters, page=_page(), page_size=PAGE_SIZE)
    return render_template(
        "org/canteens.html",
        canteens=found,
        filters=filters,
        districts=_visible_districts(),
        kinds=list(CanteenKind),
        page=_page(),
        page_size=PAGE_SIZE,
    )


@bp.route("/canteens/new", methods=["GET", "POST"])
@login_required
def new_canteen():
    scoping.require_role(scoping.DISTRICT_OFFICER)
    values: dict[str, Any] = {"kind": CanteenKind.CANTEEN.value, "seats": "0"}
    districts = _visible_districts()
    if len(districts) == 1:
        values["district_id"] = str(districts[0].id)  # an officer has one district: nothing to choose
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _submitted_values()
        form = FormInput(request.form)
        canteen, errors = submit_form(
            schemas.CanteenCreateSchema(),
            _canteen_input(form, creating=True),
            lambda data: org_service.create_canteen(**data),
            form_input=form,
        )
        if canteen is not None:
            flash(_("%(name)s created.", name=canteen.name), "success")
            return redirect(url_for("org.canteens"))
    return _form_page("org/canteen_form.html", errors, canteen=None, values=values, **_canteen_choices(None))


@bp.route("/canteens/<int:canteen_id>/edit", methods=["GET", "POST"])
@login_required
def edit_canteen(canteen_id: int):
    canteen = org_service.get_canteen(canteen_id)
    scoping.require_role(scoping.DISTRICT_OFFICER)
    values, errors = _canteen_values(canteen), {}
    if request.method == "POST":
        values = _submitted_values()
        form = FormInput(request.form)
        updated, errors = submit_form(
            schemas.CanteenUpdateSchema(),
            _canteen_input(form, creating=False),
            lambda data: org_service.update_canteen(canteen_id, **data),
            form_input=form,
        )
        if updated is not None:
            flash(_("%(name)s saved.", name=updated.name), "success")
            return redirect(url_for("org.canteens", district_id=updated.district_id))
    return _form_page("org/canteen_form.html", errors, canteen=canteen, values=values, **_canteen_choices(canteen))


def _canteen_input(form: FormInput, *, creating: bool) -> dict[str, Any]:
    """The form as the API's canteen body: hours "HH:MM–HH:MM" per slot, weekday boxes, date list."""
    data: dict[str, Any] = {
        "name": form.field("name"),
        "kind": form.field("kind"),
        "community_id": form.integer("community_id"),
        "supplied_by_id": form.integer("supplied_by_id"),
        "address": form.field("address"),
        "halal": form.flag("halal"),
        "seats": form.integer("seats") or 0,
        "opening_hours": _opening_hours(form),
        "closed_weekdays": sorted(set(form.integers("closed_weekdays"))),
        "closed_dates": _closed_dates(form),
    }
    if creating:
        data["code"] = form.field("code")
        district_id = form.integer("district_id")
        if district_id is not None:  # missing: the schema names the field as required
            data["district_id"] = district_id
    else:
        data["active"] = form.flag("active")
    return data


def _opening_hours(form: FormInput) -> dict[str, list[str]]:
    hours = {}
    for slot in SLOTS:
        raw = form.field(f"opening_hours_{slot}")
        if not raw:
            continue  # no such meal at this canteen
        match = _HOURS.match(raw)
        if match is None:
            form.add_error(f"opening_hours_{slot}", _("Write the hours as HH:MM–HH:MM, e.g. 11:00–13:30."))
            continue
        open_h, open_m, close_h, close_m = match.groups()
        hours[slot] = [f"{int(open_h):02d}:{open_m}", f"{int(close_h):02d}:{close_m}"]
    return hours


def _closed_dates(form: FormInput) -> list[str]:
    dates = []
    for raw in _DATE_SEPARATORS.split(form.field("closed_dates")):
        if not raw:
            continue
        try:
            if len(raw) != 10:
                raise ValueError(raw)
            dates.append(date.fromisoformat(raw).isoformat())
        except ValueError:
            form.add_error("closed_dates", _("%(value)s is not a date; write YYYY-MM-DD.", value=raw))
    return sorted(set(dates))


def _canteen_values(canteen: Canteen) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": canteen.code,
        "name": canteen.name,
        "kind": canteen.kind.value,
        "district_id": str(canteen.district_id),
        "community_id": str(canteen.community_id or ""),
        "supplied_by_id": str(canteen.supplied_by_id or ""),
        "address": canteen.address,
        "halal": canteen.halal,
        "seats": str(canteen.seats),
        "closed_weekdays": [str(day) for day in canteen.closed_weekdays],
        "closed_dates": ", ".join(canteen.closed_dates),
        "active": canteen.active,
    }
    for slot in SLOTS:
        hours = canteen.opening_hours.get(slot)
        values[f"opening_hours_{slot}"] = f"{hours[0]}–{hours[1]}" if hours else ""
    return values


def _submitted_values() -> dict[str, Any]:
    # what the person typed, shown again next to the errors
    values: dict[str, Any] = request.form.to_dict()
    values["closed_weekdays"] = request.form.getlist("closed_weekdays")
    return values


def _canteen_choices(canteen: Canteen | None) -> dict[str, Any]:
    """Districts, communities and kitchens the form offers, all inside the caller's scope."""
    district_id = canteen.district_id if canteen is not None else None
    communities = org_service.list_communities(district_id=district_id, page_size=CHOICES_LIMIT).items
    # any kitchen of the city may supply the canteen, also one in another district
    kitchens = [kitchen for kitchen in org_service.list_kitchens() if canteen is None or kitchen.id != canteen.id]
    return {
        "districts": _visible_districts(),
        "communities": communities,
        "kitchens": kitchens,
        "kinds": list(CanteenKind),
        "slots": SLOTS,
    }


# --- helpers ---------------------------------------------------------------------------------
def _visible_districts():
    return org_service.list_districts(page_size=CHOICES_LIMIT).items


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _form_page(template: str, errors: dict[str, list[str]], **context: Any):
    """Render a form page; with errors it answers 422, so the request's transaction is rolled back
    and nothing half-done is written."""
    return render_template(template, errors=errors, **context), (422 if errors else 200)
