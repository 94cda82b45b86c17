"""Blind index, tokens and codes, audit chain and TOTP (R17, R20, R45, R69, staff 2FA)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import string
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transitions.crypto import (
    AuditChain,
    BlindIndex,
    canonical_json,
    code_mac,
    current_code,
    equal,
    new_numeric_code,
    new_token,
    new_totp_secret,
    normalise,
    provisioning_uri,
    token_hash,
    verify_totp,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

# --- blind index --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  zoë SMITH ", "zoë smith"),
        ("Zoë\t\n  Smith", "zoë smith"),
        ("Zoe\u0308 Smith", "zoë smith"),  # decomposed diaeresis composes under NFKC
        ("ﬁnlay ＳＭＩＴＨ", "finlay smith"),  # ligature and full-width letters
        ("O'BRIEN\u00a0-\u2003Jones", "o'brien - jones"),  # non-breaking and em spaces
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@settings(max_examples=200, database=None, deadline=None)
@given(st.text(max_size=60))
def test_normalise_is_idempotent(value: str) -> None:
    once = normalise(value)
    assert normalise(once) == once
    assert once == once.strip()
    assert "  " not in once


def test_blind_index_matches_normalised_names_but_keeps_diacritics() -> None:
    index = BlindIndex(KEY)
    a = index.digest("surname_dob", "  zoë SMITH ", "2014-03-09")
    assert a == index.digest("surname_dob", "Zoë Smith", "2014-03-09")
    assert a == index.digest("surname_dob", "ZOË   smith", "2014-03-09")
    assert a != index.digest("surname_dob", "Zoe Smith", "2014-03-09")
    assert a != index.digest("surname_dob", "Zoë Smith", "2014-03-10")
    assert len(a) == 16


def test_blind_index_is_the_documented_hmac() -> None:
    expected = hmac.new(KEY, b"surname_dob\x00zo\xc3\xab smith\x002014-03-09", hashlib.sha256).digest()[:16]
    assert BlindIndex(KEY).digest("surname_dob", " Zoë SMITH", "2014-03-09") == expected


def test_blind_index_separates_kinds_keys_and_part_boundaries() -> None:
    index = BlindIndex(KEY)
    base = index.digest("surname_dob", "smith", "2014")
    assert base != index.digest("initial_surname_dob", "smith", "2014")
    assert base != BlindIndex(OTHER_KEY).digest("surname_dob", "smith", "2014")
    assert index.digest("k", "ab", "c") != index.digest("k", "a", "bc")
    assert index.digest("k", "a b") != index.digest("k", "a", "b")


def test_blind_index_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        BlindIndex(b"short key")
    index = BlindIndex(KEY)
    with pytest.raises(ValueError):
        index.digest("", "x")
    with pytest.raises(ValueError):
        index.digest("k", "a\x00b")
    assert KEY.hex() not in repr(index)


# --- tokens and codes ---------------------------------------------------------------------------


def test_new_token_is_256_bit_urlsafe_and_unique() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_token_hash_is_sha256() -> None:
    assert token_hash("abc") == hashlib.sha256(b"abc").digest()
    assert token_hash("abc") != token_hash("abd")
    assert len(token_hash(new_token())) == 32


def test_numeric_code_is_zero_padded(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def fake_randbelow(n: int) -> int:
        seen.append(n)
        return 42

    monkeypatch.setattr("transitions.crypto.tokens.secrets.randbelow", fake_randbelow)
    assert new_numeric_code() == "000042"
    assert new_numeric_code(8) == "00000042"
    assert seen == [10**6, 10**8]


def test_numeric_code_is_random_digits() -> None:
    codes = [new_numeric_code() for _ in range(300)]
    assert all(len(c) == 6 and c.isdigit() and c.isascii() for c in codes)
    assert len(set(codes)) > 250
    with pytest.raises(ValueError):
        new_numeric_code(4)
    with pytest.raises(ValueError):
        new_numeric_code(13)


def test_code_mac() -> None:
    expected = hmac.new(KEY, b"link-1\x00otp-7\x00123456", hashlib.sha256).digest()
    assert code_mac(KEY, "link-1", "otp-7", "123456") == expected
    assert code_mac(KEY, "ab", "c") != code_mac(KEY, "a", "bc")
    assert code_mac(KEY, "x") != code_mac(OTHER_KEY, "x")
    with pytest.raises(ValueError):
        code_mac(b"short", "x")
    with pytest.raises(ValueError):
        code_mac(KEY, "a\x00", "b")


def test_equal() -> None:
    assert equal(b"abc", b"abc")
    assert not equal(b"abc", b"abd")
    assert not equal(b"abc", b"abcd")


# --- audit chain --------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    entry = {"b": 1, "a": "Zoë", "c": {"z": [1, 2.5, None, True], "y": ("t",)}}
    assert canonical_json(entry) == '{"a":"Zoë","b":1,"c":{"y":["t"],"z":[1,2.5,null,true]}}'.encode()
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1})
    assert canonical_json(MappingProxyType({"a": 1})) == b'{"a":1}'


@pytest.mark.parametrize(
    "entry",
    [
        {"at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"nested": {"when": date(2026, 1, 1)}},
        {"list": [datetime(2026, 1, 1, tzinfo=UTC)]},
        {"amount": Decimal("1.5")},
        {"raw": b"bytes"},
        {"set": {1, 2}},
        {"nan": float("nan")},
        {"inf": float("inf")},
        {"nested": {1: "int key"}},
    ],
)
def test_canonical_json_refuses_non_canonical_values(entry: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        canonical_json(entry)


def test_canonical_json_accepts_iso_strings() -> None:
    at = datetime(2026, 1, 1, 9, 30, tzinfo=UTC).isoformat()
    assert canonical_json({"at": at}) == b'{"at":"2026-01-01T09:30:00+00:00"}'


def test_audit_chain_genesis_and_links() -> None:
    chain = AuditChain(KEY)
    h0 = chain.genesis("install-1")
    assert h0 == hmac.new(KEY, b"genesis|install-1", hashlib.sha256).digest()
    assert h0 != chain.genesis("install-2")
    assert h0 != AuditChain(OTHER_KEY).genesis("install-1")

    entries = [canonical_json({"n": i, "action": "view", "actor": "u1"}) for i in range(1, 6)]
    hashes = [h0]
    for entry in entries:
        hashes.append(chain.link(hashes[-1], entry))
    assert hashes[1] == hmac.new(KEY, h0 + entries[0], hashlib.sha256).digest()
    assert all(chain.verify_link(hashes[i], entries[i], hashes[i + 1]) for i in range(5))

    # Editing entry 2 breaks its link and every later one.
    edited = canonical_json({"n": 3, "action": "edit", "actor": "u1"})
    assert not chain.verify_link(hashes[2], edited, hashes[3])
    recomputed = chain.link(hashes[2], edited)
    assert not chain.verify_link(recomputed, entries[3], hashes[4])
    # Deleting entry 3 (entries[2]) breaks the chain too: entries[3] no longer follows hashes[3].
    assert not chain.verify_link(hashes[2], entries[3], hashes[4])


def test_audit_chain_validation() -> None:
    with pytest.raises(ValueError):
        AuditChain(b"short")
    chain = AuditChain(KEY)
    with pytest.raises(ValueError):
        chain.link(b"too short", b"{}")
    assert KEY.hex() not in repr(chain)


# --- TOTP -------------------------------------------------------------------------------------------

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 SHA-1 test seed
NOW = datetime(2026, 11, 25, 10, 0, 15, tzinfo=UTC)


def test_rfc6238_known_answers() -> None:
    assert current_code(RFC_SECRET, datetime.fromtimestamp(59, tz=UTC)) == "287082"
    assert current_code(RFC_SECRET, datetime.fromtimestamp(1111111109, tz=UTC)) == "081804"
    assert current_code(RFC_SECRET, datetime.fromtimestamp(1234567890, tz=UTC)) == "005924"


def test_new_totp_secret_is_160_bit_base32() -> None:
    secrets_ = {new_totp_secret() for _ in range(50)}
    assert len(secrets_) == 50
    for secret in secrets_:
        assert len(secret) == 32
        assert set(secret) <= set(string.ascii_uppercase + "234567")
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri() -> None:
    secret = new_totp_secret()
    uri = provisioning_uri(secret, "jane.smith@northshire.gov.uk", "CLA Transitions")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth"
    assert parsed.netloc == "totp"
    query = parse_qs(parsed.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["CLA Transitions"]
    assert "jane.smith" in parsed.path


def test_verify_returns_step_and_refuses_replay() -> None:
    secret = new_totp_secret()
    step = int(NOW.timestamp()) // 30
    code = current_code(secret, NOW)
    assert verify_totp(secret, code, at=NOW, last_used_step=None) == step
    assert verify_totp(secret, code, at=NOW, last_used_step=step) is None
    assert verify_totp(secret, f"{code[:3]} {code[3:]}", at=NOW, last_used_step=step) is None
    assert verify_totp(secret, f" {code} ", at=NOW + timedelta(seconds=10), last_used_step=step) is None
    # An older step is still usable if nothing newer was used.
    assert verify_totp(secret, code, at=NOW, last_used_step=step - 1) == step


@pytest.mark.parametrize("fmt", ["{a} {b}", "{a}-{b}", " {a}{b} ", "{a}\u00a0{b}", "{a} - {b}"])
def test_verify_accepts_spaces_and_hyphens(fmt: str) -> None:
    secret = new_totp_secret()
    code = current_code(secret, NOW)
    assert verify_totp(secret, fmt.format(a=code[:3], b=code[3:]), at=NOW, last_used_step=None) is not None


@pytest.mark.parametrize("offset", [-1, 1])
def test_adjacent_steps_accepted(offset: int) -> None:
    secret = new_totp_secret()
    step = int(NOW.timestamp()) // 30
    code = current_code(secret, NOW + timedelta(seconds=30 * offset))
    assert verify_totp(secret, code, at=NOW, last_used_step=None) == step + offset
    assert verify_totp(secret, code, at=NOW, last_used_step=step + offset) is None


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_steps_outside_the_window_refused(offset: int) -> None:
    secret = RFC_SECRET
    now_code = current_code(secret, NOW)
    code = current_code(secret, NOW + timedelta(seconds=30 * offset))
    if code == now_code:  # pragma: no cover - 1 in a million collision
        pytest.skip("code collision")
    assert verify_totp(secret, code, at=NOW, last_used_step=None) is None


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "12a456", "１２３４５６", "123_456", "123.456", "+12345", "٠١٢٣٤٥"]
)
def test_malformed_codes_refused(code: str) -> None:
    assert verify_totp(RFC_SECRET, code, at=NOW, last_used_step=None) is None


def test_wrong_code_refused() -> None:
    secret = new_totp_secret()
    code = current_code(secret, NOW)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert verify_totp(secret, wrong, at=NOW, last_used_step=None) is None
    assert verify_totp(new_totp_secret(), code, at=NOW, last_used_step=None) is None


def test_naive_datetime_refused_and_timezones_respected() -> None:
    secret = new_totp_secret()
    with pytest.raises(ValueError):
        verify_totp(secret, "123456", at=datetime(2026, 11, 25, 10, 0), last_used_step=None)
    with pytest.raises(ValueError):
        current_code(secret, datetime(2026, 11, 25, 10, 0))
    bst = timezone(timedelta(hours=1))
    assert current_code(secret, NOW.astimezone(bst)) == current_code(secret, NOW)
