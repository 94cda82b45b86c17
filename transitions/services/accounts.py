"""Staff accounts: first admin, invitations, set-up links, sign-in with password and TOTP, administration."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from transitions.crypto import (
    PasswordPolicyError,
    check_password_policy,
    new_token,
    new_totp_secret,
    provisioning_uri,
    token_hash,
    verify_totp,
)
from transitions.models import (
    ROLE_LABELS,
    AccountStatus,
    Role,
    SetupLink,
    SignInThrottle,
    StaffSession,
    StaffUser,
    Team,
)
from transitions.services import audit, outbox
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import (
    AccountLockedError,
    EmailInUseError,
    ForbiddenActionError,
    InvalidCodeError,
    InvalidCredentialsError,
    NotFoundError,
    PasswordRejectedError,
    SetupLinkInvalidError,
)

MAX_EMAIL_LENGTH = 254


@dataclass(frozen=True)
class StaffView:
    """What the web layer may know about a member of staff."""

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    status: str
    team_id: uuid.UUID | None
    team_name: str | None
    last_sign_in_at: datetime | None
    is_demo: bool

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def _view(user: StaffUser) -> StaffView:
    return StaffView(
        id=user.id, email=user.email or "", display_name=user.display_name or "", role=Role(user.role),
        status=user.status, team_id=user.team_id, team_name=user.team.name if user.team else None,
        last_sign_in_at=user.last_sign_in_at, is_demo=user.is_demo,
    )


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(deps: ServiceDeps, session: Session, email: str) -> StaffUser | None:
    index = deps.blind_index.digest("staff-email", normalise_email(email))
    return session.scalars(select(StaffUser).where(StaffUser.email_index == index)).first()


def _context_words(deps: ServiceDeps, email: str, name: str) -> list[str]:
    words = [normalise_email(email).partition("@")[0], deps.settings.app.council_name,
             deps.settings.app.service_name, *name.split()]
    return [w for w in words if len(w) >= 4]


def _check_password(deps: ServiceDeps, password: str, email: str, name: str) -> None:
    try:
        check_password_policy(password, context_words=_context_words(deps, email, name))
    except PasswordPolicyError as exc:
        raise PasswordRejectedError(str(exc)) from exc


def _issue_setup_link(deps: ServiceDeps, session: Session, user: StaffUser, created_by: uuid.UUID | None) -> str:
    now = deps.clock.now()
    session.execute(
        update(SetupLink).where(SetupLink.user_id == user.id, SetupLink.used_at.is_(None),
                                SetupLink.revoked_at.is_(None)).values(revoked_at=now)
    )
    token = new_token()
    session.add(SetupLink(user_id=user.id, token_hash=token_hash(token), created_at=now,
                          expires_at=now + timedelta(hours=deps.settings.setup_link_expiry_hours),
                          created_by_id=created_by))
    return token


def setup_url(deps: ServiceDeps, token: str) -> str:
    """Links in emails are built from configuration, never from the request's Host header."""
    return f"{deps.settings.app.public_base_url.rstrip('/')}/setup/{token}"


def _new_user(deps: ServiceDeps, session: Session, *, email: str, name: str, role: Role,
              team_id: uuid.UUID | None, is_demo: bool = False) -> StaffUser:
    email = normalise_email(email)
    if find_by_email(deps, session, email) is not None:
        raise EmailInUseError(email)
    user = StaffUser(id=uuid.uuid4(), role=role.value, team_id=team_id, status=AccountStatus.INVITED.value,
                     created_at=deps.clock.now(), is_demo=is_demo)
    session.add(user)
    user.email = email
    user.display_name = name
    return user


def create_admin(deps: ServiceDeps, *, email: str, name: str, actor: Actor) -> str:
    """Create an administrator and return a one-time set-up link (R10: there are no default accounts)."""
    with deps.db.transaction() as session:
        user = _new_user(deps, session, email=email, name=name, role=Role.ADMIN, team_id=None)
        token = _issue_setup_link(deps, session, user, None)
        audit.record(session, deps.audit_chain, deps.clock, actor, "user.created", object_type="staff_user",
                     object_id=user.id, details={"role": user.role})
    return setup_url(deps, token)


INVITATION_BODY = """\
{council} has given you an account for {service}.

Set your password and authenticator app within {hours} hours at:

{url}

The link works once. If it has expired, ask your administrator for a new one.
If you did not expect this email, tell your IT service desk and do not use the link.
"""


def invite_user(deps: ServiceDeps, *, email: str, name: str, role: Role, team_id: uuid.UUID | None,
                actor: Actor) -> StaffView:
    """Create an account and email its set-up link through the outbox, in one transaction."""
    with deps.db.transaction() as session:
        if team_id is not None and session.get(Team, team_id) is None:
            raise NotFoundError("team")
        user = _new_user(deps, session, email=email, name=name, role=role, team_id=team_id)
        _queue_invitation(deps, session, user, actor)
        audit.record(session, deps.audit_chain, deps.clock, actor, "user.invited", object_type="staff_user",
                     object_id=user.id, details={"role": role.value, "team_id": team_id})
        session.flush()
        return _view(user)


def _queue_invitation(deps: ServiceDeps, session: Session, user: StaffUser, actor: Actor) -> None:
    token = _issue_setup_link(deps, session, user, uuid.UUID(actor.id) if actor.id else None)
    settings = deps.settings.app
    body = INVITATION_BODY.format(council=settings.council_name, service=settings.service_name,
                                  hours=deps.settings.setup_link_expiry_hours, url=setup_url(deps, token))
    outbox.enqueue(session, deps.clock.now(), to=user.email or "", subject=f"Your {settings.service_name} account",
                   body=body, purpose="invitation", idempotency_key=f"invitation:{token_hash(token).hex()}")


def resend_invitation(deps: ServiceDeps, user_id: uuid.UUID, actor: Actor) -> None:
    with deps.db.transaction() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFoundError("user")
        if user.status != AccountStatus.INVITED.value:
            raise ForbiddenActionError("This person has already set up their account")
        _queue_invitation(deps, session, user, actor)
        audit.record(session, deps.audit_chain, deps.clock, actor, "user.invitation_resent",
                     object_type="staff_user", object_id=user.id)


# ---- set-up link journey ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupState:
    user_id: uuid.UUID
    display_name: str
    email: str
    password_set: bool
    totp_secret: str | None
    totp_uri: str | None


def _valid_link(deps: ServiceDeps, session: Session, token: str) -> SetupLink:
    link = session.scalars(select(SetupLink).where(SetupLink.token_hash == token_hash(token))).first()
    if link is None or link.used_at or link.revoked_at or link.expires_at <= deps.clock.now():
        raise SetupLinkInvalidError()
    if link.user.status == AccountStatus.DISABLED.value:
        raise SetupLinkInvalidError()
    return link


def setup_state(deps: ServiceDeps, token: str) -> SetupState:
    """Read-only: what a set-up link's page shows. A GET consumes nothing."""
    with deps.db.transaction() as session:
        user = _valid_link(deps, session, token).user
        secret = user.totp_pending_secret
        return SetupState(
            user_id=user.id, display_name=user.display_name or "", email=user.email or "",
            password_set=user.password_hash is not None, totp_secret=secret,
            totp_uri=provisioning_uri(secret, user.email or "", deps.settings.app.service_name) if secret else None,
        )


def set_initial_password(deps: ServiceDeps, token: str, password: str, actor: Actor) -> None:
    with deps.db.transaction() as session:
        link = _valid_link(deps, session, token)
        user = link.user
        _check_password(deps, password, user.email or "", user.display_name or "")
        user.password_hash = deps.hasher.hash(password)
        user.password_changed_at = deps.clock.now()
        if user.totp_pending_secret is None:
            user.totp_pending_secret = new_totp_secret()
        audit.record(session, deps.audit_chain, deps.clock, actor, "user.password_set",
                     object_type="staff_user", object_id=user.id)


def confirm_authenticator(deps: ServiceDeps, token: str, code: str, actor: Actor) -> None:
    """Enrolment ends when a code from the new secret is typed: the account becomes active, the link is used."""
    failed = False
    with deps.db.transaction() as session:
        link = _valid_link(deps, session, token)
        user = link.user
        secret = user.totp_pending_secret
        if user.password_hash is None or secret is None:
            raise SetupLinkInvalidError()
        step = verify_totp(secret, code, at=deps.clock.now(), last_used_step=None)
        if step is None:
            failed = True
            audit.record(session, deps.audit_chain, deps.clock, actor, "user.totp_enrolment", outcome="failed",
                         object_type="staff_user", object_id=user.id)
        else:
            user.totp_secret = secret
            user.totp_pending_secret = None
            user.totp_last_step = step
            user.status = AccountStatus.ACTIVE.value
            link.used_at = deps.clock.now()
            audit.record(session, deps.audit_chain, deps.clock, actor, "user.activated",
                         object_type="staff_user", object_id=user.id)
    if failed:
        raise InvalidCodeError()


# ---- sign-in ---------------------------------------------------------------------------------------------


def _throttle_key(deps: ServiceDeps, email: str) -> bytes:
    return deps.blind_index.digest("sign-in-throttle", normalise_email(email))


def _check_throttle(deps: ServiceDeps, session: Session, key: bytes) -> None:
    """Refuse a locked account. The account's row is made if missing and stays locked (PostgreSQL) until this
    attempt is counted and committed: without that, parallel guesses all passed this check before the lock
    was set, and 4 tabs got 8 password checks instead of `max_failures` (SQLite's write lock already
    serialised them)."""
    row = session.get(SignInThrottle, key, with_for_update=True)
    if row is None:
        try:
            with session.begin_nested():  # waits for a parallel attempt that is making it
                session.add(SignInThrottle(account_key=key, failures=0, window_started_at=deps.clock.now()))
        except IntegrityError:
            pass
        row = session.get(SignInThrottle, key, with_for_update=True, populate_existing=True)
    if row is not None and row.locked_until is not None and row.locked_until > deps.clock.now():
        raise AccountLockedError(row.locked_until)


def _record_failure(deps: ServiceDeps, session: Session, key: bytes) -> None:
    """Count a failure with atomic SQL increments, so concurrent guesses are all counted (PostgreSQL row lock,
    SQLite write lock), and lock the account once the count reaches the limit."""
    now = deps.clock.now()
    rules = deps.settings.sign_in
    row = SignInThrottle.account_key == key
    session.execute(update(SignInThrottle).where(
        row, SignInThrottle.window_started_at <= now - timedelta(minutes=rules.window_minutes)
    ).values(failures=0, window_started_at=now))
    bumped = session.execute(update(SignInThrottle).where(row).values(failures=SignInThrottle.failures + 1))
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(SignInThrottle(account_key=key, failures=1, window_started_at=now))
        except IntegrityError:  # another request created it first
            session.execute(update(SignInThrottle).where(row).values(failures=SignInThrottle.failures + 1))
    failures = session.scalar(select(SignInThrottle.failures).where(row))
    if failures is not None and failures >= rules.max_failures:
        session.execute(update(SignInThrottle).where(row).values(
            locked_until=now + timedelta(minutes=rules.lockout_minutes), failures=0, window_started_at=now))


def check_password(deps: ServiceDeps, email: str, password: str, actor: Actor) -> uuid.UUID:
    """First factor. Unknown account and wrong password take the same time and give the same error (R5)."""
    key = _throttle_key(deps, email)
    outcome: Exception | None = None
    user_id: uuid.UUID | None = None
    with deps.db.transaction() as session:
        _check_throttle(deps, session, key)
        user = find_by_email(deps, session, email) if len(email) <= MAX_EMAIL_LENGTH else None
        if user is None or user.password_hash is None or not user.is_active:
            deps.hasher.dummy_verify(password)
            outcome = InvalidCredentialsError()
        elif not deps.hasher.verify(user.password_hash, password):
            outcome = InvalidCredentialsError()
        else:
            user_id = user.id
            if deps.hasher.needs_rehash(user.password_hash):
                user.password_hash = deps.hasher.hash(password)
        if outcome is not None:
            _record_failure(deps, session, key)
            audit.record(session, deps.audit_chain, deps.clock, actor, "sign_in.password", outcome="failed",
                         object_type="staff_user", object_id=user.id if user else None)
    if outcome is not None:
        raise outcome
    assert user_id is not None
    return user_id


def check_code(deps: ServiceDeps, user_id: uuid.UUID, code: str, actor: Actor) -> StaffView:
    """Second factor. A code is accepted once only; failures count towards the same account throttle."""
    try:
        return _check_code(deps, user_id, code, actor)
    except StaleDataError:
        # Two requests raced with the same code: the version column let only one through. Count this one.
        with deps.db.transaction() as session:
            user = session.get(StaffUser, user_id)
            if user is not None:
                _record_failure(deps, session, _throttle_key(deps, user.email or ""))
                audit.record(session, deps.audit_chain, deps.clock, actor, "sign_in.code", outcome="failed",
                             object_type="staff_user", object_id=user_id, details={"reason_code": "replay"})
        raise InvalidCodeError() from None


def _check_code(deps: ServiceDeps, user_id: uuid.UUID, code: str, actor: Actor) -> StaffView:
    failed = False
    with deps.db.transaction() as session:
        user = session.get(StaffUser, user_id)
        if user is None or not user.is_active or user.totp_secret is None:
            raise InvalidCredentialsError()
        key = _throttle_key(deps, user.email or "")
        _check_throttle(deps, session, key)
        step = verify_totp(user.totp_secret, code, at=deps.clock.now(), last_used_step=user.totp_last_step)
        if step is None:
            failed = True
            _record_failure(deps, session, key)
            audit.record(session, deps.audit_chain, deps.clock, actor, "sign_in.code", outcome="failed",
                         object_type="staff_user", object_id=user.id)
        else:
            user.totp_last_step = step
            user.last_sign_in_at = deps.clock.now()
            session.execute(delete(SignInThrottle).where(SignInThrottle.account_key == key))
            audit.record(session, deps.audit_chain, deps.clock, Actor("staff", str(user.id), actor.ip,
                                                                       actor.user_agent),
                         "sign_in.success", object_type="staff_user", object_id=user.id)
            session.flush()
            view = _view(user)
    if failed:
        raise InvalidCodeError()
    return view


def active_user(deps: ServiceDeps, user_id: uuid.UUID) -> StaffView | None:
    """The signed-in person, with their team in the same SELECT. A request's session is read with its person
    (`sessions.load`); this is for a person whose session was not read that way."""
    with deps.db.transaction() as session:
        return active_view(session.get(StaffUser, user_id, options=[joinedload(StaffUser.team)]))


def active_view(user: StaffUser | None) -> StaffView | None:
    """The person as the web layer sees them, or None when they may not act (disabled, locked, gone). Read it
    inside the transaction that loaded the user, with their team loaded."""
    return _view(user) if user is not None and user.is_active else None


def change_password(deps: ServiceDeps, user_id: uuid.UUID, current: str, new: str, actor: Actor) -> None:
    """Ends every session of the user (R9); the caller starts a fresh one for the current browser."""
    wrong = False
    with deps.db.transaction() as session:
        user = session.get(StaffUser, user_id)
        if user is None or user.password_hash is None:
            raise NotFoundError("user")
        key = _throttle_key(deps, user.email or "")
        _check_throttle(deps, session, key)
        if not deps.hasher.verify(user.password_hash, current):
            wrong = True
            _record_failure(deps, session, key)
            audit.record(session, deps.audit_chain, deps.clock, actor, "user.password_change", outcome="failed",
                         object_type="staff_user", object_id=user.id)
        else:
            _check_password(deps, new, user.email or "", user.display_name or "")
            user.password_hash = deps.hasher.hash(new)
            user.password_changed_at = deps.clock.now()
            session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
            audit.record(session, deps.audit_chain, deps.clock, actor, "user.password_changed",
                         object_type="staff_user", object_id=user.id)
    if wrong:
        raise InvalidCredentialsError()


def sign_out_everywhere(deps: ServiceDeps, user_id: uuid.UUID, actor: Actor) -> int:
    with deps.db.transaction() as session:
        result = session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))
        count = int(result.rowcount)  # type: ignore[attr-defined]
        audit.record(session, deps.audit_chain, deps.clock, actor, "user.signed_out_everywhere",
                     object_type="staff_user", object_id=user_id, details={"count": count})
        return count


# ---- administration --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamView:
    id: uuid.UUID
    name: str
    member_count: int


def list_users(deps: ServiceDeps) -> list[StaffView]:
    with deps.db.transaction() as session:
        users = session.scalars(select(StaffUser).options(selectinload(StaffUser.team))).all()
        views = [_view(u) for u in users]
    return sorted(views, key=lambda v: (v.status != AccountStatus.ACTIVE.value, v.display_name.casefold()))


def get_user(deps: ServiceDeps, user_id: uuid.UUID) -> StaffView:
    with deps.db.transaction() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFoundError("user")
        return _view(user)


def list_teams(deps: ServiceDeps) -> list[TeamView]:
    with deps.db.transaction() as session:
        teams = session.scalars(select(Team).options(selectinload(Team.members)).order_by(Team.name)).all()
        return [TeamView(t.id, t.name, len(t.members)) for t in teams]


def create_team(deps: ServiceDeps, name: str, actor: Actor) -> TeamView:
    with deps.db.transaction() as session:
        if session.scalars(select(Team).where(Team.name == name.strip())).first() is not None:
            raise ForbiddenActionError("A team with that name already exists")
        team = Team(id=uuid.uuid4(), name=name.strip(), created_at=deps.clock.now())
        session.add(team)
        audit.record(session, deps.audit_chain, deps.clock, actor, "team.created", object_type="team",
                     object_id=team.id)
        return TeamView(team.id, team.name, 0)


def _active_admins(session: Session) -> int:
    """Locks the active administrators' rows (PostgreSQL) so two admins cannot demote each other at once."""
    users = session.scalars(select(StaffUser).where(StaffUser.role == Role.ADMIN.value,
                                                    StaffUser.status == AccountStatus.ACTIVE.value)
                            .with_for_update()).all()
    return len(users)


def update_user(deps: ServiceDeps, user_id: uuid.UUID, *, role: Role, team_id: uuid.UUID | None,
                actor: Actor) -> None:
    """A change of role is a change of privilege: the person's sessions end (R7)."""
    with deps.db.transaction() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFoundError("user")
        if team_id is not None and session.get(Team, team_id) is None:
            raise NotFoundError("team")
        if user.role == Role.ADMIN.value and role is not Role.ADMIN and user.is_active \
                and _active_admins(session) <= 1:
            raise ForbiddenActionError("There must always be at least one active administrator")
        old_role, old_team = user.role, user.team_id
        user.role, user.team_id = role.value, team_id
        if old_role != role.value:
            session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        audit.record(session, deps.audit_chain, deps.clock, actor, "user.updated", object_type="staff_user",
                     object_id=user.id, details={"old_role": old_role, "new_role": role.value,
                                                 "old_team_id": old_team, "new_team_id": team_id})


def set_disabled(deps: ServiceDeps, user_id: uuid.UUID, disabled: bool, actor: Actor) -> None:
    with deps.db.transaction() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFoundError("user")
        if disabled:
            if actor.id == str(user.id):
                raise ForbiddenActionError("You cannot disable your own account")
            if user.role == Role.ADMIN.value and user.is_active and _active_admins(session) <= 1:
                raise ForbiddenActionError("There must always be at least one active administrator")
            user.status = AccountStatus.DISABLED.value
            session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
            session.execute(update(SetupLink).where(SetupLink.user_id == user.id, SetupLink.used_at.is_(None))
                            .values(revoked_at=deps.clock.now()))
            action = "user.disabled"
        else:
            user.status = AccountStatus.ACTIVE.value if user.totp_secret_enc else AccountStatus.INVITED.value
            action = "user.enabled"
        audit.record(session, deps.audit_chain, deps.clock, actor, action, object_type="staff_user",
                     object_id=user.id)
