"""The test suite: the database URL and keys come from tests/conftest.py."""

from config.base import BaseConfig


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "test-only-secret-key"
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    GENERATE_MISSING_SECRETS = False
