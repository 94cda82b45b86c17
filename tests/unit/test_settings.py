"""Settings fail closed outside development (R46, R65)."""

from __future__ import annotations

import pytest

from tests.conftest import test_environ
from transitions.settings import SettingsError, load_settings


def _production(tmp_path, **extra):
    env = test_environ("postgresql://db/transitions", tmp_path, TRANSITIONS_ENV="production",
                       TRANSITIONS_PUBLIC_BASE_URL="https://transitions.example-council.gov.uk",
                       TRANSITIONS_TRUSTED_HOSTS="transitions.example-council.gov.uk")
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def test_production_is_the_default_and_starts_with_everything_set(tmp_path):
    env = _production(tmp_path)
    env.pop("TRANSITIONS_ENV")
    settings = load_settings(env)
    assert settings.env == "production"
    assert settings.session.cookie_name == "__Host-session" and settings.session.cookie_secure
    assert "secret" not in repr(settings).lower() or "secret_key=" not in repr(settings)


@pytest.mark.parametrize("missing", ["TRANSITIONS_SECRET_KEY", "TRANSITIONS_KEYRING", "TRANSITIONS_DATABASE_URL",
                                     "TRANSITIONS_BLIND_INDEX_KEY", "TRANSITIONS_AUDIT_KEY"])
def test_production_refuses_to_start_without_a_secret(tmp_path, missing):
    env = _production(tmp_path)
    del env[missing]
    with pytest.raises(SettingsError, match=missing):
        load_settings(env)


@pytest.mark.parametrize("secret", ["dev", "changeme", "x" * 31])
def test_weak_secret_key_is_refused(tmp_path, secret):
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings(_production(tmp_path, TRANSITIONS_SECRET_KEY=secret))


def test_short_or_reused_keys_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(_production(tmp_path, TRANSITIONS_AUDIT_KEY="c2hvcnQ"))
    env = _production(tmp_path)
    env["TRANSITIONS_AUDIT_KEY"] = env["TRANSITIONS_BLIND_INDEX_KEY"]
    with pytest.raises(SettingsError, match="different"):
        load_settings(env)


@pytest.mark.parametrize("toml,message", [
    ("[app]\ndebug = true\n", "debug"),
    ("[session]\ncookie_secure = false\n", "Secure"),
    ("[session]\ncookie_name = \"session\"\n", "__Host-"),
    ("[app]\ntrusted_hosts = []\n", "trusted_hosts"),
    ("[session]\nidle_minutes = 600\n", "30 minutes"),
])
def test_unsafe_settings_are_refused_outside_development(tmp_path, toml, message):
    extra = tmp_path / "council.toml"
    extra.write_text(toml)
    env = _production(tmp_path, TRANSITIONS_CONFIG=str(extra))
    if "trusted_hosts" in toml:
        del env["TRANSITIONS_TRUSTED_HOSTS"]
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_plain_http_public_address_is_refused_in_production(tmp_path):
    with pytest.raises(SettingsError, match="https"):
        load_settings(_production(tmp_path, TRANSITIONS_PUBLIC_BASE_URL="http://transitions.example"))


def test_development_generates_keys_once_and_says_so(tmp_path, capsys):
    env = {"TRANSITIONS_ENV": "development", "TRANSITIONS_INSTANCE_PATH": str(tmp_path / "instance")}
    first = load_settings(env)
    assert first.generated_dev_secrets
    assert "DEVELOPMENT MODE" in capsys.readouterr().err
    assert (tmp_path / "instance" / "dev-secrets.toml").stat().st_mode & 0o077 == 0
    second = load_settings(env)
    assert not second.generated_dev_secrets
    assert second.secrets.keyring == first.secrets.keyring
    assert second.database_url.startswith("sqlite:///") and "instance" in second.database_url
