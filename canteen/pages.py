"""Helpers shared by the server-rendered pages: labels in the user's language, the language
switch, and turning form input and service errors into messages next to the fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import marshmallow as ma
from flask import g, request, url_for
from flask_babel import get_locale, gettext, pgettext

from canteen.core.errors import CanteenError

T = TypeVar("T")

# errors a person can fix in the form; 403 and 404 are not theirs to fix and render the error page
FORM_ERROR_STATUSES = frozenset({400, 409, 422})
FORM = "_form"  # errors key for messages that belong to the whole form, not one field


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated with gettext when it is shown."""
    return message


ROLE_LABELS = {
    "admin": N_("Administrator"),
    "district_officer": N_("District officer"),
    "canteen_staff": N_("Canteen staff"),
    "kitchen_staff": N_("Kitchen staff"),
}
KIND_LABELS = {
    "canteen": N_("Community canteen"),
    "meal_point": N_("Meal point"),
    "central_kitchen": N_("Central kitchen"),
}
SLOT_LABELS = {"breakfast": N_("Breakfast"), "lunch": N_("Lunch"), "dinner": N_("Dinner")}
WEEKDAY_LABELS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
LANGUAGE_NAMES = {"zh_Hans_CN": "中文", "en": "English"}  # each in its own language, as switches are

# --- the registry's vocabularies (canteen.residents.models) -----------------------------------
CATEGORY_LABELS = {
    "extreme_poverty": N_("Extreme poverty (特困)"),
    "subsistence": N_("Subsistence allowance (低保)"),
    "low_income": N_("Low income"),
    "disabled": N_("Disabled or dependent"),
    "living_alone": N_("Living alone"),
    "special_care": N_("Special care (优抚)"),
    "aged_60_plus": N_("Aged 60+"),
    "aged_80_plus": N_("Aged 80+"),
}
RESTRICTION_LABELS = {
    "low_salt": N_("Low salt"),
    "low_sugar": N_("Low sugar"),
    "low_fat": N_("Low fat"),
    "soft": N_("Soft food"),
    "minced": N_("Minced food"),
    "halal": N_("Halal"),
    "vegetarian": N_("Vegetarian"),
}
ALLERGEN_LABELS = {
    "peanut": N_("Peanut"),
    "tree_nut": N_("Tree nuts"),
    "milk": N_("Milk"),
    "egg": N_("Egg"),
    "soy": N_("Soy"),
    "wheat": N_("Wheat"),
    "fish": N_("Fish"),
    "shellfish": N_("Shellfish"),
    "sesame": N_("Sesame"),
}
DOC_TYPE_LABELS = {
    "resident_id_card": N_("Resident ID card"),
    "hmt_residence_permit": N_("Hong Kong, Macao or Taiwan residence permit"),
    "passport": N_("Passport"),
}
CONSENT_METHOD_LABELS = {
    "signed_form": N_("Signed consent form"),
    "family_on_behalf": N_("Signed by family on the resident's behalf"),
}
SEX_LABELS = {"male": N_("Male"), "female": N_("Female")}
RECORD_SOURCE_LABELS = {
    "manual": N_("Entered by hand"),
    "registration": N_("Registration"),
    "import": N_("Bulk import"),
    "civil_affairs": N_("Civil-affairs list"),
}
CARD_STATUS_LABELS = {"active": N_("In use"), "blocked": N_("Blocked")}

# --- subsidy policies (canteen.subsidies.models) ----------------------------------------------
RULE_SLOT_LABELS = {**SLOT_LABELS, "any": N_("Any meal")}
UNIT_LABELS = {"per_meal": N_("Per meal"), "per_day": N_("Once a day")}

# Fixed English messages of the services and API schemas. Listed here so the catalogue carries a
# translation; messages with values in them (a code, a name) are shown as the service wrote them.
KNOWN_MESSAGES = (
    N_("Some fields are invalid."),
    N_("This conflicts with existing data."),
    N_("The request cannot be processed."),
    N_("Your role may not do this."),
    N_("Not found."),
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Not a valid integer."),
    N_("Not a valid date."),
    N_("Unknown field."),
    N_("Must be one of: admin, district_officer, canteen_staff, kitchen_staff."),
    N_("Must be one of: central_kitchen, canteen, meal_point."),
    N_("Shorter than minimum length 1."),
    N_("A division code is 6 digits, e.g. 630102."),
    N_("2–20 letters, digits or '-'."),
    N_("3–60 lower-case letters, digits, '.', '_' or '-'."),
    N_("5–15 digits, optionally with a leading +."),
    N_("Each weekday once."),
    N_("A central kitchen is not supplied by another kitchen."),
    N_("Only a central kitchen can supply canteens."),
    N_("The community is in another district."),
    N_("This kitchen still supplies canteens."),
    N_("A district officer needs a district."),
    N_("Staff need a canteen or kitchen."),
    N_("This role works at a central kitchen."),
    N_("This role works at a canteen or meal point."),
    N_("An admin works for the whole city, without district or canteen."),
    N_("One of admin, district_officer, canteen_staff, kitchen_staff."),
    N_("At least 10 characters."),
    N_("Too simple."),
    N_("Taken."),
    N_("Wrong password."),
    # the registry (canteen.residents: id_numbers, service, schemas)
    N_("A passport number is 5–20 letters and digits."),
    N_("An ID number is 18 characters: 17 digits and a digit or X."),
    N_("A Hong Kong, Macao or Taiwan residence permit number starts with 810000, 820000 or 830000."),
    N_("The birth date inside the ID number is not a real date."),
    N_("The birth date inside the ID number is not plausible."),
    N_("The check digit is wrong: the number has a typing error."),
    N_("Required for a passport."),
    N_("Birth date and sex are required for a passport."),
    N_("Derived from the ID number; leave it out."),
    N_("Birth date and sex come from the ID number."),
    N_("The resident must be 60 or older on the registration date."),
    N_("A resident with this ID number is already registered."),
    N_("Already registered."),
    N_("A central kitchen is not a home canteen."),
    N_("The canteen is in another district."),
    N_("No resident found."),
    N_("Give exactly one of id_number and card_no."),
    N_("Before the resident's birth date."),
    N_("Before valid_from."),
    N_("Before the category started."),
    N_("The resident already holds this category in that period."),
    N_("Overlaps an existing period."),
    N_("The resident has no active card."),
    N_("4–30 letters, digits or '-'."),
    N_("At most 50 characters."),
    N_("Length must be between 1 and 50."),
    N_("Length must be between 5 and 30."),
    N_("Length must be between 1 and 200."),
    N_("Length must be between 1 and 500."),
    N_("Longer than maximum length 100."),
    N_("Longer than maximum length 200."),
    N_("Longer than maximum length 500."),
    N_("Must be one of: resident_id_card, hmt_residence_permit, passport."),
    N_("Must be one of: male, female."),
    N_("Must be one of: active, suspended, deceased, moved_out."),
    N_("Must be one of: extreme_poverty, subsistence, low_income, disabled, living_alone, special_care."),
    N_("Must be one of: signed_form, family_on_behalf."),
    N_("A full ID number must not be sent in a URL; use POST /api/v1/residents/lookup."),
    # subsidy policies (canteen.subsidies: service, schemas)
    N_("The district already has a policy in force during this period."),
    N_("At least one rule."),
    N_("At most 50 rules."),
    N_("Each category and slot once per policy."),
    N_("A per-day rule is paid once a day; it takes no max_per_day."),
    N_("A subsidy amount is more than 0."),
    N_("A price is 0 or more."),
    N_("An allowance is 0 or more."),
    N_("At least 1, or empty for no cap."),
    N_("Not a valid amount of fen."),
    N_("Must be one of: breakfast, lunch, dinner, any."),
    N_("Must be one of: per_meal, per_day."),
    N_(
        "Must be one of: extreme_poverty, subsistence, low_income, disabled, living_alone, special_care,"
        " aged_60_plus, aged_80_plus."
    ),
    N_("Length must be between 1 and 100."),
    N_("The subsidy rules this resident could use have reached their caps; the meal is at full price."),
    N_("No subsidy rule applies to this resident, meal and price; the meal is at full price."),
    N_("No subsidy policy is in force in this district on that date; the meal is at full price."),
)

# Service messages with a value in them: the pattern finds the value, the catalogue the words.
KNOWN_PATTERNS = (
    (re.compile(r"^(?P<code>[0-9]{2}) is not a province code\.$"), N_("%(code)s is not a province code.")),
    (re.compile(r"^Card (?P<card>\S+) is already issued\.$"), N_("Card %(card)s is already issued.")),
    (
        re.compile(r"^Meals used this policy on (?P<date>[0-9-]+); it cannot end before that day\.$"),
        N_("Meals used this policy on %(date)s; it cannot end before that day."),
    ),
    (
        re.compile(r"^The policy already ends on (?P<date>[0-9-]+); it cannot be extended\.$"),
        N_("The policy already ends on %(date)s; it cannot be extended."),
    ),
)


def translate_known(message: Any) -> str:
    """The message in the user's language if the catalogue knows it, else as given."""
    text = str(message)
    if not text:
        return text  # gettext("") answers the catalogue's header, never what a caller wants
    translated = gettext(text)
    if translated != text:
        return translated
    for pattern, msgid in KNOWN_PATTERNS:
        match = pattern.match(text)
        if match:
            return gettext(msgid, **match.groupdict())
    return text


def role_label(role: str | None) -> str:
    return gettext(ROLE_LABELS[role]) if role in ROLE_LABELS else (role or "")


def kind_label(kind: Any) -> str:
    value = getattr(kind, "value", kind)
    return gettext(KIND_LABELS[value]) if value in KIND_LABELS else str(value or "")


def slot_label(slot: str) -> str:
    return gettext(SLOT_LABELS[slot]) if slot in SLOT_LABELS else slot


def weekday_label(weekday: int) -> str:
    return gettext(WEEKDAY_LABELS[weekday]) if 0 <= weekday < len(WEEKDAY_LABELS) else str(weekday)


def _label(labels: Mapping[str, str], value: Any) -> str:
    value = getattr(value, "value", value)
    return gettext(labels[value]) if value in labels else str(value or "")


def resident_status_label(status: str | None) -> str:
    # "Active" alone already means an account or canteen in service: these carry a context
    labels = {
        "active": pgettext("resident status", "Active"),
        "suspended": pgettext("resident status", "Suspended"),
        "deceased": pgettext("resident status", "Deceased"),
        "moved_out": pgettext("resident status", "Moved out"),
    }
    return labels.get(status or "", status or "")


def category_label(category: str) -> str:
    return _label(CATEGORY_LABELS, category)


def restriction_label(restriction: str) -> str:
    return _label(RESTRICTION_LABELS, restriction)


def allergen_label(allergen: str) -> str:
    return _label(ALLERGEN_LABELS, allergen)


def doc_type_label(doc_type: str) -> str:
    return _label(DOC_TYPE_LABELS, doc_type)


def consent_method_label(method: str | None) -> str:
    return _label(CONSENT_METHOD_LABELS, method)


def sex_label(sex: str | None) -> str:
    return _label(SEX_LABELS, sex)


def record_source_label(source: str | None) -> str:
    """Where a status or category entry came from; imports write free text (a file and row) as is."""
    return _label(RECORD_SOURCE_LABELS, source)


def card_status_label(status: str) -> str:
    return _label(CARD_STATUS_LABELS, status)


def rule_slot_label(slot: str) -> str:
    """A subsidy rule's meal: a slot, or any meal."""
    return _label(RULE_SLOT_LABELS, slot)


def unit_label(unit: str) -> str:
    return _label(UNIT_LABELS, unit)


def lang_url(code: str) -> str:
    """This page again in language `code` (canteen.i18n remembers the choice in the session)."""
    rule = request.url_rule
    if rule is None or "GET" not in (rule.methods or ()):
        # a page answering a POST (a token just created) cannot be fetched again: go home
        return url_for("auth.home", lang=code)
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def page_url(page: int) -> str:
    """This list page again, with its filters, at page `page`."""
    args = request.args.to_dict(flat=False)
    args["page"] = [str(page)]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def template_helpers() -> dict[str, Any]:
    """Names every template may use (registered app-wide by the auth pages)."""
    locale = str(get_locale() or "")
    return {
        "me": g.get("user"),
        "html_lang": "en" if locale == "en" else "zh-CN",
        "current_language": locale,
        "language_names": LANGUAGE_NAMES,
        "lang_url": lang_url,
        "page_url": page_url,
        "role_label": role_label,
        "kind_label": kind_label,
        "slot_label": slot_label,
        "weekday_label": weekday_label,
        "translate_known": translate_known,
        "resident_status_label": resident_status_label,
        "category_label": category_label,
        "restriction_label": restriction_label,
        "allergen_label": allergen_label,
        "doc_type_label": doc_type_label,
        "consent_method_label": consent_method_label,
        "sex_label": sex_label,
        "record_source_label": record_source_label,
        "card_status_label": card_status_label,
        "rule_slot_label": rule_slot_label,
        "unit_label": unit_label,
    }


# --- forms -----------------------------------------------------------------------------------
_ASCII_DIGITS = re.compile(r"[0-9]+")


class FormInput:
    """Reads request.form into the shapes the API schemas take, collecting what cannot be read."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self.form = form
        self.errors: dict[str, list[str]] = {}

    def add_error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def field(self, name: str) -> str:
        return (self.form.get(name) or "").strip()

    def flag(self, name: str) -> bool:
        return self.form.get(name) not in (None, "", "0", "false", "off")

    def integer(self, name: str) -> int | None:
        raw = self.field(name)
        if not raw:
            return None
        if not _ASCII_DIGITS.fullmatch(raw):
            self.add_error(name, gettext("Enter a whole number."))
            return None
        return int(raw)

    def integers(self, name: str) -> list[int]:
        values = []
        for raw in self.form.getlist(name):
            if _ASCII_DIGITS.fullmatch(raw.strip()):
                values.append(int(raw))
            else:
                self.add_error(name, gettext("Enter a whole number."))
        return values


def submit_form(
    schema: ma.Schema,
    data: dict[str, Any],
    action: Callable[[dict[str, Any]], T],
    *,
    form_input: FormInput | None = None,
    field_names: Mapping[str, str] | None = None,
) -> tuple[T | None, dict[str, list[str]]]:
    """Validate `data` with the API's input schema, then run the service call `action`.

    Returns (result, {}) on success, or (None, errors by form field) when the person can fix
    the input; then nothing is written. Forbidden and not-found errors propagate to the error
    page, as in the API.
    """
    from canteen.extensions import db

    parse_errors = form_input.errors if form_input is not None else {}
    try:
        loaded = schema.load(data)
    except ma.ValidationError as error:
        return None, _rename({**_flatten_schema_errors(error.messages), **parse_errors}, field_names)
    if parse_errors:
        return None, _rename(dict(parse_errors), field_names)
    try:
        return action(loaded), {}
    except CanteenError as error:
        if error.status not in FORM_ERROR_STATUSES:
            raise
        # the service may have changed rows before refusing; re-rendering the form queries the
        # database, and autoflush would otherwise write (or trip over) those half-made changes
        db.session.rollback()
        return None, _rename(errors_of(error), field_names)


def errors_of(error: CanteenError) -> dict[str, list[str]]:
    """A service error as form messages: field messages by field, else the message for the form."""
    errors = {field: [translate_known(m) for m in messages] for field, messages in error.errors.items()}
    if not errors:
        errors[FORM] = [translate_known(error.message)]
    return errors


def _flatten_schema_errors(messages: Any) -> dict[str, list[str]]:
    if not isinstance(messages, dict):
        return {FORM: _flatten(messages)}
    errors: dict[str, list[str]] = {}
    for field, value in messages.items():
        errors[FORM if field == "_schema" else str(field)] = _flatten(value)
    return errors


def _flatten(value: Any) -> list[str]:
    if isinstance(value, str):
        return [translate_known(value)]
    if isinstance(value, dict):
        # nested fields (a list's items, a dict's keys): keep the position in the message
        flat: list[str] = []
        for key, inner in value.items():
            flat.extend(f"{key}: {m}" if key not in ("key", "value") else m for m in _flatten(inner))
        return flat
    if isinstance(value, list | tuple):
        return [m for item in value for m in _flatten(item)]
    return [str(value)]


def _rename(errors: dict[str, list[str]], field_names: Mapping[str, str] | None) -> dict[str, list[str]]:
    if not field_names:
        return errors
    renamed: dict[str, list[str]] = {}
    for field, messages in errors.items():
        renamed.setdefault(field_names.get(field, field), []).extend(messages)
    return renamed
