"""Envelope encryption for uploads and handover packs (R43, R44).

Each blob gets a fresh random 256-bit data key (DEK). The DEK encrypts the data in fixed-size chunks
with AES-256-GCM; the DEK itself is wrapped with AES-256-GCM under the keyring's derived ``blob-kek``
key, which never leaves the keyring (no KEK in the database or its backups). Rotation therefore only
re-wraps the 48-byte DEK (:meth:`BlobCipher.rewrap`); the chunk ciphertext is left byte-for-byte alone.

Format (all integers big-endian)::

    offset  size  field
    0       1     version = 0x01
    1       1     n = length of key id (1..32)
    2       n     key id (ASCII) of the KEK that wrapped the DEK
    2+n     4     chunk size S (plaintext bytes per chunk)
    6+n     4     nonce prefix P (random)
    10+n    12    wrap nonce (random)
    22+n    48    wrapped DEK = AES-GCM(KEK, DEK) with AAD
                  "v1|blob-dek|<key id>|<S>|<P hex>|<context>"
    70+n    ...   chunks: every chunk is S + 16 bytes except the last, which is 16..S+16 bytes

Chunk i (from 0) is AES-GCM(DEK) with nonce ``P || i (8 bytes)`` and AAD ``"<context>|<i>|<0 or 1>"``,
the last field being 1 only for the final chunk. Dropping or reordering a chunk changes its index,
truncating at a chunk boundary leaves a final chunk sealed with ``is_last = 0``, and appending data
follows a chunk sealed with ``is_last = 1``: all fail authentication. Empty data is one empty final
chunk (just a tag). The header fields are bound by the wrap AAD, so editing them fails at unwrap.

Streaming decryption writes each chunk as soon as it is authenticated; when ``decrypt_stream`` raises,
whatever it wrote is an incomplete prefix and the caller must discard it.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import DecryptionError
from .keyring import KEY_ID_PATTERN, Keyring

__all__ = ["DEFAULT_CHUNK_SIZE", "MAX_CHUNK_SIZE", "BlobCipher"]

DEFAULT_CHUNK_SIZE = 1024 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024  # an attacker-controlled header must not make us allocate gigabytes
_VERSION = 1
_DEK_LEN = 32
_TAG_LEN = 16
_PREFIX_LEN = 4
_WRAP_NONCE_LEN = 12
_WRAPPED_LEN = _DEK_LEN + _TAG_LEN
_FIXED = struct.Struct(f">I{_PREFIX_LEN}s{_WRAP_NONCE_LEN}s{_WRAPPED_LEN}s")  # after the key id
_PURPOSE = "blob-kek"
_FAILED = "blob cannot be decrypted (tampered, truncated, reordered or wrong context)"


class _Header:
    __slots__ = ("chunk_size", "key_id", "prefix", "wrap_nonce", "wrapped")

    def __init__(
        self, key_id: str, chunk_size: int, prefix: bytes, wrap_nonce: bytes, wrapped: bytes
    ) -> None:
        self.key_id = key_id
        self.chunk_size = chunk_size
        self.prefix = prefix
        self.wrap_nonce = wrap_nonce
        self.wrapped = wrapped

    def pack(self) -> bytes:
        kid = self.key_id.encode("ascii")
        fixed = _FIXED.pack(self.chunk_size, self.prefix, self.wrap_nonce, self.wrapped)
        return b"".join((bytes((_VERSION, len(kid))), kid, fixed))

    def wrap_aad(self, context: str) -> bytes:
        return f"v1|blob-dek|{self.key_id}|{self.chunk_size}|{self.prefix.hex()}|{context}".encode()


def _parse_start(start: bytes) -> int:
    """Validate the 2-byte start of the header and return the key id length."""
    if len(start) != 2 or start[0] != _VERSION or not 1 <= start[1] <= 32:
        raise DecryptionError(_FAILED)
    return start[1]


def _parse_rest(kid: bytes, fixed: bytes) -> _Header:
    if len(fixed) != _FIXED.size:
        raise DecryptionError(_FAILED)
    try:
        key_id = kid.decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError(_FAILED) from None
    if KEY_ID_PATTERN.fullmatch(key_id) is None:
        raise DecryptionError(_FAILED)
    chunk_size, prefix, wrap_nonce, wrapped = _FIXED.unpack(fixed)
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise DecryptionError(_FAILED)
    return _Header(key_id, chunk_size, prefix, wrap_nonce, wrapped)


def _parse_header(blob: bytes | memoryview) -> tuple[_Header, int]:
    kid_len = _parse_start(bytes(blob[:2]))
    end = 2 + kid_len + _FIXED.size
    if len(blob) < end:
        raise DecryptionError(_FAILED)
    return _parse_rest(bytes(blob[2 : 2 + kid_len]), bytes(blob[2 + kid_len : end])), end


def _read_exact(src: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at EOF; raw streams and pipes may return short reads."""
    data = src.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining:
        more = src.read(remaining)
        if not more:
            break
        parts.append(more)
        remaining -= len(more)
    return b"".join(parts)


def _chunk_aad(context: str, index: int, is_last: bool) -> bytes:
    return f"{context}|{index}|{int(is_last)}".encode()


def _chunk_nonce(header: _Header, index: int) -> bytes:
    return header.prefix + index.to_bytes(8, "big")


def _output(size: int) -> io.BytesIO:
    """A BytesIO over ``size`` zero bytes, to be filled in place through ``getbuffer()``.

    ``bytes(size)`` is one zeroed allocation (calloc; a large one gets fresh zero pages), BytesIO adopts
    that bytes object without copying it, and once every view from ``getbuffer()`` is released ``getvalue()``
    hands the same object back. So the result is allocated once and never copied, where ``b"".join`` of
    per-chunk results held the chunks and the joined copy at the same time (2x the blob) and copied it all.
    On an interpreter without these shortcuts ``getvalue()`` copies, which is slower but still correct.
    """
    return io.BytesIO(bytes(size))


def _check_context(context: str) -> None:
    if not context:
        raise ValueError("context must not be empty (e.g. 'pack|<pack id>|<version>')")


class BlobCipher:
    """Chunked envelope encryption; see the module docstring for the format."""

    def __init__(self, keyring: Keyring, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}")
        self._keyring = keyring
        self._chunk_size = chunk_size
        self._keks: dict[str, AESGCM] = {}

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def _kek(self, key_id: str) -> AESGCM:
        kek = self._keks.get(key_id)
        if kek is None:
            kek = AESGCM(self._keyring.derive(key_id, _PURPOSE))
            self._keks[key_id] = kek
        return kek

    # -- header and DEK -------------------------------------------------------------------------

    def _new_header(self, dek: bytes, context: str) -> _Header:
        header = _Header(
            self._keyring.active_id,
            self._chunk_size,
            os.urandom(_PREFIX_LEN),
            os.urandom(_WRAP_NONCE_LEN),
            b"",
        )
        header.wrapped = self._kek(header.key_id).encrypt(header.wrap_nonce, dek, header.wrap_aad(context))
        return header

    def _unwrap(self, header: _Header, context: str) -> bytes:
        kek = self._kek(header.key_id)  # UnknownKeyError for a retired or foreign key id
        try:
            return kek.decrypt(header.wrap_nonce, header.wrapped, header.wrap_aad(context))
        except InvalidTag:
            raise DecryptionError(_FAILED) from None

    # -- chunk loops shared by the one-shot and streaming paths -------------------------------

    @staticmethod
    def _seal_chunks(
        dek: bytes, header: _Header, context: str, chunks: Iterator[tuple[bytes | memoryview, bool]]
    ) -> Iterator[bytes]:
        # No enumerate() and no local bound across the yield: enumerate's reused result tuple and a stale
        # local would each keep one more chunk alive while the next one is read.
        aead = AESGCM(dek)
        index = 0
        for chunk, is_last in chunks:
            yield aead.encrypt(_chunk_nonce(header, index), chunk, _chunk_aad(context, index, is_last))
            del chunk
            index += 1  # noqa: SIM113 - see above: enumerate() would keep the previous chunk alive

    @staticmethod
    def _open_chunks(
        dek: bytes, header: _Header, context: str, chunks: Iterator[tuple[bytes | memoryview, bool]]
    ) -> Iterator[bytes]:
        aead = AESGCM(dek)  # the loop is written as in _seal_chunks, for the same reason
        seen_last = False
        index = 0
        for chunk, is_last in chunks:
            if len(chunk) < _TAG_LEN:
                raise DecryptionError(_FAILED)
            try:
                opened = aead.decrypt(_chunk_nonce(header, index), chunk, _chunk_aad(context, index, is_last))
            except InvalidTag:
                raise DecryptionError(_FAILED) from None
            del chunk
            yield opened
            del opened
            seen_last = is_last
            index += 1  # noqa: SIM113 - as in _seal_chunks
        if not seen_last:  # no chunk at all: the body was cut off entirely
            raise DecryptionError(_FAILED)

    @staticmethod
    def _split_memory(data: memoryview, size: int) -> Iterator[tuple[memoryview, bool]]:
        total = len(data)
        if total == 0:
            yield data, True
            return
        for start in range(0, total, size):
            yield data[start : start + size], start + size >= total

    @staticmethod
    def _split_stream(src: BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
        # Reading the next whole chunk ahead tells whether the current one is the last. (A one-byte look-ahead
        # had to be glued onto the next chunk, which copied every chunk once more.) A short chunk means EOF.
        chunk = _read_exact(src, size)
        while True:
            ahead = _read_exact(src, size) if len(chunk) == size else b""
            yield chunk, not ahead
            if not ahead:
                return
            chunk = ahead
            del ahead  # hold only the current chunk while reading the one after it

    # -- public API ---------------------------------------------------------------------------------

    def encrypt(self, data: bytes, *, context: str) -> bytes:
        _check_context(context)
        dek = os.urandom(_DEK_LEN)
        header = self._new_header(dek, context)
        packed = header.pack()
        view = memoryview(data)
        count = max(1, -(-len(view) // self._chunk_size))
        out = _output(len(packed) + len(view) + count * _TAG_LEN)
        aead = AESGCM(dek)
        with out.getbuffer() as buf:  # every chunk is sealed straight into its place in the result
            buf[: len(packed)] = packed
            pos = len(packed)
            for index, (chunk, is_last) in enumerate(self._split_memory(view, self._chunk_size)):
                end = pos + len(chunk) + _TAG_LEN
                aead.encrypt_into(_chunk_nonce(header, index), chunk, _chunk_aad(context, index, is_last),
                                  buf[pos:end])
                pos = end
        return out.getvalue()

    def decrypt(self, blob: bytes, *, context: str) -> bytes:
        """Return the plaintext only after every chunk, including the final one, has authenticated."""
        _check_context(context)
        view = memoryview(blob)
        header, offset = _parse_header(view)
        dek = self._unwrap(header, context)
        body = view[offset:]
        step = header.chunk_size + _TAG_LEN
        count = max(1, -(-len(body) // step))
        if len(body) - (count - 1) * step < _TAG_LEN:  # no body, or a final chunk too short for its tag
            raise DecryptionError(_FAILED)
        out = _output(len(body) - count * _TAG_LEN)
        aead = AESGCM(dek)
        with out.getbuffer() as buf:  # every chunk is opened straight into its place in the result
            pos = 0
            for index, (chunk, is_last) in enumerate(self._split_memory(body, step)):
                end = pos + len(chunk) - _TAG_LEN
                try:
                    aead.decrypt_into(_chunk_nonce(header, index), chunk, _chunk_aad(context, index, is_last),
                                      buf[pos:end])
                except InvalidTag:
                    raise DecryptionError(_FAILED) from None
                pos = end
        return out.getvalue()  # not reached unless every chunk authenticated; on failure `out` is dropped

    def encrypt_stream(self, src: BinaryIO, dst: BinaryIO, *, context: str) -> None:
        _check_context(context)
        dek = os.urandom(_DEK_LEN)
        header = self._new_header(dek, context)
        dst.write(header.pack())
        for sealed in self._seal_chunks(dek, header, context, self._split_stream(src, self._chunk_size)):
            dst.write(sealed)
            del sealed  # not held while the next chunk is read and sealed

    def decrypt_stream(self, src: BinaryIO, dst: BinaryIO, *, context: str) -> None:
        """Decrypt chunk by chunk. On DecryptionError, discard whatever was written to ``dst``."""
        _check_context(context)
        kid_len = _parse_start(_read_exact(src, 2))
        header = _parse_rest(_read_exact(src, kid_len), _read_exact(src, _FIXED.size))
        dek = self._unwrap(header, context)
        chunks = self._split_stream(src, header.chunk_size + _TAG_LEN)
        for plaintext in self._open_chunks(dek, header, context, chunks):
            dst.write(plaintext)
            del plaintext  # as in encrypt_stream

    def key_id_of(self, blob: bytes) -> str:
        return _parse_header(memoryview(blob))[0].key_id

    def needs_rotation(self, blob: bytes) -> bool:
        return self.key_id_of(blob) != self._keyring.active_id

    def rewrap(self, blob: bytes, *, context: str) -> bytes:
        """Re-wrap only the DEK under the active key; the chunk ciphertext bytes are reused unchanged.

        The chunks are not decrypted here, so this is cheap for large packs; the DEK unwrap still
        authenticates the header and context.
        """
        _check_context(context)
        view = memoryview(blob)
        old, offset = _parse_header(view)
        dek = self._unwrap(old, context)
        new = _Header(self._keyring.active_id, old.chunk_size, old.prefix, os.urandom(_WRAP_NONCE_LEN), b"")
        new.wrapped = self._kek(new.key_id).encrypt(new.wrap_nonce, dek, new.wrap_aad(context))
        return b"".join((new.pack(), view[offset:]))
