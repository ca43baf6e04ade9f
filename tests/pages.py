"""Helpers for the page tests: reading responses, and the compiled translation catalogue."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import canteen

TRANSLATIONS = Path(canteen.__file__).resolve().parent / "translations"


def text(response) -> str:
    return response.get_data(as_text=True)


def csrf_token_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form carrying a CSRF token"
    return match.group(1)


def compile_catalogues() -> None:
    """What `make translations` does, for a plain `pytest` run: the .mo files are built, not kept
    in git. Written to a temporary file first so that two test runs at once never read half a file."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in TRANSLATIONS.glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file)
        handle, temporary = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        with os.fdopen(handle, "wb") as mo_file:
            write_mo(mo_file, catalog)
        os.replace(temporary, mo_path)
