"""Exception hierarchy for the crypto package.

Messages are fixed, operator-facing strings: they must never contain plaintext, key material or
ciphertext, because they end up in logs and alert emails (R47).
"""

from __future__ import annotations

__all__ = ["CryptoError", "DecryptionError", "KeyringError", "UnknownKeyError"]


class CryptoError(Exception):
    """Base class for every error raised by ``transitions.crypto``."""

    #: The (table, row id) whose field failed, set by the model layer so the failure can be audited (R47);
    #: never a value.
    location: tuple[str, str] | None = None


class KeyringError(CryptoError):
    """The key configuration is missing or malformed; the app must refuse to start (fail closed)."""


class UnknownKeyError(KeyringError):
    """A ciphertext names a key id that is not in the keyring (retired too early, or wrong keyring)."""


class DecryptionError(CryptoError):
    """A ciphertext failed authentication or is malformed: tampered, truncated, moved or wrong context."""
