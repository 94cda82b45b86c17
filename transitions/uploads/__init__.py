"""Flask-free checks for uploaded photos and PDFs (security.md C8, R58–R60).

Only the standard library, Pillow and pikepdf are used here. pikepdf is imported only by the PDF worker
subprocess, never by the web process.
"""

from __future__ import annotations

from .errors import UploadRejectedError
from .names import safe_display_name
from .pdfs import CheckedPdf, check_pdf
from .photos import CleanPhoto, clean_photo

__all__ = [
    "CheckedPdf",
    "CleanPhoto",
    "UploadRejectedError",
    "check_pdf",
    "clean_photo",
    "safe_display_name",
]
