"""Everything in ``forms/`` (TOML), validated into frozen dataclasses at start-up.

The checklist is policy that a safeguarding partnership changes without a release, so it is data. One
definition drives the staff forms, the child's page, the history, the checklist and (later) the pack PDF and
the tracking. Anything wrong in it (an unknown field type, a duplicate id, a mandatory field without its error
text, a transition kind naming an unknown recipient) stops start-up with a message naming the file and the
entry: a half-valid checklist is worse than none.

No Flask, no SQLAlchemy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from transitions.formdefs.follow_up import EscalationRule, FollowUpRules, load_follow_up
from transitions.formdefs.kinds import (
    APPROVAL_KINDS,
    CONDITIONS,
    DECISIONS,
    PROFILE_FIELDS,
    KindApproval,
    KindRecipient,
    KindSection,
    RecipientType,
    TransitionKind,
    load_kinds,
)
from transitions.formdefs.sections import (
    FIELD_TYPES,
    REQUIRED_SECTIONS,
    ROLES_THAT_EDIT,
    CodeList,
    EntryDef,
    FieldDef,
    FormDefinitionError,
    SectionDef,
    load_sections,
)

__all__ = [
    "APPROVAL_KINDS",
    "CONDITIONS",
    "DECISIONS",
    "FIELD_TYPES",
    "ORGANISATION_KINDS",
    "PROFILE_FIELDS",
    "REQUIRED_SECTIONS",
    "ROLES_THAT_EDIT",
    "CodeList",
    "Definitions",
    "EntryDef",
    "EscalationRule",
    "FieldDef",
    "FollowUpRules",
    "FormDefinitionError",
    "KindApproval",
    "KindRecipient",
    "KindSection",
    "RecipientType",
    "SectionDef",
    "TransitionKind",
    "load_definitions",
]

#: The organisations register's kinds (kept equal to models.OrganisationKind by a test).
ORGANISATION_KINDS = frozenset({
    "placement", "childrens_home", "hospital", "ward", "camhs", "school", "gp_practice", "local_authority",
    "police_force",
})


@dataclass(frozen=True)
class Definitions:
    sections: dict[str, SectionDef]
    code_lists: dict[str, CodeList]
    #: SHA-256 of every file read, in order: recorded with each saved version (and later each pack).
    digest: str
    recipient_types: dict[str, RecipientType] = field(default_factory=dict)
    kinds: dict[str, TransitionKind] = field(default_factory=dict)
    follow_up: FollowUpRules | None = None

    @property
    def rules(self) -> FollowUpRules:
        """The follow-through rules (always loaded by load_definitions; a hand-built Definitions may lack them)."""
        if self.follow_up is None:
            raise FormDefinitionError("forms/follow_up.toml was not loaded")
        return self.follow_up

    def ordered(self) -> list[SectionDef]:
        return sorted(self.sections.values(), key=lambda s: (s.order, s.code))

    def ordered_kinds(self) -> list[TransitionKind]:
        return sorted(self.kinds.values(), key=lambda k: (k.order, k.code))

    def section(self, code: str) -> SectionDef:
        return self.sections[code]

    def code_list(self, name: str) -> CodeList:
        return self.code_lists[name]


def load_definitions(forms_dir: Path) -> Definitions:
    """Read and check every file under ``forms_dir``; raise FormDefinitionError naming what is wrong."""
    hasher = hashlib.sha256()
    sections, code_lists = load_sections(forms_dir, hasher)
    recipient_types, kinds = load_kinds(forms_dir, hasher, sections, ORGANISATION_KINDS)
    follow_up = load_follow_up(forms_dir, hasher, recipient_types, kinds)
    return Definitions(sections=sections, code_lists=code_lists, digest=hasher.hexdigest(),
                       recipient_types=recipient_types, kinds=kinds, follow_up=follow_up)

