"""Masking of personal data for lists, logs and exports (PIPL art. 28, 51)."""

from __future__ import annotations

import logging
import re

# 18-character resident ID numbers (last may be X) and mainland mobile numbers
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_id_number(value: str | None) -> str | None:
    """Keep the region (first 4) and the last 4 characters: 6301**********001X."""
    if not value:
        return value
    if len(value) <= 8:
        return value[0] + "*" * (len(value) - 2) + value[-1] if len(value) > 2 else "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits: 138****5678."""
    if not value:
        return value
    if len(value) <= 7:
        return "*" * (len(value) - 2) + value[-2:]
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_text(text: str) -> str:
    """Mask every ID number and mobile number found in free text."""
    text = _ID_NUMBER.sub(lambda m: m.group(1)[:4] + "*" * 10 + m.group(2), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


class PersonalDataFilter(logging.Filter):
    """A logging filter that masks ID and phone numbers in a record (for handlers of other libraries)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is not ours to fix here
        return
    masked = mask_text(message)
    if masked != message:
        record.msg, record.args = masked, None


_installed = False


def install_log_filter() -> None:
    """Mask every log record of the process at creation, whatever logger or handler it goes to.

    A filter on the root logger would miss records propagated from child loggers, so the
    record factory itself masks.
    """
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True


def log_filter_installed() -> bool:
    return _installed
