"""Keyring parsing, validation, derivation and rotation (R42, R44, R46)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from transitions.crypto import (
    KeyringError,
    UnknownKeyError,
    format_key_spec,
    generate_key,
)
from transitions.crypto.keyring import Keyring

K1 = bytes(range(32))
K2 = bytes(range(100, 132))


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def test_parse_first_entry_is_active_and_order_is_kept() -> None:
    ring = Keyring.parse(f"2026-11:{b64(K2)} 2025-01:{b64(K1)}")
    assert ring.active_id == "2026-11"
    assert list(ring.keys) == ["2026-11", "2025-01"]
    assert ring.key("2026-11") == K2
    assert ring.key("2025-01") == K1


@pytest.mark.parametrize("sep", [" ", ",", ", ", "\n", "\t ,\n"])
def test_parse_accepts_whitespace_and_commas(sep: str) -> None:
    ring = Keyring.parse(f"  a:{b64(K1)}{sep}b:{b64(K2)}  ")
    assert list(ring.keys) == ["a", "b"]


def test_parse_accepts_padded_base64() -> None:
    padded = base64.urlsafe_b64encode(K1).decode()
    assert padded.endswith("=")
    assert Keyring.parse(f"k:{padded}").key("k") == K1


def test_format_key_spec_is_inverse_of_parse() -> None:
    spec = format_key_spec([("new", K2), ("old", K1)])
    assert "=" not in spec
    assert spec == f"new:{b64(K2)} old:{b64(K1)}"
    ring = Keyring.parse(spec)
    assert ring.active_id == "new"
    assert dict(ring.keys) == {"new": K2, "old": K1}


@settings(max_examples=200, database=None, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True),
        st.binary(min_size=32, max_size=32),
        min_size=1,
        max_size=5,
    )
)
def test_format_parse_round_trip_property(keys: dict[str, bytes]) -> None:
    ring = Keyring.parse(format_key_spec(keys.items()))
    assert dict(ring.keys) == keys
    assert list(ring.keys) == list(keys)
    assert ring.active_id == next(iter(keys))


SECRETISH = b64(b"\xaa" * 31)  # a 31-byte key: recognisable if echoed in a message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty"),
        ("   , \n", "empty"),
        (SECRETISH, "KEYID:BASE64URL"),
        (f"bad.id!:{b64(K1)}", "key id"),
        (f"{'x' * 33}:{b64(K1)}", "key id"),
        (f":{b64(K1)}", "key id"),
        (f"{SECRETISH}x:{b64(K1)}", "key id"),
        (f"k:{SECRETISH}", "exactly 32 bytes"),
        (f"k:{b64(K1 + b'x')}", "exactly 32 bytes"),
        ("k:", "base64"),
        (f"k:{b64(K1)[:-2]}+/", "base64"),
        ("k:" + "A" * 41 + "!", "base64"),
        (f"k:{b64(K1)} k:{b64(K2)}", "duplicate"),
    ],
)
def test_parse_rejects_bad_specs_without_echoing_keys(spec: str, fragment: str) -> None:
    with pytest.raises(KeyringError) as info:
        Keyring.parse(spec)
    message = str(info.value)
    assert fragment in message
    assert SECRETISH not in message
    assert b64(K1) not in message
    assert b64(K2) not in message


def test_direct_construction_is_validated() -> None:
    with pytest.raises(KeyringError):
        Keyring(keys={}, active_id="a")
    with pytest.raises(KeyringError):
        Keyring(keys={"a": K1}, active_id="b")
    with pytest.raises(KeyringError):
        Keyring(keys={"a": K1[:16]}, active_id="a")
    with pytest.raises(KeyringError):
        Keyring(keys={"a b": K1}, active_id="a b")


def test_keys_mapping_is_read_only_and_copied() -> None:
    source = {"a": K1}
    ring = Keyring(keys=source, active_id="a")
    source["b"] = K2
    assert list(ring.keys) == ["a"]
    with pytest.raises(TypeError):
        ring.keys["b"] = K2  # type: ignore[index]


def test_repr_never_shows_key_material() -> None:
    ring = Keyring.parse(f"a:{b64(K1)} b:{b64(K2)}")
    text = repr(ring) + str(ring)
    assert "a" in text and "b" in text
    for key in (K1, K2):
        assert b64(key) not in text
        assert repr(key) not in text
        assert key.hex() not in text


def test_unknown_key_is_a_keyring_error() -> None:
    ring = Keyring(keys={"a": K1}, active_id="a")
    with pytest.raises(UnknownKeyError):
        ring.key("zzz")
    with pytest.raises(KeyringError):
        ring.derive("zzz", "field")


def test_derive_is_hkdf_sha256_with_purpose_info() -> None:
    ring = Keyring(keys={"a": K1, "b": K2}, active_id="a")
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cla-transitions|field").derive(K1)
    assert ring.derive("a", "field") == expected
    assert len(ring.derive("a", "blob-kek")) == 32
    assert ring.derive("a", "field") != ring.derive("a", "blob-kek")
    assert ring.derive("a", "field") != ring.derive("b", "field")
    assert ring.derive("a", "field") != K1
    with pytest.raises(ValueError):
        ring.derive("a", "")


def test_derive_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = HKDF

    def counting(**kwargs: object) -> HKDF:
        calls.append(kwargs["info"])  # type: ignore[arg-type]
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("transitions.crypto.keyring.HKDF", counting)
    ring = Keyring(keys={"a": K1}, active_id="a")
    first = ring.derive("a", "field")
    for _ in range(100):
        assert ring.derive("a", "field") == first
    ring.derive("a", "other")
    assert calls == [b"cla-transitions|field", b"cla-transitions|other"]


def test_with_new_active_keeps_old_keys_and_leaves_original_alone() -> None:
    ring = Keyring(keys={"k1": K1}, active_id="k1")
    rotated = ring.with_new_active("k2", K2)
    assert rotated.active_id == "k2"
    assert list(rotated.keys) == ["k2", "k1"]
    assert rotated.key("k1") == K1
    assert ring.active_id == "k1"
    assert list(ring.keys) == ["k1"]


def test_with_new_active_refuses_different_bytes_for_existing_id() -> None:
    ring = Keyring(keys={"k1": K1, "k2": K2}, active_id="k2")
    with pytest.raises(KeyringError):
        ring.with_new_active("k1", K2)
    back = ring.with_new_active("k1", K1)  # re-activating the same key is fine
    assert back.active_id == "k1"
    assert list(back.keys) == ["k1", "k2"]
    with pytest.raises(KeyringError):
        ring.with_new_active("k3", b"short")
    with pytest.raises(KeyringError):
        ring.with_new_active("bad id", generate_key())


def test_generate_key_is_32_random_bytes() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 32 for k in keys)


def test_format_key_spec_validates() -> None:
    with pytest.raises(KeyringError):
        format_key_spec([])
    with pytest.raises(KeyringError):
        format_key_spec([("a", K1), ("a", K2)])
    with pytest.raises(KeyringError):
        format_key_spec([("a", K1[:31])])
