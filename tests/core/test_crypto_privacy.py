"""Personal data: AES-GCM at rest with key rotation, blind indexes, masking in logs."""

import base64
import logging
import os

import pytest

from canteen.core import crypto
from canteen.core.privacy import PersonalDataFilter, log_filter_installed, mask_id_number, mask_phone, mask_text


def test_round_trip_and_associated_data():
    sealed = crypto.encrypt("630102195003150012", "residents.id_number")
    assert "630102195003150012" not in sealed
    assert crypto.decrypt(sealed, "residents.id_number") == "630102195003150012"
    # the same ciphertext moved to another column does not decrypt
    with pytest.raises(ValueError):
        crypto.decrypt(sealed, "users.phone")
    # a fresh nonce every time
    assert crypto.encrypt("x", "t.c") != crypto.encrypt("x", "t.c")


def test_key_rotation_decrypts_old_values(app):
    old = crypto.encrypt("13800001111", "users.phone")
    current = app.config["CANTEEN_DATA_KEY"]
    new_key = "k2:" + base64.b64encode(os.urandom(32)).decode()
    try:
        crypto.configure(f"{new_key},{current}", app.config["CANTEEN_INDEX_KEY"])
        assert crypto.decrypt(old, "users.phone") == "13800001111"
        assert crypto.encrypt("x", "t.c").startswith("k2:")
    finally:
        crypto.configure(current, app.config["CANTEEN_INDEX_KEY"])


def test_blind_index_is_keyed_and_normalised(app):
    a = crypto.blind_index("63010219500315001x", "id_number")
    assert a == crypto.blind_index(" 63010219500315001X ", "id_number")
    assert a != crypto.blind_index("63010219500315001X", "card_no")
    try:
        crypto.configure(app.config["CANTEEN_DATA_KEY"], base64.b64encode(os.urandom(32)).decode())
        assert crypto.blind_index("63010219500315001X", "id_number") != a
    finally:
        crypto.configure(app.config["CANTEEN_DATA_KEY"], app.config["CANTEEN_INDEX_KEY"])


def test_bad_keys_are_refused():
    with pytest.raises(ValueError):
        crypto.parse_keyring("k1:" + base64.b64encode(b"short").decode())
    with pytest.raises(ValueError):
        crypto.parse_keyring("")


def test_masks():
    assert mask_id_number("630102195003150012") == "630102********0012"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_text("resident 63010219500315001X called from 13812345678") == (
        "resident 630102********001X called from 138****5678"
    )


def test_log_filter_masks_ids_and_phones(caplog):
    logger = logging.getLogger("canteen.test.privacy")
    logger.addFilter(PersonalDataFilter())
    with caplog.at_level(logging.INFO, logger="canteen.test.privacy"):
        logger.info("look-up of %s by phone %s", "630102195003150012", "13987654321")
    assert "630102195003150012" not in caplog.text and "13987654321" not in caplog.text
    assert "630102********0012" in caplog.text and "139****4321" in caplog.text


def test_every_logger_of_the_app_masks(app, caplog):
    assert log_filter_installed()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("some.library").warning("id %s", "63010219500315001X")
        app.logger.warning("phone 13812345678")
    assert "63010219500315001X" not in caplog.text and "13812345678" not in caplog.text
    assert "630102********001X" in caplog.text


def test_phones_typed_with_separators_are_masked():
    from canteen.core.privacy import mask_personal

    assert mask_phone("138-1234-5678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "+86138****5678"
    assert mask_personal("+86 138 1234 5678") == "+86138****5678"
    assert mask_text("儿子 +86-138-1234-5678，女儿 139 8765 4321") == "儿子 +86138****5678，女儿 139****4321"
