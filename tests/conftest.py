"""Test set-up: one migrated database per session (SQLite file or a temporary PostgreSQL
server), and a transaction per test that is rolled back afterwards — each commit inside a
test only releases a savepoint."""

from __future__ import annotations

import base64
import contextlib
import os
import uuid

import pytest
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy.orm import scoped_session, sessionmaker

from tests import postgres

TEST_KEYS = {
    "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
    "CANTEEN_DATA_KEY": "t1:" + base64.b64encode(os.urandom(32)).decode(),
    "CANTEEN_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
}


def pytest_addoption(parser):
    parser.addoption("--db", choices=("sqlite", "postgresql"), default="sqlite", help="database the suite runs on")


def pytest_report_header(config):
    return f"canteen database: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def backend(request) -> str:
    return request.config.getoption("--db")


@pytest.fixture(scope="session")
def postgres_server(backend):
    if backend != "postgresql" or os.environ.get("CANTEEN_TEST_POSTGRES_URL"):
        yield None
        return
    try:
        server = postgres.start()
    except postgres.PostgresUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.exit(f"PostgreSQL is required under CI=true: {error}", returncode=1)
        pytest.skip(f"PostgreSQL unavailable: {error}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def new_database(backend, postgres_server, tmp_path_factory):
    """Make a new empty database and return its URL (each call a different one)."""

    def make(label: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp(label) / 'canteen.sqlite'}"
        if postgres_server is None:
            import psycopg

            base = os.environ["CANTEEN_TEST_POSTGRES_URL"]
            name = f"canteen_{label}_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            return base.rsplit("/", 1)[0] + "/" + name
        return postgres_server.create_database(f"canteen_{label}_{uuid.uuid4().hex[:8]}")

    return make


def make_app(database_url: str, **overrides):
    os.environ["CANTEEN_ENV"] = "testing"
    from canteen import create_app

    return create_app({"DATABASE_URL": database_url, **TEST_KEYS, **overrides})


@pytest.fixture(scope="session")
def app(new_database):
    import flask_migrate

    from tests.pages import compile_catalogues

    compile_catalogues()  # what `make translations` does, so a plain pytest run has them too

    application = make_app(new_database("main"))
    with application.app_context():
        flask_migrate.upgrade()
    yield application
    with application.app_context():
        from canteen.extensions import db

        db.engine.dispose()


@pytest.fixture(autouse=True)
def session(request, app):
    """The app context and database session of one test, rolled back when it ends."""
    if "no_db" in request.keywords:
        yield None
        return
    from canteen.extensions import db

    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        # a plain SQLAlchemy Session: Flask-SQLAlchemy's own ignores `bind` and opens new connections
        db.session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint"), scopefunc=_app_ctx_id
        )
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def as_user():
    """Run a block of service calls with a user's scope: `with as_user(officer): ...`."""
    from canteen.auth import service as auth_service
    from canteen.core import scoping

    def acting(user):
        return scoping.acting_as(auth_service.scope_for(user))

    return acting


@pytest.fixture
def api(client):
    """An API client that logs in with a bearer token: `api(user).get("/api/v1/me")`."""
    from canteen.auth import service as auth_service
    from canteen.extensions import db

    tokens: dict[int, str] = {}

    class Caller:
        def __init__(self, user):
            if user is None:
                self.headers = {}
                return
            if user.id not in tokens:
                tokens[user.id] = auth_service.issue_token(user=user, name="test").token
                db.session.commit()
            self.headers = {"Authorization": f"Bearer {tokens[user.id]}"}

        def __getattr__(self, method):
            call = getattr(client, method)

            def send(*args, **kwargs):
                kwargs["headers"] = {**self.headers, **kwargs.get("headers", {})}
                return call(*args, **kwargs)

            return send

    return Caller


@pytest.fixture
def login(client):
    """Log a browser-like test client in through the login page."""
    from tests.factories import PASSWORD

    def do_login(user, password: str = PASSWORD):
        response = client.post("/login", data={"username": user.username, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return do_login


@contextlib.contextmanager
def no_scope():
    from canteen.core import scoping

    with scoping.unrestricted():
        yield
