"""Follow-through rules from ``forms/follow_up.toml``: when confirmations are due, when reminders and escalations
fall, and when tasks are due. Checked at start-up like every other definition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transitions.formdefs.kinds import RecipientType, TransitionKind
from transitions.formdefs.sections import FormDefinitionError, _fail, _read, _unknown_keys

_PERIOD = re.compile(r"^(hours:(\d{1,3})|working_days:(\d{1,2}))$")
TASK_RULES = ("health_plan_update", "chase_not_known", "information_request", "return_interview",
              "missing_reshare")
_ESCALATION_KEYS = {"working_hours", "remind_before_hours", "social_worker_after_hours", "team_manager_after_hours",
                    "senior_manager_after_hours"}


@dataclass(frozen=True)
class EscalationRule:
    working_hours: bool
    remind_before_hours: int
    social_worker_after_hours: int
    team_manager_after_hours: int
    senior_manager_after_hours: int

    def after_hours(self, level: str) -> int:
        return int(getattr(self, f"{level}_after_hours"))


@dataclass(frozen=True)
class FollowUpRules:
    confirmation_default: str
    confirmation_by_recipient: dict[str, str]
    planned: EscalationRule
    emergency: EscalationRule
    by_kind: dict[str, EscalationRule]
    tasks: dict[str, str]

    def confirm_within(self, recipient_type: str) -> str:
        return self.confirmation_by_recipient.get(recipient_type, self.confirmation_default)

    def escalation(self, kind: TransitionKind | None, urgency: str) -> EscalationRule:
        if kind is not None and kind.code in self.by_kind:
            return self.by_kind[kind.code]
        return self.emergency if urgency == "emergency" else self.planned


def _period(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _PERIOD.match(value):
        raise _fail(where, "a time must be hours:N or working_days:N")
    return value


def _rule(raw: Any, where: str) -> EscalationRule:
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table")
    _unknown_keys(raw, _ESCALATION_KEYS, where)
    missing = sorted(_ESCALATION_KEYS - set(raw))
    if missing:
        raise _fail(where, f"missing {', '.join(missing)}")
    if not isinstance(raw["working_hours"], bool):
        raise _fail(where, "working_hours is true or false")
    hours = {}
    for key in _ESCALATION_KEYS - {"working_hours"}:
        value = raw[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 24 * 14:
            raise _fail(where, f"{key} must be a whole number of hours (0 to 336)")
        hours[key] = value
    if not hours["social_worker_after_hours"] <= hours["team_manager_after_hours"] <= hours[
            "senior_manager_after_hours"]:
        raise _fail(where, "the social worker is alerted first, then the team manager, then a senior manager")
    return EscalationRule(working_hours=raw["working_hours"], **hours)


def load_follow_up(forms_dir: Path, hasher: Any, recipient_types: dict[str, RecipientType],
                   kinds: dict[str, TransitionKind]) -> FollowUpRules:
    path = forms_dir / "follow_up.toml"
    if not path.exists():
        raise FormDefinitionError("forms/follow_up.toml is missing")
    raw = _read(path, hasher)
    _unknown_keys(raw, {"confirmation", "escalation", "tasks"}, path.name)
    confirmation = raw.get("confirmation", {})
    _unknown_keys(confirmation, {"default", "by_recipient"}, f"{path.name} [confirmation]")
    by_recipient = {}
    for code, value in confirmation.get("by_recipient", {}).items():
        if code not in recipient_types:
            raise _fail(f"{path.name} [confirmation.by_recipient]", f"unknown recipient type '{code}'")
        by_recipient[code] = _period(value, f"{path.name} [confirmation.by_recipient] {code}")
    escalation = raw.get("escalation", {})
    _unknown_keys(escalation, {"planned", "emergency", "kind"}, f"{path.name} [escalation]")
    by_kind = {}
    for code, item in escalation.get("kind", {}).items():
        if code not in kinds:
            raise _fail(f"{path.name} [escalation.kind]", f"unknown transition kind '{code}'")
        by_kind[code] = _rule(item, f"{path.name} [escalation.kind.{code}]")
    tasks = raw.get("tasks", {})
    _unknown_keys(tasks, set(TASK_RULES), f"{path.name} [tasks]")
    missing = [t for t in TASK_RULES if t not in tasks]
    if missing:
        raise _fail(f"{path.name} [tasks]", f"missing {', '.join(missing)}")
    return FollowUpRules(
        confirmation_default=_period(confirmation.get("default"), f"{path.name} [confirmation] default"),
        confirmation_by_recipient=by_recipient,
        planned=_rule(escalation.get("planned"), f"{path.name} [escalation.planned]"),
        emergency=_rule(escalation.get("emergency"), f"{path.name} [escalation.emergency]"),
        by_kind=by_kind,
        tasks={t: _period(tasks[t], f"{path.name} [tasks] {t}") for t in TASK_RULES})
