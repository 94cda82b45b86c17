"""Access rules (deny by default) and security headers, each in one place."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, abort, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import audit
from transitions.services.roles import Role

F = TypeVar("F", bound=Callable[..., Any])

#: Endpoints that serve files only and need no rule of their own.
ASSET_ENDPOINTS = frozenset({"static", "govuk_assets.static"})


@dataclass(frozen=True)
class AccessRule:
    """Who may reach an endpoint. `public` pages need no account; staff pages need a signed-in user."""

    public: bool
    roles: frozenset[Role] = frozenset()
    development_only: bool = False

    def describe(self) -> str:
        if self.public:
            return "public"
        return "staff: " + ", ".join(sorted(r.value for r in self.roles))


def public(view: F) -> F:
    view.access_rule = AccessRule(public=True)  # type: ignore[attr-defined]
    return view


def staff(*roles: Role) -> Callable[[F], F]:
    """Only signed-in staff with one of these roles (all staff roles when none are named)."""
    allowed = frozenset(roles) or frozenset(Role)

    def decorate(view: F) -> F:
        view.access_rule = AccessRule(public=False, roles=allowed)  # type: ignore[attr-defined]
        return view

    return decorate


def rate_limited(view: F) -> F:
    """Mark a view for the coarse per-IP limit on its POSTs (applied when the app is built)."""
    view.ip_rate_limited = True  # type: ignore[attr-defined]
    return view


def rule_for(app: Flask, endpoint: str | None) -> AccessRule | None:
    if endpoint is None:
        return None
    view = app.view_functions.get(endpoint)
    return getattr(view, "access_rule", None)


def enforce_access_rules(app: Flask) -> None:
    @app.before_request
    def check_access() -> BaseResponse | None:
        endpoint = request.endpoint
        if endpoint is None or endpoint in ASSET_ENDPOINTS:
            return None  # 404/405 are raised by routing before any view runs
        rule = rule_for(app, endpoint)
        if rule is None:
            app.logger.error("endpoint %s has no access rule: denied", endpoint)
            abort(403)
        if rule.public:
            return None
        user = g.get("staff")
        if user is None:
            if request.method in ("GET", "HEAD"):
                return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
            abort(401)
        if user.role not in rule.roles:
            from transitions.web.context import actor, deps

            audit.log_event(deps(), actor(), "access.denied", outcome="denied", details={"endpoint": endpoint})
            abort(403)
        return None


def csp_header(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


STATIC_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow, noarchive",
}


def csp_nonce() -> str:
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return str(nonce)


def install_security_headers(app: Flask) -> None:
    app.add_template_global(csp_nonce)

    @app.after_request
    def add_headers(response: Response) -> Response:
        if "sandbox" not in response.headers.get("Content-Security-Policy", ""):  # file downloads keep theirs (R61)
            response.headers["Content-Security-Policy"] = csp_header(csp_nonce())
        for name, value in STATIC_HEADERS.items():
            response.headers[name] = value
        if request.endpoint in ASSET_ENDPOINTS and response.status_code < 400:
            response.headers["Cache-Control"] = "public, max-age=3600"
        else:
            # Any page may show personal data or a form token: never keep it in a cache (R63).
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        response.headers.pop("Server", None)
        return response


def endpoints_without_rules(app: Flask, exempt: Iterable[str] = ASSET_ENDPOINTS) -> list[str]:
    return sorted(e for e in app.view_functions if e not in exempt and rule_for(app, e) is None)
