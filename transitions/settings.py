"""Typed settings: public TOML in config/ plus secrets from TRANSITIONS_* environment variables.

Production is the default environment and fails closed: without a secret key, an encryption keyring,
the blind-index and audit keys and a database URL it refuses to start. Development generates its own
keys into the instance folder and says so loudly.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from transitions.paths import CONFIG_DIR, FORMS_DIR, REPO_ROOT

Environment = Literal["production", "development", "test"]
ENVIRONMENTS: tuple[Environment, ...] = ("production", "development", "test")

#: Values that must never be accepted as real secrets (copied from tutorials, examples or our own README).
KNOWN_BAD_SECRETS = frozenset({"dev", "development", "secret", "changeme", "change-me", "test", "password"})


class SettingsError(RuntimeError):
    """The settings are missing or unsafe; the message says which and how to fix it."""


@dataclass(frozen=True)
class AppSettings:
    council_name: str
    service_name: str
    public_base_url: str
    trusted_hosts: tuple[str, ...]
    max_content_length: int
    proxy_count: int
    debug: bool


@dataclass(frozen=True)
class SessionSettings:
    cookie_name: str
    cookie_secure: bool
    idle_minutes: int
    absolute_hours: int
    anonymous_idle_minutes: int


@dataclass(frozen=True)
class SignInSettings:
    max_failures: int
    window_minutes: int
    lockout_minutes: int
    ip_limit: str
    page_limit: str


@dataclass(frozen=True)
class PasswordSettings:
    min_length: int
    max_length: int
    argon2_time_cost: int
    argon2_memory_cost: int
    argon2_parallelism: int


@dataclass(frozen=True)
class MailSettings:
    transport: Literal["smtp", "mailbox"]
    from_address: str
    smtp_host: str
    smtp_port: int
    smtp_starttls: bool
    smtp_timeout_seconds: int
    max_attempts: int
    backoff_seconds: int
    max_backoff_seconds: int
    batch_size: int
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class RecordSettings:
    """The child's record: freshness thresholds, break-glass length and upload limits."""

    due_soon_days: int
    photo_warn_days: int
    photo_stale_days: int
    break_glass_minutes: int
    photo_max_bytes: int
    photo_max_pixels: int
    document_max_bytes: int
    pdf_check_seconds: float


@dataclass(frozen=True)
class TransitionSettings:
    crisis_window_days: int
    crisis_max_transitions: int
    crisis_task_days: int
    onward_placement_days: int
    tier4_distance_limit_miles: float


@dataclass(frozen=True)
class PackSettings:
    """Secure links and one-time codes for recipients (security.md C3)."""

    link_expiry_days: int
    code_minutes: int
    code_max_wrong: int
    code_sends_per_hour: int
    code_sends_per_day: int
    code_resend_seconds: int
    verify_attempts_per_5_minutes: int
    session_cookie_name: str
    session_idle_minutes: int
    session_absolute_minutes: int
    max_pages: int
    fetch_log_per_hour: int
    #: How recipients reach the sender (shown on the link page, the 410 page and in every pack).
    sender_contact: str
    #: A pack's PDF and snapshot are purged this many days after it was confirmed, revoked or its link
    #: expired (R79); the pack row stays as a record of what was sent.
    blob_retention_days: int


@dataclass(frozen=True)
class Secrets:
    """Secret material. repr() hides it so a settings dump in a log leaks nothing."""

    secret_key: str = field(repr=False)
    keyring: str = field(repr=False)
    blind_index_key: bytes = field(repr=False)
    audit_key: bytes = field(repr=False)


@dataclass(frozen=True)
class OperationsSettings:
    """Operations alerts (R37, R80) and the per-user send limit (R71, attack #65)."""

    #: The oldest email still queued or retrying this many minutes raises an alert.
    outbox_alert_minutes: int = 15
    #: One alert line per kind at most this often.
    alert_repeat_minutes: int = 60
    #: "Send the packs" (and re-send) is refused beyond this many packs by one user within the window.
    pack_sends_per_user: int = 20
    pack_send_window_minutes: int = 10


@dataclass(frozen=True)
class Settings:
    env: Environment
    instance_path: Path
    database_url: str
    redis_url: str
    app: AppSettings
    session: SessionSettings
    sign_in: SignInSettings
    setup_link_expiry_hours: int
    passwords: PasswordSettings
    mail: MailSettings
    record: RecordSettings
    transitions: TransitionSettings
    packs: PackSettings
    secrets: Secrets = field(repr=False)
    generated_dev_secrets: bool = False
    #: The checklist definitions (sections, code lists). A partnership may point this at its own reviewed copy.
    forms_dir: Path = FORMS_DIR
    operations: OperationsSettings = OperationsSettings()

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _decode_key(name: str, value: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError as exc:
        raise SettingsError(f"{name} must be URL-safe base64 of 32 random bytes") from exc
    if len(raw) < 32:
        raise SettingsError(f"{name} must be at least 32 random bytes (256 bits)")
    return raw


def _key_text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _development_secrets(instance_path: Path) -> dict[str, str]:
    """Keys for development only, made once and kept in the git-ignored instance folder."""
    path = instance_path / "dev-secrets.toml"
    if path.exists():
        return {k: str(v) for k, v in _read_toml(path).items()}
    instance_path.mkdir(parents=True, exist_ok=True)
    values = {
        "TRANSITIONS_SECRET_KEY": secrets.token_urlsafe(48),
        "TRANSITIONS_KEYRING": "dev-1:" + _key_text(secrets.token_bytes(32)),
        "TRANSITIONS_BLIND_INDEX_KEY": _key_text(secrets.token_bytes(32)),
        "TRANSITIONS_AUDIT_KEY": _key_text(secrets.token_bytes(32)),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# DEVELOPMENT KEYS made by CLA Transitions. Never use them for real data.\n")
        for key, value in values.items():
            fh.write(f'{key} = "{value}"\n')
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read config/default.toml, config/<env>.toml, an optional TRANSITIONS_CONFIG file, then the environment."""
    env_vars = dict(os.environ if environ is None else environ)
    env = env_vars.get("TRANSITIONS_ENV", "production")
    if env not in ENVIRONMENTS:
        raise SettingsError(f"TRANSITIONS_ENV must be one of {', '.join(ENVIRONMENTS)}")
    data = _read_toml(CONFIG_DIR / "default.toml")
    env_file = CONFIG_DIR / f"{env}.toml"
    if env_file.exists():
        data = _merge(data, _read_toml(env_file))
    if extra := env_vars.get("TRANSITIONS_CONFIG"):
        data = _merge(data, _read_toml(Path(extra)))

    instance_path = Path(env_vars.get("TRANSITIONS_INSTANCE_PATH") or REPO_ROOT / "instance").resolve()
    generated = False
    secret_names = ("TRANSITIONS_SECRET_KEY", "TRANSITIONS_KEYRING", "TRANSITIONS_BLIND_INDEX_KEY",
                    "TRANSITIONS_AUDIT_KEY")
    if env == "development" and not all(env_vars.get(n) for n in secret_names):
        generated = not (instance_path / "dev-secrets.toml").exists()
        for key, value in _development_secrets(instance_path).items():
            env_vars.setdefault(key, value)

    missing = [n for n in (*secret_names, "TRANSITIONS_DATABASE_URL") if not env_vars.get(n)]
    if env == "development" and "TRANSITIONS_DATABASE_URL" in missing:
        env_vars["TRANSITIONS_DATABASE_URL"] = f"sqlite:///{instance_path / 'transitions.sqlite3'}"
        missing.remove("TRANSITIONS_DATABASE_URL")
    if missing:
        raise SettingsError("Refusing to start: set " + ", ".join(missing) + " (see README, 'Production set-up')")

    secret_key = env_vars["TRANSITIONS_SECRET_KEY"]
    if len(secret_key) < 32 or secret_key.lower() in KNOWN_BAD_SECRETS:
        raise SettingsError("TRANSITIONS_SECRET_KEY must be at least 32 random characters")
    blind_key = _decode_key("TRANSITIONS_BLIND_INDEX_KEY", env_vars["TRANSITIONS_BLIND_INDEX_KEY"])
    audit_key = _decode_key("TRANSITIONS_AUDIT_KEY", env_vars["TRANSITIONS_AUDIT_KEY"])
    if blind_key == audit_key:
        raise SettingsError("TRANSITIONS_BLIND_INDEX_KEY and TRANSITIONS_AUDIT_KEY must be different keys")

    app = dict(data["app"])
    if url := env_vars.get("TRANSITIONS_PUBLIC_BASE_URL"):
        app["public_base_url"] = url
    if hosts := env_vars.get("TRANSITIONS_TRUSTED_HOSTS"):
        app["trusted_hosts"] = [h.strip() for h in hosts.split(",") if h.strip()]
    app["trusted_hosts"] = tuple(app["trusted_hosts"])
    mail = dict(data["mail"])
    for name, key, cast in (("TRANSITIONS_SMTP_HOST", "smtp_host", str), ("TRANSITIONS_SMTP_PORT", "smtp_port", int),
                            ("TRANSITIONS_SMTP_USERNAME", "smtp_username", str),
                            ("TRANSITIONS_SMTP_PASSWORD", "smtp_password", str)):
        if name in env_vars:
            mail[key] = cast(env_vars[name])

    settings = Settings(
        env=env,
        instance_path=instance_path,
        database_url=env_vars["TRANSITIONS_DATABASE_URL"],
        redis_url=env_vars.get("TRANSITIONS_REDIS_URL", ""),
        app=AppSettings(**app),
        session=SessionSettings(**data["session"]),
        sign_in=SignInSettings(**data["sign_in"]),
        setup_link_expiry_hours=int(data["setup_links"]["expiry_hours"]),
        passwords=PasswordSettings(**data["passwords"]),
        mail=MailSettings(**mail),
        record=RecordSettings(**data["record"]),
        transitions=TransitionSettings(**data["transitions"]),
        packs=PackSettings(**data["packs"]),
        secrets=Secrets(secret_key=secret_key, keyring=env_vars["TRANSITIONS_KEYRING"],
                        blind_index_key=blind_key, audit_key=audit_key),
        generated_dev_secrets=generated,
        forms_dir=Path(env_vars["TRANSITIONS_FORMS_DIR"]) if env_vars.get("TRANSITIONS_FORMS_DIR") else FORMS_DIR,
        operations=OperationsSettings(**data.get("operations", {})),
    )
    check_safe(settings)
    if env == "development":
        print(
            "\n*** DEVELOPMENT MODE: keys are read from "
            f"{instance_path / 'dev-secrets.toml'}{' (just generated)' if generated else ''}. "
            "Never use this mode for real data. ***\n",
            file=sys.stderr,
        )
    return settings


def check_safe(settings: Settings) -> None:
    """Refuse settings that are unsafe outside development (R46, R65)."""
    if settings.env == "development":
        return
    problems = []
    if settings.app.debug:
        problems.append("debug must be off")
    if not settings.session.cookie_secure:
        problems.append("session cookies must be Secure")
    if not settings.session.cookie_name.startswith("__Host-"):
        problems.append("the session cookie name must start with __Host-")
    if not settings.app.trusted_hosts:
        problems.append("trusted_hosts must list the service's host names (TRANSITIONS_TRUSTED_HOSTS)")
    if not settings.app.public_base_url.startswith("https://"):
        problems.append("public_base_url must be an https:// address (TRANSITIONS_PUBLIC_BASE_URL)")
    if settings.app.max_content_length <= 0:
        problems.append("max_content_length must be set")
    if settings.session.idle_minutes > 30 or settings.session.absolute_hours > 10:
        problems.append("staff sessions may last at most 30 minutes idle and 10 hours in all")
    packs = settings.packs
    if not packs.session_cookie_name.startswith("__Host-"):
        problems.append("the recipient session cookie name must start with __Host-")
    if not 1 <= packs.link_expiry_days <= 14:
        problems.append("recipient links may last 1 to 14 days")
    if not 1 <= packs.blob_retention_days <= 90:
        problems.append("pack files must be purged 1 to 90 days after the pack is finished with")
    if packs.session_idle_minutes > 15 or packs.session_absolute_minutes > 60 or packs.code_minutes > 10:
        problems.append("recipient sessions may last at most 15 minutes idle and 60 in all; codes 10 minutes")
    if settings.mail.transport != "smtp" and settings.env == "production":
        problems.append("production mail must go through SMTP")
    if problems:
        raise SettingsError("Refusing to start with unsafe settings: " + "; ".join(problems))
