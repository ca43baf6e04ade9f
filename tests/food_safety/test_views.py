"""Food-safety pages: the daily screen (what is due, one-tap forms that redirect back to their place,
errors next to the form with nothing written, the deadline checks run when it opens), deviations and
their workflow by form, staff and certificates, devices, the samples log, the officers' overview,
and who may open and post what. Pages are asked for in English (`?lang=en`): the Chinese catalogue
of these strings is merged separately (instance/food_safety_zh.po)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from canteen.core import clock, scoping
from canteen.extensions import db
from canteen.food_safety import service as fs
from canteen.food_safety.models import (
    ChecklistEntry,
    ColdDevice,
    Deviation,
    HealthCertificate,
    MorningCheck,
    RetainedSample,
    SiteStaff,
    TemperatureReading,
)
from canteen.org.models import CanteenKind
from tests.factories import DistrictFactory, kitchen_staff, officer
from tests.food_safety.conftest import LONG_AGO, as_user, at, count, make_site, sample_fields
from tests.pages import text


def _english(client, user, login):
    login(user)
    client.get("/?lang=en")
    return client


def _screen_form(site, form_id: str, **fields):
    return {"site_id": str(site.canteen.id), "day": clock.today().isoformat(), "form": form_id, **fields}


def _deviations(kind=None):
    with scoping.unrestricted():
        statement = sa.select(Deviation)
        if kind:
            statement = statement.where(Deviation.kind == kind)
        return list(db.session.scalars(statement))


# --- the daily screen ------------------------------------------------------------------------------------
def test_staff_open_their_day_and_see_what_is_due(client, login, site):
    _english(client, site.staff, login)
    response = client.get("/food-safety")
    assert response.status_code == 302 and response.headers["Location"].endswith("/food-safety/today")
    page = text(client.get("/food-safety/today"))
    assert "Morning health check" in page and "Daily checklist" in page and "王师傅" in page
    assert "Tableware disinfection" in page and "冷藏柜" in page and "0 to 8 °C" in page and "at most -18 °C" in page
    assert 'data-due="14"' in page and "14 things are still due" in page
    assert 'name="outcome" value="fit"' in page and "Retained samples" in page


def test_opening_the_screen_raises_the_deviations_of_deadlines_passed_once(client, login, site):
    _english(client, site.staff, login)
    client.get("/food-safety/today")
    raised = _deviations()
    yesterday = clock.today() - timedelta(days=1)
    assert {d.kind for d in raised if d.day == yesterday} >= {"checklist_missing", "readings_missing", "sample_missing"}
    page = text(client.get("/food-safety/today"))
    assert len(_deviations()) == len(raised)  # opened again: nothing raised twice
    assert "Deviations to work on" in page and "Temperature readings missing" in page


def test_one_tap_morning_check(client, login, site):
    _english(client, site.staff, login)
    response = client.post(
        "/food-safety/today/morning-checks",
        data=_screen_form(site, f"morning-{site.cook.id}", staff_id=str(site.cook.id), outcome="fit"),
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/food-safety/today#morning-check")
    with scoping.unrestricted():
        (check,) = db.session.scalars(sa.select(MorningCheck)).all()
    assert check.present and check.fit and check.recorded_by_id == site.staff.id
    page = text(client.get("/food-safety/today"))
    assert "Morning check recorded." in page and "✓ Fit to work" in page


def test_sent_home_with_symptoms(client, login, site):
    _english(client, site.staff, login)
    data = _screen_form(site, f"morning-{site.cook.id}", staff_id=str(site.cook.id), outcome="sent_home", note="发烧")
    client.post("/food-safety/today/morning-checks", data={**data, "symptoms": ["fever", "cough"]})
    with scoping.unrestricted():
        (check,) = db.session.scalars(sa.select(MorningCheck)).all()
    assert check.present and check.fit is False and check.symptoms == ["fever", "cough"]


def test_an_expired_certificate_disables_fit_and_a_forced_post_writes_nothing(client, login, site):
    today = clock.today()
    with scoping.unrestricted():
        fs.add_certificate(
            site.cook.id, number="OLD", issued_on=today - timedelta(days=365), expires_on=today - timedelta(days=1)
        )
    db.session.commit()
    _english(client, site.staff, login)
    page = text(client.get("/food-safety/today"))
    assert "disabled" in page and "Without a valid health certificate nobody is marked fit." in page
    form_id = f"morning-{site.cook.id}"
    response = client.post(
        "/food-safety/today/morning-checks",
        data=_screen_form(site, form_id, staff_id=str(site.cook.id), outcome="fit"),
    )
    assert response.status_code == 422
    assert f'id="{form_id}-errors"' in text(response)
    assert "The health certificate has expired: cannot be marked fit." in text(response)
    assert count(MorningCheck) == 0


def test_checklist_items_by_tap_with_method_and_time(client, login, site):
    _english(client, site.staff, login)
    yesterday = clock.today() - timedelta(days=1)  # a morning time of today may still be ahead
    data = {
        **_screen_form(site, "item-tableware_disinfection", item="tableware_disinfection", passed="1"),
        "day": yesterday.isoformat(),
    }
    response = client.post("/food-safety/today/checklist", data={**data, "method": "steam", "done_at": "07:15"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/food-safety/today?day={yesterday.isoformat()}#checklist")
    with scoping.unrestricted():
        (entry,) = db.session.scalars(sa.select(ChecklistEntry)).all()
    assert entry.method == "steam" and entry.done_at == at(yesterday, "07:15") and entry.day == yesterday
    bad = client.post("/food-safety/today/checklist", data={**data, "method": "steam", "done_at": "25:00"})
    assert bad.status_code == 422 and "Enter a time like 07:30." in text(bad)
    problem = _screen_form(site, "item-pest_control", item="pest_control", passed="0", note="")
    response = client.post("/food-safety/today/checklist", data=problem)
    assert response.status_code == 422 and "Say what was wrong." in text(response)
    assert count(ChecklistEntry) == 1


def test_declare_a_dish_and_record_its_sample(client, login, site):
    _english(client, site.staff, login)
    response = client.post(
        "/food-safety/today/dishes",
        data=_screen_form(site, "dish-lunch", slot="lunch", action="add", dish="土豆烧牛肉"),
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("#slot-lunch")
    page = text(client.get("/food-safety/today"))
    assert 'data-dish="土豆烧牛肉"' in page and 'name="weight_g"' in page
    sample = _screen_form(site, "sample-lunch-0", slot="lunch", dish="土豆烧牛肉", container_sealed="1")
    missing_weight = client.post("/food-safety/today/samples", data={**sample, "device_id": str(site.sample_fridge.id)})
    assert missing_weight.status_code == 422 and "Enter the weight in grams." in text(missing_weight)
    response = client.post(
        "/food-safety/today/samples", data={**sample, "weight_g": "124", "device_id": str(site.sample_fridge.id)}
    )
    assert response.status_code == 302
    (underweight,) = _deviations("sample_underweight")
    assert underweight.details["dish"] == "土豆烧牛肉"
    page = text(client.get("/food-safety/today"))
    assert "124 g" in page and "Sample under 125 g" in page


def test_a_meal_not_served(client, login, site):
    _english(client, site.staff, login)
    client.post(
        "/food-safety/today/dishes", data=_screen_form(site, "served-dinner", slot="dinner", action="not_served")
    )
    assert "Declared not served." in text(client.get("/food-safety/today"))
    assert fs.served_dishes_of(site.canteen.id, clock.today(), "dinner") == []


def test_readings_by_form(client, login, site):
    _english(client, site.staff, login)
    form = _screen_form(site, f"reading-{site.fridge.id}", device_id=str(site.fridge.id))
    assert client.post("/food-safety/today/readings", data={**form, "temperature_c": "8.1"}).status_code == 302
    assert [d.kind for d in _deviations()] == ["temperature_out_of_range"]
    bad = client.post("/food-safety/today/readings", data={**form, "temperature_c": "warm"})
    assert bad.status_code == 422 and "Enter a temperature, e.g. 4 or -18.5." in text(bad)
    assert count(TemperatureReading) == 1


def test_disposal_from_the_screen(client, login, site):
    served_on = clock.today() - timedelta(days=3)
    sample = as_user(
        site.staff, fs.record_sample, **sample_fields(site, served_on=served_on, stored_at=at(served_on, "11:30"))
    )
    _english(client, site.staff, login)
    assert "Samples in the refrigerator" in text(client.get("/food-safety/today"))
    response = client.post(f"/food-safety/samples/{sample.id}/dispose", data=_screen_form(site, "dispose"))
    assert response.status_code == 302 and response.headers["Location"].endswith("#disposal")
    db.session.refresh(sample)
    assert sample.disposed_at is not None


def test_officers_see_the_screen_without_forms_and_cannot_post(client, login, site):
    _english(client, site.officer, login)
    page = text(client.get(f"/food-safety/today?site_id={site.canteen.id}"))
    assert "王师傅" in page and 'name="outcome"' not in page
    response = client.post(
        "/food-safety/today/morning-checks",
        data=_screen_form(site, "x", staff_id=str(site.cook.id), outcome="absent"),
    )
    assert response.status_code == 403 and count(MorningCheck) == 0
    assert client.get("/food-safety/today").status_code == 200  # no site chosen: the list of sites


def test_staff_of_another_site_get_404(client, login, site):
    other = make_site(site.district)
    _english(client, other.staff, login)
    assert client.get(f"/food-safety/today?site_id={site.canteen.id}").status_code == 404
    response = client.post(
        "/food-safety/today/readings",
        data={**_screen_form(site, "r", device_id=str(site.fridge.id)), "temperature_c": "4"},
    )
    assert response.status_code == 404 and count(TemperatureReading) == 0


def test_a_kitchen_s_screen(client, login):
    kitchen = make_site(DistrictFactory(), kind=CanteenKind.CENTRAL_KITCHEN, opening_hours={})
    _english(client, kitchen_staff(kitchen.canteen), login)
    page = text(client.get("/food-safety/today"))
    assert kitchen.canteen.name in page and "Another meal" in page  # no opening hours: slots are declared


# --- the officers' overview ----------------------------------------------------------------------------
def test_the_overview_shows_which_sites_are_not_compliant(client, login, site):
    other = make_site(site.district)
    as_user(other.staff, fs.report_deviation, site_id=other.canteen.id, kind="reported", found="油烟机脏")
    _english(client, site.officer, login)
    page = text(client.get("/food-safety"))
    assert "Sites not compliant" in page
    assert f'class="fs-not-ok" data-site="{other.canteen.code}"' in page
    assert f'class="fs-ok" data-site="{site.canteen.code}"' in page


# --- deviations -----------------------------------------------------------------------------------------
def test_the_deviation_workflow_by_form(client, login, site):
    deviation = as_user(site.staff, fs.report_deviation, site_id=site.canteen.id, kind="reported", found="冷藏柜门未关")
    url = f"/food-safety/deviations/{deviation.id}"
    _english(client, site.staff, login)
    assert "Acknowledge" in text(client.get(url))
    assert client.post(f"{url}/acknowledge").status_code == 302
    empty = client.post(f"{url}/action", data={"cause": "", "action_taken": "关门", "affected_food": ""})
    assert empty.status_code == 422 and 'id="action-errors"' in text(empty)
    action = {"cause": "员工疏忽", "action_taken": "关门并复测 5 ℃", "affected_food": "无受影响食品"}
    assert client.post(f"{url}/action", data=action).status_code == 302
    correction = {**action, "affected_food": "1 盒牛奶废弃", "reason": "补记"}
    assert client.post(f"{url}/correct", data=correction).status_code == 302
    page = text(client.get(url))
    assert "Revision 2" in page and "Revision 1" in page and "1 盒牛奶废弃" in page and "无受影响食品" in page
    assert client.post(f"{url}/verify", data={"note": ""}).status_code == 403
    client.post("/logout")
    _english(client, site.officer, login)
    assert client.post(f"{url}/verify", data={"note": "已核实"}).status_code == 302
    db.session.refresh(deviation)
    assert deviation.status == "verified"


def test_an_officer_sends_an_action_back(client, login, site):
    deviation = as_user(site.staff, fs.report_deviation, site_id=site.canteen.id, kind="reported", found="x")
    as_user(site.staff, fs.acknowledge_deviation, deviation.id)
    as_user(site.staff, fs.record_deviation_action, deviation.id, cause="a", action_taken="b", affected_food="c")
    _english(client, site.officer, login)
    assert client.post(f"/food-safety/deviations/{deviation.id}/return", data={"reason": ""}).status_code == 422
    assert client.post(f"/food-safety/deviations/{deviation.id}/return", data={"reason": "请补充"}).status_code == 302
    db.session.refresh(deviation)
    assert deviation.status == "acknowledged"
    assert "Sent back" in text(client.get(f"/food-safety/deviations/{deviation.id}"))


def test_reporting_a_deviation(client, login, site):
    _english(client, site.officer, login)
    assert client.get(f"/food-safety/deviations/new?site_id={site.canteen.id}").status_code == 200
    empty = client.post(
        "/food-safety/deviations/new", data={"site_id": str(site.canteen.id), "kind": "inspection_finding", "found": ""}
    )
    assert empty.status_code == 422 and count(Deviation) == 0
    response = client.post(
        "/food-safety/deviations/new",
        data={"site_id": str(site.canteen.id), "kind": "inspection_finding", "found": "生熟刀具未分开"},
    )
    assert response.status_code == 302
    (deviation,) = _deviations()
    assert deviation.kind == "inspection_finding" and deviation.raised_by_id == site.officer.id
    listed = text(client.get("/food-safety/deviations"))
    assert "生熟刀具未分开" in listed and "Inspection finding" in listed


def test_kitchen_staff_cannot_report_for_a_canteen_they_supply(client, login):
    district = DistrictFactory()
    kitchen = make_site(district, kind=CanteenKind.CENTRAL_KITCHEN)
    canteen = make_site(district, supplied_by=kitchen.canteen)
    _english(client, kitchen_staff(kitchen.canteen), login)
    response = client.post(
        "/food-safety/deviations/new", data={"site_id": str(canteen.canteen.id), "kind": "reported", "found": "x"}
    )
    # kitchen staff report for their own kitchen: the site field is theirs whatever is posted
    assert response.status_code == 302
    (deviation,) = _deviations()
    assert deviation.site_id == kitchen.canteen.id


# --- staff, certificates, devices, samples ------------------------------------------------------------------
def test_staff_and_certificates_by_form(client, login, site):
    _english(client, site.staff, login)
    response = client.post(
        "/food-safety/staff", data={"name": "周敏", "job": "server", "phone": "137 1111 2222", "started_on": ""}
    )
    assert response.status_code == 302
    with scoping.unrestricted():
        person = db.session.scalars(sa.select(SiteStaff).where(SiteStaff.name == "周敏")).one()
    page = text(client.get("/food-safety/staff"))
    assert "137****2222" in page and "13711112222" not in page and "No certificate" in page
    url = f"/food-safety/staff/{person.id}"
    too_long = client.post(
        url, data={"form": "certificate", "number": "JK-1", "issued_on": "2025-03-10", "expires_on": "2026-03-11"}
    )
    assert too_long.status_code == 422 and "valid one year" in text(too_long) and count(HealthCertificate) == 1
    assert (
        client.post(
            url, data={"form": "certificate", "number": "JK-1", "issued_on": clock.today().isoformat()}
        ).status_code
        == 302
    )
    assert "Valid" in text(client.get("/food-safety/staff"))
    assert client.post(url, data={"form": "edit", "name": "周敏", "job": "cook", "left_on": ""}).status_code == 302
    db.session.refresh(person)
    assert person.job == "cook" and person.phone == "13711112222"  # an empty phone field keeps the phone
    client.post(url, data={"form": "edit", "name": "周敏", "job": "cook", "remove_phone": "1"})
    db.session.refresh(person)
    assert person.phone is None


def test_certificates_page_lists_those_to_renew(client, login, site):
    as_user(site.staff, fs.add_staff, site_id=site.canteen.id, name="无证人员", job="cleaner", started_on=LONG_AGO)
    _english(client, site.officer, login)
    page = text(client.get("/food-safety/certificates"))
    assert "无证人员" in page and "No certificate" in page and "王师傅" not in page


def test_devices_by_form(client, login, site):
    _english(client, site.staff, login)
    response = client.post("/food-safety/devices", data={"name": "留样冰箱2", "kind": "sample_refrigerator"})
    assert response.status_code == 302
    taken = client.post("/food-safety/devices", data={"name": "留样冰箱2", "kind": "freezer"})
    assert taken.status_code == 422 and "The site already has a device of this name." in text(taken)
    assert count(ColdDevice) == 4
    assert client.post(f"/food-safety/devices/{site.freezer.id}/retire", data={"retired_on": ""}).status_code == 302
    db.session.refresh(site.freezer)
    assert site.freezer.retired_on == clock.today()


def test_the_samples_log(client, login, site):
    served_on = clock.today() - timedelta(days=3)
    as_user(site.staff, fs.record_sample, **sample_fields(site, served_on=served_on, stored_at=at(served_on, "11:30")))
    _english(client, site.staff, login)
    page = text(client.get("/food-safety/samples"))
    assert "红烧肉" in page and "150" in page and 'name="back" value="samples"' in page
    with scoping.unrestricted():
        sample = db.session.scalars(sa.select(RetainedSample)).one()
    response = client.post(f"/food-safety/samples/{sample.id}/dispose", data={"back": "samples"})
    assert response.status_code == 302 and "/food-safety/samples" in response.headers["Location"]


def test_the_pages_open_in_chinese_by_default(client, login, site):
    login(site.staff)
    for url in ("/food-safety/today", "/food-safety/deviations", "/food-safety/staff", "/food-safety/devices"):
        response = client.get(url)
        assert response.status_code == 200 and 'lang="zh-CN"' in text(response), url


def test_officers_of_another_district_see_nothing_of_the_site(client, login, site):
    _english(client, officer(DistrictFactory()), login)
    assert client.get(f"/food-safety/today?site_id={site.canteen.id}").status_code == 404
    assert client.get(f"/food-safety/staff/{site.cook.id}").status_code == 404
    assert "王师傅" not in text(client.get("/food-safety/certificates"))


def test_hostile_posts_to_the_screen_are_refused_never_a_500(client, login, site):
    _english(client, site.staff, login)
    junk = [
        ("/food-safety/today/morning-checks", {"staff_id": "x", "outcome": "maybe"}),
        ("/food-safety/today/morning-checks", {"staff_id": str(2**70), "outcome": "fit"}),
        ("/food-safety/today/checklist", {"item": "nonsense", "passed": "1", "done_at": "7"}),
        ("/food-safety/today/dishes", {"slot": "supper", "action": "add", "dish": "x" * 300}),
        ("/food-safety/today/dishes", {"slot": "lunch", "action": "what"}),
        ("/food-safety/today/samples", {"slot": "lunch", "dish": "", "weight_g": "-5", "device_id": "abc"}),
        ("/food-safety/today/samples", {"slot": "lunch", "dish": "x", "weight_g": "9" * 30, "device_id": "1"}),
        ("/food-safety/today/readings", {"device_id": "", "temperature_c": "1e9"}),
        ("/food-safety/today/readings", {"device_id": str(site.fridge.id), "temperature_c": "--4"}),
    ]
    for url, fields in junk:
        response = client.post(url, data={**_screen_form(site, "junk"), "day": "not-a-date", **fields})
        assert response.status_code in (400, 404, 422), (url, fields, response.status_code)
    assert count(MorningCheck) == count(ChecklistEntry) == count(RetainedSample) == count(TemperatureReading) == 0
    assert client.get("/food-safety/today?site_id=abc&day=2026-99-99").status_code == 200
    assert client.get(f"/food-safety/deviations/{2**70}").status_code == 404
