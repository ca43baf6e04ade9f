"""Business time: dates are in Asia/Shanghai (a meal at 00:30 belongs to that Chinese date)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

TIME_ZONE = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(TIME_ZONE)


def today() -> date:
    """Today's business date in Asia/Shanghai."""
    return now().date()
