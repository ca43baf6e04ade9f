"""REST endpoints for the registry. Canteen staff get the counter summary, officers and admin
the masked full record; only `/reveal` returns a full ID number."""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView

from canteen.core import clock, scoping
from canteen.core.api import Blueprint
from canteen.residents import schemas
from canteen.residents import service as resident_service

blp = Blueprint("api_residents", __name__, url_prefix="/api/v1/residents", description="The elderly registry.")


def _for_caller(resident_or_list, *, many: bool = False):
    """Staff see the counter summary; everyone else the (masked) officer view (a ready response,
    which flask-smorest passes through with its pagination header)."""
    if scoping.current_scope().role == scoping.CANTEEN_STAFF:
        return jsonify(schemas.ResidentCounterSchema(many=many).dump(resident_or_list))
    return jsonify(schemas.ResidentSchema(many=many).dump(resident_or_list))


@blp.route("")
class Residents(MethodView):
    @blp.arguments(schemas.ResidentQueryArgsSchema, location="query")
    @blp.response(200, schemas.ResidentSchema(many=True))
    @blp.alt_response(
        200, schema=schemas.ResidentCounterSchema(many=True), description="For canteen staff", success=True
    )
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Search residents: card number, ID tail (≤ 6), name, pinyin or initials

        A full ID number in the URL is refused (400 `id_number_in_url`): use POST /lookup.
        """
        page = resident_service.search_residents(
            **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size
        )
        pagination_parameters.item_count = page.total
        return _for_caller(page.items, many=True)

    @blp.arguments(schemas.ResidentCreateSchema)
    @blp.response(201, schemas.ResidentSchema)
    def post(self, data):
        """Register a resident (officers of the district, admin)"""
        return resident_service.register_resident(**data)


@blp.route("/lookup")
class Lookup(MethodView):
    @blp.arguments(schemas.LookupSchema)
    @blp.response(200, schemas.ResidentSchema)
    @blp.alt_response(200, schema=schemas.ResidentCounterSchema, description="For canteen staff", success=True)
    def post(self, data):
        """Find one resident by full ID number or card number (in the body, never the URL)

        Canteen staff find any active resident of the city this way and get the counter summary.
        """
        return _for_caller(resident_service.lookup_resident(**data))


@blp.route("/<int:resident_id>")
class ResidentById(MethodView):
    @blp.response(200, schemas.ResidentSchema)
    @blp.alt_response(200, schema=schemas.ResidentCounterSchema, description="For canteen staff", success=True)
    def get(self, resident_id):
        """Get a resident"""
        return _for_caller(resident_service.get_resident(resident_id))

    @blp.arguments(schemas.ResidentUpdateSchema)
    @blp.response(200, schemas.ResidentSchema)
    def patch(self, data, resident_id):
        """Correct a resident's contact, placement, diet or consent (officers, admin)"""
        return resident_service.update_resident(resident_id, **data)


@blp.route("/<int:resident_id>/reveal")
class Reveal(MethodView):
    @blp.response(200, schemas.RevealSchema)
    def post(self, resident_id):
        """Read the full ID number and phone (officers, admin; written to the audit log)"""
        return resident_service.reveal_identity(resident_id)


@blp.route("/<int:resident_id>/categories")
class Categories(MethodView):
    @blp.response(200, schemas.CategorySchema(many=True))
    def get(self, resident_id):
        """All eligibility categories of a resident, past and present"""
        return resident_service.get_resident(resident_id).categories

    @blp.arguments(schemas.CategoryCreateSchema)
    @blp.response(201, schemas.CategorySchema)
    def post(self, data, resident_id):
        """Record an eligibility category (officers, admin)"""
        return resident_service.add_category(resident_id, **data)


@blp.route("/<int:resident_id>/categories/<int:category_id>")
class CategoryById(MethodView):
    @blp.arguments(schemas.CategoryEndSchema)
    @blp.response(200, schemas.CategorySchema)
    def patch(self, data, resident_id, category_id):
        """End a category (officers, admin)"""
        return resident_service.end_category(resident_id, category_id, **data)


@blp.route("/<int:resident_id>/held-categories")
class HeldCategories(MethodView):
    @blp.arguments(schemas.CategoriesOnQuerySchema, location="query")
    @blp.response(200, schemas.HeldCategoriesSchema)
    def get(self, args, resident_id):
        """The categories a resident holds on a day, age categories included"""
        day = args.get("on") or clock.today()
        resident = resident_service.get_resident(resident_id)
        return {"resident_id": resident.id, "on": day, "categories": resident_service.categories_on(resident, day)}


@blp.route("/<int:resident_id>/status")
class Status(MethodView):
    @blp.response(200, schemas.StatusChangeSchema(many=True))
    def get(self, resident_id):
        """Status history of a resident"""
        return resident_service.get_resident(resident_id).status_changes

    @blp.arguments(schemas.StatusCreateSchema)
    @blp.response(201, schemas.StatusChangeSchema)
    def post(self, data, resident_id):
        """Record a status change with the date it took effect (officers, admin)"""
        return resident_service.set_status(resident_id, **data)


@blp.route("/<int:resident_id>/card")
class Card(MethodView):
    @blp.arguments(schemas.CardReplaceSchema)
    @blp.response(201, schemas.CardSchema)
    def post(self, data, resident_id):
        """Issue a new meal card, blocking the current one (officers, admin)"""
        return resident_service.replace_card(resident_id, **data)


@blp.route("/<int:resident_id>/card/block")
class CardBlock(MethodView):
    @blp.arguments(schemas.CardBlockSchema)
    @blp.response(200, schemas.CardSchema)
    def post(self, data, resident_id):
        """Block the active meal card: it finds nobody from now on (officers, admin)"""
        return resident_service.block_card(resident_id, **data)
