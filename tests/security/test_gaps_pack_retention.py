"""R79: a pack's files (the encrypted PDF and the snapshot the recipient page shows) are deleted by the periodic tick
a set number of days after the pack is finished with. The pack row stays as the record of what was sent, the board
says the files were deleted, the link answers as any closed link does, and the run is audited once, counts only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import sign_in
from tests.integration.test_child_record import events
from tests.integration.test_packs import link_for
from tests.security.test_req_links import _page, sent  # noqa: F401  (sent: a fixture)
from transitions.models import Pack, StoredBlob
from transitions.services import keys, packs, tick
from transitions.services.audit import Actor

pytestmark = pytest.mark.security


def _blobs(deps, transition_id) -> list[tuple[str, int, bytes]]:
    with deps.db.transaction() as session:
        packs = list(session.scalars(select(Pack).where(Pack.transition_id == transition_id)))
        ids = [b for p in packs for b in (p.pdf_blob_id, p.snapshot_blob_id)]
        return [(b.purpose, b.size, bytes(b.ciphertext))
                for b in session.scalars(select(StoredBlob).where(StoredBlob.id.in_(ids)))]


def test_finished_packs_lose_their_files_after_the_retention_days_and_leave_a_tombstone(
        deps, sent, client, clock):  # noqa: F811
    world, transition_id = sent
    days = deps.settings.packs.blob_retention_days
    assert days == 30
    token, pack = link_for(deps, transition_id, "receiving_placement")
    clock.set(pack.expires_at + timedelta(days=days) - timedelta(minutes=1))
    before = client.get(f"/r/{token}")
    assert before.status_code == 410  # the link ran out long ago; the files are still kept
    assert packs.purge_finished_packs(deps) == 0
    stored = _blobs(deps, transition_id)
    assert stored and all(purpose != "purged" and len(ciphertext) > 0 for purpose, _, ciphertext in stored)

    clock.advance(minutes=2)
    report = tick.run(deps)
    assert report.packs_purged >= 1 and "FAILED" not in "\n".join(report.lines())
    stored = _blobs(deps, transition_id)
    assert stored and all(row == ("purged", 0, b"") for row in stored)  # the rows stay (packs point at them)
    with deps.db.transaction() as session:
        kept = session.get(Pack, pack.id)
        assert kept is not None and kept.password is None and kept.reference == pack.reference

    assert packs.purge_finished_packs(deps) == 0  # idempotent: nothing left to do, nothing audited again
    # The tombstones hold no envelope: key rotation and the key census pass over them (they crashed on b"")
    census = keys.key_census(deps)
    rotation = keys.rotate(deps, Actor.system("rotate-keys"))  # one key: nothing to move, and no crash
    assert (rotation.fields_reencrypted, rotation.blobs_rewrapped) == (0, 0)
    assert keys.key_census(deps) == census
    purged = events(deps, "pack.files_purged")
    assert len(purged) == 1 and purged[0].actor_id == "tick"
    assert f'"count": {report.packs_purged}' in purged[0].details and pack.reference not in purged[0].details

    after = client.get(f"/r/{token}")
    assert after.status_code == 410 and _page(after) == _page(before)  # the same closed-link page
    sign_in(client, world.accounts["social_worker_south"], clock)
    board = client.get(f"/transitions/{transition_id}")
    assert board.status_code == 200
    assert f"Pack deleted after {days} days, per retention" in board.get_data(as_text=True)
