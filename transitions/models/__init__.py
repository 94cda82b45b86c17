"""SQLAlchemy 2 typed models. No business rules beyond invariants: those live in services."""

from transitions.models.audit import AuditChainHead, AuditEvent
from transitions.models.base import Base, CipherMissingError, EncryptedText, UTCDateTime, new_id
from transitions.models.children import (
    ORGANISATION_KIND_LABELS,
    Attachment,
    BreakGlassGrant,
    Child,
    ChildProfileVersion,
    ChildSearchKey,
    Organisation,
    OrganisationKind,
    SectionVersion,
)
from transitions.models.database import Database
from transitions.models.follow_up import ESCALATION_LEVELS, SLOTS, Escalation, EscalationStatus, FollowUpSlot
from transitions.models.key_check import KeyCheck
from transitions.models.missing import MISSING_CODE_LABELS, MissingEpisode, MissingReportEntry
from transitions.models.outbox import OutboxMessage, OutboxStatus, StoredBlob
from transitions.models.packs import InformationRequest, Pack, PackCode, PackEvent, RecipientSession
from transitions.models.staff import (
    ROLE_LABELS,
    AccountStatus,
    Role,
    SetupLink,
    SignInThrottle,
    StaffSession,
    StaffUser,
    Team,
)
from transitions.models.transitions import (
    ACTIVE_STATUSES,
    CrisisFlag,
    SectionOverride,
    Task,
    Transition,
    TransitionApproval,
    TransitionRecipient,
    TransitionStatus,
)

__all__ = [
    "ACTIVE_STATUSES",
    "ESCALATION_LEVELS",
    "MISSING_CODE_LABELS",
    "ORGANISATION_KIND_LABELS",
    "ROLE_LABELS",
    "SLOTS",
    "AccountStatus",
    "Attachment",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "BreakGlassGrant",
    "Child",
    "ChildProfileVersion",
    "ChildSearchKey",
    "CipherMissingError",
    "CrisisFlag",
    "Database",
    "EncryptedText",
    "Escalation",
    "EscalationStatus",
    "FollowUpSlot",
    "InformationRequest",
    "KeyCheck",
    "MissingEpisode",
    "MissingReportEntry",
    "Organisation",
    "OrganisationKind",
    "OutboxMessage",
    "OutboxStatus",
    "Pack",
    "PackCode",
    "PackEvent",
    "RecipientSession",
    "Role",
    "SectionOverride",
    "SectionVersion",
    "SetupLink",
    "SignInThrottle",
    "StaffSession",
    "StaffUser",
    "StoredBlob",
    "Task",
    "Team",
    "Transition",
    "TransitionApproval",
    "TransitionRecipient",
    "TransitionStatus",
    "UTCDateTime",
    "new_id",
]
