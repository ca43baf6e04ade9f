"""REST endpoints for subsidy policies. There is no edit endpoint: a policy's amounts are never
changed once meals may have used them; a change is a new policy from a later date."""

from __future__ import annotations

from flask.views import MethodView

from canteen.core.api import Blueprint, one_page
from canteen.subsidies import schemas
from canteen.subsidies import service as subsidy_service

blp = Blueprint(
    "api_subsidies", __name__, url_prefix="/api/v1/subsidy-policies", description="Subsidy policies and their rules."
)


@blp.route("")
class Policies(MethodView):
    @blp.arguments(schemas.PolicyQueryArgsSchema, location="query")
    @blp.response(200, schemas.PolicySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List subsidy policies (admin: all; officers and canteen staff: their district's)"""
        return one_page(subsidy_service.list_policies, args, pagination_parameters)

    @blp.arguments(schemas.PolicyCreateSchema)
    @blp.response(201, schemas.PolicySchema)
    def post(self, data):
        """Create a subsidy policy with its rules (admin, officers of the district)

        Policies of one district never overlap (409 `policy_overlap`). A policy is never edited:
        to change amounts, end it and create a new policy from the next day.
        """
        return subsidy_service.create_policy(**data)


@blp.route("/<int:policy_id>")
class PolicyById(MethodView):
    @blp.response(200, schemas.PolicySchema)
    def get(self, policy_id):
        """Get a subsidy policy with its rules"""
        return subsidy_service.get_policy(policy_id)


@blp.route("/<int:policy_id>/end")
class EndPolicy(MethodView):
    @blp.arguments(schemas.PolicyEndSchema)
    @blp.response(200, schemas.PolicySchema)
    def post(self, data, policy_id):
        """End a subsidy policy on a date (admin, officers of the district)

        Refused before its start, beyond an earlier end (422), and before the last date a meal
        used it (409 `policy_in_use`).
        """
        return subsidy_service.end_policy(policy_id, **data)
