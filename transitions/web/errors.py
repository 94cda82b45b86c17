"""GOV.UK-style error pages for every status we return, with a reference instead of technical detail."""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, render_template
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from transitions.crypto import CryptoError

PAGES = {400, 401, 403, 404, 405, 410, 413, 429, 500}


def correlation_id() -> str:
    cid = g.get("correlation_id")
    if cid is None:
        cid = g.correlation_id = secrets.token_hex(6)
    return str(cid)


def register_error_pages(app: Flask) -> None:
    app.add_template_global(correlation_id)

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
        return render_template("errors/500.html", undecryptable=True), 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str | Response, int]:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        app.logger.exception("unhandled error ref=%s", correlation_id())
        try:
            return render_template("errors/500.html"), InternalServerError.code
        except Exception:  # the page itself could not be built (database down): still answer, with headers
            app.logger.exception("error page failed ref=%s", correlation_id())
            text = f"Sorry, there is a problem with the service. Reference: {correlation_id()}\n"
            return Response(text, mimetype="text/plain"), InternalServerError.code
