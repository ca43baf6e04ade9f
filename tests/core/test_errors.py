"""Bad input answers 4xx in the one error shape {code, message, errors} and writes nothing."""

import sqlalchemy as sa

from canteen.core import scoping
from canteen.extensions import db
from canteen.org.models import Canteen, District
from tests.factories import DistrictFactory, admin


def _district_count():
    with scoping.unrestricted():
        return db.session.scalar(sa.select(sa.func.count()).select_from(District))


def _assert_shape(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"code", "message", "errors"}
    assert body["code"] == code
    assert isinstance(body["errors"], dict)
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_malformed_json(api):
    caller = api(admin())
    before = _district_count()
    response = caller.post("/api/v1/districts", data="{not json", headers={"Content-Type": "application/json"})
    _assert_shape(response, 400, "malformed_json")
    assert _district_count() == before


def test_unknown_fields_and_wrong_types(api):
    caller = api(admin())
    before = _district_count()
    body = _assert_shape(
        caller.post("/api/v1/districts", json={"code": "630199", "name": "x", "mayor": "y"}), 422, "validation_error"
    )
    assert body["errors"] == {"mayor": ["Unknown field."]}
    body = _assert_shape(
        caller.post("/api/v1/districts", json={"code": 630199, "name": ["x"]}), 422, "validation_error"
    )
    assert set(body["errors"]) == {"code", "name"}
    body = _assert_shape(caller.post("/api/v1/districts", json={"code": "63019", "name": "x"}), 422, "validation_error")
    assert "6 digits" in body["errors"]["code"][0]
    assert _district_count() == before


def test_strict_integers_and_nested_errors(api):
    district = DistrictFactory()
    caller = api(admin())
    body = _assert_shape(
        caller.post(
            "/api/v1/canteens",
            json={
                "code": "X-1",
                "name": "n",
                "kind": "canteen",
                "district_id": str(district.id),
                "seats": 1.5,
                "opening_hours": {"lunch": ["13:30", "11:00"], "tea": ["1", "2"]},
                "closed_weekdays": [7],
            },
        ),
        422,
        "validation_error",
    )
    assert set(body["errors"]) >= {"district_id", "seats", "opening_hours", "closed_weekdays"}
    with scoping.unrestricted():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Canteen).where(Canteen.code == "X-1")) == 0


def test_body_not_an_object(api):
    caller = api(admin())
    _assert_shape(caller.post("/api/v1/districts", json=["630199", "x"]), 422, "validation_error")
    _assert_shape(caller.post("/api/v1/districts", json=None), 422, "validation_error")


def test_oversize_body_is_413(api, app):
    caller = api(admin())
    huge = '{"code": "630199", "name": "' + "x" * (app.config["MAX_CONTENT_LENGTH"] + 10) + '"}'
    response = caller.post("/api/v1/districts", data=huge, headers={"Content-Type": "application/json"})
    _assert_shape(response, 413, "payload_too_large")


def test_unknown_route_and_method(api):
    caller = api(admin())
    _assert_shape(caller.get("/api/v1/nothing-here"), 404, "not_found")
    _assert_shape(caller.delete("/api/v1/districts"), 405, "method_not_allowed")


def test_bad_query_arguments(api):
    caller = api(admin())
    _assert_shape(caller.get("/api/v1/canteens?kind=restaurant"), 422, "validation_error")
    _assert_shape(caller.get("/api/v1/canteens?page=0"), 422, "validation_error")
    _assert_shape(caller.get("/api/v1/canteens?page_size=100000"), 422, "validation_error")


def test_duplicate_is_409_with_field(api):
    district = DistrictFactory()
    body = _assert_shape(
        api(admin()).post("/api/v1/districts", json={"code": district.code, "name": "另一个区"}), 409, "district_exists"
    )
    assert "code" in body["errors"]


def test_failure_midway_writes_nothing(api):
    """A canteen whose supplier is not a kitchen fails after the row was built: nothing is kept."""
    district = DistrictFactory()
    from tests.factories import CanteenFactory

    not_a_kitchen = CanteenFactory(district=district)
    response = api(admin()).post(
        "/api/v1/canteens",
        json={
            "code": "MID-1",
            "name": "半途",
            "kind": "canteen",
            "district_id": district.id,
            "supplied_by_id": not_a_kitchen.id,
        },
    )
    _assert_shape(response, 422, "not_a_kitchen")
    with scoping.unrestricted():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Canteen).where(Canteen.code == "MID-1")) == 0


def test_hostile_input_is_4xx_never_500(api):
    caller = api(admin())
    huge = "99999999999999999999999"
    assert caller.get(f"/api/v1/districts/{huge}").status_code == 404
    _assert_shape(caller.get(f"/api/v1/canteens?page={huge}"), 422, "value_out_of_range")
    _assert_shape(caller.get(f"/api/v1/canteens?district_id={huge}"), 422, "value_out_of_range")
    json_headers = {"Content-Type": "application/json"}
    for raw in ('{"code": "630199", "name": "\\ud800"}', "[" * 100_000, '{"code": ' + "9" * 5000 + "}"):
        _assert_shape(caller.post("/api/v1/districts", data=raw, headers=json_headers), 400, "malformed_json")
    _assert_shape(
        caller.post("/api/v1/auth/token", data='{"username": "\\udfff", "password": "x"}', headers=json_headers),
        400,
        "malformed_json",
    )
    _assert_shape(
        caller.post(
            "/api/v1/districts", data='{"code": "630199", "name": "x"}', headers={"Content-Type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    )
    assert not any(d.code == "630199" for d in _all_districts())


def _all_districts():
    with scoping.unrestricted():
        return db.session.scalars(sa.select(District)).all()
