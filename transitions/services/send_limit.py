"""The per-user pack send limit (R71, attack #65): one account sending many packs in minutes is refused, audited
and alerted on.

The count is the packs this user created within the window (the pack table already says who sent what, when),
plus those the current action has issued so far. A refusal raises inside the sending transaction, so the whole
action rolls back (the transition stays as it was: nothing is lost, the user presses again later); the
decorator then records the refusal and the alert in a transaction of its own.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from transitions.models import Pack
from transitions.services import alerts, audit
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import TransitionStepError

REFUSED = "pack.send_refused_limit"

P = ParamSpec("P")
R = TypeVar("R")


class SendLimitError(TransitionStepError):
    """Shown on the page the user pressed "Send" on; carries counts only."""

    def __init__(self, actor: Actor, transition_id: uuid.UUID, sent: int, limit: int, window_minutes: int) -> None:
        super().__init__(f"Nothing was sent: this would make {sent} packs sent by you in the last {window_minutes} "
                         f"minutes, more than one person may send ({limit}). Nothing is lost: try again in a few "
                         "minutes, or ask another member of your team to send them.")
        self.actor, self.transition_id = actor, transition_id
        self.sent, self.limit, self.window_minutes = sent, limit, window_minutes


def sent_recently(deps: ServiceDeps, session: Session, user: StaffView) -> int:
    window = timedelta(minutes=deps.settings.operations.pack_send_window_minutes)
    return int(session.scalar(select(func.count(Pack.id)).where(
        Pack.created_by == user.id, Pack.created_at > deps.clock.now() - window)) or 0)


def check(deps: ServiceDeps, recent: int, sending: int, user: StaffView, actor: Actor,
          transition_id: uuid.UUID) -> None:
    """After each pack this action issued (a recipient without a mailbox is no send): refuse if ``recent``
    (before this action) plus the ``sending`` issued by it go beyond the limit."""
    ops = deps.settings.operations
    if recent + sending > ops.pack_sends_per_user:
        raise SendLimitError(actor, transition_id, recent + sending, ops.pack_sends_per_user,
                             ops.pack_send_window_minutes)


def audited(call: Callable[Concatenate[ServiceDeps, P], R]) -> Callable[Concatenate[ServiceDeps, P], R]:
    """Wrap a service that sends packs: a refusal by the limit is audited and alerted on, then re-raised."""

    @functools.wraps(call)
    def wrapper(deps: ServiceDeps, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return call(deps, *args, **kwargs)
        except SendLimitError as refused:
            record_refusal(deps, refused)
            raise

    return wrapper


def record_refusal(deps: ServiceDeps, refused: SendLimitError) -> None:
    counts = {"sent": refused.sent, "limit": refused.limit, "window_minutes": refused.window_minutes}
    with deps.db.transaction() as session:
        audit.record(session, deps.audit_chain, deps.clock, refused.actor, REFUSED, object_type="transition",
                     object_id=refused.transition_id, outcome="denied", details=counts)
        alerts.raise_alert(deps, session, alerts.Alert(alerts.PACK_SEND_LIMIT, counts))
