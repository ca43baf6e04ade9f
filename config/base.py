"""Defaults shared by every environment. Each UPPER_CASE value can be overridden by an
environment variable of the same name (JSON for lists, numbers and booleans)."""

import json
import os
from datetime import timedelta


class BaseConfig:
    ENV_NAME = "base"

    # database: SQLite file by default, any SQLAlchemy URL (PostgreSQL in production)
    DATABASE_URL = "sqlite:///canteen.sqlite"  # a relative SQLite path lives in instance/
    SQLITE_BUSY_TIMEOUT_MS = 15000

    # secrets: never in the repository; development generates its own (see development.py)
    SECRET_KEY: str | None = None
    # AES-GCM keys for personal data, "kid:base64key[,kid:base64key...]"; the first one encrypts
    CANTEEN_DATA_KEY: str | None = None
    # HMAC key for blind indexes (look-up of encrypted values), base64
    CANTEEN_INDEX_KEY: str | None = None

    TIME_ZONE = "Asia/Shanghai"
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024

    # sessions and login
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = timedelta(hours=12)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    WTF_CSRF_TIME_LIMIT = None  # counter tablets stay open over lunch
    LOGIN_MAX_FAILURES = 5
    LOGIN_FAILURE_WINDOW_MINUTES = 15
    LOGIN_LOCK_MINUTES = 15
    LOGIN_SLOW_AFTER_FAILURES = 3  # from this failure on, each retry must wait (2, 4, 8 … s)
    LOGIN_RATE_LIMIT = "30 per minute"  # per client address, second layer after the account lock
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    API_TOKEN_LIFETIME_HOURS = 24 * 30
    PROXY_FIX_HOPS = 0  # number of trusted reverse proxies in front of the app

    # API and docs
    API_TITLE = "canteen"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/docs/static/"  # served by the app itself, never a CDN
    API_DOCS_REQUIRE_LOGIN = False
    API_PAGE_SIZE_MAX = 500

    # meals: idempotency keys are kept at least 7 days (offline tablets retry days later); a
    # request finding its key held by one still in flight waits this long before 409
    MEAL_IDEMPOTENCY_DAYS = 7
    MEAL_IDEMPOTENCY_WAIT_MS = 5000

    # food safety (canteen.food_safety.rules holds the statutory numbers: 125 g and 48 h per sample,
    # one-year certificates; a setting below may tighten a statutory limit, never loosen it).
    # Cold-storage limits per device kind, [lowest, highest] °C, both inclusive (null: no limit):
    # refrigerated 0–8 °C is SAMR 《餐饮服务食品安全操作规范》 (2018)'s 冷藏, also for the dedicated
    # sample refrigerator (留样, GB 31654-2021); freezers at or below −18 °C is the programme's limit.
    FOOD_SAFETY_DEVICE_LIMITS_C = {
        "refrigerator": [0.0, 8.0],
        "sample_refrigerator": [0.0, 8.0],
        "freezer": [None, -18.0],
    }
    FOOD_SAFETY_READINGS_PER_DAY = 2  # each device, at least twice a day (at least 2)
    FOOD_SAFETY_READINGS_DEADLINE = "20:00"  # Asia/Shanghai; fewer readings by then is a deviation
    # the daily checklist besides the morning check (晨检, always asked): known item keys
    # (canteen.food_safety.rules.KNOWN_CHECKLIST_ITEMS; also food_storage, hand_hygiene) or a city's
    # own item as {"key": "gas_safety", "label": "Gas safety", "label_zh": "燃气安全检查"}
    FOOD_SAFETY_CHECKLIST_ITEMS = ["tableware_disinfection", "pest_control", "raw_cooked_separation", "waste_disposal"]
    FOOD_SAFETY_CHECKLIST_DEADLINE = "10:00"  # missing or failed by then is a deviation
    # a slot's samples are due by the end of its opening hours plus the grace; where a site has no
    # hours for the slot, by the fixed time
    FOOD_SAFETY_SAMPLE_GRACE_MINUTES = 60
    FOOD_SAFETY_SAMPLE_DEADLINES = {"breakfast": "10:00", "lunch": "14:30", "dinner": "20:30"}
    FOOD_SAFETY_CERTIFICATE_WARNING_DAYS = 30  # certificates expiring within this many days are listed

    # pages
    BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ["zh_Hans_CN", "en"]

    # demo data
    DEMO_PASSWORD = "canteen-demo-2026"

    def as_dict(self) -> dict:
        values = {k: getattr(self, k) for k in dir(self) if k.isupper()}
        for key, default in values.items():
            raw = os.environ.get(key)
            if raw is None:
                continue
            values[key] = _parse_env(raw, default)
        values["SQLALCHEMY_DATABASE_URI"] = _normalise_database_url(values["DATABASE_URL"])
        values["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
        return values


def _parse_env(raw: str, default):
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int | list | dict):
        return json.loads(raw)
    if isinstance(default, timedelta):
        return timedelta(seconds=int(raw))
    return raw


def _normalise_database_url(url: str) -> str:
    # the psycopg 3 driver; plain postgres:// URLs (as many hosts hand them out) work too
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
