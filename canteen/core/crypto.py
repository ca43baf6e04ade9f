"""Personal data at rest: AES-GCM column encryption with key ids for rotation, and keyed blind
indexes (HMAC-SHA256) for exact look-ups of encrypted values.

Stored form: "<key id>:<base64(nonce || ciphertext+tag)>". The table and column are the
associated data, so a value copied into another column does not decrypt. The blind index key
is separate: the ID number space is small enough that an unkeyed hash could be brute-forced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_keys: dict[str, bytes] = {}
_primary_key_id: str | None = None
_index_key: bytes | None = None


class CryptoNotConfigured(RuntimeError):
    pass


def parse_keyring(value: str) -> tuple[str, dict[str, bytes]]:
    """Parse "kid:base64key[,kid:base64key...]"; the first key encrypts, all of them decrypt."""
    keys: dict[str, bytes] = {}
    primary = None
    for part in (p.strip() for p in value.split(",") if p.strip()):
        kid, _, encoded = part.partition(":")
        key = base64.b64decode(encoded)
        if not kid or len(key) != 32:
            raise ValueError("each data key must be 'id:base64' of 32 bytes")
        keys[kid] = key
        primary = primary or kid
    if primary is None:
        raise ValueError("no data key given")
    return primary, keys


def configure(data_keys: str, index_key: str) -> None:
    """Install the keys from settings (CANTEEN_DATA_KEY, CANTEEN_INDEX_KEY) for this process."""
    global _primary_key_id, _keys, _index_key
    _primary_key_id, _keys = parse_keyring(data_keys)
    _index_key = base64.b64decode(index_key)
    if len(_index_key) < 32:
        raise ValueError("CANTEEN_INDEX_KEY must be at least 32 bytes (base64)")


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def encrypt(plaintext: str, associated_data: str) -> str:
    if _primary_key_id is None:
        raise CryptoNotConfigured("CANTEEN_DATA_KEY is not configured")
    nonce = os.urandom(12)
    sealed = AESGCM(_keys[_primary_key_id]).encrypt(nonce, plaintext.encode(), associated_data.encode())
    return f"{_primary_key_id}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(stored: str, associated_data: str) -> str:
    kid, _, encoded = stored.partition(":")
    key = _keys.get(kid)
    if key is None:
        raise CryptoNotConfigured(f"data key {kid!r} is not configured")
    raw = base64.b64decode(encoded)
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], associated_data.encode()).decode()
    except InvalidTag:
        raise ValueError(f"encrypted value does not authenticate for {associated_data}") from None


def blind_index(value: str, purpose: str) -> str:
    """Keyed hash of a normalised value, for equality look-ups of encrypted columns."""
    if _index_key is None:
        raise CryptoNotConfigured("CANTEEN_INDEX_KEY is not configured")
    normalised = unicodedata.normalize("NFKC", value).strip().upper()
    return hmac.new(_index_key, f"{purpose}\x00{normalised}".encode(), hashlib.sha256).hexdigest()


class EncryptedString(sa.types.TypeDecorator):
    """A string column encrypted with AES-GCM; `location` ("table.column") is the associated data."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, location: str) -> None:
        super().__init__()
        self.location = location

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else encrypt(value, self.location)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else decrypt(value, self.location)
