"""Organisation rules: who may create and change districts, communities and canteens."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from canteen.core import scoping
from canteen.core.errors import Conflict, field_error
from canteen.core.pagination import Page, paginate
from canteen.extensions import db
from canteen.org.models import Canteen, CanteenKind, Community, District


# --- districts -------------------------------------------------------------------------------
def list_districts(*, q: str | None = None, page: int = 1, page_size: int = 50) -> Page[District]:
    """Districts the caller can see (admin: all; others: their own), by division code."""
    statement = sa.select(District).order_by(District.code)
    if q:
        statement = statement.where(sa.or_(District.name.contains(q), District.code.startswith(q)))
    return paginate(statement, page=page, page_size=page_size)


def get_district(district_id: int) -> District:
    """One district inside the caller's scope, else 404 `district_not_found`."""
    return scoping.get_scoped(District, district_id)


def find_district_by_code(code: str) -> District | None:
    """The district with this division code, if the caller can see it."""
    return db.session.scalars(sa.select(District).where(District.code == code)).one_or_none()


def create_district(*, code: str, name: str) -> District:
    """Admin only. Division codes and names are unique in the city (409 `district_exists`)."""
    scoping.require_role(scoping.ADMIN)
    _refuse_duplicate(District, District.code == code, "code", "district_exists", f"District code {code} exists.")
    _refuse_duplicate(District, District.name == name, "name", "district_exists", f"District {name} exists.")
    district = District(code=code, name=name)
    db.session.add(district)
    db.session.flush()
    return district


def update_district(district_id: int, *, name: str | None = None) -> District:
    """Admin only: rename a district; the division code never changes (it is referenced by data)."""
    scoping.require_role(scoping.ADMIN)
    district = get_district(district_id)
    if name is not None and name != district.name:
        _refuse_duplicate(District, District.name == name, "name", "district_exists", f"District {name} exists.")
        district.name = name
    db.session.flush()
    return district


# --- communities -----------------------------------------------------------------------------
def list_communities(
    *, district_id: int | None = None, q: str | None = None, page: int = 1, page_size: int = 50
) -> Page[Community]:
    """Communities of the districts the caller can see."""
    statement = sa.select(Community).order_by(Community.district_id, Community.name)
    if district_id is not None:
        statement = statement.where(Community.district_id == district_id)
    if q:
        statement = statement.where(Community.name.contains(q))
    return paginate(statement, page=page, page_size=page_size)


def get_community(community_id: int) -> Community:
    """One community inside the caller's scope, else 404 `community_not_found`."""
    return scoping.get_scoped(Community, community_id)


def create_community(*, district_id: int, name: str) -> Community:
    """Admin, or an officer of that district. Names are unique within a district."""
    scoping.require_role(scoping.DISTRICT_OFFICER)
    district = get_district(district_id)
    _refuse_duplicate(
        Community,
        (Community.district_id == district.id) & (Community.name == name),
        "name",
        "community_exists",
        f"Community {name} exists in {district.name}.",
    )
    community = Community(district=district, name=name)
    db.session.add(community)
    db.session.flush()
    return community


def update_community(community_id: int, *, name: str) -> Community:
    """Admin, or an officer of the community's district: rename it."""
    scoping.require_role(scoping.DISTRICT_OFFICER)
    community = get_community(community_id)
    if name != community.name:
        _refuse_duplicate(
            Community,
            (Community.district_id == community.district_id) & (Community.name == name),
            "name",
            "community_exists",
            f"Community {name} exists.",
        )
        community.name = name
    db.session.flush()
    return community


# --- canteens --------------------------------------------------------------------------------
def list_canteens(
    *,
    district_id: int | None = None,
    community_id: int | None = None,
    kind: str | None = None,
    supplied_by_id: int | None = None,
    halal: bool | None = None,
    active: bool | None = None,
    q: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[Canteen]:
    """Canteens the caller can see: admin all, an officer their district's, staff their own
    canteen, kitchen staff their kitchen and the canteens it supplies."""
    statement = sa.select(Canteen).order_by(Canteen.code)
    filters = {
        Canteen.district_id: district_id,
        Canteen.community_id: community_id,
        Canteen.kind: CanteenKind(kind) if kind else None,
        Canteen.supplied_by_id: supplied_by_id,
        Canteen.halal: halal,
        Canteen.active: active,
    }
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(column == value)
    if q:
        statement = statement.where(sa.or_(Canteen.name.contains(q), Canteen.code.contains(q)))
    return paginate(statement, page=page, page_size=page_size)


def get_canteen(canteen_id: int) -> Canteen:
    """One canteen inside the caller's scope, else 404 `canteen_not_found`."""
    return scoping.get_scoped(Canteen, canteen_id)


def list_kitchens() -> list[Canteen]:
    """Every active central kitchen of the city, for choosing a canteen's supplier.

    Kitchens are public facilities and one may supply canteens across district lines, so an
    officer may name any of them (see `create_canteen`); only admin and officers choose suppliers.
    """
    scoping.require_role(scoping.DISTRICT_OFFICER)
    with scoping.unrestricted():
        return list(
            db.session.scalars(
                sa.select(Canteen)
                .where(Canteen.kind == CanteenKind.CENTRAL_KITCHEN, Canteen.active.is_(True))
                .order_by(Canteen.code)
            )
        )


def find_canteen_by_code(code: str) -> Canteen | None:
    """The canteen with this short code, if the caller can see it."""
    return db.session.scalars(sa.select(Canteen).where(Canteen.code == code.strip().upper())).one_or_none()


def create_canteen(*, code: str, name: str, kind: str, district_id: int, **fields: Any) -> Canteen:
    """Admin, or an officer of the district. Codes are upper case and unique city-wide (409 `canteen_code_taken`);
    the community must be in the same district; the supplier must be a central kitchen."""
    scoping.require_role(scoping.DISTRICT_OFFICER)
    district = get_district(district_id)
    code = code.strip().upper()  # "cd-dgdj" and "CD-DGDJ" are one code
    _refuse_duplicate(Canteen, Canteen.code == code, "code", "canteen_code_taken", f"Canteen code {code} is taken.")
    canteen = Canteen(code=code, name=name, kind=CanteenKind(kind), district=district)
    _apply_canteen_fields(canteen, fields)
    db.session.add(canteen)
    db.session.flush()
    return canteen


def update_canteen(canteen_id: int, **fields: Any) -> Canteen:
    """Admin, or an officer of the canteen's district; the code and district stay as they are."""
    scoping.require_role(scoping.DISTRICT_OFFICER)
    canteen = get_canteen(canteen_id)
    if "kind" in fields:
        new_kind = CanteenKind(fields.pop("kind"))
        if new_kind != canteen.kind and canteen.kind == CanteenKind.CENTRAL_KITCHEN and _supplies_any(canteen):
            raise field_error("kind", "This kitchen still supplies canteens.", code="kitchen_in_use")
        canteen.kind = new_kind
    _apply_canteen_fields(canteen, fields)
    db.session.flush()
    return canteen


def _apply_canteen_fields(canteen: Canteen, fields: dict[str, Any]) -> None:
    if "community_id" in fields:
        community_id = fields.pop("community_id")
        community = get_community(community_id) if community_id is not None else None
        if community is not None and community.district_id != canteen.district.id:
            raise field_error("community_id", "The community is in another district.", code="community_mismatch")
        canteen.community = community
    if "supplied_by_id" in fields:
        supplied_by_id = fields.pop("supplied_by_id")
        supplier = _get_kitchen(supplied_by_id) if supplied_by_id is not None else None
        if supplier is not None and canteen.kind == CanteenKind.CENTRAL_KITCHEN:
            raise field_error("supplied_by_id", "A central kitchen is not supplied by another kitchen.")
        canteen.supplied_by = supplier
    if "closed_dates" in fields:
        fields["closed_dates"] = sorted({d.isoformat() if isinstance(d, date) else d for d in fields["closed_dates"]})
    if "closed_weekdays" in fields:
        fields["closed_weekdays"] = sorted(fields["closed_weekdays"])
    for key, value in fields.items():
        if key not in _CANTEEN_PLAIN_FIELDS:
            raise field_error(key, "Unknown field.")
        setattr(canteen, key, value)


_CANTEEN_PLAIN_FIELDS = {
    "name",
    "address",
    "halal",
    "seats",
    "opening_hours",
    "closed_weekdays",
    "closed_dates",
    "active",
}


def _get_kitchen(canteen_id: int) -> Canteen:
    # a kitchen may serve several districts, so an officer names kitchens outside their own
    with scoping.unrestricted():
        kitchen = scoping.get_scoped(Canteen, canteen_id, code="kitchen_not_found")
    if kitchen.kind != CanteenKind.CENTRAL_KITCHEN:
        raise field_error("supplied_by_id", "Only a central kitchen can supply canteens.", code="not_a_kitchen")
    return kitchen


def _supplies_any(kitchen: Canteen) -> bool:
    with scoping.unrestricted():
        return db.session.scalar(sa.select(sa.exists().where(Canteen.supplied_by_id == kitchen.id))) or False


def _refuse_duplicate(model, condition, field: str, code: str, message: str) -> None:
    # checked without the caller's scope: a code taken in another district is still taken
    with scoping.unrestricted():
        taken = db.session.scalar(sa.select(sa.exists().where(condition)))
    if taken:
        raise Conflict(message, code=code, errors={field: [message]})
