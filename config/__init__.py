"""Settings per environment; `CANTEEN_ENV` picks one, environment variables override any value."""

from config.base import BaseConfig
from config.development import DevelopmentConfig
from config.production import ProductionConfig
from config.testing import TestingConfig

CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load(name: str | None = None) -> dict:
    """Return the settings of environment `name` (default: `$CANTEEN_ENV` or development)."""
    import os

    name = name or os.environ.get("CANTEEN_ENV", "development")
    try:
        config_class = CONFIGS[name]
    except KeyError:
        raise RuntimeError(f"unknown CANTEEN_ENV {name!r}; choose one of {sorted(CONFIGS)}") from None
    return config_class().as_dict()
