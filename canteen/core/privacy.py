"""Masking of personal data for lists, logs and exports (PIPL art. 28, 51)."""

from __future__ import annotations

import logging
import re

from flask import request

from canteen.core.errors import CanteenError

# 18-character resident ID numbers (last may be X) and mainland mobile numbers
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
# mainland mobile numbers, also written with a +86 prefix or with spaces and hyphens between groups
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[\s-]?)?1[3-9]\d)[\s-]?\d{4}[\s-]?(\d{4})(?!\d)")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）]")


def mask_id_number(value: str | None) -> str | None:
    """Keep the region code (first 6) and the last 4 characters: 630102********001X.
    Shorter numbers (passports) keep their first and last 2."""
    if not value:
        return value
    if len(value) >= 15:
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def normalise_phone(value: str) -> str:
    """Drop the spaces, hyphens and brackets people type between digit groups."""
    return _PHONE_SEPARATORS.sub("", value)


def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits: 138****5678 (+86 kept in front when present)."""
    if not value:
        return value
    value = normalise_phone(value)
    prefix = ""
    if value.startswith("+86") and len(value) > 11:
        prefix, value = "+86", value[3:]
    if len(value) <= 7:
        return prefix + "*" * max(len(value) - 2, 1) + value[-2:]
    return prefix + value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_personal(value: str | None) -> str | None:
    """Mask a value of an encrypted column whose kind is not known here (audit snapshots)."""
    if not value:
        return value
    if re.fullmatch(r"\+?[\d\s\-()（）]{7,20}", value):
        return mask_phone(value)
    if re.fullmatch(r"[0-9A-Za-z]{5,20}", value):
        return mask_id_number(value)
    return mask_text(value) if any(ch.isdigit() for ch in value) else value[:1] + "***"


def mask_text(text: str) -> str:
    """Mask every ID number and mobile number found in free text."""
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 8 + m.group(2)[-4:], text)
    return _MOBILE.sub(lambda m: normalise_phone(m.group(1)) + "****" + m.group(2), text)


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


class IdNumberInUrl(CanteenError):
    status = 400
    code = "id_number_in_url"
    message = "A full ID number must not be sent in a URL; use POST /api/v1/residents/lookup."


# 18-character numbers and the old 15-digit ones
_ID_IN_URL = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")


def refuse_id_numbers_in_urls() -> None:
    """Before every request: an ID number in the path or query string would land in access logs
    and browser histories, so the request is refused before anything runs."""
    raw = request.full_path
    if _ID_IN_URL.search(raw):
        raise IdNumberInUrl()
