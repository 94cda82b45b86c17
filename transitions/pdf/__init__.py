"""Handover packs as PDF: what a pack says (:mod:`.document`), how it is drawn (:mod:`.render`, with the fonts
of :mod:`.fonts`) and how it is locked (:mod:`.encrypt`). No Flask, no SQLAlchemy, nothing from the services,
models or web layers: only ReportLab, pikepdf and the standard library.

    fonts = load_fonts(PDF_FONTS_DIR)
    password = new_pdf_password()
    pdf = encrypt_pdf(render_pack(document, fonts), password, document.appendices)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .document import (
    MARKING,
    FirstPage,
    PackDocument,
    PackEntry,
    PackItem,
    PackSection,
    RestrictedPersonLine,
)
from .errors import PackConfigError, PackError, PackFontError, PackTooLargeError

if TYPE_CHECKING:
    from .encrypt import encrypt_pdf, new_pdf_password
    from .fonts import PackFonts, load_fonts
    from .render import (
        MAX_PAGES,
        MISSING_CODE,
        MISSING_TITLE,
        build_story,
        harden_reportlab,
        pack_canvas,
        page_furniture,
        para_text,
        render_pack,
        template_kwargs,
    )

# ReportLab and pikepdf take about 0.1 s to import: only code that draws or encrypts a pack pays for them
# (performance.md L9). The document classes and errors above import nothing but the standard library.
_LAZY = {
    "encrypt_pdf": ".encrypt",
    "encrypt_pack": ".encrypt",
    "new_pdf_password": ".encrypt",
    "PackFonts": ".fonts",
    "load_fonts": ".fonts",
    **{name: ".render" for name in ("MAX_PAGES", "appendix_stamp", "MISSING_CODE", "MISSING_TITLE", "build_story",
                                     "harden_reportlab", "pack_canvas", "page_furniture", "para_text",
                                     "render_pack", "template_kwargs")},
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "MARKING",
    "MAX_PAGES",
    "MISSING_CODE",
    "MISSING_TITLE",
    "FirstPage",
    "PackConfigError",
    "PackDocument",
    "PackEntry",
    "PackError",
    "PackFontError",
    "PackFonts",
    "PackItem",
    "PackSection",
    "PackTooLargeError",
    "RestrictedPersonLine",
    "appendix_stamp",
    "build_story",
    "encrypt_pack",
    "encrypt_pdf",
    "harden_reportlab",
    "load_fonts",
    "new_pdf_password",
    "pack_canvas",
    "page_furniture",
    "para_text",
    "render_pack",
    "template_kwargs",
]
