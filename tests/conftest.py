"""Shared fixtures: a fresh configuration with new secrets per test, a migrated database, a real SMTP server."""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from transitions.clock import FrozenClock
from transitions.crypto import current_code
from transitions.services.deps import ServiceDeps
from transitions.settings import Settings, load_settings

POSTGRES_URL = os.environ.get("TRANSITIONS_TEST_POSTGRES_URL", "")
BASE_URL = "https://localhost"


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def test_environ(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    return {
        "TRANSITIONS_ENV": "test",
        "TRANSITIONS_DATABASE_URL": database_url,
        "TRANSITIONS_INSTANCE_PATH": str(instance),
        "TRANSITIONS_SECRET_KEY": secrets.token_urlsafe(48),
        "TRANSITIONS_KEYRING": f"k1:{_key()}",
        "TRANSITIONS_BLIND_INDEX_KEY": _key(),
        "TRANSITIONS_AUDIT_KEY": _key(),
        **extra,
    }


test_environ.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink(port=_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@contextmanager
def postgres_database(admin_url: str = POSTGRES_URL, prefix: str = "transitions_test") -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server of `admin_url`, dropped afterwards (tests and benchmarks)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite file per test, or a fresh PostgreSQL database when TRANSITIONS_TEST_POSTGRES_URL is set."""
    if POSTGRES_URL:
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, smtp_server: SmtpSink) -> Settings:
    return load_settings(test_environ(database_url, tmp_path / "instance",
                                      TRANSITIONS_SMTP_PORT=str(smtp_server.port)))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def migrate(app: Flask) -> None:
    from flask_migrate import upgrade

    from transitions.migrations_support import install_migrations

    install_migrations(app)
    with app.app_context():
        upgrade()


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> Iterator[Flask]:
    from transitions.app import create_app

    application = create_app(settings, clock=clock)
    migrate(application)
    yield application
    application.extensions["transitions"].db.dispose()


@pytest.fixture
def deps(app: Flask) -> ServiceDeps:
    found: ServiceDeps = app.extensions["transitions"]
    return found


class Browser(FlaskClient):
    """A test client that behaves like a browser on the HTTPS site: it sends a same-origin Referer."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("Referer", BASE_URL + "/")
        kwargs["headers"] = headers
        kwargs.setdefault("base_url", BASE_URL)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask) -> Browser:
    app.test_client_class = Browser
    return app.test_client()  # type: ignore[return-value]


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def post_form(client: FlaskClient, url: str, data: dict[str, str], *, page: str | None = None) -> Any:
    """GET the page for its CSRF token (or use the given page URL), then POST the form."""
    html = client.get(page or url).get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(html)})


@dataclass
class StaffAccount:
    id: uuid.UUID
    email: str
    password: str
    totp_secret: str


def make_staff(deps: ServiceDeps, *, role: str = "social_worker", email: str | None = None,
               password: str = "violet meadow copper anchor", team: str | None = None) -> StaffAccount:
    """An active account created directly through the models (set-up journeys are tested on their own)."""
    from transitions.crypto import new_totp_secret
    from transitions.models import StaffUser, Team

    email = email or f"{uuid.uuid4().hex[:8]}@example-council.test"
    secret = new_totp_secret()
    with deps.db.transaction() as session:
        team_id = None
        if team:
            from sqlalchemy import select

            t = session.scalars(select(Team).where(Team.name == team)).first()
            if t is None:
                t = Team(id=uuid.uuid4(), name=team, created_at=deps.clock.now())
                session.add(t)
            team_id = t.id
        user = StaffUser(id=uuid.uuid4(), role=role, status="active", created_at=deps.clock.now(),
                         password_hash=deps.hasher.hash(password), team_id=team_id)
        session.add(user)
        user.email = email
        user.display_name = "Test " + role.replace("_", " ").title()
        user.totp_secret = secret
        user_id = user.id
    return StaffAccount(user_id, email, password, secret)


def sign_in(client: FlaskClient, account: StaffAccount, clock: FrozenClock) -> Any:
    response = post_form(client, "/sign-in", {"email": account.email, "password": account.password})
    assert response.status_code == 302, response.get_data(as_text=True)
    code = current_code(account.totp_secret, clock.now())
    response = post_form(client, "/sign-in/code", {"code": code})
    assert response.status_code == 302, response.get_data(as_text=True)
    clock.advance(seconds=30)  # the next sign-in in the same test needs a fresh code
    return response
