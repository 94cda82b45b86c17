"""Key rotation while the app serves, killed half way and run again (security.md R44, attack #53).

The keyring now starts with a new key k2 (the app serving requests has it, as after deploying a new keyring)
while every row is still under k1. `cla-transitions rotate-keys --batch-size 3` runs in a subprocess while a
signed-in social worker keeps reading a child's pages and saving a section in another thread; when it has
re-encrypted half the values (inside a batch not yet committed) it is killed with SIGKILL. Every row still
decrypts; a profile form opened before the rotation still saves (rotation moves no optimistic-lock counter);
the rerun finishes with no value left under k1, which an app with k2 alone then reads in full. No request
failed at any point.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import Browser, csrf_from, sign_in
from tests.faults.conftest import REPO_ROOT, environment_of, hidden, ready_move, run_cli
from transitions.crypto import CryptoError
from transitions.models import Base, StoredBlob
from transitions.services import children, keys
from transitions.services import transitions as service
from transitions.services.deps import ServiceDeps

pytestmark = pytest.mark.security

#: `cla-transitions rotate-keys --batch-size 3` that stops for good inside the batch where it re-encrypts its
#: Nth value (so that the test can kill it at half way whatever the speed of the machine).
ROTATE_AND_HOLD = """
import sys, time
from pathlib import Path
from transitions.crypto.fields import FieldCipher
from transitions.cli import main
stop_at, marker = int(sys.argv[1]), Path(sys.argv[2])
real, done = FieldCipher.reencrypt, []
def counting(self, *args, **kwargs):
    done.append(1)
    if len(done) == stop_at:
        marker.write_text("half")
        time.sleep(120)
    return real(self, *args, **kwargs)
FieldCipher.reencrypt = counting
main(["rotate-keys", "--batch-size", "3"])
"""


def _with_keyring(app: Flask, spec: str) -> Flask:
    from transitions.app import create_app

    deps: ServiceDeps = app.extensions["transitions"]
    settings = deps.settings.with_overrides(secrets=replace(deps.settings.secrets, keyring=spec))
    other = create_app(settings, clock=deps.clock)
    other.test_client_class = Browser
    return other


def _as_input(profile: children.Profile) -> children.ProfileInput:
    return children.ProfileInput(
        legal_name=profile.legal_name, preferred_name=profile.preferred_name, aliases="\n".join(profile.aliases),
        date_of_birth=profile.date_of_birth, sex=profile.sex, nhs_number=profile.nhs_number,
        nhs_number_not_known=not profile.nhs_number, la_child_id=profile.la_child_id,
        legal_status=profile.legal_status, placement_type=profile.placement_type,
        placement_started_on=profile.placement_started_on,
        responsible_la_id=profile.responsible_la.id if profile.responsible_la else None,
        current_placement_id=profile.placement.id if profile.placement else None,
        allocated_worker_id=profile.worker.id if profile.worker else None,
        team_id=profile.team.id if profile.team else None)


def _undecryptable(deps: ServiceDeps) -> tuple[int, int]:
    """(values read, values that did not decrypt) over every encrypted column and every stored blob."""
    read = bad = 0
    with deps.db.transaction() as session:
        for model, attr in Base.encrypted_attributes:
            for row in session.scalars(select(model).where(getattr(model, attr.column).is_not(None))):
                read += 1
                try:
                    getattr(row, attr.name)
                except CryptoError:
                    bad += 1
        for blob in session.scalars(select(StoredBlob)):
            read += 1
            try:
                deps.blob_cipher.decrypt(blob.ciphertext, context=blob.context)
            except CryptoError:
                bad += 1
    return read, bad


class Staff(threading.Thread):
    """Reads the child's page, the transition and a section, and saves the section, until told to stop."""

    def __init__(self, client: Browser, child_id: object, transition_id: object) -> None:
        super().__init__(daemon=True)
        self.client, self.child_id, self.transition_id = client, child_id, transition_id
        self.stop = threading.Event()
        self.rounds = 0
        self.failures: list[str] = []

    def run(self) -> None:
        voice = f"/children/{self.child_id}/sections/VOICE/edit"
        while not self.stop.is_set():
            for url in (f"/children/{self.child_id}", f"/transitions/{self.transition_id}"):
                if (status := self.client.get(url).status_code) != 200:
                    self.failures.append(f"GET {url}: {status}")
            page = self.client.get(voice).get_data(as_text=True)
            saved = self.client.post(voice, data={
                "csrf_token": csrf_from(page), "base_version": hidden(page, "base_version"),
                "about_me_text": f"Saved during the rotation, round {self.rounds}.", "my_views_on_this_move": "x",
                "source": "direct"})
            if saved.status_code != 302:
                self.failures.append(f"POST {voice}: {saved.status_code}")
            self.rounds += 1
            self.stop.wait(0.05)  # a busy worker, not a load test: leave the CPU to the rotation


def test_rotation_killed_half_way_while_serving_leaves_every_row_readable_and_a_rerun_finishes(
        app, deps, world, database_url, tmp_path: Path, smtp_server, clock):
    move = ready_move(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    service.change_status(deps, move.id, "sent", "", None, sw, sw_actor)  # packs: blobs to re-wrap too
    old = deps.keyring.active_id
    new_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    k2_only = f"k2:{new_key}"
    served = _with_keyring(app, f"{k2_only} {deps.settings.secrets.keyring}")
    served_deps: ServiceDeps = served.extensions["transitions"]
    client = served.test_client()
    sign_in(client, world.accounts["social_worker_south"], clock)
    profile = children.profile_for_edit(served_deps, move.child_id, sw, sw_actor)  # a form opened before rotating
    env = environment_of(served_deps.settings, database_url, tmp_path / "instance", smtp_server.port)
    staff = Staff(client, move.child_id, move.id)
    staff.start()
    try:
        total = sum(keys.key_census(served_deps).values())
        half, log = tmp_path / "half", tmp_path / "rotation.log"
        with log.open("wb") as out:
            rotation = subprocess.Popen([sys.executable, "-c", ROTATE_AND_HOLD, str(total // 2), str(half)], env=env,
                                        cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
        rounds_at_start = staff.rounds
        try:
            deadline = time.monotonic() + 60
            while not half.exists():
                assert rotation.poll() is None, "rotation ended before half way: " + log.read_text()
                assert time.monotonic() < deadline, "rotation never got half way"
                time.sleep(0.02)
        finally:
            os.kill(rotation.pid, signal.SIGKILL)
            rotation.wait(10)
        assert rotation.returncode == -signal.SIGKILL
        census = keys.key_census(served_deps)
        assert census[old] > 0 and census["k2"] >= total / 2 - 3, census  # killed at half way, mid-batch
        read, bad = _undecryptable(served_deps)
        assert read >= total and bad == 0

        # The form opened before the rotation saves with its version: the rotation changed no lock counter.
        children.update_profile(served_deps, move.child_id, replace(_as_input(profile), aliases="Mira"),
                                profile.version, sw, sw_actor)

        rerun = run_cli(env, "rotate-keys", timeout=120)
        assert "key k2:" in rerun.stdout and f"key {old}:" not in rerun.stdout, rerun.stdout
        assert staff.rounds > rounds_at_start  # requests were served while the rotations ran
    finally:
        staff.stop.set()
        staff.join(30)
    assert staff.failures == []
    assert set(keys.key_census(served_deps)) == {"k2"}
    new_only = _with_keyring(app, k2_only)  # the old key can be retired: k2 alone reads everything
    try:
        read, bad = _undecryptable(new_only.extensions["transitions"])
        assert read >= total and bad == 0
    finally:
        new_only.extensions["transitions"].db.dispose()
        served_deps.db.dispose()
