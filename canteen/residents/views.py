"""Pages of the registry: the officer's resident list and resident page, the registration and
correction forms, the counter search for canteen staff with the exact look-up by POST, and the
spreadsheets page (import template, bulk import, masked export, civil-affairs list).

Views read the form, validate it with the API's input schemas, call one service function and
redirect; the services decide who may do what and which residents each caller sees. A full ID
number never travels in a URL: look-ups are POST bodies, and the reveal answers a POST.
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required

from canteen.core import clock, scoping
from canteen.core.errors import CanteenError, Forbidden, NotFound
from canteen.core.privacy import mask_id_number, mask_personal, mask_phone
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.org.models import CanteenKind
from canteen.pages import (
    FORM_ERROR_STATUSES,
    N_,
    FormInput,
    category_label,
    resident_status_label,
    submit_form,
    translate_known,
)
from canteen.residents import id_numbers, schemas
from canteen.residents import imports as resident_imports
from canteen.residents import service as resident_service
from canteen.residents.api import _xlsx as xlsx_response
from canteen.residents.models import (
    AGE_CATEGORIES,
    ALLERGENS,
    CATEGORIES,
    CONSENT_METHODS,
    RESTRICTIONS,
    SEXES,
    STATUSES,
    Resident,
)

bp = Blueprint("residents", __name__, template_folder="templates", url_prefix="/residents")

PAGE_SIZE = 50
COUNTER_PAGE_SIZE = 12
CHOICES_LIMIT = 1000  # communities and canteens of a district fit easily in one select
READERS = (scoping.ADMIN, scoping.DISTRICT_OFFICER, scoping.CANTEEN_STAFF)
_PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")
# form field → service/schema field, where the form splits one API field in two
_FIELD_NAMES = {"consent": "consent_method", "diet": "diet_notes"}


@bp.before_request
def _readers_only():
    # kitchen staff see reservation counts and delivery diet notes, never the registry;
    # login_required on each view sends the anonymous to the login page
    if current_user.is_authenticated and g.user.role not in READERS:
        raise Forbidden()


@bp.context_processor
def _resident_helpers() -> dict[str, Any]:
    today = clock.today()
    return {
        "today": today,
        "mask_id_number": mask_id_number,
        "mask_phone": mask_phone,
        "mask_personal": mask_personal,
        "age_of": lambda resident: id_numbers.age_on(resident.birth_date, today),
        "categories_today": lambda resident: resident_service.categories_on(resident, today),
        "is_staff": _is_staff(),
        "my_district_id": scoping.current_scope().district_id,
    }


def _is_staff() -> bool:
    return scoping.current_scope().role == scoping.CANTEEN_STAFF


def _require_officer() -> None:
    # before anything is read or validated: a refused role sees 403, never a form with errors
    scoping.require_role(scoping.DISTRICT_OFFICER)  # admin always passes


# --- the officer's list ----------------------------------------------------------------------
@bp.route("")
@login_required
def index():
    if _is_staff():
        return redirect(url_for("residents.counter", q=request.args.get("q", "")[:50] or None))
    filters: dict[str, Any] = {
        "q": request.args.get("q", "").strip()[:50] or None,
        "status": _choice_arg("status", STATUSES),
        "category": _choice_arg("category", (*CATEGORIES, *AGE_CATEGORIES)),
        "community_id": _int_arg("community_id"),
        "without_consent": request.args.get("without_consent") == "1",
    }
    districts = org_service.list_districts(page_size=CHOICES_LIMIT).items
    if len(districts) > 1:
        filters["district_id"] = _int_arg("district_id")
    found = resident_service.search_residents(**filters, page=_page(), page_size=PAGE_SIZE)
    communities = org_service.list_communities(district_id=filters.get("district_id"), page_size=CHOICES_LIMIT).items
    return render_template(
        "residents/index.html",
        residents=found,
        filters=filters,
        districts=districts,
        communities=communities,
        community_names=_community_names(found.items, communities),
        district_names={district.id: district.name for district in districts},
        statuses=STATUSES,
        categories=(*CATEGORIES, *AGE_CATEGORIES),
        page=_page(),
        page_size=PAGE_SIZE,
    )


def _community_names(residents: list[Resident], known) -> dict[int, str]:
    names = {community.id: community.name for community in known}
    for community_id in {r.community_id for r in residents if r.community_id and r.community_id not in names}:
        names[community_id] = org_service.get_community(community_id).name
    return names


# --- the counter -----------------------------------------------------------------------------
@bp.route("/counter")
@login_required
def counter():
    q = request.args.get("q", "").strip()[:50]
    found = resident_service.search_residents(q=q, page=_page(), page_size=COUNTER_PAGE_SIZE) if q else None
    return render_template("residents/counter.html", q=q, found=found, page=_page(), page_size=COUNTER_PAGE_SIZE)


@bp.route("/lookup", methods=["POST"])
@login_required
def lookup():
    """Exact look-up by full ID number or card number, in the body: officers land on the resident's
    page; canteen staff, who find any active resident of the city this way, see the counter summary."""
    back = "residents.index" if request.form.get("from") == "list" and not _is_staff() else "residents.counter"
    raw = (request.form.get("number") or "").strip()[:40]
    if not raw:
        flash(_("Type a full ID number or a card number."), "warning")
        return redirect(url_for(back), code=303)
    resident = _look_up(raw)
    if resident is None:
        flash(_("No resident has this ID number or active card in your area of work."), "warning")
        return redirect(url_for(back), code=303)
    if _is_staff():
        # another district's resident has no page the staff member may open: the answer is the summary
        return render_template(
            "residents/counter.html", q="", found=None, looked_up=resident, page=1, page_size=COUNTER_PAGE_SIZE
        )
    return redirect(url_for("residents.show", resident_id=resident.id), code=303)


def _look_up(raw: str) -> Resident | None:
    compact = re.sub(r"\s+", "", raw)
    attempts: list[dict[str, str]] = []
    if resident_service.looks_like_id_number(compact):
        attempts.append({"id_number": compact})
    else:
        attempts.append({"card_no": raw})
        if _PASSPORT.match(compact.upper()):
            attempts.append({"id_number": compact})  # a passport number looks like a card number
    for attempt in attempts:
        try:
            return resident_service.lookup_resident(**attempt)
        except NotFound:
            continue
    return None


# --- the resident's page ---------------------------------------------------------------------
@bp.route("/<int:resident_id>")
@login_required
def show(resident_id: int):
    resident = resident_service.get_resident(resident_id)
    if _is_staff():
        return render_template("residents/summary.html", resident=resident)
    return _profile(resident)


@bp.route("/<int:resident_id>/reveal", methods=["POST"])
@login_required
def reveal(resident_id: int):
    _require_officer()
    resident = resident_service.reveal_identity(resident_id)
    response = make_response(_profile(resident, revealed=True))
    # the full number is on this answer only: no browser or proxy may keep a copy
    response.headers["Cache-Control"] = "no-store"
    return response


def _profile(
    resident: Resident,
    *,
    revealed: bool = False,
    errors: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
):
    today = clock.today()
    defaults = {
        "category": {"valid_from": today.isoformat()},
        "status": {"effective_on": today.isoformat()},
        "card": {"reason": _("Lost")},
        "end": {"valid_to": today.isoformat()},
    }
    page = render_template(
        "residents/show.html",
        resident=resident,
        revealed=revealed,
        district=org_service.get_district(resident.district_id),
        community=org_service.get_community(resident.community_id) if resident.community_id else None,
        home_canteen=org_service.get_canteen(resident.home_canteen_id) if resident.home_canteen_id else None,
        status_today=resident_service.status_entry_on(resident, today),
        errors=errors or {},
        values={**defaults, **(values or {})},
        user_label=_user_label,
        categories=CATEGORIES,
        statuses=STATUSES,
    )
    return page, status


def _user_label(user_id: int | None) -> str:
    # officers may read only their own account; other verifiers are named by their number
    if user_id is None:
        return "—"
    if g.user is not None and user_id == g.user.id:
        return g.user.display_name
    return _("User #%(id)s", id=user_id)


# --- categories, status, card ----------------------------------------------------------------
@bp.route("/<int:resident_id>/categories", methods=["POST"])
@login_required
def add_category(resident_id: int):
    _require_officer()
    resident = resident_service.get_resident(resident_id)
    form = FormInput(request.form)
    data = {
        "category": form.field("category"),
        "valid_from": form.field("valid_from"),
        "valid_to": form.field("valid_to") or None,
        "evidence": form.field("evidence"),
    }
    entry, errors = submit_form(
        schemas.CategoryCreateSchema(), data, lambda loaded: resident_service.add_category(resident_id, **loaded)
    )
    if entry is not None:
        flash(
            _("%(category)s recorded from %(date)s.", category=category_label(entry.category), date=entry.valid_from),
            "success",
        )
        return redirect(url_for("residents.show", resident_id=resident_id, _anchor="categories"))
    return _profile(resident, errors={"category": errors}, values={"category": data}, status=422)


@bp.route("/<int:resident_id>/categories/<int:category_id>/end", methods=["POST"])
@login_required
def end_category(resident_id: int, category_id: int):
    _require_officer()
    resident = resident_service.get_resident(resident_id)
    form = FormInput(request.form)
    data = {"valid_to": form.field("valid_to")}
    entry, errors = submit_form(
        schemas.CategoryEndSchema(),
        data,
        lambda loaded: resident_service.end_category(resident_id, category_id, **loaded),
    )
    if entry is not None:
        flash(
            _("%(category)s ends on %(date)s.", category=category_label(entry.category), date=entry.valid_to),
            "success",
        )
        return redirect(url_for("residents.show", resident_id=resident_id, _anchor="categories"))
    return _profile(
        resident, errors={"end": errors, "end_id": category_id}, values={"end": data, "end_id": category_id}, status=422
    )


@bp.route("/<int:resident_id>/status", methods=["POST"])
@login_required
def set_status(resident_id: int):
    _require_officer()
    resident = resident_service.get_resident(resident_id)
    form = FormInput(request.form)
    data = {"status": form.field("status"), "effective_on": form.field("effective_on"), "reason": form.field("reason")}
    change, errors = submit_form(
        schemas.StatusCreateSchema(), data, lambda loaded: resident_service.set_status(resident_id, **loaded)
    )
    if change is not None:
        flash(_("Status change recorded."), "success")
        return redirect(url_for("residents.show", resident_id=resident_id, _anchor="status"))
    return _profile(resident, errors={"status": errors}, values={"status": data}, status=422)


@bp.route("/<int:resident_id>/card", methods=["POST"])
@login_required
def replace_card(resident_id: int):
    _require_officer()
    resident = resident_service.get_resident(resident_id)
    form = FormInput(request.form)
    data = {"card_no": form.field("card_no"), "reason": form.field("reason") or "lost"}
    card, errors = submit_form(
        schemas.CardReplaceSchema(), data, lambda loaded: resident_service.replace_card(resident_id, **loaded)
    )
    if card is not None:
        flash(_("Card %(card)s issued; the previous card no longer finds anyone.", card=card.card_no), "success")
        return redirect(url_for("residents.show", resident_id=resident_id, _anchor="card"))
    return _profile(resident, errors={"card": errors}, values={"card": data}, status=422)


@bp.route("/<int:resident_id>/card/block", methods=["POST"])
@login_required
def block_card(resident_id: int):
    _require_officer()
    resident = resident_service.get_resident(resident_id)
    form = FormInput(request.form)
    data = {"reason": form.field("reason")}
    card, errors = submit_form(
        schemas.CardBlockSchema(), data, lambda loaded: resident_service.block_card(resident_id, **loaded)
    )
    if card is not None:
        flash(_("Card %(card)s blocked: it finds nobody from now on.", card=card.card_no), "success")
        return redirect(url_for("residents.show", resident_id=resident_id, _anchor="card"))
    return _profile(resident, errors={"block": errors}, values={"block": data}, status=422)


# --- registration and corrections ------------------------------------------------------------
@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    _require_officer()
    values: dict[str, Any] = {"id_doc_type": id_numbers.RESIDENT_ID_CARD}
    own_district = scoping.current_scope().district_id
    if own_district is not None:
        values["district_id"] = str(own_district)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _submitted_values()
        form = FormInput(request.form)
        data = _registration_input(form, own_district)
        resident, errors = submit_form(
            schemas.ResidentCreateSchema(),
            data,
            lambda loaded: resident_service.register_resident(**loaded),
            form_input=form,
            field_names=_FIELD_NAMES,
        )
        if resident is not None:
            flash(_("%(name)s is registered.", name=resident.name), "success")
            return redirect(url_for("residents.show", resident_id=resident.id))
    return _form_page(None, values, errors)


@bp.route("/<int:resident_id>/edit", methods=["GET", "POST"])
@login_required
def edit(resident_id: int):
    _require_officer()
    resident = resident_service.get_resident(resident_id)
    values, errors = _resident_values(resident), {}
    if request.method == "POST":
        values = _submitted_values()
        form = FormInput(request.form)
        data = _correction_input(form, resident)
        updated, errors = submit_form(
            schemas.ResidentUpdateSchema(),
            data,
            lambda loaded: resident_service.update_resident(resident_id, **loaded),
            form_input=form,
            field_names=_FIELD_NAMES,
        )
        if updated is not None:
            flash(_("%(name)s saved.", name=updated.name), "success")
            return redirect(url_for("residents.show", resident_id=resident_id))
    return _form_page(resident, values, errors)


def _registration_input(form: FormInput, own_district: int | None) -> dict[str, Any]:
    """The form as the API's registration body. An officer registers in their own district."""
    doc_type = form.field("id_doc_type") or id_numbers.RESIDENT_ID_CARD
    data: dict[str, Any] = {
        "name": form.field("name"),
        "id_doc_type": doc_type,
        "id_number": id_numbers.normalise(form.field("id_number")),
        **_common_input(form),
        "card_no": form.field("card_no") or None,
        "phone": form.field("phone") or None,
        "emergency_contact": form.field("emergency_contact") or None,
    }
    district_id = own_district if own_district is not None else form.integer("district_id")
    if district_id is not None:  # missing: the schema names the field as required
        data["district_id"] = district_id
    if doc_type == id_numbers.PASSPORT:
        # only a passport lacks them; for ID numbers they are derived, never typed twice
        birth = _date_input(form, "birth_date")
        if birth is not None:
            data["birth_date"] = birth
        if form.field("sex"):
            data["sex"] = form.field("sex")
    method = form.field("consent_method")
    if method:
        data["consent"] = {"method": method}
        given_on = _date_input(form, "consent_given_on")
        if given_on is not None:
            data["consent"]["given_on"] = given_on
    return data


def _correction_input(form: FormInput, resident: Resident) -> dict[str, Any]:
    """Only what the person may correct. An empty phone or emergency-contact input keeps the stored
    value (the page never holds it in full); the consent is sent only when it changed, so saving
    other fields does not make this officer its recorder."""
    data: dict[str, Any] = {"name": form.field("name"), **_common_input(form)}
    for key in ("phone", "emergency_contact"):
        if form.field(key):
            data[key] = form.field(key)
        elif form.flag(f"remove_{key}"):
            data[key] = None
    method = form.field("consent_method") or None
    given_on = _date_input(form, "consent_given_on")
    current_on = resident.consent_given_on.isoformat() if resident.consent_given_on else None
    if method is None:
        if resident.consent_method is not None:
            data["consent"] = None  # withdrawn, or recorded by mistake
    elif method != resident.consent_method or (given_on is not None and given_on != current_on):
        data["consent"] = {"method": method, **({"given_on": given_on} if given_on else {})}
    return data


def _common_input(form: FormInput) -> dict[str, Any]:
    return {
        "community_id": form.integer("community_id"),
        "address": form.field("address"),
        "home_canteen_id": form.integer("home_canteen_id"),
        "delivery_registered": form.flag("delivery_registered"),
        "diet": {
            "restrictions": [value for value in form.form.getlist("diet_restrictions") if value],
            "allergens": [value for value in form.form.getlist("allergens") if value],
            "notes": form.field("diet_notes"),
        },
    }


def _date_input(form: FormInput, name: str) -> str | None:
    raw = form.field(name)
    if not raw:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        form.add_error(name, _("%(value)s is not a date; write YYYY-MM-DD.", value=raw))
        return None


def _resident_values(resident: Resident) -> dict[str, Any]:
    return {
        "name": resident.name,
        "district_id": str(resident.district_id),
        "community_id": str(resident.community_id or ""),
        "address": resident.address,
        "home_canteen_id": str(resident.home_canteen_id or ""),
        "delivery_registered": resident.delivery_registered,
        "diet_restrictions": list(resident.diet_restrictions),
        "allergens": list(resident.allergens),
        "diet_notes": resident.diet_notes,
        "consent_method": resident.consent_method or "",
        "consent_given_on": resident.consent_given_on.isoformat() if resident.consent_given_on else "",
    }


def _submitted_values() -> dict[str, Any]:
    # what the person typed, shown again next to the errors
    values: dict[str, Any] = request.form.to_dict()
    values.pop("csrf_token", None)
    values["diet_restrictions"] = request.form.getlist("diet_restrictions")
    values["allergens"] = request.form.getlist("allergens")
    return values


def _form_page(resident: Resident | None, values: dict[str, Any], errors: dict[str, list[str]]):
    """The registration or correction form; with errors it answers 422, so the request's
    transaction is rolled back and nothing half-done is written."""
    district_id = resident.district_id if resident is not None else scoping.current_scope().district_id
    districts = (
        [org_service.get_district(district_id)]
        if district_id is not None
        else org_service.list_districts(page_size=CHOICES_LIMIT).items
    )
    communities = org_service.list_communities(district_id=district_id, page_size=CHOICES_LIMIT).items
    canteens = [
        canteen
        for canteen in org_service.list_canteens(district_id=district_id, page_size=CHOICES_LIMIT).items
        if canteen.kind != CanteenKind.CENTRAL_KITCHEN
        and (canteen.active or (resident is not None and canteen.id == resident.home_canteen_id))
    ]
    page = render_template(
        "residents/form.html",
        resident=resident,
        values=values,
        errors=errors,
        districts=districts,
        communities=communities,
        canteens=canteens,
        doc_types=id_numbers.DOC_TYPES,
        sexes=SEXES,
        restrictions=RESTRICTIONS,
        allergens=ALLERGENS,
        consent_methods=CONSENT_METHODS,
        min_age=resident_service.MIN_AGE,
    )
    return page, (422 if errors else 200)


# --- helpers ---------------------------------------------------------------------------------
def _page() -> int:
    page = request.args.get("page", "1")
    return int(page) if page.isascii() and page.isdigit() and 0 < int(page) < 100_000 else 1


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 18 else None


def _choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    return value if value in choices else None


# --- spreadsheets: the import template, the bulk import, the export, the civil-affairs list ------
# The pages of canteen.residents.imports, for officers (their district) and admin. The services
# decide who may do what; a refused role sees 403 before any upload is read.
FEED_EVENT_LABELS = {
    "death": N_("Death"),
    "moved_out": N_("Moved out"),
    "subsistence_granted": N_("Subsistence allowance (低保) granted"),
    "subsistence_revoked": N_("Subsistence allowance (低保) revoked"),
    "extreme_poverty_granted": N_("Extreme poverty (特困) support granted"),
    "extreme_poverty_revoked": N_("Extreme poverty (特困) support revoked"),
}
FEED_EVENT_EFFECTS = {
    "death": N_("Status “deceased” from the effective date: no meal may be recorded from that day."),
    "moved_out": N_("Status “moved out” from the effective date."),
    "subsistence_granted": N_("The category is held from the effective date."),
    "subsistence_revoked": N_("The period held on the effective date ends the day before."),
    "extreme_poverty_granted": N_("The category is held from the effective date."),
    "extreme_poverty_revoked": N_("The period held on the effective date ends the day before."),
}
FEED_COLUMN_HELP = {
    "id_number": N_("The resident's ID number or passport number, as text (not a number)."),
    "event": N_("One of the events below, by its Chinese name or its code."),
    "effective_on": N_(
        "The day the change took effect, possibly long ago: 2026-03-01, 2026/3/1, 2026年3月1日 or 20260301."
    ),
    "note": N_("Kept with the change, e.g. the number of the civil-affairs decision."),
}


def _english() -> bool:
    return str(get_locale() or "") == "en"


def _export_filters() -> dict[str, Any]:
    """The list page's filters, from the query string."""
    filters: dict[str, Any] = {
        "status": _choice_arg("status", STATUSES),
        "category": _choice_arg("category", (*CATEGORIES, *AGE_CATEGORIES)),
        "community_id": _int_arg("community_id"),
        "without_consent": request.args.get("without_consent") == "1",
    }
    if scoping.current_scope().unrestricted:
        filters["district_id"] = _int_arg("district_id")
    return filters


@bp.route("/files")
@login_required
def files():
    _require_officer()
    return _files_page()


@bp.route("/files/import-template.xlsx")
@login_required
def import_template():
    content = resident_imports.build_import_template()
    return xlsx_response(io.BytesIO(content), "居民导入模板.xlsx", "resident-import-template.xlsx")


@bp.route("/files/import", methods=["POST"])
@login_required
def import_file():
    """The same import as POST /api/v1/residents/import: every row or none."""
    _require_officer()
    form = FormInput(request.form)
    district_id = form.integer("district_id") if scoping.current_scope().unrestricted else None
    upload = request.files.get("file")
    values = {"district_id": form.field("district_id")}
    if form.errors or upload is None or not upload.filename:
        message = (
            _("Choose a workbook (.xlsx) to upload.") if not form.errors else _("Choose a district from the list.")
        )
        return _files_page(import_failure={"message": message}, values=values, status=422)
    try:
        sheet = resident_imports.read_resident_workbook(upload.stream)
        result = resident_imports.import_residents(sheet, default_district_id=district_id)
    except CanteenError as error:
        if error.status not in FORM_ERROR_STATUSES:
            raise
        # rows registered before the bad one were flushed: drop them before the page queries anything
        db.session.rollback()
        return _files_page(import_failure=_import_failure(error), values=values, status=422)
    flash(
        ngettext("%(num)d resident imported.", "%(num)d residents imported.", result.created),
        "success",
    )
    return redirect(url_for("residents.index"), code=303)


@bp.route("/files/export.xlsx")
@login_required
def export_file():
    """The masked registry, with the list page's filters (the same as GET /api/v1/residents/export.xlsx)."""
    output = resident_imports.export_residents(**_export_filters())
    today = clock.today()
    return xlsx_response(output, f"居民名册-{today:%Y%m%d}.xlsx", f"residents-{today:%Y%m%d}.xlsx")


@bp.route("/files/civil-affairs-feed", methods=["POST"])
@login_required
def civil_affairs_feed():
    """Apply a civil-affairs list and show what it did; rows that cannot be applied are listed."""
    _require_officer()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _files_page(feed_failure=_("Choose a file (.xlsx or .csv) to upload."), status=422)
    try:
        result = resident_imports.apply_civil_affairs_feed(upload.stream, source_name=upload.filename)
    except CanteenError as error:
        if error.status not in FORM_ERROR_STATUSES:
            raise
        db.session.rollback()
        return _files_page(feed_failure=_in_page_language(error), status=422)
    return _files_page(feed=_feed_display(result, upload.filename))


def _files_page(status: int = 200, values: dict[str, Any] | None = None, **results: Any):
    districts = org_service.list_districts(page_size=CHOICES_LIMIT).items
    communities = org_service.list_communities(page_size=CHOICES_LIMIT).items
    page = render_template(
        "residents/files.html",
        districts=districts,
        district_names={district.id: district.name for district in districts},
        communities=communities,
        filters=_export_filters() if request.method == "GET" else {},
        statuses=STATUSES,
        categories=(*CATEGORIES, *AGE_CATEGORIES),
        may_choose_district=scoping.current_scope().unrestricted,
        values=values or {},
        max_rows=resident_imports.MAX_ROWS,
        header_scan_rows=resident_imports.HEADER_SCAN_ROWS,
        max_upload_mb=f"{(current_app.config.get('MAX_CONTENT_LENGTH') or 0) / (1024 * 1024):.3g}",
        feed_columns=resident_imports.FEED_COLUMNS,
        feed_column_help=FEED_COLUMN_HELP,
        feed_events=[
            (code, names, FEED_EVENT_LABELS[code], FEED_EVENT_EFFECTS[code])
            for code, names in resident_imports.FEED_EVENTS.items()
        ],
        **{"import_failure": None, "feed": None, "feed_failure": None, **results},
    )
    return page, status


def _in_page_language(error: CanteenError) -> str:
    """A service error's own sentence: the spreadsheet services give one in Chinese beside the English."""
    if not _english() and error.details.get("message_zh"):
        return error.details["message_zh"]
    return translate_known(error.message)


def _import_failure(error: CanteenError) -> dict[str, Any]:
    english = _english()
    problems = [
        {
            "row": problem.get("row"),
            "column": problem.get("field") if english else problem.get("column") or problem.get("field"),
            "message": problem.get("message_en") if english else problem.get("message_zh"),
        }
        for problem in error.details.get("rows", ())
    ]
    return {
        "message": _in_page_language(error),
        "problems": problems,
        "truncated": bool(error.details.get("truncated")),
    }


def _event_label(event: str | None) -> str:
    if not event:
        return "—"
    return _(FEED_EVENT_LABELS[event]) if event in FEED_EVENT_LABELS else event


def _day(value: date | None) -> str:
    return value.isoformat() if value else "—"


def _applied_change(applied: dict[str, Any]) -> str:
    if applied.get("kind") == "status":
        return _(
            "Status: %(status)s from %(date)s",
            status=resident_status_label(applied["status"]),
            date=_day(applied["effective_on"]),
        )
    if applied.get("kind") == "category_granted":
        return _(
            "%(category)s held from %(date)s",
            category=category_label(applied["category"]),
            date=_day(applied["valid_from"]),
        )
    return _(
        "%(category)s ends on %(date)s.", category=category_label(applied["category"]), date=_day(applied["valid_to"])
    )


def _feed_display(result: resident_imports.FeedResult, source_name: str) -> dict[str, Any]:
    """What the feed did, in the page's language; ID numbers only masked."""
    english = _english()
    return {
        "source_name": source_name,
        "rows": result.rows,
        "matched": [
            {
                "row": item["row"],
                "resident_id": item["resident_id"],
                "name": item["name"],
                "event": _event_label(item["event"]),
                "effective_on": _day(item["effective_on"]),
                "change": _applied_change(item["applied"]),
                "meals": item.get("meals_after_effective_date") or [],
            }
            for item in result.matched
        ],
        "unmatched": [
            {
                "row": item["row"],
                "id_number_masked": item.get("id_number_masked") or "—",
                "event": _event_label(item.get("event")),
                "effective_on": _day(item.get("effective_on")),
            }
            for item in result.unmatched
        ],
        "conflicting": [
            {
                "row": item["row"],
                "id_number_masked": item.get("id_number_masked") or "—",
                "resident_id": item.get("resident_id"),
                "name": item.get("name"),
                "event": _event_label(item.get("event")),
                "effective_on": _day(item.get("effective_on")),
                "reason": item.get("message_en") if english else item.get("message_zh"),
            }
            for item in result.conflicting
        ],
    }
