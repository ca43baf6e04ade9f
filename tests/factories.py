"""factory_boy factories bound to the app's session; each create commits (a savepoint inside
the test's transaction), so a failed request's rollback does not take the fixtures with it."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from canteen.auth.models import User
from canteen.auth.service import hash_password
from canteen.extensions import db
from canteen.org.models import Canteen, CanteenKind, Community, District

PASSWORD = "correct-horse-battery"
_PASSWORD_HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per test run


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class DistrictFactory(BaseFactory):
    class Meta:
        model = District

    code = factory.Sequence(lambda n: f"{630200 + n}")
    name = factory.Sequence(lambda n: f"测试{n}区")


class CommunityFactory(BaseFactory):
    class Meta:
        model = Community

    district = factory.SubFactory(DistrictFactory)
    name = factory.Sequence(lambda n: f"测试{n}社区")


class CanteenFactory(BaseFactory):
    class Meta:
        model = Canteen

    code = factory.Sequence(lambda n: f"T{n:04d}")
    name = factory.Sequence(lambda n: f"测试{n}号爱老幸福食堂")
    kind = CanteenKind.CANTEEN
    district = factory.SubFactory(DistrictFactory)
    community = factory.LazyAttribute(lambda o: CommunityFactory(district=o.district))
    halal = False
    seats = 40
    opening_hours = factory.LazyFunction(
        lambda: {"breakfast": ["07:00", "09:00"], "lunch": ["11:00", "13:30"], "dinner": ["17:00", "19:00"]}
    )
    closed_weekdays = factory.LazyFunction(list)
    closed_dates = factory.LazyFunction(list)


class KitchenFactory(CanteenFactory):
    kind = CanteenKind.CENTRAL_KITCHEN
    name = factory.Sequence(lambda n: f"测试{n}号中央厨房")
    seats = 0


class UserFactory(BaseFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda o: o.username)
    role = "admin"
    password_hash = _PASSWORD_HASH


def admin(**kwargs) -> User:
    return UserFactory(role="admin", **kwargs)


def officer(district: District, **kwargs) -> User:
    return UserFactory(role="district_officer", district_id=district.id, **kwargs)


def canteen_staff(canteen: Canteen, **kwargs) -> User:
    return UserFactory(role="canteen_staff", canteen_id=canteen.id, **kwargs)


def kitchen_staff(kitchen: Canteen, **kwargs) -> User:
    return UserFactory(role="kitchen_staff", canteen_id=kitchen.id, **kwargs)


_resident_numbers = iter(range(1, 10**7))


def resident(district: District, *, birth=None, sex: str = "male", name: str = "张三", **kwargs):
    """A registered resident (through the service, so every registry rule applies)."""
    from datetime import date, timedelta

    from canteen.core import scoping
    from canteen.residents import id_numbers
    from canteen.residents import service as resident_service

    n = next(_resident_numbers)
    birth = birth or date(1940, 1, 1) + timedelta(days=n % 5000)
    sequence = (n % 499) * 2 + (1 if sex == "male" else 2)
    number = id_numbers.make_number(district.code if district.code.startswith("63") else "630102", birth, sequence)
    kwargs.setdefault("id_doc_type", "resident_id_card")
    with scoping.unrestricted():
        created = resident_service.register_resident(name=name, id_number=number, district_id=district.id, **kwargs)
    db.session.commit()
    return created
