"""The staff session is read with its person in one SELECT (performance, perf2): the person's own state still
decides every request, even when their session row survives (R6–R9)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.conftest import make_staff, sign_in
from transitions.models import StaffSession, StaffUser

pytestmark = pytest.mark.security


@pytest.mark.parametrize("status", ["disabled", "invited"])
def test_a_person_no_longer_active_is_signed_out_though_their_session_row_remains(client, deps, clock, status):
    worker = make_staff(deps)
    sign_in(client, worker, clock)
    assert client.get("/children").status_code == 200
    with deps.db.transaction() as session:  # not through the admin pages, which also delete the sessions
        session.execute(update(StaffUser).where(StaffUser.id == worker.id).values(status=status))
    response = client.get("/children")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    with deps.db.transaction() as session:  # and the session is ended, not kept for later
        assert session.query(StaffSession).filter_by(user_id=worker.id).count() == 0


def test_the_session_row_still_expires_when_idle(client, deps, clock):
    worker = make_staff(deps)
    sign_in(client, worker, clock)
    assert client.get("/children").status_code == 200
    clock.advance(minutes=deps.settings.session.idle_minutes)
    response = client.get("/children")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
