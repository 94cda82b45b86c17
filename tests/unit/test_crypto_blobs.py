"""Chunked envelope encryption of uploads and packs (R43, R44, R47)."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transitions.crypto import BlobCipher, CryptoError, DecryptionError, Keyring, UnknownKeyError
from transitions.crypto.blobs import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE

K1 = bytes(range(32))
K2 = bytes(range(64, 96))
CHUNK = 256
TAG = 16
CONTEXT = "pack|6d1f0c2e-0000-4000-8000-000000000001|3"
DATA = bytes((i * 7 + 3) % 251 for i in range(1024))  # 1 KiB = 4 chunks of 256 bytes


def header_len(blob: bytes) -> int:
    return 2 + blob[1] + 4 + 4 + 12 + 48


def split(blob: bytes, chunk_size: int = CHUNK) -> tuple[bytes, list[bytes]]:
    """(header, chunks) following the documented format."""
    h = header_len(blob)
    body = blob[h:]
    step = chunk_size + TAG
    return blob[:h], [body[i : i + step] for i in range(0, len(body), step)]


@pytest.fixture
def ring1() -> Keyring:
    return Keyring(keys={"k1": K1}, active_id="k1")


@pytest.fixture
def cipher(ring1: Keyring) -> BlobCipher:
    return BlobCipher(ring1, chunk_size=CHUNK)


def stream_encrypt(cipher: BlobCipher, data: bytes, context: str = CONTEXT) -> bytes:
    out = io.BytesIO()
    cipher.encrypt_stream(io.BytesIO(data), out, context=context)
    return out.getvalue()


def stream_decrypt(cipher: BlobCipher, blob: bytes, context: str = CONTEXT) -> bytes:
    out = io.BytesIO()
    cipher.decrypt_stream(io.BytesIO(blob), out, context=context)
    return out.getvalue()


SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 1000, 1024]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_all_four_combinations(cipher: BlobCipher, size: int) -> None:
    data = DATA[:size]
    one_shot = cipher.encrypt(data, context=CONTEXT)
    streamed = stream_encrypt(cipher, data)
    assert len(one_shot) == len(streamed)
    for blob in (one_shot, streamed):
        assert cipher.decrypt(blob, context=CONTEXT) == data
        assert stream_decrypt(cipher, blob) == data


@pytest.mark.parametrize("size", SIZES)
def test_layout_matches_the_documented_format(cipher: BlobCipher, size: int) -> None:
    blob = cipher.encrypt(DATA[:size], context=CONTEXT)
    assert blob[0] == 1
    assert blob[1] == 2
    assert blob[2:4] == b"k1"
    assert struct.unpack(">I", blob[4:8])[0] == CHUNK
    _, chunks = split(blob)
    expected_chunks = max(1, -(-size // CHUNK))
    assert len(chunks) == expected_chunks
    assert all(len(c) == CHUNK + TAG for c in chunks[:-1])
    assert len(chunks[-1]) == (size - (expected_chunks - 1) * CHUNK) + TAG


def test_empty_data_is_one_empty_final_chunk(cipher: BlobCipher) -> None:
    blob = cipher.encrypt(b"", context=CONTEXT)
    assert len(blob) == header_len(blob) + TAG
    assert cipher.decrypt(blob, context=CONTEXT) == b""
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob[:-TAG], context=CONTEXT)


def test_each_blob_has_a_fresh_dek_and_nonce_prefix(cipher: BlobCipher) -> None:
    a = cipher.encrypt(DATA, context=CONTEXT)
    b = cipher.encrypt(DATA, context=CONTEXT)
    assert a[4:8] == b[4:8]
    assert a[8:12] != b[8:12]  # nonce prefix
    assert a[header_len(a) - 48 : header_len(a)] != b[header_len(b) - 48 : header_len(b)]  # wrapped DEK
    assert split(a)[1][0] != split(b)[1][0]


def tamper_cases(blob: bytes) -> dict[str, bytes]:
    header, chunks = split(blob)
    assert len(chunks) == 4
    extra = bytes(CHUNK + TAG)
    return {
        "drop-first": header + b"".join(chunks[1:]),
        "drop-middle": header + b"".join([chunks[0], chunks[2], chunks[3]]),
        "drop-last": header + b"".join(chunks[:3]),
        "swap-0-1": header + b"".join([chunks[1], chunks[0], chunks[2], chunks[3]]),
        "swap-2-3": header + b"".join([chunks[0], chunks[1], chunks[3], chunks[2]]),
        "duplicate-chunk": header + b"".join([chunks[0], chunks[0], chunks[1], chunks[2], chunks[3]]),
        "truncate-mid-chunk": blob[:-100],
        "truncate-one-byte": blob[:-1],
        "truncate-to-header": header,
        "truncate-inside-header": blob[: header_len(blob) - 1],
        "append-zeros": blob + extra,
        "append-copy-of-last": blob + chunks[3],
        "append-byte": blob + b"\x00",
    }


TAMPER_CASES = [
    "drop-first",
    "drop-middle",
    "drop-last",
    "swap-0-1",
    "swap-2-3",
    "duplicate-chunk",
    "truncate-mid-chunk",
    "truncate-one-byte",
    "truncate-to-header",
    "truncate-inside-header",
    "append-zeros",
    "append-copy-of-last",
    "append-byte",
]


def test_tamper_case_list_is_complete(cipher: BlobCipher) -> None:
    assert sorted(tamper_cases(cipher.encrypt(DATA, context=CONTEXT))) == sorted(TAMPER_CASES)


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_dropped_reordered_truncated_or_extended_chunks_fail(cipher: BlobCipher, case: str) -> None:
    blob = cipher.encrypt(DATA, context=CONTEXT)
    tampered = tamper_cases(blob)[case]
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, context=CONTEXT)
    with pytest.raises(DecryptionError):
        stream_decrypt(cipher, tampered)


def test_every_flipped_byte_fails(cipher: BlobCipher) -> None:
    blob = cipher.encrypt(DATA[:600], context=CONTEXT)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x80
        with pytest.raises(CryptoError):
            cipher.decrypt(bytes(tampered), context=CONTEXT)
        if i >= 4:  # past version and key id: always an authentication/format failure
            with pytest.raises(DecryptionError):
                stream_decrypt(cipher, bytes(tampered))


@pytest.mark.parametrize("other", ["pack|6d1f0c2e-0000-4000-8000-000000000001|4", "upload|x", CONTEXT + " "])
def test_wrong_context_fails(cipher: BlobCipher, other: str) -> None:
    blob = cipher.encrypt(DATA, context=CONTEXT)
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, context=other)
    with pytest.raises(DecryptionError):
        stream_decrypt(cipher, blob, context=other)
    with pytest.raises(DecryptionError):
        cipher.rewrap(blob, context=other)


def test_chunk_moved_between_blobs_with_same_context_fails(cipher: BlobCipher) -> None:
    a = cipher.encrypt(DATA, context=CONTEXT)
    b = cipher.encrypt(DATA, context=CONTEXT)
    ha, ca = split(a)
    _, cb = split(b)
    with pytest.raises(DecryptionError):
        cipher.decrypt(ha + b"".join([ca[0], cb[1], ca[2], ca[3]]), context=CONTEXT)


def test_rotation_and_rewrap(ring1: Keyring) -> None:
    old = BlobCipher(ring1, chunk_size=CHUNK)
    blob = old.encrypt(DATA, context=CONTEXT)
    ring2 = ring1.with_new_active("k2", K2)
    new = BlobCipher(ring2, chunk_size=CHUNK)

    assert new.decrypt(blob, context=CONTEXT) == DATA  # still readable after k2 became active
    assert new.key_id_of(blob) == "k1"
    assert new.needs_rotation(blob)
    assert not old.needs_rotation(blob)

    rewrapped = new.rewrap(blob, context=CONTEXT)
    assert new.key_id_of(rewrapped) == "k2"
    assert not new.needs_rotation(rewrapped)
    assert rewrapped[header_len(rewrapped) :] == blob[header_len(blob) :]  # chunk bytes untouched
    assert rewrapped[header_len(rewrapped) - 48 :][:48] != blob[header_len(blob) - 48 :][:48]

    only_k2 = BlobCipher(Keyring(keys={"k2": K2}, active_id="k2"))
    assert only_k2.decrypt(rewrapped, context=CONTEXT) == DATA
    assert stream_decrypt(only_k2, rewrapped) == DATA
    with pytest.raises(UnknownKeyError):
        only_k2.decrypt(blob, context=CONTEXT)
    with pytest.raises(UnknownKeyError):
        old.decrypt(rewrapped, context=CONTEXT)  # the old keyring cannot read the rewrapped blob


def test_rewrapped_header_cannot_be_grafted_onto_other_chunks(cipher: BlobCipher) -> None:
    a = cipher.encrypt(DATA, context=CONTEXT)
    b = cipher.encrypt(DATA, context=CONTEXT)
    with pytest.raises(DecryptionError):
        cipher.decrypt(a[: header_len(a)] + b[header_len(b) :], context=CONTEXT)


def test_unknown_key_id(cipher: BlobCipher) -> None:
    foreign = BlobCipher(Keyring(keys={"k9": K2}, active_id="k9"), chunk_size=CHUNK)
    blob = foreign.encrypt(DATA, context=CONTEXT)
    with pytest.raises(UnknownKeyError):
        cipher.decrypt(blob, context=CONTEXT)
    with pytest.raises(UnknownKeyError):
        stream_decrypt(cipher, blob)
    with pytest.raises(UnknownKeyError):
        cipher.rewrap(blob, context=CONTEXT)
    assert cipher.key_id_of(blob) == "k9"


def test_swapped_key_id_to_known_key_fails() -> None:
    ring = Keyring(keys={"k1": K1, "k2": K2}, active_id="k1")
    cipher = BlobCipher(ring, chunk_size=CHUNK)
    blob = cipher.encrypt(DATA, context=CONTEXT)
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob[:2] + b"k2" + blob[4:], context=CONTEXT)


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        (4, struct.pack(">I", CHUNK * 2)),
        (4, struct.pack(">I", 128)),
        (4, struct.pack(">I", 0)),
        (4, struct.pack(">I", MAX_CHUNK_SIZE + 1)),
        (4, struct.pack(">I", 0xFFFFFFFF)),
        (0, b"\x02"),
    ],
    ids=[
        "chunk-size-doubled",
        "chunk-size-halved",
        "chunk-size-zero",
        "chunk-size-huge",
        "chunk-size-max",
        "version",
    ],
)
def test_header_edits_fail(cipher: BlobCipher, offset: int, value: bytes) -> None:
    blob = cipher.encrypt(DATA, context=CONTEXT)
    tampered = blob[:offset] + value + blob[offset + len(value) :]
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, context=CONTEXT)
    with pytest.raises(DecryptionError):
        stream_decrypt(cipher, tampered)


def test_chunk_size_comes_from_the_header(ring1: Keyring) -> None:
    small = BlobCipher(ring1, chunk_size=CHUNK)
    default = BlobCipher(ring1)
    assert default.decrypt(small.encrypt(DATA, context=CONTEXT), context=CONTEXT) == DATA
    assert small.decrypt(default.encrypt(DATA, context=CONTEXT), context=CONTEXT) == DATA
    blob = default.encrypt(DATA, context=CONTEXT)
    assert struct.unpack(">I", blob[4:8])[0] == DEFAULT_CHUNK_SIZE == 1024 * 1024
    assert len(split(blob, DEFAULT_CHUNK_SIZE)[1]) == 1


def test_default_chunking_of_multi_mebibyte_data(ring1: Keyring) -> None:
    cipher = BlobCipher(ring1)
    data = bytes(range(256)) * (4096 * 2 + 3)  # 2 MiB + 768 bytes -> 3 chunks
    blob = cipher.encrypt(data, context=CONTEXT)
    assert len(blob) == header_len(blob) + len(data) + 3 * TAG
    assert cipher.decrypt(blob, context=CONTEXT) == data
    assert stream_decrypt(cipher, blob) == data


class SpyReader(io.RawIOBase):
    """A raw stream that returns short reads and records the sizes asked for."""

    def __init__(self, data: bytes, max_return: int) -> None:
        self._buf = io.BytesIO(data)
        self._max_return = max_return
        self.requests: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.requests.append(size)
        assert size >= 0, "must never read the whole stream"
        return self._buf.read(min(size, self._max_return))


class SpyWriter(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    def write(self, data: Any) -> int:
        self.writes.append(len(data))
        return super().write(data)


def test_streaming_works_with_short_reads_and_holds_about_one_chunk(cipher: BlobCipher) -> None:
    src = SpyReader(DATA, max_return=7)
    dst = SpyWriter()
    cipher.encrypt_stream(src, dst, context=CONTEXT)  # type: ignore[arg-type]
    assert max(src.requests) <= CHUNK
    assert max(dst.writes) <= CHUNK + TAG
    blob = dst.getvalue()
    assert cipher.decrypt(blob, context=CONTEXT) == DATA

    src2 = SpyReader(blob, max_return=5)
    dst2 = SpyWriter()
    cipher.decrypt_stream(src2, dst2, context=CONTEXT)  # type: ignore[arg-type]
    assert max(src2.requests) <= CHUNK + TAG
    assert max(dst2.writes) <= CHUNK
    assert dst2.getvalue() == DATA


def test_stream_decrypt_writes_only_authenticated_chunks(cipher: BlobCipher) -> None:
    blob = cipher.encrypt(DATA, context=CONTEXT)
    header, chunks = split(blob)
    bad = bytearray(chunks[2])
    bad[0] ^= 1
    out = io.BytesIO()
    with pytest.raises(DecryptionError):
        cipher.decrypt_stream(
            io.BytesIO(header + chunks[0] + chunks[1] + bytes(bad) + chunks[3]), out, context=CONTEXT
        )
    assert out.getvalue() == DATA[: 2 * CHUNK]  # a verified prefix only; the caller discards it


def test_argument_validation(ring1: Keyring) -> None:
    with pytest.raises(ValueError):
        BlobCipher(ring1, chunk_size=0)
    with pytest.raises(ValueError):
        BlobCipher(ring1, chunk_size=MAX_CHUNK_SIZE + 1)
    cipher = BlobCipher(ring1, chunk_size=CHUNK)
    with pytest.raises(ValueError):
        cipher.encrypt(DATA, context="")
    blob = cipher.encrypt(DATA, context=CONTEXT)
    with pytest.raises(ValueError):
        cipher.decrypt(blob, context="")
    with pytest.raises(DecryptionError):
        cipher.key_id_of(b"\x01")


@settings(max_examples=200, database=None, deadline=None)
@given(data=st.binary(max_size=2000), chunk_size=st.integers(1, 700), streaming=st.booleans())
def test_round_trip_property(data: bytes, chunk_size: int, streaming: bool) -> None:
    cipher = BlobCipher(Keyring(keys={"k1": K1}, active_id="k1"), chunk_size=chunk_size)
    blob = stream_encrypt(cipher, data) if streaming else cipher.encrypt(data, context=CONTEXT)
    assert cipher.decrypt(blob, context=CONTEXT) == data
    assert stream_decrypt(cipher, blob) == data
