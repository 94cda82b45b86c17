"""Link tokens and one-time codes (R17, R20): only hashes or MACs of them are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["code_mac", "equal", "new_numeric_code", "new_token", "token_hash"]

_MIN_DIGITS = 6  # at least ~20 bits, as ASVS 5.0 requires for out-of-band codes
_MAX_DIGITS = 12
_MIN_KEY_LENGTH = 32


def new_token() -> str:
    """A 256-bit URL-safe random token for links."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """SHA-256 of the token; unsalted is fine because the token has 256 bits of entropy."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_numeric_code(digits: int = 6) -> str:
    if not _MIN_DIGITS <= digits <= _MAX_DIGITS:
        raise ValueError(f"digits must be between {_MIN_DIGITS} and {_MAX_DIGITS}")
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def code_mac(key: bytes, *parts: str) -> bytes:
    """HMAC-SHA256 over NUL-joined parts; keyed because a 6-digit code's plain hash is trivially reversed."""
    if len(key) < _MIN_KEY_LENGTH:
        raise ValueError(f"MAC key must be at least {_MIN_KEY_LENGTH} bytes")
    if any("\x00" in part for part in parts):
        raise ValueError("MAC input parts must not contain NUL characters")
    return hmac.new(key, "\x00".join(parts).encode("utf-8"), hashlib.sha256).digest()


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a, b)
