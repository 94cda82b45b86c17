"""Fictional demo data for `make run`. Development only: production refuses to start with demo accounts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from transitions.models import AccountStatus, Role, StaffUser, Team
from transitions.services import audit
from transitions.services.accounts import find_by_email
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import ForbiddenActionError


@dataclass(frozen=True)
class DemoAccount:
    name: str
    email: str
    role: Role
    team: str | None
    password: str
    totp_secret: str


#: Published in the README on purpose: anyone trying the demo can add these to an authenticator app.
DEMO_ACCOUNTS = (
    DemoAccount("Alex Morgan", "admin@example-council.test", Role.ADMIN, None,
                "amber kettle harbour lantern", "6NKIS3Z7QA7E2ICT4PW2JUQGDM6YSN4J"),
    DemoAccount("Sam Okafor", "social.worker@example-council.test", Role.SOCIAL_WORKER, "Children in Care North",
                "violet meadow copper anchor", "2KDAL6GALJY43A2GY7A66DPDAFWGRPD5"),
    DemoAccount("Dana Price", "social.worker.south@example-council.test", Role.SOCIAL_WORKER,
                "Children in Care South", "ochre lantern pylon meadow", "KGDAZXPYR7XIOEJYQ2PFZJOSTFVYM5FY"),
    DemoAccount("Priya Shah", "cla.nurse@example-council.test", Role.CLA_NURSE, "Children in Care North",
                "saffron pebble willow orbit", "HP3LPBED6T4G4QIEXFYG6E4YJ64LGZ6S"),
    DemoAccount("Jo Bennett", "team.manager@example-council.test", Role.TEAM_MANAGER, "Children in Care North",
                "cobalt thistle ferry signal", "E7DENH3TJ2UNVGTUOCZF6NLDQSRYBFRW"),
    DemoAccount("Chris Evans", "senior.manager@example-council.test", Role.SENIOR_MANAGER, None,
                "granite poppy lighthouse tide", "537YB47G5ZLAC34UVMJ3VEHMJHUQUWFA"),
    DemoAccount("Lee Harper", "auditor@example-council.test", Role.AUDITOR, None,
                "maple comet tundra whistle", "RWF2IA7BAKRJ3ZWLY6XDBCQ2C2P5FJ2Q"),
)
DEMO_TEAMS = ("Children in Care North", "Children in Care South")


def load_demo(deps: ServiceDeps) -> list[str]:
    """Create the demo teams and accounts that are missing. Running it again changes nothing."""
    if deps.settings.env == "production":
        raise ForbiddenActionError("Demo data is for development only")
    created: list[str] = []
    actor = Actor.system("demo")
    with deps.db.transaction() as session:
        teams = {t.name: t for t in session.scalars(select(Team)).all()}
        for name in DEMO_TEAMS:
            if name not in teams:
                teams[name] = Team(id=uuid.uuid4(), name=name, created_at=deps.clock.now())
                session.add(teams[name])
                created.append(f"team {name}")
        session.flush()
        for account in DEMO_ACCOUNTS:
            if find_by_email(deps, session, account.email) is not None:
                continue
            user = StaffUser(id=uuid.uuid4(), role=account.role.value, status=AccountStatus.ACTIVE.value,
                             team_id=teams[account.team].id if account.team else None,
                             created_at=deps.clock.now(), is_demo=True,
                             password_hash=deps.hasher.hash(account.password),
                             password_changed_at=deps.clock.now())
            session.add(user)
            user.email = account.email
            user.display_name = account.name
            user.totp_secret = account.totp_secret
            audit.record(session, deps.audit_chain, deps.clock, actor, "user.created", object_type="staff_user",
                         object_id=user.id, details={"role": account.role.value, "purpose": "demo"})
            created.append(f"{account.role.label}: {account.email}")
    return created


def demo_accounts_exist(deps: ServiceDeps) -> bool:
    """True if any demo account is in the database (a fresh, unmigrated database has none)."""
    try:
        with deps.db.transaction() as session:
            return bool(session.scalar(select(exists().where(StaffUser.is_demo.is_(True)))))
    except (OperationalError, ProgrammingError):
        return False
