"""Password policy (NCSC / NIST 800-63B style, R2) and Argon2id hashing.

The policy has length limits and a block list only: no composition rules, no expiry, paste allowed.
Passwords are NFKC-normalised before hashing so the same password typed on different devices (composed
or decomposed accents) verifies.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import re
import secrets
import unicodedata
from collections.abc import Iterable
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PasswordHasher",
    "PasswordPolicyError",
    "check_password_policy",
]

MIN_PASSWORD_LENGTH = 15
MAX_PASSWORD_LENGTH = 256

MSG_EMPTY = "Enter a password"
MSG_TOO_SHORT = f"Password must be {MIN_PASSWORD_LENGTH} characters or more"
MSG_TOO_LONG = f"Password must be {MAX_PASSWORD_LENGTH} characters or fewer"
MSG_TOO_COMMON = "Password is too common or too easy to guess: choose a different one"
MSG_CONTEXT = "Password must not be mostly your name, email address or the name of this service"

# Words about this service and its users that are always treated as context words.
SERVICE_WORDS = (
    "children",
    "childrens",
    "social",
    "socialcare",
    "socialworker",
    "transitions",
    "transition",
    "handover",
    "placement",
    "lookedafter",
    "council",
)

_MIN_DISTINCT = 5
_MIN_DENY_ENTRY = 4  # shorter entries would match fragments of good passphrases
_MIN_CONTEXT_TOKEN = 3
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_SEQUENCES = (
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "!@#$%^&*()",
)


class PasswordPolicyError(ValueError):
    """Raised with a GOV.UK-style message that can be shown to the user as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@functools.cache
def _deny_list() -> frozenset[str]:
    source = resources.files(__package__ or "transitions.crypto").joinpath("common_passwords.txt")
    text = source.read_text("utf-8")
    entries = (_fold(line.strip()) for line in text.splitlines() if not line.startswith("#"))
    return frozenset("".join(e.split()) for e in entries if len(e) >= _MIN_DENY_ENTRY)


def _fold(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold()


def _letters(value: str) -> str:
    return "".join(ch for ch in value if ch.isalpha())


def _strip_non_letters(value: str) -> str:
    start, end = 0, len(value)
    while start < end and not value[start].isalpha():
        start += 1
    while end > start and not value[end - 1].isalpha():
        end -= 1
    return value[start:end]


def _unit(value: str) -> str:
    """Shortest prefix that the whole string repeats, a trailing partial repeat allowed (KMP, O(n))."""
    border = [0] * len(value)
    for i in range(1, len(value)):
        k = border[i - 1]
        while k and value[i] != value[k]:
            k = border[k - 1]
        border[i] = k + 1 if value[i] == value[k] else 0
    period = len(value) - border[-1] if value else 0
    return value[:period]


def _is_sequence(value: str) -> bool:
    for sequence in _SEQUENCES:
        repeated = sequence * (len(value) // len(sequence) + 2)
        if value in repeated or value in repeated[::-1]:
            return True
    return False


def _unleet(value: str) -> str:
    return value.translate(_LEET)


_TRANSFORMS = (_strip_non_letters, _letters, _unleet, _unit)


def _candidates(compact: str) -> set[str]:
    """Forms to look up: as typed, de-leeted, with digits/punctuation removed, de-repeated, combined."""
    found = {compact}
    frontier = [compact]
    while frontier:
        value = frontier.pop()
        for transform in _TRANSFORMS:
            new = transform(value)
            if new and new not in found:
                found.add(new)
                frontier.append(new)
    return found


def _is_weak(compact: str) -> bool:
    if len(set(compact)) < _MIN_DISTINCT or len(_unit(compact)) <= 3:
        return True
    candidates = _candidates(compact)
    if not candidates.isdisjoint(_deny_list()):
        return True
    # A keyboard or alphabet run counts only when it is most of the password, not a fragment.
    return any(_is_sequence(_unit(c)) for c in candidates if len(c) * 2 >= len(compact))


def _context_tokens(words: Iterable[str]) -> list[str]:
    tokens: set[str] = set()
    for word in words:
        folded = _fold(word)
        tokens.add("".join(folded.split()))
        tokens.update(re.split(r"[\W_]+", folded))
        tokens.add("".join(re.split(r"[\W_]+", folded)))
    return sorted((t for t in tokens if len(t) >= _MIN_CONTEXT_TOKEN), key=len, reverse=True)


def _mostly_context(compact: str, tokens: list[str]) -> bool:
    for base in {compact, compact.translate(_LEET)}:
        rest = base
        for token in tokens:
            rest = rest.replace(token, "")
        if rest != base and (len(rest) * 2 < len(base) or not _letters(rest)):
            return True
    return False


def check_password_policy(password: str, *, context_words: Iterable[str] = ()) -> None:
    """Raise PasswordPolicyError if ``password`` is unacceptable; return None if it is fine.

    Length is checked first and on the raw string, so an oversized input costs nothing more.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(MSG_TOO_LONG)
    if not password or password.isspace():
        raise PasswordPolicyError(MSG_EMPTY)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(MSG_TOO_SHORT)
    compact = "".join(_fold(password).split())
    if _is_weak(compact):
        raise PasswordPolicyError(MSG_TOO_COMMON)
    if _mostly_context(compact, _context_tokens((*SERVICE_WORDS, *context_words))):
        raise PasswordPolicyError(MSG_CONTEXT)


class PasswordHasher:
    """Argon2id via argon2-cffi (defaults m=64 MiB, t=3, p=4); cheaper parameters only for tests."""

    def __init__(
        self,
        *,
        time_cost: int = argon2.DEFAULT_TIME_COST,
        memory_cost: int = argon2.DEFAULT_MEMORY_COST,
        parallelism: int = argon2.DEFAULT_PARALLELISM,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=argon2.Type.ID
        )
        # A well-formed hash with the same parameters costs a real verify, and needs no hashing to make:
        # building one with hash() here would add an argon2 run to every process start and CLI command.
        salt, digest = (base64.b64encode(secrets.token_bytes(n)).decode().rstrip("=") for n in (16, 32))
        self._dummy_hash = f"$argon2id$v=19$m={memory_cost},t={time_cost},p={parallelism}${salt}${digest}"

    def hash(self, password: str) -> str:
        if len(password) > MAX_PASSWORD_LENGTH:
            raise PasswordPolicyError(MSG_TOO_LONG)
        return self._hasher.hash(unicodedata.normalize("NFKC", password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """True if ``password`` matches; False on mismatch or an unusable stored hash (never raises)."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        try:
            return self._hasher.verify(stored_hash, unicodedata.normalize("NFKC", password))
        except InvalidHashError:
            # An account without a usable hash must not answer faster than one with a hash.
            self.dummy_verify(password)
            return False
        except VerificationError:
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a real verify, for unknown accounts, so timing does not reveal accounts."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return
        with contextlib.suppress(VerificationError):
            self._hasher.verify(self._dummy_hash, unicodedata.normalize("NFKC", password))
