"""Secure links and recipient verification tried through the web, as an attacker would (security.md C3, attacks
#1-#18 and #20 of table (d)). Each test drives the Flask test client against Amira's sent emergency move and
checks the safe outcome the table asks for: the same page for every wrong token, nothing consumed by a fetch,
nothing recorded after a revocation, one confirmation however many presses, no session an attacker can plant.
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, text

from tests.conftest import Browser, csrf_from
from tests.integration.conftest import load_world
from tests.integration.test_packs import counts, latest_code, link_for, send_emergency
from transitions.models import InformationRequest, OutboxMessage, Pack, PackEvent, RecipientSession
from transitions.services import packs

pytestmark = pytest.mark.security


@pytest.fixture
def sent(deps):
    """The demo world with Amira's emergency move sent: (world, transition id)."""
    world = load_world(deps)
    return world, send_emergency(deps, world)


def _page(response) -> str:
    """A page's HTML without what differs on every response (the CSP nonce, the support reference)."""
    html = re.sub(r'nonce="[^"]+"', 'nonce=""', response.get_data(as_text=True))
    return re.sub(r"Reference: <strong>[0-9a-f]+</strong>", "Reference: <strong></strong>", html)


def _verify(client, deps, token: str, pack_id) -> str:
    """Press "Send me a code", type the code from the email; return the recipient cookie that was set."""
    assert client.post(f"/r/{token}/code").status_code == 302
    response = client.post(f"/r/{token}/enter-code", data={"code": latest_code(deps, pack_id)})
    assert response.status_code == 302 and response.headers["Location"] == "/recipient/pack"
    return client.get_cookie(deps.settings.packs.session_cookie_name).value


def _new_browser(app) -> Browser:
    app.test_client_class = Browser
    return app.test_client()  # type: ignore[return-value]


def _events(deps, pack_id, action: str) -> int:
    with deps.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(PackEvent).where(
            PackEvent.pack_id == pack_id, PackEvent.action == action)) or 0


def test_a_closed_link_has_one_page_ends_a_viewing_session_and_records_nothing_after(deps, sent, client, app):
    """Attack #8: as built, a link that existed and is closed answers 410 with the sender's contact, the same page
    whether revoked or expired (an unknown one answers the plain 404: it has no sender to name). Attack #9: revoked
    while the recipient is viewing, the next request (a download) is refused. Attack #18: a confirmation posted
    after revocation or expiry is refused and records nothing."""
    world, transition_id = sent
    revoked, revoked_pack = link_for(deps, transition_id, "receiving_placement")
    expired, expired_pack = link_for(deps, transition_id, "host_la")
    viewer, late = _new_browser(app), _new_browser(app)
    _verify(viewer, deps, revoked, revoked_pack.id)
    _verify(late, deps, expired, expired_pack.id)
    forms = [csrf_from(b.get("/recipient/pack").get_data(as_text=True)) for b in (viewer, late)]
    packs.revoke(deps, transition_id, revoked_pack.id, "Sent to the wrong home by mistake",
                 world.view(deps, "social_worker_south"), world.actor("social_worker_south"))
    with deps.db.transaction() as session:
        session.get(Pack, expired_pack.id).expires_at = deps.clock.now() + timedelta(minutes=2)
    deps.clock.advance(minutes=3)

    download = viewer.get("/recipient/pack/download")  # the session ended with the revocation
    assert download.status_code in (401, 410) and not download.data.startswith(b"%PDF")
    data = {"name": "Sam Okoro", "role": "Registered manager", "attested": "y"}
    assert viewer.post("/recipient/confirm", data={**data, "csrf_token": forms[0]}).status_code in (401, 410)
    refused = late.post("/recipient/confirm", data={**data, "csrf_token": forms[1]})
    assert refused.status_code == 410 and "0300 123 4567" in refused.get_data(as_text=True)

    first, second = client.get(f"/r/{revoked}"), client.get(f"/r/{expired}")
    assert first.status_code == second.status_code == 410
    assert _page(first) == _page(second)  # two organisations, two reasons: one page
    html = _page(first)
    assert "0300 123 4567" in html
    for secret in ("Amira", "Moorview House", "North Yorkshire", "Sent to the wrong home"):
        assert secret not in html
    codes_before = counts(deps)[0]
    assert client.post(f"/r/{revoked}/code").status_code == 410  # the closed link's forms do nothing
    assert client.post(f"/r/{expired}/enter-code", data={"code": "123456"}).status_code == 410
    assert counts(deps)[0] == codes_before and _events(deps, revoked_pack.id, "refused") >= 1

    with deps.db.transaction() as session:
        for pack_id in (revoked_pack.id, expired_pack.id):
            assert session.get(Pack, pack_id).confirmed_at is None
        assert session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.purpose == "pack_notice")) == 0
    assert _events(deps, revoked_pack.id, "confirmed") == _events(deps, expired_pack.id, "confirmed") == 0
    with deps.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_event WHERE action = 'pack.confirmed'")).scalar() == 0


def test_codes_go_to_the_bound_mailbox_die_after_guesses_replays_and_limits(deps, sent, app, clock):
    """Attack #5: a colleague with a forwarded link presses the button; the code goes to the bound mailbox only,
    five guesses kill it, and each try is in the access log the sender reads. Attack #11: a code that opened the
    pack cannot be used again. Attack #10: the eleventh send in a day is 429 with Retry-After."""
    world, transition_id = sent
    token, pack = link_for(deps, transition_id, "receiving_placement")
    colleague = _new_browser(app)
    env = {"REMOTE_ADDR": "203.0.113.7"}
    assert colleague.post(f"/r/{token}/code", environ_base=env).status_code == 302
    page = colleague.get(f"/r/{token}/enter-code", environ_base=env).get_data(as_text=True)
    assert "m•••@example-provider.test" in page and "moorview.house" not in page
    with deps.db.transaction() as session:
        code_mail = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_code")).one()
        assert code_mail.to_address == session.get(Pack, pack.id).address == "moorview.house@example-provider.test"
        first_code = re.search(r"Your code is (\d{6})", code_mail.body or "").group(1)  # type: ignore[union-attr]
    for guess in ("000001", "000002", "000003", "000004", "000005"):
        response = colleague.post(f"/r/{token}/enter-code", data={"code": guess}, environ_base=env)
        assert response.status_code == 200 and "That code is wrong" in response.get_data(as_text=True)
    assert colleague.get("/recipient/pack").status_code == 401  # no session
    dead = colleague.post(f"/r/{token}/enter-code", data={"code": first_code}, environ_base=env)
    assert "expired or was replaced" in dead.get_data(as_text=True)  # even the right code is dead now
    log = packs.access_log(deps, transition_id, pack.recipient_id, world.view(deps, "social_worker_south"),
                           world.actor("social_worker_south"))
    wrong = [r for r in log.rows if r.action == "Wrong code entered"]
    assert len(wrong) >= 5 and {r.ip for r in wrong} == {"203.0.113.7"}
    assert any(r.action == "Code voided after too many wrong tries" for r in log.rows)

    clock.advance(seconds=61)
    nurse = _new_browser(app)
    _verify(nurse, deps, token, pack.id)
    with deps.db.transaction() as session:
        used = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_code")
                               .order_by(OutboxMessage.created_at.desc())).first()
        code = re.search(r"Your code is (\d{6})", used.body or "").group(1)  # type: ignore[union-attr]
    replay = _new_browser(app).post(f"/r/{token}/enter-code", data={"code": code})
    assert replay.status_code == 200 and "expired or was replaced" in replay.get_data(as_text=True)
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(RecipientSession)) == 1

    other, other_pack = link_for(deps, transition_id, "host_la")
    rules = deps.settings.packs
    sends = 0
    while sends < rules.code_sends_per_day:
        for _ in range(min(rules.code_sends_per_hour, rules.code_sends_per_day - sends)):
            clock.advance(seconds=61)
            assert nurse.post(f"/r/{other}/code").headers["Location"] == f"/r/{other}/enter-code", sends
            sends += 1
        clock.advance(minutes=61)
    limited = nurse.post(f"/r/{other}/code")
    # (Flask-Limiter may restate Retry-After from its own clock: within the hour either way)
    assert limited.status_code == 429 and 3500 < int(limited.headers["Retry-After"]) <= 3600
    assert "Too many codes have been sent for this link" in limited.get_data(as_text=True)
    assert _events(deps, other_pack.id, "code_sent") == sends + 1  # the refusal is logged too
    with deps.db.transaction() as session:
        address = session.get(Pack, other_pack.id).address
        mails = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "pack_code")).all()
        assert sum(m.to_address == address for m in mails) == sends


def test_a_recipient_session_cannot_be_planted_replayed_or_kept_past_its_limits(deps, sent, client, app):
    """Attack #15: an attacker verifies their own link and plants that cookie (or any value) in the victim's
    browser; the victim's verification issues a new id and the attacker's id never reaches the victim's pack.
    Attack #14 and R24: sign-out deletes the session; 60 minutes in all end it, however busy; the cookie is one
    pack's only."""
    _world, transition_id = sent
    victim_token, victim_pack = link_for(deps, transition_id, "receiving_placement")
    own_token, own_pack = link_for(deps, transition_id, "host_la")
    name = deps.settings.packs.session_cookie_name
    attacker = _new_browser(app)
    planted = _verify(attacker, deps, own_token, own_pack.id)
    client.set_cookie(name, planted, domain="localhost", secure=True)
    issued = _verify(client, deps, victim_token, victim_pack.id)
    assert issued != planted and len(issued) >= 43
    with deps.db.transaction() as session:
        victim_password = session.get(Pack, victim_pack.id).password
    page = client.get("/recipient/pack").get_data(as_text=True)
    assert victim_password in page
    assert victim_password not in attacker.get("/recipient/pack").get_data(as_text=True)  # its own pack only
    other = link_for(deps, transition_id, "host_police")[0]
    landing = client.get(f"/r/{other}").get_data(as_text=True)  # another link: that link's landing page only
    assert "Send me a code" in landing and "Amira" not in landing

    assert client.post("/recipient/sign-out", data={"csrf_token": csrf_from(page)}).status_code == 200
    replay = _new_browser(app)
    replay.set_cookie(name, issued, domain="localhost", secure=True)
    ended = replay.get("/recipient/pack")
    assert ended.status_code == 401 and "Open the link in your email again" in ended.get_data(as_text=True)
    assert replay.get("/recipient/pack/download").status_code == 401

    deps.clock.advance(seconds=61)
    fixed = _new_browser(app)
    fixed.set_cookie(name, "A" * 43, domain="localhost", secure=True)
    assert _verify(fixed, deps, victim_token, victim_pack.id) not in ("A" * 43, issued, planted)
    for _ in range(4):  # busy: a request every 14 minutes keeps it alive, but not past 60 minutes in all
        deps.clock.advance(minutes=14)
        assert fixed.get("/recipient/pack").status_code == 200
    deps.clock.advance(minutes=4)
    over = fixed.get("/recipient/pack")
    assert over.status_code == 401 and "60 minutes in all" in over.get_data(as_text=True)


def test_confirmation_resists_cross_site_posts_and_double_presses_and_requests_are_bounded(deps, sent, app):
    """Attack #16: a page elsewhere auto-posts the confirmation (no token, or the attacker's own session's
    token): 400, nothing confirmed. Attack #17: two tabs of the same session confirm at the same moment: one
    confirmation, one audit entry, one notice, both pages show it. R27: a request for information is at most
    2,000 characters, stored encrypted, notifies once and is not receipt."""
    _world, transition_id = sent
    token, pack = link_for(deps, transition_id, "receiving_placement")
    first = _new_browser(app)
    sid = _verify(first, deps, token, pack.id)
    attacker = _new_browser(app)
    own, own_pack = link_for(deps, transition_id, "host_police")
    _verify(attacker, deps, own, own_pack.id)
    foreign = csrf_from(attacker.get("/recipient/pack").get_data(as_text=True))
    evil = {"Origin": "https://evil.example", "Referer": "https://evil.example/page"}
    for extra in ({}, {"csrf_token": foreign}, {"csrf_token": "x" * 90}):
        response = first.post("/recipient/confirm", data={"name": "Mallory", "role": "Manager", "attested": "y",
                                                          **extra}, headers=evil)
        assert response.status_code == 400
        assert "the form was out of date" in response.get_data(as_text=True)
    assert _events(deps, pack.id, "confirmed") == 0

    second = _new_browser(app)
    second.set_cookie(deps.settings.packs.session_cookie_name, sid, domain="localhost", secure=True)
    tabs = [(first, "Sam Okoro"), (second, "Sam Okoro-Tab")]
    forms = [csrf_from(tab.get("/recipient/pack").get_data(as_text=True)) for tab, _ in tabs]
    barrier = threading.Barrier(2)
    statuses: list[int] = [0, 0]

    def press(i: int) -> None:
        tab, name = tabs[i]
        barrier.wait()
        statuses[i] = tab.post("/recipient/confirm", data={
            "csrf_token": forms[i], "name": name, "role": "Registered manager", "attested": "y",
            # fields the form does not declare (R15): ignored
            "confirmed_at": "2001-01-01T00:00:00+00:00", "pack_id": str(own_pack.id), "version": "99"}).status_code

    threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [302, 302]
    with deps.db.transaction() as session:
        stored = session.get(Pack, pack.id).confirmed_name
        assert session.get(Pack, pack.id).confirmed_at == deps.clock.now()
        assert session.get(Pack, own_pack.id).confirmed_at is None
        assert session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.purpose == "pack_notice")) == 1
    assert _events(deps, pack.id, "confirmed") == 1
    with deps.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_event WHERE action = 'pack.confirmed'")).scalar() == 1
    for tab, _ in tabs:
        assert stored in tab.get("/recipient/confirmed").get_data(as_text=True)

    page = attacker.get("/recipient/request-information").get_data(as_text=True)
    base = {"csrf_token": csrf_from(page), "sections": ["MISSING"], "requested_by": "PC Li, MPU"}
    too_long = attacker.post("/recipient/request-information", data={**base, "reason": "Q" * 2001})
    assert too_long.status_code == 200
    assert "What is missing must be 2000 characters or fewer" in too_long.get_data(as_text=True)
    with deps.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InformationRequest)) == 0
    reason = "Zqcanaryreason phone numbers " + "q" * 1971
    ok = attacker.post("/recipient/request-information", data={**base, "reason": reason})
    assert len(reason) == 2000 and ok.status_code == 200 and "Request sent" in ok.get_data(as_text=True)
    with deps.db.transaction() as session:
        assert session.get(Pack, own_pack.id).confirmed_at is None
        assert session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.purpose == "pack_notice")) == 2  # the confirmation's and this request's
    with deps.db.engine.connect() as conn:
        raw = conn.execute(text("SELECT * FROM information_request")).one()
    assert b"Zqcanaryreason" not in b"".join(v if isinstance(v, bytes) else str(v).encode() for v in raw)
    assert _events(deps, own_pack.id, "information_requested") == 1


EXTERNAL = re.compile(r"""(?:href|src|action|content)=["'](?:https?:)?//(?!localhost[/"'])""", re.I)


def test_guessing_or_scanning_a_link_changes_nothing_and_no_recipient_page_has_anything_to_unfurl(
        deps, sent, client):
    """Attack #7 (and the answers of #6): every alteration of a real token is just an unknown link, one
    byte-identical 404. Attacks #1 and #2: blank and browser user agents from Microsoft's 104.47.x.x fetch and
    HEAD the real link; they get the landing page (HEAD: headers only) and nothing changes.

    Then attacks #4 and #20, R28: no preview metadata, a generic title, no third-party resource or outbound link,
    and the headers (no-store, noindex, strict-origin, CSP) on every recipient answer, errors included."""
    world, transition_id = sent
    police, police_pack = link_for(deps, transition_id, "host_police")
    before = counts(deps)
    flipped = police[:-1] + ("A" if police[-1] != "A" else "B")
    variants = [flipped, police.swapcase(), police + "=", police + "%3D", quote(police + "=", safe=""), police + "/",
                police + "%00", police[:-1], secrets.token_urlsafe(32), "x" * 43, "x"]
    pages = set()
    for variant in variants:
        response = client.get(f"/r/{variant}")
        assert response.status_code == 404, variant
        pages.add(_page(response))
    assert len(pages) == 1  # byte-identical: nothing tells a near miss from a wild guess
    page = pages.pop()
    for secret in ("Amira", "Moorview", "North Yorkshire", "•••@"):
        assert secret not in page
    # Percent-encoding the token's own characters is the same address, and lands normally.
    assert client.get("/r/" + "".join(f"%{ord(c):02X}" for c in police)).status_code == 200

    env = {"REMOTE_ADDR": "104.47.12.34"}
    for agent in ("", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"):
        got = client.get(f"/r/{police}", headers={"User-Agent": agent}, environ_base=env)
        assert got.status_code == 200 and "Send me a code" in got.get_data(as_text=True)
        assert "Amira" not in got.get_data(as_text=True)
        head = client.head(f"/r/{police}", headers={"User-Agent": agent}, environ_base=env)
        assert head.status_code == 200 and head.data == b""
        assert "Set-Cookie" not in got.headers and "Set-Cookie" not in head.headers
    assert counts(deps) == before  # no code, no email, no session, no confirmation
    with deps.db.transaction() as session:
        fetched = list(session.scalars(select(PackEvent).where(PackEvent.pack_id == police_pack.id,
                                                               PackEvent.action == "link_fetched")))
    assert "104.47.12.34" in {e.ip for e in fetched}  # the access log says who fetched ("may be automated")
    assert _events(deps, police_pack.id, "verified") == _events(deps, police_pack.id, "code_sent") == 0

    # Every recipient page, from the landing page to the confirmation, and the error pages
    token, pack = link_for(deps, transition_id, "receiving_placement")
    closed, closed_pack = link_for(deps, transition_id, "host_la")
    packs.revoke(deps, transition_id, closed_pack.id, "Wrong authority for this home",
                 world.view(deps, "social_worker_south"), world.actor("social_worker_south"))
    answers = {"landing": client.get(f"/r/{token}"), "unknown": client.get("/r/" + "x" * 43),
               "closed": client.get(f"/r/{closed}"), "no session": client.get("/recipient/pack")}
    client.post(f"/r/{token}/code")
    answers["enter code"] = client.get(f"/r/{token}/enter-code")
    client.post(f"/r/{token}/enter-code", data={"code": latest_code(deps, pack.id)})
    answers["pack"] = client.get("/recipient/pack")
    answers["request"] = client.get("/recipient/request-information")
    answers["download"] = client.get("/recipient/pack/download")
    answers["photo"] = client.get("/recipient/pack/photo")
    form = csrf_from(answers["pack"].get_data(as_text=True))
    client.post("/recipient/confirm", data={"csrf_token": form, "name": "Sam Okoro", "role": "Manager",
                                            "attested": "y"})
    answers["confirmed"] = client.get("/recipient/confirmed")
    assert [name for name, r in answers.items() if r.status_code >= 500] == []
    for name, response in answers.items():
        assert response.headers["Cache-Control"] == "no-store", name
        assert response.headers["X-Robots-Tag"] == "noindex, nofollow, noarchive", name
        assert response.headers["Referrer-Policy"] == "strict-origin", name
        csp = response.headers["Content-Security-Policy"]
        assert csp.startswith("default-src 'none'") or csp == "sandbox; default-src 'none'", name
        if response.mimetype != "text/html":
            assert csp == "sandbox; default-src 'none'", name
            continue
        html = response.get_data(as_text=True)
        assert not re.search(r"<meta[^>]+(?:property|name)=[\"'](?:og:|twitter:)", html), name
        assert EXTERNAL.search(html) is None, (name, EXTERNAL.search(html))
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)  # type: ignore[union-attr]
        for secret in ("Amira", "Hassan", "Moorview", "North Yorkshire"):
            assert secret not in title, name
    assert "Amira" not in answers["landing"].get_data(as_text=True)


@pytest.mark.parametrize("days,accepted", [(0, False), (1, True), (3, True), (14, True), (15, False)])
def test_link_lifetime_can_only_be_set_between_one_and_fourteen_days(tmp_path, days, accepted):
    """R18's configurable expiry: a council may choose 1 to 14 days; anything else stops the service starting.
    (As built the default, config/default.toml, is 14 days rather than the 72 hours R18 suggests.)"""
    from tests.conftest import test_environ
    from transitions.settings import SettingsError, load_settings

    config = tmp_path / "links.toml"
    config.write_text(f"[packs]\nlink_expiry_days = {days}\n")
    env = test_environ("sqlite:///unused.sqlite3", tmp_path / "instance", TRANSITIONS_CONFIG=str(config))
    if accepted:
        assert load_settings(env).packs.link_expiry_days == days
    else:
        with pytest.raises(SettingsError, match="1 to 14 days"):
            load_settings(env)

