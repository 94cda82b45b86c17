"""Missing from care (issue 6 part 4; domain.md §3.3 rows 10-11, §5.8, SC-3): reporting an episode with Part 2,
who may, the 903 recording rules (one open episode; an A that becomes an M is two episodes), the return and its
tasks, the police pack by secure link through the ordinary recipient journey and printed, the child's page, the
history page, and what GET may not do."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from tests.conftest import csrf_from, sign_in
from tests.integration.conftest import Demo
from tests.integration.test_packs import WARD_NURSE, latest_code, send_emergency
from transitions.clock import UK
from transitions.models import (
    AuditEvent,
    Child,
    Escalation,
    FollowUpSlot,
    MissingEpisode,
    MissingReportEntry,
    Organisation,
    OutboxMessage,
    Pack,
    PackEvent,
    RecipientSession,
    StaffUser,
    StoredBlob,
    Task,
)
from transitions.services import children, follow_up, missing, packs, receipt, recipient_map
from transitions.services.errors import (
    BreakGlassRequiredError,
    ChildInvalidError,
    ForbiddenActionError,
    NotFoundError,
    TransitionStepError,
)

PART2 = missing.Part2Input(last_seen_place="Mill Road bowling alley, 7pm, leaving with another resident",
                           with_whom="Kayla (another resident)", clothing="Red hoodie, blue jeans, white trainers",
                           items_taken="Phone and about £20", state_of_mind="Angry after a phone call")
WORDS = ("Mill Road", "Kayla", "Red hoodie", "about £20", "Angry after")


def _force(deps, name: str = "Cumbria Constabulary") -> uuid.UUID:
    with deps.db.transaction() as session:
        return session.scalars(select(Organisation.id).where(Organisation.kind == "police_force",
                                                             Organisation.name == name)).one()


def report(deps, world: Demo, child: str = "Leo", who: str = "social_worker", *, code: str = "M",
           hours_ago: float = 2, part2: missing.Part2Input = PART2, force: uuid.UUID | None = None) -> uuid.UUID:
    now = deps.clock.now()
    return missing.report_missing(deps, world.children[child], missing.ReportInput(
        code=code, started_at=now - timedelta(hours=hours_ago),
        reported_at=now - timedelta(hours=hours_ago) + timedelta(minutes=10),
        police_reference="CU-20260303-0117", police_force_id=force or _force(deps), part2=part2),
        world.view(deps, who), world.actor(who))


def link_token(deps, pack_id: uuid.UUID) -> str:
    with deps.db.transaction() as session:
        pack = session.get(Pack, pack_id)
        message = session.get(OutboxMessage, pack.outbox_message_id)
        match = re.search(r"/r/([A-Za-z0-9_\-]{40,})", message.body or "")
        assert match
        return match.group(1)


def audit_rows(deps, prefix: str) -> list[AuditEvent]:
    with deps.db.transaction() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%"))))
        session.expunge_all()
        return rows


# ---- reporting ----------------------------------------------------------------------------------------------


def test_reporting_records_the_start_and_part2_encrypted_with_an_audit_event_naming_nobody(deps, world):
    episode_id = report(deps, world)
    with deps.db.transaction() as session:
        episode = session.get(MissingEpisode, episode_id)
        assert episode.code == "M" and episode.ended_at is None
        assert episode.started_at == deps.clock.now() - timedelta(hours=2)
        assert episode.police_reference == "CU-20260303-0117"
        assert b"CU-2026" not in (episode.police_reference_enc or b"")
        child = session.get(Child, world.children["Leo"])
        assert episode.placement_id == child.current_placement_id
        entry = session.scalars(select(MissingReportEntry).where(MissingReportEntry.episode_id == episode_id)).one()
        assert entry.recorded_at == deps.clock.now()
        assert json.loads(entry.content)["clothing"] == PART2.clothing
        for word in WORDS:
            assert word.encode() not in (entry.content_enc or b"")
    [event] = audit_rows(deps, "missing.reported")
    assert event.object_id == str(world.children["Leo"]) and json.loads(event.details) == {
        "kind": "M", "link_id": str(episode_id)}
    assert not any(word in event.details for word in WORDS)


def test_a_report_is_checked_and_every_problem_named(deps, world):
    now = deps.clock.now()
    view, who = world.view(deps, "social_worker"), world.actor("social_worker")
    with pytest.raises(ChildInvalidError) as caught:
        missing.report_missing(deps, world.children["Leo"], missing.ReportInput(
            code="X", started_at=None, reported_at=None, police_reference="x" * 61, police_force_id=None,
            part2=missing.Part2Input(clothing="y" * 2001)), view, who)
    assert caught.value.errors == {
        "code": "Select whether the child is missing or away without permission",
        "started_at": "Enter the date and time the child left or was last seen",
        "police_force_id": "Select the police force it is being reported to",
        "police_reference": "Police reference must be 60 characters or fewer",
        "last_seen_place": "Enter where the child was last seen",
        "clothing": "What they were wearing must be 2000 characters or fewer"}
    with pytest.raises(ChildInvalidError) as caught:
        missing.report_missing(deps, world.children["Leo"], missing.ReportInput(
            code="A", started_at=now + timedelta(hours=1), reported_at=now + timedelta(minutes=30),
            police_reference="", police_force_id=world.orgs["SC900001"], part2=PART2), view, who)
    assert caught.value.errors == {
        "started_at": "The time the child left or was last seen must be in the past",
        "reported_at": "The time it was reported to the police must be in the past",
        "police_force_id": "Select the police force it is being reported to"}  # a children's home is not a force
    with pytest.raises(ChildInvalidError) as caught:
        missing.report_missing(deps, world.children["Leo"], missing.ReportInput(
            code="M", started_at=now - timedelta(hours=1), reported_at=now - timedelta(hours=2),
            police_reference="", police_force_id=_force(deps), part2=PART2), view, who)
    assert caught.value.errors == {"reported_at": "The time it was reported to the police must be after the child "
                                                  "left or was last seen"}
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(MissingEpisode).where(
            MissingEpisode.child_id == world.children["Leo"])) == 0


def test_only_those_who_edit_the_record_report_but_a_break_glass_reader_may_print(deps, world):
    with pytest.raises(ForbiddenActionError):
        report(deps, world, who="cla_nurse")
    with pytest.raises(BreakGlassRequiredError):
        report(deps, world, who="social_worker_south")
    south = world.view(deps, "social_worker_south")
    children.break_glass(deps, world.children["Leo"], "Reported missing at 2am; his team cannot be reached",
                         south, world.actor("social_worker_south"))
    with pytest.raises(ForbiddenActionError):  # break-glass is read-only (R13)
        report(deps, world, who="social_worker_south")
    printed = missing.print_police_pack(deps, world.children["Leo"], None, "p" * 24, south,
                                        world.actor("social_worker_south"))
    assert printed.data.startswith(b"%PDF-")
    for who in ("team_manager", "senior_manager"):
        assert missing.panel(deps, world.children["Leo"], world.view(deps, who), world.actor(who)).can_report
    with pytest.raises((ForbiddenActionError, BreakGlassRequiredError)):  # auditors see reports and audit
        missing.print_police_pack(deps, world.children["Leo"], None, "p" * 24, world.view(deps, "auditor"),
                                  world.actor("auditor"))


def test_a_child_has_one_open_episode_and_a_new_one_starts_after_the_last_return(deps, world):
    episode_id = report(deps, world, hours_ago=5)
    with pytest.raises(TransitionStepError, match="already recorded as missing"):
        report(deps, world)
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    missing.record_return(deps, world.children["Leo"], episode_id, deps.clock.now() - timedelta(hours=1),
                          "Found by police at a friend's house", sw, who)
    with pytest.raises(ChildInvalidError) as caught:
        report(deps, world, hours_ago=2)
    assert "the time they left must be after that" in caught.value.errors["started_at"]
    report(deps, world, hours_ago=0.5)


def test_an_away_episode_that_becomes_missing_is_two_episodes_end_of_a_is_start_of_m(deps, world):
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    away = report(deps, world, code="A", hours_ago=3)
    at = deps.clock.now() - timedelta(hours=1)
    with pytest.raises(ChildInvalidError):
        missing.now_missing(deps, world.children["Leo"], away, deps.clock.now() - timedelta(hours=4), sw, who)
    gone = missing.now_missing(deps, world.children["Leo"], away, at, sw, who)
    with deps.db.transaction() as session:
        a, m = session.get(MissingEpisode, away), session.get(MissingEpisode, gone)
        assert (a.code, a.ended_at, a.end_cause) == ("A", at, "now_missing")
        assert (m.code, m.started_at, m.ended_at, m.previous_episode_id) == ("M", at, None, away)
        assert m.police_force_id == a.police_force_id
        assert session.scalar(select(func.count()).select_from(Task).where(
            Task.child_id == world.children["Leo"], Task.kind == "return_interview")) == 0  # not a return
    with pytest.raises(TransitionStepError):
        missing.now_missing(deps, world.children["Leo"], away, at, sw, who)  # no longer open
    page = missing.episode_page(deps, world.children["Leo"], gone, sw, who)
    assert [e.earlier_episode for e in page.entries] == [True]  # Part 2 so far goes with the new episode
    assert page.episode.previous_episode_id == away
    counts = missing.history(deps, world.children["Leo"], sw, who).counts
    assert (counts.recent, counts.recent_missing, counts.recent_away) == (2, 1, 1)
    assert counts.recent_text == "2 missing episodes in the last 30 days (1 missing, 1 away without authorisation)"


def test_later_part2_entries_are_added_timestamped_and_never_overwrite(deps, world):
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    episode_id = report(deps, world)
    with pytest.raises(ChildInvalidError) as caught:
        missing.add_part2(deps, world.children["Leo"], episode_id, missing.Part2Input(), sw, who)
    assert list(caught.value.errors) == ["last_seen_place"]
    deps.clock.advance(minutes=50)
    seen = deps.clock.now() - timedelta(minutes=20)
    missing.add_part2(deps, world.children["Leo"], episode_id, missing.Part2Input(
        last_seen_place="Seen at Carlisle station by a friend", last_seen_at=seen), sw, who)
    entries = missing.episode_page(deps, world.children["Leo"], episode_id, sw, who).entries
    assert [e.recorded_at for e in entries] == [deps.clock.now(), deps.clock.now() - timedelta(minutes=50)]
    assert entries[0].answers[:2] == (("Where last seen", "Seen at Carlisle station by a friend"),
                                      ("When last seen", missing.at_text(seen)))
    assert ("Clothing", PART2.clothing) in entries[1].answers
    [event] = audit_rows(deps, "missing.part2_added")
    assert json.loads(event.details) == {"count": 2, "link_id": str(episode_id)}


# ---- the return ---------------------------------------------------------------------------------------------


def test_the_return_ends_the_episode_and_asks_for_the_interview_in_72_hours_and_a_reshare(deps, world):
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    episode_id = report(deps, world, hours_ago=8)
    came_back = deps.clock.now() - timedelta(hours=1)
    with pytest.raises(ChildInvalidError) as caught:
        missing.record_return(deps, world.children["Leo"], episode_id, deps.clock.now() - timedelta(hours=9), "",
                              sw, who)
    assert set(caught.value.errors) == {"ended_at", "where_found"}
    missing.record_return(deps, world.children["Leo"], episode_id, came_back, "Found by police in Workington", sw,
                          who)
    with deps.db.transaction() as session:
        episode = session.get(MissingEpisode, episode_id)
        assert (episode.ended_at, episode.end_cause, episode.where_found) == (
            came_back, "returned", "Found by police in Workington")
        child = session.get(Child, world.children["Leo"])
        found = {t.kind: t for t in session.scalars(select(Task).where(Task.subject_id == episode_id))}
        session.expunge_all()
    assert set(found) == {"return_interview", "missing_reshare"}
    interview = found["return_interview"]
    assert interview.due_at == came_back + timedelta(hours=72)
    assert (interview.assigned_role, interview.assigned_user_id, interview.team_id, interview.status) == (
        "social_worker", child.allocated_worker_id, child.team_id, "open")
    assert found["missing_reshare"].due_at > came_back
    panel = missing.panel(deps, world.children["Leo"], sw, who)
    assert panel.open_episode is None and panel.can_report
    assert panel.prompt is not None and panel.prompt.episode_id == episode_id
    with pytest.raises(TransitionStepError):
        missing.record_return(deps, world.children["Leo"], episode_id, came_back, "Again", sw, who)
    [event] = audit_rows(deps, "missing.returned")
    assert "Workington" not in event.details


# ---- the police pack by secure link -------------------------------------------------------------------------


def test_the_police_pack_goes_by_secure_link_through_the_recipient_journey(deps, world):
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    child_id = world.children["Leo"]
    context = missing.report_context(deps, child_id, sw, who)
    assert context.default_force_id == _force(deps)  # the force of the placement's area
    episode_id = report(deps, world)
    assert missing.send_police_pack(deps, child_id, episode_id, sw, who) == "Cumbria Constabulary"
    with deps.db.transaction() as session:
        pack = session.scalars(select(Pack).where(Pack.episode_id == episode_id)).one()
        assert (pack.transition_id, pack.recipient_id, pack.recipient_type, pack.version) == (
            None, None, "missing_police", 1)
        force = session.get(Organisation, pack.organisation_id)
        assert pack.address == force.mailbox and force.name == "Cumbria Constabulary"
        message = session.get(OutboxMessage, pack.outbox_message_id)
        assert message.to_address == force.mailbox and message.purpose == "pack_link"
        for secret in ("Leo", "Fraser", "Mill Road", "Red hoodie"):
            assert secret not in (message.body or "") + (message.subject or "")
        pack_id = pack.id
    token = link_token(deps, pack_id)
    assert receipt.landing(deps, token, WARD_NURSE).organisation == "Cumbria Constabulary"
    receipt.send_code(deps, token, WARD_NURSE)
    sid = receipt.verify(deps, token, latest_code(deps, pack_id), WARD_NURSE)
    view = receipt.view(deps, sid, WARD_NURSE)
    codes = [s.code for s in view.document.sections]
    assert codes.index("MISSING_PART2") == codes.index("MISSING") + 1
    part2 = view.document.section("MISSING_PART2")
    assert any(i.value == "CU-20260303-0117" for i in part2.items)
    assert any(("Clothing", PART2.clothing) == (i.label, i.value) for e in part2.entries for i in e.items)
    confirmed = receipt.confirm(deps, sid, "PC Jo Bell", "Missing persons coordinator", True, WARD_NURSE)
    assert confirmed.confirmed_at == deps.clock.now()
    with deps.db.transaction() as session:
        notice = session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key
                                                             == f"pack-confirmed-{pack_id}")).one()
        assert f"/children/{child_id}/missing/{episode_id}" in (notice.body or "")
    page = missing.episode_page(deps, child_id, episode_id, sw, who)
    assert page.links[0].confirmed_name == "PC Jo Bell"
    assert [label for label, _ in page.links[0].steps] == ["Link fetched (may be automated)", "Code sent",
                                                            "Verified", "Viewed"]
    # Part 2 grows: the police are sent a new version, and the old link stops
    missing.add_part2(deps, child_id, episode_id, missing.Part2Input(other="Texted a friend at 11pm"), sw, who)
    missing.send_police_pack(deps, child_id, episode_id, sw, who)
    page = missing.episode_page(deps, child_id, episode_id, sw, who)
    assert [(link.version, link.live) for link in page.links] == [(2, True), (1, False)]
    assert page.links[1].revoked_label == "Replaced by a newer version"


def test_episode_packs_stay_off_transition_boards_and_follow_up(deps, world):
    transition_id = send_emergency(deps, world)
    sw, who = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    episode_id = report(deps, world, child="Amira", who="social_worker_south",
                        force=_force(deps, "North Yorkshire Police"))
    missing.send_police_pack(deps, world.children["Amira"], episode_id, sw, who)
    board = packs.transition_board(deps, transition_id, sw, who)
    assert "Police force: child reported missing" not in [r.recipient_title for r in board.rows]
    deps.clock.advance(days=3)  # every follow-up slot of the move's packs is due; the episode's pack has none
    with deps.db.transaction() as session:
        pack_id = session.scalars(select(Pack.id).where(Pack.episode_id == episode_id)).one()
    assert pack_id not in follow_up._candidates(deps)
    result = follow_up.run(deps)  # the episode's pack (no transition, no recipient) does not break the run
    assert result.reminders + result.escalations > 0  # the run did follow the move's packs up
    with deps.db.transaction() as session:
        move_slots = session.scalar(select(func.count()).select_from(FollowUpSlot).join(
            Pack, Pack.id == FollowUpSlot.pack_id).where(Pack.transition_id == transition_id))
        assert move_slots and move_slots > 0
        assert session.scalar(select(func.count()).select_from(FollowUpSlot).where(
            FollowUpSlot.pack_id == pack_id)) == 0
        assert session.scalar(select(func.count()).select_from(Escalation).where(Escalation.pack_id == pack_id)) == 0


def test_a_force_without_a_mailbox_is_printed_for_not_sent(deps, world):
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    force = _force(deps, "Dyfed-Powys Police")
    with deps.db.transaction() as session:
        assert not session.get(Organisation, force).mailbox
    episode_id = report(deps, world, force=force)
    with pytest.raises(TransitionStepError, match="has no secure mailbox"):
        missing.send_police_pack(deps, world.children["Leo"], episode_id, sw, who)
    assert missing.episode_page(deps, world.children["Leo"], episode_id, sw, who).mailbox is None


# ---- the web: forms, the child's page, printing, GETs -------------------------------------------------------


def _signed_in(client, deps, world: Demo, who: str = "social_worker"):
    sign_in(client, world.accounts[who], deps.clock)
    return client


def test_the_report_form_shows_every_error_and_keeps_what_was_typed(client, deps, world):
    _signed_in(client, deps, world)
    url = f"/children/{world.children['Leo']}/missing/new"
    page = client.get(url).get_data(as_text=True)
    assert "Report Leo missing" in page and "Call 999" in page
    assert f'value="{_force(deps)}" selected' in page  # the force of the placement's area is chosen for them
    response = client.post(url, data={
        "csrf_token": csrf_from(page), "code": "M", "started_on": ["31", "2", "2026"], "started_time": "25:99",
        "police_force_id": "",
        "last_seen_place": "", "clothing": "Green parka with a fur hood", "with_whom": "Kayla"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<title>Error: " in html and "There is a problem" in html
    for message in ("The date the child left or was last seen must be a real date",
                    "Select the police force it is being reported to", "Enter where the child was last seen"):
        assert message in html
    assert 'href="#started_on-day"' in html
    assert "Green parka with a fur hood" in html and ">Kayla</textarea>" in html  # nothing typed is lost
    assert 'value="31"' in html
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(MissingEpisode).where(
            MissingEpisode.child_id == world.children["Leo"])) == 0
    local = (deps.clock.now() - timedelta(hours=2)).astimezone(UK)
    response = client.post(url, data={
        "csrf_token": csrf_from(html), "code": "M", "started_on": [str(local.day), str(local.month), str(local.year)],
        "started_time": local.strftime("%H:%M"), "police_force_id": str(_force(deps)),
        "last_seen_place": "Mill Road", "clothing": "Green parka with a fur hood"})
    assert response.status_code == 302 and "/missing/" in response.headers["Location"]
    episode_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Missing episode" in episode_page and "Green parka with a fur hood" in episode_page
    assert "Send the police pack to Cumbria Constabulary" in episode_page


def test_the_childs_page_shows_the_count_the_open_episode_and_after_the_return_the_prompt(client, deps, world):
    _signed_in(client, deps, world)
    jade = client.get(f"/children/{world.children['Jade']}").get_data(as_text=True)
    # the demo: an away that became missing, and one more, in the last 30 days; one before that
    assert "3 missing episodes in the last 30 days (2 missing, 1 away without authorisation)" in jade
    assert "Report missing" in jade and "Print the police pack" in jade
    leo_url = f"/children/{world.children['Leo']}"
    assert "0 missing episodes in the last 30 days" in client.get(leo_url).get_data(as_text=True)
    episode_id = report(deps, world)
    page = client.get(leo_url).get_data(as_text=True)
    assert "Leo is missing: since" in page and "1 missing episode in the last 30 days" in page
    assert f"/missing/{episode_id}" in page and ">Report missing<" not in page
    missing.record_return(deps, world.children["Leo"], episode_id, deps.clock.now(), "Came back by himself",
                          world.view(deps, "social_worker"), world.actor("social_worker"))
    page = client.get(leo_url).get_data(as_text=True)
    assert "Leo came back on" in page and "Update the missing-from-care plan" in page
    history = client.get(f"{leo_url}/missing").get_data(as_text=True)
    assert "Missing history" in history and "1 missing episode in the last 30 days" in history
    assert f"/missing/{episode_id}" in history and "Came back by himself" not in history  # the episode page has it


def test_printing_shows_a_password_and_downloads_an_encrypted_pdf_made_now_and_audited(client, deps, world):
    _signed_in(client, deps, world)
    episode_id = report(deps, world)
    base = f"/children/{world.children['Leo']}/missing/{episode_id}/police-pack"
    direct = client.get(base + ".pdf")  # not from the page that shows the password
    assert direct.status_code == 302 and direct.headers["Location"].endswith(base)
    page = client.get(base).get_data(as_text=True)
    password = re.search(r'<code id="print-password">([^<]+)</code>', page).group(1)
    assert len(password) >= 20
    assert audit_rows(deps, "missing.police_pack_printed") == []  # showing the page prints nothing
    response = client.get(base + ".pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=police-pack-HP-")
    assert "sandbox" in response.headers["Content-Security-Policy"]
    reader = PdfReader(io.BytesIO(response.data))
    assert reader.is_encrypted and reader.decrypt(password)
    text = "".join(p.extract_text() for p in reader.pages)
    for expected in ("OFFICIAL-SENSITIVE", "Missing from care: police pack", "Philomena Protocol Part 1",
                     "Philomena Protocol Part 2", "Red hoodie", "CU-20260303-0117"):
        assert expected in text, expected
    assert "Leo" not in (reader.metadata.title or "")
    pages = [p.extract_text() for p in reader.pages]
    part1 = next(i for i, t in enumerate(pages) if "Philomena Protocol Part 1" in t)
    part2 = next(i for i, t in enumerate(pages) if "Philomena Protocol Part 2" in t)
    assert part2 > part1 and "Philomena Protocol Part 1" not in pages[part2]  # Part 2 on pages of its own
    assert "Leo" in pages[part2] and "Leo" in pages[part1]  # each printable alone: who the child is at the top
    [event] = audit_rows(deps, "missing.police_pack_printed")
    assert json.loads(event.details) == {"count": len(reader.pages), "kind": "missing_police",
                                         "link_id": str(episode_id), "via": "allocated"}
    # made from the record as it is now: the same page again gives a new file with what was added since
    missing.add_part2(deps, world.children["Leo"], episode_id, missing.Part2Input(other="Seen near the docks"),
                      world.view(deps, "social_worker"), world.actor("social_worker"))
    again = PdfReader(io.BytesIO(client.get(base + ".pdf").data))
    again.decrypt(password)
    assert "Seen near the docks" in "".join(p.extract_text() for p in again.pages)


def test_gets_change_nothing(client, deps, world):
    _signed_in(client, deps, world)
    episode_id = report(deps, world, code="A")
    child = world.children["Leo"]
    with deps.db.transaction() as session:
        before = (session.scalar(select(func.count()).select_from(MissingEpisode)),
                  session.scalar(select(func.count()).select_from(MissingReportEntry)),
                  session.scalar(select(func.count()).select_from(Pack)),
                  session.scalar(select(func.count()).select_from(Task)))
    episode_url = f"/children/{child}/missing/{episode_id}"
    new = client.get(f"/children/{child}/missing/new")  # already away: the form sends them to the episode
    assert new.status_code == 302 and new.headers["Location"] == episode_url
    for url in (episode_url, f"{episode_url}/part-2", f"{episode_url}/return", f"{episode_url}/now-missing",
                f"/children/{child}/missing", f"{episode_url}/police-pack", f"/children/{child}"):
        assert client.get(url).status_code == 200, url
    assert client.get(f"/children/{child}/missing/{episode_id}/send").status_code == 405
    with deps.db.transaction() as session:
        after = (session.scalar(select(func.count()).select_from(MissingEpisode)),
                 session.scalar(select(func.count()).select_from(MissingReportEntry)),
                 session.scalar(select(func.count()).select_from(Pack)),
                 session.scalar(select(func.count()).select_from(Task)))
    assert after == before


def test_the_return_form_refuses_a_return_before_the_start_and_keeps_the_text(client, deps, world):
    _signed_in(client, deps, world)
    episode_id = report(deps, world, hours_ago=3)
    url = f"/children/{world.children['Leo']}/missing/{episode_id}/return"
    html = client.get(url).get_data(as_text=True)
    early = (deps.clock.now() - timedelta(hours=5)).astimezone(UK)
    response = client.post(url, data={"csrf_token": csrf_from(html),
                                      "ended_on": [str(early.day), str(early.month), str(early.year)],
                                      "ended_time": early.strftime("%H:%M"), "where_found": "At the docks"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "The time the child came back must be after they left" in html
    assert "At the docks</textarea>" in html
    now = deps.clock.now().astimezone(UK)
    response = client.post(url, data={"csrf_token": csrf_from(html),
                                      "ended_on": [str(now.day), str(now.month), str(now.year)],
                                      "ended_time": now.strftime("%H:%M"), "where_found": "At the docks"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/children/{world.children['Leo']}")
    with deps.db.transaction() as session:
        assert session.get(MissingEpisode, episode_id).ended_at == datetime.fromisoformat(
            now.replace(second=0, microsecond=0).isoformat()).astimezone(UTC)


# ---- stopping a police link (R18), a change of force, a double click -----------------------------------------


def _sent(deps, world: Demo, child: str = "Leo") -> tuple[uuid.UUID, uuid.UUID, str]:
    """An episode whose police pack went by secure link: (episode, pack, token)."""
    episode_id = report(deps, world, child=child)
    missing.send_police_pack(deps, world.children[child], episode_id, world.view(deps, "social_worker"),
                             world.actor("social_worker"))
    with deps.db.transaction() as session:
        pack_id = session.scalars(select(Pack.id).where(Pack.episode_id == episode_id)
                                  .order_by(Pack.version.desc())).first()
    return episode_id, pack_id, link_token(deps, pack_id)


def _pack(deps, pack_id: uuid.UUID) -> Pack:
    with deps.db.transaction() as session:
        pack = session.get(Pack, pack_id)
        _ = pack.revoked_reason  # decrypted while there is a session (then kept)
        session.expunge(pack)
        return pack


def test_staff_who_edit_the_record_revoke_a_police_link_and_it_answers_410(client, deps, world):
    child_id = world.children["Leo"]
    episode_id, pack_id, token = _sent(deps, world)
    receipt.send_code(deps, token, WARD_NURSE)
    sid = receipt.verify(deps, token, latest_code(deps, pack_id), WARD_NURSE)
    receipt.view(deps, sid, WARD_NURSE)
    reason = "Sent to the wrong force: Leo was last seen in Dumfries"
    # only those who edit the child's record: not the nurse, not a break-glass reader, not an auditor
    with pytest.raises(ForbiddenActionError):
        missing.revoke_episode_pack(deps, child_id, episode_id, pack_id, reason, world.view(deps, "cla_nurse"),
                                    world.actor("cla_nurse"))
    south = world.view(deps, "social_worker_south")
    with pytest.raises(BreakGlassRequiredError):
        missing.revoke_episode_pack(deps, child_id, episode_id, pack_id, reason, south,
                                    world.actor("social_worker_south"))
    children.break_glass(deps, child_id, "Reported missing at 2am; his team cannot be reached", south,
                         world.actor("social_worker_south"))
    with pytest.raises(ForbiddenActionError):
        missing.revoke_episode_pack(deps, child_id, episode_id, pack_id, reason, south,
                                    world.actor("social_worker_south"))
    with pytest.raises((ForbiddenActionError, BreakGlassRequiredError)):
        missing.revoke_episode_pack(deps, child_id, episode_id, pack_id, reason, world.view(deps, "auditor"),
                                    world.actor("auditor"))
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    with pytest.raises(ChildInvalidError) as caught:
        missing.revoke_episode_pack(deps, child_id, episode_id, pack_id, "wrong", sw, who)
    assert caught.value.errors == {"reason": "Enter why you are stopping the police's access (at least 10 "
                                             "characters)"}
    transition_pack = _a_transition_pack(deps, world)
    with pytest.raises(NotFoundError):  # the episode's own packs only
        missing.revoke_episode_pack(deps, child_id, episode_id, transition_pack, reason, sw, who)
    assert _pack(deps, pack_id).revoked_at is None
    assert receipt.landing(deps, token, WARD_NURSE).organisation == "Cumbria Constabulary"  # still works

    missing.revoke_episode_pack(deps, child_id, episode_id, pack_id, reason, sw, who)
    pack = _pack(deps, pack_id)
    assert (pack.revoked_at, pack.revoked_cause, pack.revoked_by, pack.revoked_reason) == (
        deps.clock.now(), "staff", world.accounts["social_worker"].id, reason)
    assert _pack(deps, transition_pack).revoked_at is None
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(RecipientSession).where(
            RecipientSession.pack_id == pack_id)) == 0  # the police's verified session ends now
        assert session.scalar(select(func.count()).select_from(PackEvent).where(
            PackEvent.pack_id == pack_id, PackEvent.action == "viewed")) == 1  # the access log stays
    with pytest.raises(receipt.RecipientSessionEndedError):
        receipt.view(deps, sid, WARD_NURSE)
    with pytest.raises(receipt.LinkClosedError) as closed:
        receipt.landing(deps, token, WARD_NURSE)
    assert closed.value.replaced is False  # "withdrawn", not "a newer version was sent"
    response = client.get(f"/r/{token}")
    assert response.status_code == 410 and "This link no longer works" in response.get_data(as_text=True)
    with pytest.raises(TransitionStepError, match="already revoked"):
        missing.revoke_episode_pack(deps, child_id, episode_id, pack_id, reason, sw, who)
    [event] = [e for e in audit_rows(deps, "pack.revoked") if e.object_id == str(pack_id)]
    assert json.loads(event.details) == {"reason_code": "staff"} and "Dumfries" not in event.details
    [link] = missing.episode_page(deps, child_id, episode_id, sw, who).links
    assert (link.live, link.revoked_label, link.revoked_reason) == (False, "Revoked", reason)
    assert missing.episode_page(deps, child_id, episode_id, sw, who).live_link is None
    assert recipient_map.state_of(pack, deps.clock.now())[0] == recipient_map.REVOKED


def _a_transition_pack(deps, world: Demo) -> uuid.UUID:
    send_emergency(deps, world)
    with deps.db.transaction() as session:
        return session.scalars(select(Pack.id).where(Pack.transition_id.is_not(None))).first()


def test_the_revoke_form_on_the_episode_page_keeps_a_short_reason_with_the_error(client, deps, world):
    _signed_in(client, deps, world)
    child_id = world.children["Leo"]
    episode_id, pack_id, token = _sent(deps, world)
    url = f"/children/{child_id}/missing/{episode_id}"
    html = client.get(url).get_data(as_text=True)
    action = f"{url}/packs/{pack_id}/revoke"
    assert f'action="{action}"' in html and "Revoke access" in html
    response = client.post(action, data={"csrf_token": csrf_from(html), "revoke_reason": "Wrong"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<title>Error: " in html and "There is a problem" in html
    assert 'href="#revoke_reason"' in html
    assert "Enter why you are stopping the police&#39;s access (at least 10 characters)" in html
    assert ">Wrong</textarea>" in html  # what was typed is kept
    assert _pack(deps, pack_id).revoked_at is None
    response = client.post(action, data={"csrf_token": csrf_from(html),
                                         "revoke_reason": "Sent to the wrong force by mistake"})
    assert response.status_code == 302 and response.headers["Location"] == url
    page = client.get(url).get_data(as_text=True)
    assert "Access revoked." in page and "Revoked" in page and "Sent to the wrong force by mistake" in page
    assert f'action="{action}"' not in page  # nothing live to revoke
    assert client.get(f"/r/{token}").status_code == 410
    # a nurse reads the record but does not stop links
    nurse = client.application.test_client()
    sign_in(nurse, world.accounts["cla_nurse"], deps.clock)
    nurse_page = nurse.get(url)
    assert nurse_page.status_code == 200 and "Revoke access" not in nurse_page.get_data(as_text=True)
    assert nurse.post(action, data={"csrf_token": csrf_from(nurse_page.get_data(as_text=True)),
                                    "revoke_reason": "I think this should be stopped"}).status_code == 403


def test_changing_the_force_stops_the_old_forces_link(deps, world):
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    child_id = world.children["Leo"]
    episode_id, pack_id, token = _sent(deps, world)
    cumbria, yorkshire = _force(deps), _force(deps, "North Yorkshire Police")
    now = deps.clock.now()
    # a new reference for the same force stops nothing
    assert missing.update_police(deps, child_id, episode_id, missing.PoliceInput(
        reported_at=now - timedelta(hours=1), police_reference="CU-20260303-0200", police_force_id=cumbria),
        sw, who) == 0
    assert receipt.landing(deps, token, WARD_NURSE).organisation == "Cumbria Constabulary"
    # the police say it is another force's: Cumbria's link stops at once
    assert missing.update_police(deps, child_id, episode_id, missing.PoliceInput(
        reported_at=now - timedelta(hours=1), police_reference="NY-1", police_force_id=yorkshire), sw, who) == 1
    pack = _pack(deps, pack_id)
    assert (pack.revoked_at, pack.revoked_cause, pack.revoked_by) == (now, "force_changed", None)
    with pytest.raises(receipt.LinkClosedError) as closed:
        receipt.landing(deps, token, WARD_NURSE)
    assert closed.value.replaced is False  # no newer version went to Cumbria's mailbox
    assert recipient_map.state_of(pack, now) == (
        recipient_map.REVOKED, now, "Revoked: the missing episode was passed to another police force")
    events = [e for e in audit_rows(deps, "") if e.object_id in (str(pack_id), str(child_id))
              and e.action in ("pack.revoked", "missing.police_updated")]
    assert [(e.action, json.loads(e.details).get("reason_code"), json.loads(e.details).get("count"))
            for e in events][-2:] == [("pack.revoked", "force_changed", None), ("missing.police_updated", None, 1)]
    page = missing.episode_page(deps, child_id, episode_id, sw, who)
    assert page.live_link is None and page.links[0].revoked_label == (
        "Revoked: the missing episode was passed to another police force")
    assert missing.send_police_pack(deps, child_id, episode_id, sw, who) == "North Yorkshire Police"
    page = missing.episode_page(deps, child_id, episode_id, sw, who)
    assert [(link.version, link.organisation, link.live) for link in page.links] == [
        (2, "North Yorkshire Police", True), (1, "Cumbria Constabulary", False)]
    assert page.links[1].revoked_label == "Revoked: the missing episode was passed to another police force"


def _pack_links(deps, episode_id: uuid.UUID) -> tuple[int, int]:
    with deps.db.transaction() as session:
        ids = list(session.scalars(select(Pack.outbox_message_id).where(Pack.episode_id == episode_id)))
        emails = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.purpose == "pack_link", OutboxMessage.id.in_(ids))) if ids else 0
        return len(ids), int(emails or 0)


def test_a_second_send_straight_after_the_first_with_nothing_changed_sends_nothing(client, deps, world):
    sw, who = world.view(deps, "social_worker"), world.actor("social_worker")
    child_id = world.children["Leo"]
    episode_id, pack_id, _token = _sent(deps, world)
    deps.clock.advance(seconds=59)
    with pytest.raises(missing.PackJustSentError, match="less than a minute ago"):
        missing.send_police_pack(deps, child_id, episode_id, sw, who)
    assert _pack_links(deps, episode_id) == (1, 1)
    assert _pack(deps, pack_id).revoked_at is None  # v1 keeps working
    # something new in Part 2 is a new version at once
    missing.add_part2(deps, child_id, episode_id, missing.Part2Input(other="Texted a friend at 11pm"), sw, who)
    missing.send_police_pack(deps, child_id, episode_id, sw, who)
    assert _pack_links(deps, episode_id) == (2, 2)
    # and the same again a minute later is a deliberate resend: sent
    deps.clock.advance(seconds=61)
    missing.send_police_pack(deps, child_id, episode_id, sw, who)
    assert _pack_links(deps, episode_id) == (3, 3)
    # through the page: a double click sends one version and says why the second did nothing
    _signed_in(client, deps, world)
    url = f"/children/{child_id}/missing/{episode_id}"
    token = csrf_from(client.get(url).get_data(as_text=True))
    deps.clock.advance(minutes=5)
    first = client.post(f"{url}/send", data={"csrf_token": token})
    second = client.post(f"{url}/send", data={"csrf_token": token})
    assert first.status_code == second.status_code == 302 and second.headers["Location"] == url
    assert _pack_links(deps, episode_id) == (4, 4)
    page = client.get(url).get_data(as_text=True)
    assert "Police pack sent by secure link to Cumbria Constabulary" in page
    assert "less than a minute ago and nothing in it has changed since, so it was not sent again" in page
    links = missing.episode_page(deps, child_id, episode_id, sw, who).links
    assert [(link.version, link.live) for link in links] == [(4, True), (3, False), (2, False), (1, False)]


# ---- a colleague got there first: the form says so and keeps what was typed ---------------------------------


def test_reporting_after_a_colleague_keeps_the_typed_part2_with_the_error(client, deps, world):
    _signed_in(client, deps, world)
    child_id = world.children["Leo"]
    url = f"/children/{child_id}/missing/new"
    html = client.get(url).get_data(as_text=True)
    episode_id = report(deps, world, who="team_manager")  # pressed first, by a colleague
    local = (deps.clock.now() - timedelta(hours=2)).astimezone(UK)
    form = {"csrf_token": csrf_from(html), "code": "M", "started_on": [str(local.day), str(local.month),
                                                                       str(local.year)],
            "started_time": local.strftime("%H:%M"), "police_force_id": str(_force(deps)),
            "last_seen_place": "Outside the chip shop on Duke Street", "clothing": "Yellow raincoat",
            "with_whom": "Two older boys in a silver car"}
    response = client.post(url, data=form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<title>Error: " in html and "There is a problem" in html
    assert "This child is already recorded as missing since" in html
    for typed in ("Outside the chip shop on Duke Street</textarea>", "Yellow raincoat</textarea>",
                  "Two older boys in a silver car</textarea>", f'value="{local.strftime("%H:%M")}"'):
        assert typed in html, typed
    assert f'href="/children/{child_id}/missing/{episode_id}"' in html  # to add it to that episode's Part 2
    # a date it could not read as well: both problems at once, still nothing lost
    response = client.post(url, data={**form, "csrf_token": csrf_from(html), "started_time": "25:99"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "reported missing by someone else" in html
    assert "Enter the time, like 23:30 or 11:30pm" in html and "Yellow raincoat</textarea>" in html
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(MissingEpisode).where(
            MissingEpisode.child_id == child_id)) == 1
        assert session.scalar(select(func.count()).select_from(MissingReportEntry).where(
            MissingReportEntry.episode_id == episode_id)) == 1


def test_a_return_or_now_missing_a_colleague_recorded_first_is_an_error_on_the_form(client, deps, world):
    _signed_in(client, deps, world)
    child_id = world.children["Leo"]
    away = report(deps, world, code="A", hours_ago=3)
    base = f"/children/{child_id}/missing/{away}"
    return_page = client.get(f"{base}/return").get_data(as_text=True)
    now_missing_page = client.get(f"{base}/now-missing").get_data(as_text=True)
    manager, manager_actor = world.view(deps, "team_manager"), world.actor("team_manager")
    missing.now_missing(deps, child_id, away, deps.clock.now() - timedelta(hours=1), manager, manager_actor)
    at = (deps.clock.now() - timedelta(minutes=30)).astimezone(UK)
    response = client.post(f"{base}/now-missing", data={
        "csrf_token": csrf_from(now_missing_page), "at_on": [str(at.day), str(at.month), str(at.year)],
        "at_time": at.strftime("%H:%M")})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<title>Error: " in html and "There is a problem" in html
    assert "Only an open &#39;away without authorisation&#39; episode can become missing" in html
    assert f'value="{at.strftime("%H:%M")}"' in html and f'value="{at.day}"' in html
    response = client.post(f"{base}/return", data={
        "csrf_token": csrf_from(return_page), "ended_on": [str(at.day), str(at.month), str(at.year)],
        "ended_time": at.strftime("%H:%M"), "where_found": "Walked back to the home with a friend"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "There is a problem" in html
    assert "This episode has already ended" in html
    assert "Walked back to the home with a friend</textarea>" in html
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(MissingEpisode).where(
            MissingEpisode.child_id == child_id)) == 2
        assert session.scalar(select(func.count()).select_from(Task).where(
            Task.child_id == child_id, Task.kind == "return_interview")) == 0


# ---- migration 0006's downgrade -----------------------------------------------------------------------------


def _alembic(app):
    from alembic import command
    from flask import current_app

    def run(action: str, revision: str) -> None:
        with app.app_context():
            getattr(command, action)(current_app.extensions["migrate"].migrate.get_config(), revision)
    return run


def _revision(deps) -> str:
    with deps.db.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()


def test_the_downgrade_refuses_while_episode_packs_exist_and_changes_nothing(app, deps, world):
    episode_id, pack_id, token = _sent(deps, world)
    receipt.landing(deps, token, WARD_NURSE)  # an access log row
    _alembic(app)("downgrade", "0006")  # later revisions are not the subject here
    deps.db.engine.dispose()
    with pytest.raises(RuntimeError, match=r"Downgrade below 0006 refused: 1 pack\(s\) were sent for missing"):
        _alembic(app)("downgrade", "0005")
    deps.db.engine.dispose()
    assert _revision(deps) == "0006"
    _alembic(app)("upgrade", "head")
    deps.db.engine.dispose()
    with deps.db.transaction() as session:
        pack = session.get(Pack, pack_id)
        assert pack is not None and pack.episode_id == episode_id
        assert session.scalar(select(func.count()).select_from(PackEvent).where(PackEvent.pack_id == pack_id)) == 1
        assert session.get(StoredBlob, pack.pdf_blob_id) is not None
    assert receipt.landing(deps, token, WARD_NURSE).organisation == "Cumbria Constabulary"


def test_the_downgrade_and_upgrade_work_without_episode_packs(app, deps):
    head = _revision(deps)
    run = _alembic(app)
    run("downgrade", "0005")
    deps.db.engine.dispose()
    assert _revision(deps) == "0005"
    from sqlalchemy import inspect

    inspector = inspect(deps.db.engine)
    assert "missing_episode" not in inspector.get_table_names()
    assert "episode_id" not in {c["name"] for c in inspector.get_columns("pack")}
    assert not next(c for c in inspector.get_columns("pack") if c["name"] == "transition_id")["nullable"]
    run("upgrade", "head")
    deps.db.engine.dispose()
    assert _revision(deps) == head


def test_a_report_by_a_colleague_is_emailed_to_the_allocated_worker_without_the_childs_name(deps, world):
    """Leo's worker is the North social worker; the team manager reports him missing at night."""
    episode_id = report(deps, world, who="team_manager")
    with deps.db.transaction() as session:
        [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "missing_reported"))
        worker = session.get(StaffUser, world.accounts["social_worker"].id)
        assert message.to_address == worker.email
        assert f"/missing/{episode_id}" in (message.body or "")
        assert "Leo" not in (message.body or "") + (message.subject or "")
    report_by_worker = report(deps, world, child="Jade", who="social_worker")  # their own report: no email
    with deps.db.transaction() as session:
        assert not session.scalars(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == f"missing-reported-{report_by_worker}")).first()
