"""The mail relay down for two hours (security.md R37, attack #48).

The app is configured with SMTP on a closed port and the production back-off (60 s doubling, 1 h at most). A
worker sends the packs through the web page and a recipient asks for a code while it is down: both requests
succeed, the board says "Email queued", and every message waits in the outbox through two hours of ticks without
being given up. With the relay back (the real aiosmtpd server), tick delivers each message exactly once: one
arrival per outbox row (Message-ID is the outbox id), nothing lost, nothing twice.

tests/integration/test_outbox.py covers the back-off arithmetic and a crash between SMTP's 250 and "mark sent"
(#49); tests/integration/test_follow_up.py the reminders queued during an outage. This file is the user's side.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, sign_in, test_environ
from tests.faults.conftest import hidden, ready_move
from transitions.models import OutboxMessage, Pack
from transitions.services import tick
from transitions.services.outbox import SmtpTransport
from transitions.settings import Settings, load_settings

pytestmark = pytest.mark.security


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The relay is on a closed port, with production's back-off (config/test.toml has 1 s)."""
    config = tmp_path / "mail.toml"
    config.write_text("[mail]\nbackoff_seconds = 60\nmax_backoff_seconds = 3600\nmax_attempts = 10\n")
    return load_settings(test_environ(database_url, tmp_path / "instance", TRANSITIONS_SMTP_PORT=str(_closed_port()),
                                      TRANSITIONS_CONFIG=str(config)))


def _outbox(deps) -> list[OutboxMessage]:
    with deps.db.transaction() as session:
        return list(session.scalars(select(OutboxMessage)))


def test_with_smtp_down_sending_succeeds_as_queued_and_each_email_arrives_once_after(deps, world, client, clock,
                                                                                    smtp_server):
    move = ready_move(deps, world)
    sign_in(client, world.accounts["social_worker_south"], clock)
    page = client.get(f"/transitions/{move.id}").get_data(as_text=True)
    response = client.post(f"/transitions/{move.id}/sent", data={"csrf_token": csrf_from(page),
                                                                 "base_version": hidden(page, "base_version")})
    assert response.status_code == 302
    board = client.get(f"/transitions/{move.id}").get_data(as_text=True)
    with deps.db.transaction() as session:
        packs = list(session.scalars(select(Pack).where(Pack.transition_id == move.id)))
        links = {m.id: m for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.id.in_([p.outbox_message_id for p in packs])))}
        addresses = sorted(p.address or "" for p in packs)
        token = re.search(r"/r/([A-Za-z0-9_\-]{40,})", next(iter(links.values())).body or "").group(1)  # type: ignore
    assert len(packs) >= 3 and "now sent" in board and board.count("Email queued") >= len(packs)
    assert {m.status for m in links.values()} == {"queued"}

    # A recipient asks for a code during the outage: the page answers, the code waits in the outbox too.
    asked = client.post(f"/r/{token}/code", headers={"Origin": "https://localhost"})
    assert asked.status_code == 302, asked.get_data(as_text=True)[:1000]

    for _ in range(24):  # two hours of ticks every five minutes with nothing getting through
        clock.advance(minutes=5)
        report = tick.run(deps)
        assert report.delivery is not None and report.delivery.sent == 0 and report.delivery.failed == 0
    waiting = _outbox(deps)
    assert waiting and {m.status for m in waiting} == {"queued"}  # nothing given up, nothing lost
    assert all(m.attempts >= 5 for m in waiting if m.id in links)  # it kept trying
    assert any(m.purpose == "pack_code" for m in waiting)

    relay = SmtpTransport("127.0.0.1", smtp_server.port, starttls=False, timeout=5)
    clock.advance(hours=1)  # past the longest back-off
    delivered = 0
    for _ in range(5):
        report = tick.run(deps, transport=relay)
        assert report.delivery is not None and report.delivery.failed == 0
        delivered += report.delivery.sent
        if report.delivery.claimed == 0:
            break
    after = _outbox(deps)
    assert {m.status for m in after} == {"sent"} and delivered == len(after)
    received = smtp_server.wait_for(len(after))
    assert Counter(m["Message-ID"].split("@")[0].strip("<") for m in received) == Counter(str(m.id) for m in after)
    ours = {str(i) for i in links}
    assert sorted(m["To"] for m in received if m["Message-ID"].split("@")[0].strip("<") in ours) == addresses
    assert tick.run(deps, transport=relay).delivery.claimed == 0  # type: ignore[union-attr]
    assert len(smtp_server.messages) == len(after)
