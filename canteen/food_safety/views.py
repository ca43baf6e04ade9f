"""Pages for food safety: the site's daily screen (what is still due today, with one-tap entry forms),
deviations and their workflow, site staff and health certificates, cold-storage devices, the samples
log, and the officers' compliance overview.

Forms are plain server-rendered forms (they work without JavaScript): a view reads the form,
validates it with the API's input schema, calls one service function and redirects back (to the
form's place on the page). The services decide who may do what and which rows each caller sees;
officers see the same pages without the entry forms.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.exceptions import BadRequest

from canteen.core import clock, scoping
from canteen.core.clock import TIME_ZONE
from canteen.core.privacy import mask_phone
from canteen.food_safety import rules, schemas
from canteen.food_safety import service as food_safety_service
from canteen.food_safety.models import Deviation
from canteen.org.models import SLOTS, Canteen
from canteen.pages import N_, FormInput, slot_label, submit_form, translate_known

bp = Blueprint("food_safety", __name__, template_folder="templates", url_prefix="/food-safety")

PAGE_SIZE = 50
SAMPLES_DAYS = 7  # the samples log shows a week unless asked otherwise

JOB_LABELS = {
    "cook": N_("Cook"),
    "kitchen_helper": N_("Kitchen helper"),
    "server": N_("Server"),
    "driver": N_("Driver"),
    "cleaner": N_("Cleaner"),
    "manager": N_("Manager"),
    "other": N_("Other job"),
}
SYMPTOM_LABELS = {
    "fever": N_("Fever"),
    "nausea": N_("Nausea"),
    "vomiting": N_("Vomiting"),
    "diarrhoea": N_("Diarrhoea"),
    "abdominal_pain": N_("Abdominal pain"),
    "wound": N_("Wound"),
    "burn": N_("Burn"),
    "eczema": N_("Eczema"),
    "jaundice": N_("Jaundice"),
    "sore_throat": N_("Sore throat"),
    "cough": N_("Cough"),
    "other": N_("Other symptom"),
}
DEVICE_KIND_LABELS = {
    "refrigerator": N_("Refrigerator"),
    "freezer": N_("Freezer"),
    "sample_refrigerator": N_("Sample refrigerator"),
}
METHOD_LABELS = {
    "disinfection_cabinet": N_("Disinfection cabinet"),
    "steam": N_("Steam"),
    "boiling": N_("Boiling"),
    "chemical": N_("Chemical (chlorine solution)"),
    "other": N_("Other method"),
}
ITEM_LABELS = {key: item.label for key, item in rules.KNOWN_CHECKLIST_ITEMS.items()}
_ITEM_MSGIDS = (  # the known items' labels, for extraction
    N_("Tableware disinfection"),
    N_("Pest control"),
    N_("Raw and cooked food kept apart"),
    N_("Waste disposal"),
    N_("Food storage (labels, dates, off the floor)"),
    N_("Hand washing and disinfection facilities"),
)
KIND_LABELS = {
    "sample_missing": N_("Sample missing"),
    "sample_underweight": N_("Sample under 125 g"),
    "sample_unsealed": N_("Sample not sealed"),
    "checklist_missing": N_("Checklist not done"),
    "checklist_failed": N_("Checklist item failed"),
    "temperature_out_of_range": N_("Temperature out of range"),
    "readings_missing": N_("Temperature readings missing"),
    "delivery_temperature": N_("Delivery temperature"),
    "delivery_time": N_("Delivery time"),
    "inspection_finding": N_("Inspection finding"),
    "reported": N_("Reported by staff"),
}
STATUS_LABELS = {
    "open": N_("Open"),
    "acknowledged": N_("Acknowledged"),
    "action_recorded": N_("Action recorded"),
    "verified": N_("Verified"),
}
EVENT_LABELS = {
    "raised": N_("Raised"),
    "acknowledged": N_("Acknowledged"),
    "action_recorded": N_("Action recorded"),
    "action_corrected": N_("Action corrected"),
    "returned": N_("Sent back"),
    "verified": N_("Verified"),
}
CERTIFICATE_LABELS = {
    "missing": N_("No certificate"),
    "expired": N_("Expired"),
    "expiring": N_("Expiring soon"),
    "valid": N_("Valid"),
}

# Fixed English messages of the food-safety services and schemas, for the catalogue (the pages
# show them in the user's language through translate_known).
KNOWN_MESSAGES = (
    N_("In the future."),
    N_("Not at this site."),
    N_("Required."),
    N_("Not a valid string."),
    N_("Not a valid boolean."),
    N_("Not a valid integer."),
    N_("The site is not active."),
    N_("Before the day they started."),
    N_("Before the issue date."),
    N_("The site already has a device of this name."),
    N_("Before the device came into service."),
    N_("The device is not in service on that day."),
    N_("A temperature in °C with at most one decimal place."),
    N_("Between -50 and 50 °C."),
    N_("A list of dish names."),
    N_("A dish name is 1–100 characters."),
    N_("A slot declared not served has no dishes."),
    N_("Samples were retained for this meal: it was served."),
    N_("A weight in grams, 1 to 5000."),
    N_("Before the day it was served."),
    N_("Samples are kept in a sample refrigerator."),
    N_("This meal was declared not served."),
    N_("This dish already has a sample for this meal."),
    N_("Not working at the site on that day."),
    N_("The sample was already disposed of."),
    N_("Say what was wrong."),
    N_("Say how it was done."),
    N_("Say when it was done."),
    N_("Not on that day."),
    N_("Only tableware disinfection takes a method and time."),
    N_("A list of symptoms."),
    N_("Before that day."),
    N_("An absent person has no symptoms to record."),
    N_("An absent person is neither fit nor sent home."),
    N_("Say whether the person is fit to work or sent home."),
    N_("Describe the other symptom."),
    N_("Someone with symptoms does not handle food: send them home."),
    N_("No valid health certificate: cannot be marked fit."),
    N_("The health certificate has expired: cannot be marked fit."),
    N_("1 to 120 characters."),
    N_("Before date_from."),
    N_("Enter a temperature, e.g. 4 or -18.5."),
    N_("Enter the weight in grams."),
    N_("Enter a time like 07:30."),
    N_("Not a valid datetime."),
    N_("Length must be between 1 and 40."),
    N_("Length must be between 1 and 60."),
    N_("Length must be between 1 and 1000."),
    N_("Longer than maximum length 1000."),
    N_("Must be one of: cook, kitchen_helper, server, driver, cleaner, manager, other."),
    N_("Must be one of: refrigerator, freezer, sample_refrigerator."),
    N_("Must be one of: reported, inspection_finding, delivery_temperature, delivery_time."),
    N_("Must be one of: disinfection_cabinet, steam, boiling, chemical, other."),
)
# Service messages with a value in them: the pattern finds the value, the catalogue the words.
KNOWN_PATTERNS = (
    (re.compile(r"^At most (?P<count>[0-9]+) characters\.$"), N_("At most %(count)s characters.")),
    (re.compile(r"^At most (?P<count>[0-9]+) dishes per meal\.$"), N_("At most %(count)s dishes per meal.")),
    (
        re.compile(r"^A health certificate is valid one year: at most until (?P<date>[0-9-]+)\.$"),
        N_("A health certificate is valid one year: at most until %(date)s."),
    ),
    (
        re.compile(
            r"^Samples are kept at least (?P<hours>[0-9]+) hours: "
            r"this one may be disposed of from (?P<time>[0-9: -]+)\.$"
        ),
        N_("Samples are kept at least %(hours)s hours: this one may be disposed of from %(time)s."),
    ),
)
_WRONG_STATUS = re.compile(r"^Not possible while the deviation is (?P<status>[a-z_]+)\.$")
_WRONG_STATUS_MSGID = N_("Not possible while the deviation is “%(status)s”.")


def translate(message: Any) -> str:
    """A service or schema message in the user's language (the catalogue's, then the patterns above)."""
    text = str(message)
    translated = translate_known(text)
    if translated != text:
        return translated
    for pattern, msgid in KNOWN_PATTERNS:
        match = pattern.match(text)
        if match:
            return _(msgid, **match.groupdict())
    match = _WRONG_STATUS.match(text)
    if match:
        return _(_WRONG_STATUS_MSGID, status=_label(STATUS_LABELS, match["status"]))
    return text


def _label(labels: dict[str, str], value: Any) -> str:
    return _(labels[value]) if value in labels else str(value or "")


def item_label(key: str) -> str:
    """A checklist item's name: a known item's translated label, or a city's own item's label."""
    if key in ITEM_LABELS:
        return _(ITEM_LABELS[key])
    for item in rules.checklist_items():
        if item.key == key:
            chinese = str(get_locale() or "").startswith("zh")
            return item.label_zh if chinese and item.label_zh else item.label
    return key


def _shown(moment: datetime | None, pattern: str = "yyyy-MM-dd HH:mm") -> str:
    return format_datetime(moment, pattern) if moment is not None else ""


def _celsius(tenths: int | None) -> str:
    return "" if tenths is None else f"{rules.to_celsius(tenths):g}"


def limits_text(limits: tuple[int | None, int | None]) -> str:
    low, high = limits
    if low is None:
        return _("at most %(high)s °C", high=_celsius(high))
    if high is None:
        return _("at least %(low)s °C", low=_celsius(low))
    return _("%(low)s to %(high)s °C", low=_celsius(low), high=_celsius(high))


def describe(deviation: Deviation) -> str:
    """What a deviation found, in the user's language (a rule's details; a person's words as typed)."""
    details = deviation.details or {}
    try:
        return _describe(deviation.kind, details) or deviation.found
    except (KeyError, TypeError, ValueError):
        return deviation.found


def _deadline(details: dict[str, Any]) -> str:
    return _shown(datetime.fromisoformat(details["deadline"]), "HH:mm")


def _describe(kind: str, details: dict[str, Any]) -> str | None:
    if kind == rules.SAMPLE_MISSING:
        if details.get("nothing_declared"):
            return _(
                "%(slot)s: nothing was declared served and no sample retained by %(deadline)s.",
                slot=slot_label(details["slot"]),
                deadline=_deadline(details),
            )
        return _(
            "%(slot)s: no retained sample by %(deadline)s of %(dishes)s.",
            slot=slot_label(details["slot"]),
            deadline=_deadline(details),
            dishes="、".join(details["dishes"]),
        )
    if kind == rules.SAMPLE_UNDERWEIGHT:
        return _(
            "The sample of %(dish)s (%(slot)s) weighs %(weight)s g, under %(minimum)s g.",
            dish=details["dish"],
            slot=slot_label(details["slot"]),
            weight=details["weight_g"],
            minimum=details["minimum_g"],
        )
    if kind == rules.SAMPLE_UNSEALED:
        return _(
            "The sample of %(dish)s (%(slot)s) was not in a sealed container.",
            dish=details["dish"],
            slot=slot_label(details["slot"]),
        )
    if kind == rules.CHECKLIST_MISSING:
        parts = []
        if details.get("missing_items"):
            items = "、".join(item_label(key) for key in details["missing_items"])
            parts.append(_("not answered: %(items)s", items=items))
        if details.get("missing_staff"):
            names = "、".join(person["name"] for person in details["missing_staff"])
            parts.append(_("no morning check of %(names)s", names=names))
        if details.get("no_staff"):
            parts.append(_("no staff registered for the morning check"))
        return _(
            "The checklist was not complete by %(deadline)s: %(missing)s.",
            deadline=_deadline(details),
            missing="; ".join(parts),
        )
    if kind == rules.CHECKLIST_FAILED:
        items = "、".join(item_label(key) for key in details["failed_items"])
        return _("Still failed at %(deadline)s: %(items)s.", deadline=_deadline(details), items=items)
    if kind == rules.TEMPERATURE_OUT_OF_RANGE:
        low = None if details["min_c"] is None else rules.to_tenths(details["min_c"])
        high = None if details["max_c"] is None else rules.to_tenths(details["max_c"])
        text = _(
            "%(device)s read %(temperature)s °C, outside %(limits)s.",
            device=details["device_name"],
            temperature=f"{details['temperature_c']:g}",
            limits=limits_text((low, high)),
        )
        if details.get("samples_stored"):
            text += " " + _("Samples stored in it: %(count)s.", count=details["samples_stored"])
        return text
    if kind == rules.READINGS_MISSING:
        return _(
            "%(device)s: %(readings)s of %(required)s readings by %(deadline)s.",
            device=details["device_name"],
            readings=details["readings"],
            required=details["required"],
            deadline=_deadline(details),
        )
    return None


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "job_label": lambda job: _label(JOB_LABELS, job),
        "symptom_label": lambda symptom: _label(SYMPTOM_LABELS, symptom),
        "device_kind_label": lambda kind: _label(DEVICE_KIND_LABELS, kind),
        "method_label": lambda method: _label(METHOD_LABELS, method),
        "deviation_kind_label": lambda kind: _label(KIND_LABELS, kind),
        "deviation_status_label": lambda status: _label(STATUS_LABELS, status),
        "event_label": lambda event: _label(EVENT_LABELS, event),
        "certificate_label": lambda status: _label(CERTIFICATE_LABELS, status),
        "item_label": item_label,
        "describe": describe,
        "limits_text": limits_text,
        "celsius": _celsius,
        "shown": _shown,
        "mask_phone": mask_phone,
        "translate": translate,
        "can_record": _can_record(),
        "can_verify": _can_verify(),
        "min_sample_g": rules.SAMPLE_MIN_WEIGHT_G,
        "sample_hours": rules.SAMPLE_MIN_HOURS,
    }


def _can_record() -> bool:
    scope = scoping.current_scope()
    return scope.role in (scoping.ADMIN, *food_safety_service.RECORDERS)


def _can_verify() -> bool:
    return scoping.current_scope().role in (scoping.ADMIN, *food_safety_service.VERIFIERS)


def _is_staff() -> bool:
    return scoping.current_scope().role in food_safety_service.STAFF_ROLES


# --- request helpers -------------------------------------------------------------------------------
def _int_arg(name: str, source=None) -> int | None:
    raw = (source if source is not None else request.args).get(name, "")
    raw = raw.strip() if isinstance(raw, str) else ""
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else None


def _date_arg(name: str, source=None) -> date | None:
    raw = (source if source is not None else request.args).get(name, "")
    try:
        return date.fromisoformat(raw.strip()) if raw else None
    except ValueError:
        return None


def _page() -> int:
    return _int_arg("page") or 1


def _site_from(source) -> Canteen | None:
    """The site a page or form is about: staff their own; others the `site_id` given (404 when
    outside their scope), or None when none was given."""
    scope = scoping.current_scope()
    site_id = _int_arg("site_id", source)
    if _is_staff():
        return food_safety_service.get_site(scope.canteen_id if site_id is None else site_id)
    return food_safety_service.get_site(site_id) if site_id is not None else None


def _choose_site(target: str, title: str):
    sites = food_safety_service.list_sites()
    return render_template("food_safety/choose_site.html", sites=sites, target=target, title=title)


def _translated(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: [translate(message) for message in messages] for name, messages in errors.items()}


def _iso_time(day: date, raw: str) -> str | None:
    """A time of day typed in a form ("07:30") as the ISO moment the API takes, or None if unreadable."""
    try:
        at = time.fromisoformat(raw)
    except ValueError:
        return None
    return datetime.combine(day, at.replace(second=0, microsecond=0), tzinfo=TIME_ZONE).isoformat()


# --- the overview -------------------------------------------------------------------------------------
@bp.route("")
@login_required
def index():
    if _is_staff():
        return redirect(url_for("food_safety.today"))
    today = clock.today()
    return render_template(
        "food_safety/index.html",
        sites=food_safety_service.site_compliance(on=today),
        alerts=food_safety_service.list_certificate_alerts(on=today),
        waiting=food_safety_service.list_deviations(status=rules.ACTION_RECORDED, page_size=1).total,
        today=today,
    )


# --- the daily screen ------------------------------------------------------------------------------------
@bp.route("/today")
@login_required
def today():
    site = _site_from(request.args)
    if site is None:
        return _choose_site("food_safety.today", _("Food safety today"))
    day = _date_arg("day") or clock.today()
    if day > clock.today():
        day = clock.today()
    # deadlines passed by now become deviations as the screen opens (and the day before's, whose
    # readings deadline passes after everyone has gone home); idempotent
    food_safety_service.run_due_checks(site.id, day)
    return _today_page(site, day)


def _today_page(site: Canteen, day: date, *, form_errors: dict | None = None, values: dict | None = None):
    status = food_safety_service.daily_status(site.id, day)
    sample_fridges = [d.device for d in status.devices if d.device.kind == rules.SAMPLE_REFRIGERATOR]
    working = [check.staff for check in status.staff_checks]
    response = render_template(
        "food_safety/today.html",
        status=status,
        site=site,
        day=day,
        is_today=day == clock.today(),
        sample_fridges=sample_fridges,
        working=working,
        slots=SLOTS,
        symptoms=rules.SYMPTOMS,
        methods=rules.DISINFECTION_METHODS,
        form_errors=form_errors or {},
        values=values or {},
        now_time=clock.now().strftime("%H:%M"),
    )
    return response, (422 if form_errors else 200)


def _screen_form() -> tuple[Canteen, date, FormInput]:
    """The site, day and form reader of a post from the daily screen."""
    form = FormInput(request.form)
    site = _site_from(request.form)
    if site is None:
        site = food_safety_service.get_site(0)  # no site given: 404 like any unknown site
    day = _date_arg("day", request.form) or clock.today()
    return site, day, form


def _back(site: Canteen, day: date, anchor: str):
    args = {} if _is_staff() else {"site_id": site.id}
    if day != clock.today():
        args["day"] = day.isoformat()
    return redirect(url_for("food_safety.today", **args) + f"#{anchor}")


def _screen_submit(site: Canteen, day: date, form: FormInput, schema, data: dict[str, Any], action, **after: str):
    """Validate and run a daily-screen form; back to its place on the screen (`after["anchor"]`)
    with `after["success"]` flashed, or the screen again with the errors next to the form."""
    form_id = form.field("form") or "form"
    _result, errors = submit_form(schema, data, action, form_input=form)
    if errors:
        return _today_page(site, day, form_errors={form_id: _translated(errors)}, values={form_id: request.form})
    flash(after["success"], "success")
    return _back(site, day, after["anchor"])


@bp.route("/today/morning-checks", methods=["POST"])
@login_required
def morning_check():
    site, day, form = _screen_form()
    outcome = form.field("outcome")  # fit | sent_home | absent
    if outcome not in ("fit", "sent_home", "absent"):
        form.add_error("outcome", _("Choose fit to work, sent home or absent."))
    data = {
        "site_id": site.id,
        "day": day.isoformat(),
        "staff_id": form.integer("staff_id"),
        "present": outcome != "absent",
        "symptoms": [s for s in request.form.getlist("symptoms") if s],
        "fit": None if outcome == "absent" else outcome == "fit",
        "note": form.field("note"),
    }
    return _screen_submit(
        site,
        day,
        form,
        schemas.MorningCheckCreateSchema(),
        data,
        lambda loaded: food_safety_service.record_morning_check(**loaded),
        anchor="morning-check",
        success=_("Morning check recorded."),
    )


@bp.route("/today/checklist", methods=["POST"])
@login_required
def checklist_entry():
    site, day, form = _screen_form()
    data: dict[str, Any] = {
        "site_id": site.id,
        "day": day.isoformat(),
        "item": form.field("item"),
        "passed": form.field("passed") == "1",
        "note": form.field("note"),
    }
    if form.field("method"):
        data["method"] = form.field("method")
    if form.field("done_at"):
        moment = _iso_time(day, form.field("done_at"))
        if moment is None:
            form.add_error("done_at", _("Enter a time like 07:30."))
        else:
            data["done_at"] = moment
    return _screen_submit(
        site,
        day,
        form,
        schemas.ChecklistEntryCreateSchema(),
        data,
        lambda loaded: food_safety_service.record_checklist_entry(**loaded),
        anchor="checklist",
        success=_("Checklist item recorded."),
    )


@bp.route("/today/dishes", methods=["POST"])
@login_required
def served_dishes():
    site, day, form = _screen_form()
    slot = form.field("slot")
    action = form.field("action")  # add | not_served | served
    if action not in ("add", "not_served", "served"):
        raise BadRequest()  # the screen's buttons send one of these: not a person's mistake
    if action == "add":
        data = {"site_id": site.id, "day": day.isoformat(), "slot": slot, "dishes": [form.field("dish")]}

        def run(loaded):
            return food_safety_service.add_served_dish(
                site_id=loaded["site_id"], day=loaded["day"], slot=loaded["slot"], dish=loaded["dishes"][0]
            )

        success = _("Dish added.")
    else:
        current = [] if slot not in SLOTS else food_safety_service.served_dishes_of(site.id, day, slot)
        not_served = action == "not_served"
        data = {
            "site_id": site.id,
            "day": day.isoformat(),
            "slot": slot,
            "dishes": [] if not_served else current,
            "not_served": not_served,
        }

        def run(loaded):
            return food_safety_service.declare_served_dishes(**loaded)

        success = _("Recorded as not served.") if not_served else _("Recorded as served.")
    return _screen_submit(
        site,
        day,
        form,
        schemas.ServedDishesCreateSchema(),
        data,
        run,
        anchor=f"slot-{slot}" if slot in SLOTS else "samples",
        success=success,
    )


@bp.route("/today/samples", methods=["POST"])
@login_required
def sample():
    site, day, form = _screen_form()
    data: dict[str, Any] = {
        "site_id": site.id,
        "served_on": day.isoformat(),
        "slot": form.field("slot"),
        "dish": form.field("dish"),
        "container_sealed": form.flag("container_sealed"),
        "note": form.field("note"),
    }
    weight = form.integer("weight_g")
    if weight is not None:
        data["weight_g"] = weight
    elif not form.errors.get("weight_g"):
        form.add_error("weight_g", _("Enter the weight in grams."))
    device_id = form.integer("device_id")
    if device_id is not None:
        data["device_id"] = device_id
    if form.integer("taken_by_id") is not None:
        data["taken_by_id"] = form.integer("taken_by_id")
    slot = data["slot"] if data["slot"] in SLOTS else "samples"
    return _screen_submit(
        site,
        day,
        form,
        schemas.SampleCreateSchema(),
        data,
        lambda loaded: food_safety_service.record_sample(**loaded),
        anchor=f"slot-{slot}",
        success=_("Sample recorded."),
    )


_CELSIUS = re.compile(r"^[-−]?[0-9]{1,2}([.,][0-9])?$")


@bp.route("/today/readings", methods=["POST"])
@login_required
def reading():
    site, day, form = _screen_form()
    data: dict[str, Any] = {"device_id": form.integer("device_id"), "note": form.field("note")}
    raw = form.field("temperature_c").replace("℃", "").replace("°C", "").strip()
    if _CELSIUS.match(raw):
        data["temperature_c"] = raw.replace("−", "-").replace(",", ".")
    else:
        form.add_error("temperature_c", _("Enter a temperature, e.g. 4 or -18.5."))
    return _screen_submit(
        site,
        day,
        form,
        schemas.ReadingCreateSchema(),
        data,
        lambda loaded: food_safety_service.record_reading(**loaded),
        anchor="readings",
        success=_("Reading recorded."),
    )


@bp.route("/samples/<int:sample_id>/dispose", methods=["POST"])
@login_required
def dispose(sample_id: int):
    sample = food_safety_service.get_sample(sample_id)
    site = food_safety_service.get_site(sample.site_id)
    day = _date_arg("day", request.form) or clock.today()
    from_log = request.form.get("back") == "samples"
    _result, errors = submit_form(
        schemas.SampleDisposeSchema(), {}, lambda loaded: food_safety_service.dispose_sample(sample_id, **loaded)
    )
    if errors and not from_log:
        return _today_page(site, day, form_errors={"dispose": _translated(errors)})
    for messages in _translated(errors).values():
        for message in messages:
            flash(message, "error")
    if not errors:
        flash(_("Disposal recorded."), "success")
    if from_log:
        return redirect(url_for("food_safety.samples", site_id=site.id))
    return _back(site, day, "disposal")


# --- deviations -------------------------------------------------------------------------------------------
@bp.route("/deviations")
@login_required
def deviations():
    sites = food_safety_service.list_sites()
    status = request.args.get("status", "unverified")
    filters: dict[str, Any] = {}
    if status == "unverified":
        filters["unverified"] = True
    elif status in rules.DEVIATION_STATUSES:
        filters["status"] = status
    site_id = _int_arg("site_id")
    if site_id is not None:
        filters["site_id"] = site_id
    found = food_safety_service.list_deviations(**filters, page=_page(), page_size=PAGE_SIZE)
    return render_template(
        "food_safety/deviations.html",
        deviations=found,
        sites=sites,
        site_id=site_id,
        status=status,
        statuses=rules.DEVIATION_STATUSES,
        page=_page(),
        page_size=PAGE_SIZE,
    )


@bp.route("/deviations/<int:deviation_id>")
@login_required
def deviation(deviation_id: int):
    return _deviation_page(food_safety_service.get_deviation(deviation_id))


def _deviation_page(deviation: Deviation, *, form_errors: dict | None = None, values: dict | None = None):
    current = deviation.current_action
    defaults = {"cause": "", "action_taken": "", "affected_food": ""}
    if current is not None:
        defaults = {name: getattr(current, name) for name in defaults}
    return render_template(
        "food_safety/deviation.html",
        deviation=deviation,
        site=food_safety_service.get_site(deviation.site_id),
        current=current,
        form_errors=form_errors or {},
        values=values or {},
        defaults=defaults,
        is_staff=_is_staff(),
    ), (422 if form_errors else 200)


def _deviation_step(deviation_id: int, form_id: str, schema, data: dict[str, Any], action, success: str):
    _result, errors = submit_form(schema, data, action)
    if errors:
        deviation = food_safety_service.get_deviation(deviation_id)
        return _deviation_page(deviation, form_errors={form_id: _translated(errors)}, values={form_id: request.form})
    flash(success, "success")
    return redirect(url_for("food_safety.deviation", deviation_id=deviation_id))


@bp.route("/deviations/<int:deviation_id>/acknowledge", methods=["POST"])
@login_required
def acknowledge(deviation_id: int):
    return _deviation_step(
        deviation_id,
        "acknowledge",
        schemas.DeviationVerifySchema(),
        {},
        lambda loaded: food_safety_service.acknowledge_deviation(deviation_id),
        _("Acknowledged."),
    )


def _action_data(form: FormInput) -> dict[str, str]:
    return {name: form.field(name) for name in ("cause", "action_taken", "affected_food")}


@bp.route("/deviations/<int:deviation_id>/action", methods=["POST"])
@login_required
def record_action(deviation_id: int):
    return _deviation_step(
        deviation_id,
        "action",
        schemas.DeviationActionSchema(),
        _action_data(FormInput(request.form)),
        lambda loaded: food_safety_service.record_deviation_action(deviation_id, **loaded),
        _("Action recorded: an officer verifies it."),
    )


@bp.route("/deviations/<int:deviation_id>/correct", methods=["POST"])
@login_required
def correct_action(deviation_id: int):
    form = FormInput(request.form)
    return _deviation_step(
        deviation_id,
        "correct",
        schemas.DeviationCorrectionSchema(),
        {**_action_data(form), "reason": form.field("reason")},
        lambda loaded: food_safety_service.correct_deviation_action(deviation_id, **loaded),
        _("Correction recorded as a new revision."),
    )


@bp.route("/deviations/<int:deviation_id>/verify", methods=["POST"])
@login_required
def verify(deviation_id: int):
    return _deviation_step(
        deviation_id,
        "verify",
        schemas.DeviationVerifySchema(),
        {"note": FormInput(request.form).field("note")},
        lambda loaded: food_safety_service.verify_deviation(deviation_id, **loaded),
        _("Verified."),
    )


@bp.route("/deviations/<int:deviation_id>/return", methods=["POST"])
@login_required
def send_back(deviation_id: int):
    return _deviation_step(
        deviation_id,
        "return",
        schemas.DeviationReturnSchema(),
        {"reason": FormInput(request.form).field("reason")},
        lambda loaded: food_safety_service.return_deviation(deviation_id, **loaded),
        _("Sent back to the site."),
    )


@bp.route("/deviations/new", methods=["GET", "POST"])
@login_required
def report():
    scoping.require_role(*food_safety_service.REPORTERS)
    sites = food_safety_service.list_sites()
    values: dict[str, Any] = {"kind": rules.REPORTED, "occurred_at": clock.now().strftime("%Y-%m-%dT%H:%M")}
    if _is_staff():
        values["site_id"] = str(scoping.current_scope().canteen_id)
    elif request.args.get("site_id"):
        values["site_id"] = request.args["site_id"]
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {name: form.field(name) for name in ("site_id", "kind", "occurred_at", "found")}
        data: dict[str, Any] = {"kind": values["kind"], "found": values["found"]}
        site_id = scoping.current_scope().canteen_id if _is_staff() else form.integer("site_id")
        if site_id is not None:
            data["site_id"] = site_id
        if values["occurred_at"]:
            data["occurred_at"] = values["occurred_at"]
        created, errors = submit_form(
            schemas.DeviationCreateSchema(),
            data,
            lambda loaded: food_safety_service.report_deviation(**loaded),
            form_input=form,
        )
        if created is not None:
            flash(_("Deviation reported."), "success")
            return redirect(url_for("food_safety.deviation", deviation_id=created.id))
        errors = _translated(errors)
    return render_template(
        "food_safety/deviation_form.html",
        sites=sites,
        values=values,
        errors=errors,
        kinds=rules.REPORTABLE_KINDS,
        is_staff=_is_staff(),
    ), (422 if errors else 200)


# --- site staff and certificates ---------------------------------------------------------------------------
_STAFF_FIELDS = ("name", "job", "phone", "started_on")


@bp.route("/staff", methods=["GET", "POST"])
@login_required
def staff():
    site = _site_from(request.args if request.method == "GET" else request.form)
    if site is None:
        return _choose_site("food_safety.staff", _("Site staff"))
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {"job": "cook", "started_on": clock.today().isoformat()}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {name: form.field(name) for name in _STAFF_FIELDS}
        data = {"site_id": site.id, "name": values["name"], "job": values["job"], "phone": values["phone"] or None}
        if values["started_on"]:
            data["started_on"] = values["started_on"]
        created, errors = submit_form(
            schemas.StaffCreateSchema(), data, lambda loaded: food_safety_service.add_staff(**loaded), form_input=form
        )
        if created is not None:
            flash(_("%(name)s added. Record their health certificate next.", name=created.name), "success")
            return redirect(url_for("food_safety.staff_member", staff_id=created.id))
        errors = _translated(errors)
    people = food_safety_service.list_staff(
        site_id=site.id, include_left=request.args.get("include_left") == "1", page=_page(), page_size=PAGE_SIZE
    )
    return render_template(
        "food_safety/staff.html",
        site=site,
        people=people,
        today=clock.today(),
        status_of=food_safety_service.certificate_status,
        values=values,
        errors=errors,
        jobs=rules.JOBS,
        page=_page(),
        page_size=PAGE_SIZE,
    ), (422 if errors else 200)


@bp.route("/staff/<int:staff_id>", methods=["GET", "POST"])
@login_required
def staff_member(staff_id: int):
    person = food_safety_service.get_staff(staff_id)
    errors: dict[str, dict[str, list[str]]] = {}
    values: dict[str, dict[str, Any]] = {}
    if request.method == "POST":
        form = FormInput(request.form)
        which = form.field("form")
        if which == "certificate":
            values["certificate"] = {name: form.field(name) for name in ("number", "issued_on", "expires_on")}
            data = {k: v for k, v in values["certificate"].items() if v}
            _created, problems = submit_form(
                schemas.CertificateCreateSchema(),
                data,
                lambda loaded: food_safety_service.add_certificate(staff_id, **loaded),
                form_input=form,
            )
            success = _("Health certificate recorded.")
        else:
            which = "edit"
            values["edit"] = {name: form.field(name) for name in ("name", "job", "phone", "left_on")}
            data = {"name": values["edit"]["name"], "job": values["edit"]["job"]}
            if values["edit"]["phone"]:
                data["phone"] = values["edit"]["phone"]
            if form.flag("remove_phone"):
                data["phone"] = None
            data["left_on"] = values["edit"]["left_on"] or None
            _created, problems = submit_form(
                schemas.StaffUpdateSchema(),
                data,
                lambda loaded: food_safety_service.update_staff(staff_id, **loaded),
                form_input=form,
            )
            success = _("Saved.")
        if not problems:
            flash(success, "success")
            return redirect(url_for("food_safety.staff_member", staff_id=staff_id))
        errors[which] = _translated(problems)
        person = food_safety_service.get_staff(staff_id)
    return render_template(
        "food_safety/staff_member.html",
        person=person,
        site=food_safety_service.get_site(person.site_id),
        status=food_safety_service.certificate_status(person, clock.today()),
        errors=errors,
        values=values,
        jobs=rules.JOBS,
        today=clock.today(),
        default_expiry=rules.certificate_default_expiry(clock.today()),
    ), (422 if errors else 200)


@bp.route("/certificates")
@login_required
def certificates():
    site_id = _int_arg("site_id")
    if _is_staff():
        site_id = scoping.current_scope().canteen_id
    alerts = food_safety_service.list_certificate_alerts(site_id=site_id)
    return render_template(
        "food_safety/certificates.html",
        alerts=alerts,
        site=food_safety_service.get_site(site_id) if site_id is not None else None,
        within=rules.certificate_warning_days(),
    )


# --- devices -------------------------------------------------------------------------------------------------
@bp.route("/devices", methods=["GET", "POST"])
@login_required
def devices():
    site = _site_from(request.args if request.method == "GET" else request.form)
    if site is None:
        return _choose_site("food_safety.devices", _("Fridges and freezers"))
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {"kind": rules.REFRIGERATOR}
    if request.method == "POST":
        form = FormInput(request.form)
        values = {name: form.field(name) for name in ("name", "kind")}
        created, errors = submit_form(
            schemas.DeviceCreateSchema(),
            {"site_id": site.id, **values},
            lambda loaded: food_safety_service.add_device(**loaded),
            form_input=form,
        )
        if created is not None:
            flash(_("%(name)s added.", name=created.name), "success")
            return redirect(url_for("food_safety.devices", site_id=site.id))
        errors = _translated(errors)
    found = food_safety_service.list_devices(site_id=site.id, include_retired=True, page_size=500)
    return render_template(
        "food_safety/devices.html",
        site=site,
        devices=found.items,
        limits_of=rules.device_limits,
        kinds=rules.DEVICE_KINDS,
        values=values,
        errors=errors,
        today=clock.today(),
    ), (422 if errors else 200)


@bp.route("/devices/<int:device_id>/retire", methods=["POST"])
@login_required
def retire_device(device_id: int):
    device = food_safety_service.get_device(device_id)
    form = FormInput(request.form)
    data = {"retired_on": form.field("retired_on") or clock.today().isoformat()}
    _updated, errors = submit_form(
        schemas.DeviceUpdateSchema(), data, lambda loaded: food_safety_service.update_device(device_id, **loaded)
    )
    if errors:
        for messages in _translated(errors).values():
            for message in messages:
                flash(message, "error")
    else:
        flash(_("%(name)s is out of service.", name=device.name), "success")
    return redirect(url_for("food_safety.devices", site_id=device.site_id))


# --- the samples log --------------------------------------------------------------------------------------------
@bp.route("/samples")
@login_required
def samples():
    site = _site_from(request.args)
    if site is None:
        return _choose_site("food_safety.samples", _("Retained samples"))
    date_to = _date_arg("date_to") or clock.today()
    date_from = _date_arg("date_from") or date.fromordinal(date_to.toordinal() - SAMPLES_DAYS + 1)
    found = food_safety_service.list_samples(
        site_id=site.id, date_from=date_from, date_to=date_to, page=_page(), page_size=PAGE_SIZE
    )
    return render_template(
        "food_safety/samples.html",
        site=site,
        samples=found,
        date_from=date_from,
        date_to=date_to,
        now=clock.now(),
        page=_page(),
        page_size=PAGE_SIZE,
    )
