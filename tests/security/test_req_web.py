"""Web hardening (security.md C9: R63–R66) beyond tests/security/test_headers.py: the headers on every staff
route and every error status, the autoescape rule as a lint, and the production self-check's remaining values.
"""

from __future__ import annotations

import ast
import re
import uuid
from datetime import timedelta

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from tests.conftest import make_staff, post_form, sign_in, test_environ
from tests.integration.test_child_record import record  # noqa: F401 - a fixture
from tests.security.test_headers import CSP, EXPECTED
from transitions.paths import REPO_ROOT, TEMPLATES_DIR
from transitions.settings import SettingsError, load_settings
from transitions.web.security import rule_for

pytestmark = pytest.mark.security

NO_STORE = "no-store"


def _assert_hardened(response, what: str) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (what, name)
    csp = response.headers["Content-Security-Policy"]
    assert CSP.match(csp) or csp == "sandbox; default-src 'none'", (what, csp)
    assert response.headers["Cache-Control"] == NO_STORE, what
    assert "Server" not in response.headers, what


def _urls_for(app, child_id: uuid.UUID):
    """Every GET route with the test child's id where a child is named and fresh random ids elsewhere."""
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static", "govuk_assets.static"):
            continue
        url = rule.rule.replace("<uuid:child_id>", str(child_id))
        url = re.sub(r"<uuid:[a-z_]+>", lambda _m: str(uuid.uuid4()), url)
        url = re.sub(r"<any\(([a-z_]+)[^>]*>", r"\1", url)
        yield rule.endpoint, re.sub(r"<[a-z_]+>", "RISK", url)


@pytest.mark.parametrize("who", ["worker", "admin"])
def test_every_get_route_carries_every_header_for_signed_in_staff(app, client, deps, clock, record, who):  # noqa: F811
    """R63 over the whole URL map: pages that render (200), refusals (403), unknown ids (404) and redirects."""
    account = record.worker if who == "worker" else make_staff(deps, role="admin")
    sign_in(client, account, clock)
    statuses: dict[int, int] = {}
    for endpoint, url in _urls_for(app, record.child_id):
        if rule_for(app, endpoint) is None or endpoint.startswith("dev."):
            continue
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        _assert_hardened(response, url)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert app.jinja_env.autoescape("page.html") is True  # R64: the environment escapes .html templates
    assert statuses.get(200, 0) >= 8 and (statuses.get(403, 0) + statuses.get(404, 0)) >= 5, statuses


def test_413_429_500_csrf_and_recipient_error_pages_carry_every_header(app, client, deps, clock):
    from transitions.web.security import public

    @public
    def explode() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/explode-headers", "explode_headers", explode)  # before the first request
    too_big = client.post("/sign-in", data={"email": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    assert too_big.status_code == 413
    _assert_hardened(too_big, "413")

    victim = make_staff(deps)
    for _ in range(5):
        post_form(client, "/sign-in", {"email": victim.email, "password": "wrong password guess 123"})
    throttled = post_form(client, "/sign-in", {"email": victim.email, "password": "wrong password guess 123"})
    assert throttled.status_code == 429
    _assert_hardened(throttled, "429")

    stale = client.post("/sign-in", data={"email": "x@example.gov.uk", "password": "p", "csrf_token": "stale"})
    assert stale.status_code == 400 and "the form was out of date" in stale.get_data(as_text=True)
    _assert_hardened(stale, "400 CSRF")

    failed = client.get("/explode-headers")
    assert failed.status_code == 500
    _assert_hardened(failed, "500")

    # the no-account side: an unknown link, and recipient pages without a session
    for url in ("/r/" + "A" * 43, "/recipient/pack", "/recipient/pack/download"):
        response = client.get(url)
        assert response.status_code in (401, 403, 404, 410), url
        _assert_hardened(response, url)


# ---- R64: autoescape everywhere; Markup only in reviewed helpers ----------------------------------------------

#: The only functions allowed to build Markup from a string: each escapes every piece of data it inserts.
REVIEWED_MARKUP = {("transitions/web/auth.py", "_qr_svg"), ("transitions/web/charts.py", "bar_chart"),
                   ("transitions/web/templating.py", "isolate")}  # a fixed tag around escaped text (attack #36)


def test_markup_is_built_only_in_reviewed_helpers_and_no_template_is_built_from_a_string():
    found = set()
    for path in sorted((REPO_ROOT / "transitions").rglob("*.py")):
        source = path.read_text()
        assert "render_template_string" not in source, path
        if "Markup" not in source:
            continue
        tree = ast.parse(source, filename=str(path))
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
                name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
                if name == "Markup" and call.args:
                    found.add((str(path.relative_to(REPO_ROOT)), func.name))
    assert found == REVIEWED_MARKUP


def test_no_template_turns_autoescape_off_or_marks_data_safe():
    offenders = []
    for path in sorted(TEMPLATES_DIR.rglob("*.html")):
        text = path.read_text()
        if re.search(r"\|\s*safe\b|autoescape\s+false|filter\s+safe", text):
            offenders.append(str(path.relative_to(TEMPLATES_DIR)))
    assert offenders == []


# ---- R65: the production self-check and what Flask is given -------------------------------------------------


def _production(tmp_path, **extra):
    env = test_environ("postgresql://db/transitions", tmp_path, TRANSITIONS_ENV="production",
                       TRANSITIONS_PUBLIC_BASE_URL="https://transitions.example-council.gov.uk",
                       TRANSITIONS_TRUSTED_HOSTS="transitions.example-council.gov.uk")
    env.update(extra)
    return env


@pytest.mark.parametrize("toml,message", [
    ("[app]\nmax_content_length = 0\n", "max_content_length"),
    ("[session]\nabsolute_hours = 11\n", "10 hours"),
    ("[packs]\nsession_idle_minutes = 60\n", "15 minutes idle"),
    ("[packs]\nsession_cookie_name = \"recipient\"\n", "recipient session cookie"),
])
def test_more_unsafe_settings_are_refused_outside_development(tmp_path, toml, message):
    extra = tmp_path / "council.toml"
    extra.write_text(toml)
    with pytest.raises(SettingsError, match=message):
        load_settings(_production(tmp_path, TRANSITIONS_CONFIG=str(extra)))


def test_production_settings_give_flask_the_hardened_values(tmp_path):
    """What create_app hands Flask and Werkzeug for a production configuration: https URLs, a session lifetime
    far below Flask's 31-day default, request and form-part limits, trusted hosts and a ProxyFix that trusts
    exactly the configured number of proxies (and never X-Forwarded-Host)."""
    from flask import Flask

    from transitions.app import configure_flask

    settings = load_settings(_production(tmp_path))
    app = Flask(__name__)
    configure_flask(app, settings)
    assert app.config["DEBUG"] is False
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert app.config["PERMANENT_SESSION_LIFETIME"] <= timedelta(hours=10)
    assert app.config["MAX_CONTENT_LENGTH"] == 20 * 1024 * 1024
    assert app.config["MAX_FORM_PARTS"] <= 100
    assert app.config["TRUSTED_HOSTS"] == ["transitions.example-council.gov.uk"]
    assert isinstance(app.wsgi_app, ProxyFix)
    assert app.wsgi_app.x_for == settings.app.proxy_count == 1
    assert app.wsgi_app.x_proto == 1 and app.wsgi_app.x_host == 0
