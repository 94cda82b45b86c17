"""Sign-in (password then authenticator code), sign-out, account set-up links and the account page."""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import accounts, audit
from transitions.services.errors import (
    AccountLockedError,
    InvalidCodeError,
    InvalidCredentialsError,
    PasswordRejectedError,
    SetupLinkInvalidError,
)
from transitions.web.context import actor, deps, server_session
from transitions.web.forms import (
    ChangePasswordForm,
    CodeForm,
    ConfirmForm,
    EnrolCodeForm,
    NewPasswordForm,
    SignInForm,
)
from transitions.web.security import public, rate_limited, staff

bp = Blueprint("auth", __name__)

ViewResult = str | BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]

#: How long a half-finished sign-in (password accepted, code not yet typed) is kept.
PENDING_SIGN_IN = timedelta(minutes=5)
SIGN_IN_ERROR = "Enter a correct email address and password"


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after signing in."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return url_for("home.index")
    return target


def _locked_message(exc: AccountLockedError) -> str:
    minutes = max(1, int((exc.until - deps().clock.now()).total_seconds() // 60) + 1)
    return f"There have been too many attempts to sign in. Wait {minutes} minutes and try again."


def _locked_headers(exc: AccountLockedError) -> dict[str, str]:
    """Retry-After until the account's lock ends. Without it, Flask-Limiter's headers name the end of its own
    per-IP window (at most 5 minutes), and a client that honours it comes back while still locked out."""
    return {"Retry-After": str(max(1, math.ceil((exc.until - deps().clock.now()).total_seconds())))}


@bp.route("/sign-in", methods=["GET", "POST"])
@public
@rate_limited
def sign_in() -> ViewResult:
    form = SignInForm()
    status = 200
    headers: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            user_id = accounts.check_password(deps(), form.email.data or "", form.password.data or "", actor())
        except InvalidCredentialsError:
            form.password.errors = [SIGN_IN_ERROR]
            status = 200
        except AccountLockedError as exc:
            form.password.errors = [_locked_message(exc)]
            status, headers = 429, _locked_headers(exc)
        else:
            srv = server_session()
            srv["pending_user_id"] = str(user_id)
            srv["pending_since"] = deps().clock.now().isoformat()
            srv["next"] = _safe_next(request.args.get("next"))
            return redirect(url_for("auth.code"))
    elif request.method == "POST":
        status = 200
    return render_template("auth/sign_in.html", form=form), status, headers


def _pending_user() -> UUID | None:
    srv = server_session()
    raw, since = srv.get("pending_user_id"), srv.get("pending_since")
    if not raw or not since:
        return None
    if datetime.fromisoformat(since) + PENDING_SIGN_IN <= deps().clock.now():
        srv.pop("pending_user_id", None)
        return None
    return UUID(raw)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@public
@rate_limited
def code() -> ViewResult:
    user_id = _pending_user()
    if user_id is None:
        flash("Your sign-in took too long. Enter your email address and password again.", "important")
        return redirect(url_for("auth.sign_in"))
    form = CodeForm()
    status = 200
    headers: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            user = accounts.check_code(deps(), user_id, form.code.data or "", actor())
        except InvalidCodeError:
            form.code.errors = ["The code is not correct or has already been used. Wait for a new code"]
        except AccountLockedError as exc:
            form.code.errors = [_locked_message(exc)]
            status, headers = 429, _locked_headers(exc)
        except InvalidCredentialsError:
            return redirect(url_for("auth.sign_in"))
        else:
            srv = server_session()
            target = _safe_next(srv.get("next"))
            srv.start_staff_session(user.id, deps().clock.now())
            return redirect(target)
    return render_template("auth/code.html", form=form), status, headers


@bp.route("/sign-out", methods=["POST"])
@public
def sign_out() -> BaseResponse:
    if g.get("staff") is not None:
        audit.log_event(deps(), actor(), "sign_out", object_type="staff_user", object_id=g.staff.id)
    server_session().end()
    flash("You have signed out.", "success")
    return redirect(url_for("auth.sign_in"))


@bp.route("/account", methods=["GET", "POST"])
@staff()
@rate_limited
def account() -> ViewResult:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = _current()
        try:
            accounts.change_password(deps(), user, form.current.data or "", form.password.data or "", actor())
        except InvalidCredentialsError:
            form.current.errors = ["Your current password is not correct"]
        except AccountLockedError as exc:
            form.current.errors = [_locked_message(exc)]
        except PasswordRejectedError as exc:
            form.password.errors = [exc.message]
        else:
            srv = server_session()
            # A new session id, but the 10-hour limit still counts from the original sign-in.
            srv.start_staff_session(user, srv.authenticated_at or deps().clock.now())
            flash("Your password has been changed. You have been signed out on every other device.", "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, sign_out_form=ConfirmForm())


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@staff()
def sign_out_everywhere() -> BaseResponse:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    accounts.sign_out_everywhere(deps(), _current(), actor())
    server_session().end()
    flash("You have been signed out on every device.", "success")
    return redirect(url_for("auth.sign_in"))


def _current() -> UUID:
    user_id = server_session().user_id
    if user_id is None:
        abort(401)
    return user_id


# ---- set-up link -----------------------------------------------------------------------------------------


def _qr_svg(uri: str) -> Markup:
    """Inline SVG (no data: URL, so the CSP stays strict). The URI is ours, not user text."""
    import qrcode  # imported here: it pulls in Pillow, which nothing else on a sign-in needs
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg"):]
    svg = svg.replace("<svg ", '<svg role="img" aria-labelledby="qr-title" focusable="false" ', 1)
    svg = svg.replace(">", '><title id="qr-title">QR code for your authenticator app</title>', 1)
    return Markup(svg)  # noqa: S704 - generated by qrcode from our own provisioning URI


@bp.route("/setup/<token>", methods=["GET", "POST"])
@public
@rate_limited
def setup(token: str) -> ViewResult:
    try:
        state = accounts.setup_state(deps(), token)
    except SetupLinkInvalidError:
        return render_template("auth/setup_invalid.html"), 410
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.set_initial_password(deps(), token, form.password.data or "", actor())
        except PasswordRejectedError as exc:
            form.password.errors = [exc.message]
        except SetupLinkInvalidError:
            return render_template("auth/setup_invalid.html"), 410
        else:
            return redirect(url_for("auth.setup_authenticator", token=token))
    return render_template("auth/setup_password.html", form=form, state=state)


@bp.route("/setup/<token>/authenticator", methods=["GET", "POST"])
@public
@rate_limited
def setup_authenticator(token: str) -> ViewResult:
    try:
        state = accounts.setup_state(deps(), token)
    except SetupLinkInvalidError:
        return render_template("auth/setup_invalid.html"), 410
    if not state.password_set or state.totp_uri is None or state.totp_secret is None:
        return redirect(url_for("auth.setup", token=token))
    form = EnrolCodeForm()
    if form.validate_on_submit():
        try:
            accounts.confirm_authenticator(deps(), token, form.code.data or "", actor())
        except InvalidCodeError:
            form.code.errors = ["The code is not correct. Check the time on your phone and enter the newest code"]
        except SetupLinkInvalidError:
            return render_template("auth/setup_invalid.html"), 410
        else:
            server_session().clear()
            flash("Your account is ready. Sign in with your email address, password and authenticator app.",
                  "success")
            return redirect(url_for("auth.sign_in"))
    secret = state.totp_secret
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("auth/setup_authenticator.html", form=form, state=state, qr=_qr_svg(state.totp_uri),
                           secret=grouped)


