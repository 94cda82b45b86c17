"""HTTP under load on loopback: the staff dashboard at national ÷ demo scale, and the recipient landing page ÷ hello.

Issue 7, item 2 (performance.md L1 and L10, method of §5.3). gunicorn runs the real WSGI entry the README's
production command runs (`transitions:create_app()`), wrapped by `bench/http_app.py`, which only sends
`/bench-hello/` to a bare Flask "hello" app in the same workers:

    gunicorn -k sync -w 2 -b 127.0.0.1:<port> --pythonpath bench http_app:app

with TRANSITIONS_ENV=test settings (config/test.toml: production rules, loopback host names, cheap password
hashing) and secrets from TRANSITIONS_* variables. Two servers run side by side, each on its own database:

* **demo**: a fresh migrated database in a temporary folder with what `cla-transitions demo` loads (demo teams and
  accounts, the demo children, their fictional history) plus Amira's emergency move sent, which gives live pack
  links (tests/integration/test_packs.py `send_emergency`, `link_for`);
* **national** (optional): the ~10,000-children database of `bench/national.py` (its /tmp/national/env.sh and
  accounts.json, the "typical" social worker). On SQLite the bench serves a private copy (SQLite's online backup:
  other benchmarks hold the original, and one writer's lock stalls this server), migrated to this tree's head so
  both sides have the same schema and indexes. On PostgreSQL (`--engine postgres`) it uses the shared
  `transitions_national` as it is, and the demo side gets a fresh database of its own. Both sides' schema
  revisions are reported. Without the national files only the demo figures are measured.

Each server's social worker is signed in over HTTP the way a browser does it (GET /sign-in for the form token, POST
the password, POST the current TOTP code from pyotp), and the resulting `__Host-session` cookie is handed to wrk
with `-H 'Cookie: …'`. The cookie is checked before and after the load (GET / must answer 200 with the signed-in
page) and each wrk run's bytes per response must match the page, so a session that expired, or a redirect to the
sign-in page, cannot pass as a fast dashboard.

Load: `wrk -t2 -c16 -d10s --latency --timeout 30s` (wrk's default 2 s timeout counts a slow page's queue as
errors), 3 s uncounted warm-up per cell, then `--runs` (5) rounds; every round runs hello, demo dashboard,
national dashboard and the landing page in that order (interleaved, so drift cancels in the per-round ratios), and
hello runs once more at the end. Cells:

* hello: GET /bench-hello/ (bare Flask, same gunicorn);
* dashboard: GET / signed in (transitions/web/home.py `index`: escalations and task counts of that worker);
* landing: GET /r/<token> spread over every live link of the sent transition (`wrk_paths.lua`). It is public and
  shares the per-IP page limit (300 GETs per 5 minutes: from wrk's one address, GET 301 would be a 429), which a
  TRANSITIONS_CONFIG file raises for the bench (see `bench_config`). Each GET counts the link's "link fetched" rows
  of the last hour and writes one only while that count is under `packs.fetch_log_per_hour` (20): after the first
  20 × links fetches it is the read-only steady state a mail scanner storm meets.

Figures: median [min–max] of req/s, p50 and p99 per cell; per-round ratios national ÷ demo (p99, req/s) and each ÷
the hello of the same round. Goals: dashboard p99 national ÷ demo ≤ 1.5; landing req/s ÷ hello req/s ≥ 0.2.
wrk and gunicorn share the machine's cores: the load average is recorded before and after. After the servers
stop, the same requests are timed in-process (Flask test client, interleaved) with the landing page taken apart
(service call, template, Flask-Limiter off), which is far less noisy than wrk on a shared machine.

    .venv/bin/python bench/b_http.py [--runs 5] [--duration 10] [--warmup 3] [--engine sqlite|postgres]
        [--no-national] [--inprocess-n 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

P99_TARGET, P99_ALARM = 1.5, 2.5  # dashboard p99, national ÷ demo
LANDING_TARGET, LANDING_ALARM = 0.2, 0.1  # landing req/s ÷ hello req/s (higher is better)
HELLO_PATH = "/bench-hello/"
#: bench/national.py's output: env.sh + accounts.json (SQLite), env-<db>.sh + accounts-<db>.json (PostgreSQL)
NATIONAL_DIR = Path(tempfile.gettempdir()) / "national"
PG_ADMIN = os.environ.get("TRANSITIONS_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: The per-IP page limit for the bench (TRANSITIONS_CONFIG). Not "a million per 5 minutes": Flask-Limiter's
#: in-memory moving window keeps one entry per hit for the whole window and walks them on every request, so
#: its cost would grow through the run. A 1-second window keeps about as many entries as production's
#: "300 per 5 minutes" does (at most 300), so the check costs what it costs in production, and never refuses.
PAGE_LIMIT = "100000 per 1 second"
DEMO_WORKER = "social.worker.south@example-council.test"  # Amira's worker: her move is on this dashboard
GUNICORN = REPO / ".venv" / "bin" / "gunicorn"
LUA = REPO / "bench" / "wrk_paths.lua"


# ---- servers ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(environ: dict[str, str], log: Path) -> Any:
    """gunicorn -k sync -w 2 on a free loopback port with this environment; stopped (SIGTERM, by pid) on exit."""
    port = free_port()
    cmd = [str(GUNICORN), "-k", "sync", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
           "--pythonpath", str(REPO / "bench"), "http_app:app"]
    env = {**os.environ, **environ}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if get(port, "/healthz").status == 200 and get(port, HELLO_PATH).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for name, value in self.headers:
            if name.lower() == "set-cookie":
                jar.load(value)
        return {k: m.value for k, m in jar.items()}


def get(port: int, path: str, cookie: str = "", method: str = "GET", body: str | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    if not match:
        raise RuntimeError("no form token on the page")
    return match.group(1)


@dataclass
class Session:
    cookie: str  # "name=value" as wrk sends it
    page: str  # the signed-in dashboard's HTML


def sign_in(port: int, cookie_name: str, email: str, password: str, totp_secret: str) -> Session:
    """Password then authenticator code, over HTTP like a browser; returns the signed-in session cookie."""
    import pyotp

    jar: dict[str, str] = {}

    def cookie() -> str:
        return "; ".join(f"{k}={v}" for k, v in jar.items())

    def step(path: str, data: dict[str, str]) -> Reply:
        page = get(port, path, cookie())
        jar.update(page.cookies())
        reply = get(port, path, cookie(), "POST", urlencode({**data, "csrf_token": _csrf(page.body)}))
        jar.update(reply.cookies())
        return reply

    reply = step("/sign-in", {"email": email, "password": password})
    if reply.status != 302:
        raise RuntimeError(f"sign-in refused the password for {email} ({reply.status})")
    totp = pyotp.TOTP(totp_secret)
    for _ in range(2):  # a code works once: if this account just used the current one, wait for the next
        reply = step("/sign-in/code", {"code": totp.now()})
        if reply.status == 302:
            break
        time.sleep(31 - time.time() % 30)
    else:
        raise RuntimeError(f"sign-in refused the code for {email}")
    session = Session(f"{cookie_name}={jar[cookie_name]}", "")
    page = get(port, "/", session.cookie)
    if page.status != 200 or "Sign out" not in page.body:
        raise RuntimeError(f"the signed-in dashboard did not load ({page.status})")
    session.page = page.body
    return session


# ---- wrk ------------------------------------------------------------------------------------------------------


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_SIZES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> dict[str, Any]:
    requests = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", out)
    if not requests:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)\s*$", out, re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    count = int(requests.group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": _ms(pct["50"]), "p99": _ms(pct["99"]), "requests": count,
            "bytes_per_request": float(requests.group(4)) * _SIZES[requests.group(5)] / max(count, 1),
            "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
            "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0}


def wrk(port: int, path: str, seconds: float, *, cookie: str = "", paths_file: Path | None = None) -> dict[str, Any]:
    # wrk's default 2 s timeout would count a slow page's queue (16 connections, 2 workers) as socket errors.
    cmd = ["wrk", "-t2", "-c16", f"-d{seconds:g}s", "--latency", "--timeout", "30s"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    if paths_file is not None:
        cmd += ["-s", str(LUA)]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    if paths_file is not None:
        cmd += ["--", str(paths_file)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


@dataclass
class Cell:
    """One thing under load: which server, which path, what a good response looks like."""

    name: str
    port: int
    path: str
    min_bytes: int  # a response smaller than this is not the page (a redirect, an error page)
    cookie: str = ""
    paths_file: Path | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def run(self, seconds: float, *, keep: bool = True) -> dict[str, Any]:
        result = wrk(self.port, self.path, seconds, cookie=self.cookie, paths_file=self.paths_file)
        bad = result["socket_errors"] or result["non_2xx_3xx"] or result["bytes_per_request"] < self.min_bytes
        if bad:
            raise RuntimeError(f"{self.name}: not the page under load: {result} (expected ≥ {self.min_bytes} B)")
        if keep:
            self.runs.append(result)
        return result

    def summary(self) -> dict[str, Any]:
        return {key: {"median": statistics.median(r[key] for r in self.runs),
                      "min": min(r[key] for r in self.runs), "max": max(r[key] for r in self.runs)}
                for key in ("rps", "p50", "p99", "bytes_per_request")}


# ---- databases --------------------------------------------------------------------------------------------


def build_demo(tmp: Path, database_url: str = "") -> tuple[dict[str, str], list[str]]:
    """A demo-scale database (what `cla-transitions demo` loads) plus Amira's emergency move sent; returns the
    environment and the landing paths of its live links."""
    from sqlalchemy import select

    from tests.conftest import migrate, test_environ
    from tests.integration.conftest import load_world
    from tests.integration.test_packs import link_for, send_emergency
    from transitions.app import create_app
    from transitions.models import TransitionRecipient
    from transitions.services import demo_history
    from transitions.settings import load_settings

    environ = test_environ(database_url or f"sqlite:///{tmp / 'demo.sqlite3'}", tmp / "instance",
                           TRANSITIONS_CONFIG=str(bench_config(tmp)))
    app = create_app(load_settings(environ))
    deps = app.extensions["transitions"]
    try:
        migrate(app)
        world = load_world(deps)  # demo.load_demo + demo_children.load_demo_children
        demo_history.load_demo_history(deps)
        transition_id = send_emergency(deps, world)
        with deps.db.transaction() as session:
            kinds = list(session.scalars(select(TransitionRecipient.recipient_type).where(
                TransitionRecipient.transition_id == transition_id)))
        paths = []
        for kind in kinds:
            try:
                paths.append("/r/" + link_for(deps, transition_id, kind)[0])
            except AssertionError:  # a recipient with no mailbox gets no link
                continue
    finally:
        deps.db.dispose()
    if not paths:
        raise RuntimeError("the sent transition has no live links")
    return environ, paths


def bench_config(tmp: Path) -> Path:
    """The only setting the bench changes, in a TRANSITIONS_CONFIG file (never the app's defaults): the per-IP
    page limit, which the landing page shares since attack #6 (300 GETs per 5 minutes from one address). wrk is
    one address, so with the real limit every landing GET after the first 300 per worker would be a 429 (the
    product behaving); with PAGE_LIMIT the limiter still runs on every GET and its cost is measured."""
    path = tmp / "bench.toml"
    path.write_text(f'[sign_in]\npage_limit = "{PAGE_LIMIT}"\n')
    return path


def postgres_database(admin_url: str) -> Any:
    """A fresh, empty PostgreSQL database on the shared server for the demo side, dropped afterwards."""
    from tests.conftest import postgres_database as fresh

    return fresh(admin_url, prefix="bench_http")


def demo_account(email: str) -> tuple[str, str]:
    from transitions.services.demo import DEMO_ACCOUNTS

    for account in DEMO_ACCOUNTS:
        if account.email == email:
            return account.password, account.totp_secret
    raise KeyError(email)


# ---- the benchmark -------------------------------------------------------------------------------------------


def _per_round(cells_a: Cell, cells_b: Cell, key: str) -> dict[str, float]:
    values = [a[key] / b[key] for a, b in zip(cells_a.runs, cells_b.runs, strict=True)]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def national_files(engine: str) -> tuple[Path, Path]:
    """bench/national.py's environment and accounts files for this engine."""
    stem = "" if engine == "sqlite" else "-transitions_national"
    return NATIONAL_DIR / f"env{stem}.sh", NATIONAL_DIR / f"accounts{stem}.json"


def _national(tmp: Path, engine: str) -> tuple[dict[str, str], Any] | None:
    env_file, accounts_file = national_files(engine)
    if not (env_file.exists() and accounts_file.exists()):
        return None
    from national import load_accounts, load_environ  # read-only use of the generator's own readers

    env = load_environ(env_file)
    env["TRANSITIONS_INSTANCE_PATH"] = str(tmp / "national-instance")  # nothing of theirs is written
    if engine == "sqlite":
        # A private copy (SQLite's online backup: consistent while others read or write the original). Other
        # benchmarks open the same file, and one writer's lock would stall this server's session and audit writes.
        import sqlite3

        from sqlalchemy.engine import make_url

        copy = tmp / "national.sqlite3"
        source = make_url(env["TRANSITIONS_DATABASE_URL"]).database
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        env["TRANSITIONS_DATABASE_URL"] = f"sqlite:///{copy}"
        # The copy is brought to this tree's schema (migrations added after the database was generated, such as
        # indexes, would otherwise be missing on one side only). The shared PostgreSQL database is left as it is.
        from tests.conftest import migrate
        from transitions.app import create_app
        from transitions.settings import load_settings

        app = create_app(load_settings(env), web=False)
        try:
            migrate(app)
        finally:
            app.extensions["transitions"].db.dispose()
    env["TRANSITIONS_CONFIG"] = str(bench_config(tmp))
    accounts, _child, _transition = load_accounts(accounts_file)
    return env, accounts["social_worker"]


def run(runs: int = 5, duration: float = 10.0, warmup: float = 3.0, engine: str = "sqlite",
        national: bool = True, inprocess_n: int = 15) -> dict[str, Any]:
    load_start = os.getloadavg()
    started = time.perf_counter()
    cookie_name = "__Host-session"
    from ratio import verdict

    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder, ExitStack() as databases:
        tmp = Path(folder)
        demo_url = databases.enter_context(postgres_database(PG_ADMIN)) if engine == "postgres" else ""
        stack = databases.enter_context(ExitStack())  # the servers: stopped before the in-process figures
        demo_env, landing_paths = build_demo(tmp, demo_url)
        paths_file = tmp / "landing-paths.txt"
        paths_file.write_text("\n".join(landing_paths) + "\n")
        demo_port = stack.enter_context(gunicorn(demo_env, tmp / "gunicorn-demo.log"))
        demo = sign_in(demo_port, cookie_name, DEMO_WORKER, *demo_account(DEMO_WORKER))
        landing_page = get(demo_port, landing_paths[0])
        if landing_page.status != 200:
            raise RuntimeError(f"the landing page answered {landing_page.status}")
        hello = Cell("hello", demo_port, HELLO_PATH, len("Hello, World!"))
        cells = [hello, Cell("dashboard demo", demo_port, "/", len(demo.page) * 9 // 10, demo.cookie)]
        signed_in = [(demo, demo_port)]
        national_info: dict[str, Any] = {}
        found = _national(tmp, engine) if national else None
        national_env: dict[str, str] = {}
        if found is not None:
            national_env, account = found
            national_port = stack.enter_context(gunicorn(national_env, tmp / "gunicorn-national.log"))
            session = sign_in(national_port, cookie_name, account.email, account.password, account.totp_secret)
            cells.append(Cell("dashboard national", national_port, "/", len(session.page) * 9 // 10, session.cookie))
            signed_in.append((session, national_port))
            national_info = {"env_file": str(national_files(engine)[0]), "caseload": account.caseload,
                             "revision": _revision(national_env), "demo_revision": _revision(demo_env)}
        cells.append(Cell("landing", demo_port, "/r/", len(landing_page.body) * 9 // 10, paths_file=paths_file))
        for cell in cells:
            cell.run(warmup, keep=False)
        hello_end = Cell("hello (end)", demo_port, HELLO_PATH, len("Hello, World!"))
        for round_no in range(runs):
            for cell in cells:
                cell.run(duration)
            print(f"  round {round_no + 1}/{runs} (load {os.getloadavg()[0]:.2f}): " + ", ".join(
                f"{c.name} {c.runs[-1]['rps']:.0f}/s p99 {c.runs[-1]['p99']:.1f} ms" for c in cells), flush=True)
        hello_end.run(duration)
        for session, port in signed_in:
            after = get(port, "/", session.cookie)
            if after.status != 200 or "Sign out" not in after.body:
                raise RuntimeError(f"the session ended during the load ({after.status})")
        load_end = os.getloadavg()
        landing_logged = _fetch_rows(demo_env)
        stack.close()
        inproc = inprocess(demo_env, demo.cookie, national_env, signed_in[1][0].cookie if national_env else "",
                           landing_paths, inprocess_n) if inprocess_n else {}
    by_name = {c.name: c for c in cells}
    results: dict[str, Any] = {"cells": {c.name: {"summary": c.summary(), "runs": c.runs} for c in cells},
                               "hello_end": {"summary": hello_end.summary(), "runs": hello_end.runs},
                               "landing_links": len(landing_paths), "landing_fetch_rows": landing_logged,
                               "national": national_info, "engine": engine, "runs": runs, "duration": duration,
                               "loadavg_start": load_start, "loadavg_end": load_end, "inprocess": inproc,
                               "seconds": round(time.perf_counter() - started, 1), "cpus": os.cpu_count()}
    ratios: dict[str, Any] = {}
    for name in ("dashboard demo", "dashboard national", "landing"):
        if name in by_name:
            for key in ("rps", "p50", "p99"):
                ratios[f"{name} {key} ÷ hello"] = _per_round(by_name[name], hello, key)
    landing = ratios["landing rps ÷ hello"]
    results["landing"] = {"name": "landing page req/s ÷ hello req/s (HTTP)", "ratio": landing, "n": runs,
                          "a_med": 1 / by_name["landing"].summary()["rps"]["median"],
                          "b_med": 1 / hello.summary()["rps"]["median"], "better": "higher",
                          "target": LANDING_TARGET, "alarm": LANDING_ALARM,
                          "verdict": _verdict_higher(landing["median"], LANDING_TARGET, LANDING_ALARM)}
    if "dashboard national" in by_name:
        nat, dem = by_name["dashboard national"], by_name["dashboard demo"]
        p99 = _per_round(nat, dem, "p99")
        ratios["dashboard national ÷ demo p99"] = p99
        ratios["dashboard national ÷ demo p50"] = _per_round(nat, dem, "p50")
        ratios["dashboard national ÷ demo rps"] = _per_round(nat, dem, "rps")
        results["dashboard"] = {"name": f"dashboard p99, national ÷ demo (HTTP, {engine})", "ratio": p99, "n": runs,
                                "a_med": nat.summary()["p99"]["median"] / 1e3,
                                "b_med": dem.summary()["p99"]["median"] / 1e3,
                                "target": P99_TARGET, "alarm": P99_ALARM,
                                "verdict": verdict(p99["median"], P99_TARGET, P99_ALARM)}
    results["ratios"] = ratios
    return results


def inprocess(demo_env: dict[str, str], demo_cookie: str, national_env: dict[str, str], national_cookie: str,
              landing_paths: list[str], n: int) -> dict[str, Any]:
    """The same requests through Flask's test client, no HTTP, interleaved (performance.md §1.2: far less noisy than
    wrk on a shared machine). Each sample is 20 requests; figures are median ms per request. The landing page is
    also taken apart: its service call alone (`receipt.landing`) and its template alone."""
    from flask import Flask, render_template
    from ratio import interleaved

    from transitions.app import create_app
    from transitions.services import receipt
    from transitions.services.audit import Actor
    from transitions.settings import load_settings
    from transitions.web.recipient_forms import SendCodeForm

    bare = Flask("bench_hello")
    bare.add_url_rule("/", "index", lambda: "Hello, World!")
    apps = {"demo": create_app(load_settings(demo_env)), "demo, no limiter": create_app(load_settings(demo_env))}
    apps["demo, no limiter"].extensions["transitions_limiter"].enabled = False  # to price the per-IP check
    if national_env:
        apps["national"] = create_app(load_settings(national_env))
    clients = {name: app.test_client(use_cookies=False) for name, app in apps.items()}
    hello_client = bare.test_client()
    per_sample = 20
    token = landing_paths[0].rsplit("/", 1)[1]
    deps = apps["demo"].extensions["transitions"]
    actor = Actor("recipient", None, "127.0.0.1", "wrk")
    page = receipt.landing(deps, token, actor)

    def many(call: Any) -> Any:
        def sample() -> None:
            for i in range(per_sample):
                call(i)
        return sample

    def ok(response: Any) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"in-process request answered {response.status_code}")

    def template(_i: int) -> None:
        with apps["demo"].test_request_context(landing_paths[0]):
            render_template("recipient/landing.html", page=page, token=token, form=SendCodeForm())

    funcs = {"hello (bare Flask)": many(lambda i: ok(hello_client.get("/"))),
             "healthz (the app's hooks, no view work)": many(lambda i: ok(clients["demo"].get("/healthz"))),
             "landing": many(lambda i: ok(clients["demo"].get(landing_paths[i % len(landing_paths)]))),
             "landing, Flask-Limiter switched off": many(lambda i: ok(clients["demo, no limiter"].get(
                 landing_paths[i % len(landing_paths)]))),
             "landing: receipt.landing only": many(lambda i: receipt.landing(
                 deps, landing_paths[i % len(landing_paths)].rsplit("/", 1)[1], actor)),
             "landing: template only": many(template),
             "dashboard demo": many(lambda i: ok(clients["demo"].get("/", headers={"Cookie": demo_cookie})))}
    if national_env:
        funcs["dashboard national"] = many(lambda i: ok(clients["national"].get(
            "/", headers={"Cookie": national_cookie})))
    try:
        samples = interleaved(list(funcs.values()), n, warmup=2)
    finally:
        for app in apps.values():
            app.extensions["transitions"].db.dispose()
    out: dict[str, Any] = {name: {"ms": statistics.median(v) / per_sample * 1e3,
                                  "min": min(v) / per_sample * 1e3, "max": max(v) / per_sample * 1e3}
                           for name, v in zip(funcs, samples, strict=True)}
    hello_s = samples[0]
    names = list(funcs)
    for name in ("landing", "dashboard demo", "dashboard national"):
        if name in funcs:
            values = [h / x for h, x in zip(hello_s, samples[names.index(name)], strict=True)]
            out[name]["rate ÷ hello"] = statistics.median(values)
    if national_env:
        values = [a / b for a, b in zip(samples[names.index("dashboard national")],
                                        samples[names.index("dashboard demo")], strict=True)]
        out["dashboard national ÷ demo"] = {"median": statistics.median(values), "min": min(values),
                                            "max": max(values)}
    return out


def _verdict_higher(value: float, target: float, alarm: float) -> str:
    if value < alarm:
        return "ALARM"
    if value < target:
        return "under target"
    return "ok"


def _revision(environ: dict[str, str]) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(environ["TRANSITIONS_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def _fetch_rows(environ: dict[str, str]) -> int:
    """How many "link fetched" rows the landing load wrote (bounded per link per hour)."""
    from sqlalchemy import func, select

    from transitions.app import create_app
    from transitions.models import PackEvent
    from transitions.settings import load_settings

    app = create_app(load_settings(environ), web=False)
    deps = app.extensions["transitions"]
    try:
        with deps.db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(PackEvent).where(
                PackEvent.action == "link_fetched")) or 0)
    finally:
        deps.db.dispose()


def _fmt(s: dict[str, float], digits: int = 1) -> str:
    return f"{s['median']:,.{digits}f} [{s['min']:,.{digits}f}–{s['max']:,.{digits}f}]"


def report(results: dict[str, Any]) -> str:
    lines = ["| cell | req/s | p50 ms | p99 ms | bytes/response |", "|---|---|---|---|---|"]
    for name, cell in [*results["cells"].items(), ("hello (end)", results["hello_end"])]:
        s = cell["summary"]
        lines.append(f"| {name} | {_fmt(s['rps'], 0)} | {_fmt(s['p50'], 2)} | {_fmt(s['p99'], 2)} | "
                     f"{s['bytes_per_request']['median']:,.0f} |")
    lines += ["", "| per-round ratio | median [min–max] |", "|---|---|"]
    lines += [f"| {name} | {_fmt(r, 3)} |" for name, r in results["ratios"].items()]
    if "dashboard" in results:
        d = results["dashboard"]
        lines.append(f"\ndashboard p99 national ÷ demo: {d['ratio']['median']:.3f}  goal ≤ {P99_TARGET} "
                     f"(alarm > {P99_ALARM})  [{d['verdict']}]  national: {results['national']}")
    else:
        lines.append("\ndashboard national ÷ demo: not measured (no national environment file)")
    lr = results["landing"]
    lines.append(f"landing req/s ÷ hello req/s: {lr['ratio']['median']:.3f}  goal ≥ {LANDING_TARGET} "
                 f"(alarm < {LANDING_ALARM})  [{lr['verdict']}]  over {results['landing_links']} links; "
                 f"{results['landing_fetch_rows']} 'link fetched' rows written in all")
    if results["inprocess"]:
        lines += ["", "In-process (Flask test client, no HTTP; interleaved; ms per request):", "",
                  "| request | median ms [min–max] | rate ÷ hello |", "|---|---|---|"]
        for name, r in results["inprocess"].items():
            if "ms" in r:
                rate = f"{r['rate ÷ hello']:.3f}" if "rate ÷ hello" in r else ""
                lines.append(f"| {name} | {r['ms']:.3f} [{r['min']:.3f}–{r['max']:.3f}] | {rate} |")
        if "dashboard national ÷ demo" in results["inprocess"]:
            lines.append(f"\nin-process dashboard national ÷ demo: "
                         f"{_fmt(results['inprocess']['dashboard national ÷ demo'], 3)}")
    la, lb = results["loadavg_start"], results["loadavg_end"]
    lines.append(f"(load average {la[0]:.2f} → {lb[0]:.2f} on {results['cpus']} CPUs, wrk and gunicorn on the "
                 f"same cores; {results['seconds']:.0f} s)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of uncounted wrk per cell")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite",
                        help="both databases on this engine (postgres: the demo side gets a fresh database)")
    parser.add_argument("--no-national", action="store_true", help="demo only, even if the national files exist")
    parser.add_argument("--inprocess-n", type=int, default=15, help="in-process samples per request (0: none)")
    parser.add_argument("--json", type=Path, help="also write the full results here")
    args = parser.parse_args()
    os.chdir(REPO)
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    results = run(args.runs, args.duration, args.warmup, args.engine, not args.no_national, args.inprocess_n)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
