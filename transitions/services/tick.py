"""`cla-transitions tick`: all periodic work. Idempotent; run it every minute from cron or a timer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from transitions.services import alerts, follow_up, outbox, packs, receipt, sections, sessions, tasks, transitions
from transitions.services.deps import ServiceDeps

log = logging.getLogger("transitions.tick")


@dataclass
class TickReport:
    delivery: outbox.DeliveryReport | None = None
    follow_up: follow_up.FollowUpReport | None = None
    tasks_overdue: int = 0
    sessions_purged: int = 0
    uploads_purged: int = 0
    recipient_purged: int = 0
    packs_purged: int = 0
    crisis_flags: int = 0
    failed_jobs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        d = self.delivery
        out = []
        if d is not None:
            out.append(f"outbox: {d.sent} sent, {d.retrying} to retry, {d.failed} failed")
        if (f := self.follow_up) is not None:
            out.append(f"follow-up: {f.reminders} reminders, {f.escalations} escalations, {f.closed} escalations "
                       f"closed by a confirmation or withdrawal, {f.withdrawn} queued emails withdrawn, {f.busy} "
                       f"packs left to another process")
            out += [f"  follow-up failed for pack {e}" for e in f.errors]
        out.append(f"tasks: {self.tasks_overdue} overdue tasks notified")
        out.append(f"sessions: {self.sessions_purged} expired sessions removed")
        out.append(f"uploads: {self.uploads_purged} unused uploads removed")
        out.append(f"recipients: {self.recipient_purged} expired recipient sessions and codes removed")
        out.append(f"packs: {self.packs_purged} finished packs' files deleted (retention)")
        out.append(f"crisis: {self.crisis_flags} children flagged with no onward placement")
        out += [f"FAILED: {job} (see the log)" for job in self.failed_jobs]
        return out


def run(deps: ServiceDeps, transport: outbox.Transport | None = None) -> TickReport:
    """Each job runs even if an earlier one failed; failures are logged and reported, never hidden."""
    report = TickReport()
    # Follow-up and task alerts queue emails, so they run before delivery and go out in the same tick.
    jobs: list[tuple[str, Callable[[], None]]] = [
        ("onward placement check",
         lambda: setattr(report, "crisis_flags", transitions.check_onward_placements(deps))),
        ("follow-up", lambda: setattr(report, "follow_up", follow_up.run(deps))),
        ("task deadlines", lambda: setattr(report, "tasks_overdue", tasks.notify_overdue(deps))),
        ("outbox delivery", lambda: setattr(report, "delivery", outbox.deliver_due(deps, transport))),
        ("session purge", lambda: setattr(report, "sessions_purged", sessions.purge_expired(deps))),
        ("upload purge", lambda: setattr(report, "uploads_purged", sections.purge_unused_uploads(deps))),
        ("recipient purge", lambda: setattr(report, "recipient_purged", receipt.purge_expired(deps))),
        ("pack file purge", lambda: setattr(report, "packs_purged", packs.purge_finished_packs(deps))),
    ]
    for name, job in jobs:
        try:
            job()
        except Exception:
            log.exception("tick: %s failed", name)
            report.failed_jobs.append(name)
    if report.follow_up is not None and report.follow_up.errors:  # the others went ahead; still a failure
        report.failed_jobs.append(f"follow-up of {len(report.follow_up.errors)} pack(s)")
    raise_alerts(deps, report)
    return report


def raise_alerts(deps: ServiceDeps, report: TickReport) -> None:
    """Last: the alerts see this tick's failures and the outbox as delivery left it (R37, R80)."""
    failed_packs = len(report.follow_up.errors) if report.follow_up is not None else 0
    try:
        alerts.check(deps, failed_steps=len(report.failed_jobs), failed_packs=failed_packs)
    except Exception:
        log.exception("tick: operations alerts failed")
        report.failed_jobs.append("operations alerts")
