"""Pages for meals: the counter where canteen staff record meals, and the daily cash-up.

The counter page is a small script (static/counter.js) over JSON endpoints of this blueprint
under /meals/counter/. They call the very services the REST API calls and answer the same
shapes (a meal as MealSchema, a batch as {results: [...]}), but authenticate by the page's
session cookie and CSRF token (the API takes bearer tokens only). Every meal goes through a
queue kept in the browser and is sent as a batch, each with its own idempotency key, so a
counter that loses the network keeps working and a retried batch never records a meal twice.

Nothing these endpoints answer for the browser to keep carries an ID number or a phone.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date, datetime, time
from functools import wraps
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, g, jsonify, make_response, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError

from canteen.core import clock, scoping
from canteen.core.errors import CanteenError, NotFound, ValidationFailed
from canteen.core.money import format_yuan
from canteen.core.privacy import mask_id_number, mask_text
from canteen.core.schemas import BaseSchema, QueryId
from canteen.meals import schemas
from canteen.meals import service as meal_service
from canteen.meals.models import MODES, PAYMENT_METHODS, VERIFICATIONS, MealRecord
from canteen.org import service as org_service
from canteen.org.models import SLOTS, Canteen
from canteen.pages import (
    N_,
    allergen_label,
    category_label,
    restriction_label,
    slot_label,
    translate_known,
)
from canteen.residents import id_numbers
from canteen.residents import service as resident_service
from canteen.residents.models import Resident

bp = Blueprint("meals", __name__, template_folder="templates", url_prefix="/meals")

JSON_PREFIX = "/meals/counter/"  # the counter's JSON endpoints: errors answer JSON, never a page
SEARCH_RESULTS = 12
CHOICES_LIMIT = 1000
TODAY_PAGE_SIZE = 500
_PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")

MODE_LABELS = {"dine_in": N_("Dine in"), "pickup": N_("Pick-up"), "delivery": N_("Home delivery")}
PAYMENT_LABELS = {
    "cash": N_("Cash"),
    "wechat": N_("WeChat Pay"),
    "alipay": N_("Alipay"),
    "card": N_("Bank card"),
    "account": N_("Prepaid account"),
}
VERIFICATION_LABELS = {
    "card": N_("Meal card"),
    "id_card": N_("ID card"),
    "face": N_("Face recognition"),
    "qr": N_("QR code"),
    "staff_attested": N_("Known to staff (give a reason)"),
}
# what the counter says for each refusal code of the meal services, in the user's language
ERROR_MESSAGES = {
    "meal_already_recorded": N_("Already recorded: this resident's %(slot)s today was recorded at %(canteen)s."),
    "resident_inactive": N_("The resident is not active today (suspended, deceased or moved out): no meal."),
    "resident_not_found": N_("No resident found."),
    "canteen_closed": N_("The canteen is closed today."),
    "canteen_not_found": N_("This canteen is not yours to record at."),
    "month_frozen": N_("This month is settled: meals can no longer be recorded or voided."),
    "served_on_in_future": N_("The tablet's clock is ahead of the server's: check the date and time."),
    "idempotency_key_reused": N_("This meal's key was used for a different meal: record it again."),
    "idempotency_in_flight": N_("Still being recorded; it will be retried."),
    "idempotency_key_missing": N_("The meal could not be sent (no key): record it again."),
    "validation_error": N_("Some fields are invalid."),
    "forbidden": N_("Your role may not do this."),
    "meal_already_void": N_("The meal is already void."),
    "meal_not_found": N_("Not found."),
    "csrf_failed": N_("The page is out of date: reload it. Meals waiting to send are kept."),
    "unauthorized": N_("Your login has ended: log in again. Meals waiting to send are kept."),
}
WARNING_MESSAGES = {
    "outside_opening_hours": N_("Outside this meal's opening hours."),
    "not_registered_for_delivery": N_("Not registered for home delivery."),
    "collected_by_proxy": N_("Collected on the resident's behalf."),
    "cap_reached": N_("The subsidy rules this resident could use have reached their caps; the meal is at full price."),
    "no_subsidy_rule": N_("No subsidy rule applies to this resident, meal and price; the meal is at full price."),
    "price_differs_from_menu": N_("The price differs from the menu."),
}


def _label(labels: dict[str, str], value: str) -> str:
    return _(labels[value]) if value in labels else value


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "yuan": format_yuan,
        "mode_label": lambda mode: _label(MODE_LABELS, mode),
        "payment_label": lambda method: _label(PAYMENT_LABELS, method),
        "verification_label": lambda verification: _label(VERIFICATION_LABELS, verification),
    }


# --- the slot of the moment ----------------------------------------------------------------------
def current_slot(opening_hours: dict[str, Any], now: time) -> str:
    """The meal slot the counter is most likely serving at `now` (Asia/Shanghai wall time): the
    slot whose opening hours contain it, else the slot whose hours are nearest (a late lunch at
    13:45 is still lunch, an early one at 10:50 already is). Lunch when no hours are set."""
    minutes = now.hour * 60 + now.minute
    best: tuple[int, int, str] | None = None
    for order, slot in enumerate(SLOTS):
        hours = opening_hours.get(slot)
        if not hours:
            continue
        try:
            start, end = (_minutes(text) for text in hours)
        except ValueError:
            continue
        distance = max(start - minutes, 0, minutes - end)
        if best is None or (distance, order) < best[:2]:
            best = (distance, order, slot)
    return best[2] if best else "lunch"


def _minutes(text: str) -> int:
    parsed = time.fromisoformat(text)
    return parsed.hour * 60 + parsed.minute


# --- JSON endpoints: shared handling -------------------------------------------------------------
def error_message(body: dict[str, Any]) -> str:
    """The counter's sentence for a refusal {code, message, ...} in the user's language: by its
    code where the counter knows it (the services' own messages are English with values in
    them), else the message itself if the catalogue knows it."""
    code = body.get("code", "")
    if code == "meal_already_recorded":
        return _(ERROR_MESSAGES[code], slot=slot_label(body.get("slot", "")), canteen=body.get("canteen_name", ""))
    if code in ERROR_MESSAGES:
        return _(ERROR_MESSAGES[code])
    return translate_known(body.get("message", ""))


def _error_body(error: CanteenError) -> dict[str, Any]:
    """A service error as the API shapes it, its words in the page's language."""
    body = error.to_dict()
    body["message"] = error_message(body)
    body["errors"] = {field: [translate_known(m) for m in messages] for field, messages in error.errors.items()}
    return body


def json_endpoint(view):
    """A JSON endpoint of the counter page: the caller must be logged in (401 JSON, not the login
    page a script cannot follow), and a service refusal answers {code, message, errors} with its
    status — never the HTML error page, never a 500. The request's transaction is committed by
    the app when the answer is below 400, rolled back otherwise."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return jsonify(code="unauthorized", message=_label(ERROR_MESSAGES, "unauthorized"), errors={}), 401
        try:
            return view(*args, **kwargs)
        except CanteenError as error:
            return jsonify(_error_body(error)), error.status

    return wrapper


@bp.errorhandler(CSRFError)
def _csrf_failed(error: CSRFError):
    # a page left open after its session ended: the script keeps its queue and says to reload
    body = {"code": "csrf_failed", "message": _label(ERROR_MESSAGES, "csrf_failed"), "errors": {}}
    if request.path.startswith(JSON_PREFIX):
        return jsonify(body), 400
    return render_template("error.html", status=400, error=body), 400


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed("Send a JSON object.", errors={"_schema": ["Send a JSON object."]})
    return body


def _load(schema: ma.Schema, data: Any) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        raise ValidationFailed(errors={str(k): _texts(v) for k, v in messages.items()}) from error


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for inner in value.values() for text in _texts(inner)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return [str(value)]


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else None


# --- the counter page ----------------------------------------------------------------------------
def _counter_canteen(canteen_id: int | None) -> Canteen | None:
    """The canteen whose counter this is: staff their own; admin the one chosen (None: not yet).
    Kitchen staff and officers never get here (403): they record no meals."""
    scope = scoping.require_role(*meal_service.RECORDERS)
    if canteen_id is None:
        canteen_id = scope.canteen_id
    if canteen_id is None:
        return None
    canteen = org_service.get_canteen(canteen_id)  # 404 outside the caller's scope
    if canteen.is_kitchen:
        raise NotFound("Not found.", code="canteen_not_found")  # a central kitchen has no counter
    return canteen


def _chosen_canteen() -> Canteen:
    """The counter's canteen for a JSON endpoint (?canteen_id=, which admin must give)."""
    canteen = _counter_canteen(_int_arg("canteen_id"))
    if canteen is None:
        raise ValidationFailed(errors={"canteen_id": ["Missing data for required field."]})
    return canteen


@bp.route("/counter")
@login_required
def counter():
    canteen = _counter_canteen(_int_arg("canteen_id"))
    if canteen is None:
        canteens = [
            c for c in org_service.list_canteens(active=True, page_size=CHOICES_LIMIT).items if not c.is_kitchen
        ]
        return render_template("meals/choose_canteen.html", canteens=canteens, target="meals.counter")
    now = clock.now()
    slot = current_slot(canteen.opening_hours, now.time())
    response = make_response(
        render_template(
            "meals/counter.html",
            canteen=canteen,
            slot=slot,
            slots=SLOTS,
            modes=MODES,
            payment_methods=PAYMENT_METHODS,
            verifications=VERIFICATIONS,
            today=now.date(),
            closed_today=canteen.is_closed_on(now.date()),
            config=_counter_config(canteen),
        )
    )
    # the page holds no resident data (the script loads it), but it names the account: not shared
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _counter_config(canteen: Canteen) -> dict[str, Any]:
    """What the counter script needs: where to call, whose queue it is, and its words."""
    canteen_arg = {"canteen_id": canteen.id}
    return {
        "user_id": g.user.id,
        "canteen_id": canteen.id,
        "canteen_name": canteen.name,
        "time_zone": clock.TIME_ZONE.key,
        "batch_limit": meal_service.BATCH_LIMIT,
        "urls": {
            "search": url_for("meals.search", **canteen_arg),
            "preview": url_for("meals.preview"),
            "roster": url_for("meals.roster", **canteen_arg),
            "today": url_for("meals.today", **canteen_arg),
            "batch": url_for("meals.batch"),
            "void": url_for("meals.void", meal_id=0).replace("/0/", "/{id}/"),
            "worker": url_for("meals.service_worker"),
            "assets": _counter_assets(),
        },
        "opening_hours": canteen.opening_hours,
        "labels": {
            "slot": {slot: slot_label(slot) for slot in SLOTS},
            "mode": {mode: _label(MODE_LABELS, mode) for mode in MODES},
            "payment": {method: _label(PAYMENT_LABELS, method) for method in PAYMENT_METHODS},
            "errors": {code: _(text) for code, text in ERROR_MESSAGES.items()},
            "warnings": {code: _(text) for code, text in WARNING_MESSAGES.items()},
        },
        "text": _counter_text(),
    }


def _counter_text() -> dict[str, str]:
    # the script's own sentences; %(name)s placeholders are filled in by the script
    return {
        "online": _("Online"),
        "offline": _("Offline: meals are kept on this tablet and sent when the network returns."),
        "waiting_count": _("Meals waiting to send: %(count)s"),
        "server_error": _("The server could not take the meals now; they stay queued and are retried."),
        "searching": _("Searching…"),
        "searching_offline": _("Offline: searching the residents kept on this tablet."),
        "no_one_found": _("Nobody found. Check the spelling, or try the card number."),
        "tail_needs_network": _("Searching by the last digits of the ID number needs the network."),
        "resident_number": _("Resident #%(id)s"),
        "age": _("%(age)s years"),
        "id_number": _("ID number"),
        "card": _("Meal card"),
        "categories_today": _("Categories today"),
        "diet": _("Diet:"),
        "allergies": _("Allergies:"),
        "no_diet": _("No diet restrictions or allergies recorded."),
        "delivery_registered": _("Registered for home delivery"),
        "not_active": _("Not active: no meal may be recorded."),
        "subsidy": _("Subsidy"),
        "copay": _("Copay"),
        "price": _("Price"),
        "decided_when_sent": _("Offline: the subsidy is decided when the meal is sent."),
        "already_recorded": _("Already recorded for %(slot)s today at %(canteen)s."),
        "price_required": _("Enter the price in yuan, e.g. 15 or 12.50."),
        "attest_reason_required": _("Say why staff vouch for the resident."),
        "no_personal_numbers": _("Do not type ID or phone numbers here."),
        "pick_first": _("Find and pick a resident first."),
        "recorded_as": _("%(name)s: subsidy ¥%(subsidy)s, copay ¥%(copay)s"),
        "queued_as": _("%(name)s: waiting to send"),
        "refused_as": _("%(name)s: refused. %(reason)s"),
        "status_waiting": _("Waiting to send"),
        "status_sending": _("Sending…"),
        "status_recorded": _("Recorded"),
        "status_void": _("Voided"),
        "status_refused": _("Refused"),
        "void": _("Void"),
        "void_title": _("Void this meal"),
        "void_reason": _("Why is it void?"),
        "void_reason_required": _("Say why the meal is void."),
        "void_needs_network": _("Voiding needs the network: try again when online."),
        "voided": _("Voided: %(name)s"),
        "remove": _("Remove"),
        "remove_confirm": _("Remove this meal? It was not sent and will not be recorded."),
        "dismiss": _("Dismiss"),
        "refused_generic": _("Refused (%(code)s)."),
        "field_errors": _("Check: %(fields)s"),
        "none_today": _("No meals recorded today yet."),
        "other_account": _("Meals queued by another account on this tablet: %(count)s (sent when it logs in)."),
    }


def _counter_assets() -> list[str]:
    return [url_for("static", filename=name) for name in ("canteen.css", "canteen.js", "counter.js")]


@bp.route("/counter-sw.js")
def service_worker():
    """The counter's service worker: it keeps a copy of the counter page and its scripts so the
    page opens again when the tablet is offline (the queued meals live in localStorage). Served
    from /meals/ so its scope covers the counter; never caches the JSON endpoints."""
    response = make_response(render_template("meals/counter-sw.js", assets=_counter_assets()))
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "no-cache"
    return response


# --- the counter's JSON endpoints ------------------------------------------------------------------
def _summary(resident: Resident, today: date, *, masked_id: bool = True) -> dict[str, Any]:
    """What the counter shows of a resident: no full ID number, no phone, no address."""
    card = resident.active_card
    categories = resident_service.categories_on(resident, today)
    summary = {
        "id": resident.id,
        "name": resident.name,
        "card_no": card.card_no if card else None,
        "categories": [{"code": c, "label": category_label(c)} for c in categories],
        "restrictions": [restriction_label(r) for r in resident.diet_restrictions or ()],
        "allergens": [allergen_label(a) for a in resident.allergens or ()],
        # registry free text: a number typed into it is masked before it reaches a browser
        "diet_notes": mask_text(resident.diet_notes or ""),
        "delivery_registered": bool(resident.delivery_registered),
        "active": resident.status == "active",
    }
    if masked_id:
        summary["id_number_masked"] = mask_id_number(resident.id_number)
        summary["age"] = id_numbers.age_on(resident.birth_date, today)
    return summary


@bp.route("/counter/search", methods=["POST"])
@json_endpoint
def search():
    """Find residents for the counter: card number (any active resident of the city), full ID
    number (exact, city-wide), ID tail, name or pinyin (the caller's district). A POST body,
    because a full ID number never travels in a URL."""
    _counter_canteen(_int_arg("canteen_id"))
    q = str(_json_body().get("q") or "").strip()[:50]
    found: list[Resident] = []
    compact = re.sub(r"\s+", "", q)
    if not compact:
        return jsonify(residents=[])
    if resident_service.looks_like_id_number(compact):
        found = _exact(id_number=compact)
    else:
        found = _exact(card_no=compact)
        seen = {r.id for r in found}
        found += [r for r in resident_service.search_residents(q=q, page_size=SEARCH_RESULTS).items if r.id not in seen]
        if not found and _PASSPORT.match(compact.upper()):
            found = _exact(id_number=compact)  # a passport number is shaped like a card number
    today = clock.today()
    return jsonify(residents=[_summary(r, today) for r in found[:SEARCH_RESULTS]])


def _exact(**number: str) -> list[Resident]:
    try:
        return [resident_service.lookup_resident(**number)]
    except NotFound:
        return []


class PreviewArgsSchema(BaseSchema):
    canteen_id = QueryId(required=True)
    resident_id = QueryId(required=True)
    slot = ma.fields.String(required=True, validate=ma.validate.OneOf(SLOTS))
    mode = ma.fields.String(load_default="dine_in", validate=ma.validate.OneOf(MODES))
    price_fen = ma.fields.Integer(required=True, validate=ma.validate.Range(min=0, max=schemas.MAX_PRICE_FEN))


@bp.route("/counter/preview")
@json_endpoint
def preview():
    """What recording this meal now would give (subsidy, copay, warnings), without recording it."""
    args = _load(PreviewArgsSchema(), request.args.to_dict())
    canteen = _counter_canteen(args["canteen_id"])
    result = meal_service.preview_meal(served_on=clock.today(), **args)
    decision = result.decision
    already = None
    if result.already_recorded is not None:
        existing = result.already_recorded
        with scoping.unrestricted():  # only the canteen's name, as a 409 would tell it
            canteen_name = org_service.get_canteen(existing.canteen_id).name
        already = {"canteen_name": canteen_name, "slot": existing.slot, "here": existing.canteen_id == canteen.id}
    return jsonify(
        subsidy_fen=decision.subsidy_fen,
        copay_fen=decision.copay_fen,
        rule=(
            {"category": decision.category, "category_label": category_label(decision.category or "")}
            if decision.rule is not None
            else None
        ),
        warnings=[{"code": w["code"], "message": warning_text(w, canteen)} for w in result.warnings],
        already_recorded=already,
    )


def warning_text(warning: dict[str, str], canteen: Canteen) -> str:
    """A warning of the meal services in the user's language (their messages are English)."""
    code = warning.get("code", "")
    if code == "outside_opening_hours":
        hours = [h for h in (canteen.opening_hours or {}).values() if h]
        text = _(WARNING_MESSAGES[code])
        return f"{text} ({', '.join(f'{a}–{b}' for a, b in hours)})" if hours else text
    if code in WARNING_MESSAGES:
        return _(WARNING_MESSAGES[code])
    return translate_known(warning.get("message", code))


@bp.route("/counter/roster")
@json_endpoint
def roster():
    """The residents this counter may need while offline (service.counter_roster): ids, names,
    pinyin, card numbers, categories today and diet — never ID numbers or phones, since the
    browser keeps this list for the session."""
    canteen = _chosen_canteen()
    today = clock.today()
    residents = []
    for resident in meal_service.counter_roster(canteen.id):
        entry = _summary(resident, today, masked_id=False)
        entry["pinyin"] = resident.name_pinyin
        entry["initials"] = resident.name_initials
        residents.append(entry)
    return jsonify(date=today.isoformat(), residents=residents)


@bp.route("/counter/today")
@json_endpoint
def today():
    """Today's meals at this counter's canteen, valid and void, newest first (MealSchema)."""
    canteen = _chosen_canteen()
    day = clock.today()
    meals: list[MealRecord] = []
    page = 1
    while True:
        found = meal_service.list_meals(
            canteen_id=canteen.id, date_from=day, date_to=day, page=page, page_size=TODAY_PAGE_SIZE
        )
        meals.extend(found.items)
        if len(meals) >= found.total or not found.items:
            break
        page += 1
    return jsonify(date=day.isoformat(), meals=schemas.MealSchema(many=True).dump(meals))


@bp.route("/counter/batch", methods=["POST"])
@json_endpoint
def batch():
    """Record the meals the counter queued (up to 500, each with its own idempotency key) —
    service.record_meal_batch, as POST /api/v1/meals/batch, with the same answer."""
    data = _load(schemas.BatchSchema(), _json_body())
    results = meal_service.record_meal_batch(
        data["items"], load=schemas.MealCreateSchema().load, render=schemas.MealSchema().dump
    )
    return jsonify(results=[asdict(result) for result in results])


@bp.route("/counter/meals/<int:meal_id>/void", methods=["POST"])
@json_endpoint
def void(meal_id: int):
    """Void a meal with a reason (service.void_meal); answers the meal as MealSchema."""
    data = _load(schemas.VoidSchema(), _json_body())
    return jsonify(schemas.MealSchema().dump(meal_service.void_meal(meal_id, **data)))


# --- the daily cash-up -----------------------------------------------------------------------------
@bp.route("/cash-up")
@login_required
def cash_up():
    """A canteen's day per counter account, to count the till against: staff their canteen,
    officers a canteen of their district, admin any."""
    scope = scoping.require_role(scoping.CANTEEN_STAFF, scoping.DISTRICT_OFFICER)
    canteens = [c for c in org_service.list_canteens(page_size=CHOICES_LIMIT).items if not c.is_kitchen]
    canteen_id = _int_arg("canteen_id") or scope.canteen_id or (canteens[0].id if len(canteens) == 1 else None)
    raw_date = request.args.get("date", "").strip()
    error = None
    try:
        day = date.fromisoformat(raw_date) if raw_date else clock.today()
    except ValueError:
        day, error = clock.today(), _("Not a valid date: %(date)s. Showing today.", date=raw_date[:20])
    result = meal_service.cash_up(canteen_id, day) if canteen_id is not None else None
    return render_template(
        "meals/cash_up.html",
        canteens=canteens,
        canteen_id=canteen_id,
        may_choose=scope.role != scoping.CANTEEN_STAFF,
        day=day,
        date_error=error,
        result=result,
        payment_methods=PAYMENT_METHODS,
        printed_at=datetime.now(clock.TIME_ZONE),
    )


def _is_json_path() -> bool:
    return request.path.startswith(JSON_PREFIX)


@bp.after_request
def _no_store_for_json(response: Response) -> Response:
    # resident data answered to the counter script is never kept by a browser or proxy cache
    if _is_json_path():
        response.headers["Cache-Control"] = "no-store"
    return response
