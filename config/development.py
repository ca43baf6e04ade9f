"""Local development and the embedded single-site set-up (`make run`)."""

from config.base import BaseConfig


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    # missing keys are generated once into instance/dev-secrets.json (never committed)
    GENERATE_MISSING_SECRETS = True
