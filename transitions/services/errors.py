"""Named errors that services raise and views map to GOV.UK messages or pages."""

from __future__ import annotations

from datetime import datetime


class ServiceError(Exception):
    """Base for every expected, user-facing failure of a use case."""


class InvalidCredentialsError(ServiceError):
    """Email or password wrong, or no such active account: deliberately indistinguishable."""


class AccountLockedError(ServiceError):
    def __init__(self, until: datetime) -> None:
        super().__init__("too many failed attempts")
        self.until = until


class InvalidCodeError(ServiceError):
    """The authenticator code is wrong, expired or already used."""


class SignInExpiredError(ServiceError):
    """The half-finished sign-in (password accepted, code not yet entered) is too old."""


class SetupLinkInvalidError(ServiceError):
    """Unknown, expired, revoked or used set-up link: one answer for all."""


class PasswordRejectedError(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmailInUseError(ServiceError):
    pass


class NotFoundError(ServiceError):
    pass


class ForbiddenActionError(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuditChainConflictError(ServiceError):
    """Two writers raced for the same audit sequence number; the transaction must be retried."""


class StoreUnavailableError(ServiceError):
    """The database did not answer; the request is served as far as it can be without it."""


class ChildInvalidError(ServiceError):
    """Some answers on a child's profile (or a break-glass reason) are not acceptable; errors per field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid answers")
        self.errors = errors


class BreakGlassRequiredError(ServiceError):
    """The record exists but is not allocated to this person: a reason is needed (or, for some roles, refused)."""

    def __init__(self, child_id: object, *, allowed: bool) -> None:
        super().__init__("not allocated")
        self.child_id = child_id
        self.allowed = allowed


class SectionInvalidError(ServiceError):
    """A section's answers do not meet its definition. ``kept`` holds uploads already checked and stored, so
    the person does not have to choose the file again."""

    def __init__(self, errors: dict[str, str], kept: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__("invalid answers")
        self.errors = errors
        self.kept = kept or {}


class EditConflictError(ServiceError):
    """Someone saved the section after this person opened it; nothing was saved, their answers are kept."""

    def __init__(self, current_version: int, kept: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__("edit conflict")
        self.current_version = current_version
        self.kept = kept or {}


class TransitionStepError(ServiceError):
    """A lifecycle step that is not allowed now (marking sent before approval, a cancelled transition...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
