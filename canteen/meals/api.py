"""REST endpoints for meals: record (with an Idempotency-Key), record an offline batch, void,
list, and the daily cash-up. No edit and no delete: a wrong meal is voided and recorded again."""

from __future__ import annotations

from dataclasses import asdict

from flask import jsonify, make_response, request
from flask.views import MethodView

from canteen.core.api import Blueprint, one_page
from canteen.core.errors import CanteenError
from canteen.meals import schemas
from canteen.meals import service as meal_service

blp = Blueprint("api_meals", __name__, url_prefix="/api/v1/meals", description="Meals recorded at the counter.")

IDEMPOTENCY_HEADER = {
    "Idempotency-Key": {
        "description": "A new random key (a UUID) per meal; a retry sends the same key with the same body.",
        "schema": {"type": "string", "maxLength": 255},
        "required": True,
    }
}


def idempotency_key_header() -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not meal_service.valid_key(key):
        message = "Send an Idempotency-Key header: a new random key (1–255 visible ASCII characters) per meal."
        raise CanteenError(message, code="idempotency_key_missing", errors={"Idempotency-Key": [message]})
    return key


@blp.route("")
class Meals(MethodView):
    @blp.arguments(schemas.MealQueryArgsSchema, location="query")
    @blp.response(200, schemas.MealSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List meals (staff: their canteen's; officers: their district's; admin: all), newest first"""
        return one_page(meal_service.list_meals, args, pagination_parameters)

    @blp.arguments(schemas.MealCreateSchema)
    @blp.response(201, schemas.MealSchema)
    @blp.alt_response(409, description="meal_already_recorded, month_frozen or idempotency_in_flight")
    @blp.doc(parameters=[{"in": "header", "name": name, **spec} for name, spec in IDEMPOTENCY_HEADER.items()])
    def post(self, data):
        """Record a meal (canteen staff of the canteen, admin)

        The subsidy is decided once, by the best rule of the canteen's district policy, and stored
        with the rule. One valid meal per resident, date and slot across all canteens (409
        `meal_already_recorded`). The same Idempotency-Key with the same body replays the first
        answer; with another body it is 422 `idempotency_key_reused`.
        """
        answer = meal_service.record_meal_once(idempotency_key_header(), data, render=schemas.MealSchema().dump)
        # the answer is already JSON (a replay is the stored first answer): sent as it is
        response = make_response(jsonify(answer.body), answer.status)
        if answer.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response


@blp.route("/batch")
class MealBatch(MethodView):
    @blp.arguments(schemas.BatchSchema)
    @blp.response(200, schemas.BatchResultSchema)
    def post(self, data):
        """Record up to 500 meals queued by an offline counter (canteen staff, admin)

        Each item carries its own `idempotency_key` and is recorded in its own savepoint; the
        answer lists each item as `created`, `replayed` or `refused` with its error.
        """
        results = meal_service.record_meal_batch(
            data["items"], load=schemas.MealCreateSchema().load, render=schemas.MealSchema().dump
        )
        return {"results": [asdict(result) for result in results]}


@blp.route("/cash-up")
class CashUp(MethodView):
    @blp.arguments(schemas.CashUpArgsSchema, location="query")
    @blp.response(200, schemas.CashUpSchema)
    def get(self, args):
        """A canteen's daily cash-up per counter account: meals, copay by payment method, voids"""
        return meal_service.cash_up(args["canteen_id"], args["day"])


@blp.route("/<int:meal_id>")
class MealById(MethodView):
    @blp.response(200, schemas.MealSchema)
    def get(self, meal_id):
        """Get a meal"""
        return meal_service.get_meal(meal_id)


@blp.route("/<int:meal_id>/void")
class VoidMeal(MethodView):
    @blp.arguments(schemas.VoidSchema)
    @blp.response(200, schemas.MealSchema)
    def post(self, data, meal_id):
        """Void a meal with a reason (staff of its canteen, officers of its district, admin)

        The record stays, marked void with who and when. Refused in a month frozen by a
        settlement (409 `month_frozen`).
        """
        return meal_service.void_meal(meal_id, **data)
