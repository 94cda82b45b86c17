"""Field encryption: AAD binding, tamper detection and key rotation (R41, R42, R44, R47)."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from transitions.crypto import CryptoError, DecryptionError, FieldCipher, Keyring, UnknownKeyError

K1 = bytes(range(32))
K2 = bytes(range(50, 82))
K3 = bytes(range(200, 232))
LOC = {"table": "child", "column": "legal_name", "row_id": "9b2f6a9e-3c1d-4a51-8f0e-1f1e2d3c4b5a"}
PLAINTEXT = "Zoë Smith — likes dinosaurs, allergic to penicillin"


@pytest.fixture
def ring1() -> Keyring:
    return Keyring(keys={"k1": K1}, active_id="k1")


@pytest.fixture
def cipher(ring1: Keyring) -> FieldCipher:
    return FieldCipher(ring1)


def test_round_trip(cipher: FieldCipher) -> None:
    for text in (PLAINTEXT, "", "a", "🦕" * 1000, "line1\nline2\x00end"):
        assert cipher.decrypt(cipher.encrypt(text, **LOC), **LOC) == text


def test_format_and_aad_match_the_documented_layout(cipher: FieldCipher, ring1: Keyring) -> None:
    blob = cipher.encrypt(PLAINTEXT, **LOC)
    assert blob[0] == 1
    assert blob[1] == 2
    assert blob[2:4] == b"k1"
    assert len(blob) == 1 + 1 + 2 + 12 + len(PLAINTEXT.encode()) + 16
    nonce, sealed = blob[4:16], blob[16:]
    aad = f"v1|{LOC['table']}|{LOC['column']}|{LOC['row_id']}|k1".encode()
    plain = AESGCM(ring1.derive("k1", "field")).decrypt(nonce, sealed, aad)
    assert plain.decode() == PLAINTEXT


def test_master_key_is_not_used_directly(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(PLAINTEXT, **LOC)
    aad = f"v1|{LOC['table']}|{LOC['column']}|{LOC['row_id']}|k1".encode()
    with pytest.raises(InvalidTag):
        AESGCM(K1).decrypt(blob[4:16], blob[16:], aad)


def test_fresh_nonce_every_time(cipher: FieldCipher) -> None:
    blobs = {cipher.encrypt(PLAINTEXT, **LOC) for _ in range(100)}
    assert len(blobs) == 100
    assert len({b[4:16] for b in blobs}) == 100


@pytest.mark.parametrize(
    "moved",
    [
        {"row_id": "0f9e8d7c-0000-4000-8000-000000000000"},
        {"column": "preferred_name"},
        {"table": "carer"},
    ],
    ids=["other-row", "other-column", "other-table"],
)
def test_ciphertext_copied_elsewhere_fails(cipher: FieldCipher, moved: dict[str, str]) -> None:
    blob = cipher.encrypt(PLAINTEXT, **LOC)
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(blob, **{**LOC, **moved})
    assert PLAINTEXT not in str(info.value)
    assert "Zo" not in str(info.value)


def test_every_flipped_byte_fails(cipher: FieldCipher) -> None:
    blob = cipher.encrypt("short secret", **LOC)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(CryptoError):
            cipher.decrypt(bytes(tampered), **LOC)
        if i >= 4:  # nonce, ciphertext or tag: always an authentication failure
            with pytest.raises(DecryptionError):
                cipher.decrypt(bytes(tampered), **LOC)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x01",
        b"\x02\x02k1" + bytes(40),
        b"\x01\x02k1" + bytes(27),
        b"\x01\x00" + bytes(40),
        b"\x01\x02\xff\xfe" + bytes(40),
        b"\x01\x02k!" + bytes(40),
    ],
    ids=["empty", "one-byte", "bad-version", "too-short", "empty-kid", "non-ascii-kid", "bad-kid-chars"],
)
def test_malformed_blobs_raise_decryption_error(cipher: FieldCipher, blob: bytes) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, **LOC)


def test_truncated_blob_fails(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(PLAINTEXT, **LOC)
    for cut in (1, 5, 16, len(blob) - 20):
        with pytest.raises(DecryptionError):
            cipher.decrypt(blob[:-cut], **LOC)
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob + b"\x00", **LOC)


def test_swapping_key_id_to_another_known_key_fails() -> None:
    ring = Keyring(keys={"k1": K1, "k2": K2}, active_id="k1")
    cipher = FieldCipher(ring)
    blob = cipher.encrypt(PLAINTEXT, **LOC)
    swapped = blob[:2] + b"k2" + blob[4:]
    assert cipher.key_id_of(swapped) == "k2"
    with pytest.raises(DecryptionError):
        cipher.decrypt(swapped, **LOC)


def test_rotation_old_data_still_reads_and_reencrypt_moves_it(ring1: Keyring) -> None:
    old_blob = FieldCipher(ring1).encrypt(PLAINTEXT, **LOC)
    ring2 = ring1.with_new_active("k2", K2)
    cipher2 = FieldCipher(ring2)
    assert cipher2.decrypt(old_blob, **LOC) == PLAINTEXT
    assert cipher2.key_id_of(old_blob) == "k1"
    assert cipher2.needs_rotation(old_blob)

    new_blob = cipher2.reencrypt(old_blob, **LOC)
    assert cipher2.key_id_of(new_blob) == "k2"
    assert not cipher2.needs_rotation(new_blob)
    assert cipher2.decrypt(new_blob, **LOC) == PLAINTEXT
    # k1 can now be retired: the re-encrypted value needs only k2 ...
    only_k2 = FieldCipher(Keyring(keys={"k2": K2}, active_id="k2"))
    assert only_k2.decrypt(new_blob, **LOC) == PLAINTEXT
    # ... and the old value genuinely needed k1.
    with pytest.raises(UnknownKeyError):
        only_k2.decrypt(old_blob, **LOC)


def test_reencrypt_verifies_the_location(ring1: Keyring) -> None:
    cipher = FieldCipher(ring1.with_new_active("k2", K2))
    blob = FieldCipher(ring1).encrypt(PLAINTEXT, **LOC)
    with pytest.raises(DecryptionError):
        cipher.reencrypt(blob, **{**LOC, "row_id": "another-row"})


def test_unknown_key_id_raises_unknown_key_error(cipher: FieldCipher) -> None:
    foreign = FieldCipher(Keyring(keys={"k9": K3}, active_id="k9")).encrypt(PLAINTEXT, **LOC)
    with pytest.raises(UnknownKeyError):
        cipher.decrypt(foreign, **LOC)
    same_id_other_bytes = FieldCipher(Keyring(keys={"k1": K3}, active_id="k1")).encrypt(PLAINTEXT, **LOC)
    with pytest.raises(DecryptionError):
        cipher.decrypt(same_id_other_bytes, **LOC)


def test_key_id_of_rejects_garbage(cipher: FieldCipher) -> None:
    with pytest.raises(DecryptionError):
        cipher.key_id_of(b"garbage")
    with pytest.raises(DecryptionError):
        cipher.needs_rotation(b"")


@pytest.mark.parametrize(
    "bad",
    [{"row_id": ""}, {"table": ""}, {"column": ""}, {"table": "a|b"}, {"column": "x|"}, {"row_id": "1|2"}],
)
def test_ambiguous_or_missing_location_is_a_programming_error(
    cipher: FieldCipher, bad: dict[str, str]
) -> None:
    with pytest.raises(ValueError):
        cipher.encrypt(PLAINTEXT, **{**LOC, **bad})
    blob = cipher.encrypt(PLAINTEXT, **LOC)
    with pytest.raises(ValueError):
        cipher.decrypt(blob, **{**LOC, **bad})


locations = st.text(st.characters(codec="utf-8", exclude_characters="|"), min_size=1, max_size=40)


@settings(max_examples=200, database=None, deadline=None)
@given(plaintext=st.text(max_size=300), table=locations, column=locations, row_id=locations)
def test_round_trip_property(plaintext: str, table: str, column: str, row_id: str) -> None:
    cipher = FieldCipher(Keyring(keys={"k1": K1, "k2": K2}, active_id="k1"))
    blob = cipher.encrypt(plaintext, table=table, column=column, row_id=row_id)
    assert cipher.decrypt(blob, table=table, column=column, row_id=row_id) == plaintext


@settings(max_examples=200, database=None, deadline=None)
@given(plaintext=st.text(max_size=100), data=st.data())
def test_any_single_byte_change_fails_property(plaintext: str, data: st.DataObject) -> None:
    cipher = FieldCipher(Keyring(keys={"k1": K1, "k2": K2}, active_id="k1"))
    blob = cipher.encrypt(plaintext, **LOC)
    index = data.draw(st.integers(0, len(blob) - 1), label="index")
    delta = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(blob)
    tampered[index] ^= delta
    with pytest.raises(CryptoError) as info:
        cipher.decrypt(bytes(tampered), **LOC)
    assert isinstance(info.value, (DecryptionError, UnknownKeyError))
