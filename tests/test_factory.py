"""The app as a whole: health, API docs served offline, security headers, settings."""

import pytest


def test_healthz_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_openapi_lists_every_api_endpoint(client, app):
    spec = client.get("/api/openapi.json").get_json()
    api_rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")}
    documented = set(spec["paths"])
    as_flask = {p.replace("{", "<int:").replace("}", ">") for p in documented}
    assert api_rules <= as_flask, api_rules - as_flask
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_api_docs_render_from_local_assets(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/static/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    with client.get("/api/docs/static/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200
        assert len(bundle.data) > 100_000
    with client.get("/api/docs/static/swagger-ui.css") as css:
        assert css.status_code == 200


def test_security_headers(client):
    response = client.get("/healthz")
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_production_refuses_to_start_without_secrets(monkeypatch):
    import config

    for name in ("SECRET_KEY", "CANTEEN_DATA_KEY", "CANTEEN_INDEX_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        config.load("production")


def test_environment_overrides_settings(monkeypatch):
    import config

    monkeypatch.setenv("LOGIN_MAX_FAILURES", "7")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/canteen")
    settings = config.load("testing")
    assert settings["LOGIN_MAX_FAILURES"] == 7
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/canteen"


def test_api_docs_behind_login_when_configured(app):
    from tests.conftest import make_app
    from tests.factories import PASSWORD, admin

    guarded = make_app(app.config["DATABASE_URL"], API_DOCS_REQUIRE_LOGIN=True)
    user = admin()
    client = guarded.test_client()
    for path in ("/api/docs", "/api/openapi.json"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.post("/login", data={"username": user.username, "password": PASSWORD}).status_code == 302
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/openapi.json").get_json()["info"]["title"] == "canteen"
