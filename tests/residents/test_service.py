"""Registry rules through the service layer: status over time, categories, cards, search."""

from datetime import date

import pytest

from canteen.core import scoping
from canteen.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from canteen.residents import id_numbers
from canteen.residents import service as resident_service
from tests.factories import CanteenFactory, DistrictFactory, canteen_staff, officer, resident


def test_name_keys():
    assert resident_service.name_keys("张三") == ("zhangsan", "zs")
    assert resident_service.name_keys("欧阳小明") == ("ouyangxiaoming", "oyxm")
    assert resident_service.name_keys("John Smith") == ("johnsmith", "js")


def test_under_60_on_registration_date_is_refused():
    district = DistrictFactory(code="630102")
    number = id_numbers.make_number("630102", date(1966, 11, 24), 11)
    with pytest.raises(ValidationFailed) as young:
        resident_service.register_resident(
            name="李四",
            id_doc_type="resident_id_card",
            id_number=number,
            district_id=district.id,
            registered_on=date(2026, 11, 23),
        )
    assert young.value.code == "resident_too_young"
    # one day later they are 60: registered
    assert resident_service.register_resident(
        name="李四",
        id_doc_type="resident_id_card",
        id_number=number,
        district_id=district.id,
        registered_on=date(2026, 11, 24),
    )


def test_passport_needs_birth_date_and_sex_and_ids_refuse_them():
    district = DistrictFactory()
    with pytest.raises(ValidationFailed) as missing:
        resident_service.register_resident(
            name="Anna", id_doc_type="passport", id_number="P1234567", district_id=district.id
        )
    assert set(missing.value.errors) == {"birth_date", "sex"}
    created = resident_service.register_resident(
        name="Anna",
        id_doc_type="passport",
        id_number="P1234567",
        district_id=district.id,
        birth_date=date(1950, 1, 2),
        sex="female",
    )
    assert created.birth_date == date(1950, 1, 2)
    number = id_numbers.make_number("630102", date(1950, 3, 3), 11)
    with pytest.raises(ValidationFailed) as typed_twice:
        resident_service.register_resident(
            name="王五",
            id_doc_type="resident_id_card",
            id_number=number,
            district_id=district.id,
            birth_date=date(1951, 3, 3),
        )
    assert "birth_date" in typed_twice.value.errors


def test_status_history_decides_activity_on_each_day():
    person = resident(DistrictFactory(), registered_on=date(2026, 1, 5))
    assert resident_service.is_active_on(person, date(2026, 3, 1))
    assert not resident_service.is_active_on(person, date(2026, 1, 4))  # not yet registered
    resident_service.set_status(person.id, status="deceased", effective_on=date(2026, 3, 10), reason="civil affairs")
    assert resident_service.is_active_on(person, date(2026, 3, 9))
    assert not resident_service.is_active_on(person, date(2026, 3, 10))
    assert person.status == "deceased" and person.status_effective_on == date(2026, 3, 10)
    assert [c.status for c in person.status_changes] == ["active", "deceased"]


def test_status_changes_are_facts_in_order():
    person = resident(DistrictFactory(), registered_on=date(2026, 1, 5))
    with pytest.raises(ValidationFailed) as future:
        resident_service.set_status(person.id, status="moved_out", effective_on=date(2099, 1, 1), reason="planned")
    assert future.value.code == "effective_on_in_future"
    # earlier than the registration entry: it would be silently overridden, so it is refused
    with pytest.raises(Conflict) as earlier:
        resident_service.set_status(person.id, status="deceased", effective_on=date(2026, 1, 4), reason="x")
    assert earlier.value.code == "later_status_recorded"
    assert person.status == "active" and [c.status for c in person.status_changes] == ["active"]


def test_a_status_on_the_registration_day_takes_effect():
    person = resident(DistrictFactory())  # registered today
    resident_service.set_status(person.id, status="deceased", effective_on=person.registered_on, reason="死亡")
    assert person.status == "deceased"
    assert not resident_service.is_active_on(person, person.registered_on)


def test_categories_over_time_with_derived_age_categories():
    person = resident(DistrictFactory(), birth=date(1946, 6, 1), registered_on=date(2026, 1, 1))
    entry = resident_service.add_category(
        person.id, category="subsistence", valid_from=date(2026, 1, 1), evidence="低保证 2026-001"
    )
    assert resident_service.categories_on(person, date(2026, 5, 31)) == ["aged_60_plus", "subsistence"]
    assert resident_service.categories_on(person, date(2026, 6, 1)) == ["aged_60_plus", "aged_80_plus", "subsistence"]
    with pytest.raises(Conflict):
        resident_service.add_category(person.id, category="subsistence", valid_from=date(2026, 6, 1))
    resident_service.end_category(person.id, entry.id, valid_to=date(2026, 6, 30))
    assert "subsistence" in resident_service.categories_on(person, date(2026, 6, 30))
    assert "subsistence" not in resident_service.categories_on(person, date(2026, 7, 1))
    resident_service.add_category(person.id, category="subsistence", valid_from=date(2026, 8, 1))
    with pytest.raises(ValidationFailed):
        resident_service.end_category(person.id, entry.id, valid_to=date(2025, 12, 31))
    with pytest.raises(ValidationFailed):
        resident_service.add_category(person.id, category="aged_80_plus", valid_from=date(2026, 1, 1))


def test_cards_block_and_replace():
    person = resident(DistrictFactory(), card_no="XN-0001")
    assert resident_service.lookup_resident(card_no="XN-0001") == person
    new_card = resident_service.replace_card(person.id, card_no="XN-0002", reason="lost")
    assert new_card.status == "active" and person.active_card == new_card
    with pytest.raises(NotFound):
        resident_service.lookup_resident(card_no="XN-0001")  # a blocked card finds nobody
    with pytest.raises(Conflict):
        resident_service.replace_card(person.id, card_no="XN-0001")  # never reused
    resident_service.block_card(person.id, reason="misuse")
    with pytest.raises(NotFound):
        resident_service.lookup_resident(card_no="XN-0002")


def test_staff_cannot_register_or_change(as_user):
    district = DistrictFactory()
    person = resident(district)
    with as_user(canteen_staff(CanteenFactory(district=district))):
        with pytest.raises(Forbidden):
            resident_service.set_status(person.id, status="suspended", effective_on=date(2026, 1, 1), reason="x")
        with pytest.raises(Forbidden):
            resident_service.reveal_identity(person.id)


def test_home_canteen_must_be_in_the_district():
    district, other = DistrictFactory(), DistrictFactory()
    number = id_numbers.make_number("630102", date(1950, 3, 3), 13)
    with pytest.raises(ValidationFailed) as mismatch:
        resident_service.register_resident(
            name="赵六",
            id_doc_type="resident_id_card",
            id_number=number,
            district_id=district.id,
            home_canteen_id=CanteenFactory(district=other).id,
        )
    assert mismatch.value.code == "canteen_mismatch"


def test_search_is_limited_to_the_officers_district(as_user):
    district, other = DistrictFactory(), DistrictFactory()
    mine = resident(district, name="张三")
    resident(other, name="张三丰")
    with as_user(officer(district)):
        assert resident_service.search_residents(q="zs").items == [mine]
        assert resident_service.search_residents(q="张").items == [mine]
    with scoping.unrestricted():
        assert len(resident_service.search_residents(q="zhangsan").items) == 2
