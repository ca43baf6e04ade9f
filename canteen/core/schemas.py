"""Schema conventions: input rejects unknown fields and non-integers, money is integer fen."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate


class BaseSchema(ma.Schema):
    """Every input and output schema; unknown fields in input are an error, not ignored."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class StrictInteger(fields.Integer):
    """An integer that refuses "12" and 12.0 (a client sending those has a bug)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(strict=True, **kwargs)


class Fen(StrictInteger):
    """An amount of money in integer fen (1 yuan = 100 fen)."""

    def __init__(self, *, allow_negative: bool = False, **kwargs) -> None:
        if not allow_negative:
            kwargs.setdefault("validate", validate.Range(min=0))
        kwargs.setdefault("metadata", {}).setdefault("description", "Amount in fen (1 yuan = 100 fen).")
        super().__init__(**kwargs)


class Id(StrictInteger):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("validate", validate.Range(min=1, max=2**63 - 1))
        super().__init__(**kwargs)


class QueryId(fields.Integer):
    """An id in a query string: text there, so not a strict JSON integer; positive, 64-bit."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("validate", validate.Range(min=1, max=2**63 - 1))
        super().__init__(**kwargs)


def trimmed(max_length: int, *, min_length: int = 1) -> validate.Length:
    return validate.Length(min=min_length, max=max_length)


class TrimmedString(fields.String):
    """A string with surrounding whitespace removed; blank is refused when required."""

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        return result.strip()


class Phone(fields.String):
    """A phone number, stored without the separators people type (138-1234-5678 → 13812345678),
    so masking always finds its digits."""

    def __init__(self, **kwargs) -> None:
        shape = validate.Regexp(r"^\+?\d{5,15}$", error="5–15 digits, optionally with a leading +.")
        kwargs.setdefault("validate", shape)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        from canteen.core.privacy import normalise_phone

        return normalise_phone(super()._deserialize(value, attr, data, **kwargs).strip())
