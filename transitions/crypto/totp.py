"""TOTP (RFC 6238: SHA-1, 6 digits, 30 s) for staff second factor, via pyotp."""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from datetime import datetime

import pyotp

__all__ = ["current_code", "new_totp_secret", "provisioning_uri", "verify_totp"]

_INTERVAL = 30
_WINDOW = 1
_CODE = re.compile(r"[0-9]{6}", re.ASCII)
_SEPARATORS = re.compile(r"[\s-]+")


def new_totp_secret() -> str:
    """160-bit base32 secret (32 characters, no padding), from ``secrets`` rather than pyotp's helper."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def provisioning_uri(secret: str, account_name: str, issuer: str) -> str:
    """``otpauth://`` URI for the QR code shown at enrolment."""
    uri: str = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer)
    return uri


def _step(at: datetime) -> int:
    # pyotp would read a naive datetime as server-local time; a UK clock change would then shift steps.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")
    return int(at.timestamp()) // _INTERVAL


def verify_totp(secret: str, code: str, *, at: datetime, last_used_step: int | None) -> int | None:
    """Return the matched time step if ``code`` is valid within ±1 step and newer than ``last_used_step``.

    The caller stores the returned step as the new ``last_used_step`` so each code works once. When a
    code matches more than one step the highest is returned, so a replay can never match a later step.
    """
    now = _step(at)
    normalised = _SEPARATORS.sub("", code)
    if _CODE.fullmatch(normalised) is None:
        return None
    totp = pyotp.TOTP(secret)
    for step in range(now + _WINDOW, now - _WINDOW - 1, -1):
        if step < 0 or (last_used_step is not None and step <= last_used_step):
            continue
        expected: str = totp.generate_otp(step)
        if hmac.compare_digest(expected.encode("ascii"), normalised.encode("ascii")):
            return step
    return None


def current_code(secret: str, at: datetime) -> str:
    """The code for ``at`` (tests and the demo seed only)."""
    code: str = pyotp.TOTP(secret).generate_otp(_step(at))
    return code
