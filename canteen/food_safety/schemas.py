"""Request and answer shapes for food safety. Temperatures are °C with at most one decimal place
(stored as tenths); times are ISO 8601 (without an offset: Asia/Shanghai); dates YYYY-MM-DD.
Answers never carry a staff member's full phone number, only the masked one."""

from __future__ import annotations

from decimal import Decimal

from marshmallow import ValidationError, fields, validate, validates_schema

from canteen.core import clock
from canteen.core.clock import TIME_ZONE
from canteen.core.privacy import mask_phone
from canteen.core.schemas import BaseSchema, Id, Phone, QueryId, StrictInteger, TrimmedString
from canteen.food_safety import rules
from canteen.food_safety import service as food_safety_service
from canteen.org.models import SLOTS


class StrictBoolean(fields.Boolean):
    """true or false only (not 1, "yes" or "on": a client sending those has a bug)."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):  # 1 == True in Python: check the type, not the value
            raise self.make_error("invalid", input=value)
        return value


class LocalDateTime(fields.AwareDateTime):
    """A moment; without an offset it is wall-clock time in Asia/Shanghai, as a tablet sends it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(default_timezone=TIME_ZONE, **kwargs)


class Celsius(fields.Decimal):
    """A temperature in °C with at most one decimal place (8, 8.1, -18.5)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if abs(number) > 50:
            raise ValidationError("Between -50 and 50 °C.")
        if number != number.quantize(Decimal("0.1")):
            raise ValidationError("A temperature in °C with at most one decimal place.")
        return number


# --- site staff and certificates ---------------------------------------------------------------------
class StaffCreateSchema(BaseSchema):
    site_id = Id(required=True, metadata={"description": "The canteen, meal point or kitchen."})
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=50))
    job = fields.String(required=True, validate=validate.OneOf(rules.JOBS))
    phone = Phone(allow_none=True, load_default=None, metadata={"description": "Stored encrypted, shown masked."})
    started_on = fields.Date(load_default=None, metadata={"description": "Default: today."})


class StaffUpdateSchema(BaseSchema):
    name = TrimmedString(validate=validate.Length(min=1, max=50))
    job = fields.String(validate=validate.OneOf(rules.JOBS))
    phone = Phone(allow_none=True, metadata={"description": "null removes it."})
    left_on = fields.Date(allow_none=True, metadata={"description": "The first day no longer working; null: working."})


class StaffQueryArgsSchema(BaseSchema):
    site_id = QueryId()
    include_left = fields.Boolean(load_default=False)


class CertificateCreateSchema(BaseSchema):
    number = TrimmedString(required=True, validate=validate.Length(min=1, max=40))
    issued_on = fields.Date(required=True)
    expires_on = fields.Date(
        allow_none=True,
        load_default=None,
        metadata={"description": "The last valid day; at most one year after issue. Default: one year."},
    )


class CertificateSchema(BaseSchema):
    id = fields.Integer()
    staff_id = fields.Integer()
    number = fields.String()
    issued_on = fields.Date()
    expires_on = fields.Date()
    recorded_at = fields.DateTime()


class StaffSchema(BaseSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    name = fields.String()
    job = fields.String()
    phone_masked = fields.Function(lambda person: mask_phone(person.phone), allow_none=True)
    started_on = fields.Date()
    left_on = fields.Date(allow_none=True)
    certificate = fields.Nested(CertificateSchema, allow_none=True, metadata={"description": "The current one."})
    certificate_status = fields.Method("_certificate_status", metadata={"description": "missing, expired, ..."})

    def _certificate_status(self, person) -> str:
        return food_safety_service.certificate_status(person, clock.today())


class CertificateAlertQueryArgsSchema(BaseSchema):
    site_id = QueryId()
    within_days = fields.Integer(validate=validate.Range(min=0, max=366), load_default=None)
    on = fields.Date(load_default=None)


class CertificateAlertSchema(BaseSchema):
    staff_id = fields.Function(lambda alert: alert.staff.id)
    staff_name = fields.Function(lambda alert: alert.staff.name)
    job = fields.Function(lambda alert: alert.staff.job)
    site_id = fields.Function(lambda alert: alert.staff.site_id)
    site_name = fields.Function(lambda alert: alert.staff.site.name)
    status = fields.String(metadata={"description": "missing, expired or expiring"})
    certificate = fields.Nested(CertificateSchema, allow_none=True)
    days_left = fields.Integer(allow_none=True, metadata={"description": "0: expires today; negative: expired."})


# --- devices and readings ----------------------------------------------------------------------------
class DeviceCreateSchema(BaseSchema):
    site_id = Id(required=True)
    name = TrimmedString(required=True, validate=validate.Length(min=1, max=60))
    kind = fields.String(required=True, validate=validate.OneOf(rules.DEVICE_KINDS))
    active_from = fields.Date(load_default=None, metadata={"description": "Default: today."})


class DeviceUpdateSchema(BaseSchema):
    name = TrimmedString(validate=validate.Length(min=1, max=60))
    retired_on = fields.Date(allow_none=True, metadata={"description": "Out of service from this day; null: back."})


class DeviceQueryArgsSchema(BaseSchema):
    site_id = QueryId()
    include_retired = fields.Boolean(load_default=False)


class DeviceSchema(BaseSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    min_c = fields.Method("_min_c", allow_none=True)
    max_c = fields.Method("_max_c", allow_none=True)
    active_from = fields.Date()
    retired_on = fields.Date(allow_none=True)

    def _min_c(self, device):
        low = rules.device_limits(device.kind)[0]
        return None if low is None else rules.to_celsius(low)

    def _max_c(self, device):
        high = rules.device_limits(device.kind)[1]
        return None if high is None else rules.to_celsius(high)


class ReadingCreateSchema(BaseSchema):
    device_id = Id(required=True)
    temperature_c = Celsius(required=True, metadata={"example": 4.5})
    read_at = LocalDateTime(allow_none=True, load_default=None, metadata={"description": "Default: now."})
    note = TrimmedString(load_default="", validate=validate.Length(max=200))


class ReadingQueryArgsSchema(BaseSchema):
    site_id = QueryId()
    device_id = QueryId()
    date_from = fields.Date()
    date_to = fields.Date()
    in_range = fields.Boolean()


class ReadingSchema(BaseSchema):
    id = fields.Integer()
    device_id = fields.Integer()
    site_id = fields.Integer()
    day = fields.Date()
    read_at = fields.DateTime()
    temperature_c = fields.Float()
    min_c = fields.Function(lambda r: None if r.min_tenths is None else rules.to_celsius(r.min_tenths), allow_none=True)
    max_c = fields.Function(lambda r: None if r.max_tenths is None else rules.to_celsius(r.max_tenths), allow_none=True)
    in_range = fields.Boolean()
    note = fields.String()
    recorded_by_id = fields.Integer(allow_none=True)
    recorded_at = fields.DateTime()


# --- served dishes and samples -----------------------------------------------------------------------
class ServedDishesCreateSchema(BaseSchema):
    site_id = Id(required=True)
    day = fields.Date(required=True)
    slot = fields.String(required=True, validate=validate.OneOf(SLOTS))
    dishes = fields.List(
        TrimmedString(validate=validate.Length(min=1, max=100)),
        load_default=list,
        validate=validate.Length(max=food_safety_service.MAX_DISHES_PER_SLOT),
        metadata={"description": "Replaces the earlier list."},
    )
    not_served = StrictBoolean(load_default=False, metadata={"description": "The slot was not served (no dishes)."})


class ServedDishesQueryArgsSchema(BaseSchema):
    site_id = QueryId(required=True)
    day = fields.Date(required=True)


class ServedDishesSchema(BaseSchema):
    site_id = fields.Integer()
    day = fields.Date()
    slot = fields.String()
    dishes = fields.List(fields.String())
    not_served = fields.Boolean()
    declared_by_id = fields.Integer(allow_none=True)
    declared_at = fields.DateTime()


class SampleCreateSchema(BaseSchema):
    site_id = Id(required=True)
    served_on = fields.Date(required=True)
    slot = fields.String(required=True, validate=validate.OneOf(SLOTS))
    dish = TrimmedString(required=True, validate=validate.Length(min=1, max=100))
    weight_g = StrictInteger(
        required=True,
        validate=validate.Range(min=1, max=rules.SAMPLE_MAX_WEIGHT_G, error="A weight in grams, 1 to 5000."),
        metadata={"description": f"At least {rules.SAMPLE_MIN_WEIGHT_G} g; less raises a deviation."},
    )
    container_sealed = StrictBoolean(required=True)
    device_id = Id(required=True, metadata={"description": "A sample refrigerator of the site."})
    stored_at = LocalDateTime(allow_none=True, load_default=None, metadata={"description": "Default: now."})
    taken_by_id = Id(allow_none=True, load_default=None, metadata={"description": "The staff member who took it."})
    note = TrimmedString(load_default="", validate=validate.Length(max=200))


class SampleDisposeSchema(BaseSchema):
    disposed_at = LocalDateTime(
        allow_none=True, load_default=None, metadata={"description": "Default: now; not before 48 hours."}
    )


class SampleQueryArgsSchema(BaseSchema):
    site_id = QueryId()
    date_from = fields.Date()
    date_to = fields.Date()
    slot = fields.String(validate=validate.OneOf(SLOTS))
    disposed = fields.Boolean()


class SampleSchema(BaseSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    served_on = fields.Date()
    slot = fields.String()
    dish = fields.String()
    weight_g = fields.Integer()
    container_sealed = fields.Boolean()
    stored_at = fields.DateTime()
    device_id = fields.Integer()
    taken_by_id = fields.Integer(allow_none=True)
    note = fields.String()
    recorded_by_id = fields.Integer(allow_none=True)
    recorded_at = fields.DateTime()
    disposable_from = fields.DateTime()
    disposed_at = fields.DateTime(allow_none=True)
    disposed_by_id = fields.Integer(allow_none=True)
    warnings = fields.Method("_warnings", metadata={"description": "sample_underweight, sample_unsealed"})

    def _warnings(self, sample) -> list[dict[str, str]]:
        warnings = []
        if sample.underweight:
            warnings.append(
                {"code": rules.SAMPLE_UNDERWEIGHT, "message": f"Under {rules.SAMPLE_MIN_WEIGHT_G} g: a deviation."}
            )
        if not sample.container_sealed:
            warnings.append({"code": rules.SAMPLE_UNSEALED, "message": "Not in a sealed container: a deviation."})
        return warnings


# --- the checklist -----------------------------------------------------------------------------------
class ChecklistEntryCreateSchema(BaseSchema):
    site_id = Id(required=True)
    day = fields.Date(required=True)
    item = fields.String(required=True, validate=validate.Length(min=1, max=40))
    passed = StrictBoolean(required=True)
    method = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(rules.DISINFECTION_METHODS),
        metadata={"description": "Tableware disinfection only."},
    )
    done_at = LocalDateTime(allow_none=True, load_default=None, metadata={"description": "Tableware disinfection."})
    note = TrimmedString(load_default="", validate=validate.Length(max=500))


class MorningCheckCreateSchema(BaseSchema):
    site_id = Id(required=True)
    day = fields.Date(required=True)
    staff_id = Id(required=True)
    present = StrictBoolean(required=True)
    symptoms = fields.List(fields.String(validate=validate.OneOf(rules.SYMPTOMS)), load_default=list)
    fit = StrictBoolean(allow_none=True, load_default=None, metadata={"description": "Present only: fit or sent home."})
    note = TrimmedString(load_default="", validate=validate.Length(max=500))
    checked_at = LocalDateTime(allow_none=True, load_default=None)


class ChecklistEntrySchema(BaseSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    day = fields.Date()
    item = fields.String()
    passed = fields.Boolean()
    method = fields.String(allow_none=True)
    done_at = fields.DateTime(allow_none=True)
    note = fields.String()
    recorded_by_id = fields.Integer(allow_none=True)
    recorded_at = fields.DateTime()


class MorningCheckSchema(BaseSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    day = fields.Date()
    staff_id = fields.Integer()
    present = fields.Boolean()
    symptoms = fields.List(fields.String())
    fit = fields.Boolean(allow_none=True)
    note = fields.String()
    checked_at = fields.DateTime()
    recorded_by_id = fields.Integer(allow_none=True)


class DayQueryArgsSchema(BaseSchema):
    site_id = QueryId(required=True)
    day = fields.Date(load_default=None, metadata={"description": "Default: today (Asia/Shanghai)."})


# --- the daily status --------------------------------------------------------------------------------
class DishStatusSchema(BaseSchema):
    dish = fields.String()
    sample = fields.Nested(SampleSchema, allow_none=True)


class SlotStatusSchema(BaseSchema):
    slot = fields.String()
    deadline = fields.DateTime()
    expected = fields.Boolean(metadata={"description": "The site is open for this meal that day."})
    declared = fields.Boolean()
    not_served = fields.Boolean()
    dishes = fields.List(fields.Nested(DishStatusSchema))
    missing = fields.List(fields.String(), metadata={"description": "Served dishes without a sample."})
    needs_declaration = fields.Boolean()


class ItemStatusSchema(BaseSchema):
    item = fields.Function(lambda status: status.item.key)
    label = fields.Function(lambda status: status.item.label)
    needs_method_and_time = fields.Function(lambda status: status.item.needs_method_and_time)
    entry = fields.Nested(ChecklistEntrySchema, allow_none=True, metadata={"description": "The latest answer."})
    due = fields.Boolean()


class StaffCheckStatusSchema(BaseSchema):
    staff_id = fields.Function(lambda status: status.staff.id)
    staff_name = fields.Function(lambda status: status.staff.name)
    job = fields.Function(lambda status: status.staff.job)
    certificate = fields.String(metadata={"description": "missing, expired, expiring or valid that day"})
    check = fields.Nested(MorningCheckSchema, allow_none=True, metadata={"description": "The latest check."})


class DeviceStatusSchema(BaseSchema):
    device = fields.Nested(DeviceSchema)
    readings = fields.List(fields.Nested(ReadingSchema))
    required = fields.Integer()
    due = fields.Integer(metadata={"description": "Readings still to take that day."})


class DeviationBriefSchema(BaseSchema):
    id = fields.Integer()
    kind = fields.String()
    day = fields.Date()
    occurred_at = fields.DateTime()
    found = fields.String()
    status = fields.String()


class DailyStatusSchema(BaseSchema):
    site_id = fields.Function(lambda status: status.site.id)
    site_name = fields.Function(lambda status: status.site.name)
    day = fields.Date()
    open = fields.Boolean(metadata={"description": "Active and not closed that day."})
    due_count = fields.Integer()
    checklist_deadline = fields.DateTime()
    readings_deadline = fields.DateTime()
    slots = fields.List(fields.Nested(SlotStatusSchema))
    checklist = fields.List(fields.Nested(ItemStatusSchema), attribute="items")
    morning_checks = fields.List(fields.Nested(StaffCheckStatusSchema), attribute="staff_checks")
    devices = fields.List(fields.Nested(DeviceStatusSchema))
    disposal_due = fields.List(fields.Nested(SampleSchema))
    open_deviations = fields.List(fields.Nested(DeviationBriefSchema))


# --- deviations ----------------------------------------------------------------------------------------
class DeviationCreateSchema(BaseSchema):
    site_id = Id(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(rules.REPORTABLE_KINDS))
    found = TrimmedString(required=True, validate=validate.Length(min=1, max=1000))
    occurred_at = LocalDateTime(allow_none=True, load_default=None, metadata={"description": "Default: now."})


class DeviationActionSchema(BaseSchema):
    cause = TrimmedString(required=True, validate=validate.Length(min=1, max=1000))
    action_taken = TrimmedString(required=True, validate=validate.Length(min=1, max=1000))
    affected_food = TrimmedString(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "What happened to the affected food (discarded, none affected, ...)."},
    )


class DeviationCorrectionSchema(DeviationActionSchema):
    reason = TrimmedString(required=True, validate=validate.Length(min=1, max=500))


class DeviationVerifySchema(BaseSchema):
    note = TrimmedString(load_default="", validate=validate.Length(max=1000))


class DeviationReturnSchema(BaseSchema):
    reason = TrimmedString(required=True, validate=validate.Length(min=1, max=1000))


class DeviationQueryArgsSchema(BaseSchema):
    site_id = QueryId()
    status = fields.String(validate=validate.OneOf(rules.DEVIATION_STATUSES))
    kind = fields.String(validate=validate.OneOf(rules.DEVIATION_KINDS))
    unverified = fields.Boolean()
    date_from = fields.Date()
    date_to = fields.Date()

    @validates_schema
    def _range(self, data, **kwargs):
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            raise ValidationError("Before date_from.", "date_to")


class DeviationEventSchema(BaseSchema):
    id = fields.Integer()
    event = fields.String()
    revision = fields.Integer(allow_none=True)
    cause = fields.String(allow_none=True)
    action_taken = fields.String(allow_none=True)
    affected_food = fields.String(allow_none=True)
    note = fields.String()
    user_id = fields.Integer(allow_none=True)
    at = fields.DateTime()


class DeviationSchema(BaseSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    district_id = fields.Integer()
    kind = fields.String()
    day = fields.Date()
    occurred_at = fields.DateTime()
    found = fields.String()
    details = fields.Dict()
    source_ref = fields.String(allow_none=True)
    status = fields.String()
    raised_by_id = fields.Integer(allow_none=True, metadata={"description": "null: raised by a rule."})
    raised_at = fields.DateTime()
    acknowledged_at = fields.DateTime(allow_none=True)
    acknowledged_by_id = fields.Integer(allow_none=True)
    verified_at = fields.DateTime(allow_none=True)
    verified_by_id = fields.Integer(allow_none=True)
    current_action = fields.Nested(
        DeviationEventSchema, allow_none=True, metadata={"description": "The latest revision of the action."}
    )
    events = fields.List(fields.Nested(DeviationEventSchema), metadata={"description": "Every step, in order."})


class SiteComplianceSchema(BaseSchema):
    site_id = fields.Function(lambda entry: entry.site.id)
    site_code = fields.Function(lambda entry: entry.site.code)
    site_name = fields.Function(lambda entry: entry.site.name)
    kind = fields.Function(lambda entry: entry.site.kind.value)
    district_id = fields.Function(lambda entry: entry.site.district_id)
    compliant = fields.Boolean()
    unverified = fields.Integer()
    open = fields.Integer()
    acknowledged = fields.Integer()
    action_recorded = fields.Integer(metadata={"description": "Waiting for an officer's verification."})
    oldest_unverified = fields.Date(allow_none=True)
    certificates_missing_or_expired = fields.Integer()
    certificates_expiring = fields.Integer()


class ComplianceQueryArgsSchema(BaseSchema):
    district_id = QueryId()
    on = fields.Date(load_default=None)
