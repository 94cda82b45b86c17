"""Keyring of 256-bit master keys: one active key for new ciphertexts, older keys for decryption only.

Every ciphertext records the id of the key that produced it, so rotation is "add a new key in front,
re-encrypt in the background, retire the old key when nothing references it" (R42, R44). Purpose keys
(field encryption, blob KEK, ...) are derived from a master key with HKDF-SHA256 so one master key never
serves two algorithms or two kinds of data (R46).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import KeyringError, UnknownKeyError

__all__ = ["KEY_ID_PATTERN", "KEY_LENGTH", "Keyring", "format_key_spec", "generate_key"]

KEY_LENGTH = 32
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_HKDF_INFO_PREFIX = b"cla-transitions|"


def _check_key_id(key_id: str, where: str) -> None:
    # The offending id is not echoed: a swapped "KEY:ID" entry would otherwise print the key.
    if not isinstance(key_id, str) or KEY_ID_PATTERN.fullmatch(key_id) is None:
        raise KeyringError(f"{where}: key id must be 1-32 characters from A-Z a-z 0-9 _ -")


def _check_key(key: bytes, key_id: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_LENGTH:
        raise KeyringError(f"key {key_id!r} must be exactly {KEY_LENGTH} bytes")


def _decode_key(encoded: str, key_id: str) -> bytes:
    if _B64URL.fullmatch(encoded) is None:
        raise KeyringError(f"key {key_id!r} is not URL-safe base64")
    unpadded = encoded.rstrip("=")
    try:
        key = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise KeyringError(f"key {key_id!r} is not URL-safe base64") from None
    if len(key) != KEY_LENGTH:
        raise KeyringError(f"key {key_id!r} must decode to exactly {KEY_LENGTH} bytes (256 bits)")
    return key


@dataclass(frozen=True, repr=False)
class Keyring:
    """Immutable set of master keys; ``active_id`` encrypts, every key decrypts.

    ``repr`` shows key ids only, so a keyring in a traceback or log never leaks key material.
    """

    keys: Mapping[str, bytes]
    active_id: str
    _derived: dict[tuple[str, str], bytes] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyringError("keyring is empty: at least one key is required")
        copied: dict[str, bytes] = {}
        for key_id, key in self.keys.items():
            _check_key_id(key_id, "keyring")
            _check_key(key, key_id)
            copied[key_id] = key
        if self.active_id not in copied:
            raise KeyringError("active key id is not in the keyring")
        object.__setattr__(self, "keys", MappingProxyType(copied))

    def __repr__(self) -> str:
        return f"Keyring(active_id={self.active_id!r}, key_ids={list(self.keys)!r})"

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``"KEYID:BASE64URL KEYID:BASE64URL"`` (spaces or commas); the first entry is active."""
        entries = [entry for entry in re.split(r"[\s,]+", spec.strip()) if entry]
        if not entries:
            raise KeyringError("key spec is empty: expected 'KEYID:BASE64URL' entries")
        keys: dict[str, bytes] = {}
        for number, entry in enumerate(entries, start=1):
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise KeyringError(f"key spec entry {number} is not of the form KEYID:BASE64URL")
            _check_key_id(key_id, f"key spec entry {number}")
            if key_id in keys:
                raise KeyringError(f"key spec has duplicate key id {key_id!r}")
            keys[key_id] = _decode_key(encoded, key_id)
        return cls(keys=keys, active_id=entries[0].partition(":")[0])

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKeyError(f"unknown key id {key_id[:40]!r}") from None

    def derive(self, key_id: str, purpose: str) -> bytes:
        """32-byte HKDF-SHA256 subkey of ``key_id`` for ``purpose``; cached because it runs per field."""
        cache_key = (key_id, purpose)
        derived = self._derived.get(cache_key)
        if derived is None:
            if not purpose:
                raise ValueError("purpose must not be empty")
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_LENGTH,
                salt=None,
                info=_HKDF_INFO_PREFIX + purpose.encode("utf-8"),
            )
            derived = hkdf.derive(self.key(key_id))
            self._derived[cache_key] = derived
        return derived

    def with_new_active(self, key_id: str, key: bytes) -> Keyring:
        """New keyring with ``key`` first and active; existing keys stay for decryption.

        Re-activating an existing id is allowed only with the same key bytes: replacing the bytes
        behind an id would make every ciphertext under the old bytes unreadable.
        """
        _check_key_id(key_id, "new key")
        _check_key(key, key_id)
        existing = self.keys.get(key_id)
        if existing is not None and not hmac.compare_digest(existing, key):
            raise KeyringError(f"key id {key_id!r} already exists with different key bytes")
        keys = {key_id: key}
        keys.update((k, v) for k, v in self.keys.items() if k != key_id)
        return Keyring(keys=keys, active_id=key_id)


def generate_key() -> bytes:
    """A fresh random 256-bit master key."""
    return secrets.token_bytes(KEY_LENGTH)


def format_key_spec(entries: Iterable[tuple[str, bytes]]) -> str:
    """Inverse of :meth:`Keyring.parse`: ``KEYID:BASE64URL`` entries, unpadded, space separated."""
    parts: list[str] = []
    seen: set[str] = set()
    for key_id, key in entries:
        _check_key_id(key_id, "key spec entry")
        _check_key(key, key_id)
        if key_id in seen:
            raise KeyringError(f"key spec has duplicate key id {key_id!r}")
        seen.add(key_id)
        parts.append(f"{key_id}:{base64.urlsafe_b64encode(key).rstrip(b'=').decode('ascii')}")
    if not parts:
        raise KeyringError("key spec needs at least one entry")
    return " ".join(parts)
