"""Tamper-evident audit hash chain (R69): h_0 = HMAC(k, "genesis|id"), h_n = HMAC(k, h_{n-1} || entry_n).

The HMAC key lives with the encryption keys, not in the database, so someone with DB write access
cannot recompute the chain after editing or deleting an entry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping

__all__ = ["AuditChain", "canonical_json"]

_HASH_LENGTH = 32
_MIN_KEY_LENGTH = 32


def _plain(value: object, path: str) -> object:
    """Copy into plain JSON types, refusing anything whose serialisation would not be canonical."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{path}: NaN and infinity are not valid JSON")
        return value
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: object keys must be str, not {type(key).__name__}")
            out[key] = _plain(item, f"{path}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    # datetimes, dates, Decimals, UUIDs, bytes ...: the caller must choose the string form explicitly.
    raise TypeError(f"{path}: {type(value).__name__} is not JSON; pass datetimes as ISO 8601 strings")


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """Deterministic UTF-8 JSON: sorted keys, no whitespace, non-ASCII kept as is."""
    if not isinstance(obj, Mapping):
        raise TypeError("canonical_json expects a mapping")
    plain = _plain(obj, "$")
    return json.dumps(
        plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


class AuditChain:
    def __init__(self, key: bytes) -> None:
        if len(key) < _MIN_KEY_LENGTH:
            raise ValueError(f"audit chain key must be at least {_MIN_KEY_LENGTH} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "AuditChain(<key hidden>)"

    def genesis(self, install_id: str) -> bytes:
        return hmac.new(self._key, b"genesis|" + install_id.encode("utf-8"), hashlib.sha256).digest()

    def link(self, previous: bytes, canonical: bytes) -> bytes:
        # A fixed-length previous hash keeps "previous || canonical" unambiguous.
        if len(previous) != _HASH_LENGTH:
            raise ValueError(f"previous hash must be {_HASH_LENGTH} bytes")
        return hmac.new(self._key, previous + canonical, hashlib.sha256).digest()

    def verify_link(self, previous: bytes, canonical: bytes, expected: bytes) -> bool:
        """Constant-time check that ``expected`` is the link after ``previous`` for this entry."""
        return hmac.compare_digest(self.link(previous, canonical), expected)
