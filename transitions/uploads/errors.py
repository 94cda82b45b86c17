"""Errors raised when an uploaded file is refused (security.md C8, R57–R62).

``UploadRejectedError.message`` is written in the GOV.UK error-message style. Show it to the user
exactly as it is, next to the file input. It never includes the file's contents, its name or a path.
"""

from __future__ import annotations

from typing import Final

MSG_EMPTY: Final = "The selected file is empty"
MSG_NOT_PHOTO: Final = "The selected file must be a JPG or PNG"
MSG_UNREADABLE_PHOTO: Final = "The selected file could not be read as a photo – choose a different file"
MSG_NOT_PDF: Final = "The selected file must be a PDF"
MSG_PDF_PASSWORD: Final = "The selected PDF is protected by a password – upload a copy without a password"  # noqa: S105
MSG_PDF_DAMAGED: Final = "The selected PDF could not be opened – it may be damaged"
MSG_PDF_ACTIVE: Final = "The selected PDF contains active content (such as JavaScript) and cannot be accepted"
MSG_PDF_TIMEOUT: Final = "The selected PDF took too long to check – try a smaller file"


def too_big_message(max_bytes: int) -> str:
    """E.g. "The selected file must be smaller than 10 MB"."""
    return f"The selected file must be smaller than {describe_size(max_bytes)}"


def too_many_pixels_message(max_pixels: int) -> str:
    """E.g. "The photo is too large: it must be no more than 25 megapixels"."""
    return f"The photo is too large: it must be no more than {max_pixels / 1_000_000:g} megapixels"


def describe_size(n_bytes: int) -> str:
    """A byte count as users read it: binary megabytes are written "MB", as most file browsers do."""
    mib, kib = 1024 * 1024, 1024
    if n_bytes >= mib and n_bytes % mib == 0:
        return f"{n_bytes // mib} MB"
    if n_bytes >= mib:
        return f"{n_bytes / mib:.1f} MB"
    if n_bytes >= kib and n_bytes % kib == 0:
        return f"{n_bytes // kib} KB"
    return f"{n_bytes} bytes"


class UploadRejectedError(Exception):
    """An upload was refused. ``message`` is safe to show to the user as it is."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
