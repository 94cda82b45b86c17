"""A process killed with SIGKILL in the middle of building and sending packs (security.md R56, attack #52).

Packs are built inside the "send" request, in the one transaction that also writes their blobs (PDF and
snapshot, stored in the database: there is no file to leave behind), their link emails (outbox) and the
transition's new status. A subprocess runs that send and is killed after two recipients' packs, blobs and link
emails are flushed but before the commit. A fresh app then finds the move still unsent, no pack, no blob that
belongs to no pack, no link email to deliver; pressing send again builds each pack once and tick delivers each
link once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from tests.faults.conftest import REPO_ROOT, environment_of, ready_move
from transitions.models import OutboxMessage, Pack, StoredBlob, Transition
from transitions.services import outbox
from transitions.services import transitions as service

pytestmark = pytest.mark.security

#: Sends the move in its own process and stops for good after the second recipient's link email is queued.
SEND_AND_HOLD = """
import sys, time
from datetime import datetime
from pathlib import Path
from transitions.app import create_app
from transitions.clock import FrozenClock
from transitions.services import accounts, outbox
from transitions.services import transitions as service
from transitions.services.audit import Actor
transition_id, user_id, now, marker = sys.argv[1:5]
app = create_app(clock=FrozenClock(datetime.fromisoformat(now)), web=False)
deps = app.extensions["transitions"]
real_enqueue, links = outbox.enqueue, []
def enqueue_then_hold(session, *args, **kwargs):
    message = real_enqueue(session, *args, **kwargs)
    if kwargs.get("purpose") == "pack_link":
        links.append(message.id)
        if len(links) == 2:
            session.flush()  # the packs, their blobs and link emails are in the database, uncommitted
            Path(marker).write_text("built")
            time.sleep(120)
    return message
outbox.enqueue = enqueue_then_hold
import uuid
user = accounts.get_user(deps, uuid.UUID(user_id))
service.change_status(deps, uuid.UUID(transition_id), "sent", "", None, user, Actor("staff", user_id))
"""


def _orphan_blobs(session) -> int:
    """Pack blobs that no pack points to."""
    used = select(Pack.pdf_blob_id).union(select(Pack.snapshot_blob_id))
    return session.scalar(select(func.count()).select_from(StoredBlob).where(
        StoredBlob.purpose.like("pack-%"), StoredBlob.id.not_in(used))) or 0


def test_a_send_killed_mid_build_leaves_no_pack_blob_or_link_and_sending_again_works(
        app, deps, world, settings, database_url, tmp_path: Path, smtp_server, clock):
    from transitions.app import create_app

    move = ready_move(deps, world)
    with deps.db.transaction() as session:
        blobs_before = session.scalar(select(func.count()).select_from(StoredBlob)) or 0
        messages_before = session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
    outbox.deliver_due(deps)  # the demo's own emails, out of the way
    delivered_before = len(smtp_server.messages)
    marker = tmp_path / "built"
    env = environment_of(settings, database_url, tmp_path / "instance", smtp_server.port)
    sender = world.accounts["social_worker_south"]
    output = tmp_path / "send.log"
    with output.open("wb") as log:
        child = subprocess.Popen([sys.executable, "-c", SEND_AND_HOLD, str(move.id), str(sender.id),
                                  clock.now().isoformat(), str(marker)], env=env, cwd=REPO_ROOT, stdout=log,
                                 stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, output.read_text()  # it died before reaching the point
            assert time.monotonic() < deadline, "the send never reached its second pack"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    fresh = create_app(settings, clock=clock)  # as after a restart: nothing cached from before
    fresh_deps = fresh.extensions["transitions"]
    try:
        with fresh_deps.db.transaction() as session:
            assert session.scalar(select(Transition.status).where(Transition.id == move.id)) == move.status
            assert session.scalar(select(func.count()).select_from(Pack).where(Pack.transition_id == move.id)) == 0
            assert session.scalar(select(func.count()).select_from(StoredBlob)) == blobs_before
            assert session.scalar(select(func.count()).select_from(OutboxMessage)) == messages_before
            assert _orphan_blobs(session) == 0
        assert outbox.deliver_due(fresh_deps).claimed == 0  # no link to send
        assert len(smtp_server.messages) == delivered_before

        # Sending again (the worker presses the button once more) builds each pack once and sends each link once.
        sw, sw_actor = world.view(fresh_deps, "social_worker_south"), world.actor("social_worker_south")
        assert service.change_status(fresh_deps, move.id, "sent", "", None, sw, sw_actor) == "sent"
        with fresh_deps.db.transaction() as session:
            sent = list(session.scalars(select(Pack).where(Pack.transition_id == move.id)))
            assert len(sent) >= 3 and len({p.recipient_id for p in sent}) == len(sent)
            assert {p.version for p in sent} == {1}
            assert _orphan_blobs(session) == 0
            assert session.scalar(select(func.count()).select_from(StoredBlob).where(or_(
                StoredBlob.id.in_([p.pdf_blob_id for p in sent]),
                StoredBlob.id.in_([p.snapshot_blob_id for p in sent])))) == 2 * len(sent)
            addresses = sorted(p.address or "" for p in sent)
        assert outbox.deliver_due(fresh_deps).sent >= len(sent)
        links = [m for m in smtp_server.wait_for(delivered_before + len(sent))[delivered_before:]
                 if m["Subject"].startswith("Secure information from")]
        assert sorted(m["To"] for m in links) == addresses
    finally:
        fresh_deps.db.dispose()
