"""Which database errors are "the database did not answer" (503, try again) and which are bugs (500, logged with
their traceback): a missing table after a missed migration must not pass for an outage."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import InterfaceError, OperationalError

from transitions.web.errors import database_unreachable


class DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def operational(orig: Exception) -> OperationalError:
    return OperationalError("SELECT 1", None, orig)


@pytest.mark.parametrize("orig", [
    sqlite3.OperationalError("database is locked"),
    sqlite3.OperationalError("database or disk is full"),
    sqlite3.OperationalError("disk I/O error"),
    DriverError("connection failed: connection refused"),
    DriverError("terminating connection due to administrator command", "57P01"),
    DriverError("the database system is starting up", "57P03"),
    DriverError("server closed the connection unexpectedly", "08006"),
    DriverError("could not extend file: No space left on device", "53100"),
])
def test_a_database_that_does_not_answer_is_unreachable(orig: Exception) -> None:
    assert database_unreachable(operational(orig))


@pytest.mark.parametrize("orig", [
    sqlite3.OperationalError("no such table: pack"),
    sqlite3.OperationalError('near "SELEC": syntax error'),
    sqlite3.OperationalError("no such column: pack.epoch"),
    DriverError("deadlock detected", "40P01"),
    DriverError("canceling statement due to statement timeout", "57014"),
])
def test_a_bad_statement_or_a_missing_migration_stays_a_bug(orig: Exception) -> None:
    assert not database_unreachable(operational(orig))


def test_a_broken_connection_is_unreachable() -> None:
    assert database_unreachable(InterfaceError("SELECT 1", None, DriverError("connection already closed")))
