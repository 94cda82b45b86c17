"""Display names for uploaded files (security.md R60).

The stored file is named by a random id. The name the user gave is only shown on pages and passed to
Werkzeug for ``Content-Disposition``. ``safe_display_name`` makes it harmless and readable:

* NFC-normalises it;
* keeps only the last path component, splitting on both ``/`` and ``\\``;
* turns whitespace, including CR, LF, tab and the line/paragraph separators, into single spaces;
* removes control, format (bidi overrides and isolates, zero-width characters, BOM) and surrogate characters
  (Unicode categories Cc, Cf, Cs, Zl, Zp);
* strips leading and trailing spaces and dots, so the name is never ``..`` or a hidden file;
* limits the name to 100 characters, keeping a short extension such as ``.pdf`` if there is one.

If nothing is left, it returns ``default``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

MAX_NAME_LENGTH: Final = 100
MAX_EXTENSION_LENGTH: Final = 10  # including the dot
_REMOVED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PATH_SEPARATORS: Final = re.compile(r"[/\\]")
_EXTENSION: Final = re.compile(rf"\.[^.\s]{{1,{MAX_EXTENSION_LENGTH - 1}}}\Z")


def safe_display_name(name: str, *, default: str = "document") -> str:
    """A display name with no path, control or bidi characters, at most 100 characters, or ``default``."""
    text = unicodedata.normalize("NFC", name)
    text = _PATH_SEPARATORS.split(text)[-1]
    text = "".join(" " if ch.isspace() else ch for ch in text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _REMOVED_CATEGORIES)
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    text = _truncate(text.strip(" ."))
    return text or default


def _truncate(text: str) -> str:
    if len(text) <= MAX_NAME_LENGTH:
        return text
    match = _EXTENSION.search(text)
    extension = match.group(0) if match else ""
    stem = text[: len(text) - len(extension)][: MAX_NAME_LENGTH - len(extension)].rstrip(" .")
    return f"{stem}{extension}" if stem else text[:MAX_NAME_LENGTH].rstrip(" .")
