"""Development-only pages: the local mailbox that stands in for a mail server in `make run`.

The blueprint is registered only when TRANSITIONS_ENV=development.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.services import outbox
from transitions.web.context import deps
from transitions.web.forms import ConfirmForm
from transitions.web.security import public

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.get("/mailbox")
@public
def mailbox() -> str:
    return render_template("dev/mailbox.html", messages=outbox.mailbox_messages(deps()),
                           queued=outbox.recent(deps(), 20),
                           form=ConfirmForm())


@bp.post("/mailbox/deliver")
@public
def deliver() -> BaseResponse:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    report = outbox.deliver_due(deps())
    flash(f"{report.sent} message(s) delivered to the local mailbox.", "success")
    return redirect(url_for("dev.mailbox"))
