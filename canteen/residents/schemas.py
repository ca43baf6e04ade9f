"""Request and answer shapes for residents (DESIGN.md "API shapes"). No answer carries a full ID
number or phone except the reveal; canteen staff get the counter summary only."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import fields, validate

from canteen.core import clock
from canteen.core.privacy import mask_id_number, mask_personal, mask_phone
from canteen.core.schemas import BaseSchema, Id, Phone, TrimmedString
from canteen.residents import id_numbers
from canteen.residents.models import ALLERGENS, CATEGORIES, CONSENT_METHODS, RESTRICTIONS, SEXES, STATUSES

CARD_NO = validate.Regexp(r"^[A-Za-z0-9-]{4,30}$", error="4–30 letters, digits or '-'.")


class DietSchema(BaseSchema):
    restrictions = fields.List(fields.String(validate=validate.OneOf(RESTRICTIONS)))
    allergens = fields.List(fields.String(validate=validate.OneOf(ALLERGENS)))
    notes = fields.String(validate=validate.Length(max=500))


class ConsentSchema(BaseSchema):
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))
    given_on = fields.Date()


class ResidentCreateSchema(BaseSchema):
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=50))
    id_doc_type = fields.String(load_default=id_numbers.RESIDENT_ID_CARD, validate=validate.OneOf(id_numbers.DOC_TYPES))
    id_number = fields.String(required=True, validate=validate.Length(min=5, max=30))
    birth_date = fields.Date(metadata={"description": "Passports only; derived from ID numbers."})
    sex = fields.String(validate=validate.OneOf(SEXES), metadata={"description": "Passports only."})
    phone = Phone(allow_none=True)
    district_id = Id(required=True)
    community_id = Id(allow_none=True)
    address = TrimmedString(validate=validate.Length(max=200))
    home_canteen_id = Id(allow_none=True)
    card_no = TrimmedString(allow_none=True, validate=CARD_NO)
    delivery_registered = fields.Boolean()
    emergency_contact = TrimmedString(allow_none=True, validate=validate.Length(max=100))
    diet = fields.Nested(DietSchema)
    consent = fields.Nested(ConsentSchema, allow_none=True)


class ResidentUpdateSchema(BaseSchema):
    name = TrimmedString(validate=validate.Length(min=1, max=50))
    phone = Phone(allow_none=True)
    community_id = Id(allow_none=True)
    address = TrimmedString(validate=validate.Length(max=200))
    home_canteen_id = Id(allow_none=True)
    delivery_registered = fields.Boolean()
    emergency_contact = TrimmedString(allow_none=True, validate=validate.Length(max=100))
    diet = fields.Nested(DietSchema)
    consent = fields.Nested(ConsentSchema, allow_none=True)


class ResidentQueryArgsSchema(BaseSchema):
    q = fields.String(
        validate=validate.Length(max=50),
        metadata={"description": "Card number, ID tail (4–6 characters), name, pinyin or pinyin initials."},
    )
    district_id = fields.Integer(validate=validate.Range(min=1))
    community_id = fields.Integer(validate=validate.Range(min=1))
    status = fields.String(validate=validate.OneOf(STATUSES))
    category = fields.String(validate=validate.OneOf((*CATEGORIES, "aged_60_plus", "aged_80_plus")))
    without_consent = fields.Boolean(metadata={"description": "Only residents without consent on file."})


class LookupSchema(BaseSchema):
    id_number = fields.String(validate=validate.Length(min=5, max=30))
    card_no = fields.String(validate=validate.Length(min=1, max=30))


def _diet(resident) -> dict:
    return {"restrictions": resident.diet_restrictions, "allergens": resident.allergens, "notes": resident.diet_notes}


def _card_no(resident):
    card = resident.active_card
    return card.card_no if card else None


def _age(resident):
    return id_numbers.age_on(resident.birth_date, clock.today())


def _categories_today(resident):
    from canteen.residents.service import categories_on

    return categories_on(resident, clock.today())


class ResidentCounterSchema(BaseSchema):
    """What the counter sees: masked identity, categories, diet — never full identity."""

    id = fields.Integer()
    name = fields.String()
    id_number_masked = fields.Function(lambda r: mask_id_number(r.id_number))
    sex = fields.String()
    age = fields.Function(_age)
    card_no = fields.Function(_card_no)
    status = fields.String()
    categories = fields.Function(_categories_today)
    diet = fields.Function(_diet)
    delivery_registered = fields.Boolean()
    home_canteen_id = fields.Integer(allow_none=True)
    district_id = fields.Integer()


class ResidentSchema(ResidentCounterSchema):
    """The officer's view: everything, with ID number, phone and emergency contact masked."""

    id_doc_type = fields.String()
    birth_date = fields.Date()
    phone_masked = fields.Function(lambda r: mask_phone(r.phone))
    community_id = fields.Integer(allow_none=True)
    address = fields.String()
    emergency_contact_masked = fields.Function(lambda r: mask_personal(r.emergency_contact))
    status_effective_on = fields.Date()
    consent = fields.Function(
        lambda r: (
            None
            if r.consent_given_on is None
            else {
                "given_on": r.consent_given_on.isoformat(),
                "method": r.consent_method,
                "recorded_by_id": r.consent_recorded_by_id,
            }
        )
    )
    registered_on = fields.Date()


class RevealSchema(BaseSchema):
    id = fields.Integer()
    id_doc_type = fields.String()
    id_number = fields.String()
    phone = fields.String(allow_none=True)
    emergency_contact = fields.String(allow_none=True)


class CategoryCreateSchema(BaseSchema):
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(allow_none=True)
    evidence = TrimmedString(validate=validate.Length(max=500))


class CategoryEndSchema(BaseSchema):
    valid_to = fields.Date(required=True)


class CategorySchema(BaseSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    category = fields.String()
    valid_from = fields.Date()
    valid_to = fields.Date(allow_none=True)
    evidence = fields.String()
    source = fields.String()
    verified_by_id = fields.Integer(allow_none=True)
    verified_at = fields.DateTime()


class CategoriesOnQuerySchema(BaseSchema):
    on = fields.Date(metadata={"description": "The day (default today)."})


class HeldCategoriesSchema(BaseSchema):
    resident_id = fields.Integer()
    on = fields.Date()
    categories = fields.List(fields.String())


class StatusCreateSchema(BaseSchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    effective_on = fields.Date(required=True)
    reason = TrimmedString(required=True, validate=validate.Length(min=1, max=500))


class StatusChangeSchema(BaseSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    status = fields.String()
    effective_on = fields.Date()
    reason = fields.String()
    source = fields.String()
    recorded_by_id = fields.Integer(allow_none=True)
    recorded_at = fields.DateTime()


class CardReplaceSchema(BaseSchema):
    card_no = TrimmedString(required=True, validate=CARD_NO)
    reason = TrimmedString(load_default="lost", validate=validate.Length(max=200))


class CardBlockSchema(BaseSchema):
    reason = TrimmedString(required=True, validate=validate.Length(min=1, max=200))


class CardSchema(BaseSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    card_no = fields.String()
    status = fields.String()
    issued_on = fields.Date()
    blocked_at = fields.DateTime(allow_none=True)
    block_reason = fields.String(allow_none=True)


# --- spreadsheets: import, export, civil-affairs feed ------------------------------------------
class SpreadsheetUploadSchema(BaseSchema):
    file = Upload(required=True, metadata={"description": "The workbook (multipart field `file`)."})


class ImportArgsSchema(BaseSchema):
    district_id = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "District for rows with a blank 区划代码 (officers: their own by default)."},
    )


class ImportResultSchema(BaseSchema):
    created = fields.Integer()
    resident_ids = fields.List(fields.Integer())


class ImportProblemSchema(BaseSchema):
    row = fields.Integer(metadata={"description": "Row number as Excel shows it."})
    field = fields.String(metadata={"description": "Column key (the English line of the template's header)."})
    column = fields.String(metadata={"description": "Column title in Chinese."})
    code = fields.String()
    message_zh = fields.String()
    message_en = fields.String()


class ImportRejectedSchema(BaseSchema):
    code = fields.String(metadata={"example": "import_rejected"})
    message = fields.String()
    message_zh = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    bad_rows = fields.Integer()
    truncated = fields.Boolean(metadata={"description": "More problems than listed (at most 1,000 are)."})
    rows = fields.List(fields.Nested(ImportProblemSchema))


class FeedChangeSchema(BaseSchema):
    kind = fields.String(metadata={"description": "status | category_granted | category_ended"})
    status = fields.String()
    category = fields.String()
    effective_on = fields.Date()
    valid_from = fields.Date()
    valid_to = fields.Date()
    record_id = fields.Integer(metadata={"description": "The status change or category record written."})


class FeedMatchedSchema(BaseSchema):
    row = fields.Integer()
    resident_id = fields.Integer()
    name = fields.String()
    event = fields.String()
    effective_on = fields.Date()
    applied = fields.Nested(FeedChangeSchema)
    meals_after_effective_date = fields.List(
        fields.Dict(),
        metadata={
            "description": "Valid meals already recorded on or after the effective date (id, served_on, slot, "
            "canteen_name, subsidy_fen; at most 100), for the audit."
        },
    )


class FeedUnmatchedSchema(BaseSchema):
    row = fields.Integer()
    id_number_masked = fields.String(allow_none=True)
    event = fields.String(allow_none=True)
    effective_on = fields.Date(allow_none=True)


class FeedConflictSchema(FeedUnmatchedSchema):
    resident_id = fields.Integer(metadata={"description": "Only for residents in the caller's scope."})
    name = fields.String()
    reason = fields.String(
        metadata={
            "description": "invalid_row, out_of_scope, already_recorded, already_deceased, already_moved_out, "
            "later_status_recorded, impossible_date, category_overlap, no_open_category, or a registry error code"
        }
    )
    message_zh = fields.String()
    message_en = fields.String()


class FeedResultSchema(BaseSchema):
    rows = fields.Integer()
    matched = fields.List(fields.Nested(FeedMatchedSchema))
    unmatched = fields.List(fields.Nested(FeedUnmatchedSchema))
    conflicting = fields.List(fields.Nested(FeedConflictSchema))
