"""The recipient's pages (no account): the link's landing page, the code, the pack, confirming receipt.

A GET changes nothing (mail scanners fetch and even click): sending a code, checking it, confirming and
asking for information are POSTs. The session cookie is set on the response to the code's POST, which is
same-site, so the first navigation (through a Safe Links redirect, cross-site) needs no cookie. After
verification the browser moves to token-free addresses (/recipient/...).

The link's two forms (send a code, enter it) carry no form token: a token lives in a server-side session, and
a session row for every fetch would let mail scanners fill the table. Those two POSTs are checked by Origin
instead (OWASP's "verifying origin with standard headers"), which every browser sends on a POST.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import receipt
from transitions.services.audit import Actor
from transitions.web.context import deps
from transitions.web.forms import posted
from transitions.web.recipient_forms import (
    CloseForm,
    InformationRequestForm,
    ReceiptForm,
    RecipientCodeForm,
    SendCodeForm,
)
from transitions.web.section_forms import show_errors
from transitions.web.security import public, rate_limited

bp = Blueprint("recipient", __name__)


def same_origin() -> None:
    """Refuse a POST whose Origin (or, lacking one, Referer) is not this service: the configured address's
    scheme and port, and one of its host names (compared as host names: case and default ports do not matter)."""
    app = deps().settings.app
    expected = urlsplit(app.public_base_url)
    sent = request.headers.get("Origin") or request.headers.get("Referer") or ""
    try:
        got = urlsplit(sent)
        ports = (got.port or _DEFAULT_PORTS.get(got.scheme), expected.port or _DEFAULT_PORTS.get(expected.scheme))
    except ValueError:  # a port that is not a number
        raise CSRFError("The request did not come from this service's own page.") from None
    hosts = {h.lower() for h in (*app.trusted_hosts, expected.hostname or "")}
    if not sent or got.scheme != expected.scheme or (got.hostname or "") not in hosts or ports[0] != ports[1]:
        raise CSRFError("The request did not come from this service's own page.")


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _actor() -> Actor:
    ua = request.user_agent.string[:200] if request.user_agent.string else None
    return Actor("recipient", None, request.remote_addr, ua)


def _sid() -> str | None:
    return request.cookies.get(deps().settings.packs.session_cookie_name)


def _set_cookie(response: BaseResponse, sid: str) -> None:
    rules = deps().settings
    response.set_cookie(rules.packs.session_cookie_name, sid, path="/", secure=rules.session.cookie_secure,
                        httponly=True, samesite="Strict")


def _clear_cookie(response: BaseResponse) -> None:
    rules = deps().settings
    response.delete_cookie(rules.packs.session_cookie_name, path="/", secure=rules.session.cookie_secure,
                           httponly=True, samesite="Strict")


@bp.errorhandler(receipt.LinkUnknownError)
def unknown(_exc: receipt.LinkUnknownError) -> tuple[str, int]:
    return render_template("errors/404.html"), 404


@bp.errorhandler(receipt.LinkClosedError)
def closed(exc: receipt.LinkClosedError) -> BaseResponse:
    response = Response(render_template("recipient/closed.html", sender=exc.sender, contact=exc.contact,
                                        replaced=exc.replaced), 410)
    _clear_cookie(response)
    return response


@bp.errorhandler(receipt.RecipientSessionEndedError)
def session_ended(_exc: receipt.RecipientSessionEndedError) -> BaseResponse:
    response = Response(render_template("recipient/session_ended.html"), 401)
    _clear_cookie(response)
    return response


@bp.errorhandler(receipt.RecipientLimitError)
def limited(exc: receipt.RecipientLimitError) -> BaseResponse:
    response = Response(render_template("recipient/limited.html", message=exc.message,
                                        minutes=max(1, exc.retry_after // 60)), 429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@bp.route("/r/<token>", methods=["GET", "HEAD"])
@public
@rate_limited
def landing(token: str) -> str:
    """Who sent it, for whom, until when, and a button. No child's name or detail, nothing consumed. Its GETs
    share the generous per-IP page limit, so one address cannot probe invented links without end (attack #6)."""
    page = receipt.landing(deps(), token, _actor())
    return render_template("recipient/landing.html", page=page, token=token, form=SendCodeForm())


@bp.post("/r/<token>/code")
@public
@rate_limited
def send_code(token: str) -> BaseResponse:
    same_origin()
    result = receipt.send_code(deps(), token, _actor())
    if result.sent:
        return redirect(url_for("recipient.enter_code", token=token))
    return redirect(url_for("recipient.enter_code", token=token, wait="1"))


@bp.route("/r/<token>/enter-code", methods=["GET", "POST"])
@public
@rate_limited
def enter_code(token: str) -> str | BaseResponse:
    if request.method == "POST":
        same_origin()  # first: a forged POST learns nothing, not even whether the link exists
    # An expired or revoked link says so here, not after typing; the page names the mailbox to look in.
    page = receipt.landing(deps(), token, _actor())
    form = RecipientCodeForm()
    if request.method == "POST":
        try:
            sid = receipt.verify(deps(), token, form.code.data or "", _actor())
        except receipt.CodeRejectedError as exc:
            show_errors(form, {"code": exc.message})
        else:
            response = redirect(url_for("recipient.pack"))
            _set_cookie(response, sid)
            return response
    return render_template("recipient/code.html", form=form, token=token, resend=SendCodeForm(), page=page,
                           waiting=request.args.get("wait") == "1")


@bp.get("/recipient/pack")
@public
def pack() -> str:
    view = receipt.view(deps(), _sid(), _actor())
    return render_template("recipient/pack.html", view=view, doc=view.document, form=ReceiptForm())


@bp.get("/recipient/pack/download")
@public
def download() -> Response:
    file = receipt.download(deps(), _sid(), _actor())
    response = Response(file.data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{file.name}"'
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/recipient/pack/photo")
@public
def photo() -> Response:
    data = receipt.photo(deps(), _sid())
    if data is None:
        abort(404)
    response = Response(data, mimetype="image/jpeg")
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@bp.post("/recipient/confirm")
@public
@rate_limited
def confirm() -> str | BaseResponse:
    form = ReceiptForm()
    posted(form)
    try:
        receipt.confirm(deps(), _sid(), form.name.data or "", form.role.data or "", bool(form.attested.data),
                        _actor())
    except receipt.ReceiptInvalidError as exc:
        show_errors(form, exc.errors)
        view = receipt.view(deps(), _sid(), _actor(), log=False)
        return render_template("recipient/pack.html", view=view, doc=view.document, form=form)
    return redirect(url_for("recipient.confirmed"))


@bp.get("/recipient/confirmed")
@public
def confirmed() -> str | BaseResponse:
    view = receipt.view(deps(), _sid(), _actor(), log=False)
    if view.confirmed_at is None:  # typed in before confirming
        return redirect(url_for("recipient.pack"))
    return render_template("recipient/confirmed.html", view=view)


@bp.route("/recipient/request-information", methods=["GET", "POST"])
@public
@rate_limited
def request_information() -> str | BaseResponse:
    view = receipt.view(deps(), _sid(), _actor(), log=False)
    form = InformationRequestForm()
    form.sections.choices = view.section_choices
    if posted(form):
        try:
            receipt.request_information(deps(), _sid(), list(form.sections.data or []), form.reason.data or "",
                                        form.requested_by.data or "", _actor())
        except receipt.ReceiptInvalidError as exc:
            show_errors(form, exc.errors)
        else:
            return render_template("recipient/request_sent.html", view=view)
    return render_template("recipient/request.html", view=view, form=form)


@bp.post("/recipient/sign-out")
@public
def sign_out() -> BaseResponse:
    form = CloseForm()
    if not form.validate_on_submit():
        abort(400)
    receipt.end_session(deps(), _sid())
    response = Response(render_template("recipient/signed_out.html"))
    _clear_cookie(response)
    return response


#: The views CSRFProtect leaves to :func:`same_origin` (the app factory exempts them).
ORIGIN_CHECKED_VIEWS = (send_code, enter_code)
