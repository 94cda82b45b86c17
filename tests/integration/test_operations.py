"""Migrations, the CLI, demo data rules, log hygiene and the per-IP limit."""

from __future__ import annotations

import logging
import os
import re

import pytest
from sqlalchemy import inspect

from tests.conftest import make_staff, post_form, sign_in
from transitions.cli import main as cli
from transitions.services import demo
from transitions.settings import SettingsError
from transitions.web.logging import redact


def test_migrations_upgrade_from_empty_and_match_the_models(app, deps):
    result = app.test_cli_runner().invoke(cli, ["db", "check"])
    assert result.exit_code == 0, result.output
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from transitions.models import Base

    with deps.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(deps.db.engine).get_table_names())
    assert {"staff_user", "staff_session", "audit_event", "outbox_message", "setup_link"} <= tables


def test_demo_is_idempotent_and_refused_in_production(app, deps, settings, clock):
    assert demo.load_demo(deps)
    assert demo.load_demo(deps) == []
    from transitions.app import create_app

    with pytest.raises(SettingsError, match="demo accounts"):
        create_app(settings.with_overrides(env="production"), clock=clock)


def test_demo_accounts_can_sign_in_with_the_published_secrets(app, client, deps, clock):
    demo.load_demo(deps)
    from tests.conftest import StaffAccount

    account = demo.DEMO_ACCOUNTS[1]
    sign_in(client, StaffAccount(None, account.email, account.password, account.totp_secret), clock)
    assert account.name in client.get("/").get_data(as_text=True)


def test_tick_delivers_and_reports(app, deps, smtp_server):
    admin = make_staff(deps, role="admin")
    from transitions.services import accounts
    from transitions.services.audit import Actor
    from transitions.services.roles import Role

    accounts.invite_user(deps, email="new.person@example-council.test", name="New Person", role=Role.AUDITOR,
                         team_id=None, actor=Actor("staff", str(admin.id)))
    result = app.test_cli_runner().invoke(cli, ["tick"])
    assert "outbox: 1 sent" in result.output
    assert len(smtp_server.wait_for(1)) == 1
    assert "outbox: 0 sent" in app.test_cli_runner().invoke(cli, ["tick"]).output


def test_generate_keys_prints_usable_secrets(tmp_path):
    from click.testing import CliRunner

    from transitions.settings import load_settings

    output = CliRunner().invoke(cli, ["generate-keys"]).output
    env = dict(line.split("=", 1) for line in output.strip().splitlines())
    env.update(TRANSITIONS_ENV="test", TRANSITIONS_DATABASE_URL="sqlite://",
               TRANSITIONS_INSTANCE_PATH=str(tmp_path))
    assert load_settings(env).secrets.keyring == env["TRANSITIONS_KEYRING"]


def test_tokens_and_codes_never_reach_the_logs(app, client, deps, clock, caplog):
    caplog.set_level(logging.DEBUG)
    result = app.test_cli_runner().invoke(cli, ["create-admin", "logs@example-council.test"])
    token = re.search(r"/setup/(\S+)", result.output).group(1)
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.info('127.0.0.1 - - "GET /setup/%s HTTP/1.1" 200 -', token)
    werkzeug.info('127.0.0.1 - - "POST /sign-in/code?code=123456 HTTP/1.1" 302 -')
    account = make_staff(deps)
    post_form(client, "/sign-in", {"email": account.email, "password": "wrong password guess 123"})
    text = caplog.text
    assert token not in text and "code=123456" not in text
    assert account.email not in text and "wrong password guess" not in text
    assert redact("/r/" + "A" * 43) == "/r/[redacted]"


@pytest.mark.skipif(not os.environ.get("TRANSITIONS_TEST_REDIS_URL"), reason="set TRANSITIONS_TEST_REDIS_URL")
def test_per_ip_limit_is_shared_through_redis(tmp_path, database_url, smtp_server, clock):
    import redis

    from tests.conftest import migrate, test_environ
    from transitions.app import create_app
    from transitions.settings import load_settings

    url = os.environ["TRANSITIONS_TEST_REDIS_URL"]
    redis.Redis.from_url(url).flushdb()
    config = tmp_path / "limits.toml"
    config.write_text('[sign_in]\nip_limit = "3 per minute"\npage_limit = "100 per minute"\n')
    env = test_environ(database_url, tmp_path / "i", TRANSITIONS_REDIS_URL=url, TRANSITIONS_CONFIG=str(config),
                       TRANSITIONS_SMTP_PORT=str(smtp_server.port))
    first = create_app(load_settings(env), clock=clock)
    migrate(first)
    second = create_app(load_settings(env), clock=clock)  # a second instance sharing the same Redis
    from tests.conftest import Browser

    first.test_client_class = second.test_client_class = Browser
    a, b = first.test_client(), second.test_client()
    for client in (a, b, a):
        assert post_form(client, "/sign-in", {"email": "x@example.gov.uk", "password": "p"}).status_code == 200
    response = post_form(b, "/sign-in", {"email": "x@example.gov.uk", "password": "p"})
    assert response.status_code == 429
    assert "Too many" in response.get_data(as_text=True)
    for instance in (first, second):
        instance.extensions["transitions"].db.dispose()


def test_showing_the_sign_in_form_is_limited_per_address(tmp_path, database_url, smtp_server, clock):
    from tests.conftest import Browser, migrate, test_environ
    from transitions.app import create_app
    from transitions.settings import load_settings

    config = tmp_path / "limits.toml"
    config.write_text('[sign_in]\npage_limit = "5 per minute"\n')
    env = test_environ(database_url, tmp_path / "i", TRANSITIONS_CONFIG=str(config),
                       TRANSITIONS_SMTP_PORT=str(smtp_server.port))
    app = create_app(load_settings(env), clock=clock)
    migrate(app)
    app.test_client_class = Browser
    statuses = [app.test_client().get("/sign-in").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    other = app.test_client().get("/sign-in", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200  # another address is not affected
    app.extensions["transitions"].db.dispose()


def test_development_mailbox_lists_what_was_delivered(tmp_path, deps):
    from transitions.services import outbox
    from transitions.services.outbox import MailboxTransport

    with deps.db.transaction() as session:
        outbox.enqueue(session, deps.clock.now(), to="dev@example.gov.uk", subject="Hello", body="Body text",
                       purpose="test", idempotency_key="dev-1")
    report = outbox.deliver_due(deps, MailboxTransport(deps.settings.instance_path / "mailbox"))
    assert report.sent == 1
    (message,) = outbox.mailbox_messages(deps)
    assert (message.to, message.subject, message.body.strip()) == ("dev@example.gov.uk", "Hello", "Body text")
