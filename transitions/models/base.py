"""Declarative base, column types and the encrypted-attribute descriptor shared by every model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, overload

from sqlalchemy import DateTime, LargeBinary, MetaData, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, object_session
from sqlalchemy.types import TypeDecorator

from transitions.crypto import BlindIndex, CryptoError, FieldCipher

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    #: Filled by EncryptedText.__set_name__: every (model, attribute) that holds ciphertext, for rotate-keys.
    encrypted_attributes: ClassVar[list[tuple[type[Any], EncryptedText]]] = []


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class CipherMissingError(RuntimeError):
    """A session was used for encrypted data without a field cipher (a wiring bug, never user input)."""


def _cipher(session: Session) -> FieldCipher:
    cipher = session.info.get("field_cipher")
    if not isinstance(cipher, FieldCipher):
        raise CipherMissingError("session has no field cipher")
    return cipher


def _row_id(obj: Any) -> str:
    """The row's primary key as text, assigned now if it is a UUID not yet set (AAD needs it before insert)."""
    key = sa_inspect(obj).mapper.primary_key[0].key
    value = getattr(obj, key)
    if value is None:
        if key != "id":
            raise CipherMissingError(f"{type(obj).__name__} has no primary key to bind its ciphertext to")
        value = obj.id = new_id()
    return value.hex() if isinstance(value, bytes) else str(value)


class EncryptedText:
    """A plaintext attribute stored as AES-256-GCM ciphertext in ``<name>_enc``.

    The row id and column name are the associated data, so a ciphertext copied to another row or column
    does not decrypt. Encryption happens on assignment when the object is in a session, otherwise at
    flush (a new object may not have a session yet). When ``index_kind`` is given, a keyed blind index of
    the value is kept in ``<name>_index`` for exact-match lookup.
    """

    def __init__(self, *, index_kind: str | None = None) -> None:
        self.index_kind = index_kind
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
        self.column = f"{name}_enc"
        self.index_column = f"{name}_index"
        Base.encrypted_attributes.append((owner, self))

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> EncryptedText: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> str | None: ...
    def __get__(self, obj: object | None, owner: type[Any]) -> EncryptedText | str | None:
        if obj is None:
            return self
        state = obj.__dict__
        pending = state.get("_pending_plain", {})
        if self.name in pending:
            return pending[self.name]  # type: ignore[no-any-return]
        blob = getattr(obj, self.column)
        if blob is None:
            return None
        cached = state.get("_plain_cache", {}).get(self.name)
        if cached is not None and cached[0] == blob:
            return cached[1]  # type: ignore[no-any-return]
        session = object_session(obj)
        if session is None:
            raise CipherMissingError(f"{type(obj).__name__}.{self.name} read outside a session")
        table, row_id = self.table(obj), _row_id(obj)
        try:
            plain = _cipher(session).decrypt(blob, table=table, column=self.column, row_id=row_id)
        except CryptoError as exc:
            exc.location = (table, row_id)  # which record, for the audit event (R47); no value
            raise
        state.setdefault("_plain_cache", {})[self.name] = (blob, plain)
        return plain

    def __set__(self, obj: object, value: str | None) -> None:
        session = object_session(obj)
        if session is None:
            obj.__dict__.setdefault("_pending_plain", {})[self.name] = value
            return
        self.store(session, obj, value)

    @staticmethod
    def table(obj: object) -> str:
        return obj.__table__.name  # type: ignore[attr-defined,no-any-return]

    def store(self, session: Session, obj: Any, value: str | None) -> None:
        if value is None:
            setattr(obj, self.column, None)
        else:
            setattr(obj, self.column,
                    _cipher(session).encrypt(value, table=self.table(obj), column=self.column, row_id=_row_id(obj)))
        if self.index_kind is not None:
            index = session.info.get("blind_index")
            if not isinstance(index, BlindIndex):
                raise CipherMissingError("session has no blind index")
            setattr(obj, self.index_column, None if value is None else index.digest(self.index_kind, value))
        obj.__dict__.get("_pending_plain", {}).pop(self.name, None)

    def reencrypt(self, session: Session, obj: Any) -> bool:
        """Re-encrypt under the active key; True if anything changed (for rotate-keys)."""
        blob = getattr(obj, self.column)
        cipher = _cipher(session)
        if blob is None or not cipher.needs_rotation(blob):
            return False
        setattr(obj, self.column,
                cipher.reencrypt(blob, table=self.table(obj), column=self.column, row_id=_row_id(obj)))
        return True


@event.listens_for(Session, "before_flush")
def _encrypt_pending(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in list(session.new) + list(session.dirty):
        pending = obj.__dict__.get("_pending_plain")
        if not pending:
            continue
        for owner, attr in Base.encrypted_attributes:
            if isinstance(obj, owner) and attr.name in pending:
                attr.store(session, obj, pending[attr.name])


def encrypted_column() -> Any:
    """The ciphertext column behind an EncryptedText attribute."""
    from sqlalchemy.orm import mapped_column

    return mapped_column(LargeBinary, nullable=True)
