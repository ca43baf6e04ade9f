"""Request and answer shapes for districts, communities and canteens (DESIGN.md "API shapes")."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from canteen.core.schemas import BaseSchema, Id, StrictInteger, TrimmedString
from canteen.org.models import SLOTS, CanteenKind

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class DistrictSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    name = fields.String(dump_only=True)


class DistrictCreateSchema(BaseSchema):
    code = TrimmedString(
        required=True,
        validate=validate.Regexp(r"^\d{6}$", error="A division code is 6 digits, e.g. 630102."),
    )
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=60))


class DistrictUpdateSchema(BaseSchema):
    name = TrimmedString(validate=validate.Length(min=1, max=60))


class DistrictQueryArgsSchema(BaseSchema):
    q = fields.String(validate=validate.Length(max=60), metadata={"description": "Name or code contains."})


class CommunitySchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    district_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)


class CommunityCreateSchema(BaseSchema):
    district_id = Id(required=True)
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=60))


class CommunityUpdateSchema(BaseSchema):
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=60))


class CommunityQueryArgsSchema(BaseSchema):
    district_id = fields.Integer(validate=validate.Range(min=1))
    q = fields.String(validate=validate.Length(max=60))


class OpeningHoursField(fields.Dict):
    """{"lunch": ["11:00", "13:30"], ...}: known slots, HH:MM, opening before closing."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            keys=fields.String(validate=validate.OneOf(SLOTS)),
            values=fields.List(fields.String(), validate=validate.Length(equal=2)),
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        hours = super()._deserialize(value, attr, data, **kwargs)
        for slot, (opens, closes) in hours.items():
            if not (_TIME.match(opens) and _TIME.match(closes)):
                raise ValidationError(f"{slot}: times are HH:MM, e.g. 11:00.")
            if opens >= closes:
                raise ValidationError(f"{slot}: opening time must be before closing time.")
        return hours


class _CanteenFields(BaseSchema):
    name = TrimmedString(validate=validate.Length(min=1, max=100))
    kind = fields.String(validate=validate.OneOf([k.value for k in CanteenKind]))
    community_id = Id(allow_none=True)
    supplied_by_id = Id(allow_none=True)
    address = TrimmedString(validate=validate.Length(max=200), allow_none=False)
    halal = fields.Boolean()
    seats = StrictInteger(validate=validate.Range(min=0, max=100000))
    opening_hours = OpeningHoursField()
    closed_weekdays = fields.List(StrictInteger(validate=validate.Range(min=0, max=6)))
    closed_dates = fields.List(fields.Date())
    active = fields.Boolean()

    @validates("closed_weekdays")
    def _distinct_weekdays(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Each weekday once.")


class CanteenCreateSchema(_CanteenFields):
    code = TrimmedString(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9-]{2,20}$", error="2–20 letters, digits or '-'."),
    )
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in CanteenKind]))
    district_id = Id(required=True)

    @validates_schema
    def _kitchen_not_supplied(self, data, **kwargs):
        if data.get("kind") == CanteenKind.CENTRAL_KITCHEN and data.get("supplied_by_id"):
            raise ValidationError("A central kitchen is not supplied by another kitchen.", "supplied_by_id")


class CanteenUpdateSchema(_CanteenFields):
    pass


class CanteenSchema(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.Function(lambda c: c.kind.value if hasattr(c.kind, "value") else c.kind)
    district_id = fields.Integer()
    community_id = fields.Integer(allow_none=True)
    supplied_by_id = fields.Integer(allow_none=True)
    address = fields.String()
    halal = fields.Boolean()
    seats = fields.Integer()
    opening_hours = fields.Dict()
    closed_weekdays = fields.List(fields.Integer())
    closed_dates = fields.List(fields.String())
    active = fields.Boolean()


class CanteenQueryArgsSchema(BaseSchema):
    district_id = fields.Integer(validate=validate.Range(min=1))
    community_id = fields.Integer(validate=validate.Range(min=1))
    kind = fields.String(validate=validate.OneOf([k.value for k in CanteenKind]))
    supplied_by_id = fields.Integer(validate=validate.Range(min=1))
    halal = fields.Boolean()
    active = fields.Boolean()
    q = fields.String(validate=validate.Length(max=100), metadata={"description": "Name or code contains."})
