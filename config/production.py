"""Production: PostgreSQL, secure cookies, docs behind login; refuses to start without its secrets."""

from config.base import BaseConfig

REQUIRED = ("SECRET_KEY", "CANTEEN_DATA_KEY", "CANTEEN_INDEX_KEY", "DATABASE_URL")


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    DATABASE_URL = ""
    SESSION_COOKIE_SECURE = True
    API_DOCS_REQUIRE_LOGIN = True
    GENERATE_MISSING_SECRETS = False

    def as_dict(self) -> dict:
        import os

        missing = [name for name in REQUIRED if not os.environ.get(name)]
        if missing:
            raise RuntimeError(f"production settings missing from the environment: {', '.join(missing)}")
        return super().as_dict()
