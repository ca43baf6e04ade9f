"""Organisation rules through the service layer."""

from datetime import date

import pytest

from canteen.core import scoping
from canteen.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from canteen.org import service as org_service
from canteen.org.models import CanteenKind
from tests.factories import CanteenFactory, CommunityFactory, DistrictFactory, KitchenFactory, canteen_staff, officer


def test_officer_creates_canteen_in_own_district_only(as_user):
    district, other = DistrictFactory(), DistrictFactory()
    community = CommunityFactory(district=district)
    kitchen = KitchenFactory(district=other)  # a kitchen may supply across district lines
    with as_user(officer(district)):
        canteen = org_service.create_canteen(
            code="CD-NEW",
            name="新食堂",
            kind="canteen",
            district_id=district.id,
            community_id=community.id,
            supplied_by_id=kitchen.id,
            halal=True,
            seats=30,
            opening_hours={"lunch": ["11:00", "13:00"]},
            closed_weekdays=[6, 5],
            closed_dates=[date(2026, 10, 1), date(2026, 10, 1)],
        )
        assert canteen.supplied_by_id == kitchen.id and canteen.halal
        assert canteen.closed_weekdays == [5, 6] and canteen.closed_dates == ["2026-10-01"]
        assert canteen.is_closed_on(date(2026, 10, 1)) and canteen.is_closed_on(date(2026, 11, 29))
        assert not canteen.is_closed_on(date(2026, 11, 23))
        with pytest.raises(NotFound):
            org_service.create_canteen(code="CD-X", name="x", kind="canteen", district_id=other.id)


def test_community_must_be_in_the_canteens_district(as_user):
    district, other = DistrictFactory(), DistrictFactory()
    with as_user(officer(district)), pytest.raises(NotFound):
        # the other district's community is out of scope for this officer
        org_service.create_canteen(
            code="C-1",
            name="x",
            kind="canteen",
            district_id=district.id,
            community_id=CommunityFactory(district=other).id,
        )
    with pytest.raises(ValidationFailed) as mismatch:
        org_service.create_canteen(
            code="C-2",
            name="x",
            kind="canteen",
            district_id=district.id,
            community_id=CommunityFactory(district=other).id,
        )
    assert mismatch.value.code == "community_mismatch"


def test_kitchen_rules():
    district = DistrictFactory()
    kitchen = KitchenFactory(district=district)
    canteen = CanteenFactory(district=district, supplied_by=kitchen)
    with pytest.raises(ValidationFailed) as not_kitchen:
        org_service.create_canteen(
            code="C-3", name="x", kind="canteen", district_id=district.id, supplied_by_id=canteen.id
        )
    assert not_kitchen.value.code == "not_a_kitchen"
    with pytest.raises(ValidationFailed) as in_use:
        org_service.update_canteen(kitchen.id, kind="canteen")
    assert in_use.value.code == "kitchen_in_use"
    with pytest.raises(ValidationFailed):
        org_service.update_canteen(KitchenFactory(district=district).id, supplied_by_id=kitchen.id)
    assert kitchen.kind == CanteenKind.CENTRAL_KITCHEN


def test_codes_are_unique_across_scopes(as_user):
    district, other = DistrictFactory(), DistrictFactory()
    CanteenFactory(district=other, code="DUP-1")
    with as_user(officer(district)), pytest.raises(Conflict) as taken:
        org_service.create_canteen(code="DUP-1", name="x", kind="canteen", district_id=district.id)
    assert taken.value.code == "canteen_code_taken"


def test_staff_cannot_change_organisation(as_user):
    canteen = CanteenFactory()
    with as_user(canteen_staff(canteen)):
        with pytest.raises(Forbidden):
            org_service.update_canteen(canteen.id, seats=99)
        with pytest.raises(Forbidden):
            org_service.create_community(district_id=canteen.district_id, name="x")
        assert org_service.get_canteen(canteen.id) == canteen


def test_district_rename_keeps_code(as_user):
    district = DistrictFactory(code="630177", name="旧名区")
    assert org_service.update_district(district.id, name="新名区").code == "630177"
    with as_user(officer(district)), pytest.raises(Forbidden):
        org_service.update_district(district.id, name="再改区")
    with pytest.raises(Conflict):
        org_service.create_district(code="630177", name="别的区")
    assert scoping.current_scope().is_system


def test_officers_choose_suppliers_among_every_kitchen(as_user):
    district, other = DistrictFactory(), DistrictFactory()
    near, far = KitchenFactory(district=district), KitchenFactory(district=other)
    KitchenFactory(district=other, active=False)
    with as_user(officer(district)):
        assert {k.id for k in org_service.list_kitchens()} == {near.id, far.id}
    with as_user(canteen_staff(CanteenFactory(district=district))), pytest.raises(Forbidden):
        org_service.list_kitchens()
