"""Engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from transitions.crypto import BlindIndex, FieldCipher


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "busy_timeout=5000", "secure_delete=ON",
                   "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    """Take SQLite's write lock when a transaction starts.

    SQLite mode is single-instance: serialising transactions makes read-then-write sequences (throttle
    counters, the audit chain head, claims) safe across the threads of one process, where a deferred
    transaction would fail with "database is locked" when it tries to upgrade. PostgreSQL uses row locks.
    A connection marked read-only (Database.reading) begins deferred instead: in WAL mode that is a snapshot
    which never takes the write lock, so a long read does not stall the service's writes.
    """
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_READ_ONLY = "transitions_read_only"


def make_engine(url: str) -> Engine:
    """hide_parameters: a database error logged with its SQL must not carry the values bound into it."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = create_engine(url, hide_parameters=True, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


class Database:
    """Owns the engine and hands out sessions that carry the field cipher and blind index."""

    def __init__(self, url: str, *, field_cipher: FieldCipher, blind_index: BlindIndex) -> None:
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(
            self.engine, expire_on_commit=False,
            info={"field_cipher": field_cipher, "blind_index": blind_index},
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.session_factory()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self.session_factory() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work for long reads (audit-verify over a national trail, reports).

        SQLite: a deferred BEGIN, a WAL snapshot that never blocks the service's writers (a `transaction` takes
        the write lock for its whole length). PostgreSQL: a READ ONLY transaction, so a write by mistake fails.
        """
        options: dict[str, Any] = {_READ_ONLY: True}
        if self.dialect == "postgresql":
            options["postgresql_readonly"] = True
        with self.engine.connect().execution_options(**options) as connection, \
                self.session_factory(bind=connection) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
