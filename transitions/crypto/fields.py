"""Column-level AES-256-GCM for PII and special-category fields (R41, R42).

Format: ``0x01 | len(key_id) (1 byte) | key_id (ASCII) | nonce (12) | ciphertext || tag (16)``.

The AAD binds each ciphertext to ``table``, ``column``, ``row_id`` and the key id, so a value copied to
another row or column (e.g. by someone with DB write access) fails authentication instead of being
shown as that row's data. Row ids must therefore be assigned before the first encrypt.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import DecryptionError
from .keyring import KEY_ID_PATTERN, Keyring

__all__ = ["FieldCipher"]

_VERSION = 1
_NONCE_LEN = 12
_TAG_LEN = 16
_PURPOSE = "field"
_FAILED = "field cannot be decrypted (tampered, moved to another row or column, or malformed)"


def _check_location(table: str, column: str, row_id: str) -> None:
    # "|" would make the AAD ambiguous; an empty row id means the row UUID was not assigned yet.
    for name, value in (("table", table), ("column", column), ("row_id", row_id)):
        if not value or "|" in value:
            raise ValueError(f"{name} must be non-empty and must not contain '|'")


def _aad(table: str, column: str, row_id: str, key_id: str) -> bytes:
    return f"v1|{table}|{column}|{row_id}|{key_id}".encode()


def _split(blob: bytes) -> tuple[str, int]:
    """Return (key id, offset of nonce); raise DecryptionError if the header is malformed."""
    if len(blob) < 2 or blob[0] != _VERSION:
        raise DecryptionError(_FAILED)
    kid_len = blob[1]
    start = 2 + kid_len
    if len(blob) < start + _NONCE_LEN + _TAG_LEN:
        raise DecryptionError(_FAILED)
    try:
        key_id = blob[2:start].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError(_FAILED) from None
    if KEY_ID_PATTERN.fullmatch(key_id) is None:
        raise DecryptionError(_FAILED)
    return key_id, start


class FieldCipher:
    """Encrypt and decrypt single text fields under the keyring's derived ``field`` keys."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._aeads: dict[str, AESGCM] = {}

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def _aead(self, key_id: str) -> AESGCM:
        aead = self._aeads.get(key_id)
        if aead is None:
            aead = AESGCM(self._keyring.derive(key_id, _PURPOSE))
            self._aeads[key_id] = aead
        return aead

    def encrypt(self, plaintext: str, *, table: str, column: str, row_id: str) -> bytes:
        _check_location(table, column, row_id)
        key_id = self._keyring.active_id
        nonce = os.urandom(_NONCE_LEN)
        sealed = self._aead(key_id).encrypt(
            nonce, plaintext.encode("utf-8"), _aad(table, column, row_id, key_id)
        )
        kid = key_id.encode("ascii")
        return b"".join((bytes((_VERSION, len(kid))), kid, nonce, sealed))

    def decrypt(self, blob: bytes, *, table: str, column: str, row_id: str) -> str:
        """Raise DecryptionError if the blob is not authentic for this exact location."""
        _check_location(table, column, row_id)
        key_id, start = _split(blob)
        aead = self._aead(key_id)  # UnknownKeyError for a retired or foreign key id
        view = memoryview(blob)
        try:
            plaintext = aead.decrypt(
                view[start : start + _NONCE_LEN],
                view[start + _NONCE_LEN :],
                _aad(table, column, row_id, key_id),
            )
        except InvalidTag:
            raise DecryptionError(_FAILED) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - authentic data is always UTF-8
            raise DecryptionError(_FAILED) from None

    def key_id_of(self, blob: bytes) -> str:
        return _split(blob)[0]

    def needs_rotation(self, blob: bytes) -> bool:
        return self.key_id_of(blob) != self._keyring.active_id

    def reencrypt(self, blob: bytes, *, table: str, column: str, row_id: str) -> bytes:
        """Decrypt (verifying it) and encrypt again under the active key with a fresh nonce."""
        plaintext = self.decrypt(blob, table=table, column=column, row_id=row_id)
        return self.encrypt(plaintext, table=table, column=column, row_id=row_id)
