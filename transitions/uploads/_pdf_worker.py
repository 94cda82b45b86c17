"""PDF checker that runs in a child process: ``python -m transitions.uploads._pdf_worker`` (security.md R59).

It reads the PDF from stdin, parses it with pikepdf (qpdf) and prints one JSON line, for example
``{"ok": true, "reason": "ok", "pages": 3}``. The ``reason`` is one of ``ok``, ``encrypted``, ``damaged``,
``no_pages``, ``active_content`` or ``limits``. ``pdfs.check_pdf`` starts this process with CPU,
address-space and wall-clock limits, so a hostile or pathological file can only crash or stall this child.
The web process never parses a PDF.

The walk covers every object qpdf knows about: everything in ``pdf.objects`` (the cross-reference table,
including objects inside compressed object streams), plus everything reachable from the trailer. That
includes the document catalog, the Names tree, the AcroForm, the pages and their annotations. An active
content name is refused whether it appears as a dictionary key (``/OpenAction``, ``/AA``, ``/JS``,
``/EmbeddedFiles``, ``/XFA``) or as a value (``/S /JavaScript``, ``/S /Launch``, ``/Subtype /RichMedia``).
qpdf decodes ``#xx`` escapes in names, so ``/J#61vaScript`` is caught too.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Final

import pikepdf

# security.md R59, plus /EF: the embedded-file stream of a file specification. A FileAttachment annotation can
# embed a file without any /EmbeddedFiles name tree.
ACTIVE_CONTENT_NAMES: Final = frozenset(
    {"/JavaScript", "/JS", "/OpenAction", "/AA", "/Launch", "/EmbeddedFiles", "/RichMedia", "/XFA", "/EF"}
)


def _result(reason: str, pages: int = 0) -> dict[str, object]:
    return {"ok": reason == "ok", "reason": reason, "pages": pages}


def find_active_content(pdf: pikepdf.Pdf) -> str | None:
    """The first active-content name found anywhere in the object graph, or None."""
    stack: list[object] = [pdf.trailer, *pdf.objects]
    seen: set[tuple[int, int]] = set()
    while stack:
        obj = stack.pop()
        if not isinstance(obj, pikepdf.Object):  # pikepdf returns numbers and booleans as Python scalars
            continue
        if obj.is_indirect:
            key = obj.objgen
            if key in seen:
                continue
            seen.add(key)
        if isinstance(obj, pikepdf.Name):
            name = str(obj)
            if name in ACTIVE_CONTENT_NAMES:
                return name
        elif isinstance(obj, pikepdf.Stream):
            stack.append(obj.stream_dict)
        elif isinstance(obj, pikepdf.Dictionary):
            for key_name, value in obj.items():
                if key_name in ACTIVE_CONTENT_NAMES:
                    return key_name
                stack.append(value)
        elif isinstance(obj, pikepdf.Array):
            stack.extend(obj)
    return None


def inspect_pdf(data: bytes) -> dict[str, object]:
    """Classify one PDF; never raises for a bad file."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        return _result("encrypted")
    except MemoryError:
        return _result("limits")
    except Exception:  # qpdf raises PdfError and others for damaged or non-PDF input
        return _result("damaged")
    with pdf:
        try:
            if pdf.is_encrypted:  # e.g. an owner password with an empty user password
                return _result("encrypted")
            if find_active_content(pdf) is not None:
                return _result("active_content")
            pages = len(pdf.pages)
        except MemoryError:
            return _result("limits")
        except Exception:
            return _result("damaged")
        if pages < 1:
            return _result("no_pages")
        return _result("ok", pages)


def main() -> int:
    data = sys.stdin.buffer.read()
    try:
        result = inspect_pdf(data)
    except MemoryError:
        result = _result("limits")
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
