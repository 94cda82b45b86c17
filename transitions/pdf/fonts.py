"""The pack's Unicode fonts (security.md R51): DejaVu Sans, regular and bold.

ReportLab's standard fonts are Latin-1 only, so "Łukasz Nguyễn Văn Ōkubo Şahin" would come out with ■ in it.
The TrueType files come from the pinned npm package ``dejavu-fonts-ttf`` and are copied by
``npm run build:assets`` (scripts/build_assets.sh) into ``static/govuk/pdf-fonts/`` (``paths.PDF_FONTS_DIR``);
nothing is fetched at run time. ReportLab embeds only the glyphs a pack uses (a subset per document).

ReportLab keeps registered fonts in a process-wide table, so ``load_fonts`` registers each folder's fonts once,
under a lock, and returns the same :class:`PackFonts` on every later call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from .errors import PackFontError

REGULAR_FILE: Final = "DejaVuSans.ttf"
BOLD_FILE: Final = "DejaVuSans-Bold.ttf"
_FAMILY: Final = "PackSans"
_BUILD_HINT: Final = "run `npm ci && npm run build:assets` (or `make assets`) in the project folder"

_lock = threading.Lock()
_loaded: dict[Path, PackFonts] = {}


@dataclass(frozen=True)
class PackFonts:
    """ReportLab font names registered for the pack (use them in styles and ``setFont``)."""

    regular: str
    bold: str
    directory: Path


def load_fonts(directory: Path) -> PackFonts:
    """Register DejaVu Sans regular and bold from ``directory`` with ReportLab (once) and return their names.

    Raises :class:`PackFontError` naming the missing or unreadable file and the build step that makes it.
    """
    key = directory.resolve()
    with _lock:
        loaded = _loaded.get(key)
        if loaded is not None:
            return loaded
        paths = {REGULAR_FILE: key / REGULAR_FILE, BOLD_FILE: key / BOLD_FILE}
        for path in paths.values():
            if not path.is_file():
                raise PackFontError(f"The PDF font {path} is missing: {_BUILD_HINT}")
        # Each further folder gets its own names, so a second folder can never replace fonts in use.
        suffix = str(len(_loaded) + 1) if _loaded else ""
        fonts = PackFonts(regular=f"{_FAMILY}{suffix}", bold=f"{_FAMILY}{suffix}-Bold", directory=key)
        try:
            regular = TTFont(fonts.regular, str(paths[REGULAR_FILE]))
            bold = TTFont(fonts.bold, str(paths[BOLD_FILE]))
        except (TTFError, OSError) as exc:
            raise PackFontError(f"The PDF fonts in {key} could not be read ({exc}): {_BUILD_HINT}") from exc
        pdfmetrics.registerFont(regular)
        pdfmetrics.registerFont(bold)
        # <b> inside a paragraph (never used with data, but harmless) maps to the bold face, not Helvetica.
        pdfmetrics.registerFontFamily(fonts.regular, normal=fonts.regular, bold=fonts.bold, italic=fonts.regular,
                                      boldItalic=fonts.bold)
        _loaded[key] = fonts
        return fonts
