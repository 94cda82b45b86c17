"""Follow-through of sent packs (Lesson CH6.2): when each confirmation is due, reminders to the recipient, and
escalation to the social worker, the team manager and a senior manager when it is late."""

from __future__ import annotations

from datetime import datetime

from transitions.formdefs import TransitionKind
from transitions.models import Pack, Transition, TransitionRecipient
from transitions.services import deadlines
from transitions.services.deps import ServiceDeps


def confirmation_due_at(deps: ServiceDeps, transition: Transition, recipient: TransitionRecipient,
                        pack: Pack) -> datetime:
    """The later of the recipient's own due time and the confirmation window after this version was sent.

    A planned move's receiving home confirms before the child arrives (its due time); a pack sent late, or a
    new version, gets the window from when it was sent (forms/follow_up.toml [confirmation]).
    """
    window = deps.definitions.rules.confirm_within(pack.recipient_type)
    after_send = deadlines.due_at(window, pack.created_at)
    if pack.version > 1:
        return after_send
    return max(recipient.due_at, after_send)


def kind_of(deps: ServiceDeps, transition: Transition) -> TransitionKind | None:
    return deps.definitions.kinds.get(transition.kind)
