"""Password policy (R2: NCSC/NIST style) and Argon2id hashing."""

from __future__ import annotations

import secrets
import unicodedata
from importlib import resources
from typing import Any

import pytest

import transitions.crypto.passwords as passwords_module
from transitions.crypto import PasswordHasher, PasswordPolicyError, check_password_policy
from transitions.crypto.passwords import (
    MSG_CONTEXT,
    MSG_EMPTY,
    MSG_TOO_COMMON,
    MSG_TOO_LONG,
    MSG_TOO_SHORT,
)

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(**CHEAP)


def policy_message(password: str, **kwargs: Any) -> str | None:
    try:
        check_password_policy(password, **kwargs)
    except PasswordPolicyError as error:
        return error.message
    return None


# --- policy ----------------------------------------------------------------------------------


def test_messages_are_the_govuk_wording() -> None:
    assert MSG_EMPTY == "Enter a password"
    assert MSG_TOO_SHORT == "Password must be 15 characters or more"
    assert MSG_TOO_LONG == "Password must be 256 characters or fewer"
    assert MSG_TOO_COMMON == "Password is too common or too easy to guess: choose a different one"


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "purpleotterjazz",  # exactly 15 characters
        "My dog Rex likes 42 sausages",
        "social purple elephants dancing",  # a context word as a small part is fine
        "tHe ViOLin plays aT dAwN",
        "ǅemal's café on Ørsted Street",
        "x7#Qm!2vL9@pRt&4",
    ],
)
def test_good_passwords_accepted(password: str) -> None:
    assert policy_message(password, context_words=["jane.smith", "Northshire County Council"]) is None


def test_random_and_maximum_length_passwords_accepted() -> None:
    for _ in range(20):
        assert policy_message(secrets.token_urlsafe(24)) is None
    assert policy_message(secrets.token_urlsafe(192)[:256]) is None


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", MSG_EMPTY),
        ("                    ", MSG_EMPTY),
        ("short", MSG_TOO_SHORT),
        ("purpleotterjaz", MSG_TOO_SHORT),  # 14 characters
        ("x" * 257, MSG_TOO_LONG),
        ("correct horse battery staple " * 9, MSG_TOO_LONG),
    ],
)
def test_length_rules(password: str, message: str) -> None:
    assert policy_message(password) == message


def test_password_policy_error_is_a_value_error_with_user_message() -> None:
    with pytest.raises(ValueError, match="15 characters or more") as info:
        check_password_policy("tooshort")
    assert isinstance(info.value, PasswordPolicyError)
    assert str(info.value) == info.value.message == MSG_TOO_SHORT


@pytest.mark.parametrize(
    "password",
    [
        "passwordpassword",
        "PASSWORDPASSWORD",
        "Password1!Password1!",
        "P@ssw0rdP@ssw0rd",
        "p4ssw0rd12345678",
        "password123456789",
        "password!!!!!!!!!!",
        "2024password2024!",
        "qwertyuiopasdfgh",
        "QwertyuiopAsdfgh1",
        "iloveyouiloveyou",
        "I love you I love you",
        "letmeinletmein",
        "letmeinletmein1!",
        "123456789012345",
        "9876543210987654",
        "1234512345123451",
        "aaaaaaaaaaaaaaaa",
        "abcabcabcabcabca",
        "abcdefghijklmnop",
        "1qaz2wsx3edc4rfv",
        "childrensservices",
        "Childrens Services 2025!",
        "socialworker",
        "SocialWorker2025!",
        "summer2024summer2024",
        "Liverpool1892!!!!",
        "monkeymonkeymonkey",
    ],
)
def test_common_or_guessable_passwords_rejected(password: str) -> None:
    assert policy_message(password) in (MSG_TOO_COMMON, MSG_TOO_SHORT)
    if len(password) >= 15:
        assert policy_message(password) == MSG_TOO_COMMON


@pytest.mark.parametrize(
    ("password", "context"),
    [
        ("janesmith2026!!!!", ["jane.smith"]),
        ("Jane Smith Jane Smith", ["jane.smith"]),
        ("Northshire County 2025", ["Northshire County Council"]),
        ("northshirenorthshire!", ["Northshire County Council"]),
        ("transitions transitions", []),
        ("children social care!", []),
    ],
)
def test_context_words_rejected(password: str, context: list[str]) -> None:
    assert policy_message(password, context_words=context) in (MSG_CONTEXT, MSG_TOO_COMMON)


def test_context_words_are_specific_to_the_user() -> None:
    assert policy_message("janesmith2026!!!!") is None
    assert policy_message("janesmith2026!!!!", context_words=["jane.smith"]) == MSG_CONTEXT


def test_ten_thousand_characters_rejected_before_any_other_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> object:
        raise AssertionError("expensive step reached")

    monkeypatch.setattr(passwords_module, "_fold", explode)
    monkeypatch.setattr(passwords_module, "_is_weak", explode)
    monkeypatch.setattr(passwords_module, "_deny_list", explode)
    assert policy_message("correct horse battery staple " * 345) == MSG_TOO_LONG


class SpyArgon2:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def hash(self, password: str) -> str:
        self.calls.append("hash")
        return "$argon2id$spy"

    def verify(self, stored: str, password: str) -> bool:
        self.calls.append("verify")
        return True


def test_hasher_never_hashes_oversized_passwords(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SpyArgon2()
    monkeypatch.setattr(hasher, "_hasher", spy)
    long_password = "a" * 10_000
    with pytest.raises(PasswordPolicyError):
        hasher.hash(long_password)
    assert hasher.verify("$argon2id$whatever", long_password) is False
    hasher.dummy_verify(long_password)
    assert spy.calls == []
    # Sanity check that the spy is really in the path for normal lengths.
    hasher.hash("correct horse battery staple")
    assert spy.calls == ["hash"]


def test_deny_list_file_is_loaded_once_and_has_the_expected_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    passwords_module._deny_list.cache_clear()
    for _ in range(3):
        check_password_policy("correct horse battery staple")
    info = passwords_module._deny_list.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    deny = passwords_module._deny_list()
    assert len(deny) >= 300
    for entry in (
        "password",
        "passwordpassword",
        "qwertyuiopasdfgh",
        "iloveyouiloveyou",
        "letmeinletmein",
        "123456789012345",
        "childrensservices",
        "socialworker",
    ):
        assert entry in deny
    assert "correcthorsebatterystaple" not in deny
    text = resources.files("transitions.crypto").joinpath("common_passwords.txt").read_text("utf-8")
    assert "correct horse" not in text


# --- hashing ----------------------------------------------------------------------------------


def test_hash_and_verify(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify(stored, "correct horse battery staple") is True
    assert hasher.verify(stored, "correct horse battery stapl") is False
    assert hasher.verify(stored, "Correct horse battery staple") is False
    assert hasher.hash("correct horse battery staple") != stored  # random salt


@pytest.mark.parametrize(
    "stored", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$broken", "$2b$12$abcdefghijk"]
)
def test_verify_returns_false_for_unusable_hashes(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(stored, "correct horse battery staple") is False


def test_verify_equalises_time_for_unusable_hashes(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    dummy_calls: list[str] = []
    monkeypatch.setattr(hasher, "dummy_verify", lambda password: dummy_calls.append(password))
    assert hasher.verify("not a hash", "correct horse battery staple") is False
    assert dummy_calls == ["correct horse battery staple"]


def test_unicode_normalisation_before_hashing(hasher: PasswordHasher) -> None:
    composed = "café crème brûlée forever"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert hasher.verify(hasher.hash(composed), decomposed)
    assert hasher.verify(hasher.hash(decomposed), composed)


def test_needs_rehash(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert hasher.needs_rehash(stored) is False
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_rehash(stored) is True
    assert hasher.needs_rehash("garbage") is True


def test_defaults_are_argon2id_64mib_t3_p4() -> None:
    stored = PasswordHasher().hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_dummy_verify_runs_a_real_verify_with_current_parameters(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = hasher._hasher

    class Recording:
        def verify(self, stored: str, password: str) -> bool:
            seen.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(hasher, "_hasher", Recording())
    hasher.dummy_verify("correct horse battery staple")
    assert len(seen) == 1
    assert seen[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")  # same cost as a real account's hash
    # The dummy hash is of a random secret: no password verifies against it.
    monkeypatch.undo()
    assert hasher.verify(seen[0], "correct horse battery staple") is False
    assert hasher.verify(seen[0], "") is False
