"""Flask-Limiter per client address on the login endpoints, the second layer after the account lock."""

import pytest

from tests.conftest import make_app
from tests.factories import PASSWORD, admin


@pytest.fixture
def limited_app(app):
    from canteen.extensions import limiter

    yield make_app(app.config["DATABASE_URL"], RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    # the limiter is one shared extension object: switch it back off for the rest of the suite
    limiter.reset()
    limiter.enabled = app.config["RATELIMIT_ENABLED"]


def test_token_endpoint_is_limited_per_address(limited_app):
    user = admin()
    client = limited_app.test_client()
    statuses = [
        client.post(
            "/api/v1/auth/token",
            json={"username": user.username, "password": "wrong-password!"},
            environ_base={"REMOTE_ADDR": "10.0.0.7"},
        ).status_code
        for _ in range(4)
    ]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3] == 429
    limited = client.post(
        "/api/v1/auth/token",
        json={"username": user.username, "password": "x"},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    )
    assert limited.get_json()["code"] == "too_many_requests"
    # another address is not limited (a colleague at another counter logging in)
    colleague = admin()
    other = client.post(
        "/api/v1/auth/token",
        json={"username": colleague.username, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.8"},
    )
    assert other.status_code == 201
