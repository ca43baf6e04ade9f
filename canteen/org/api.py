"""REST endpoints for districts, communities and canteens."""

from __future__ import annotations

from flask.views import MethodView

from canteen.core.api import Blueprint, one_page
from canteen.org import schemas
from canteen.org import service as org_service

blp = Blueprint("api_org", __name__, url_prefix="/api/v1", description="Districts, communities and canteens.")


@blp.route("/districts")
class Districts(MethodView):
    @blp.arguments(schemas.DistrictQueryArgsSchema, location="query")
    @blp.response(200, schemas.DistrictSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List districts"""
        return one_page(org_service.list_districts, args, pagination_parameters)

    @blp.arguments(schemas.DistrictCreateSchema)
    @blp.response(201, schemas.DistrictSchema)
    def post(self, data):
        """Create a district (admin)"""
        return org_service.create_district(**data)


@blp.route("/districts/<int:district_id>")
class DistrictById(MethodView):
    @blp.response(200, schemas.DistrictSchema)
    def get(self, district_id):
        """Get a district"""
        return org_service.get_district(district_id)

    @blp.arguments(schemas.DistrictUpdateSchema)
    @blp.response(200, schemas.DistrictSchema)
    def patch(self, data, district_id):
        """Rename a district (admin)"""
        return org_service.update_district(district_id, **data)


@blp.route("/communities")
class Communities(MethodView):
    @blp.arguments(schemas.CommunityQueryArgsSchema, location="query")
    @blp.response(200, schemas.CommunitySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List communities"""
        return one_page(org_service.list_communities, args, pagination_parameters)

    @blp.arguments(schemas.CommunityCreateSchema)
    @blp.response(201, schemas.CommunitySchema)
    def post(self, data):
        """Create a community (admin, district officer)"""
        return org_service.create_community(**data)


@blp.route("/communities/<int:community_id>")
class CommunityById(MethodView):
    @blp.response(200, schemas.CommunitySchema)
    def get(self, community_id):
        """Get a community"""
        return org_service.get_community(community_id)

    @blp.arguments(schemas.CommunityUpdateSchema)
    @blp.response(200, schemas.CommunitySchema)
    def patch(self, data, community_id):
        """Rename a community (admin, district officer)"""
        return org_service.update_community(community_id, **data)


@blp.route("/canteens")
class Canteens(MethodView):
    @blp.arguments(schemas.CanteenQueryArgsSchema, location="query")
    @blp.response(200, schemas.CanteenSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List canteens and central kitchens"""
        return one_page(org_service.list_canteens, args, pagination_parameters)

    @blp.arguments(schemas.CanteenCreateSchema)
    @blp.response(201, schemas.CanteenSchema)
    def post(self, data):
        """Create a canteen, meal point or central kitchen (admin, district officer)"""
        return org_service.create_canteen(**data)


@blp.route("/canteens/<int:canteen_id>")
class CanteenById(MethodView):
    @blp.response(200, schemas.CanteenSchema)
    def get(self, canteen_id):
        """Get a canteen"""
        return org_service.get_canteen(canteen_id)

    @blp.arguments(schemas.CanteenUpdateSchema)
    @blp.response(200, schemas.CanteenSchema)
    def patch(self, data, canteen_id):
        """Change a canteen (admin, district officer)"""
        return org_service.update_canteen(canteen_id, **data)
