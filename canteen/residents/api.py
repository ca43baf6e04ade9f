"""REST endpoints for the registry. Canteen staff get the counter summary, officers and admin
the masked full record; only `/reveal` returns a full ID number."""

from __future__ import annotations

import io
from typing import IO
from urllib.parse import quote

from flask import Response, jsonify
from flask.views import MethodView
from werkzeug.wsgi import FileWrapper

from canteen.core import clock, scoping
from canteen.core.api import Blueprint, one_page
from canteen.residents import imports as resident_imports
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
        return _for_caller(one_page(resident_service.search_residents, args, pagination_parameters), many=True)

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
        """All eligibility categories of a resident, past and present, with evidence (officers, admin)"""
        return resident_service.list_categories(resident_id)

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
        """Status history of a resident, with reasons (officers, admin)"""
        return resident_service.list_status_changes(resident_id)

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


# --- spreadsheets ------------------------------------------------------------------------------
class _TemporaryDownload(FileWrapper):
    """A temporary file streamed as the answer and closed when the server is done with it — or
    when the answer is dropped unread (a test client never closes its answers)."""

    def __del__(self) -> None:
        self.close()


def _xlsx(file: IO[bytes], name: str, ascii_name: str) -> Response:
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    response = Response(_TemporaryDownload(file), mimetype=resident_imports.XLSX_MIMETYPE, direct_passthrough=True)
    response.content_length = size
    response.headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return response


@blp.route("/import-template.xlsx")
class ImportTemplate(MethodView):
    @blp.response(200, content_type=resident_imports.XLSX_MIMETYPE, description="The Excel template (.xlsx)")
    def get(self):
        """Download the import template, with a sheet explaining every column (officers, admin)"""
        return _xlsx(
            io.BytesIO(resident_imports.build_import_template()), "居民导入模板.xlsx", "resident-import-template.xlsx"
        )


@blp.route("/import")
class Import(MethodView):
    @blp.arguments(schemas.ImportArgsSchema, location="query")
    @blp.arguments(schemas.SpreadsheetUploadSchema, location="files")
    @blp.response(201, schemas.ImportResultSchema)
    @blp.alt_response(422, schema=schemas.ImportRejectedSchema, description="Some rows are bad: nothing written")
    def post(self, args, files):
        """Import residents from an Excel workbook: every row or none (officers: own district; admin)

        Any bad row rejects the whole file (422 `import_rejected`) with each bad row and column and
        a reason in Chinese and English.
        """
        sheet = resident_imports.read_resident_workbook(files["file"].stream)
        return resident_imports.import_residents(sheet, default_district_id=args.get("district_id"))


@blp.route("/export.xlsx")
class Export(MethodView):
    @blp.arguments(schemas.ResidentQueryArgsSchema, location="query")
    @blp.response(200, content_type=resident_imports.XLSX_MIMETYPE, description="The registry as .xlsx, masked")
    def get(self, args):
        """Export the registry to Excel with ID numbers and phones masked (officers, admin)"""
        return _xlsx(
            resident_imports.export_residents(**args),
            f"居民名册-{clock.today():%Y%m%d}.xlsx",
            f"residents-{clock.today():%Y%m%d}.xlsx",
        )


@blp.route("/civil-affairs-feed")
class CivilAffairsFeed(MethodView):
    @blp.arguments(schemas.SpreadsheetUploadSchema, location="files")
    @blp.response(200, schemas.FeedResultSchema)
    def post(self, files):
        """Apply a civil-affairs list of deaths, moves out, 低保/特困 grants and revocations (officers, admin)

        Rows are matched by ID number; matched rows are applied with their effective dates, unmatched
        and conflicting rows are listed and left alone.
        """
        upload = files["file"]
        return resident_imports.apply_civil_affairs_feed(upload.stream, source_name=upload.filename or "")
