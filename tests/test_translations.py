"""Every message of the app has a Chinese translation in the catalogue, with the same
placeholders: a page never falls back to English in the middle of Chinese, and a translation
never drops or invents a value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import canteen

PACKAGE = Path(canteen.__file__).resolve().parent
CATALOGUE = PACKAGE / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2), "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")

pytestmark = pytest.mark.no_db


def _messages_in_code() -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(str(PACKAGE), method_map, KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalogue() -> dict[str, list[str]]:
    with CATALOGUE.open("rb") as handle:
        catalog = read_po(handle)
    translations = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        translations[key] = [s for s in strings if s]
    return translations


def test_every_message_has_a_chinese_translation():
    translations = _catalogue()
    missing = sorted(message for message in _messages_in_code() if not translations.get(message))
    assert missing == [], f"no Chinese translation for: {missing}"


def test_translations_keep_their_placeholders():
    with CATALOGUE.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        wanted = set().union(*(PLACEHOLDER.findall(i) for i in ids))
        for string in strings:
            # a plural form may leave out %(num)d (Chinese has one form), nothing else
            assert set(PLACEHOLDER.findall(string)) <= wanted, message.id
            assert wanted - set(PLACEHOLDER.findall(string)) <= {"num"}, message.id
