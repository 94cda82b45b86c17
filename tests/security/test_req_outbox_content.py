"""What leaves by email, and what markup in a child's record becomes (security.md C3 R30, C5 R38-R40; attacks #19
and #29 of table (d)). A child whose names are canaries carrying markup goes through a whole journey: the packs
are sent, a code is asked for, one recipient confirms and one asks for information, a colleague breaks the glass,
and the follow-up runs for days. Every message the SMTP server receives is then read."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from tests.conftest import Browser, csrf_from, make_staff, sign_in
from tests.integration.conftest import load_world
from tests.integration.test_packs import latest_code, link_for, ready_emergency
from transitions.models import Child, OutboxMessage, Pack, Team
from transitions.services import children, outbox, tick
from transitions.services.accounts import get_user
from transitions.services.audit import Actor

pytestmark = pytest.mark.security

PAYLOAD = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
PREFERRED = "Zqpref" + PAYLOAD
LEGAL = "Zqlegal Canaryname"
CANARIES = ("Zqpref", "Zqlegal", "Canaryname", "onerror", "<script", "Hassan", "LCS-099120", "9990001332")


def _verify(client, deps, token: str, pack_id) -> None:
    client.post(f"/r/{token}/code")
    assert client.post(f"/r/{token}/enter-code", data={"code": latest_code(deps, pack_id)}).status_code == 302


def test_a_whole_journey_emails_plain_text_naming_no_child_with_links_from_the_configured_address(
        deps, app, client, clock, smtp_server):
    """R38: no child's name or identifier in any subject or body, whichever email it is. R40 as built: every email
    is a single text/plain part (there is no HTML email for markup to run in). Attack #29: the markup in the
    child's name is shown as text on the staff pages, the recipient's page and in the PDF. Attack #19 and R30: see
    _send_through_the_web."""
    world = load_world(deps)
    with deps.db.transaction() as session:
        amira = session.get(Child, world.children["Amira"])
        amira.preferred_name, amira.legal_name = PREFERRED, LEGAL
        team = session.get(Team, amira.team_id).name
    make_staff(deps, role="team_manager", team=team)  # to be told of the break-glass below
    transition_id = _send_through_the_web(deps, app, client, clock, world, smtp_server)

    token, pack = link_for(deps, transition_id, "receiving_placement")
    _verify(client, deps, token, pack.id)
    page = client.get("/recipient/pack").get_data(as_text=True)
    client.post("/recipient/confirm", data={"csrf_token": csrf_from(page), "name": "Sam Okoro",
                                            "role": "Registered manager", "attested": "y"})
    police_token, police = link_for(deps, transition_id, "host_police")
    asker = app.test_client()
    _verify(asker, deps, police_token, police.id)
    form = csrf_from(asker.get("/recipient/request-information", base_url="https://localhost").get_data(as_text=True))
    asker.post("/recipient/request-information", base_url="https://localhost", headers={"Referer": "https://localhost/"},
               data={"csrf_token": form, "sections": ["MISSING"], "reason": "No phone numbers",
                     "requested_by": "PC Li"})
    outsider = make_staff(deps, team="Elsewhere Team")
    children.break_glass(deps, world.children["Amira"], "Duty team asked for the photo out of hours",
                         get_user(deps, outsider.id), Actor("staff", str(outsider.id)))
    recipient_page = client.get("/recipient/pack").get_data(as_text=True)
    for _ in range(4):  # the follow-up over three days: reminders, escalations, overdue tasks
        clock.advance(hours=18)
        tick.run(deps)
    outbox.deliver_due(deps)

    with deps.db.transaction() as session:
        rows = list(session.scalars(select(OutboxMessage)))
        purposes = {m.purpose for m in rows}
        sent = sum(m.status == "sent" for m in rows)
    assert {"pack_link", "pack_code", "pack_notice", "break_glass"} <= purposes
    assert len(purposes) >= 6, purposes  # and the follow-up's reminders and alerts
    received = smtp_server.wait_for(sent)
    assert len(received) == sent >= 15
    for message in received:
        assert not message.is_multipart() and message.get_content_type() == "text/plain", message["Subject"]
        words = str(message["Subject"]) + message.get_content()
        for canary in CANARIES:
            assert canary not in words, (message["Subject"], canary)

    escaped = "Zqpref&#34;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
    sign_in(client, world.accounts["social_worker_south"], clock)
    pages = {"recipient pack": recipient_page}
    for url in (f"/children/{world.children['Amira']}", "/children", f"/transitions/{transition_id}"):
        pages[url] = client.get(url).get_data(as_text=True)
    for name, html in pages.items():
        assert "<img src=x" not in html and "<script>alert(2)" not in html, name
        assert escaped in html, name
    with deps.db.transaction() as session:
        password = session.get(Pack, pack.id).password
    reader = PdfReader(io.BytesIO(_download(app, deps, token, pack.id)))
    assert reader.decrypt(password)
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Zqpref" in text and "onerror=alert(1)" in text  # literally, as text
    assert all("/Annots" not in p for p in reader.pages)


def _download(app, deps, token: str, pack_id) -> bytes:
    fresh = app.test_client()
    deps.clock.advance(seconds=61)
    fresh.post(f"/r/{token}/code", base_url="https://localhost", headers={"Referer": "https://localhost/"})
    fresh.post(f"/r/{token}/enter-code", base_url="https://localhost", headers={"Referer": "https://localhost/"},
               data={"code": latest_code(deps, pack_id)})
    return fresh.get("/recipient/pack/download", base_url="https://localhost").data


class AliasBrowser(Browser):
    """A browser that reaches the service by another of its trusted names."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("Referer", "https://127.0.0.1/")
        kwargs.setdefault("base_url", "https://127.0.0.1")
        return super().open(*args, headers=headers, **kwargs)


def _send_through_the_web(deps, app, client, clock, world, smtp_server) -> object:
    """Attack #19 and R30: Amira's move sent through the web. With `Host: evil.example` the request is refused
    (400) and nothing is sent; under another name the service answers to (127.0.0.1), every link still uses the
    configured address (https://localhost)."""
    transition_id = ready_emergency(deps, world)
    sign_in(client, world.accounts["social_worker_south"], clock)
    url = f"/transitions/{transition_id}/sent"
    form = csrf_from(client.get(f"/transitions/{transition_id}").get_data(as_text=True))
    evil = client.post(url, data={"csrf_token": form}, headers={"Host": "evil.example",
                                                                 "Referer": "https://evil.example/"})
    assert evil.status_code == 400 and "unknown host" in evil.get_data(as_text=True)
    with deps.db.transaction() as session:
        assert session.scalars(select(Pack).where(Pack.transition_id == transition_id)).first() is None
    app.test_client_class = AliasBrowser
    other_name = app.test_client()
    app.test_client_class = Browser
    sign_in(other_name, world.accounts["social_worker_south"], clock)
    form = csrf_from(other_name.get(f"/transitions/{transition_id}").get_data(as_text=True))
    assert other_name.post(url, data={"csrf_token": form}).status_code == 302
    with deps.db.transaction() as session:
        queued = list(session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_link")))
        bodies = [m.body or "" for m in queued]
        assert {m.status for m in queued} == {"queued"}  # R37: the request only queues; the relay sends later
    assert len(bodies) >= 3 and smtp_server.messages == []
    for body in bodies:
        links = re.findall(r"https?://[^\s/]+/r/", body)
        assert links == ["https://localhost/r/"], links
        assert "127.0.0.1" not in body and "evil.example" not in body
    return transition_id
