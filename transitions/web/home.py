"""The signed-in home page, service information pages and the health check."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from transitions.web.security import public, staff

bp = Blueprint("home", __name__)


@bp.get("/")
@public
def index() -> str | BaseResponse:
    user = g.get("staff")
    if user is None:
        return redirect(url_for("auth.sign_in"))
    from transitions.services import alerts, follow_up, tasks
    from transitions.web.context import actor, deps

    open_escalations, acknowledged = follow_up.dashboard(deps(), user, actor())
    work = tasks.my_work(deps(), user, actor(), counting=True)
    return render_template("home/index.html", open_escalations=open_escalations, acknowledged=acknowledged,
                           tasks_due=len(work), tasks_overdue=sum(1 for t in work if t.overdue),
                           ops_alerts=alerts.for_administrators(deps(), user))


@bp.get("/home")
@staff()
def dashboard() -> BaseResponse:
    return redirect(url_for("home.index"))


@bp.get("/favicon.ico")
@public
def favicon() -> BaseResponse:
    """Browsers ask for it on every site. The GOV.UK icons are the crown, so there is none until the council
    supplies its own: answer 204 rather than a 404 in every console."""
    from flask import Response

    return Response(status=204)


@bp.get("/healthz")
@public
def healthz() -> BaseResponse:
    """No data, no database detail: only that the process answers."""
    return jsonify(status="ok")


@bp.get("/accessibility")
@public
def accessibility() -> str:
    return render_template("home/accessibility.html")


@bp.get("/privacy")
@public
def privacy() -> str:
    return render_template("home/privacy.html")


@bp.get("/contact")
@public
def contact() -> str:
    return render_template("home/contact.html")
