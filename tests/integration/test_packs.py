"""Handover packs and secure receipt: sending, the recipient journey (code, session, pack, confirmation), what a
GET may not do, revocation and expiry, new versions, need-to-know filtering, markup in the PDF and the page."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pikepdf
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from tests.conftest import csrf_from
from tests.integration.conftest import Demo, start
from transitions.models import (
    Child,
    InformationRequest,
    OutboxMessage,
    Pack,
    PackCode,
    PackEvent,
    RecipientSession,
    SectionVersion,
    TransitionRecipient,
)
from transitions.services import children, packs, receipt
from transitions.services import transitions as service
from transitions.services.audit import Actor
from transitions.services.sections import add_version

SCANNER = Actor("recipient", None, "40.94.0.1", "Mozilla/5.0 (compatible; Microsoft Defender SafeLinks)")
WARD_NURSE = Actor("recipient", None, "10.1.2.3", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156")


def ready_emergency(deps, world: Demo) -> uuid.UUID:
    """Amira's emergency out-of-area move to a children's home in North Yorkshire, ready to send (a senior
    manager has overridden her stale photo)."""
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    transition_id = start(deps, world, "social_worker_south", "Amira", "emergency_move", "SC900003",
                          when=deps.clock.now() + timedelta(hours=2), urgency="emergency", distance="no",
                          emergency_reason="Carers asked for her to leave tonight after an assault")
    service.override_section(deps, transition_id, "PHOTO", "New photo to be taken on arrival by the home",
                             world.view(deps, "senior_manager"), world.actor("senior_manager"))
    service.change_status(deps, transition_id, "ready", "", None, sw, sw_actor)
    return transition_id


def send_emergency(deps, world: Demo) -> uuid.UUID:
    """The same move, sent."""
    transition_id = ready_emergency(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    assert service.change_status(deps, transition_id, "sent", "", None, sw, sw_actor) == "sent"
    return transition_id


def link_for(deps, transition_id: uuid.UUID, recipient_type: str) -> tuple[str, Pack]:
    """The token from the queued email (the only place it exists) and its pack."""
    with deps.db.transaction() as session:
        pack = session.scalars(select(Pack).join(TransitionRecipient, Pack.recipient_id == TransitionRecipient.id)
                               .where(Pack.transition_id == transition_id,
                                      TransitionRecipient.recipient_type == recipient_type)
                               .order_by(Pack.version.desc())).first()
        assert pack is not None
        message = session.get(OutboxMessage, pack.outbox_message_id)
        match = re.search(r"/r/([A-Za-z0-9_\-]{40,})", message.body or "")
        assert match
        session.expunge(pack)
        return match.group(1), pack


def latest_code(deps, pack_id: uuid.UUID) -> str:
    """The code in the email of the pack's one live code (older ones are voided when a new one is sent)."""
    with deps.db.transaction() as session:
        live = session.scalars(select(PackCode).where(PackCode.pack_id == pack_id, PackCode.used_at.is_(None),
                                                      PackCode.voided.is_(False))).one()
        message = session.scalars(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == f"pack-code-{live.id}")).one()
        return re.search(r"Your code is (\d{6})", message.body or "").group(1)  # type: ignore[union-attr]


def counts(deps) -> tuple[int, int, int, int]:
    with deps.db.transaction() as session:
        return (session.scalar(select(func.count()).select_from(PackCode)) or 0,
                session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
                session.scalar(select(func.count()).select_from(RecipientSession)) or 0,
                session.scalar(select(func.count()).select_from(Pack).where(Pack.confirmed_at.is_not(None))) or 0)


def verified_session(deps, token: str, pack_id: uuid.UUID) -> str:
    receipt.send_code(deps, token, WARD_NURSE)
    return receipt.verify(deps, token, latest_code(deps, pack_id), WARD_NURSE)


def test_sending_builds_one_encrypted_pack_per_recipient_and_emails_a_link_without_the_childs_details(deps, world):
    transition_id = send_emergency(deps, world)
    with deps.db.transaction() as session:
        sent = list(session.scalars(select(Pack).where(Pack.transition_id == transition_id)))
        types = {p.recipient_type for p in sent}
        assert {"receiving_placement", "host_la", "host_police"} <= types
        messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_link")))
        bodies = " ".join((m.body or "") + (m.subject or "") for m in messages)
        for pack in sent:
            assert len(pack.token_hash) == 32 and pack.version == 1
            assert pack.expires_at == deps.clock.now() + timedelta(days=14)
            assert "ID@1" in pack.section_versions and len(pack.definition_digest) == 64
            if pack.recipient_type in ("receiving_placement", "host_police"):
                assert "PHOTO@1" in pack.section_versions and "MISSING@1" in pack.section_versions
    for secret in ("Amira", "Hassan", "Mira", "2009", "LCS-099120", "9990001332"):
        assert secret not in bodies
    assert "Example Council" in bodies and "Moorview House" in bodies
    token, _pack = link_for(deps, transition_id, "receiving_placement")
    # Only the hash of the token is stored
    with deps.db.transaction() as session:
        raw = json.dumps([repr(r) for r in session.execute(select(Pack.token_hash, Pack.reference)).all()])
    assert token not in raw


def test_fetching_the_link_never_sends_verifies_or_confirms(deps, world, client):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "host_police")
    before = counts(deps)
    for agent in ("", "Mozilla/5.0 (compatible; Microsoft Defender SafeLinks)", "Mozilla/5.0 Chrome/156",
                  "python-requests/2.32"):
        for _ in range(5):
            assert client.get(f"/r/{token}", headers={"User-Agent": agent}).status_code == 200
        assert client.head(f"/r/{token}", headers={"User-Agent": agent}).status_code == 200
        assert client.get(f"/r/{token}/enter-code", headers={"User-Agent": agent}).status_code == 200
    assert counts(deps) == before
    page = client.get(f"/r/{token}", headers={"Sec-Fetch-Site": "cross-site"}).get_data(as_text=True)
    for secret in ("Amira", "Hassan", "2009", "LCS-099120", "og:", "twitter:"):
        assert secret not in page
    assert "North Yorkshire Police" in page and "Example Council" in page
    board = packs.transition_board(deps, transition_id, world.view(deps, "social_worker_south"),
                                   world.actor("social_worker_south"))
    row = next(r for r in board.rows if r.recipient_title.startswith("Police force for the new area"))
    assert [label for label, _ in row.latest.steps] == ["Link fetched (may be automated)"]
    assert row.summary == "v1 awaiting confirmation"
    # The access log is rate-limited: scanners cannot fill it
    with deps.db.transaction() as session:
        fetched = session.scalar(select(func.count()).select_from(PackEvent).where(
            PackEvent.pack_id == pack.id, PackEvent.action == "link_fetched"))
    assert fetched == deps.settings.packs.fetch_log_per_hour


def test_the_code_email_holds_no_link_and_five_wrong_codes_void_it(deps, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    assert receipt.send_code(deps, token, WARD_NURSE).address == "m•••@example-provider.test"
    code = latest_code(deps, pack.id)
    with deps.db.transaction() as session:
        message = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_code")).one()
        assert "http" not in (message.body or "") and "Amira" not in (message.body or "")
        assert message.to_address == "moorview.house@example-provider.test"
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    for left in (4, 3, 2, 1):
        with pytest.raises(receipt.CodeRejectedError, match=f"try {left} more"):
            receipt.verify(deps, token, wrong, WARD_NURSE)
    with pytest.raises(receipt.CodeRejectedError, match="stopped working"):
        receipt.verify(deps, token, wrong, WARD_NURSE)
    with pytest.raises(receipt.CodeRejectedError, match="expired or was replaced"):
        receipt.verify(deps, token, code, WARD_NURSE)  # the right code is dead too
    # a new code works, and only the newest one
    deps.clock.advance(seconds=61)
    receipt.send_code(deps, token, WARD_NURSE)
    assert receipt.verify(deps, token, latest_code(deps, pack.id), WARD_NURSE)


def test_a_code_expires_after_ten_minutes_and_sends_are_limited_per_link(deps, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    other, _ = link_for(deps, transition_id, "host_la")
    receipt.send_code(deps, token, WARD_NURSE)
    code = latest_code(deps, pack.id)
    deps.clock.advance(minutes=10, seconds=1)
    with pytest.raises(receipt.CodeRejectedError, match="expired"):
        receipt.verify(deps, token, code, WARD_NURSE)
    for _ in range(2):
        deps.clock.advance(seconds=61)
        assert receipt.send_code(deps, token, WARD_NURSE).sent
    deps.clock.advance(seconds=61)
    with pytest.raises(receipt.RecipientLimitError):
        receipt.send_code(deps, token, SCANNER)  # 4th in an hour
    receipt.send_code(deps, other, WARD_NURSE)  # another link from the same address is not affected
    with pytest.raises(receipt.CodeRejectedError):  # a code from link A does not open link B
        receipt.verify(deps, other, latest_code(deps, pack.id), WARD_NURSE)


def test_the_recipient_views_downloads_and_confirms_and_the_board_shows_it(deps, world, client):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    assert client.get(f"/r/{token}").status_code == 200
    assert client.post(f"/r/{token}/code").status_code == 302
    assert client.get(f"/r/{token}/enter-code").status_code == 200
    response = client.post(f"/r/{token}/enter-code", data={"code": latest_code(deps, pack.id)})
    assert response.status_code == 302 and response.headers["Location"] == "/recipient/pack"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-recipient=") and "Secure" in cookie and "SameSite=Strict" in cookie
    assert "HttpOnly" in cookie and "Path=/" in cookie
    view = client.get("/recipient/pack")
    text = view.get_data(as_text=True)
    assert view.status_code == 200 and "Amira" in text and token not in text
    password = re.search(r'<code id="pdf-password">([^<]+)</code>', text).group(1)  # type: ignore[union-attr]
    assert 'src="/recipient/pack/photo"' in text
    photo = client.get("/recipient/pack/photo")
    assert photo.status_code == 200 and photo.data[:3] == b"\xff\xd8\xff" and photo.mimetype == "image/jpeg"
    download = client.get("/recipient/pack/download")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"] == f'attachment; filename="handover-{pack.reference}-v1.pdf"'
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(download.data))
    reader = PdfReader(io.BytesIO(download.data))
    assert reader.decrypt(password)
    pdf_text = "".join(p.extract_text() for p in reader.pages)
    assert "Amira" in pdf_text and "OFFICIAL-SENSITIVE" in pdf_text
    assert "Amira" not in json.dumps(reader.metadata or {}, default=str)
    # viewing and downloading are not receipt
    assert counts(deps)[3] == 0
    form = csrf_from(text)
    refused = client.post("/recipient/confirm", data={"csrf_token": form, "name": "Sam Okoro", "role": ""})
    assert refused.status_code == 200 and "Enter your role" in refused.get_data(as_text=True)
    assert "Confirm that you have read" in refused.get_data(as_text=True)
    data = {"csrf_token": form, "name": "Sam Okoro", "role": "Registered manager", "attested": "y"}
    assert client.post("/recipient/confirm", data=data).status_code == 302
    assert client.post("/recipient/confirm", data={**data, "name": "Someone Else"}).status_code == 302
    with deps.db.transaction() as session:
        confirmed = session.get(Pack, pack.id)
        assert confirmed.confirmed_name == "Sam Okoro"
        notices = list(session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_notice")))
        assert len(notices) == 1 and notices[0].to_address == "social.worker.south@example-council.test"
        assert "Amira" not in (notices[0].body or "")
    board = packs.transition_board(deps, transition_id, world.view(deps, "social_worker_south"),
                                   world.actor("social_worker_south"))
    row = next(r for r in board.rows if r.recipient_title == "Receiving placement")
    assert row.summary == "v1 confirmed" and row.latest.confirmed_role == "Registered manager"
    assert [label for label, _ in row.latest.steps] == ["Link fetched (may be automated)", "Code sent",
                                                        "Verified", "Viewed", "Downloaded"]


def test_a_revoked_link_is_refused_mid_session_and_expiry_is_enforced(deps, world, client):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    sid = verified_session(deps, token, pack.id)
    assert receipt.view(deps, sid, WARD_NURSE).document.first_page.preferred_name == "Amira"
    packs.revoke(deps, transition_id, pack.id, "Sent to the wrong home by mistake",
                 world.view(deps, "social_worker_south"), world.actor("social_worker_south"))
    with pytest.raises((receipt.LinkClosedError, receipt.RecipientSessionEndedError)):
        receipt.view(deps, sid, WARD_NURSE)
    closed = client.get(f"/r/{token}")
    assert closed.status_code == 410 and "0300 123 4567" in closed.get_data(as_text=True)
    assert "Amira" not in closed.get_data(as_text=True)
    # expiry: a live session on another link stops when the link expires
    token2, pack2 = link_for(deps, transition_id, "host_la")
    sid2 = verified_session(deps, token2, pack2.id)
    with deps.db.transaction() as session:
        session.get(Pack, pack2.id).expires_at = deps.clock.now() + timedelta(minutes=5)
    receipt.view(deps, sid2, WARD_NURSE)
    deps.clock.advance(minutes=6)
    with pytest.raises(receipt.LinkClosedError):
        receipt.view(deps, sid2, WARD_NURSE)
    assert client.get("/r/" + "x" * 43).status_code == 404


def test_recipient_sessions_end_after_fifteen_idle_minutes(deps, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "host_la")
    sid = verified_session(deps, token, pack.id)
    deps.clock.advance(minutes=14)
    receipt.view(deps, sid, WARD_NURSE)
    deps.clock.advance(minutes=15, seconds=1)
    with pytest.raises(receipt.RecipientSessionEndedError):
        receipt.view(deps, sid, WARD_NURSE)


def test_a_recipient_cannot_reach_another_recipients_pack(deps, world, client, app):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "host_police")
    _other_token, other = link_for(deps, transition_id, "receiving_placement")
    client.post(f"/r/{token}/code")
    client.post(f"/r/{token}/enter-code", data={"code": latest_code(deps, pack.id)})
    # Recipient URLs carry no ids: the session is bound to one pack, whatever is added to the address
    recipient_rules = [r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("recipient.")]
    assert all("<" not in rule or rule.startswith("/r/<token>") for rule in recipient_rules)
    mine = client.get(f"/recipient/pack/download?pack={other.id}&id={other.id}")
    with deps.db.transaction() as session:
        expected = session.get(Pack, pack.id).password
    assert PdfReader(io.BytesIO(mine.data)).decrypt(expected)
    # The staff pages that do name packs are for signed-in staff only
    staff_url = f"/transitions/{transition_id}/recipients/{other.recipient_id}/access-log"
    assert client.get(staff_url).status_code == 302
    assert client.post(f"/transitions/{transition_id}/packs/{other.id}/revoke").status_code in (400, 403)


def test_markup_in_every_text_field_appears_literally_in_the_pdf_and_the_page(deps, world, client):
    payload = '<b>Bold <img src="/etc/passwd"/> <a href="javascript:alert(1)">x</a> <font color="[[[pow]]]">'
    with deps.db.transaction() as session:
        for row in session.scalars(select(SectionVersion).where(SectionVersion.is_current.is_(True))):
            section = deps.definitions.sections[row.section_code]
            content = json.loads(row.content or "{}")
            for f in section.fields:
                if f.type in ("text", "textarea") and isinstance(content.get(f.id), str):
                    content[f.id] = payload
            row.content = json.dumps(content)
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    sid = verified_session(deps, token, pack.id)
    view = receipt.view(deps, sid, WARD_NURSE)
    file = receipt.download(deps, sid, WARD_NURSE)
    reader = PdfReader(io.BytesIO(file.data))
    reader.decrypt(view.password)
    text = "".join(p.extract_text() for p in reader.pages)
    assert '<img src="/etc/passwd"/>' in text and 'href="javascript:alert(1)"' in text
    for page in reader.pages:
        assert "/Annots" not in page
    client.set_cookie("__Host-recipient", sid, domain="localhost")
    html = client.get("/recipient/pack").get_data(as_text=True)
    assert "&lt;img src=&#34;/etc/passwd&#34;/&gt;" in html and "<img src=\"/etc/passwd\"" not in html


def test_a_school_receives_allergies_but_not_the_health_plan(deps, world):
    transition_id = send_emergency(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    school = next(o for code, o in world.orgs.items() if code == "999001")
    service.add_recipient(deps, transition_id, "school", school, "Amira will start at Fellside Academy", sw,
                          sw_actor)
    report = packs.send_remaining(deps, transition_id, sw, sw_actor)
    assert report.sent == 1
    token, pack = link_for(deps, transition_id, "school")
    doc = receipt.view(deps, verified_session(deps, token, pack.id), WARD_NURSE).document
    health = doc.section("HEALTH")
    assert health is not None and health.level == "summary"
    labels = {i.label for i in health.items}
    assert "Allergies" in labels
    assert not {"Health plan", "Conditions", "GP practice", "Sexual health"} & labels
    assert not health.documents
    assert "NHS number" not in {i.label for i in doc.section("ID").items}
    placement_token, placement = link_for(deps, transition_id, "receiving_placement")
    full = receipt.view(deps, verified_session(deps, placement_token, placement.id), WARD_NURSE).document
    assert "NHS number" in {i.label for i in full.section("ID").items}


def nurse_saves_health(deps, world: Demo, **changes: str) -> None:
    """The CLA nurse saves a new version of Amira's health section (Lesson CH1.1)."""
    nurse = world.view(deps, "cla_nurse")
    with deps.db.transaction() as session:
        child = session.get(Child, world.children["Amira"])
        previous = session.scalars(select(SectionVersion).where(SectionVersion.section_code == "HEALTH",
                                                                SectionVersion.is_current.is_(True),
                                                                SectionVersion.child_id == child.id)).one()
        content = {**json.loads(previous.content or "{}"), **changes}
        add_version(deps, session, child, deps.definitions.sections["HEALTH"], content, previous, "edit", nurse,
                    world.actor("cla_nurse"))


def test_a_new_health_plan_makes_a_new_version_due_only_for_those_entitled(deps, world):
    transition_id = send_emergency(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    token, pack = link_for(deps, transition_id, "receiving_placement")
    sid = verified_session(deps, token, pack.id)
    receipt.confirm(deps, sid, "Sam Okoro", "Registered manager", True, WARD_NURSE)
    nurse_saves_health(deps, world, sexual_health="Changed: seen at clinic")
    board = packs.transition_board(deps, transition_id, sw, sw_actor)
    # sexual health goes to health recipients only: here, the CLA nurse
    assert {r.recipient_title for r in board.rows if r.new_version_due} == {"Looked-after children's nurse"}
    nurse_saves_health(deps, world, conditions="Asthma (new inhaler from 1 December)")
    board = packs.transition_board(deps, transition_id, sw, sw_actor)
    stale = {r.recipient_title for r in board.rows if r.new_version_due}
    assert "Receiving placement" in stale
    assert not any(t.startswith("Police") for t in stale)  # police are not told of conditions
    placement = next(r for r in board.rows if r.recipient_title == "Receiving placement")
    assert placement.summary == "v1 confirmed, v2 pending"
    report = packs.send_remaining(deps, transition_id, sw, sw_actor, only_stale=True)
    assert report.sent == len(stale) + 0 and report.not_sent == ()
    board = packs.transition_board(deps, transition_id, sw, sw_actor)
    placement = next(r for r in board.rows if r.recipient_title == "Receiving placement")
    assert placement.summary == "v1 confirmed, v2 awaiting confirmation" and not placement.new_version_due
    with pytest.raises(receipt.LinkClosedError) as closed:
        receipt.landing(deps, token, WARD_NURSE)
    assert closed.value.replaced
    new_token, v2 = link_for(deps, transition_id, "receiving_placement")
    assert v2.version == 2 and v2.reference == pack.reference and new_token != token


def test_asking_for_missing_information_reaches_the_social_worker_and_is_not_receipt(deps, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "host_police")
    sid = verified_session(deps, token, pack.id)
    with pytest.raises(receipt.ReceiptInvalidError) as invalid:
        receipt.request_information(deps, sid, [], "", "", WARD_NURSE)
    assert set(invalid.value.errors) == {"sections", "reason", "requested_by"}
    receipt.request_information(deps, sid, ["MISSING", "NOPE"], "No phone numbers for the child", "PC Li, MPU",
                                WARD_NURSE)
    with deps.db.transaction() as session:
        request = session.scalars(select(InformationRequest)).one()
        assert request.sections == "MISSING" and request.reason == "No phone numbers for the child"
        assert session.get(Pack, pack.id).confirmed_at is None
        notice = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_notice")).one()
        assert notice.to_address == "social.worker.south@example-council.test"
    log = packs.access_log(deps, transition_id, pack.recipient_id, world.view(deps, "social_worker_south"),
                           world.actor("social_worker_south"))
    assert log.requests[0][1] == "PC Li, MPU"
    assert any(r.action == "Information requested" for r in log.rows)


def test_a_later_move_or_the_end_of_the_placement_revokes_earlier_links(deps, world):
    transition_id = send_emergency(deps, world)
    token, _pack = link_for(deps, transition_id, "receiving_placement")
    receipt.landing(deps, token, WARD_NURSE)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    later = start(deps, world, "social_worker_south", "Amira", "hospital_admission", "RZZ07",
                  when=deps.clock.now() + timedelta(days=1))
    service.override_section(deps, later, "PHOTO", "New photo to be taken on the ward tomorrow",
                             world.view(deps, "senior_manager"), world.actor("senior_manager"))
    service.change_status(deps, later, "ready", "", None, sw, sw_actor)
    service.change_status(deps, later, "sent", "", None, sw, sw_actor)
    with pytest.raises(receipt.LinkClosedError) as closed:
        receipt.landing(deps, token, WARD_NURSE)
    assert not closed.value.replaced
    with deps.db.transaction() as session:
        causes = {p.revoked_cause for p in session.scalars(select(Pack).where(Pack.transition_id == transition_id))}
    assert causes == {"superseded"}


def test_links_are_built_from_the_configured_address_not_the_host_header(deps, world, client, app):
    sw = world.accounts["social_worker_south"]
    assert sw
    transition_id = send_emergency(deps, world)
    token, _pack = link_for(deps, transition_id, "receiving_placement")
    with deps.db.transaction() as session:
        body = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_link")).first().body
    assert f"https://localhost/r/{token}" in (body or "") or "https://localhost/r/" in (body or "")
    assert client.get(f"/r/{token}", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("when", [datetime(2026, 11, 25, 2, 0, tzinfo=UTC)])
def test_the_landing_page_works_at_2am_without_any_cookie(deps, world, app, when):
    deps.clock.set(when)
    transition_id = send_emergency(deps, world)
    token, _pack = link_for(deps, transition_id, "receiving_placement")
    fresh = app.test_client()
    response = fresh.get(f"/r/{token}", base_url="https://localhost", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200 and "Send me a code" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow, noarchive"
    assert response.headers["Referrer-Policy"] == "strict-origin"


def test_the_end_of_a_placement_revokes_the_links_sent_for_the_move_into_it(deps, world):
    transition_id = send_emergency(deps, world)
    token, _pack = link_for(deps, transition_id, "host_la")
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")

    def move_to(code: str) -> None:
        profile = children.profile_for_edit(deps, world.children["Amira"], sw, sw_actor)
        data = children.ProfileInput(
            legal_name=profile.legal_name, preferred_name=profile.preferred_name, aliases="\n".join(profile.aliases),
            date_of_birth=profile.date_of_birth, sex=profile.sex, nhs_number=profile.nhs_number,
            nhs_number_not_known=False, la_child_id=profile.la_child_id, legal_status=profile.legal_status,
            placement_type=profile.placement_type, placement_started_on=profile.placement_started_on,
            responsible_la_id=profile.responsible_la.id if profile.responsible_la else None,
            current_placement_id=world.orgs[code], allocated_worker_id=profile.worker.id if profile.worker else None,
            team_id=profile.team.id if profile.team else None)
        children.update_profile(deps, world.children["Amira"], data, profile.version, sw, sw_actor)

    move_to("SC900003")  # she arrives: the packs for this move stay live
    assert receipt.landing(deps, token, WARD_NURSE).organisation == "North Yorkshire Council"
    move_to("SC900001")  # she leaves it
    with pytest.raises(receipt.LinkClosedError):
        receipt.landing(deps, token, WARD_NURSE)


def test_revoking_between_the_code_and_its_entry_refuses_the_code(deps, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    receipt.send_code(deps, token, WARD_NURSE)
    code = latest_code(deps, pack.id)
    packs.revoke(deps, transition_id, pack.id, "The placement fell through before arrival",
                 world.view(deps, "social_worker_south"), world.actor("social_worker_south"))
    with pytest.raises(receipt.LinkClosedError):
        receipt.verify(deps, token, code, WARD_NURSE)
    assert counts(deps)[2] == 0  # no recipient session was made


def test_code_entries_are_limited_per_link_not_per_address(deps, world, client):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    other, other_pack = link_for(deps, transition_id, "host_la")
    limit = deps.settings.packs.verify_attempts_per_5_minutes
    for _ in range(limit // 5):  # each code dies after 5 wrong tries; ask for another (within the send limits)
        with deps.db.transaction() as session:
            session.query(PackCode).delete()  # the send limit is tested elsewhere: here only entries count
        receipt.send_code(deps, token, WARD_NURSE)
        for _ in range(5):
            with pytest.raises(receipt.CodeRejectedError):
                receipt.verify(deps, token, "000000" if latest_code(deps, pack.id) != "000000" else "111111",
                               WARD_NURSE)
    with pytest.raises(receipt.RecipientLimitError):
        receipt.verify(deps, token, "123456", WARD_NURSE)
    limited = client.post(f"/r/{token}/enter-code", data={"code": "123456"})
    # (Flask-Limiter's headers may restate Retry-After for its own window: within the 5 minutes either way)
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 300
    receipt.send_code(deps, other, WARD_NURSE)  # the same address on another link is not limited
    assert receipt.verify(deps, other, latest_code(deps, other_pack.id), WARD_NURSE)
    deps.clock.advance(minutes=5, seconds=1)
    with pytest.raises(receipt.CodeRejectedError):
        receipt.verify(deps, token, "123456", WARD_NURSE)  # checked again, not limited


def test_fetching_a_link_stores_no_session_and_its_forms_are_checked_by_origin(deps, world, client):
    from transitions.models import StaffSession

    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    for path in (f"/r/{token}", f"/r/{token}/enter-code"):
        response = client.get(path)
        assert response.status_code == 200 and "Set-Cookie" not in response.headers
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 0
    # a page elsewhere cannot make a visitor's browser ask for codes or enter them
    for path, data in ((f"/r/{token}/code", {}), (f"/r/{token}/enter-code", {"code": "123456"})):
        for headers in ({"Origin": "https://evil.example", "Referer": "https://evil.example/"},
                        {"Origin": "null"}):
            refused = client.post(path, data=data, headers=headers)
            assert refused.status_code == 400, path
    assert counts(deps)[0] == 0
    # a second press within the minute sends nothing, so the first code keeps working
    assert client.post(f"/r/{token}/code").headers["Location"] == f"/r/{token}/enter-code"
    code = latest_code(deps, pack.id)
    again = client.post(f"/r/{token}/code")
    assert again.headers["Location"] == f"/r/{token}/enter-code?wait=1"
    assert "less than a minute ago" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert counts(deps)[0] == 1 and latest_code(deps, pack.id) == code
    deps.clock.advance(seconds=61)
    receipt.send_code(deps, token, WARD_NURSE)
    assert counts(deps)[0] == 2


def test_removing_a_recipient_revokes_its_link_and_revoked_links_are_not_sent_again(deps, world, client):
    transition_id = send_emergency(deps, world)
    sw, sw_actor = world.view(deps, "social_worker_south"), world.actor("social_worker_south")
    token, pack = link_for(deps, transition_id, "host_la")
    service.remove_recipient(deps, transition_id, pack.recipient_id, "Wrong authority: the home is in Redcar",
                             world.view(deps, "senior_manager"), world.actor("senior_manager"))
    with pytest.raises(receipt.LinkClosedError):
        receipt.landing(deps, token, WARD_NURSE)
    board = packs.transition_board(deps, transition_id, sw, sw_actor)
    removed = next(r for r in board.rows if r.recipient_id == pack.recipient_id)  # still on the record
    assert removed.latest.revoked_label == "Revoked: removed from the recipients" and not removed.needs_link
    _token, placement = link_for(deps, transition_id, "receiving_placement")
    packs.revoke(deps, transition_id, placement.id, "Sent before the home agreed", sw, sw_actor)
    before = board.unsent
    assert packs.send_remaining(deps, transition_id, sw, sw_actor).sent == 0  # nothing revoked goes out again
    assert packs.transition_board(deps, transition_id, sw, sw_actor).unsent == before
    # an expired link is renewed
    with deps.db.transaction() as session:
        session.get(Pack, link_for(deps, transition_id, "host_police")[1].id).expires_at = deps.clock.now()
    assert packs.send_remaining(deps, transition_id, sw, sw_actor).sent == 1
    assert link_for(deps, transition_id, "host_police")[1].version == 2


def test_recipient_pages_cope_with_odd_input(deps, world, client):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    client.post(f"/r/{token}/code")
    full_width = latest_code(deps, pack.id).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    response = client.post(f"/r/{token}/enter-code", data={"code": full_width[:3] + " " + full_width[3:]})
    assert response.status_code == 302  # a full-width keyboard's digits are the digits
    assert client.get("/recipient/confirmed").headers["Location"] == "/recipient/pack"  # not confirmed yet
    page = client.get("/recipient/request-information").get_data(as_text=True)
    sent = client.post("/recipient/request-information", data={
        "csrf_token": csrf_from(page), "sections": ["HEALTH"] * 200, "reason": "Medication list is old",
        "requested_by": "Sam, manager"})
    assert sent.status_code == 200 and "Request sent" in sent.get_data(as_text=True)
    with deps.db.transaction() as session:
        assert session.scalars(select(InformationRequest)).one().sections == "HEALTH"
    for code in ("1" * 5000, "１２３", "<script>", ""):
        assert client.post(f"/r/{token}/enter-code", data={"code": code}).status_code == 200
    ok = client.post(f"/r/{token}/code", headers={"Origin": "https://LOCALHOST:443"})
    assert ok.status_code == 302  # the same origin, written differently


def test_two_confirmations_at_once_make_one(deps, world):
    transition_id = send_emergency(deps, world)
    token, pack = link_for(deps, transition_id, "receiving_placement")
    sid = verified_session(deps, token, pack.id)
    first = receipt.confirm(deps, sid, "Sam Okoro", "Registered manager", True, WARD_NURSE)
    second = receipt.confirm(deps, sid, "Someone Else", "Deputy", True, WARD_NURSE)
    assert first.confirmed_at == second.confirmed_at and second.confirmed_name == "Sam Okoro"
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PackEvent).where(
            PackEvent.pack_id == pack.id, PackEvent.action == "confirmed")) == 1
