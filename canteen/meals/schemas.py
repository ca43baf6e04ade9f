"""Request and answer shapes for meals (DESIGN.md "API shapes"). Money is integer fen."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from canteen.core import clock
from canteen.core.schemas import BaseSchema, Fen, Id, QueryId, TrimmedString
from canteen.meals import service as meal_service
from canteen.meals.models import MEAL_STATUSES, MODES, PAYMENT_METHODS, VERIFICATIONS
from canteen.org.models import SLOTS

MAX_PRICE_FEN = 1_000_000  # 10,000 yuan: far above any meal, far below a BIGINT overflow


class MealCreateSchema(BaseSchema):
    resident_id = Id(metadata={"description": "The resident; or give card_no instead."})
    card_no = TrimmedString(validate=validate.Length(min=1, max=30), metadata={"description": "An active meal card."})
    canteen_id = Id(required=True)
    served_on = fields.Date(required=True, metadata={"description": "The business date (Asia/Shanghai)."})
    served_at = fields.DateTime(
        allow_none=True,
        load_default=None,
        metadata={"description": "When it was served; without an offset, Asia/Shanghai. Defaults to now for today."},
    )
    slot = fields.String(required=True, validate=validate.OneOf(SLOTS))
    mode = fields.String(load_default="dine_in", validate=validate.OneOf(MODES))
    price_fen = Fen(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=MAX_PRICE_FEN, error="A price is 0 or more."),
        metadata={"description": "The meal's price (required until the canteen has a menu for the day)."},
    )
    price_reason = TrimmedString(load_default="", validate=validate.Length(max=200))
    payment_method = fields.String(
        load_default="cash",
        validate=validate.OneOf(PAYMENT_METHODS),
        metadata={"description": "How the copay is paid."},
    )
    verification = fields.String(
        required=True,
        validate=validate.OneOf(VERIFICATIONS),
        metadata={"description": "How the resident was identified; staff_attested needs attest_reason."},
    )
    attest_reason = TrimmedString(load_default="", validate=validate.Length(max=200))
    collected_by = TrimmedString(
        load_default="",
        validate=validate.Length(max=60),
        metadata={"description": "Who collected the meal on the resident's behalf, if not the resident."},
    )

    @validates_schema(skip_on_field_errors=False)
    def _one_resident(self, data, **kwargs):
        if ("resident_id" in data) == ("card_no" in data):
            raise ValidationError("Give exactly one of resident_id and card_no.", "resident_id")
        if data.get("verification") == "staff_attested" and not data.get("attest_reason"):
            raise ValidationError("Say why staff vouch for the resident instead of a card or ID.", "attest_reason")


class BatchSchema(BaseSchema):
    items = fields.List(
        fields.Raw(),
        required=True,
        validate=validate.Length(
            min=1, max=meal_service.BATCH_LIMIT, error=f"1 to {meal_service.BATCH_LIMIT} meals per batch."
        ),
        metadata={"description": "Meals, each an object with its own idempotency_key and the fields of POST /meals."},
    )


class VoidSchema(BaseSchema):
    reason = TrimmedString(required=True, validate=validate.Length(min=1, max=200))


class MealQueryArgsSchema(BaseSchema):
    canteen_id = QueryId()
    resident_id = QueryId()
    date_from = fields.Date()
    date_to = fields.Date()
    slot = fields.String(validate=validate.OneOf(SLOTS))
    mode = fields.String(validate=validate.OneOf(MODES))
    status = fields.String(validate=validate.OneOf(MEAL_STATUSES))
    recorded_by_id = QueryId()


class CashUpArgsSchema(BaseSchema):
    canteen_id = QueryId(required=True)
    date = fields.Date(required=True, data_key="date", attribute="day")


class WarningSchema(BaseSchema):
    code = fields.String()
    message = fields.String()


class AppliedRuleSchema(BaseSchema):
    id = fields.Integer()
    policy_id = fields.Integer()
    category = fields.String()
    amount_fen = fields.Integer()
    unit = fields.String()


class MealSchema(BaseSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    resident_name = fields.String()
    canteen_id = fields.Integer()
    served_on = fields.Date()
    served_at = fields.Function(
        lambda meal: meal.served_at.astimezone(clock.TIME_ZONE).isoformat() if meal.served_at else None,
        metadata={"description": "When it was served, Asia/Shanghai time."},
    )
    slot = fields.String()
    mode = fields.String()
    price_fen = fields.Integer()
    price_reason = fields.String()
    subsidy_fen = fields.Integer()
    copay_fen = fields.Integer()
    payment_method = fields.String()
    rule = fields.Nested(AppliedRuleSchema, allow_none=True)
    warnings = fields.List(fields.Nested(WarningSchema))
    status = fields.String()
    verification = fields.String()
    attest_reason = fields.String()
    collected_by = fields.String()
    recorded_by_id = fields.Integer(allow_none=True)
    recorded_at = fields.DateTime()
    voided_at = fields.DateTime(allow_none=True)
    voided_by_id = fields.Integer(allow_none=True)
    void_reason = fields.String()


class BatchItemResultSchema(BaseSchema):
    idempotency_key = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "created, replayed or refused"})
    meal = fields.Dict(allow_none=True)
    error = fields.Dict(allow_none=True)


class BatchResultSchema(BaseSchema):
    results = fields.List(fields.Nested(BatchItemResultSchema))


class AccountCashUpSchema(BaseSchema):
    user_id = fields.Integer(allow_none=True)
    username = fields.String()
    meal_count = fields.Integer()
    subsidy_fen = fields.Integer()
    copay_fen = fields.Integer()
    copay_by_method = fields.Dict(keys=fields.String(), values=fields.Integer())
    void_count = fields.Integer()
    void_copay_fen = fields.Integer()


class CashUpSchema(BaseSchema):
    canteen_id = fields.Function(lambda c: c.canteen.id)
    canteen_name = fields.Function(lambda c: c.canteen.name)
    date = fields.Date(attribute="day")
    accounts = fields.List(fields.Nested(AccountCashUpSchema))
    total = fields.Nested(AccountCashUpSchema)
