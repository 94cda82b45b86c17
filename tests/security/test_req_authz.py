"""Authorization tried as a curious colleague would (security.md C2; attacks #21 and #22 of table (d)): a social
worker of another team walks every URL of another team's child, with the real ids, by GET and by POST."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.conftest import csrf_from, make_staff, sign_in
from tests.integration.test_packs import link_for
from tests.security.test_req_links import _page, sent  # noqa: F401  (sent is a fixture)

pytestmark = pytest.mark.security

SECRETS = ("Amira", "Noor Hassan", "LCS-099120", "9990001332", "Moorview House")


def _snapshot(deps) -> list:
    """What a refused request must not have changed (break-glass grants are left out: any member of staff may
    ask for one, with a reason, by design)."""
    tables = ("child", "section_version", "transition", "transition_recipient", "pack", "missing_episode",
              "attachment", "outbox_message", "task", "escalation", "information_request")
    with deps.db.engine.connect() as conn:
        return [conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all() for t in tables]


def _denials(deps) -> int:
    with deps.db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_event WHERE outcome = 'denied'")).scalar() or 0


def test_a_colleague_from_another_team_gets_nothing_from_the_childs_urls_or_managers_pages(
        deps, sent, app, client, clock):  # noqa: F811
    """Attack #21 and R12: every child-scoped URL, with the child's, the move's, the pack's and the recipient's
    real ids, refuses an unallocated social worker (403, or 404 for an object that is not under that child),
    shows none of the record, changes nothing, and every refusal of the child is in the audit trail.
    R14: ids are random UUIDs and knowing one grants nothing. As built, a real child's id answers 403 with the
    break-glass offer (R13 needs the record to be named) and shows none of it; any id that is not a child's,
    random or sequential, gets one identical 404. Attack #22: the manager and administrator pages refuse the same
    social worker (403) and the audit trail names each refused page. Last, R13 with R15: break-glass asked for with
    fields the form does not declare still lasts 60 minutes and is read-only."""
    world, transition_id = sent
    _token, pack = link_for(deps, transition_id, "receiving_placement")
    ids = {"child_id": world.children["Amira"], "transition_id": transition_id, "pack_id": pack.id,
           "recipient_id": pack.recipient_id}
    outsider = make_staff(deps, team="Elsewhere Team")
    sign_in(client, outsider, clock)
    form = csrf_from(client.get("/account").get_data(as_text=True))
    before = _snapshot(deps)
    checked = {"GET": 0, "POST": 0}
    for rule in app.url_map.iter_rules():
        names = set(re.findall(r"<uuid:([a-z_]+)>", rule.rule))
        if not names & {"child_id", "transition_id"}:
            continue
        url = re.sub(r"<uuid:([a-z_]+)>", lambda m: str(ids.get(m.group(1), uuid.uuid4())), rule.rule)
        url = re.sub(r"<any\(([a-z_]+)[^>]*>", r"\1", url)
        url = re.sub(r"<[a-z_]+>", "RISK", url)
        for method in sorted(rule.methods & {"GET", "POST"}):
            if rule.endpoint == "children.break_glass" and method == "POST":
                continue  # asking, with a reason, is open to staff by design (R13, tested on its own)
            denied = _denials(deps)
            data = {"csrf_token": form, "reason": "Looking for a neighbour's child", "name": "x", "role": "x",
                    "base_version": "1"}
            response = client.get(url) if method == "GET" else client.post(url, data=data)
            if response.status_code == 302:  # sent on to another page of the child: that page must refuse
                assert not response.headers["Location"].startswith("/sign-in"), (method, url)
                response = client.get(response.headers["Location"])
            body = response.get_data(as_text=True)
            if rule.endpoint == "children.break_glass":  # the form asking for a reason: open to staff, by design
                assert response.status_code == 200 and "reason" in body, method
            else:
                assert response.status_code in (403, 404), (method, url, response.status_code)
            for secret in SECRETS:
                assert secret not in body, (method, url, secret)
            if response.status_code == 403 and "child_id" in names:
                assert _denials(deps) > denied, (method, url, "refusal not audited")
            checked[method] += 1
    assert checked["GET"] >= 15 and checked["POST"] >= 15, checked
    assert _snapshot(deps) == before
    assert client.get("/").status_code == 200  # still signed in: refusals are not errors

    # R14: an invented or sequential id gets the same 404 as any id that is not a child's.
    pages = {_page(client.get(f"/children/{wrong}")) for wrong in (
        uuid.uuid4(), "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002", "1", "2",
        world.orgs["SC900003"])}
    assert len(pages) == 1 and "Page not found" in pages.pop()
    real = client.get(f"/children/{world.children['Amira']}")
    assert real.status_code == 403
    for secret in SECRETS:
        assert secret not in real.get_data(as_text=True)

    # Attack #22: the escalation and crisis dashboards, reports, the audit pages and user administration.
    for path in ("/crisis", "/break-glass", "/reports", "/audit", "/admin/users", "/admin/audit",
                 "/reports/escalations.csv"):
        assert client.get(path).status_code == 403, path
    with deps.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT details FROM audit_event WHERE action = 'access.denied' "
                                 "AND outcome = 'denied'")).scalars().all()
    named = " ".join(rows)
    for endpoint in ("transitions.crisis", "children.break_glass_log", "reports.index", "audit.index",
                     "admin.users", "audit.integrity", "reports.table_csv"):
        assert endpoint in named, endpoint

    # R13 and R15: asking for break-glass with fields the form does not declare still gives 60 minutes, read-only.
    child = world.children["Amira"]
    page = client.get(f"/children/{child}/break-glass").get_data(as_text=True)
    granted = client.post(f"/children/{child}/break-glass", data={
        "csrf_token": csrf_from(page), "reason": "Duty team asked for the photo out of hours",
        "minutes": "99999", "expires_at": "2099-01-01T00:00:00+00:00", "staff_id": str(uuid.uuid4()),
        "read_only": "no"})
    assert granted.status_code == 302
    with deps.db.transaction() as session:
        from transitions.models import BreakGlassGrant

        grant = session.scalars(select(BreakGlassGrant)).one()
        assert (grant.staff_id, grant.expires_at) == (outsider.id, clock.now() + timedelta(minutes=60))
    assert client.get(f"/children/{child}").status_code == 200
    assert client.get(f"/children/{child}/sections/RISK/edit").status_code == 403
