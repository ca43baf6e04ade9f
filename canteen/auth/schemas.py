"""Request and answer shapes for tokens, the caller and accounts."""

from __future__ import annotations

from marshmallow import fields, validate

from canteen.core.privacy import mask_phone
from canteen.core.schemas import BaseSchema, Id, Phone, TrimmedString
from canteen.core.scoping import ROLES

USERNAME = validate.Regexp(r"^[a-z0-9_.-]{3,60}$", error="3–60 lower-case letters, digits, '.', '_' or '-'.")


class TokenRequestSchema(BaseSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=60))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)
    name = fields.String(validate=validate.Length(max=80), metadata={"description": "Label, e.g. the tablet."})


class TokenSchema(BaseSchema):
    token = fields.String(metadata={"description": "Shown once; send as Authorization: Bearer <token>."})
    expires_at = fields.DateTime()


class TokenInfoSchema(BaseSchema):
    id = fields.Integer()
    name = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)


class MeSchema(BaseSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    district_id = fields.Integer(allow_none=True)
    canteen_id = fields.Integer(allow_none=True)


class UserSchema(BaseSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    district_id = fields.Integer(allow_none=True)
    canteen_id = fields.Integer(allow_none=True)
    phone_masked = fields.Function(lambda u: mask_phone(u.phone))
    active = fields.Boolean()
    locked_until = fields.DateTime(allow_none=True)
    last_login_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class UserCreateSchema(BaseSchema):
    username = TrimmedString(required=True, validate=USERNAME)
    display_name = TrimmedString(validate=validate.Length(min=1, max=60))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    district_id = Id(allow_none=True)
    canteen_id = Id(allow_none=True)
    phone = Phone(allow_none=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=200))
    language = fields.String(validate=validate.OneOf(["zh_Hans_CN", "en"]))


class UserUpdateSchema(BaseSchema):
    display_name = TrimmedString(validate=validate.Length(min=1, max=60))
    role = fields.String(validate=validate.OneOf(ROLES))
    district_id = Id(allow_none=True)
    canteen_id = Id(allow_none=True)
    phone = Phone(allow_none=True)
    active = fields.Boolean()
    password = fields.String(load_only=True, validate=validate.Length(max=200))
    language = fields.String(validate=validate.OneOf(["zh_Hans_CN", "en"]))


class UserQueryArgsSchema(BaseSchema):
    role = fields.String(validate=validate.OneOf(ROLES))
    district_id = fields.Integer(validate=validate.Range(min=1))
    canteen_id = fields.Integer(validate=validate.Range(min=1))
    active = fields.Boolean()
    q = fields.String(validate=validate.Length(max=60))
