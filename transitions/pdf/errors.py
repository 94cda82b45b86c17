"""Named errors of pack (PDF) generation. Their messages never contain a child's details."""

from __future__ import annotations


class PackError(Exception):
    """Base class: a pack could not be produced."""


class PackFontError(PackError):
    """The PDF fonts are missing or unreadable (a build step was skipped)."""


class PackTooLargeError(PackError):
    """The pack would be longer than the page limit (security.md R52: generation is bounded)."""

    def __init__(self, max_pages: int) -> None:
        super().__init__(f"The pack would be longer than {max_pages} pages; shorten the longest answers")
        self.max_pages = max_pages


class PackConfigError(PackError):
    """ReportLab is not configured as the pack needs (security.md R50, performance.md L5)."""
