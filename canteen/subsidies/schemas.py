"""Request and answer shapes for subsidy policies (DESIGN.md "API shapes"). Money is integer fen."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from canteen.core.schemas import BaseSchema, Fen, Id, StrictInteger, TrimmedString
from canteen.subsidies import service as subsidy_service
from canteen.subsidies.models import PER_DAY, PER_MEAL, RULE_CATEGORIES, RULE_SLOTS, UNITS

# far above any real amount; keeps a typo (or a hostile number) out of a BIGINT overflow
MAX_FEN = 100_000_000
MAX_CAP = 1000


class RuleCreateSchema(BaseSchema):
    category = fields.String(
        required=True,
        validate=validate.OneOf(RULE_CATEGORIES),
        metadata={"description": "A stored eligibility category, or aged_60_plus / aged_80_plus."},
    )
    slot = fields.String(required=True, validate=validate.OneOf(RULE_SLOTS))
    amount_fen = Fen(
        required=True, validate=validate.Range(min=1, max=MAX_FEN, error="A subsidy amount is more than 0.")
    )
    unit = fields.String(
        load_default=PER_MEAL,
        validate=validate.OneOf(UNITS),
        metadata={"description": "per_meal, or per_day: paid once a day on the first subsidised meal."},
    )
    min_price_fen = Fen(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=MAX_FEN, error="A price is 0 or more."),
        metadata={"description": "The rule applies only to meals costing at least this much."},
    )
    max_per_day = StrictInteger(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=MAX_CAP, error="At least 1, or empty for no cap."),
        metadata={"description": "Subsidised meals per resident and day (per_meal rules only)."},
    )
    max_per_month = StrictInteger(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=MAX_CAP, error="At least 1, or empty for no cap."),
        metadata={"description": "Subsidised meals per resident and calendar month."},
    )

    @validates_schema(skip_on_field_errors=False)  # shown together with the other fields' errors
    def _per_day_has_no_daily_cap(self, data, **kwargs):
        # a per-day rule pays once a day by definition: a daily cap would repeat or contradict it
        if data.get("unit") == PER_DAY and data.get("max_per_day") is not None:
            raise ValidationError(subsidy_service.PER_DAY_DAILY_CAP, "max_per_day")


class PolicyCreateSchema(BaseSchema):
    district_id = Id(required=True)
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=100))
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(allow_none=True, load_default=None, metadata={"description": "Empty: open-ended."})
    operator_allowance_fen = Fen(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_FEN, error="An allowance is 0 or more."),
        metadata={"description": "Paid to the canteen once per resident and day with a subsidised meal."},
    )
    rules = fields.List(
        fields.Nested(RuleCreateSchema),
        required=True,
        validate=[
            validate.Length(min=1, error="At least one rule."),
            validate.Length(max=50, error="At most 50 rules."),
        ],
    )

    @validates_schema(skip_on_field_errors=False, pass_original=True)  # with the other fields' errors
    def _consistent(self, data, original, **kwargs):
        errors: dict = {}
        if data.get("valid_to") is not None and data.get("valid_from") and data["valid_to"] < data["valid_from"]:
            errors["valid_to"] = ["Before valid_from."]
        rules = data.get("rules") or []
        if len(rules) != len(original.get("rules") or []):
            rules = []  # a rule that is not even an object: positions would not match, say nothing more
        seen, duplicates = set(), {}
        for index, rule in enumerate(rules):
            key = (rule.get("category"), rule.get("slot"))
            if None not in key and key in seen:
                duplicates[index] = {"slot": [subsidy_service.DUPLICATE_RULE]}
            seen.add(key)
        if duplicates:
            errors["rules"] = duplicates
        if errors:
            raise ValidationError(errors)


class PolicyEndSchema(BaseSchema):
    valid_to = fields.Date(required=True, metadata={"description": "The policy's last day."})


class PolicyQueryArgsSchema(BaseSchema):
    district_id = fields.Integer(validate=validate.Range(min=1))
    on = fields.Date(metadata={"description": "Only the policy valid on this date."})


class RuleSchema(BaseSchema):
    id = fields.Integer()
    category = fields.String()
    slot = fields.String()
    amount_fen = fields.Integer()
    unit = fields.String()
    min_price_fen = fields.Integer(allow_none=True)
    max_per_day = fields.Integer(allow_none=True)
    max_per_month = fields.Integer(allow_none=True)


class PolicySchema(BaseSchema):
    id = fields.Integer()
    district_id = fields.Integer()
    name = fields.String()
    valid_from = fields.Date()
    valid_to = fields.Date(allow_none=True)
    operator_allowance_fen = fields.Integer()
    rules = fields.List(fields.Nested(RuleSchema))
    created_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
