"""The audit pages: a child's audit trail (auditors and managers, without opening the record), where the child's
packs went (the recipient map, for those who read the record), and the audit trail's integrity check (admins).

Views parse a form or the query string, call a service, render. Who may see what is the services' decision.
"""

from __future__ import annotations

from uuid import UUID

from flask import Blueprint, abort, g, render_template, request

from transitions.services import audit, audit_views, recipient_map
from transitions.services.accounts import StaffView
from transitions.services.roles import Role
from transitions.web.audit_forms import IntegrityForm, LocalIdForm
from transitions.web.children import RECORD_ROLES, install_record_errors
from transitions.web.context import actor, deps
from transitions.web.forms import posted
from transitions.web.security import staff

bp = Blueprint("audit", __name__)
install_record_errors(bp)

AUDIT_ROLES = tuple(sorted(audit_views.AUDIT_ROLES))


def _user() -> StaffView:
    user: StaffView = g.staff
    return user


def _page() -> int:
    text = request.args.get("page", "1")
    if not text.isdigit() or not 0 < int(text) < 1_000_000:
        abort(400)
    return int(text)


@bp.get("/audit")
@staff(*AUDIT_ROLES)
def index() -> str:
    listing = audit_views.children_for_audit(deps(), _user(), actor(), page=_page())
    return render_template("audit/index.html", listing=listing, form=LocalIdForm(), result=None)


@bp.post("/audit/search")
@staff(*AUDIT_ROLES)
def search() -> str:
    """POST, so a local child ID never ends up in a URL, a log or the browser history."""
    form = LocalIdForm()
    result = None
    if posted(form) and not form.errors:
        result = audit_views.find_by_local_id(deps(), form.local_id.data or "", _user(), actor())
    return render_template("audit/index.html", listing=None, form=form, result=result)


@bp.get("/audit/children/<uuid:child_id>")
@staff(*AUDIT_ROLES)
def trail(child_id: UUID) -> str:
    try:
        flt = audit_views.TrailFilter.parse(request.args.get("who", "all"))
    except ValueError:
        abort(400)
    found = audit_views.trail(deps(), child_id, _user(), actor(), page=_page(), flt=flt)
    return render_template("audit/trail.html", trail=found)


@bp.get("/children/<uuid:child_id>/recipient-map")
@staff(*RECORD_ROLES)
def recipients(child_id: UUID) -> str:
    found = recipient_map.recipient_map(deps(), child_id, _user(), actor())
    return render_template("children/recipient_map.html", map=found, child=found.child)


@bp.route("/admin/audit", methods=["GET", "POST"])
@staff(Role.ADMIN)
def integrity() -> str:
    form = IntegrityForm()
    result = None
    if posted(form) and not form.errors:
        checkpoint = None
        if form.checkpoint.data:
            try:
                checkpoint = audit.parse_checkpoint(form.checkpoint.data)
            except ValueError:
                checkpoint = None
            if checkpoint is None or len(checkpoint[1]) != 32:
                form.checkpoint.errors = ["Enter the checkpoint as it was shown: the event number, a colon, "
                                          "then 64 letters and digits"]
        if not form.checkpoint.errors:
            result = audit_views.check_integrity(deps(), _user(), actor(), checkpoint)
    return render_template("audit/integrity.html", form=form, result=result,
                           last=audit_views.last_check(deps(), _user()))
