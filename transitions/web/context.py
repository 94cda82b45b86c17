"""Small helpers views share: the service dependencies, the acting person and the server session."""

from __future__ import annotations

from flask import current_app, g, request, session

from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.web.sessions import ServerSession


def deps() -> ServiceDeps:
    found: ServiceDeps = current_app.extensions["transitions"]
    return found


def server_session() -> ServerSession:
    assert isinstance(session._get_current_object(), ServerSession)  # type: ignore[attr-defined]
    return session._get_current_object()  # type: ignore[attr-defined,no-any-return]


def actor() -> Actor:
    """The person acting, for the audit trail: an id, never a name or email."""
    user = g.get("staff")
    ua = request.user_agent.string[:200] if request.user_agent.string else None
    if user is not None:
        return Actor("staff", str(user.id), request.remote_addr, ua)
    return Actor("anonymous", None, request.remote_addr, ua)
