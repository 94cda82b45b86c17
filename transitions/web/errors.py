"""GOV.UK-style error pages for every status we return, with a reference instead of technical detail."""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, g, render_template, request, session
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from transitions.crypto import CryptoError
from transitions.services import audit
from transitions.services.errors import StoreUnavailableError
from transitions.web.context import actor, deps
from transitions.web.security import rule_for

PAGES = {400, 401, 403, 404, 405, 410, 413, 429, 500, 503}
#: Seconds a client is asked to wait when the database does not answer (a restart takes about this long).
RETRY_AFTER_SECONDS = 30


def correlation_id() -> str:
    cid = g.get("correlation_id")
    if cid is None:
        cid = g.correlation_id = secrets.token_hex(6)
    return str(cid)


def database_unreachable(exc: BaseException) -> bool:
    """The database did not answer (down, restarting, connection cut, pool exhausted, disk full, locked): the
    transaction was rolled back, so "try again" is the true answer. Other database errors (a broken constraint)
    are bugs and stay 500s."""
    if isinstance(exc, InterfaceError | DisconnectionError | PoolTimeoutError | StoreUnavailableError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    # OperationalError also covers a bad statement, a missing table (a migration not run) or a deadlock: bugs
    # that must stay visible as 500s with their traceback. Only these mean the database did not answer.
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    if sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    return any(words in str(exc.orig).lower() for words in _UNAVAILABLE_MESSAGES)


#: PostgreSQL: connection exceptions, insufficient resources (disk full, out of memory), operator intervention
#: (shutdown, crash recovery), and "cannot connect now" (starting up).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
#: The drivers' words for a server that is gone, when there is no SQLSTATE (psycopg connection failures, sqlite3).
_UNAVAILABLE_MESSAGES = ("database is locked", "disk i/o error", "unable to open database", "database or disk is full",
                         "connection refused", "could not connect", "server closed the connection",
                         "connection is closed", "terminating connection", "the database system is",
                         "no connection to the server", "connection timeout expired", "consuming input failed")


def _unavailable_page() -> Response:
    try:
        page = Response(render_template("errors/503.html"), ServiceUnavailable.code)
    except Exception:  # the page itself could not be built: still answer, with headers
        current_app.logger.exception("error page failed ref=%s", correlation_id())
        page = Response(f"Sorry, the service is unavailable. Please try again in a minute. Reference: "
                        f"{correlation_id()}\n", ServiceUnavailable.code, mimetype="text/plain")
    page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return page


def refuse_staff_pages_without_store() -> None:
    """A signed-in member of staff whose session the database cannot load is not sent to the sign-in page (which
    would lose where they were and ask for a password that cannot be checked): staff pages answer 503 until the
    database is back, and the same cookie works again then. Public pages are served signed-out, as before."""
    if getattr(session, "store_unavailable", False):
        rule = rule_for(current_app, request.endpoint)
        if rule is not None and not rule.public:
            raise ServiceUnavailable()


def record_undecryptable(exc: CryptoError) -> None:
    """R47: the failure goes on the audit trail too, naming the record (table and id), never a value. In a
    transaction of its own (the request's has already rolled back); if even that fails, the page still answers."""
    table, row_id = exc.location or (None, None)
    try:
        audit.log_event(deps(), actor(), "record.undecryptable", object_type=table, object_id=row_id,
                        outcome="failed", details={"kind": type(exc).__name__})
    except Exception as failure:  # the page must still be shown
        current_app.logger.error("decryption failure not audited ref=%s kind=%s", correlation_id(),
                                 type(failure).__name__)


def register_error_pages(app: Flask) -> None:
    app.add_template_global(correlation_id)
    # First of the before-request functions: the access check that follows would redirect to the sign-in page.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_staff_pages_without_store)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        app.logger.info("csrf rejected ref=%s", correlation_id())
        return render_template("errors/csrf.html"), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str | Response, int]:
        code = exc.code or 500
        if request_ctx.url_adapter is None:
            # The Host header is not one of ours: no page can be built for an unknown host, and none should be.
            return Response("Bad request: unknown host\n", mimetype="text/plain"), 400
        if code == 503:
            return _unavailable_page(), code
        if code == 401:
            code = 403
        template = f"errors/{code}.html" if code in PAGES else "errors/500.html"
        extra = {}
        if code == 429:
            extra["retry_after_minutes"] = 5
        return render_template(template, **extra), code

    @app.errorhandler(CryptoError)
    def undecryptable(exc: CryptoError) -> tuple[str, int]:
        # R47: never show blank data as if it were real; the reference lets support find the record.
        app.logger.error("decryption failed ref=%s kind=%s", correlation_id(), type(exc).__name__)
        record_undecryptable(exc)
        return render_template("errors/500.html", undecryptable=True), 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str | Response, int]:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        if database_unreachable(exc):
            # R72: logged for the alert (the kind only: the statement and its values stay out of the log).
            app.logger.error("database unavailable ref=%s kind=%s", correlation_id(),
                             type(getattr(exc, "orig", None) or exc).__name__)
            return _unavailable_page(), ServiceUnavailable.code
        app.logger.exception("unhandled error ref=%s", correlation_id())
        try:
            return render_template("errors/500.html"), InternalServerError.code
        except Exception:  # the page itself could not be built (database down): still answer, with headers
            app.logger.exception("error page failed ref=%s", correlation_id())
            text = f"Sorry, there is a problem with the service. Reference: {correlation_id()}\n"
            return Response(text, mimetype="text/plain"), InternalServerError.code
