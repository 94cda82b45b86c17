"""A Flask SessionInterface backed by the staff_session table (server-side sessions, R6–R9)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Flask, Request, Response, current_app
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from transitions.services import accounts
from transitions.services import sessions as session_store
from transitions.services.accounts import StaffView
from transitions.services.deps import ServiceDeps
from transitions.services.errors import StoreUnavailableError


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """Session data lives on the server; the cookie holds only a random 256-bit id."""

    def __init__(self, sid: str | None, record: session_store.SessionRecord | None = None) -> None:
        def on_update(self: ServerSession) -> None:
            self.modified = True

        super().__init__(record.data if record else {}, on_update)
        self.sid = sid
        self.new = sid is None
        self.modified = False
        self.user_id: uuid.UUID | None = record.user_id if record else None
        self.authenticated_at: datetime | None = record.authenticated_at if record else None
        #: The person as read with the stored session, valid while user_id is still the one read.
        self._stored_user_id = self.user_id
        self._stored_staff: StaffView | None = record.staff if record else None
        self.superseded_sid: str | None = None
        self.store_unavailable = False

    def signed_in_staff(self, deps: ServiceDeps) -> StaffView | None:
        """The signed-in person if they may still act, else None (disabled since the session began). Read with
        the session when it was opened; read again only if the session changed hands since."""
        if self.user_id is None:
            return None
        if self.sid is not None and self.user_id == self._stored_user_id:
            return self._stored_staff
        return accounts.active_user(deps, self.user_id)

    def regenerate(self) -> None:
        """New id for the same browser (at sign-in and privilege change) so a fixed id is useless."""
        if self.sid is not None and self.superseded_sid is None:
            self.superseded_sid = self.sid
        self.sid = None
        self.modified = True

    def start_staff_session(self, user_id: uuid.UUID, now: datetime) -> None:
        self.clear()
        self.regenerate()
        self.user_id = user_id
        self.authenticated_at = now

    def end(self) -> None:
        """Sign out: the server record is deleted, so a replayed cookie finds nothing.

        The browser gets a fresh anonymous session only if something (a flash message) needs one.
        """
        self.clear()
        self.regenerate()
        self.user_id = None
        self.authenticated_at = None


def _deps() -> ServiceDeps:
    deps: ServiceDeps = current_app.extensions["transitions"]
    return deps


class ServerSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        name = _deps().settings.session.cookie_name
        sid = request.cookies.get(name)
        if sid and 20 <= len(sid) <= 100:
            try:
                record = session_store.load(_deps(), sid)
            except StoreUnavailableError:
                # The database is unreachable: serve the error page as a signed-out visitor, store nothing.
                app.logger.exception("session store unavailable")
                unavailable = ServerSession(None)
                unavailable.store_unavailable = True
                return unavailable
            if record is not None:
                return ServerSession(sid, record)
        return ServerSession(None)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        if session.store_unavailable:
            return
        deps = _deps()
        rules = deps.settings.session
        if session.superseded_sid:
            session_store.delete_session(deps, session.superseded_sid)
        if not session.modified:
            return
        if not session and session.user_id is None:
            # Nothing worth keeping: no record, no cookie.
            if session.sid:
                session_store.delete_session(deps, session.sid)
            if session.sid or session.superseded_sid:
                response.delete_cookie(rules.cookie_name, path="/", secure=rules.cookie_secure, httponly=True,
                                       samesite="Strict")
            return
        create = session.sid is None
        if session.sid is None:
            session.sid = session_store.new_session_id()
        saved = session_store.save(deps, session.sid, session_store.SessionRecord(
            data=dict(session), user_id=session.user_id, authenticated_at=session.authenticated_at), create=create)
        if not saved:  # revoked while this request ran: the browser keeps nothing
            response.delete_cookie(rules.cookie_name, path="/", secure=rules.cookie_secure, httponly=True,
                                   samesite="Strict")
            return
        response.set_cookie(rules.cookie_name, session.sid, path="/", secure=rules.cookie_secure, httponly=True,
                            samesite="Strict")
        response.vary.add("Cookie")
