"""Recipients verifying codes while staff edit records, against a real gunicorn over TLS on loopback (issue 7
item 6). Shared by tests/security/test_load.py (bounded, asserted in CI) and bench/b_load.py (longer, figures).

The server is the e2e one (tests/e2e/conftest.py: a self-signed certificate for 127.0.0.1, the production
cookie rules, the real aiosmtpd sink) with the production worker model, ``gunicorn -k sync -w 2`` (README), so
two processes write the database at once. Every simulated person is a thread with its own cookie jar, speaking
HTTPS through urllib as a browser would (Origin and Referer on every POST, form tokens from the page).
The outbox is delivered by a thread calling ``outbox.deliver_due`` every 50 ms: the operator's ``tick``, run
often, so an emailed code is read from the SMTP sink as a recipient reads their mailbox.

Test-only setting: every thread comes from 127.0.0.1, so the coarse per-IP limits (``sign_in.ip_limit`` and
``page_limit``, Flask-Limiter, per worker with ``memory://``) would count a whole office's worth of people as
one visitor and stop the run after 100 POSTs. They are raised in the server's TOML for this scenario only, so
what is measured is the per-link and per-account limits kept in the database. Production defaults are untouched.

What the run must show (``check``): no 5xx and no dropped connection on any route; every 429 carries
Retry-After and comes only from the two abusive links and the one abused account (the other links and accounts,
on the same IP, keep working); the limits hold exactly under parallel requests; nothing is lost: every section
save that was answered "saved" is a version with its writer's value, the loser of a simultaneous save is told
(never silently overwritten), every confirmation answered "confirmed" is on its pack exactly once, every code
answered "sent" was emailed exactly once.
"""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import os
import re
import ssl
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests import conftest
from tests.conftest import SmtpSink, StaffAccount, _free_port, make_staff, migrate
from tests.e2e.conftest import (
    REPO_ROOT,
    VENV_BIN,
    LiveServer,
    _self_signed_certificate,
    _server_environment,
    stop_server,
)

#: Raised only for this scenario (see the module docstring); the limits under test are per link and per account.
LOAD_IP_LIMITS = '[sign_in]\nip_limit = "100000 per 5 minutes"\npage_limit = "100000 per 5 minutes"\n'
CODE_SUBJECT = "Your code from "
LINK_SUBJECT = "Secure information from "
CONFLICT = "Someone else saved this section while you were editing"
SECTION, FIELD = "VOICE", "about_me_text"
NORTH, SOUTH = "Children in Care North", "Children in Care South"
#: Simultaneous saves of the contested record, however slow the machine (then as many as the time allows).
MIN_ROUNDS = 3


# ---- the server and the mailbox ------------------------------------------------------------------------------


def smtp_sink() -> AbstractContextManager[SmtpSink]:
    """The smtp_server fixture's own code as a context manager, for the benchmark (which runs outside pytest)."""
    return contextmanager(conftest.smtp_server.__wrapped__)()  # type: ignore[attr-defined]


@dataclass
class LoadServer:
    """The gunicorn process, and the services wired to its database and keys (as `cla-transitions` would be)."""
    live: LiveServer
    deps: Any

    def wait_ready(self, timeout: float = 30) -> None:
        process = self.live.process
        assert process is not None
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{self.live.stderr()}")
            try:
                if self.live.get("/healthz")[0] == 200:
                    return
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz within {timeout} s:\n{self.live.stderr()}")
            time.sleep(0.05)


@contextmanager
def load_server(tmp_path: Path, database_url: str, smtp: SmtpSink, *, workers: int = 2) -> Iterator[LoadServer]:
    """gunicorn -k sync -w WORKERS over TLS on a free loopback port, with the e2e server's environment plus
    LOAD_IP_LIMITS, against a database migrated in this process. It yields as soon as gunicorn is started: load
    the data while its workers boot, then call `wait_ready`."""
    from transitions.app import create_app
    from transitions.settings import load_settings

    port = _free_port()
    env = _server_environment(tmp_path, database_url, smtp, port)
    with Path(env["TRANSITIONS_CONFIG"]).open("a") as config:
        config.write(LOAD_IP_LIMITS)
    cert, key = _self_signed_certificate(tmp_path)
    live = LiveServer(f"https://127.0.0.1:{port}", env, tmp_path / "gunicorn.stderr",
                      ssl.create_default_context(cafile=str(cert)))
    app = create_app(load_settings(env))
    migrate(app)
    deps = app.extensions["transitions"]
    with (tmp_path / "gunicorn.stdout").open("wb") as out, live.stderr_path.open("wb") as err:
        live.process = process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-k", "sync", "-w", str(workers), "-b", f"127.0.0.1:{port}",
             "--certfile", str(cert), "--keyfile", str(key), "--graceful-timeout", "5", "--timeout", "60",
             "transitions:create_app()"],
            env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    try:
        yield LoadServer(live, deps)
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn died during the run ({process.returncode}):\n{live.stderr()}")
    finally:
        deps.db.dispose()
        stop_server(process)


def body_of(message: Any) -> str:
    part = message.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""


# ---- the world: children, sent packs, staff accounts ---------------------------------------------------------


@dataclass(frozen=True)
class Link:
    token: str
    address: str
    pack_id: uuid.UUID
    recipient_type: str


@dataclass(frozen=True)
class Edit:
    """Who saves which child's section: one editor alone, or two at once on the same record."""
    child_id: uuid.UUID
    editors: tuple[StaffAccount, ...]


@dataclass
class World:
    links: list[Link]
    edits: list[Edit]
    abused: StaffAccount  # someone hammers its sign-in with a wrong password
    late: list[StaffAccount]  # sign in after that account is locked, from the same IP
    started_at: dt.datetime


def prepare(server: LoadServer, smtp: SmtpSink, *, pairs: int = 1, solos: int = 3, late: int = 3) -> World:
    """The demo world (4 children, 2 sent transitions), Amira's emergency move sent too (14 links in all), and
    fresh social-worker accounts in the children's teams, all through the services on the server's database."""
    from tests.integration.conftest import load_world
    from tests.integration.test_packs import send_emergency
    from transitions.crypto import token_hash
    from transitions.models import Pack
    from transitions.services import outbox

    deps = server.deps
    if pairs + solos > 4:
        raise ValueError("at most 4 records to edit (one per demo child)")
    world = load_world(deps)
    send_emergency(deps, world)
    already = len(smtp.messages)
    outbox.deliver_due(deps)
    sent = [m for m in smtp.messages[already:] if str(m["Subject"]).startswith(LINK_SUBJECT)]
    links = []
    with deps.db.transaction() as session:
        for message in sent:
            match = re.search(re.escape(server.live.base_url) + r"/r/([A-Za-z0-9_\-]{40,})", body_of(message))
            assert match, body_of(message)
            pack = session.scalars(select(Pack).where(Pack.token_hash == token_hash(match.group(1)))).one()
            assert pack.address == message["To"]
            links.append(Link(match.group(1), pack.address or "", pack.id, pack.recipient_type))
    teams = {"Jade": NORTH, "Leo": NORTH, "Amira": SOUTH, "Tyler": SOUTH}
    order = ["Leo", "Jade", "Amira", "Tyler"]  # the contested record first
    edits = []
    for n in range(pairs + solos):
        child = order[n]
        size = 2 if n < pairs else 1
        edits.append(Edit(world.children[child],
                          tuple(make_staff(deps, team=teams[child]) for _ in range(size))))
    abused = make_staff(deps, team=NORTH)
    late_accounts = [make_staff(deps, role=role, team=NORTH)
                     for role in ("social_worker", "team_manager", "cla_nurse")[:late]]
    late_accounts += [make_staff(deps, team=SOUTH) for _ in range(late - len(late_accounts))]
    return World(_abusive_first(links), edits, abused, late_accounts, deps.clock.now())


def _abusive_first(links: list[Link]) -> list[Link]:
    """The two abusive links on the least-shared mailboxes (their sends hold the mailbox while they wait)."""
    shared = Counter(link.address for link in links)
    return sorted(links, key=lambda link: (shared[link.address], link.address, link.recipient_type))


# ---- HTTP: one agent per person ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    route: str
    method: str
    status: int  # 0: no response (connection refused or reset, timeout)
    seconds: float
    who: str
    retry_after: str | None = None
    error: str = ""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str
    body: bytes = b""

    @property
    def location(self) -> str:
        """Where a redirect goes: its path and query."""
        parts = urllib.parse.urlsplit(self.headers.get("Location", ""))
        return parts.path + (f"?{parts.query}" if parts.query else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Agent:
    """A browser without a screen: its own cookies, no redirects followed, every request recorded."""

    def __init__(self, run: Run, who: str) -> None:
        self.run, self.who = run, who
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            _NoRedirect(), urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=run.server.live.ssl_context))

    def get(self, route: str, path: str) -> Reply:
        return self._send(route, "GET", path, None)

    def post(self, route: str, path: str, fields: list[tuple[str, str]] | dict[str, str]) -> Reply:
        items = list(fields.items()) if isinstance(fields, dict) else fields
        return self._send(route, "POST", path, urllib.parse.urlencode(items).encode())

    def _send(self, route: str, method: str, path: str, data: bytes | None) -> Reply:
        base = self.run.server.live.base_url
        headers = {"Referer": base + path, "User-Agent": f"load-scenario/{self.who}"}
        if data is not None:
            headers.update({"Origin": base, "Content-Type": "application/x-www-form-urlencoded"})
        request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=60) as response:
                reply = Reply(int(response.status), dict(response.headers), "", response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                reply = Reply(exc.code, dict(exc.headers), "", exc.read())
        except (OSError, ssl.SSLError) as exc:
            self.run.record(Hit(route, method, 0, time.perf_counter() - started, self.who, error=repr(exc)))
            raise
        if not reply.headers.get("Content-Type", "").startswith("application/pdf"):
            reply.text = reply.body.decode("utf-8", "replace")
        self.run.record(Hit(route, method, reply.status, time.perf_counter() - started, self.who,
                            reply.headers.get("Retry-After")))
        return reply


class _Forms(HTMLParser):
    """The forms on a page, each as (action, [(name, value)...]) the way a browser would submit it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._text: tuple[str, list[str]] | None = None
        self._select: tuple[str, list[tuple[str, bool]]] | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        names = {k for k, _ in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), []))
            self._in_form = True
        elif not self._in_form:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in names:
                return
            self.forms[-1][1].append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea" and a.get("name"):
            self._text = (a["name"], [])
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], [])
        elif tag == "option" and self._select is not None:
            self._select[1].append((a.get("value", ""), "selected" in names))

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "textarea" and self._text is not None:
            text = "".join(self._text[1])
            self.forms[-1][1].append((self._text[0], text[1:] if text.startswith("\n") else text))
            self._text = None
        elif tag == "select" and self._select is not None:
            name, options = self._select
            chosen = [v for v, selected in options if selected] or [v for v, _ in options[:1]]
            self.forms[-1][1].extend((name, v) for v in chosen)
            self._select = None


def form_on(html: str, having: str) -> tuple[str, list[tuple[str, str]]]:
    """The page's form that has a field named `having`."""
    parser = _Forms()
    parser.feed(html)
    for action, fields in parser.forms:
        if any(name == having for name, _ in fields):
            return action, fields
    raise AssertionError(f"no form with a {having!r} field on the page")


def replaced(fields: list[tuple[str, str]], **values: str) -> list[tuple[str, str]]:
    return [(n, values.get(n, v)) for n, v in fields] + [(n, v) for n, v in values.items()
                                                         if n not in {k for k, _ in fields}]


# ---- the run -------------------------------------------------------------------------------------------------


@dataclass
class Save:
    child_id: uuid.UUID
    writer: str
    author: str  # the writer's account id, as the version records it
    base_version: int
    value: str


@dataclass
class Run:
    """Everything the threads saw, for `check` and `report`."""
    server: LoadServer
    smtp: SmtpSink
    world: World
    seconds: float
    think: float  # seconds between a confirmed recipient's re-reads of the pack
    readers: int  # tabs re-reading each confirmed pack until the run ends
    deadline: float = 0.0
    hits: list[Hit] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    codes_sent: Counter[uuid.UUID] = field(default_factory=Counter)  # pack -> "code sent" answers
    confirmed: dict[uuid.UUID, str] = field(default_factory=dict)  # pack -> name confirmed with
    saves: list[Save] = field(default_factory=list)
    conflicts: Counter[uuid.UUID] = field(default_factory=Counter)
    rounds: Counter[uuid.UUID] = field(default_factory=Counter)  # simultaneous-save rounds per contested record
    limit_hits: list[tuple[str, str, str]] = field(default_factory=list)  # (link or account, limit, Retry-After)
    entries_before_limit: int = 0  # code entries answered on the guessed link before its entry limit
    signed_in: list[str] = field(default_factory=list)
    wall: float = 0.0
    #: the server's limits, read from its settings (the scenario is sized by them)
    rules: dict[str, int] = field(default_factory=dict)
    abusers_limited: int = 0
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute, before and after
    contested_go: dict[uuid.UUID, bool] = field(default_factory=dict)  # False: the contested round is not run
    mailbox_locks: dict[str, threading.Lock] = field(default_factory=dict)  # one per address, made up front
    lock: threading.Lock = field(default_factory=threading.Lock)
    limits_reached: threading.Event = field(default_factory=threading.Event)
    account_locked: threading.Event = field(default_factory=threading.Event)

    def record(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def expect(self, reply: Reply, status: int, what: str, *, location: str | None = None,
               text: str | None = None) -> Reply:
        if reply.status != status or (location is not None and reply.location != location) or (
                text is not None and text not in reply.text):
            self.problem(f"{what}: got {reply.status} {reply.location!r}, wanted {status} "
                         f"{location or ''} {text or ''}".rstrip())
        return reply

    def mail_to(self, address: str, subject: str = CODE_SUBJECT) -> list[Any]:
        return [m for m in list(self.smtp.messages)
                if m["To"] == address and str(m["Subject"]).startswith(subject)]

    def wait_for_code(self, address: str, count: int) -> str:
        deadline = time.monotonic() + 20
        while len(found := self.mail_to(address)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"code email {count} to {address} did not arrive within 20 s")
            time.sleep(0.02)
        match = re.search(r"Your code is (\d{6})\b", body_of(found[count - 1]))
        assert match, body_of(found[count - 1])
        return match.group(1)


def at_once(n: int, call: Callable[[], Reply]) -> list[Reply]:
    """The same request n times in parallel (several tabs, a double click); every answer."""
    replies: list[Reply] = []
    threads = [threading.Thread(target=lambda: replies.append(call())) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(replies) != n:
        raise AssertionError(f"{n - len(replies)} of {n} parallel requests failed")
    return replies


def _thread(run: Run, name: str, body: Callable[[], None]) -> threading.Thread:
    def guarded() -> None:
        try:
            body()
        except Exception:  # every failure of a simulated person is reported, none is lost
            run.problem(f"{name} stopped: {traceback.format_exc(limit=4)}")
            run.limits_reached.set()  # nobody waits for a person who is not coming
            run.account_locked.set()

    return threading.Thread(target=guarded, name=name, daemon=True)


# -- recipients --


def _send_code(run: Run, agent: Agent, link: Link) -> tuple[Reply, str | None]:
    """Press "Send me a code" holding the mailbox (codes carry no link reference, so one sender at a time per
    address); wait for the email when the answer says one was sent."""
    with run.mailbox_locks[link.address]:
        before = len(run.mail_to(link.address))
        reply = agent.post("/r/<token>/code", f"/r/{link.token}/code", {})
        code = None
        if reply.status == 302 and reply.location == f"/r/{link.token}/enter-code":
            with run.lock:
                run.codes_sent[link.pack_id] += 1
            code = run.wait_for_code(link.address, before + 1)
    return reply, code


def _enter(agent: Agent, link: Link, code: str) -> Reply:
    return agent.post("/r/<token>/enter-code", f"/r/{link.token}/enter-code", {"code": code})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _confirm(run: Run, agent: Agent, link: Link, name: str, *, presses: int = 1) -> None:
    page = run.expect(agent.get("/recipient/pack", "/recipient/pack"), 200, f"{link.recipient_type} pack")
    _action, fields = form_on(page.text, "role")  # the confirmation form (not the one that closes the session)
    form = replaced(fields, name=name, role="Nurse in charge", attested="y")
    # presses=2: a double click, two POSTs at once, one confirmation
    replies = at_once(presses, lambda: agent.post("/recipient/confirm", "/recipient/confirm", form))
    for reply in replies:
        run.expect(reply, 302, f"{link.recipient_type} confirm", location="/recipient/confirmed")
    if all(r.status == 302 for r in replies):
        with run.lock:
            run.confirmed[link.pack_id] = name
    run.expect(agent.get("/recipient/confirmed", "/recipient/confirmed"), 200,
               f"{link.recipient_type} confirmed page", text=f"Confirmed by {name}")


def honest(run: Run, link: Link, n: int) -> None:
    """Open the link, ask for a code, (sometimes mistype it,) enter it, read and download the pack, confirm;
    then keep reading the pack until the run ends. Half of them start only once both abusive links refuse
    codes (while the guesser goes on to the entry limit), so per link, not per IP, is seen to hold."""
    agent = Agent(run, f"recipient-{n}")
    if n % 2:
        run.limits_reached.wait(timeout=60)  # `check` reports abusers that never got there
    run.expect(agent.get("/r/<token>", f"/r/{link.token}"), 200, f"landing {link.recipient_type}")
    reply, code = _send_code(run, agent, link)
    run.expect(reply, 302, f"send code {link.recipient_type}", location=f"/r/{link.token}/enter-code")
    assert code is not None, "no code was sent"
    if n % 3 == 0:
        run.expect(_enter(agent, link, _wrong(code)), 200, "mistyped code", text="That code is wrong")
    run.expect(_enter(agent, link, code), 302, f"verify {link.recipient_type}", location="/recipient/pack")
    pdf = run.expect(agent.get("/recipient/pack/download", "/recipient/pack/download"), 200, "download")
    if not pdf.body.startswith(b"%PDF-"):
        run.problem(f"download for {link.recipient_type} is not a PDF")
    _confirm(run, agent, link, f"Recipient {n}", presses=2 if n % 4 == 1 else 1)

    def read() -> None:
        while time.monotonic() < run.deadline:
            run.expect(agent.get("/recipient/pack", "/recipient/pack"), 200, "reading the pack again")
            time.sleep(run.think)

    others = [_thread(run, f"reader-{n}-{i}", read) for i in range(run.readers - 1)]  # more tabs, one session
    for t in others:
        t.start()
    read()
    for t in others:
        t.join()


def guesser(run: Run, link: Link) -> None:
    """Wrong codes, 5 at once, until each of 3 codes is void; a 4th "send" (refused: 3 per hour); then wrong
    entries from four tabs at once until the link's entry limit (50 in 5 minutes) refuses them."""
    agent = Agent(run, "guesser")
    rules = run.rules
    run.expect(agent.get("/r/<token>", f"/r/{link.token}"), 200, "guesser landing")
    entries = 0
    for _ in range(rules["code_sends_per_hour"]):
        reply, code = _send_code(run, agent, link)
        run.expect(reply, 302, "guesser send", location=f"/r/{link.token}/enter-code")
        assert code is not None
        # All the wrong tries at once, as from several tabs: each is counted before it is answered.
        replies = at_once(rules["code_max_wrong"], lambda code=code: _enter(agent, link, _wrong(code)))
        entries += len(replies)
        told = sorted(m.group(1) if (m := re.search(r"You can try (\d+) more", r.text)) else
                      "void" if "has now stopped working" in r.text else f"{r.status}?" for r in replies)
        if told != sorted([*map(str, range(1, rules["code_max_wrong"])), "void"]):
            run.problem(f"{rules['code_max_wrong']} wrong codes at once were told {told}")
    reply, code = _send_code(run, agent, link)
    run.expect(reply, 429, "guesser's 4th send")
    if code is not None:
        run.problem("a 4th code was sent within the hour")
    run.limit_hits.append((link.recipient_type, "codes per hour", reply.headers.get("Retry-After", "")))
    _limited(run)
    answered: list[int] = []

    def tab() -> None:
        for _ in range(rules["verify_attempts_per_5_minutes"]):
            reply = _enter(agent, link, "000000")
            if reply.status == 429:
                run.limit_hits.append((link.recipient_type, "entries per 5 minutes",
                                       reply.headers.get("Retry-After", "")))
                return
            run.expect(reply, 200, "guess after the codes", text="Ask for a new code")
            answered.append(1)

    tabs = [threading.Thread(target=tab) for _ in range(4)]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join()
    run.entries_before_limit = entries + len(answered)


def presser(run: Run, link: Link) -> None:
    """Presses "Send me a code" five times at once, uses the code, three times over; the fourth round is
    refused (3 codes per hour), yet the verified session still confirms receipt."""
    agent = Agent(run, "presser")
    rules = run.rules
    run.expect(agent.get("/r/<token>", f"/r/{link.token}"), 200, "presser landing")
    for _ in range(rules["code_sends_per_hour"]):
        with run.mailbox_locks[link.address]:
            before = len(run.mail_to(link.address))
            replies = at_once(5, lambda: agent.post("/r/<token>/code", f"/r/{link.token}/code", {}))
            sent = [r for r in replies if r.location == f"/r/{link.token}/enter-code"]
            waits = [r for r in replies if r.location == f"/r/{link.token}/enter-code?wait=1"]
            if len(sent) != 1 or len(waits) != 4:
                run.problem(f"5 presses at once: {[(r.status, r.location) for r in replies]} (want 1 sent, 4 wait)")
            with run.lock:
                run.codes_sent[link.pack_id] += len(sent)
            code = run.wait_for_code(link.address, before + 1)
        run.expect(_enter(agent, link, code), 302, "presser verify", location="/recipient/pack")
    reply, code = _send_code(run, agent, link)
    run.expect(reply, 429, "presser's 4th round")
    run.limit_hits.append((link.recipient_type, "codes per hour", reply.headers.get("Retry-After", "")))
    _limited(run)
    _confirm(run, agent, link, "Presser")


def _limited(run: Run) -> None:
    """One more abusive link refuses codes; when both do, the recipients held back start."""
    with run.lock:
        run.abusers_limited += 1
        if run.abusers_limited == 2:
            run.limits_reached.set()


# -- staff --


def sign_in(run: Run, agent: Agent, account: StaffAccount) -> bool:
    from transitions.crypto import current_code

    page = agent.get("/sign-in", "/sign-in")
    _action, fields = form_on(page.text, "csrf_token")
    reply = agent.post("/sign-in", "/sign-in", replaced(fields, email=account.email, password=account.password))
    if reply.status != 302:
        run.problem(f"{agent.who}: password step answered {reply.status}")
        return False
    page = agent.get("/sign-in/code", "/sign-in/code")
    _action, fields = form_on(page.text, "csrf_token")
    code = current_code(account.totp_secret, dt.datetime.now(dt.UTC))
    reply = agent.post("/sign-in/code", "/sign-in/code", replaced(fields, code=code))
    if reply.status != 302 or reply.location != "/":
        run.problem(f"{agent.who}: code step answered {reply.status} {reply.location}")
        return False
    with run.lock:
        run.signed_in.append(agent.who)
    return True


def _save_once(run: Run, agent: Agent, account: StaffAccount, child_id: uuid.UUID, path: str, value: str,
               meet: threading.Barrier | None) -> str:
    """GET the form, (wait for the other editor,) POST it with a new value: "saved", "conflict" or "stop"."""
    page = run.expect(agent.get("/children/<id>/sections/<code>/edit", path), 200, f"{agent.who} form")
    action, fields = form_on(page.text, FIELD)
    base = int(dict(fields)["base_version"])
    if meet is not None:
        meet.wait(timeout=30)
        if not run.contested_go[child_id]:
            return "stop"
    reply = agent.post("/children/<id>/sections/<code>/edit", action or path,
                       replaced(fields, **{FIELD: value}))
    if reply.status == 302 and reply.location == f"/children/{child_id}":
        with run.lock:
            run.saves.append(Save(child_id, agent.who, str(account.id), base, value))
        return "saved"
    if reply.status == 200 and CONFLICT in reply.text:
        with run.lock:
            run.conflicts[child_id] += 1
        return "conflict"
    run.problem(f"{agent.who} save answered {reply.status} {reply.location!r}")
    return "error"


def editor(run: Run, edit: Edit, account: StaffAccount, n: int, meet: threading.Barrier | None) -> None:
    """Saves the child's "All about me" over and over until the run ends. Two editors of the same record meet
    at a barrier between GET and POST, so every round is a simultaneous save from the same version."""
    agent = Agent(run, f"editor-{n}")
    if not sign_in(run, agent, account):
        if meet is not None:
            meet.abort()
        return
    path = f"/children/{edit.child_id}/sections/{SECTION}/edit"
    i = 0
    while meet is not None or i == 0 or time.monotonic() < run.deadline:  # a contested pair: until `decide` says
        i += 1
        outcome = _save_once(run, agent, account, edit.child_id, path, f"{agent.who} save {i} {uuid.uuid4().hex[:8]}",
                             meet)
        if outcome in ("stop", "error"):
            if meet is not None and outcome == "error":
                meet.abort()
            return


def hammer_sign_in(run: Run) -> None:
    """Wrong passwords for one account from two tabs at once, past the limit; then the right password (still
    locked). Meanwhile and afterwards the other accounts sign in from the same address."""
    account = run.world.abused
    agents = [Agent(run, f"hammer-{i}") for i in range(2)]
    rules = run.rules
    answers: list[int] = []

    def tab(agent: Agent) -> None:
        page = agent.get("/sign-in", "/sign-in")
        _action, fields = form_on(page.text, "csrf_token")
        for _ in range(rules["max_failures"] + 4):
            reply = agent.post("/sign-in", "/sign-in", replaced(fields, email=account.email,
                                                                      password="wrong password " * 2))
            answers.append(reply.status)
            if reply.status == 429:
                if "too many attempts to sign in" not in reply.text:
                    run.problem("the locked account's page does not say why")
                run.limit_hits.append(("account " + account.email.split("@")[0], "sign-in failures",
                                       reply.headers.get("Retry-After", "")))
            elif reply.status != 200 or "Enter a correct email address and password" not in reply.text:
                run.problem(f"wrong password answered {reply.status}")

    tabs = [threading.Thread(target=tab, args=(a,)) for a in agents]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join()
    if answers.count(200) != rules["max_failures"]:
        run.problem(f"wrong passwords before the lock: {answers.count(200)}, want {rules['max_failures']}")
    page = agents[0].get("/sign-in", "/sign-in")
    _action, fields = form_on(page.text, "csrf_token")
    right = agents[0].post("/sign-in", "/sign-in", replaced(fields, email=account.email,
                                                                 password=account.password))
    run.expect(right, 429, "the right password on the locked account")
    run.account_locked.set()


def late_sign_in(run: Run, account: StaffAccount, n: int) -> None:
    run.account_locked.wait(timeout=60)
    agent = Agent(run, f"late-{n}")
    if sign_in(run, agent, account):
        run.expect(agent.get("/", "/"), 200, f"{agent.who} home page")


# -- the mailer --


def mailer(run: Run, deps: Any, stop: threading.Event) -> None:
    from transitions.services import outbox

    while not stop.is_set():
        outbox.deliver_due(deps)
        stop.wait(0.05)


def run_load(server: LoadServer, smtp: SmtpSink, world: World, *, seconds: float, think: float = 0.1,
             readers: int = 1) -> Run:
    """Start everyone at once; staff edit and confirmed recipients re-read their pack for `seconds` (every
    other flow runs to its end, however long that takes)."""
    deps = server.deps
    run = Run(server, smtp, world, seconds, think, readers)
    run.mailbox_locks.update({link.address: threading.Lock() for link in world.links})
    packs, signin = deps.settings.packs, deps.settings.sign_in
    run.rules = {"code_sends_per_hour": packs.code_sends_per_hour, "code_max_wrong": packs.code_max_wrong,
                 "verify_attempts_per_5_minutes": packs.verify_attempts_per_5_minutes,
                 "max_failures": signin.max_failures, "lockout_seconds": signin.lockout_minutes * 60}
    stop = threading.Event()
    threads = [_thread(run, "mailer", lambda: mailer(run, deps, stop))]
    guessed, pressed, *others = world.links
    threads += [_thread(run, "guesser", lambda: guesser(run, guessed)),
                _thread(run, "presser", lambda: presser(run, pressed))]
    threads += [_thread(run, f"recipient-{n}", lambda link=link, n=n: honest(run, link, n))
                for n, link in enumerate(others)]
    n = 0
    for edit in world.edits:
        meet = None
        if len(edit.editors) > 1:
            def decide(child_id: uuid.UUID = edit.child_id) -> None:  # run by the last editor to arrive
                go = run.contested_go[child_id] = (run.rounds[child_id] < MIN_ROUNDS
                                                   or time.monotonic() < run.deadline)
                run.rounds[child_id] += go
            meet = threading.Barrier(len(edit.editors), action=decide)
        for account in edit.editors:
            threads.append(_thread(run, f"editor-{n}",
                                   lambda e=edit, a=account, i=n, m=meet: editor(run, e, a, i, m)))
            n += 1
    threads.append(_thread(run, "hammer", lambda: hammer_sign_in(run)))
    threads += [_thread(run, f"late-{i}", lambda a=a, i=i: late_sign_in(run, a, i))
                for i, a in enumerate(world.late)]
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    run.deadline = started + seconds
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join(timeout=seconds + 60)
        if t.is_alive():
            run.problem(f"{t.name} did not finish")
    run.wall = time.monotonic() - started
    run.load_average = (load_before, os.getloadavg()[0])
    stop.set()
    threads[0].join(timeout=10)
    from transitions.services import outbox

    outbox.deliver_due(deps)  # what the last confirmations queued
    return run


# ---- what must hold afterwards --------------------------------------------------------------------------------


def check(run: Run) -> list[str]:
    """Everything that went wrong, read from the answers and from the server's database."""
    from transitions.models import OutboxMessage, Pack, PackCode, PackEvent, SectionVersion, SignInThrottle
    from transitions.services.accounts import _throttle_key

    problems = list(run.problems)
    world = run.world
    bad = Counter(f"{h.method} {h.route} -> {h.status or h.error[:60]}" for h in run.hits
                  if h.status >= 500 or h.status == 0)
    if bad:
        problems.append(f"5xx or no answer: {dict(bad)}")
    guessed, pressed = world.links[0], world.links[1]
    abusive_agents = {"guesser", "presser", "hammer-0", "hammer-1"}
    stray = [h for h in run.hits if h.status == 429 and h.who not in abusive_agents]
    if stray:
        problems.append(f"429 outside the abusive link and account: {[(h.who, h.route) for h in stray]}")
    for h in run.hits:
        if h.status == 429 and h.who in ("guesser", "presser") and not (h.retry_after or "").isdigit():
            problems.append(f"429 without Retry-After on {h.route}")
    kinds = Counter((who, limit) for who, limit, _after in run.limit_hits)
    wanted = {(guessed.recipient_type, "codes per hour"), (guessed.recipient_type, "entries per 5 minutes"),
              (pressed.recipient_type, "codes per hour"), ("account " + world.abused.email.split("@")[0],
                                                          "sign-in failures")}
    if set(kinds) != wanted or kinds[(guessed.recipient_type, "codes per hour")] != 1 or kinds[
            (pressed.recipient_type, "codes per hour")] != 1:
        problems.append(f"limits hit: {dict(kinds)}, want each of {sorted(wanted)} (a 4th code refused once)")
    rules = run.rules
    windows = {"codes per hour": 3600, "entries per 5 minutes": 300, "sign-in failures": rules["lockout_seconds"]}
    for who, limit, after in run.limit_hits:  # Flask-Limiter restates it from its own clock: a second less
        if not after.isdigit() or not windows[limit] - 60 < int(after) <= windows[limit]:
            problems.append(f"{who} {limit}: Retry-After {after!r}, want about {windows[limit]} s")
    if run.entries_before_limit != rules["verify_attempts_per_5_minutes"]:
        problems.append(f"code entries answered before the entry limit: {run.entries_before_limit}, "
                        f"want {rules['verify_attempts_per_5_minutes']}")
    honest_links = world.links[2:]
    missing = [link.recipient_type for link in honest_links if link.pack_id not in run.confirmed]
    if missing:
        problems.append(f"links that did not get through: {missing}")
    if late := [f"late-{i}" for i in range(len(world.late)) if f"late-{i}" not in run.signed_in]:
        problems.append(f"accounts that could not sign in after the lock: {late}")

    deps = run.server.deps
    with deps.db.transaction() as session:
        by_pack = {link.pack_id: link for link in world.links}
        for pack_id, link in by_pack.items():
            pack = session.get(Pack, pack_id)
            assert pack is not None
            confirmations = session.scalar(select(func.count()).select_from(PackEvent).where(
                PackEvent.pack_id == pack_id, PackEvent.action == "confirmed")) or 0
            want = 1 if pack_id in run.confirmed else 0
            if confirmations != want or (pack.confirmed_at is not None) != bool(want):
                problems.append(f"{link.recipient_type}: {confirmations} confirmations, want {want}")
            if want and pack.confirmed_name != run.confirmed[pack_id]:
                problems.append(f"{link.recipient_type}: confirmed by {pack.confirmed_name!r}")
            codes = session.scalar(select(func.count()).select_from(PackCode).where(
                PackCode.pack_id == pack_id)) or 0
            if codes > rules["code_sends_per_hour"]:
                problems.append(f"{link.recipient_type}: {codes} codes sent, more than the hour allows")
            if codes != run.codes_sent[pack_id]:
                problems.append(f"{link.recipient_type}: {codes} codes made, {run.codes_sent[pack_id]} answered "
                                "as sent")
        for address in {link.address for link in world.links}:
            made = sum(run.codes_sent[link.pack_id] for link in world.links if link.address == address)
            emailed = run.mail_to(address)
            if len(emailed) != made:
                problems.append(f"{address}: {len(emailed)} code emails for {made} codes sent")
            if len({m["Message-ID"] for m in emailed}) != len(emailed):
                problems.append(f"{address}: a code email delivered twice")
        notices = [m for m in run.smtp.messages if re.match(r"Pack \S+ confirmed", str(m["Subject"]))]
        if len(notices) != len(run.confirmed):
            problems.append(f"{len(notices)} 'confirmed' emails to workers for {len(run.confirmed)} confirmations")
        locked = session.scalars(select(SignInThrottle.account_key).where(
            SignInThrottle.locked_until > deps.clock.now())).all()
        if list(locked) != [_throttle_key(deps, world.abused.email)]:
            problems.append(f"{len(locked)} accounts locked, want only the abused one")
        unsent = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status != "sent")) or 0
        if unsent:
            problems.append(f"{unsent} outbox messages not delivered")

        for edit in world.edits:
            saves = sorted((s for s in run.saves if s.child_id == edit.child_id), key=lambda s: s.base_version)
            versions = session.scalars(select(SectionVersion).where(
                SectionVersion.child_id == edit.child_id, SectionVersion.section_code == SECTION,
                SectionVersion.created_at >= world.started_at)).all()
            stored = {v.version: (json_field(v.content), str(v.author_id)) for v in versions}
            if len(versions) != len(saves):
                problems.append(f"child {edit.child_id}: {len(versions)} new versions for {len(saves)} saves")
            for s in saves:
                got = stored.get(s.base_version + 1)
                if got is None or got != (s.value, s.author):
                    problems.append(f"lost update: {s.writer}'s save on v{s.base_version} is {got!r}")
            current = session.scalars(select(SectionVersion).where(
                SectionVersion.child_id == edit.child_id, SectionVersion.section_code == SECTION,
                SectionVersion.is_current.is_(True))).all()
            if saves and (len(current) != 1 or json_field(current[0].content) != saves[-1].value):
                problems.append(f"child {edit.child_id}: the current version is not the last save")
            if len(edit.editors) > 1:
                rounds = run.rounds[edit.child_id]
                if rounds == 0 or run.conflicts[edit.child_id] != rounds or len(saves) != rounds:
                    problems.append(f"contested record: {rounds} rounds, {len(saves)} saves, "
                                    f"{run.conflicts[edit.child_id]} conflicts (want one of each per round)")
            elif run.conflicts[edit.child_id]:
                problems.append(f"a lone editor was told of {run.conflicts[edit.child_id]} conflicts")
    problems += _server_errors(run.server.live)
    return problems


def json_field(content: str | None) -> object:
    return json.loads(content or "{}").get(FIELD)


def _server_errors(server: LiveServer) -> list[str]:
    log = server.stderr_path.read_text(errors="replace") if server.stderr_path.exists() else ""
    return [f"server log: {line.strip()[:200]}" for line in log.splitlines()
            if "Traceback" in line or "database is locked" in line or "[ERROR]" in line][:10]


# ---- figures -------------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def figures(run: Run) -> dict[str, Any]:
    routes: dict[str, list[Hit]] = defaultdict(list)
    for h in run.hits:
        routes[f"{h.method} {h.route}"].append(h)
    return {
        "requests": len(run.hits), "wall_seconds": round(run.wall, 2),
        "throughput_per_second": round(len(run.hits) / run.wall, 1) if run.wall else 0.0,
        "by_status": dict(sorted(Counter(h.status for h in run.hits).items())),
        "routes": {route: {"n": len(hits), "statuses": dict(sorted(Counter(h.status for h in hits).items())),
                           "p50_ms": round(_percentile([h.seconds for h in hits], 0.5) * 1e3, 1),
                           "p99_ms": round(_percentile([h.seconds for h in hits], 0.99) * 1e3, 1)}
                   for route, hits in sorted(routes.items())},
        "limits": [{"who": who, "limit": limit, "retry_after": after} for who, limit, after in run.limit_hits],
        "saves": len(run.saves), "conflicts": sum(run.conflicts.values()), "confirmed": len(run.confirmed),
        "codes_sent": sum(run.codes_sent.values()), "sign_ins": len(run.signed_in),
        "load_average": run.load_average,
    }


def report(run: Run) -> str:
    f = figures(run)
    before, after = f["load_average"]
    lines = [f"{f['requests']} requests in {f['wall_seconds']} s ({f['throughput_per_second']}/s); by status: "
             f"{f['by_status']}; machine load average {before:.1f} → {after:.1f} ({os.cpu_count()} CPUs)",
             "| route | n | statuses | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for route, r in f["routes"].items():
        statuses = ", ".join(f"{k}×{v}" for k, v in r["statuses"].items())
        lines.append(f"| {route} | {r['n']} | {statuses} | {r['p50_ms']} | {r['p99_ms']} |")
    limits: dict[tuple[str, str], list[int]] = defaultdict(list)
    for x in f["limits"]:
        limits[(x["who"], x["limit"])].append(int(x["retry_after"]) if x["retry_after"].isdigit() else -1)
    lines.append("429s: " + "; ".join(f"{who} {limit} ×{len(after)} (Retry-After {min(after)}–{max(after)} s)"
                                      for (who, limit), after in sorted(limits.items())))
    lines.append(f"section saves {f['saves']}, conflicts told {f['conflicts']}, confirmations {f['confirmed']}, "
                 f"codes sent {f['codes_sent']}, staff sign-ins {f['sign_ins']}")
    return "\n".join(lines)


