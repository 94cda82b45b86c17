"""Follow-through with the clock moved forward (Lesson CH6.2): reminders to the recipient before and at the due
time, then alerts to the social worker, the team manager and a senior manager at the configured offsets, each
exactly once however often `tick` runs; confirmation stops them; managers acknowledge and resolve; several
`tick` processes at once on PostgreSQL send no email twice; an SMTP outage delays but loses nothing."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import POSTGRES_URL, test_environ
from tests.integration.conftest import Demo, start
from tests.integration.test_packs import WARD_NURSE, link_for, send_emergency, verified_session
from transitions.models import Escalation, FollowUpSlot, OutboxMessage, Pack, StaffUser
from transitions.services import deadlines, follow_up, receipt, tick
from transitions.services import transitions as service
from transitions.services.errors import ChildInvalidError, ForbiddenActionError
from transitions.services.outbox import SmtpTransport


def send_jade(deps, world: Demo) -> uuid.UUID:
    """Jade (Children in Care North: a social worker and a team manager) moves tonight in an emergency."""
    sw, sw_actor = world.view(deps, "social_worker"), world.actor("social_worker")
    transition_id = start(deps, world, "social_worker", "Jade", "emergency_move", "SC900003",
                          when=deps.clock.now() + timedelta(hours=2), urgency="emergency", distance="no",
                          emergency_reason="The home gave notice tonight after an incident with a resident")
    service.change_status(deps, transition_id, "ready", "", None, sw, sw_actor)
    assert service.change_status(deps, transition_id, "sent", "", None, sw, sw_actor) == "sent"
    return transition_id


@dataclass
class Mail:
    subject: str
    body: str


def emails_to_staff(deps, who: str, world: Demo) -> list[Mail]:
    with deps.db.transaction() as session:
        person = session.get(StaffUser, world.accounts[who].id)
        return [Mail(m.subject or "", m.body or "") for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.purpose == "escalation")) if m.to_address == person.email]


def state(deps, pack_id: uuid.UUID) -> tuple[list[str], dict[str, int], int]:
    """The pack's claimed slots, its escalations by level and every email queued for it."""
    with deps.db.transaction() as session:
        slots = sorted(s.slot for s in session.scalars(select(FollowUpSlot).where(FollowUpSlot.pack_id == pack_id)))
        levels = Counter(e.level for e in session.scalars(select(Escalation).where(Escalation.pack_id == pack_id)))
        mails = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.idempotency_key.like(f"follow-up-{pack_id}-%"))) or 0
    return slots, dict(levels), mails


def tick_twice(deps) -> None:
    """Every step runs tick twice: the second run must change nothing."""
    tick.run(deps)
    with deps.db.transaction() as session:
        before = (session.scalar(select(func.count()).select_from(OutboxMessage)),
                  session.scalar(select(func.count()).select_from(FollowUpSlot)),
                  session.scalar(select(func.count()).select_from(Escalation)))
    report = tick.run(deps)
    with deps.db.transaction() as session:
        after = (session.scalar(select(func.count()).select_from(OutboxMessage)),
                 session.scalar(select(func.count()).select_from(FollowUpSlot)),
                 session.scalar(select(func.count()).select_from(Escalation)))
    assert after == before and not report.failed_jobs


def test_an_unconfirmed_recipient_is_reminded_then_escalated_at_each_offset_once(deps, clock, world):
    start_time = clock.now()
    transition_id = send_jade(deps, world)  # the move starts in 2 hours: the home confirms by then
    _token, pack = link_for(deps, transition_id, "receiving_placement")
    rule = deps.definitions.rules.escalation(deps.definitions.kinds["emergency_move"], "emergency")
    due = start_time + timedelta(hours=2)
    assert follow_up.slot_times(rule, due)["team_manager"] == due + timedelta(hours=rule.team_manager_after_hours)

    tick_twice(deps)
    assert state(deps, pack.id) == ([], {}, 0)

    clock.set(due - timedelta(hours=rule.remind_before_hours))
    tick_twice(deps)
    assert state(deps, pack.id) == (["remind_before"], {}, 1)
    with deps.db.transaction() as session:
        reminder = session.scalars(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == f"follow-up-{pack.id}-remind_before")).one()
        assert reminder.to_address == session.get(Pack, pack.id).address and pack.reference in (reminder.subject or "")
        assert "Jade" not in (reminder.body or "") and "/r/" not in (reminder.body or "")

    clock.set(due)
    tick_twice(deps)
    slots, levels, _ = state(deps, pack.id)
    assert slots == ["remind_before", "remind_due", "social_worker"] and levels == {"social_worker": 1}
    assert len(emails_to_staff(deps, "social_worker", world)) >= 1
    assert not emails_to_staff(deps, "team_manager", world)

    clock.set(due + timedelta(hours=rule.team_manager_after_hours) - timedelta(minutes=1))
    tick_twice(deps)
    assert state(deps, pack.id)[1] == {"social_worker": 1}
    clock.set(due + timedelta(hours=rule.team_manager_after_hours))
    tick_twice(deps)
    assert state(deps, pack.id)[1] == {"social_worker": 1, "team_manager": 1}
    tm_mail = [m for m in emails_to_staff(deps, "team_manager", world) if pack.reference in m.subject]
    assert len(tm_mail) == 1 and "Jade" not in tm_mail[0].body

    clock.set(due + timedelta(hours=rule.senior_manager_after_hours))
    tick_twice(deps)
    slots, levels, mails = state(deps, pack.id)
    assert levels == {"social_worker": 1, "team_manager": 1, "senior_manager": 1}
    assert len([m for m in emails_to_staff(deps, "senior_manager", world) if pack.reference in m.subject]) == 1
    clock.advance(days=3)
    tick_twice(deps)
    assert state(deps, pack.id) == (slots, levels, mails)  # every slot once, nothing after the last


def test_confirmation_stops_the_follow_up_and_settles_its_escalations(deps, clock, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    clock.advance(hours=2)
    tick.run(deps)
    assert state(deps, pack.id)[1] == {"social_worker": 1}
    sid = verified_session(deps, token, pack.id)
    receipt.confirm(deps, sid, "Sam Okafor", "Registered manager", True, WARD_NURSE)
    tick.run(deps)
    with deps.db.transaction() as session:
        escalation = session.scalars(select(Escalation).where(Escalation.pack_id == pack.id)).one()
        assert (escalation.status, escalation.resolved_cause) == ("resolved", "confirmed")
    clock.advance(days=2)
    tick.run(deps)
    assert state(deps, pack.id)[1] == {"social_worker": 1}


def test_a_team_manager_acknowledges_with_a_note_and_resolving_stops_later_alerts(deps, clock, world):
    transition_id = send_jade(deps, world)
    _token, pack = link_for(deps, transition_id, "receiving_placement")
    tm, tm_actor = world.view(deps, "team_manager"), world.actor("team_manager")
    clock.advance(hours=6)
    tick.run(deps)
    waiting, acknowledged = follow_up.dashboard(deps, tm, tm_actor)
    mine = [r for r in waiting if r.pack_reference == pack.reference]
    assert [r.level for r in mine] == ["team_manager"] and not acknowledged
    # The social worker's own alert is not on the team manager's list; a worker in another team cannot act on it.
    south = world.view(deps, "social_worker_south")
    assert not follow_up.dashboard(deps, south, world.actor("social_worker_south"))[0]
    with pytest.raises(ForbiddenActionError):
        follow_up.acknowledge(deps, mine[0].id, "Phoned the home twice today", south,
                              world.actor("social_worker_south"))
    with pytest.raises(ChildInvalidError):
        follow_up.acknowledge(deps, mine[0].id, "ok", tm, tm_actor)
    follow_up.acknowledge(deps, mine[0].id, "Phoned the home: the manager will confirm tonight", tm, tm_actor)
    waiting, acknowledged = follow_up.dashboard(deps, tm, tm_actor)
    assert mine[0].id not in {r.id for r in waiting}
    assert [r.acknowledged_note for r in acknowledged if r.id == mine[0].id] == [
        "Phoned the home: the manager will confirm tonight"]
    follow_up.resolve(deps, mine[0].id, "Confirmed by phone with the registered manager", tm, tm_actor)
    clock.advance(days=2)
    tick.run(deps)
    assert "senior_manager" not in state(deps, pack.id)[1]


def test_planned_moves_count_working_hours_and_alerts_wait_for_monday():
    rule = follow_up.EscalationRule(working_hours=True, remind_before_hours=4, social_worker_after_hours=0,
                                    team_manager_after_hours=4, senior_manager_after_hours=16)
    friday_4pm = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # GMT: UK time is UTC
    times = follow_up.slot_times(rule, friday_4pm)
    assert times["remind_before"] == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert times["social_worker"] == friday_4pm
    assert times["team_manager"] == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 1h Friday + 3h Monday
    assert times["senior_manager"] == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 1h + 8h Monday + 7h Tuesday
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert deadlines.shift_working_hours(saturday, 0) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    # Christmas 2026: Friday 25th, Boxing Day on Saturday is observed on Monday 28th.
    assert deadlines.shift_working_hours(datetime(2026, 12, 24, 16, 0, tzinfo=UTC), 2) == datetime(
        2026, 12, 29, 10, 0, tzinfo=UTC)
    # British Summer Time: 09:00 UK is 08:00 UTC.
    assert deadlines.shift_working_hours(datetime(2026, 6, 6, 12, 0, tzinfo=UTC), 0) == datetime(
        2026, 6, 8, 8, 0, tzinfo=UTC)


def test_with_the_smtp_server_down_reminders_wait_and_are_all_delivered_when_it_is_back(deps, clock, world,
                                                                                        smtp_server):
    closed = SmtpTransport("127.0.0.1", 9, starttls=False, timeout=2)
    send_emergency(deps, world)
    clock.advance(hours=26)
    down = tick.run(deps, transport=closed)
    assert down.delivery is not None and down.delivery.sent == 0 and down.delivery.retrying > 0
    assert down.follow_up is not None and down.follow_up.escalations > 0
    with deps.db.transaction() as session:
        queued = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "queued")) or 0
    for _ in range(4):
        clock.advance(minutes=30)
        tick.run(deps)
    with deps.db.transaction() as session:
        statuses = Counter(m.status for m in session.scalars(select(OutboxMessage)))
    assert statuses == {"sent": queued}
    received = smtp_server.wait_for(queued)
    assert len(received) == queued
    assert len({m["Message-ID"] for m in received}) == queued


def _environment_of(settings, database_url: str, instance: Path, smtp_port: int) -> dict[str, str]:
    key = lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")  # noqa: E731
    env = dict(os.environ)
    env.update(test_environ(database_url, instance, TRANSITIONS_SMTP_PORT=str(smtp_port)))
    env.update({"TRANSITIONS_ENV": "test", "TRANSITIONS_SECRET_KEY": settings.secrets.secret_key,
                "TRANSITIONS_KEYRING": settings.secrets.keyring,
                "TRANSITIONS_BLIND_INDEX_KEY": key(settings.secrets.blind_index_key),
                "TRANSITIONS_AUDIT_KEY": key(settings.secrets.audit_key)})
    return env


@pytest.mark.skipif(not POSTGRES_URL, reason="several tick processes at once is a PostgreSQL deployment")
def test_four_tick_processes_started_together_send_no_email_twice(deps, world, settings, database_url, tmp_path,
                                                                 smtp_server):
    """The demo data's moves were sent "six days ago" (the test clock): the real clock of the four processes
    finds every link email, reminder and escalation due at once, and they share it."""
    for child, sw in (("Amira", "social_worker_south"), ("Leo", "social_worker")):
        transition_id = start(deps, world, sw, child, "emergency_move", "SC900003",
                              when=deps.clock.now() + timedelta(hours=1), urgency="emergency", distance="no",
                              emergency_reason="Placement ended suddenly tonight after an incident")
        service.override_section(deps, transition_id, "PHOTO", "New photo to be taken on arrival by the home",
                                 world.view(deps, "senior_manager"), world.actor("senior_manager"))
        service.change_status(deps, transition_id, "ready", "", None, world.view(deps, sw), world.actor(sw))
        service.change_status(deps, transition_id, "sent", "", None, world.view(deps, sw), world.actor(sw))
    assert datetime.now(UTC) > deps.clock.now() + timedelta(days=3)
    env = _environment_of(settings, database_url, tmp_path / "instance", smtp_server.port)
    command = [str(Path(sys.executable).with_name("cla-transitions")), "tick"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    with deps.db.transaction() as session:
        messages = list(session.scalars(select(OutboxMessage)))
        slots = list(session.scalars(select(FollowUpSlot)))
        escalations = list(session.scalars(select(Escalation)))
        packs = session.scalar(select(func.count()).select_from(Pack)) or 0
    # Some packs are not due yet (5 working days) or were withdrawn; the rest have every slot, each once.
    assert len(escalations) >= 10 and len({(e.pack_id, e.level) for e in escalations}) == len(escalations)
    assert len({(s.pack_id, s.slot) for s in slots}) == len(slots) and len(slots) < 5 * packs
    sent = [m for m in messages if m.status == "sent"]
    received = smtp_server.wait_for(len(sent), timeout=20)
    assert len(received) == len(sent) == len(messages)
    # Each queued message arrived once (its Message-ID is its outbox id), and each slot queued its own.
    assert Counter(m["Message-ID"].split("@")[0].strip("<") for m in received) == Counter(
        str(m.id) for m in messages)
    # Every claimed slot queued exactly the emails it counted, whichever process claimed it.
    per_slot = Counter(m.idempotency_key[:len("follow-up-") + 36 + 1 + len(m.idempotency_key.split("-")[7])]
                       for m in messages if m.idempotency_key.startswith("follow-up-"))
    assert sum(per_slot.values()) == sum(s.messages for s in slots) > 10
    for s in slots:
        assert per_slot.get(f"follow-up-{s.pack_id}-{s.slot}", 0) == s.messages, s.slot


def test_a_social_worker_acknowledges_but_only_a_manager_resolves(deps, clock, world):
    transition_id = send_jade(deps, world)
    _token, pack = link_for(deps, transition_id, "receiving_placement")
    clock.advance(hours=2)
    tick.run(deps)
    sw, sw_actor = world.view(deps, "social_worker"), world.actor("social_worker")
    mine = [r for r in follow_up.dashboard(deps, sw, sw_actor)[0] if r.pack_reference == pack.reference]
    assert [r.level for r in mine] == ["social_worker"]
    with pytest.raises(ForbiddenActionError):
        follow_up.resolve(deps, mine[0].id, "The home says it has the pack", sw, sw_actor)
    follow_up.acknowledge(deps, mine[0].id, "Left a message with the home's manager", sw, sw_actor)
    clock.advance(hours=4)
    tick.run(deps)  # acknowledging does not stop the team manager's alert
    assert state(deps, pack.id)[1] == {"social_worker": 1, "team_manager": 1}


def test_an_alert_passed_up_for_want_of_a_team_manager_is_on_a_senior_managers_page(deps, clock, world):
    """Amira's team (South) has no team manager: its alert goes to senior managers, and is theirs to act on."""
    transition_id = send_emergency(deps, world)
    _token, pack = link_for(deps, transition_id, "receiving_placement")
    clock.advance(hours=6)
    tick.run(deps)
    sm, sm_actor = world.view(deps, "senior_manager"), world.actor("senior_manager")
    rows = [r for r in follow_up.dashboard(deps, sm, sm_actor)[0] if r.pack_reference == pack.reference]
    assert [r.level for r in rows] == ["team_manager"]
    with deps.db.transaction() as session:
        escalation = session.get(Escalation, rows[0].id)
        assert escalation.addressed_role == "senior_manager"
    follow_up.resolve(deps, rows[0].id, "Spoke to the home: confirmed by phone", sm, sm_actor)


def test_reminders_queued_while_the_mail_server_is_down_are_withdrawn_once_the_pack_is_confirmed(
        deps, clock, world, smtp_server):
    closed = SmtpTransport("127.0.0.1", 9, starttls=False, timeout=2)
    transition_id = send_jade(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    clock.advance(hours=2)
    tick.run(deps, transport=closed)
    with deps.db.transaction() as session:
        waiting = [m.id for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.idempotency_key.like(f"follow-up-{pack.id}-%")))]
    assert len(waiting) >= 2  # the reminder due now and the social worker's alert
    receipt.confirm(deps, verified_session(deps, token, pack.id), "Sam Okoro", "Registered manager", True,
                    WARD_NURSE)
    clock.advance(minutes=30)
    report = tick.run(deps)
    assert report.follow_up is not None and report.follow_up.withdrawn == len(waiting)
    with deps.db.transaction() as session:
        assert {session.get(OutboxMessage, i).status for i in waiting} == {"withdrawn"}
    subjects = [str(m["Subject"]) for m in smtp_server.messages]
    assert not [s for s in subjects if pack.reference in s and ("Reminder" in s or "overdue" in s)]


def test_a_planned_moves_reminder_due_at_night_waits_for_the_working_day():
    rule = follow_up.EscalationRule(working_hours=True, remind_before_hours=4, social_worker_after_hours=0,
                                    team_manager_after_hours=4, senior_manager_after_hours=16)
    three_am = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    times = follow_up.slot_times(rule, three_am)
    assert times["remind_due"] == times["social_worker"] == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert times["remind_before"] == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def test_one_pack_that_fails_does_not_stop_the_others(deps, clock, world, monkeypatch):
    transition_id = send_jade(deps, world)
    _token, broken = link_for(deps, transition_id, "receiving_placement")
    real = follow_up.confirmation_due_at

    def failing(deps_, transition, recipient, pack):
        if pack.id == broken.id:
            raise RuntimeError("simulated")
        return real(deps_, transition, recipient, pack)

    monkeypatch.setattr(follow_up, "confirmation_due_at", failing)
    clock.advance(days=3)
    report = tick.run(deps)
    assert report.follow_up is not None and report.follow_up.errors == [f"{broken.id}: RuntimeError"]
    assert report.follow_up.escalations > 0 and any("follow-up of 1 pack" in j for j in report.failed_jobs)
    assert state(deps, broken.id) == ([], {}, 0)
