"""Attack #65 / R71: one user sending a burst of packs is refused beyond the per-user limit (config
[operations]), on the page they pressed Send on, with nothing lost; the refusal is audited and alerted on."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from tests.conftest import post_form, sign_in
from tests.integration.conftest import world  # noqa: F401 - a fixture
from tests.integration.test_packs import nurse_saves_health, send_emergency
from transitions.models import AuditEvent, Pack
from transitions.services import packs
from transitions.services.send_limit import REFUSED, SendLimitError
from transitions.settings import OperationsSettings

pytestmark = pytest.mark.security

#: send_emergency sends this many packs (one per recipient of Amira's emergency move).
FIRST_SEND = 5


@pytest.fixture
def limited(deps, world, clock):  # noqa: F811
    """The demo world, its own sends out of the window, then a limit of FIRST_SEND packs per 10 minutes (the
    services read it from deps.settings, frozen for the app's life: set it in place for this test's app)."""
    clock.advance(minutes=11)
    object.__setattr__(deps, "settings", deps.settings.with_overrides(
        operations=OperationsSettings(pack_sends_per_user=FIRST_SEND, pack_send_window_minutes=10)))
    return world


def _pack_count(deps) -> int:
    with deps.db.transaction() as session:
        return int(session.scalar(select(func.count(Pack.id))) or 0)


def test_sends_beyond_the_per_user_limit_are_refused_audited_and_alerted(deps, limited, client, clock, caplog):
    demo = limited
    before = _pack_count(deps)
    transition_id = send_emergency(deps, demo)  # exactly the limit: allowed
    assert _pack_count(deps) == before + FIRST_SEND
    nurse_saves_health(deps, demo, conditions="Asthma (new inhaler from 1 December)")
    sw, sw_actor = demo.view(deps, "social_worker_south"), demo.actor("social_worker_south")
    caplog.set_level(logging.INFO)

    with pytest.raises(SendLimitError) as refused:
        packs.send_remaining(deps, transition_id, sw, sw_actor, only_stale=True)
    assert refused.value.sent == FIRST_SEND + 1 and _pack_count(deps) == before + FIRST_SEND
    alert_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert=")]
    assert alert_lines == [f"alert=pack_send_limit limit={FIRST_SEND} sent={FIRST_SEND + 1} window_minutes=10"]
    assert all(r.levelno == logging.ERROR for r in caplog.records if r.getMessage().startswith("alert="))
    with deps.db.transaction() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == REFUSED)))
    assert [(e.actor_id, e.object_id, e.outcome) for e in events] == [(sw_actor.id, str(transition_id), "denied")]

    # the same press through the page: the error shows on the transition page, nothing is sent
    sign_in(client, demo.accounts["social_worker_south"], clock)
    page = f"/transitions/{transition_id}"
    response = post_form(client, f"{page}/packs/new_versions", {}, page=page)
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing was sent: this would make 6 packs sent by you in the last 10 minutes" in html
    assert _pack_count(deps) == before + FIRST_SEND

    # after the window the same press goes through: nothing was lost
    clock.advance(minutes=11)
    report = packs.send_remaining(deps, transition_id, sw, sw_actor, only_stale=True)
    assert report.sent >= 1 and _pack_count(deps) == before + FIRST_SEND + report.sent
