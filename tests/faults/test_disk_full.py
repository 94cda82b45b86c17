"""The disk fills up while packs are being built (security.md R56/R80, attack #51).

Pack PDFs and snapshots are stored in the database, in the send's own transaction, so "disk full" is the
database refusing a write. On SQLite it is real: `PRAGMA max_page_count` caps the file a few pages above its
size, so storing the first PDF fails with SQLITE_FULL. On PostgreSQL the driver's own DiskFull error (SQLSTATE
53100, "could not extend file") is raised at the INSERT into stored_blob. Either way the worker gets the 503
"try again" page (no traceback), the failure is logged at ERROR for the alert, nothing of the send exists (no
pack, no blob, no link email, the move not marked sent), and once there is room the same send works.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import event, func, select

from tests.conftest import POSTGRES_URL, csrf_from, sign_in
from tests.faults.conftest import hidden, ready_move
from transitions.models import OutboxMessage, Pack, StoredBlob, Transition

pytestmark = pytest.mark.security


def _fill_the_disk(engine) -> object:
    """Install the fault; return what removes it."""
    if POSTGRES_URL:
        import psycopg.errors

        def refuse(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO STORED_BLOB"):
                raise psycopg.errors.DiskFull('could not extend file "base/16384/16500": No space left on device')

        event.listen(engine, "before_cursor_execute", refuse)
        return lambda: event.remove(engine, "before_cursor_execute", refuse)
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_connection, record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 8}")

    event.listen(engine, "connect", cap)
    engine.dispose()  # every connection from now on has the cap

    def free() -> None:
        event.remove(engine, "connect", cap)
        engine.dispose()

    return free


def _counts(deps, move_id) -> tuple[object, ...]:
    with deps.db.transaction() as session:
        return (session.scalar(select(Transition.status).where(Transition.id == move_id)),
                session.scalar(select(func.count()).select_from(Pack).where(Pack.transition_id == move_id)),
                session.scalar(select(func.count()).select_from(StoredBlob)),
                session.scalar(select(func.count()).select_from(OutboxMessage)))


def test_a_full_disk_during_pack_generation_fails_cleanly_and_the_send_works_once_there_is_room(
        deps, world, client, clock, caplog):
    move = ready_move(deps, world)
    sign_in(client, world.accounts["social_worker_south"], clock)
    before = _counts(deps, move.id)
    page = client.get(f"/transitions/{move.id}").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "base_version": hidden(page, "base_version")}
    free = _fill_the_disk(deps.db.engine)
    try:
        with caplog.at_level(logging.ERROR, logger="transitions"):
            response = client.post(f"/transitions/{move.id}/sent", data=form)
    finally:
        free()  # type: ignore[operator]
    text = response.get_data(as_text=True)
    assert response.status_code == 503 and "Please try again" in text and "Reference:" in text
    assert "Traceback" not in text and "full" not in text.lower()
    assert any("database unavailable" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert _counts(deps, move.id) == before  # no pack, no blob, no link email, not marked sent

    page = client.get(f"/transitions/{move.id}").get_data(as_text=True)
    assert client.post(f"/transitions/{move.id}/sent", data={
        "csrf_token": csrf_from(page), "base_version": hidden(page, "base_version")}).status_code == 302
    status, sent, blobs, messages = _counts(deps, move.id)
    assert status == "sent" and sent >= 3  # type: ignore[operator]
    assert blobs == before[2] + 2 * sent and messages == before[3] + sent  # type: ignore[operator]
