"""L2/L3 staff pages: the project's page ÷ a reference page rendering the same rows (bench/reference/pages.py).

Pages (each measured for one signed-in person, A and B interleaved with ratio.paired):
- sw_home      GET /                  a social worker's home page (escalations to them, open task counts)
- sw_children  GET /children          the children allocated to them or their team
- sw_my_work   GET /my-work           their open tasks
- child        GET /children/<id>     one of their children's record
- tm_home      GET /                  a team manager's home page (the team's escalations)

A = the project's page through the Flask test client (`Browser`), signed in, with the real server-side session,
    access checks, audit events (the child list and record write one per GET), security headers and GOV.UK
    templates. B = the reference page (bare Flask + SQLAlchemy Core + Jinja) for the same person or child, on
    its own engine over the same database: the same rows and columns, the same decrypted values, no session,
    auth, CSRF, audit or GOV.UK macros. Before timing, both are fetched and checked to show the same number of
    table rows and the same decrypted names. Each timed sample is GETS GETs in a row; the figure is the median
    of the per-pair ratios A/B (goal ≤ 1.3). SQL statements per GET (a `before_cursor_execute` listener on the
    engine; on SQLite this includes each transaction's BEGIN IMMEDIATE) are reported for both.

Scales and databases:
- demo (default): a fresh database in a temporary folder with the demo (load_demo, the demo children, the
  fictional history), plus SCALE_UP extra children allocated to the measured worker and their team, each with
  an open escalation to the worker, one to the team manager and an open task (like
  tests/integration/test_statement_counts.py builds them). SQLite file and, when PostgreSQL answers on
  TRANSITIONS_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres), a fresh
  database there, dropped afterwards.
- --national: the national-scale databases that bench/national.py leaves (/tmp/national/national.sqlite3 and
  PostgreSQL `transitions_national`, keys in /tmp/national/env.sh). Nothing is added to them except the
  bench's own staff sessions and the audit events the pages write.

    .venv/bin/python bench/b_pages.py [--n 15] [--warmup 2] [--national [--national-url URL]]
                                      [--db sqlite|postgresql|both] [--only sw_home,child,...]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ratio import fmt_ratio, paired, verdict  # noqa: E402

TARGET, ALARM = 1.3, 2.5
GETS = 5  # GETs per timed sample (a page is 5-40 ms)
SCALE_UP = 20  # extra children for the measured worker at demo scale
PG_ADMIN = os.environ.get("TRANSITIONS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NATIONAL = Path("/tmp/national")  # noqa: S108 - where bench/national.py leaves its databases
PAGES = ("sw_home", "sw_children", "sw_my_work", "child", "tm_home")


@dataclass
class Target:
    """What one run measures: the app, the people and the child."""

    app: Any
    deps: Any
    clock: Any
    worker_id: uuid.UUID
    manager_id: uuid.UUID
    child_id: uuid.UUID
    label: str


def count_statements(engine: Any, fn: Callable[[], object]) -> int:
    from sqlalchemy import event

    seen: list[str] = []

    def on_execute(*args: Any, **kwargs: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    return len(seen)


# ---- databases --------------------------------------------------------------------------------------------


def _pg_available() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def _fresh_postgres() -> Any:
    from tests.conftest import postgres_database

    return postgres_database(PG_ADMIN, prefix="bench_pages")


def scale_up(deps: Any, worker_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """`count` more children for the worker (their team), each with a sent move, a pack to a placement, an open
    escalation to the worker, one to the team manager and an open task for the worker: rows written directly,
    as the demo history writes them (no PDF is built)."""
    from tests.integration.test_statement_counts import add_caseload

    return add_caseload(deps, worker_id, count)


@contextmanager
def demo_target(url: str, tmp: Path, label: str) -> Iterator[Target]:
    from tests.conftest import migrate, test_environ
    from tests.integration.conftest import load_world
    from transitions.app import create_app
    from transitions.clock import FrozenClock
    from transitions.services import demo_history
    from transitions.settings import load_settings

    settings = load_settings(test_environ(url, tmp / "instance"))
    clock = FrozenClock()
    app = create_app(settings, clock=clock)
    migrate(app)
    deps = app.extensions["transitions"]
    try:
        world = load_world(deps)
        demo_history.load_demo_history(deps)
        worker, manager = world.accounts["social_worker"], world.accounts["team_manager"]
        scale_up(deps, worker.id, SCALE_UP)
        yield Target(app, deps, clock, worker.id, manager.id, world.children["Jade"], label)
    finally:
        deps.db.dispose()


@contextmanager
def national_target(db: str, tmp: Path, url: str | None = None) -> Iterator[Target]:
    """The national databases, opened with their keys (bench/national.py `open_target`): its social worker, the
    team manager of that worker's team and the worker's child it names. The clock is frozen at the real time (the
    data is dated from when it was generated)."""
    from datetime import UTC, datetime

    import national
    from sqlalchemy import select

    from transitions.app import create_app
    from transitions.clock import FrozenClock
    from transitions.models import StaffUser
    from transitions.settings import load_settings

    found = national.open_target(str(NATIONAL / ("env.sh" if db == "sqlite" else "env-transitions_national.sh")))
    env = {**found.environ, "TRANSITIONS_ENV": "test", "TRANSITIONS_INSTANCE_PATH": str(tmp / "instance")}
    if url:  # a copy of the national database (say, migrated further), opened with the same keys
        env["TRANSITIONS_DATABASE_URL"] = url
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(load_settings(env), clock=clock)
    deps = app.extensions["transitions"]
    try:
        worker_id = found.accounts["social_worker"].id
        with deps.db.transaction() as session:
            team_id = session.get(StaffUser, worker_id).team_id  # type: ignore[union-attr]
            manager_id = session.scalars(select(StaffUser.id).where(
                StaffUser.role == "team_manager", StaffUser.team_id == team_id, StaffUser.status == "active")
                .order_by(StaffUser.id)).first()
        assert manager_id is not None, "the national data has no team manager for its social worker's team"
        yield Target(app, deps, clock, worker_id, manager_id, found.child_id,
                     f"national {db}" + (f" copy at {_revision(deps)}" if url else ""))
    finally:
        deps.db.dispose()


def _revision(deps: Any) -> str:
    from sqlalchemy import text

    with deps.db.engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())


# ---- clients ----------------------------------------------------------------------------------------------


def signed_in_client(target: Target, user_id: uuid.UUID) -> Any:
    """A browser with a real server-side staff session for this person (what a completed sign-in leaves: the
    sign-in journey itself is measured by b_login.py), and its first page fetched, which refreshes it."""
    from tests.conftest import Browser
    from transitions.services import sessions

    deps = target.deps
    sid = sessions.new_session_id()
    assert sessions.save(deps, sid, sessions.SessionRecord(user_id=user_id, authenticated_at=deps.clock.now()),
                         create=True)
    target.app.test_client_class = Browser
    client = target.app.test_client()
    client.set_cookie(deps.settings.session.cookie_name, sid, domain="localhost")
    assert client.get("/").status_code == 200
    return client


def data_rows(html: str) -> int:
    """Table body rows of a project page (GOV.UK table rows minus one header row per table)."""
    return html.count('class="govuk-table__row"') - html.count('<thead class="govuk-table__head">')


def ref_rows(html: str) -> int:
    return html.count('<tr class="r">')


# ---- the run ----------------------------------------------------------------------------------------------


def measure(target: Target, pages: tuple[str, ...], n: int, warmup: int) -> dict[str, Any]:
    from sqlalchemy import create_engine

    from bench.reference.pages import create_reference_app

    deps = target.deps
    ref_engine = create_engine(deps.settings.database_url.replace("postgresql://", "postgresql+psycopg://"))
    reference = create_reference_app(ref_engine, deps.field_cipher, deps.definitions, deps.clock.now(),
                                     due_soon_days=deps.settings.record.due_soon_days).test_client()
    worker = signed_in_client(target, target.worker_id)
    manager = signed_in_client(target, target.manager_id)
    w, m, c = target.worker_id, target.manager_id, target.child_id
    plan = {"sw_home": (worker, "/", f"/ref/home/{w}"),
            "sw_children": (worker, "/children", f"/ref/children/{w}"),
            "sw_my_work": (worker, "/my-work", f"/ref/my-work/{w}"),
            "child": (worker, f"/children/{c}", f"/ref/child/{c}/{w}"),
            "tm_home": (manager, "/", f"/ref/home/{m}")}
    results: dict[str, Any] = {}
    try:
        for page in pages:
            client, url, ref_url = plan[page]
            a_html = client.get(url).get_data(as_text=True)
            b_html = reference.get(ref_url).get_data(as_text=True)
            rows = {"a": data_rows(a_html), "b": ref_rows(b_html)}
            assert rows["a"] == rows["b"], (page, rows)
            names = set(re.findall(r'<a href="/children/[0-9a-f-]{36}">([^<]+)</a>', b_html))
            missing = [name for name in names if name not in a_html]
            assert not missing, (page, missing[:3])

            def get(cl: Any, u: str, times: int = 1) -> Callable[[], None]:
                def gets() -> None:
                    for _ in range(times):
                        response = cl.get(u)
                        assert response.status_code == 200, (u, response.status_code)
                return gets

            statements = {"a": count_statements(deps.db.engine, get(client, url)),
                          "b": count_statements(ref_engine, get(reference, ref_url))}
            result = paired(get(client, url, GETS), get(reference, ref_url, GETS), n=n, warmup=warmup)
            result["a_med"] /= GETS
            result["b_med"] /= GETS
            med = result["ratio"]["median"]
            result.update(name=f"{page} ({target.label}) ÷ reference", target=TARGET, alarm=ALARM,
                          verdict=verdict(med, TARGET, ALARM), sql=statements, rows=rows["a"],
                          html_bytes={"a": len(a_html.encode()), "b": len(b_html.encode())}, unit="s",
                          gets_per_sample=GETS)
            results[f"{page} {target.label}"] = result
            print(report_one(results[f"{page} {target.label}"]), flush=True)
    finally:
        ref_engine.dispose()
    return results


def run(n: int = 15, warmup: int = 2, national: bool = False, db: str = "both",
        pages: tuple[str, ...] = PAGES, national_url: str | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    wanted = ("sqlite", "postgresql") if db == "both" else (db,)
    for name in wanted:
        if name == "postgresql" and not national and not _pg_available():
            print("PostgreSQL not reachable: skipped", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix="bench-pages-") as folder:
            tmp = Path(folder)
            if national:
                with national_target(name, tmp, national_url) as target:
                    results.update(measure(target, pages, n, warmup))
            elif name == "sqlite":
                with demo_target(f"sqlite:///{tmp / 'bench.sqlite3'}", tmp, "demo sqlite") as target:
                    results.update(measure(target, pages, n, warmup))
            else:
                with _fresh_postgres() as url, demo_target(url, tmp, "demo postgresql") as target:
                    results.update(measure(target, pages, n, warmup))
    return results


def report_one(r: dict[str, Any]) -> str:
    s = r["sql"]
    return (f"{r['name']}: {fmt_ratio(r)}  goal ≤ {TARGET} (alarm > {ALARM})  [{r['verdict']}]\n"
            f"  GET median {r['a_med'] * 1e3:.1f} ms vs reference {r['b_med'] * 1e3:.1f} ms; {r['rows']} table rows; "
            f"SQL statements per GET {s['a']} (reference {s['b']}); HTML {r['html_bytes']['a'] // 1000} KB vs "
            f"{r['html_bytes']['b'] // 1000} KB")


def report(results: dict[str, Any]) -> str:
    lines = ["| page | A ms | B ms | ratio median [min–max] | statements A (B) | rows |", "|---|---|---|---|---|---|"]
    for r in results.values():
        q = r["ratio"]
        lines.append(f"| {r['name']} | {r['a_med'] * 1e3:.1f} | {r['b_med'] * 1e3:.1f} | {q['median']:.2f} "
                     f"[{q['min']:.2f}–{q['max']:.2f}] | {r['sql']['a']} ({r['sql']['b']}) | "
                     f"{r['rows']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--national", action="store_true")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", default=",".join(PAGES))
    parser.add_argument("--national-url", help="with --national and one --db: a copy of that national database")
    args = parser.parse_args()
    os.chdir(REPO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    start = os.getloadavg()
    results = run(args.n, args.warmup, args.national, args.db, tuple(p for p in args.only.split(",") if p),
                  args.national_url)
    print(report(results))
    print(f"(load average {start[0]:.2f} → {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
