"""REST endpoints for food safety under /api/v1/food-safety: site staff and certificates, devices and
readings, served dishes and retained samples, the daily checklist and morning checks, the day's
status, deviations and their workflow, and the compliance overview.

Records are never edited or deleted: a correction is a new record (the latest counts), a sample
is disposed of (not deleted), a deviation's action is corrected by a new revision.
"""

from __future__ import annotations

from flask.views import MethodView

from canteen.core.api import Blueprint, one_page
from canteen.food_safety import schemas
from canteen.food_safety import service as food_safety_service

blp = Blueprint(
    "api_food_safety",
    __name__,
    url_prefix="/api/v1/food-safety",
    description="Food safety at every site: samples, checklists, temperatures, certificates, deviations.",
)


# --- site staff and certificates ------------------------------------------------------------------
@blp.route("/staff")
class Staff(MethodView):
    @blp.arguments(schemas.StaffQueryArgsSchema, location="query")
    @blp.response(200, schemas.StaffSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List site staff (staff: their site's; officers: their district's; admin: all)"""
        return one_page(food_safety_service.list_staff, args, pagination_parameters)

    @blp.arguments(schemas.StaffCreateSchema)
    @blp.response(201, schemas.StaffSchema)
    def post(self, data):
        """Register a person working at a site (staff of the site, admin)"""
        return food_safety_service.add_staff(**data)


@blp.route("/staff/<int:staff_id>")
class StaffById(MethodView):
    @blp.response(200, schemas.StaffSchema)
    def get(self, staff_id):
        """Get a staff member with their current health certificate"""
        return food_safety_service.get_staff(staff_id)

    @blp.arguments(schemas.StaffUpdateSchema)
    @blp.response(200, schemas.StaffSchema)
    def patch(self, data, staff_id):
        """Change a staff member's name, job or phone, or record the day they left (staff of the site, admin)"""
        return food_safety_service.update_staff(staff_id, **data)


@blp.route("/staff/<int:staff_id>/certificates")
class StaffCertificates(MethodView):
    @blp.arguments(schemas.CertificateCreateSchema)
    @blp.response(201, schemas.CertificateSchema)
    def post(self, data, staff_id):
        """Record a health certificate (健康证), valid one year (staff of the site, admin)

        The certificate recorded last is current; 422 `certificate_too_long` beyond one year.
        """
        return food_safety_service.add_certificate(staff_id, **data)


@blp.route("/certificate-alerts")
class CertificateAlerts(MethodView):
    @blp.arguments(schemas.CertificateAlertQueryArgsSchema, location="query")
    @blp.response(200, schemas.CertificateAlertSchema(many=True))
    def get(self, args):
        """Working staff whose certificate is missing, expired or expiring within 30 days (or `within_days`)"""
        return food_safety_service.list_certificate_alerts(**args)


# --- devices and readings ----------------------------------------------------------------------------
@blp.route("/devices")
class Devices(MethodView):
    @blp.arguments(schemas.DeviceQueryArgsSchema, location="query")
    @blp.response(200, schemas.DeviceSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List refrigerators, freezers and sample refrigerators with their limits"""
        return one_page(food_safety_service.list_devices, args, pagination_parameters)

    @blp.arguments(schemas.DeviceCreateSchema)
    @blp.response(201, schemas.DeviceSchema)
    def post(self, data):
        """Register a device (staff of the site, admin); 409 `device_exists` for a name taken at the site"""
        return food_safety_service.add_device(**data)


@blp.route("/devices/<int:device_id>")
class DeviceById(MethodView):
    @blp.response(200, schemas.DeviceSchema)
    def get(self, device_id):
        """Get a device"""
        return food_safety_service.get_device(device_id)

    @blp.arguments(schemas.DeviceUpdateSchema)
    @blp.response(200, schemas.DeviceSchema)
    def patch(self, data, device_id):
        """Rename a device or take it out of service from a day (staff of the site, admin)"""
        return food_safety_service.update_device(device_id, **data)


@blp.route("/readings")
class Readings(MethodView):
    @blp.arguments(schemas.ReadingQueryArgsSchema, location="query")
    @blp.response(200, schemas.ReadingSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List temperature readings, newest first"""
        return one_page(food_safety_service.list_readings, args, pagination_parameters)

    @blp.arguments(schemas.ReadingCreateSchema)
    @blp.response(201, schemas.ReadingSchema)
    def post(self, data):
        """Record a temperature reading (staff of the site, admin)

        Judged against the device kind's limits, both inclusive; out of range raises a
        `temperature_out_of_range` deviation at once.
        """
        return food_safety_service.record_reading(**data)


# --- served dishes and samples --------------------------------------------------------------------------
@blp.route("/served-dishes")
class ServedDishes(MethodView):
    @blp.arguments(schemas.ServedDishesQueryArgsSchema, location="query")
    @blp.response(200, schemas.ServedDishesSchema(many=True))
    def get(self, args):
        """The dishes declared served in each slot of a site's day"""
        return food_safety_service.list_served_dishes(**args)

    @blp.arguments(schemas.ServedDishesCreateSchema)
    @blp.response(200, schemas.ServedDishesSchema)
    def post(self, data):
        """Declare the dishes served in a slot, replacing the earlier list, or the slot not served (staff, admin)

        Each served dish — declared here or having a sample — needs a retained sample by the
        slot's deadline. 409 `slot_has_samples` when declaring a slot with samples not served.
        """
        return food_safety_service.declare_served_dishes(**data)


@blp.route("/samples")
class Samples(MethodView):
    @blp.arguments(schemas.SampleQueryArgsSchema, location="query")
    @blp.response(200, schemas.SampleSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List retained samples, newest first"""
        return one_page(food_safety_service.list_samples, args, pagination_parameters)

    @blp.arguments(schemas.SampleCreateSchema)
    @blp.response(201, schemas.SampleSchema)
    def post(self, data):
        """Record the retained sample (留样) of a dish (staff of the site, admin)

        Under 125 g or unsealed: recorded, with a warning and a deviation raised. 409
        `sample_exists` for a second sample of the dish in the slot.
        """
        return food_safety_service.record_sample(**data)


@blp.route("/samples/<int:sample_id>")
class SampleById(MethodView):
    @blp.response(200, schemas.SampleSchema)
    def get(self, sample_id):
        """Get a retained sample"""
        return food_safety_service.get_sample(sample_id)


@blp.route("/samples/<int:sample_id>/dispose")
class DisposeSample(MethodView):
    @blp.arguments(schemas.SampleDisposeSchema)
    @blp.response(200, schemas.SampleSchema)
    def post(self, data, sample_id):
        """Record a sample's disposal (staff of the site, admin); 409 `sample_retention_not_over` before 48 hours"""
        return food_safety_service.dispose_sample(sample_id, **data)


# --- the checklist and the day ------------------------------------------------------------------------------
@blp.route("/checklist-entries")
class ChecklistEntries(MethodView):
    @blp.arguments(schemas.ChecklistEntryCreateSchema)
    @blp.response(201, schemas.ChecklistEntrySchema)
    def post(self, data):
        """Answer an item of the day's checklist (staff of the site, admin); the latest answer counts"""
        return food_safety_service.record_checklist_entry(**data)


@blp.route("/morning-checks")
class MorningChecks(MethodView):
    @blp.arguments(schemas.MorningCheckCreateSchema)
    @blp.response(201, schemas.MorningCheckSchema)
    def post(self, data):
        """Record a staff member's morning health check (晨检) (staff of the site, admin)

        422 `symptoms_not_fit` for someone with symptoms marked fit, `certificate_expired` /
        `certificate_missing` without a certificate valid that day.
        """
        return food_safety_service.record_morning_check(**data)


@blp.route("/day")
class Day(MethodView):
    @blp.arguments(schemas.DayQueryArgsSchema, location="query")
    @blp.response(200, schemas.DailyStatusSchema)
    def get(self, args):
        """A site's day: samples per served dish, checklist, morning checks and readings, what is still due"""
        return food_safety_service.daily_status(args["site_id"], args["day"])


# --- deviations ------------------------------------------------------------------------------------------------
@blp.route("/deviations")
class Deviations(MethodView):
    @blp.arguments(schemas.DeviationQueryArgsSchema, location="query")
    @blp.response(200, schemas.DeviationSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List deviations, newest first (staff: their site's; officers: their district's; admin: all)"""
        return one_page(food_safety_service.list_deviations, args, pagination_parameters)

    @blp.arguments(schemas.DeviationCreateSchema)
    @blp.response(201, schemas.DeviationSchema)
    def post(self, data):
        """Report a breach seen at a site (its staff, officers of its district, admin)"""
        return food_safety_service.report_deviation(**data)


@blp.route("/deviations/<int:deviation_id>")
class DeviationById(MethodView):
    @blp.response(200, schemas.DeviationSchema)
    def get(self, deviation_id):
        """Get a deviation with every step of its workflow"""
        return food_safety_service.get_deviation(deviation_id)


@blp.route("/deviations/<int:deviation_id>/acknowledge")
class AcknowledgeDeviation(MethodView):
    @blp.response(200, schemas.DeviationSchema)
    def post(self, deviation_id):
        """Acknowledge an open deviation (staff of the site, admin)"""
        return food_safety_service.acknowledge_deviation(deviation_id)


@blp.route("/deviations/<int:deviation_id>/action")
class DeviationAction(MethodView):
    @blp.arguments(schemas.DeviationActionSchema)
    @blp.response(200, schemas.DeviationSchema)
    def post(self, data, deviation_id):
        """Record the cause, the action taken and what happened to the affected food (staff of the site, admin)"""
        return food_safety_service.record_deviation_action(deviation_id, **data)


@blp.route("/deviations/<int:deviation_id>/corrections")
class DeviationCorrections(MethodView):
    @blp.arguments(schemas.DeviationCorrectionSchema)
    @blp.response(200, schemas.DeviationSchema)
    def post(self, data, deviation_id):
        """Correct the recorded action before verification: a new revision with the reason (staff, admin)"""
        return food_safety_service.correct_deviation_action(deviation_id, **data)


@blp.route("/deviations/<int:deviation_id>/verify")
class VerifyDeviation(MethodView):
    @blp.arguments(schemas.DeviationVerifySchema)
    @blp.response(200, schemas.DeviationSchema)
    def post(self, data, deviation_id):
        """Verify the action recorded (officers of the site's district, admin)"""
        return food_safety_service.verify_deviation(deviation_id, **data)


@blp.route("/deviations/<int:deviation_id>/return")
class ReturnDeviation(MethodView):
    @blp.arguments(schemas.DeviationReturnSchema)
    @blp.response(200, schemas.DeviationSchema)
    def post(self, data, deviation_id):
        """Send the recorded action back with a reason (officers of the site's district, admin)"""
        return food_safety_service.return_deviation(deviation_id, **data)


@blp.route("/compliance")
class Compliance(MethodView):
    @blp.arguments(schemas.ComplianceQueryArgsSchema, location="query")
    @blp.response(200, schemas.SiteComplianceSchema(many=True))
    def get(self, args):
        """Each site's unverified deviations and certificate problems; sites not compliant first"""
        return food_safety_service.site_compliance(**args)
