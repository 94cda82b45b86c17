"""Keyed blind indexes for equality search without storing plaintext (R45).

A blind index leaks equality and frequency of the indexed values to anyone who can read the column,
so index compound values (surname + date of birth) rather than single low-entropy fields.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

__all__ = ["DIGEST_LENGTH", "BlindIndex", "normalise"]

DIGEST_LENGTH = 16
_MIN_KEY_LENGTH = 32


def normalise(value: str) -> str:
    """NFKC, casefold, collapse internal whitespace and strip.

    Diacritics are deliberately NOT folded: "Zoë" and "Zoe" are different names (a folding decision
    would raise recall but also collisions; see security.md Appendix E item 7). NFKC is applied again
    after casefolding because casefolding can produce unnormalised sequences.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return " ".join(folded.split())


class BlindIndex:
    """HMAC-SHA256 blind index, truncated to 16 bytes.

    The key is separate from the encryption keyring and never rotates: every stored index was computed
    with it, so a new key would make all existing rows unfindable until every index is recomputed from
    decrypted data. ``kind`` separates index families (e.g. "surname_dob", "initial_surname_dob").
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < _MIN_KEY_LENGTH:
            raise ValueError(f"blind index key must be at least {_MIN_KEY_LENGTH} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "BlindIndex(<key hidden>)"

    def digest(self, kind: str, *parts: str) -> bytes:
        if not kind:
            raise ValueError("kind must not be empty")
        fields = [kind, *(normalise(part) for part in parts)]
        if any("\x00" in f for f in fields):
            raise ValueError("blind index input must not contain NUL characters")
        message = "\x00".join(fields).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()[:DIGEST_LENGTH]
