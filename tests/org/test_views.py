"""Pages to manage districts, communities and canteens: what each role may open, what the forms
write, and that refused input is explained and writes nothing."""

from __future__ import annotations

import pytest

from canteen.core import scoping
from canteen.org import service as org_service
from tests.factories import (
    CanteenFactory,
    CommunityFactory,
    DistrictFactory,
    KitchenFactory,
    admin,
    canteen_staff,
    kitchen_staff,
    officer,
)
from tests.pages import text


def _find_district(code: str):
    with scoping.unrestricted():
        return org_service.find_district_by_code(code)


def _find_canteen(code: str):
    with scoping.unrestricted():
        return org_service.find_canteen_by_code(code)


# --- districts -------------------------------------------------------------------------------
def test_admin_creates_a_district(client, login):
    login(admin())
    response = client.post("/org/districts/new", data={"code": "630105", "name": "城北区"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/org/districts"
    district = _find_district("630105")
    assert district is not None and district.name == "城北区"
    listing = text(client.get("/org/districts"))
    assert "城北区" in listing and "已创建" in listing


def test_invalid_district_code_is_explained_and_nothing_is_written(client, login):
    login(admin())
    response = client.post("/org/districts/new", data={"code": "12ab", "name": "城北区"})
    assert response.status_code == 422
    html = text(response)
    assert "区划代码为 6 位数字" in html
    assert 'value="12ab"' in html, "what was typed is kept for correcting"
    assert _find_district("12ab") is None
    with scoping.unrestricted():
        assert org_service.list_districts(q="城北区").total == 0

    client.get("/org/districts?lang=en")
    assert "A division code is 6 digits" in text(client.post("/org/districts/new", data={"code": "12ab", "name": "x"}))


def test_duplicate_district_is_refused_with_the_service_message(client, login):
    existing = DistrictFactory(code="630106", name="城西区")
    login(admin())
    response = client.post("/org/districts/new", data={"code": existing.code, "name": "另一个区"})
    assert response.status_code == 422
    assert "District code 630106 exists." in text(response)
    with scoping.unrestricted():
        assert org_service.list_districts(q="另一个区").total == 0


def test_admin_renames_a_district(client, login):
    district = DistrictFactory(name="湟中县")
    login(admin())
    response = client.post(f"/org/districts/{district.id}/edit", data={"name": "湟中区", "code": "999999"})
    assert response.status_code == 302
    assert district.name == "湟中区"
    assert district.code != "999999", "the division code never changes"


def test_officer_sees_only_the_own_district_and_cannot_create_or_rename(client, login):
    own, other = DistrictFactory(name="城东区"), DistrictFactory(name="城西区")
    login(officer(own))
    listing = text(client.get("/org/districts"))
    assert "城东区" in listing and "城西区" not in listing
    assert client.get("/org/districts/new").status_code == 403
    assert client.post("/org/districts/new", data={"code": "630188", "name": "新区"}).status_code == 403
    assert client.post(f"/org/districts/{own.id}/edit", data={"name": "改名"}).status_code == 403
    assert _find_district("630188") is None
    assert own.name == "城东区" and other.name == "城西区"


# --- communities -----------------------------------------------------------------------------
def test_officer_adds_and_renames_a_community_of_the_own_district(client, login):
    district = DistrictFactory()
    login(officer(district))
    response = client.post(f"/org/districts/{district.id}/communities", data={"name": "南关街社区"})
    assert response.status_code == 302
    with scoping.unrestricted():
        (community,) = org_service.list_communities(district_id=district.id).items
    assert community.name == "南关街社区"

    response = client.post(f"/org/communities/{community.id}/edit", data={"name": "南关社区"})
    assert response.status_code == 302
    assert community.name == "南关社区"
    assert "南关社区" in text(client.get(f"/org/districts/{district.id}/communities"))


def test_duplicate_community_name_is_refused(client, login):
    community = CommunityFactory(name="东关社区")
    login(admin())
    response = client.post(f"/org/districts/{community.district_id}/communities", data={"name": "东关社区"})
    assert response.status_code == 422
    assert "东关社区" in text(response)
    with scoping.unrestricted():
        assert org_service.list_communities(district_id=community.district_id).total == 1


def test_officer_cannot_reach_another_districts_communities(client, login):
    own, other = DistrictFactory(), DistrictFactory()
    community = CommunityFactory(district=other, name="别区社区")
    login(officer(own))
    assert client.get(f"/org/districts/{other.id}/communities").status_code == 404
    assert client.post(f"/org/districts/{other.id}/communities", data={"name": "偷建社区"}).status_code == 404
    assert client.post(f"/org/communities/{community.id}/edit", data={"name": "改名"}).status_code == 404
    assert community.name == "别区社区"


# --- canteens --------------------------------------------------------------------------------
def _canteen_form(**overrides):
    form = {
        "code": "XN-101",
        "name": "南关街爱老幸福食堂",
        "kind": "canteen",
        "address": "南关街 12 号",
        "halal": "1",
        "seats": "36",
        "opening_hours_breakfast": "",
        "opening_hours_lunch": "11:00–13:30",
        "opening_hours_dinner": "17:00-18:30",
        "closed_weekdays": ["5", "6"],
        "closed_dates": "2026-10-02，2026-10-01",
    }
    form.update(overrides)
    return form


def test_admin_creates_a_canteen_with_hours_and_closed_days(client, login):
    district = DistrictFactory()
    community = CommunityFactory(district=district)
    kitchen = KitchenFactory(district=district)
    login(admin())
    assert client.get("/org/canteens/new").status_code == 200
    response = client.post(
        "/org/canteens/new",
        data=_canteen_form(district_id=district.id, community_id=community.id, supplied_by_id=kitchen.id),
    )
    assert response.status_code == 302, text(response)
    canteen = _find_canteen("XN-101")
    assert canteen is not None
    assert (canteen.name, canteen.kind.value, canteen.district_id) == ("南关街爱老幸福食堂", "canteen", district.id)
    assert (canteen.community_id, canteen.supplied_by_id) == (community.id, kitchen.id)
    assert canteen.halal is True and canteen.seats == 36
    assert canteen.opening_hours == {"lunch": ["11:00", "13:30"], "dinner": ["17:00", "18:30"]}
    assert canteen.closed_weekdays == [5, 6]
    assert canteen.closed_dates == ["2026-10-01", "2026-10-02"]


def test_invalid_canteen_input_is_explained_and_nothing_is_written(client, login):
    district = DistrictFactory()
    login(admin())
    client.get("/org/canteens?lang=en")
    response = client.post(
        "/org/canteens/new",
        data=_canteen_form(
            district_id=district.id,
            seats="many",
            opening_hours_lunch="lunchtime",
            opening_hours_dinner="18:30-17:00",
            closed_dates="2026-10-01, 2026-13-01",
        ),
    )
    assert response.status_code == 422
    html = text(response)
    assert "Enter a whole number." in html
    assert "Write the hours as HH:MM–HH:MM" in html
    assert "2026-13-01 is not a date" in html
    assert 'value="lunchtime"' in html, "what was typed is kept for correcting"
    assert _find_canteen("XN-101") is None


def test_opening_before_closing_is_checked(client, login):
    district = DistrictFactory()
    login(admin())
    client.get("/org/canteens?lang=en")
    response = client.post(
        "/org/canteens/new", data=_canteen_form(district_id=district.id, opening_hours_dinner="18:30-17:00")
    )
    assert response.status_code == 422
    assert "dinner: opening time must be before closing time." in text(response)
    assert _find_canteen("XN-101") is None


def test_canteen_code_taken_elsewhere_is_refused(client, login):
    CanteenFactory(code="XN-101")
    district = DistrictFactory()
    login(admin())
    response = client.post("/org/canteens/new", data=_canteen_form(district_id=district.id))
    assert response.status_code == 422
    assert "Canteen code XN-101 is taken." in text(response)


def test_canteen_list_filters_by_district_and_kind(client, login):
    east, west = DistrictFactory(), DistrictFactory()
    CanteenFactory(district=east, name="东区食堂甲")
    KitchenFactory(district=east, name="东区中央厨房")
    CanteenFactory(district=west, name="西区食堂乙")
    login(admin())
    html = text(client.get(f"/org/canteens?district_id={east.id}"))
    assert "东区食堂甲" in html and "东区中央厨房" in html and "西区食堂乙" not in html
    html = text(client.get(f"/org/canteens?district_id={east.id}&kind=central_kitchen"))
    assert "东区中央厨房" in html and "东区食堂甲" not in html
    assert client.get("/org/canteens?kind=restaurant&page=x").status_code == 200, "bad filters are ignored"


def test_officer_edits_a_canteen_of_the_own_district(client, login):
    district = DistrictFactory()
    canteen = CanteenFactory(district=district, name="旧名食堂", closed_weekdays=[])
    login(officer(district))
    form = text(client.get(f"/org/canteens/{canteen.id}/edit"))
    assert 'value="旧名食堂"' in form and 'value="11:00–13:30"' in form
    response = client.post(
        f"/org/canteens/{canteen.id}/edit",
        data={
            "name": "新名食堂",
            "kind": "meal_point",
            "community_id": str(canteen.community_id),
            "seats": "20",
            "opening_hours_lunch": "11:30-13:00",
            "closed_weekdays": ["6"],
            "closed_dates": "",
            "active": "1",
        },
    )
    assert response.status_code == 302, text(response)
    assert (canteen.name, canteen.kind.value, canteen.seats) == ("新名食堂", "meal_point", 20)
    assert canteen.opening_hours == {"lunch": ["11:30", "13:00"]}
    assert canteen.closed_weekdays == [6]
    assert canteen.halal is False and canteen.active is True


def test_officer_does_not_see_another_districts_canteen(client, login):
    own, other = DistrictFactory(), DistrictFactory()
    CanteenFactory(district=own, name="本区食堂")
    foreign = CanteenFactory(district=other, name="外区食堂")
    login(officer(own))
    listing = text(client.get("/org/canteens"))
    assert "本区食堂" in listing and "外区食堂" not in listing
    assert client.get(f"/org/canteens/{foreign.id}/edit").status_code == 404
    response = client.post(f"/org/canteens/{foreign.id}/edit", data={"name": "被改了", "kind": "canteen"})
    assert response.status_code == 404
    assert foreign.name == "外区食堂"


def test_officer_cannot_create_a_canteen_in_another_district(client, login):
    own, other = DistrictFactory(), DistrictFactory()
    login(officer(own))
    response = client.post("/org/canteens/new", data=_canteen_form(district_id=other.id))
    assert response.status_code == 404
    assert _find_canteen("XN-101") is None


@pytest.mark.parametrize("make_staff", [canteen_staff, kitchen_staff])
def test_staff_cannot_manage_canteens(client, login, make_staff):
    district = DistrictFactory()
    workplace = KitchenFactory(district=district) if make_staff is kitchen_staff else CanteenFactory(district=district)
    login(make_staff(workplace))
    assert client.get("/org/canteens/new").status_code == 403
    assert client.post("/org/canteens/new", data=_canteen_form(district_id=district.id)).status_code == 403
    assert client.get(f"/org/canteens/{workplace.id}/edit").status_code == 403
    assert client.get("/org/districts").status_code == 403
    assert _find_canteen("XN-101") is None


def test_org_pages_need_a_login(client):
    response = client.get("/org/canteens")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_error_page_is_translated(client, login):
    login(officer(DistrictFactory()))
    response = client.get("/org/canteens/999999/edit")
    assert response.status_code == 404
    assert "不存在" in text(response)
