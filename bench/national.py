"""A national-scale CLA Transitions database: ~10,000 children, 100,000 transitions, 500,000 recipients (with their
packs) and 1,000,000 audit events, on SQLite or PostgreSQL, in minutes (performance.md §1.3: SQLAlchemy Core
``insert()`` with executemany in big batches, never the ORM's ``add_all``).

Every row is one the services could have written, and the app reads it with its own keys:
- the database is migrated by the app (Flask-Migrate ``upgrade``, as ``cla-transitions db upgrade``); police forces
  and local authorities come from ``organisations.seed_reference``;
- encrypted columns are encrypted with the app's ``FieldCipher`` under the AAD the models use (table, ``<name>_enc``,
  the row id as text); blind indexes (staff email, child names, surname + DOB, NHS number, local id) come from the
  app's ``BlindIndex`` the way ``accounts``/``children._index`` compute them;
- transitions follow ``services/transitions.py``: the facts (out of area, host LA and force, school age ...) and the
  recipient list come from the kind's rules in forms/ (``Facts.holds``, ``_organisation_for``, ``deadlines.due_at``);
  a sent transition supersedes the child's earlier active ones and revokes their links, as ``_supersede`` does;
- the audit trail is HMAC-chained with the app's ``AuditChain`` over ``audit._entry``, continuing the chain the
  services started, so ``cla-transitions audit-verify`` passes.

Blobs: a stored blob's key is bound to the blob's own id and purpose, not to who points at it, and nothing in the
schema makes ``pack.pdf_blob_id`` or ``attachment.blob_id`` unique. So one real photo, one real PDF per document
field and one real pack (AES-256 PDF + snapshot) per recipient type are built by the app's own code
(``storage.store_blob``, ``packs.build``/``materialise``/``render``) for one generated child, and every other
attachment and pack points at those. A recipient opening any generated pack therefore sees that one child's pack
(fictional, and exactly what that recipient type is entitled to); the pack row's own facts (reference, bound
address, PDF password, dates, confirmation) are its own. All names, places and numbers are invented (NHS numbers
in the 999 test range, phone numbers in Ofcom's drama ranges, ``.test`` mail domains).

    .venv/bin/python bench/national.py --url sqlite:////tmp/national/national.sqlite3 [--scale 1.0] [--seed 7]
    .venv/bin/python bench/national.py --url postgresql+psycopg://postgres@127.0.0.1:5432/transitions_national
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import random
import secrets
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import Table, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import Connection, make_url  # noqa: E402

#: The one password of every generated account (the accounts are fictional; the database is for benchmarks).
PASSWORD = "national copper lantern meadow"
#: Production argon2id parameters (settings defaults): the stored hash is what a production sign-in verifies.
PROD_ARGON2 = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}
BATCH = 5000

FIRST = ("Aaliyah", "Ben", "Chloe", "Daniel", "Ella", "Finn", "Grace", "Harry", "Isla", "Jack", "Kai", "Lily",
         "Mason", "Nia", "Oscar", "Poppy", "Reuben", "Sofia", "Theo", "Una", "Violet", "Wyatt", "Yusuf", "Zara",
         "Amelia", "Bilal", "Callum", "Darcy", "Ethan", "Freya", "Hamza", "Imogen", "Jayden", "Keira", "Logan",
         "Maya", "Noah", "Olivia", "Priya", "Riley", "Sami", "Tia", "Zain", "Evie", "Leon", "Ruby", "Alfie", "Mia")
LAST = ("Ashdown", "Brightwell", "Calder", "Dunmore", "Eastleigh", "Fairburn", "Glenholme", "Hawthorn", "Ingleby",
        "Jessop", "Kirkwood", "Larchfield", "Merriman", "Northcott", "Oakridge", "Pennock", "Quarrie", "Rothwell",
        "Stanwix", "Thornbury", "Underhill", "Varley", "Westbrook", "Yardley", "Ashworth", "Birchall", "Coldwell",
        "Denholm", "Elsworth", "Fenwick", "Garside", "Holroyd", "Ibbotson", "Kellett", "Lumsden", "Marwood")
#: Transition kinds by weight: admissions and temporary moves are common and have few recipients, so the mix
#: gives about five recipients per transition.
KIND_WEIGHTS = {
    "hospital_admission": 30, "temporary_move": 25, "emergency_move": 10, "planned_move_same_la": 10,
    "planned_move_adjoining": 6, "planned_move_at_distance": 5, "hospital_discharge": 4, "tier4_admission": 3,
    "supported_accommodation": 2,
}
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
#: Audit actions for the fill of everyday reading (the events no row here stands for).
READ_ACTIONS = (("child.viewed", "child"), ("child.list_viewed", None), ("sign_in.success", "staff_user"),
                ("escalations.viewed", None), ("tasks.viewed", None))


@dataclass
class Account:
    """A generated account a benchmark can sign in as (password + TOTP secret known)."""

    role: str
    id: uuid.UUID
    email: str
    password: str
    totp_secret: str
    caseload: int = 0


@dataclass
class Summary:
    url: str
    environ: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0
    #: CPU time of this process (the machine is shared: wall time alone says little about the generator).
    cpu_seconds: float = 0.0
    accounts: dict[str, Account] = field(default_factory=dict)
    #: A child of the typical worker and one of that child's transitions with packs (for page benchmarks).
    child_id: uuid.UUID | None = None
    transition_id: uuid.UUID | None = None

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def report(self) -> str:
        lines = [f"{'table':<24}{'rows':>11}{'insert s':>10}{'rows/s':>10}"]
        for table, count in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            spent = self.seconds.get(table, 0.0)
            lines.append(f"{table:<24}{count:>11,}{spent:>10.1f}{(count / spent if spent else 0):>10,.0f}")
        lines.append(f"{'total':<24}{self.rows:>11,}{self.total_seconds:>10.1f}"
                     f"{self.rows / self.total_seconds:>10,.0f}   (wall time, generation included)")
        return "\n".join(lines)


def environment(url: str, instance: Path) -> dict[str, str]:
    """Fresh test-mode keys for a new database (tests/conftest.py ``test_environ``)."""
    from tests.conftest import test_environ

    return test_environ(url, instance)


def env_script(environ: dict[str, str]) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(environ.items()))


def prepare_database(url: str, *, replace: bool) -> None:
    """Create the PostgreSQL database (or SQLite folder); with ``replace``, start from nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        if replace:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine

    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = parsed.database
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if exists and replace:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                exists = None
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def open_app(environ: dict[str, str], clock: Any = None, *, migrate: bool = True) -> Any:
    """The app on the generated database, with the same keys (migrated by the app's own Flask-Migrate path)."""
    from tests.conftest import migrate as upgrade
    from transitions.app import create_app
    from transitions.settings import load_settings

    app = create_app(load_settings(environ), clock=clock)
    if migrate:
        upgrade(app)
    return app


# ---- the writer ------------------------------------------------------------------------------------------------


class Writer:
    """Buffers rows per table and inserts them with Core executemany, parents before children."""

    ORDER = ("team", "staff_user", "organisation", "child", "child_search_key", "child_profile_version",
             "stored_blob", "attachment", "section_version", "transition", "transition_recipient",
             "transition_approval", "task", "pack", "pack_event", "audit_event")

    def __init__(self, conn: Connection, tables: dict[str, Table]) -> None:
        self.conn = conn
        self.tables = tables
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in self.ORDER}
        self.counts: dict[str, int] = dict.fromkeys(self.ORDER, 0)
        self.seconds: dict[str, float] = dict.fromkeys(self.ORDER, 0.0)

    def add(self, table: str, row: dict[str, Any]) -> None:
        bucket = self.rows[table]
        bucket.append(row)
        if len(bucket) >= BATCH:
            self.flush()

    def flush(self) -> None:
        for name in self.ORDER:
            bucket = self.rows[name]
            if not bucket:
                continue
            started = time.perf_counter()
            self.conn.execute(insert(self.tables[name]), bucket)
            self.seconds[name] += time.perf_counter() - started
            self.counts[name] += len(bucket)
            self.rows[name] = []
        self.conn.commit()  # commits count in the wall time only


# ---- generation --------------------------------------------------------------------------------------------------


@dataclass
class Org:
    """What the transition rules read of an organisation (services/transitions.py reads the same columns)."""

    id: uuid.UUID
    kind: str
    name: str
    local_authority_id: uuid.UUID | None = None
    police_force_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    mailbox: str | None = None


@dataclass
class Kid:
    id: uuid.UUID
    responsible_la_id: uuid.UUID
    dob: date
    worker: uuid.UUID
    team: uuid.UUID
    exploited: bool
    camhs_open: bool
    school: uuid.UUID
    gp: uuid.UUID
    camhs: uuid.UUID
    #: What the child's row is written from, once the history says where the child lives now.
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Event:
    """The columns ``audit._entry`` reads (the same canonical form as a recorded AuditEvent)."""

    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    ip: str | None
    user_agent: str | None
    details: str


class Generator:
    def __init__(self, deps: Any, conn: Connection, scale: float, seed: int, now: datetime, *,
                 render_packs: bool = True, production_hashes: bool = True) -> None:
        from transitions.models import Base

        self.deps = deps
        self.render_packs = render_packs
        self.production_hashes = production_hashes
        self.rng = random.Random(seed)
        self.scale = scale
        self.now = now
        self.cipher = deps.field_cipher
        self.index = deps.blind_index
        self.defs = deps.definitions
        self.out = Writer(conn, dict(Base.metadata.tables))
        self.events: list[tuple[int, str, str | None, str, str | None, str | None, str]] = []
        self.accounts: dict[str, Account] = {}
        self.display: dict[uuid.UUID, str] = {}
        self.team_names: dict[uuid.UUID, str] = {}

    # -- helpers
    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def enc(self, table: str, name: str, row_id: uuid.UUID, value: str | None) -> bytes | None:
        if value is None:
            return None
        return self.cipher.encrypt(value, table=table, column=f"{name}_enc", row_id=str(row_id))

    def event(self, at: datetime, actor: uuid.UUID | str | None, action: str, object_type: str | None = None,
              object_id: uuid.UUID | None = None, details: dict[str, object] | None = None,
              actor_kind: str = "staff") -> None:
        self.events.append((int(at.timestamp()), actor_kind, None if actor is None else str(actor), action,
                            object_type, None if object_id is None else str(object_id),
                            json.dumps(details or {}, sort_keys=True, default=str)))

    def name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    # -- staff and teams
    def staff(self, role: str, team: uuid.UUID | None, email: str, display: str, pw_hash: str,
              created: datetime) -> Account:
        from transitions.services.accounts import normalise_email

        user_id = self.uid()
        email = normalise_email(email)
        secret = base64.b32encode(self.rng.randbytes(20)).decode("ascii")
        self.out.add("staff_user", {
            "id": user_id, "email_enc": self.enc("staff_user", "email", user_id, email),
            "email_index": self.index.digest("staff-email", email),
            "display_name_enc": self.enc("staff_user", "display_name", user_id, display), "role": role,
            "team_id": team, "status": "active", "password_hash": pw_hash, "password_changed_at": created,
            "totp_secret_enc": self.enc("staff_user", "totp_secret", user_id, secret), "is_demo": False,
            "created_at": created, "last_sign_in_at": self.now - timedelta(hours=self.rng.uniform(1, 72)),
            "version": 1})
        self.event(created, "cli", "user.created", "staff_user", user_id, {"role": role}, actor_kind="system")
        self.display[user_id] = display
        return Account(role, user_id, email, PASSWORD, secret)

    # -- the run
    def run(self, las: list[Org], forces: dict[uuid.UUID, Org]) -> None:
        from transitions.crypto import PasswordHasher

        rng = self.rng
        n_children = max(20, round(10_000 * self.scale))
        start = self.now - timedelta(days=6 * 365)
        pw_hash = (PasswordHasher(**PROD_ARGON2) if self.production_hashes else self.deps.hasher).hash(PASSWORD)
        # Councils on this installation: one per ~330 children, each with its own teams.
        n_councils = max(1, round(n_children / 330))
        councils = rng.sample(las, n_councils)
        self.councils = councils
        # Organisations: placements and homes in every council's area and across England; hospitals with wards,
        # CAMHS, schools and GP practices in each council's area.
        self.by_la: dict[tuple[str, uuid.UUID], list[Org]] = {}
        self.orgs: dict[uuid.UUID, Org] = {o.id: o for o in [*las, *forces.values()]}
        urn, ods = iter(range(100_000, 999_999)), iter(range(10_000, 99_999))

        def org(kind: str, name: str, la: Org, code: str | None, mailbox: str | None,
                parent: Org | None = None) -> Org:
            made = Org(self.uid(), kind, name, la.id, None, parent.id if parent else None, mailbox)
            self.orgs[made.id] = made
            self.by_la.setdefault((kind, la.id), []).append(made)
            self.out.add("organisation", {
                "id": made.id, "kind": kind, "name": name, "code": code, "area": None,
                "phone": f"01632 {rng.randint(960000, 960999)}", "mailbox": mailbox,
                "address_enc": self.enc("organisation", "address", made.id,
                                        f"{rng.randint(1, 120)} {rng.choice(LAST)} Road, Fictown"),
                "parent_id": made.parent_id, "local_authority_id": la.id if kind != "ward" else None,
                "police_force_id": None, "active": True, "created_at": start, "updated_at": start})
            return made

        def many(count: float) -> int:
            return max(1, round(count))

        elsewhere = rng.sample(las, min(len(las), 60))
        for la in {o.id: o for o in [*councils, *elsewhere]}.values():
            own = la in councils
            for i in range(many((70 if own else 8) * min(1.0, self.scale * 5))):
                org("placement", f"Fostering household FH-{rng.randint(1000, 9999)}-{i}", la,
                    None, None if rng.random() < 0.04 else f"carer.{i}.{la.id.hex[:6]}@example-fostering.test")
            for _ in range(many((18 if own else 4) * min(1.0, self.scale * 5))):
                code = f"SC{next(urn)}"
                org("childrens_home", f"{rng.choice(LAST)} House (fictional home)", la, code,
                    f"{code.lower()}@example-provider.test")
            if own:
                hospital = org("hospital", f"{la.name} General Hospital (fictional)", la, f"R{next(ods)}", None)
                for w in range(3):
                    org("ward", f"Ward {w + 1} Children's (fictional)", la, None,
                        f"ward{w + 1}.{la.id.hex[:6]}@example-nhs.test", parent=hospital)
                org("camhs", f"{la.name} CAMHS (fictional)", la, None, f"camhs.{la.id.hex[:6]}@example-nhs.test")
                for s in range(many(12 * min(1.0, self.scale * 5))):
                    org("school", f"{rng.choice(LAST)} Academy (fictional)", la, str(next(urn)),
                        f"office{s}.{la.id.hex[:6]}@example-school.test")
                for g in range(many(8 * min(1.0, self.scale * 5))):
                    org("gp_practice", f"{rng.choice(LAST)} Surgery (fictional)", la, f"Y{next(ods)}",
                        f"gp{g}.{la.id.hex[:6]}@example-nhs.test")
        # Staff: per council a senior manager; teams of ~8 social workers, a team manager and a CLA nurse.
        workers: list[tuple[Account, uuid.UUID, Org]] = []
        self.managers: dict[uuid.UUID, uuid.UUID] = {}
        n_workers = max(1, round(n_children / 20))
        per_council = max(1, n_workers // n_councils)
        slug = iter(range(1, 1_000_000))
        for la in councils:
            first, last = self.name()
            senior = self.staff("senior_manager", None, f"{first}.{last}.{next(slug)}@example-council.test",
                                f"{first} {last}", pw_hash, start)
            self.accounts.setdefault("senior_manager", senior)
            teams = max(1, round(per_council / 8))
            for t in range(teams):
                team_id = self.uid()
                self.team_names[team_id] = f"Children in Care {la.name} {t + 1}"
                self.out.add("team", {"id": team_id, "name": self.team_names[team_id], "created_at": start})
                self.event(start, "cli", "team.created", "team", team_id, actor_kind="system")
                for role in ("team_manager", "cla_nurse"):
                    first, last = self.name()
                    made = self.staff(role, team_id, f"{first}.{last}.{next(slug)}@example-council.test",
                                      f"{first} {last}", pw_hash, start)
                    self.accounts.setdefault(role, made)
                    if role == "team_manager":
                        self.managers[team_id] = made.id
                for _ in range(max(1, per_council // teams)):
                    first, last = self.name()
                    made = self.staff("social_worker", team_id, f"{first}.{last}.{next(slug)}@example-council.test",
                                      f"{first} {last}", pw_hash, start)
                    workers.append((made, team_id, la))
        for role in ("admin", "auditor"):
            first, last = self.name()
            self.accounts[role] = self.staff(role, None, f"{first}.{last}.{next(slug)}@example-council.test",
                                             f"{first} {last}", pw_hash, start)
        self.out.flush()
        # Caseloads of 15-25 children, like a council's; the last workers get what is left.
        kids: list[Kid] = []
        left = n_children
        for account, team_id, la in workers:
            if left <= 0:
                break
            load = min(left, rng.randint(15, 25))
            account.caseload = load
            left -= load
            for _ in range(load):
                kids.append(self.child(account, team_id, la, start))
        while left > 0:  # more children than caseloads: spread them over the workers
            account, team_id, la = workers[left % len(workers)]
            account.caseload += 1
            kids.append(self.child(account, team_id, la, start))
            left -= 1
        typical = sorted((w for w, _, _ in workers if w.caseload), key=lambda a: a.caseload)
        self.accounts["social_worker"] = typical[len(typical) // 2]
        self.out.flush()
        self.kids = kids
        self.pools(kids[0])
        for kid in kids:
            plans = self.plan(kid)
            placed = [p["destination"] for p in plans if p["sent_at"] and not p["kind"].admission]
            self.write_child(kid, placed[-1] if placed else None)
            self.sections(kid)
            self.history(kid, plans)
        self.out.flush()

    # -- a child
    def child(self, worker: Account, team: uuid.UUID, la: Org, start: datetime) -> Kid:
        rng = self.rng
        child_id = self.uid()
        age_days = rng.randint(365, 17 * 365 + 200)
        dob = self.now.date() - timedelta(days=age_days)
        first, last = self.name()
        middle = rng.choice(FIRST)
        legal = f"{first} {middle} {last}"
        aliases = f"{first[:3]}{rng.randint(10, 99)}" if rng.random() < 0.3 else None
        nhs = f"999{rng.randint(0, 9_999_999):07d}" if rng.random() < 0.92 else None
        local_id = f"LCS-{rng.randint(100_000, 999_999)}"
        placements = self.by_la.get(("placement", la.id), [])
        placement = rng.choice(placements) if placements else None
        created = max(start, datetime.combine(dob, datetime.min.time(), UTC) + DAY * 30)
        placed_on = self.now.date() - timedelta(days=rng.randint(20, 400))
        values: dict[str, str | None] = {
            "legal_name": legal, "preferred_name": first, "aliases": aliases, "date_of_birth": dob.isoformat(),
            "sex": rng.choice("12"), "nhs_number": nhs, "la_child_id": local_id,
            "legal_status": rng.choice(("C2", "C2", "V2", "C1", "E1")),
            "placement_type": rng.choice(("U1", "U4", "U6", "K2", "R1")), "placement_started_on": placed_on.isoformat(),
        }

        def pick(kind: str) -> uuid.UUID:
            return rng.choice(self.by_la[(kind, la.id)]).id

        return Kid(child_id, la.id, dob, worker.id, team, exploited=rng.random() < 0.12,
                   camhs_open=rng.random() < 0.3, school=pick("school"), gp=pick("gp_practice"),
                   camhs=pick("camhs"), profile={"values": values, "placement": placement, "created": created,
                                                 "placed_on": placed_on})

    def write_child(self, kid: Kid, placement: Org | None) -> None:
        """The child's row, search keys and first profile version (children.apply_profile, _index, _snapshot)."""
        from transitions.services.children import _surname

        values, created = kid.profile["values"], kid.profile["created"]
        placement = placement or kid.profile["placement"]
        child_id, la = kid.id, self.orgs[kid.responsible_la_id]
        legal, first, aliases = values["legal_name"], values["preferred_name"], values["aliases"]
        nhs, local_id, dob = values["nhs_number"], values["la_child_id"], kid.dob
        row: dict[str, Any] = {f"{k}_enc": self.enc("child", k, child_id, v) for k, v in values.items()}
        row |= {"id": child_id, "responsible_la_id": la.id,
                "current_placement_id": placement.id if placement else None, "allocated_worker_id": kid.worker,
                "team_id": kid.team, "created_at": created, "updated_at": created, "version": 1}
        self.out.add("child", row)
        # Search keys exactly as children._index makes them.
        keys: set[tuple[str, bytes]] = set()
        for name in filter(None, {legal, first, *(aliases or "").splitlines()}):
            keys.add(("name", self.index.digest("child-name", name)))
            keys.add(("surname_dob", self.index.digest("child-surname-dob", _surname(name), values["date_of_birth"])))
        if nhs:
            keys.add(("nhs", self.index.digest("child-nhs", nhs)))
        keys.add(("local_id", self.index.digest("child-local-id", local_id)))
        for kind, digest in sorted(keys):
            self.out.add("child_search_key", {"child_id": child_id, "kind": kind, "digest": digest})
        codes = self.defs.code_lists
        snapshot = dict(zip(_profile_labels(), (
            legal, first, aliases or "", _format_date(dob), codes["SEX"].label(values["sex"] or ""),
            _nhs_text(nhs), local_id, f"{values['legal_status']} – {codes['LS'].label(values['legal_status'] or '')}",
            f"{values['placement_type']} – {codes['PLACE'].label(values['placement_type'] or '')}",
            _format_date(kid.profile["placed_on"]), placement.name if placement else "", la.name,
            self.team_names[kid.team], self.display[kid.worker]), strict=True))
        version_id = self.uid()
        self.out.add("child_profile_version", {
            "id": version_id, "child_id": child_id, "version": 1,
            "content_enc": self.enc("child_profile_version", "content", version_id,
                                    json.dumps(snapshot, ensure_ascii=False)),
            "fields_changed": ", ".join(k for k, v in snapshot.items() if v)[:500], "author_id": kid.worker,
            "author_role": "social_worker", "created_at": created})
        self.event(created, kid.worker, "child.created", "child", child_id)

    # -- shared blobs: one photo, one PDF per document field, one pack per recipient type
    def pools(self, kid: Kid) -> None:
        """Real blobs made by the app's own code; packs are built from the first child's record, read by the ORM."""
        from transitions.services import demo_children, storage
        from transitions.uploads import clean_photo

        self.blob_for: dict[tuple[str, str], tuple[uuid.UUID, str, int]] = {}
        with self.deps.db.transaction() as session:
            for section in self.defs.ordered():
                for f in section.fields:
                    if f.type == "photo":
                        data, media = clean_photo(demo_children._photo_bytes(1)).data, "image/jpeg"
                    elif f.type == "document":
                        data, media = demo_children._pdf_bytes(f.label), "application/pdf"
                    else:
                        continue
                    blob = storage.store_blob(self.deps, session, f"attachment-{f.type}", media, data)
                    self.blob_for[(section.code, f.id)] = (blob.id, media, len(data))
        self.out.counts["stored_blob"] += len(self.blob_for)
        self.pack_pool: dict[str, tuple[uuid.UUID, uuid.UUID, str, str, int]] = {}
        self._pool_child = kid

    def sections(self, kid: Kid) -> None:
        from transitions.services import demo_children
        from transitions.services.values import changed_field_ids

        rng = self.rng
        today = self.now.date()
        for section in self.defs.ordered():
            content = demo_children._content(section, today, False)
            for f in section.fields:
                if (section.code, f.id) in self.blob_for:
                    blob_id, media, size = self.blob_for[(section.code, f.id)]
                    attachment_id = self.uid()
                    name = "photo.jpg" if f.type == "photo" else f"{f.id}.pdf"
                    self.out.add("attachment", {
                        "id": attachment_id, "child_id": kid.id, "blob_id": blob_id, "kind": f.type,
                        "section_code": section.code, "field_id": f.id, "media_type": media, "size": size,
                        "display_name_enc": self.enc("attachment", "display_name", attachment_id, name),
                        "uploaded_by": kid.worker, "created_at": self.now - 20 * DAY, "in_use": True})
                    content[f.id] = {"attachment": str(attachment_id), "name": name}
            if section.code == "PHOTO":
                content["taken_on"] = (today - timedelta(days=rng.randint(5, 150))).isoformat()
            if section.code == "MH":
                content["camhs_open"] = "yes" if kid.camhs_open else "no"
            if section.code == "RISK":
                content["headline_risks"] = ["self_harm", "cce_county_lines"] if kid.exploited else ["self_harm"]
            if section.code == "EXPL" and "exploitation_concern" in content:
                content["exploitation_concern"] = "yes" if kid.exploited else "no"
            if section.entry is not None:
                first_name, last = self.name()
                content["entries"] = [{"id": self.rng.randbytes(16).hex(), "name": f"{first_name} {last} (fictional)",
                                       "relationship": "Grandparent", "contact_status": "approved_unsupervised",
                                       "must_not_know_placement_address": "no", "may_collect_from_school": "yes",
                                       "is_associate_of_concern": "no", "phone": "01632 960 700"}]
            content = json.loads(json.dumps(content))
            reviewed = today - timedelta(days=rng.randint(1, max(2, section.review_interval_days // 3)))
            version_id = self.uid()
            author_role = "cla_nurse" if "cla_nurse" in section.edited_by and "social_worker" not in \
                section.edited_by else "social_worker"
            self.out.add("section_version", {
                "id": version_id, "child_id": kid.id, "section_code": section.code, "version": 1,
                "is_current": True,
                "content_enc": self.enc("section_version", "content", version_id,
                                        json.dumps(content, sort_keys=True, ensure_ascii=False)),
                "change": "edit", "fields_changed": ",".join(changed_field_ids(section, {}, content))[:2000],
                "reviewed_on": reviewed, "next_review_due": reviewed + timedelta(days=section.review_interval_days),
                "author_id": kid.worker if author_role == "social_worker" else self.nurse_of(kid),
                "author_role": author_role,
                "created_at": datetime.combine(reviewed, datetime.min.time(), UTC) + 10 * HOUR,
                "definition_digest": self.defs.digest})
            self.event(datetime.combine(reviewed, datetime.min.time(), UTC) + 10 * HOUR, kid.worker,
                       "section.saved", "child", kid.id, {"purpose": section.code, "count": 1})

    def nurse_of(self, kid: Kid) -> uuid.UUID:
        return self.accounts["cla_nurse"].id

    def pack_blobs(self, recipient_type: str) -> tuple[uuid.UUID, uuid.UUID, str, str, int]:
        """The pool pack of this recipient type, built and stored by the app for the pool child (once)."""
        found = self.pack_pool.get(recipient_type)
        if found is not None:
            return found
        from transitions.models import Child, Organisation, Transition, TransitionRecipient
        from transitions.pdf.document import to_json
        from transitions.services import packs, storage
        from transitions.services.children import current_versions

        self.out.flush()  # the pool child's rows must be readable
        with self.deps.db.transaction() as session:
            child = session.get(Child, self._pool_child.id)
            assert child is not None
            destination = session.get(Organisation, child.current_placement_id or self._pool_child.camhs)
            assert destination is not None
            transition = Transition(id=uuid.uuid4(), child_id=child.id, destination_id=destination.id)
            recipient = TransitionRecipient(id=uuid.uuid4(), recipient_type=recipient_type)
            built = packs.build(self.deps, session, child, transition, recipient, destination, version=1,
                                reference=packs.new_reference(), versions=current_versions(session, child.id))
            document = packs.materialise(self.deps, session, child, built)
            snapshot = storage.store_blob(self.deps, session, "pack-snapshot", "application/json", to_json(document))
            if self.render_packs or not self.pack_pool:
                pdf, _password, pages = packs.render(self.deps, document)
                pdf_id = storage.store_blob(self.deps, session, "pack-pdf", "application/pdf", pdf).id
                self.out.counts["stored_blob"] += 1
            else:  # quick test databases: one rendered PDF for every type (the snapshot is still the type's own)
                pdf_id, pages = next(iter(self.pack_pool.values()))[0], next(iter(self.pack_pool.values()))[4]
            found = (pdf_id, snapshot.id, built.section_versions[:400], built.digest, pages)
        self.out.counts["stored_blob"] += 1
        self.pack_pool[recipient_type] = found
        return found

    # -- a child's transitions, recipients, packs and their audit trail
    def plan(self, kid: Kid) -> list[dict[str, Any]]:
        from transitions.services.transitions import Facts, is_school_age

        rng = self.rng
        born = datetime.combine(kid.dob, datetime.min.time(), UTC)
        first_at = max(self.now - timedelta(days=rng.randint(200, 5 * 365)), born + 30 * DAY)
        count = rng.randint(4, 16)
        span = (self.now + 20 * DAY - first_at).total_seconds()
        times = sorted(first_at + timedelta(seconds=rng.uniform(0, span)) for _ in range(count - 1))
        times = [first_at, *times]
        la = self.orgs[kid.responsible_la_id]
        placement: Org | None = None
        plans: list[dict[str, Any]] = []
        for i, starts in enumerate(times):
            starts = starts.replace(minute=0, second=0, microsecond=0)
            age = (starts.date() - kid.dob).days // 365
            if i == 0:
                code = "entry_to_care"
            else:
                code = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
                if code == "supported_accommodation" and age < 16:
                    code = "temporary_move"
                if self.defs.kinds[code].urgency == "emergency" and starts > self.now - 3 * HOUR:
                    code = "temporary_move"  # an emergency is never planned ahead
            kind = self.defs.kinds[code]
            out_of_area = code in ("planned_move_adjoining", "planned_move_at_distance") or (
                not kind.admission and rng.random() < 0.35)
            if kind.admission:
                pool = self.by_la[("ward", la.id)]
                if rng.random() < 0.5:
                    pool = self.by_la[("hospital", la.id)]
                destination = rng.choice(pool)
            else:
                kinds = ["placement"] if code == "supported_accommodation" else ["placement", "placement",
                                                                                  "childrens_home"]
                wanted = rng.choice(kinds)
                areas = [o for o in self.councils if o.id != la.id] if out_of_area else [la]
                if not areas:
                    areas, out_of_area = [la], False
                host = rng.choice(areas)
                options = self.by_la.get((wanted, host.id)) or self.by_la[("placement", host.id)]
                destination = rng.choice(options)
            host_la = self.orgs.get(destination.local_authority_id) if destination.local_authority_id else None
            if host_la is None and destination.parent_id:
                host_la = self.orgs[self.orgs[destination.parent_id].local_authority_id]  # type: ignore[index]
            assert host_la is not None
            host_police = self.orgs.get(host_la.police_force_id) if host_la.police_force_id else None
            out_of_area = host_la.id != kid.responsible_la_id
            if not out_of_area:
                at_a_distance: bool | None = False
            elif code == "planned_move_at_distance":
                at_a_distance = True
            elif code == "planned_move_adjoining":
                at_a_distance = False
            else:
                at_a_distance = rng.random() < 0.5
            urgency = "emergency" if kind.urgency == "emergency" else "planned"
            facts = Facts(out_of_area=out_of_area, at_a_distance=at_a_distance, host_la=host_la,  # type: ignore[arg-type]
                          host_police=host_police, childrens_home=destination.kind == "childrens_home",  # type: ignore[arg-type]
                          exploitation_risk=kid.exploited, open_to_camhs=kid.camhs_open,
                          school_age=is_school_age(kid.dob, starts.date()), emergency=urgency == "emergency",
                          changes_placement=not kind.admission)
            plans.append({"kind": kind, "starts": starts, "destination": destination, "origin": placement,
                          "facts": facts, "urgency": urgency})
            if not kind.admission:
                placement = destination
        # Lifecycle: the last one may still be in preparation; earlier ones were sent (or cancelled before), and
        # each sent transition supersedes the earlier active ones, revoking their links (transitions._supersede).
        last = len(plans) - 1
        for i, plan in enumerate(plans):
            starts, kind = plan["starts"], plan["kind"]
            created = starts + 40 * 60 * timedelta(seconds=1) if plan["urgency"] == "emergency" \
                else starts - timedelta(hours=rng.randint(72, 400))
            sent_at = created + timedelta(hours=rng.uniform(0.3, 2.5)) if plan["urgency"] == "emergency" \
                else starts - timedelta(hours=rng.uniform(4, 48))
            if created > self.now:
                created = self.now - HOUR
            plan["created"] = created
            if i == last and (sent_at > self.now or rng.random() < 0.15):
                plan["status"] = rng.choice(("draft", "ready", "approved")) if created < self.now else "draft"
                plan["sent_at"] = None
            elif i != last and rng.random() < 0.05:
                plan["status"], plan["sent_at"] = "cancelled", None
            else:
                plan["status"], plan["sent_at"] = "sent", min(sent_at, self.now - 10 * timedelta(minutes=1))
        sent = [p for p in plans if p["sent_at"] is not None]
        for older, newer in itertools.pairwise(sent):
            newer["sent_at"] = min(max(newer["sent_at"], older["sent_at"] + timedelta(minutes=30)), self.now)
            older["status"], older["ended"], older["superseded_by"] = "superseded", newer["sent_at"], newer
        kid.profile["first_at"] = first_at
        return plans

    def history(self, kid: Kid, plans: list[dict[str, Any]]) -> None:
        from transitions.services.deadlines import due_at
        from transitions.services.transitions import _organisation_for

        for plan in reversed(plans):  # newest first: superseded_by_id points at a row already written
            self.transition(kid, plan, due_at, _organisation_for)

    def transition(self, kid: Kid, plan: dict[str, Any], due_at: Any, organisation_for: Any) -> None:
        rng = self.rng
        kind, facts, destination, origin = plan["kind"], plan["facts"], plan["destination"], plan["origin"]
        transition_id = plan.setdefault("id", self.uid())
        superseded_by = plan.get("superseded_by")
        if superseded_by is not None:
            superseded_by.setdefault("id", self.uid())
        status, sent_at, created = plan["status"], plan["sent_at"], plan["created"]
        ended = plan.get("ended")
        cancelled_at = created + timedelta(hours=rng.uniform(2, 48)) if status == "cancelled" else None
        updated = ended or cancelled_at or sent_at or created
        self.out.add("transition", {
            "id": transition_id, "child_id": kid.id, "kind": kind.code, "status": status, "urgency": plan["urgency"],
            "origin_id": origin.id if origin else None, "destination_id": destination.id, "starts_at": plan["starts"],
            "reason_code": "CREQB" if kind.code == "emergency_move" else None, "out_of_area": facts.out_of_area,
            "at_a_distance": facts.at_a_distance, "host_la_id": facts.host_la.id if facts.host_la else None,
            "host_police_id": facts.host_police.id if facts.host_police else None,
            "childrens_home": facts.childrens_home, "exploitation_risk": facts.exploitation_risk,
            "open_to_camhs": facts.open_to_camhs, "school_age": facts.school_age,
            "emergency_reason_enc": self.enc("transition", "emergency_reason", transition_id,
                                             "Placement broke down overnight; carers asked for a move (fictional)")
            if plan["urgency"] == "emergency" else None,
            "distance_miles": None,
            "cancelled_reason_enc": self.enc("transition", "cancelled_reason", transition_id,
                                             "The placement withdrew its offer (fictional)") if cancelled_at else None,
            "superseded_by_id": superseded_by["id"] if superseded_by else None, "created_by": kid.worker,
            "created_at": created, "updated_at": updated, "sent_at": sent_at,
            "definition_digest": self.defs.digest, "version": 1 + (sent_at is not None) + (ended is not None)})
        self.event(created, kid.worker, "transition.created", "transition", transition_id,
                   {"kind": kind.code, "status": "draft"})
        if status in ("ready", "approved"):
            self.event(created + HOUR, kid.worker, "transition.status_changed", "transition", transition_id,
                       {"old_status": "draft", "status": status})
        # The nurse's health-plan task (Lesson CH1.1), cancelled when the transition gives way.
        task_id = self.uid()
        closed = ended or cancelled_at
        self.out.add("task", {
            "id": task_id, "child_id": kid.id, "transition_id": transition_id, "crisis_flag_id": None,
            "kind": "health_plan_update", "assigned_role": "cla_nurse", "assigned_user_id": None,
            "team_id": kid.team, "subject_id": None, "field_ref": None,
            "due_at": _task_due(self.deps, max(plan["starts"], created)),
            "status": "cancelled" if closed else "open", "created_at": created, "done_at": closed,
            "done_by": kid.worker if cancelled_at else None, "note_enc": None})
        if sent_at is not None:
            self.approvals(kind, transition_id, facts, plan, kid, sent_at)
            self.event(sent_at, kid.worker, "transition.status_changed", "transition", transition_id,
                       {"old_status": "approved", "status": "sent"})
        if ended is not None:
            self.event(ended, kid.worker, "transition.superseded", "transition", transition_id,
                       {"link_id": superseded_by["id"]})
        if cancelled_at is not None:
            self.event(cancelled_at, kid.worker, "transition.status_changed", "transition", transition_id,
                       {"old_status": "draft", "status": "cancelled"})
        for rule in kind.recipients:
            if not facts.holds(rule.when):
                continue
            rtype = self.defs.recipient_types[rule.type]
            organisation_id = organisation_for(rtype.source, facts, destination, origin, kid)
            if organisation_id is None and sent_at is not None:  # the worker picks these on the checklist
                organisation_id = {"school": kid.school, "gp": kid.gp, "camhs": kid.camhs,
                                   "home_police": self.orgs[kid.responsible_la_id].police_force_id}.get(rule.type)
            recipient_id = self.uid()
            self.out.add("transition_recipient", {
                "id": recipient_id, "transition_id": transition_id, "recipient_type": rule.type,
                "organisation_id": organisation_id, "required": rule.required,
                "due_at": due_at(rule.due, plan["starts"]), "condition": rule.when, "basis": rule.basis[:200],
                "added_reason_enc": None, "removed_at": None, "removed_by": None, "removed_reason_enc": None,
                "revoke_pending": ended is not None, "created_at": created})
            organisation = self.orgs.get(organisation_id) if organisation_id else None
            if sent_at is not None and organisation is not None and organisation.mailbox:
                self.pack(kid, plan, transition_id, recipient_id, rule, organisation, due_at(rule.due, plan["starts"]))

    def approvals(self, kind: Any, transition_id: uuid.UUID, facts: Any, plan: dict[str, Any], kid: Kid,
                  sent_at: datetime) -> None:
        from transitions.formdefs import DECISIONS

        seen: set[str] = set()
        for approval in kind.approvals:  # transitions._active_approvals
            applies = facts.holds(approval.when) and (approval.when != "exploitation_risk" or bool(facts.out_of_area))
            if not applies or approval.kind in seen:
                continue
            seen.add(approval.kind)
            approval_id = self.uid()
            retrospective = plan["urgency"] == "emergency"
            at = sent_at + 20 * HOUR if retrospective else sent_at - 2 * HOUR
            outcome = "approved" if approval.kind in DECISIONS else (
                "notified" if approval.kind.endswith("notified") else "consulted")
            host = facts.host_la.name if facts.host_la else "the host area"
            self.out.add("transition_approval", {
                "id": approval_id, "transition_id": transition_id, "kind": approval.kind, "outcome": outcome,
                "person_enc": self.enc("transition_approval", "person", approval_id,
                                       f"Duty team manager, {host} (fictional)") if outcome != "approved" else None,
                "answer_enc": self.enc("transition_approval", "answer", approval_id,
                                       "No objection; please share the plan (fictional)")
                if outcome == "consulted" else None,
                "recorded_by": self.managers.get(kid.team, kid.worker), "recorded_role": "team_manager",
                "recorded_at": min(at, self.now), "retrospective": retrospective})
            self.event(min(at, self.now), self.managers.get(kid.team, kid.worker), "transition.approval_recorded",
                       "transition", transition_id, {"kind": approval.kind, "status": outcome})

    def pack(self, kid: Kid, plan: dict[str, Any], transition_id: uuid.UUID, recipient_id: uuid.UUID, rule: Any,
             organisation: Org, due: datetime) -> None:
        from transitions.crypto import new_token, token_hash
        from transitions.pdf import new_pdf_password
        from transitions.services.packs import new_reference

        rng = self.rng
        pdf_id, snapshot_id, versions, digest, pages = self.pack_blobs(rule.type)
        pack_id = self.uid()
        sent_at, ended = plan["sent_at"], plan.get("ended")
        confirm_delay = rng.expovariate(1 / 10) if rng.random() < 0.88 else None
        confirmed_at = sent_at + timedelta(hours=confirm_delay) if confirm_delay is not None else None
        if confirmed_at is not None and (confirmed_at >= self.now or (ended is not None and confirmed_at >= ended)):
            confirmed_at = None
        revoked_at, cause, revoked_by, reason = None, None, None, None
        if ended is not None:
            revoked_at, cause = ended, "superseded"
        elif confirmed_at is None and rng.random() < 0.03:
            revoked_at, cause, revoked_by = sent_at + timedelta(hours=rng.uniform(1, 20)), "staff", kid.worker
            revoked_at = min(revoked_at, self.now)
            reason = "Sent to the wrong mailbox; resent to the duty team (fictional)"
        first, last = self.name()
        self.out.add("pack", {
            "id": pack_id, "child_id": kid.id, "transition_id": transition_id, "recipient_id": recipient_id,
            "episode_id": None, "version": 1, "reference": new_reference(), "recipient_type": rule.type,
            "organisation_id": organisation.id,
            "address_enc": self.enc("pack", "address", pack_id, organisation.mailbox),
            "token_hash": token_hash(new_token()), "created_at": sent_at, "created_by": kid.worker,
            "expires_at": sent_at + timedelta(days=self.deps.settings.packs.link_expiry_days),
            "revoked_at": revoked_at, "revoked_by": revoked_by, "revoked_cause": cause,
            "revoked_reason_enc": self.enc("pack", "revoked_reason", pack_id, reason),
            "pdf_blob_id": pdf_id, "snapshot_blob_id": snapshot_id,
            "password_enc": self.enc("pack", "password", pack_id, new_pdf_password()),
            "section_versions": versions, "content_digest": digest, "definition_digest": self.defs.digest,
            "page_count": pages, "outbox_message_id": None, "confirmed_at": confirmed_at,
            "confirmed_name_enc": self.enc("pack", "confirmed_name", pack_id,
                                           f"{first} {last} (fictional)" if confirmed_at else None),
            "confirmed_role_enc": self.enc("pack", "confirmed_role", pack_id,
                                           "Manager on duty" if confirmed_at else None)})
        self.event(sent_at, kid.worker, "pack.issued", "pack", pack_id,
                   {"kind": rule.type, "count": 1, "link_id": transition_id})
        if confirmed_at is not None:
            recent = ended is None
            actions = ("link_fetched", "code_sent", "verified", "viewed", "downloaded") if recent else ("verified",)
            for n, action in enumerate(actions):
                self.out.add("pack_event", {"pack_id": pack_id, "action": action, "outcome": "ok",
                                            "at": confirmed_at - timedelta(minutes=10 - 2 * n), "ip": None,
                                            "user_agent": None})
            self.event(confirmed_at, None, "pack.confirmed", "pack", pack_id, actor_kind="recipient")
        if revoked_at is not None:
            self.event(revoked_at, kid.worker, "pack.revoked", "pack", pack_id, {"reason_code": cause})

    # -- the audit chain, continued from the head the services started
    def audit(self, target: int) -> None:
        from transitions.models import AuditChainHead
        from transitions.services import audit

        rng = self.rng
        # Pad to the promised count with everyday reading (child pages, lists, sign-ins) by the workers.
        while len(self.events) < target:
            kid = rng.choice(self.kids)
            action, object_type = rng.choice(READ_ACTIONS)
            object_id = kid.id if object_type == "child" else (kid.worker if object_type == "staff_user" else None)
            self.event(self.now - timedelta(seconds=rng.uniform(0, 2 * 365 * 86400)), kid.worker, action,
                       object_type if object_id else None, object_id)
        self.events.sort(key=lambda e: e[0])
        chain = self.deps.audit_chain
        conn = self.out.conn
        head = conn.execute(select(AuditChainHead.__table__).where(AuditChainHead.id == 1)).one()
        seq, previous = head.last_seq, head.last_hash
        for at, actor_kind, actor, action, object_type, object_id, details in self.events:
            seq += 1
            moment = datetime.fromtimestamp(min(at, int(self.now.timestamp())), UTC)
            event = Event(seq, moment, actor_kind, actor, action, object_type, object_id, "success", None, None,
                          details)
            previous = chain.link(previous, _canonical(audit, event))
            self.out.add("audit_event", {
                "seq": seq, "occurred_at": moment, "actor_kind": actor_kind, "actor_id": actor, "action": action,
                "object_type": object_type, "object_id": object_id, "outcome": "success", "ip": None,
                "user_agent": None, "details": details, "chain_hash": previous})
        self.events = []
        self.out.flush()
        conn.execute(update(AuditChainHead.__table__).where(AuditChainHead.id == 1)
                     .values(last_seq=seq, last_hash=previous))
        conn.commit()


def _canonical(audit: Any, event: Event) -> bytes:
    from transitions.crypto import canonical_json

    return canonical_json(audit._entry(event))


def _task_due(deps: Any, start: datetime) -> datetime:
    from transitions.services.tasks import due_from

    return due_from(deps, "health_plan_update", start)


def _profile_labels() -> tuple[str, ...]:
    from transitions.services.children import PROFILE_LABELS

    return PROFILE_LABELS


def _format_date(value: date) -> str:
    from transitions.services.values import format_date

    return format_date(value)


def _nhs_text(nhs: str | None) -> str:
    from transitions.services.values import format_nhs_number

    return format_nhs_number(nhs) if nhs else "Not known – to be obtained"


# ---- entry points ------------------------------------------------------------------------------------------------


def generate(url: str, scale: float = 1.0, seed: int = 7, *, environ: dict[str, str] | None = None,
             instance: Path | None = None, replace: bool = False, quiet: bool = True,
             render_packs: bool = True, production_hashes: bool = True) -> Summary:
    """Create (or replace), migrate and fill the database at ``url``; return counts, timings and accounts.

    ``environ`` gives the TRANSITIONS_* keys to write with (the app must be opened with the same ones); without it
    fresh test-mode keys are made and returned in ``Summary.environ``. Quick test databases only:
    ``render_packs=False`` renders one pack PDF and points every recipient type's packs at it, and
    ``production_hashes=False`` hashes the accounts' password with the app's (test-mode) argon2 parameters.
    """
    from transitions.clock import FrozenClock
    from transitions.models import Organisation
    from transitions.services import organisations
    from transitions.services.audit import Actor

    started, cpu = time.perf_counter(), time.process_time()
    instance = instance or Path(tempfile.gettempdir()) / f"national-instance-{secrets.token_hex(4)}"
    environ = dict(environ or environment(url, instance))
    environ["TRANSITIONS_DATABASE_URL"] = url
    prepare_database(url, replace=replace)
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FrozenClock(now - timedelta(days=6 * 365 + 1))
    app = open_app(environ, clock)
    deps = app.extensions["transitions"]
    summary = Summary(url=url, environ=environ)
    try:
        with deps.db.engine.connect() as conn:
            if conn.execute(text("SELECT COUNT(*) FROM child")).scalar():
                raise SystemExit(f"{url} already has children: pass --replace to start again")
        organisations.seed_reference(deps, Actor.system("national"))  # the app's own reference rows + audit event
        clock.set(now)
        with deps.db.engine.connect() as conn:
            table = Organisation.__table__
            las, forces = [], {}
            for row in conn.execute(select(table.c.id, table.c.kind, table.c.name, table.c.police_force_id)
                                    .where(table.c.kind.in_(("local_authority", "police_force")))):
                org = Org(row.id, row.kind, row.name, None, row.police_force_id)
                slug = "".join(c for c in row.name.lower().replace(" ", "-") if c.isalnum() or c == "-")
                if row.kind == "local_authority":
                    org.mailbox = f"mash@{slug}.example-la.test"
                    las.append(org)
                else:
                    org.mailbox = f"missing.persons@{slug}.example-police.test"
                    forces[row.id] = org
                conn.execute(update(table).where(table.c.id == row.id).values(mailbox=org.mailbox))
            conn.commit()
            las.sort(key=lambda o: o.name)
            gen = Generator(deps, conn, scale, seed, now, render_packs=render_packs,
                            production_hashes=production_hashes)
            gen.run(las, forces)
            if not quiet:
                print(f"  rows before the audit trail: {sum(gen.out.counts.values()):,} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
            target = max(1000, round(1_000_000 * scale))
            gen.audit(target)
            summary.counts = {k: v for k, v in gen.out.counts.items() if v}
            summary.seconds = {k: v for k, v in gen.out.seconds.items() if k in summary.counts}
            summary.accounts = gen.accounts
            worker = gen.accounts["social_worker"].id
            from transitions.models import Child, Pack

            child_id = conn.execute(select(Child.__table__.c.id).where(Child.__table__.c.allocated_worker_id == worker)
                                    .order_by(Child.__table__.c.id).limit(1)).scalar()
            summary.child_id = child_id
            summary.transition_id = conn.execute(
                select(Pack.__table__.c.transition_id).where(Pack.__table__.c.child_id == child_id)
                .order_by(Pack.__table__.c.created_at.desc()).limit(1)).scalar()
        if deps.db.dialect == "postgresql":
            with deps.db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        else:
            with deps.db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        deps.db.dispose()
    summary.total_seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu
    return summary


def check(environ: dict[str, str], account: Account, child_id: uuid.UUID, transition_id: uuid.UUID | None, *,
          bodies: dict[str, str] | None = None, app: Any = None) -> dict[str, int]:
    """Sign in as a generated worker through the test client and GET their pages: path -> status code (and the
    page text into ``bodies`` when given)."""
    from tests.conftest import Browser, StaffAccount, sign_in
    from transitions.clock import FrozenClock

    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    own = app is None
    if app is None:  # production argon2 parameters, so signing in does not re-hash the account's password
        config = Path(environ["TRANSITIONS_INSTANCE_PATH"]).parent / "national-check.toml"
        config.write_text("[passwords]\n" + "".join(f"argon2_{k} = {v}\n" for k, v in PROD_ARGON2.items()))
        app = open_app({**environ, "TRANSITIONS_CONFIG": str(config)}, clock, migrate=False)
    else:
        app.extensions["transitions"].clock.set(clock.now())
        clock = app.extensions["transitions"].clock
    try:
        app.test_client_class = Browser
        client = app.test_client()
        sign_in(client, StaffAccount(account.id, account.email, account.password, account.totp_secret), clock)
        paths = ["/", "/children", f"/children/{child_id}"]
        if transition_id is not None:
            paths.append(f"/transitions/{transition_id}")
        found = {}
        for path in paths:
            response = client.get(path)
            found[path] = response.status_code
            if bodies is not None:
                bodies[path] = response.get_data(as_text=True)
        return found
    finally:
        if own:
            app.extensions["transitions"].db.dispose()


def accounts_json(summary: Summary) -> str:
    return json.dumps({role: {"id": str(a.id), "email": a.email, "password": a.password,
                              "totp_secret": a.totp_secret, "caseload": a.caseload}
                       for role, a in summary.accounts.items()} | {
        "child_id": str(summary.child_id), "transition_id": str(summary.transition_id)}, indent=2)


def load_accounts(path: Path) -> tuple[dict[str, Account], uuid.UUID, uuid.UUID | None]:
    """Read back ``accounts.json`` written next to a generated database (for benchmarks)."""
    raw = json.loads(path.read_text())
    child = uuid.UUID(raw.pop("child_id"))
    transition = raw.pop("transition_id")
    found = {role: Account(role, uuid.UUID(a["id"]), a["email"], a["password"], a["totp_secret"], a["caseload"])
             for role, a in raw.items()}
    return found, child, uuid.UUID(transition) if transition and transition != "None" else None


def load_environ(path: Path) -> dict[str, str]:
    """The TRANSITIONS_* variables from an env.sh written by this script."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[7:].partition("=")
            found[key] = shlex.split(value)[0] if value else ""
    return found


@dataclass
class Target:
    """A generated database as a benchmark opens it: the app's environment and the accounts to sign in as."""

    environ: dict[str, str]
    accounts: dict[str, Account]
    child_id: uuid.UUID
    transition_id: uuid.UUID | None

    @property
    def url(self) -> str:
        return self.environ["TRANSITIONS_DATABASE_URL"]


def open_target(target: str) -> Target:
    """``target`` is an env.sh written by this script, a generated SQLite file (env.sh next to it) or a database
    URL (keys from the caller's TRANSITIONS_* variables or /tmp/national/env.sh; accounts from the accounts.json
    beside the env file: the same seed makes the same accounts on every database)."""
    default_env = Path(tempfile.gettempdir()) / "national" / "env.sh"
    if target.endswith(".sh"):
        env_file, url = Path(target), None
    elif "://" in target:
        env_file, url = default_env, target
    else:
        env_file, url = Path(target).resolve().parent / "env.sh", f"sqlite:///{Path(target).resolve()}"
    environ = _existing_environ() if url and _existing_environ() else load_environ(env_file)
    if url:
        environ["TRANSITIONS_DATABASE_URL"] = url
    accounts_file = env_file.parent / env_file.name.replace("env", "accounts", 1).replace(".sh", ".json")
    if not accounts_file.exists():
        accounts_file = env_file.parent / "accounts.json"
    accounts, child_id, transition_id = load_accounts(accounts_file)
    return Target(environ, accounts, child_id, transition_id)


def _existing_environ() -> dict[str, str] | None:
    keys = ("TRANSITIONS_SECRET_KEY", "TRANSITIONS_KEYRING", "TRANSITIONS_BLIND_INDEX_KEY", "TRANSITIONS_AUDIT_KEY")
    if all(os.environ.get(k) for k in keys):
        return {k: v for k, v in os.environ.items() if k.startswith("TRANSITIONS_")}
    return None


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the database to create and fill")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 10,000 children (0.01 for a quick one)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replace", action="store_true", help="drop the database (or file) first")
    parser.add_argument("--out", type=Path, help="folder for env.sh, accounts.json and the instance folder "
                                                 "(default: next to a SQLite file, or /tmp/national)")
    parser.add_argument("--no-check", action="store_true", help="skip signing in and opening pages afterwards")
    args = parser.parse_args(list(argv) if argv is not None else None)
    parsed = make_url(args.url)
    out = args.out or (Path(parsed.database or "").parent if parsed.get_backend_name() == "sqlite"
                       else Path(tempfile.gettempdir()) / "national")
    out.mkdir(parents=True, exist_ok=True)
    environ = _existing_environ() or environment(args.url, out / "instance")
    print(f"Generating scale {args.scale} (seed {args.seed}) into {parsed.render_as_string(hide_password=True)} "
          f"(load average {os.getloadavg()[0]:.2f}) ...", flush=True)
    summary = generate(args.url, args.scale, args.seed, environ=environ, replace=args.replace, quiet=False)
    print(summary.report())
    print(f"total: {summary.rows:,} rows in {summary.total_seconds / 60:.1f} min "
          f"({summary.rows / summary.total_seconds:,.0f} rows/s; this process used {summary.cpu_seconds / 60:.1f} "
          f"CPU min); load average {os.getloadavg()[0]:.2f}")
    stem = "env" if parsed.get_backend_name() == "sqlite" else f"env-{parsed.database}"
    (out / f"{stem}.sh").write_text(env_script(summary.environ))
    (out / f"{stem.replace('env', 'accounts')}.json").write_text(accounts_json(summary))
    print(f"Environment to open it with the app: source {out / (stem + '.sh')}; accounts (password + TOTP "
          f"secret): {out / (stem.replace('env', 'accounts') + '.json')}")
    worker = summary.accounts["social_worker"]
    print(f"Typical social worker: {worker.email} (caseload {worker.caseload}), password {PASSWORD!r}")
    if not args.no_check and summary.child_id is not None:
        statuses = check(summary.environ, worker, summary.child_id, summary.transition_id)
        print("Pages as that worker: " + ", ".join(f"{p} {s}" for p, s in statuses.items()))
        if any(s != 200 for s in statuses.values()):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
