"""Reminders and escalations in time (security.md C4 R31 and R34; attack #60 of table (d)): across the night the
clocks go back every slot is claimed once, at its UTC time; a confirmation or a revocation a second before a
reminder is due means no reminder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.integration.conftest import load_world
from tests.integration.test_follow_up import send_jade
from tests.integration.test_packs import WARD_NURSE, link_for, verified_session
from transitions.models import FollowUpSlot, OutboxMessage, Pack, Transition, TransitionRecipient
from transitions.services import follow_up, packs, receipt, tick

pytestmark = pytest.mark.security

#: 00:30 BST on Sunday 25 October 2026; the clocks go back from 02:00 BST to 01:00 GMT at 01:00 UTC.
BEFORE_THE_CHANGE = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)


def _slots(deps, pack_id) -> list[FollowUpSlot]:
    with deps.db.transaction() as session:
        rows = list(session.scalars(select(FollowUpSlot).where(FollowUpSlot.pack_id == pack_id)))
        session.expunge_all()
        return rows


def _follow_up_mails(deps, pack_id) -> int:
    with deps.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.idempotency_key.like(f"follow-up-{pack_id}-%"))) or 0


def test_every_slot_fires_once_at_its_utc_time_across_the_night_the_clocks_go_back(deps, clock):
    """R31 and attack #60: a move tonight at 02:30 UK (GMT, after the change): ticks every 30 minutes through the
    repeated hour, then just before and at each later slot. Each slot is claimed once, within one tick of its
    UTC time; the link expires exactly 14 x 24 hours after it was sent."""
    clock.set(BEFORE_THE_CHANGE)
    world = load_world(deps)
    transition_id = send_jade(deps, world)
    sent_at = clock.now()
    _token, pack = link_for(deps, transition_id, "receiving_placement")
    assert pack.expires_at == sent_at + timedelta(days=14)
    rule = deps.definitions.rules.escalation(deps.definitions.kinds["emergency_move"], "emergency")
    times = follow_up.slot_times(rule, sent_at + timedelta(hours=2))
    step = timedelta(minutes=30)
    while clock.now() < BEFORE_THE_CHANGE + timedelta(hours=3):  # through 01:00-02:00 UK, twice
        clock.advance(minutes=30)
        tick.run(deps)
    later = [(slot, at) for slot, at in sorted(times.items(), key=lambda item: item[1]) if at > clock.now()]
    assert later, "every slot fell in the night: the test would not check a later one"
    clock.set(later[0][1] - timedelta(seconds=1))
    tick.run(deps)
    assert later[0][0] not in {s.slot for s in _slots(deps, pack.id)}  # not a second early
    for _slot, at in later:
        clock.set(at)
        tick.run(deps)
    tick.run(deps)
    claimed = _slots(deps, pack.id)
    assert sorted(s.slot for s in claimed) == sorted(times)  # every slot, each once (one row per slot)
    for s in claimed:
        assert s.due_at == times[s.slot], s.slot
        assert timedelta(0) <= s.claimed_at - s.due_at <= step, s.slot
    mails = _follow_up_mails(deps, pack.id)
    assert mails == sum(s.messages for s in claimed) and mails >= len(claimed) - 1
    clock.advance(days=3)
    tick.run(deps)
    assert _follow_up_mails(deps, pack.id) == mails  # nothing after the last slot


def test_confirming_or_revoking_a_second_before_a_reminder_means_no_reminder(deps, clock):
    """R34: the follow-up reads confirmation and revocation when a slot falls, so neither pack is reminded at its
    first slot, while a third, untouched pack of the same move is reminded at its own."""
    world = load_world(deps)
    transition_id = send_jade(deps, world)

    def first_slot(pack) -> datetime:
        """The pack's first slot, as the follow-up itself computes it."""
        with deps.db.transaction() as session:
            transition = session.get(Transition, transition_id)
            due = follow_up.confirmation_due_at(deps, transition, session.get(TransitionRecipient, pack.recipient_id),
                                                session.get(Pack, pack.id))
            return follow_up.slot_times(follow_up.rule_for(deps, transition), due)["remind_before"]

    confirmed_token, confirmed = link_for(deps, transition_id, "receiving_placement")
    _revoked_token, revoked = link_for(deps, transition_id, "host_police")
    with deps.db.transaction() as session:
        control = session.scalars(select(Pack).where(Pack.transition_id == transition_id,
                                                     Pack.id.not_in([confirmed.id, revoked.id]))).first()
        session.expunge(control)

    def confirm() -> None:
        sid = verified_session(deps, confirmed_token, confirmed.id)
        receipt.confirm(deps, sid, "Sam Okoro", "Registered manager", True, WARD_NURSE)

    def revoke() -> None:
        packs.revoke(deps, transition_id, revoked.id, "Sent to the wrong force by mistake",
                     world.view(deps, "social_worker"), world.actor("social_worker"))

    for at, act in sorted([(first_slot(confirmed), confirm), (first_slot(revoked), revoke)], key=lambda e: e[0]):
        clock.set(at - timedelta(seconds=1))
        act()
        clock.set(at)
        tick.run(deps)
    assert _slots(deps, confirmed.id) == [] and _slots(deps, revoked.id) == []
    assert _follow_up_mails(deps, confirmed.id) == _follow_up_mails(deps, revoked.id) == 0
    clock.set(max(clock.now(), first_slot(control)))
    tick.run(deps)
    assert "remind_before" in {s.slot for s in _slots(deps, control.id)}
