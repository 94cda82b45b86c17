"""Security headers pinned to exact values on pages, errors and assets (R63)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.security

EXPECTED = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow, noarchive",
}
CSP = re.compile(
    r"^default-src 'none'; script-src 'self' 'nonce-([A-Za-z0-9_-]{22})'; style-src 'self'; img-src 'self'; "
    r"font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    r"object-src 'none'$"
)


@pytest.mark.parametrize("path,status", [("/sign-in", 200), ("/no-such-page", 404), ("/sign-out", 405),
                                         ("/setup/" + "a" * 43, 410), ("/healthz", 200)])
def test_pages_and_errors_carry_every_header(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    for name, value in EXPECTED.items():
        assert response.headers[name] == value, name
    match = CSP.match(response.headers["Content-Security-Policy"])
    assert match, response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    if response.mimetype == "text/html":
        html = response.get_data(as_text=True)
        for script in re.findall(r"<script\b[^>]*>", html):
            assert f'nonce="{match.group(1)}"' in script or "src=" in script


def test_nonce_differs_per_response(client):
    first = CSP.match(client.get("/sign-in").headers["Content-Security-Policy"]).group(1)
    second = CSP.match(client.get("/sign-in").headers["Content-Security-Policy"]).group(1)
    assert first != second


def test_too_large_request_gets_413_page(client, app):
    response = client.post("/sign-in", data={"email": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True).lower()
    assert response.headers["Cache-Control"] == "no-store"


def test_untrusted_host_is_refused(client):
    response = client.get("/sign-in", headers={"Host": "evil.example"})
    assert response.status_code == 400


def test_debug_console_is_not_there(client):
    assert client.get("/console").status_code == 404


def test_server_error_page_has_reference_and_no_detail(app, client):
    from transitions.web.security import public

    @public
    def explode() -> str:
        raise RuntimeError("sqlalchemy /etc/secret Traceback")

    app.add_url_rule("/explode", "explode", explode)
    response = client.get("/explode")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Sorry, there is a problem with the service" in html and "Reference:" in html
    for leak in ("Traceback", "sqlalchemy", "/etc/secret", "RuntimeError"):
        assert leak not in html
