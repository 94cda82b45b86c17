"""PostgreSQL stopped in the middle of a request and started again (security.md R72, attack #50).

The app runs in-process against a private cluster (tests/faults/conftest.py). A "send the packs" request is held
after it has written two recipients' packs, blobs and link emails inside its transaction; the cluster stops
(`pg_ctl stop -m fast`); that request, a page view and a section save made while it is down all get the 503
"try again" page with Retry-After and no traceback. After `pg_ctl start` the same app, not restarted, serves the
next requests (pool_pre_ping replaces the dead pooled connections), nothing of the interrupted send exists, and
sending again sends every pack once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import POSTGRES_URL, Browser, SmtpSink, csrf_from, migrate, sign_in, test_environ
from tests.faults.conftest import PrivateCluster, hidden, ready_move
from tests.integration.conftest import load_world
from transitions.clock import FrozenClock
from transitions.models import OutboxMessage, Pack, SectionVersion, StoredBlob, Transition
from transitions.services import audit, outbox
from transitions.services.deps import ServiceDeps
from transitions.settings import load_settings

pytestmark = [pytest.mark.security, pytest.mark.postgres,
              pytest.mark.skipif(not POSTGRES_URL, reason="restarting the database server is a PostgreSQL fault")]


@pytest.fixture
def app_on_private_cluster(private_postgres: PrivateCluster, tmp_path: Path, smtp_server: SmtpSink,
                           clock: FrozenClock) -> Iterator[Flask]:
    from transitions.app import create_app

    settings = load_settings(test_environ(private_postgres.url, tmp_path / "instance",
                                          TRANSITIONS_SMTP_PORT=str(smtp_server.port)))
    application = create_app(settings, clock=clock)
    migrate(application)
    application.test_client_class = Browser
    yield application
    application.extensions["transitions"].db.dispose()


def _send(client: Browser, transition_id: object) -> object:
    page = client.get(f"/transitions/{transition_id}").get_data(as_text=True)
    return client.post(f"/transitions/{transition_id}/sent",
                       data={"csrf_token": csrf_from(page), "base_version": hidden(page, "base_version")})


def _state(deps: ServiceDeps, transition_id: object, child_id: object) -> dict[str, object]:
    with deps.db.transaction() as session:
        return {
            "status": session.scalar(select(Transition.status).where(Transition.id == transition_id)),
            "packs": session.scalar(select(func.count()).select_from(Pack).where(Pack.transition_id == transition_id)),
            "pack_blobs": session.scalar(select(func.count()).select_from(StoredBlob).where(
                StoredBlob.purpose.like("pack-%"))),
            "links": session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.purpose == "pack_link")),
            "voice_versions": session.scalar(select(func.count()).select_from(SectionVersion).where(
                SectionVersion.child_id == child_id, SectionVersion.section_code == "VOICE")),
        }


def _assert_unavailable_page(response: object) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[:2000]  # type: ignore[attr-defined]
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    # 30 s, or longer where a rate limit's window ends later (Flask-Limiter keeps the later of the two)
    assert int(response.headers["Retry-After"]) >= 30  # type: ignore[attr-defined]
    assert "Sorry, the service is unavailable" in page and "Please try again" in page and "Reference:" in page
    assert "govuk-header" in page or "govuk-template" in page  # the GOV.UK page, not a bare text answer
    for leak in ("Traceback", "OperationalError", "psycopg", "SELECT", "INSERT"):
        assert leak not in page


def test_postgres_stopped_mid_send_gives_503_then_recovers_with_nothing_half_written(
        app_on_private_cluster, private_postgres, monkeypatch):
    app = app_on_private_cluster
    deps: ServiceDeps = app.extensions["transitions"]
    clock = deps.clock
    assert isinstance(clock, FrozenClock)
    world = load_world(deps)
    move = ready_move(deps, world)
    worker, reader = app.test_client(), app.test_client()
    sign_in(worker, world.accounts["social_worker_south"], clock)
    sign_in(reader, world.accounts["social_worker_south"], clock)
    voice_url = f"/children/{move.child_id}/sections/VOICE/edit"
    voice_page = reader.get(voice_url).get_data(as_text=True)
    before = _state(deps, move.id, move.child_id)
    assert before["packs"] == 0

    # Hold the send once two recipients' packs, blobs and link emails are written inside its transaction.
    written, release = threading.Event(), threading.Event()
    real_enqueue = outbox.enqueue
    links_queued = []

    def enqueue_then_hold(session, *args, **kwargs):
        message = real_enqueue(session, *args, **kwargs)
        if kwargs.get("purpose") == "pack_link":
            links_queued.append(message.id)
            if len(links_queued) == 2:
                session.flush()
                written.set()
                assert release.wait(30)
        return message

    monkeypatch.setattr(outbox, "enqueue", enqueue_then_hold)
    page = worker.get(f"/transitions/{move.id}").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "base_version": hidden(page, "base_version")}
    answers: list[object] = []
    sending = threading.Thread(target=lambda: answers.append(worker.post(f"/transitions/{move.id}/sent", data=form)))
    sending.start()
    try:
        assert written.wait(30), "the send never reached its second pack"
        assert _state(deps, move.id, move.child_id)["packs"] == 0  # uncommitted: no other request sees them
        private_postgres.stop("fast")
    finally:
        release.set()
        sending.join(30)
    monkeypatch.setattr(outbox, "enqueue", real_enqueue)
    _assert_unavailable_page(answers[0])  # the request in flight when the server went

    # While it is down: a staff page, a save and a recipient link all say "try again".
    _assert_unavailable_page(reader.get(f"/transitions/{move.id}"))
    _assert_unavailable_page(reader.post(voice_url, data={
        "csrf_token": csrf_from(voice_page), "base_version": hidden(voice_page, "base_version"),
        "about_me_text": "Written while the database was down.", "my_views_on_this_move": "x", "source": "direct"}))
    _assert_unavailable_page(reader.get("/r/" + "x" * 43))
    assert reader.get("/sign-in").status_code == 200  # a page that needs no database still works

    private_postgres.start()
    # The same process, not restarted: its pooled connections died with the server and are replaced.
    assert reader.get(f"/transitions/{move.id}").status_code == 200
    after = _state(deps, move.id, move.child_id)
    assert after == before, "the interrupted send or the save left something behind"
    with deps.db.transaction() as session:
        assert audit.verify(session, deps.audit_chain).ok

    # Pressing "send" again sends every recipient one pack with its PDF, its snapshot and one link email.
    assert _send(worker, move.id).status_code == 302  # type: ignore[attr-defined]
    sent = _state(deps, move.id, move.child_id)
    assert sent["status"] == "sent" and sent["packs"] >= 3
    assert sent["pack_blobs"] == before["pack_blobs"] + 2 * sent["packs"]  # type: ignore[operator]
    assert sent["links"] == before["links"] + sent["packs"]  # type: ignore[operator]
    saved = reader.post(voice_url, data={
        "csrf_token": csrf_from(voice_page), "base_version": hidden(voice_page, "base_version"),
        "about_me_text": "Written after the database came back.", "my_views_on_this_move": "x", "source": "direct"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    assert _state(deps, move.id, move.child_id)["voice_versions"] == before["voice_versions"] + 1  # type: ignore
