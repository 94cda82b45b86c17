"""A backup restored after links were revoked: they stay revoked (security.md R77, attack #57).

Two recipients of a sent move: the host authority's link is revoked after the backup is taken; the receiving
home has a verified recipient session. The backup is restored (SQLite: the file copied back; PostgreSQL:
`pg_dump -Fc`, the database dropped, `pg_restore` into the same name), which brings the revoked link back to
life, as the first assertion shows. `cla-transitions after-restore` then bumps the restore epoch: both old
links answer the same 404 as an invented one, the session has ended, the audit chain still verifies (the check
`cla-transitions audit-verify` makes), the board says to send them again, and a link sent after the restore
works.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, Browser
from tests.faults.conftest import environment_of, ready_move, run_cli
from tests.integration.test_packs import WARD_NURSE, link_for, verified_session
from transitions.models import RecipientSession, StoredBlob
from transitions.services import audit, packs, receipt
from transitions.services import transitions as service

pytestmark = pytest.mark.security


def _page(response) -> str:
    """The page without what differs on every request (the script nonce, the support reference)."""
    return re.sub(r'nonce="[^"]+"|Reference: <strong>\w+', "", response.get_data(as_text=True))


def _sqlite_backup(url: str, backup: Path) -> Callable[[], None]:
    """Copy the database now (the online backup API: a consistent copy of a WAL database); return the restore."""
    path = Path(make_url(url).database or "")
    with sqlite3.connect(path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    live.close()
    copy.close()

    def restore() -> None:
        for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(backup, path)

    return restore


def _postgres_backup(url: str, backup: Path) -> Callable[[], None]:
    """pg_dump -Fc now; return the restore: drop the database, create it again, pg_restore into it."""
    parsed = make_url(url)
    conn = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres"]
    subprocess.run(["pg_dump", *conn, "-Fc", "-f", str(backup), parsed.database or ""], check=True, timeout=60)

    def restore() -> None:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{parsed.database}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
        subprocess.run(["pg_restore", *conn, "-d", parsed.database or "", "--no-owner", str(backup)], check=True,
                       timeout=60)

    return restore


def test_links_revoked_after_a_backup_stay_dead_when_it_is_restored(app, deps, world, settings, database_url,
                                                                   tmp_path: Path, smtp_server, clock):
    from transitions.app import create_app

    move = ready_move(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    service.change_status(deps, move.id, "sent", "", None, sw, sw_actor)
    revoked_token, revoked_pack = link_for(deps, move.id, "host_la")
    home_token, home_pack = link_for(deps, move.id, "receiving_placement")
    home_session = verified_session(deps, home_token, home_pack.id)

    backup = _postgres_backup if POSTGRES_URL else _sqlite_backup
    restore = backup(database_url, tmp_path / "backup.db")
    packs.revoke(deps, move.id, revoked_pack.id, "Sent to the wrong authority's inbox", sw, sw_actor)
    with pytest.raises(receipt.LinkClosedError):
        receipt.landing(deps, revoked_token, WARD_NURSE)

    deps.db.dispose()
    restore()
    restored = create_app(settings, clock=clock)
    restored.test_client_class = Browser
    restored_deps = restored.extensions["transitions"]
    try:
        # The danger: the restored database has forgotten the revocation.
        assert receipt.landing(restored_deps, revoked_token, WARD_NURSE).organisation
        env = environment_of(settings, database_url, tmp_path / "instance", smtp_server.port)
        done = run_cli(env, "after-restore", "--note", "restored the nightly backup (fault test)")
        assert "Restore epoch is now 2" in done.stdout and "1 recipient session(s) ended" in done.stdout

        client = restored.test_client()
        invented = client.get("/r/" + "A" * 43)
        assert invented.status_code == 404
        for token in (revoked_token, home_token):
            refused = client.get(f"/r/{token}")
            assert refused.status_code == 404  # the same answer as a link that never existed
            assert _page(refused) == _page(invented)
        client.set_cookie(restored_deps.settings.packs.session_cookie_name, home_session, domain="localhost")
        assert client.get("/recipient/pack").status_code == 401  # "your session has ended"
        with pytest.raises(receipt.RecipientSessionEndedError):
            receipt.view(restored_deps, home_session, WARD_NURSE)
        with restored_deps.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(RecipientSession)) == 0
        with restored_deps.db.transaction() as session:  # what `cla-transitions audit-verify` checks
            assert audit.verify(session, restored_deps.audit_chain).ok
            blobs = list(session.scalars(select(StoredBlob)))  # the restore drill: every file there and readable
            assert blobs and all(restored_deps.blob_cipher.decrypt(b.ciphertext, context=b.context) for b in blobs)

        # Staff see which recipients need a new link, and "send the remaining" sends one that works.
        board = packs.transition_board(restored_deps, move.id, sw, sw_actor)
        withdrawn = [r for r in board.rows if r.latest and r.latest.revoked_label.startswith("Link withdrawn after a")]
        assert {r.latest.id for r in withdrawn if r.latest} >= {revoked_pack.id, home_pack.id}
        assert all(r.needs_link for r in withdrawn)
        assert packs.send_remaining(restored_deps, move.id, sw, sw_actor).sent == len(withdrawn)
        new_token, new_pack = link_for(restored_deps, move.id, "receiving_placement")
        assert new_pack.version == home_pack.version + 1 and new_pack.epoch == 2
        assert client.get(f"/r/{new_token}").status_code == 200
        assert client.get(f"/r/{home_token}").status_code == 404
    finally:
        restored_deps.db.dispose()
