"""The `cla-transitions` command: a Flask CLI group with the app preset.

Commands for operators and cron: run, db (migrations), create-admin, demo, tick, audit-verify,
rotate-keys, after-restore and generate-keys.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps

#: Commands that serve no page: they get an app without the web layer, which starts faster (bench/b_startup).
NO_WEB = frozenset({"create-admin", "demo", "seed-reference", "tick", "audit-verify", "rotate-keys", "generate-keys",
                    "db", "after-restore", "check-keys"})


class _Build:
    web = True
    migrations = False
    serves = False


def _app() -> Flask:
    from transitions.app import create_app
    from transitions.formdefs import FormDefinitionError
    from transitions.settings import SettingsError

    try:
        app = create_app(web=_Build.web)
    except (SettingsError, FormDefinitionError) as exc:
        click.echo(f"CLA Transitions cannot start: {exc}", err=True)
        sys.exit(2)
    if _Build.migrations:
        from transitions.migrations_support import install_migrations

        install_migrations(app)
    if _Build.serves:
        _hold_server_lock(app)
    return app


def _hold_server_lock(app: Flask) -> None:
    """`run` on a SQLite file: refuse if another instance serves it (R73). The reloader's child is served by the
    process that holds the lock already."""
    from werkzeug.serving import is_running_from_reloader

    from transitions.instance import InstanceLockedError, hold_server_lock, serving_instance_id

    if is_running_from_reloader():
        return
    try:
        hold_server_lock(app.extensions["transitions"].settings.database_url, serving_instance_id())
    except InstanceLockedError as exc:
        app.logger.error("refusing to start: %s", exc)
        click.echo(f"CLA Transitions cannot start: {exc}", err=True)
        sys.exit(1)


class TransitionsGroup(FlaskGroup):
    """Finds our own commands before loading every installed Flask plugin, and wires migrations only for `db`."""

    def get_command(self, ctx: click.Context, name: str) -> Any:
        _Build.web = name not in NO_WEB
        _Build.serves = name == "run"
        if name == "db":
            from flask_migrate.cli import db

            _Build.migrations = True
            return db
        own = click.Group.get_command(self, ctx, name)
        return own if own is not None else super().get_command(ctx, name)


def _deps() -> ServiceDeps:
    found: ServiceDeps = current_app.extensions["transitions"]
    return found


@click.group(cls=TransitionsGroup, create_app=_app, add_default_commands=True, add_version_option=False)
def main() -> None:
    """CLA Transitions: handover packs for children looked after."""


@main.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True, help="The administrator's full name.")
@with_appcontext
def create_admin(email: str, name: str) -> None:
    """Create an administrator and print a one-time set-up link."""
    from transitions.services import accounts
    from transitions.services.errors import EmailInUseError

    try:
        url = accounts.create_admin(_deps(), email=email, name=name, actor=Actor.system("create-admin"))
    except EmailInUseError:
        click.echo("There is already an account with that email address.", err=True)
        sys.exit(1)
    hours = _deps().settings.setup_link_expiry_hours
    click.echo(f"Administrator created. Open this link within {hours} hours to set a password and authenticator:")
    click.echo(url)


@main.command("demo")
@with_appcontext
def load_demo() -> None:
    """Load fictional demo teams and one account per role (development only; idempotent)."""
    from transitions.services import demo, demo_children, demo_history
    from transitions.services.errors import ForbiddenActionError

    try:
        created = demo.load_demo(_deps())
        created += demo_children.load_demo_children(_deps())
        created += demo_history.load_demo_history(_deps())  # fictional past moves, for the reports
    except ForbiddenActionError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo("Demo data: " + (f"{len(created)} item(s) added." if created else "already loaded."))
    click.echo("Sign in with any of these (password, then the code from an authenticator app set up with the "
               "secret):")
    for account in demo.DEMO_ACCOUNTS:
        click.echo(f"  {account.role.label:22} {account.email:38} {account.password:30} {account.totp_secret}")


@main.command("seed-reference")
@with_appcontext
def seed_reference() -> None:
    """Add or update every English local authority and police force in the organisations register."""
    from transitions.services import organisations
    from transitions.services.audit import Actor

    report = organisations.seed_reference(_deps(), Actor.system("cli"))
    click.echo(f"Organisations register: {report.authorities} local authorities, {report.forces} police forces.")


@main.command("tick")
@with_appcontext
def run_tick() -> None:
    """Run all periodic work once (outbox delivery, expiry, purges). Safe to repeat."""
    from transitions.instance import InstanceLockedError, hold_tick_lock
    from transitions.services import tick

    try:
        lock = hold_tick_lock(_deps().settings.database_url)  # SQLite: never two ticks at once (R73)
    except InstanceLockedError as exc:
        current_app.logger.error("tick not run: %s", exc)
        click.echo(f"Tick not run: {exc}", err=True)
        sys.exit(1)
    try:
        report = tick.run(_deps())
    finally:
        if lock is not None:
            os.close(lock)
    for line in report.lines():
        click.echo(line, err=line.startswith("FAILED"))
    if report.failed_jobs:
        sys.exit(1)


@main.command("audit-verify")
@click.option("--checkpoint", metavar="SEQ:HASH", help="A checkpoint printed by an earlier run and kept outside "
              "the database; proves no event up to it was removed since.")
@click.option("--since", metavar="SEQ:HASH", help="Check only the events after this checkpoint (printed by an "
              "earlier run): the quick hourly check; run the full check too, say weekly.")
@with_appcontext
def audit_verify(checkpoint: str | None, since: str | None) -> None:
    """Check the audit trail's HMAC chain; exit 1 and name the first broken event if it was tampered with."""
    from transitions.services import audit

    deps = _deps()
    try:
        expected = audit.parse_checkpoint(checkpoint) if checkpoint else None
        start = audit.parse_checkpoint(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--checkpoint/--since") from None
    with deps.db.reading() as session:  # SQLite: a snapshot, so minutes of checking never block the service
        report = audit.verify(session, deps.audit_chain, checkpoint=expected, since=start)
    from transitions.services import audit_views

    audit_views.record_check(deps, Actor.system("audit-verify"), report)  # shown to administrators
    if report.ok:
        after = f" after event {start[0]}" if start else ""
        click.echo(f"Audit chain intact: {report.checked} events verified{after}.")
        click.echo(f"Checkpoint (keep it outside the database): {report.checkpoint}")
        return
    click.echo(f"AUDIT CHAIN BROKEN at event {report.first_broken_seq}: {report.problem} "
               f"({report.checked} events verified before it).", err=True)
    sys.exit(1)


@main.command("rotate-keys")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000),
              help="Rows re-encrypted per transaction: smaller holds each row lock for less time.")
@with_appcontext
def rotate_keys(batch_size: int) -> None:
    """Re-encrypt every field and re-wrap every blob key under the active (first) key in TRANSITIONS_KEYRING.

    Safe while the app serves and safe to stop: run it again until it reports no value under an older key."""
    from transitions.services import keys

    report = keys.rotate(_deps(), Actor.system("rotate-keys"), batch_size=batch_size)
    click.echo(f"Active key {report.active_key}: {report.fields_reencrypted} field(s) re-encrypted, "
               f"{report.blobs_rewrapped} blob key(s) re-wrapped.")
    for key_id, count in sorted(report.remaining_by_key.items()):
        click.echo(f"  key {key_id}: {count} value(s)")
    stale = {k: c for k, c in report.remaining_by_key.items() if k != report.active_key}
    if stale:
        click.echo("Some values are still under older keys; run rotate-keys again.", err=True)
        sys.exit(1)


@main.command("after-restore")
@click.option("--note", default="restore", show_default=True, metavar="TEXT",
              help="Why, for the record (which backup, which incident). No personal data.")
@with_appcontext
def after_restore(note: str) -> None:
    """Run on a database restored from a backup, before starting the app: every recipient link and session of
    the restored database stops working (a revocation made after the backup would otherwise be undone)."""
    from transitions.services import receipt

    report = receipt.withdraw_links_after_restore(_deps(), note, Actor.system("after-restore"))
    click.echo(f"Restore epoch is now {report.epoch}: every earlier recipient link is refused.")
    click.echo(f"{report.links_withdrawn} link(s) withdrawn: their boards say to send them again. "
               f"{report.sessions_ended} recipient session(s) ended, {report.codes_voided} code(s) voided.")
    click.echo("Changes made after the backup was taken are lost: ask the teams to check who should get a link "
               "again, and who should not, before they send them.")


@main.command("check-keys")
@with_appcontext
def check_keys() -> None:
    """Check every configured key against the fingerprint recorded when its id was first seen (R46); record new
    key ids. Exit 1, naming the key id only, if one differs. Run it after `db upgrade` and after adding a key."""
    from transitions.services import key_check

    try:
        report = key_check.check_keys(_deps())
    except key_check.KeyMismatchError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"Keys match: {report.checked} checked, {report.recorded} recorded for the first time.")


@click.command("generate-keys")
def generate_keys() -> None:
    """Print fresh secrets for a production environment file (keep them in your secret store)."""
    import base64
    import secrets
    from datetime import UTC, datetime

    def key() -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")

    click.echo(f"TRANSITIONS_SECRET_KEY={secrets.token_urlsafe(48)}")
    click.echo(f"TRANSITIONS_KEYRING={datetime.now(UTC):%Y-%m}:{key()}")
    click.echo(f"TRANSITIONS_BLIND_INDEX_KEY={key()}")
    click.echo(f"TRANSITIONS_AUDIT_KEY={key()}")


main.add_command(generate_keys)
