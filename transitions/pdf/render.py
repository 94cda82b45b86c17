"""Render a :class:`PackDocument` to an unencrypted A4 PDF with ReportLab platypus (security.md C7, R49–R52, R54).

Rules this module keeps:

- **R49** every piece of text reaches a ``Paragraph`` through :func:`para_text` (``escape`` then newline →
  ``<br/>``), and only :func:`_para` builds a ``Paragraph``. No markup is ever built with data: a label and
  its value are two paragraphs with two styles, never ``<b>`` around data. Canvas strings (header and footer)
  are not parsed as markup at all.
- **R50** :func:`harden_reportlab` runs before every render: no URL scheme or host is trusted for fetching,
  colour strings are never evaluated with ``rl_safe_eval``, binary streams (no ASCII85) and page compression,
  and the ``rl_accel`` C extension must be in use (performance.md L5).
- **R51** every style uses the embedded DejaVu Sans (:mod:`.fonts`).
- **R52** no free text in table cells (tables are not used at all); long values are ordinary paragraphs that
  split across pages; more than ``max_pages`` pages raises :class:`PackTooLargeError` as soon as the page past
  the limit is finished.
- **R54** the PDF's metadata names the pack's reference and the sending authority only.

The pieces are public so a benchmark can build the identical story with a bare ``SimpleDocTemplate``::

    template = SimpleDocTemplate(out, **template_kwargs(doc, fonts))
    furniture = page_furniture(doc, fonts)
    template.build(build_story(doc, fonts), onFirstPage=furniture, onLaterPages=furniture,
                   canvasmaker=pack_canvas(doc, fonts))
"""

from __future__ import annotations

import inspect
import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final
from xml.sax.saxutils import escape

import reportlab
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib import rl_accel as _rl_accel_interface
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    FrameBG,
    Image,
    ImageAndFlowables,
    PageBreakIfNotEmpty,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)
from reportlab.platypus.doctemplate import BaseDocTemplate

from .document import PackDocument, PackEntry, PackItem, PackSection
from .errors import PackConfigError, PackTooLargeError
from .fonts import PackFonts

MAX_PAGES: Final = 200
MISSING_CODE: Final = "MISSING"
MISSING_TITLE: Final = "Missing from care – Philomena Protocol Part 1"
#: A missing episode's Part 2 (services/missing.py adds it after Part 1 in a police pack): on pages of its own too.
MISSING_PART2_CODE: Final = "MISSING_PART2"
#: Sections printed on pages of their own, each with who the child is and the photo at the top.
OWN_PAGES: Final = (MISSING_CODE, MISSING_PART2_CODE)
POLICE_PACK_TITLE: Final = "Missing from care: police pack"
RESTRICTED_HEADING: Final = "Restricted: must not have contact / must not know where the child lives"
SUBJECT: Final = "Handover pack"
CREATOR: Final = "CLA Transitions"

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_X: Final = 18 * mm
MARGIN_TOP: Final = 25 * mm
MARGIN_BOTTOM: Final = 20 * mm
#: The handling instruction in every page's footer (R86), with the version and the date it was generated.
HANDLING_INSTRUCTION: Final = ("Do not copy or forward. Keep only while needed for the child's care, "
                               "then destroy securely.")
PHOTO_MAX_WIDTH: Final = 60 * mm
PHOTO_MAX_HEIGHT: Final = 80 * mm

_BODY_LEADING: Final = 13.5
_INK: Final = colors.HexColor("#0b0c0c")
_GREY: Final = colors.HexColor("#505a5f")
_RULE: Final = colors.HexColor("#b1b4b6")
_RED: Final = colors.HexColor("#d4351c")
_RED_TINT: Final = colors.HexColor("#fbeae8")

# ReportLab's C accelerator replaces these pure-Python functions (reportlab/lib/rl_accel.py).
_ACCELERATED: Final = ("fp_str", "instanceStringWidthTTF", "asciiBase85Encode", "escapePDF", "sameFrag",
                       "calcChecksum")
_MIN_REPORTLAB: Final = (3, 6, 13)  # CVE-2023-33733 (rl_safe_eval in <font color>) is fixed from 3.6.13

# C0 and C1 control characters except tab and newline, and the bidi embedding/override/isolate controls: none
# can be shown, and the bidi ones could reorder text for a reader that applies them.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# A value longer than this becomes several paragraphs (see _paras).
_CHUNK_CHARS: Final = 1500
_CHUNK_LINES: Final = 40

_harden_lock = threading.Lock()


# ---- R50: ReportLab's configuration --------------------------------------------------------------------------


def harden_reportlab() -> None:
    """Set and check ReportLab's process-wide configuration for packs. Idempotent; cheap enough for every render.

    Raises :class:`PackConfigError` if ReportLab is too old, would evaluate colour strings with ``rl_safe_eval``
    (CVE-2023-33733), or runs without its C accelerator (``reportlab[accel]`` not installed).
    """
    with _harden_lock:
        version = tuple(int(part) for part in re.findall(r"\d+", reportlab.Version)[:3])
        if version < _MIN_REPORTLAB:
            raise PackConfigError(f"ReportLab {reportlab.Version} is older than 3.6.13 (CVE-2023-33733)")
        if rl_config.toColorCanUse == "rl_safe_eval":
            raise PackConfigError("rl_config.toColorCanUse is 'rl_safe_eval' (CVE-2023-33733); use the default")
        # Nothing may be fetched while rendering: no scheme is trusted (not file, data, http, https or ftp)
        # and no host. Packs never refer to a file or URL; this is the second line behind para_text.
        rl_config.trustedSchemes = []
        rl_config.trustedHosts = []
        # Binary streams: ASCII85 costs time (pure Python without rl_accel) and makes the file 20% larger.
        rl_config.useA85 = 0
        rl_config.pageCompression = 1
        slow = [name for name in _ACCELERATED if not inspect.isbuiltin(getattr(_rl_accel_interface, name, None))]
        if slow:
            raise PackConfigError("ReportLab's C accelerator (rl_accel, from reportlab[accel]) is not in use for "
                                  + ", ".join(slow))


# ---- R49: the one way text reaches a Paragraph ---------------------------------------------------------------


def para_text(value: str) -> str:
    """Text as Paragraph markup that shows exactly ``value``: ``xml.sax.saxutils.escape``, then newline → ``<br/>``.

    Line endings are normalised first, control and bidi-override characters are dropped and lone surrogates
    become U+FFFD, none of which can be shown.
    """
    return escape(_clean(value)).replace("\n", "<br/>")


def _clean(value: str) -> str:
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return _LONE_SURROGATE.sub("\ufffd", _UNPRINTABLE.sub("", text))


def _para(text: str, style: ParagraphStyle, *, bullet: bool = False) -> Paragraph:
    """The only place that builds a Paragraph: always from :func:`para_text` (the bullet is a constant)."""
    return Paragraph(para_text(text), style, bulletText="•" if bullet else None)


def _paras(text: str, style: ParagraphStyle, *, bullet: bool = False) -> list[Flowable]:
    """A value of any length as consecutive paragraphs of at most ``_CHUNK_CHARS`` characters and
    ``_CHUNK_LINES`` lines, cut at line ends (very long lines at a space). They read as one paragraph: the
    value style has no space between paragraphs.

    ReportLab re-wraps the rest of a paragraph each time it splits it over a page, so one paragraph of 10,000
    lines costs time in proportion to pages × lines (30 s for 200 pages); pieces that fit on a page keep it
    in proportion to the length.
    """
    pieces = _chunks(_clean(text))
    out = [_para(pieces[0], style, bullet=bullet)]
    return out + [_para(piece, _continuation(style)) for piece in pieces[1:]]


@lru_cache(maxsize=64)
def _continuation(style: ParagraphStyle) -> ParagraphStyle:
    return ParagraphStyle(f"{style.name}-continued", parent=style, spaceBefore=0)


def _chunks(text: str) -> list[str]:
    if len(text) <= _CHUNK_CHARS and text.count("\n") < _CHUNK_LINES:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if current:
            pieces.append("\n".join(current))
            current.clear()
            size = 0

    for line in text.split("\n"):
        while len(line) > _CHUNK_CHARS:
            cut = line.rfind(" ", _CHUNK_CHARS // 2, _CHUNK_CHARS)
            cut = cut if cut > 0 else _CHUNK_CHARS
            flush()
            pieces.append(line[:cut])
            line = line[cut:]
        if current and (size + len(line) > _CHUNK_CHARS or len(current) >= _CHUNK_LINES):
            flush()
        current.append(line)
        size += len(line) + 1
    flush()
    return pieces


def _plain(text: str) -> str:
    """Text for a single canvas line: whitespace runs (and newlines) as one space, unprintables dropped."""
    return " ".join(_clean(text).split())


# ---- styles ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Styles:
    title: ParagraphStyle
    subtitle: ParagraphStyle
    name: ParagraphStyle
    h2: ParagraphStyle
    h3: ParagraphStyle
    label: ParagraphStyle
    label_first: ParagraphStyle
    value: ParagraphStyle
    note: ParagraphStyle
    bullet: ParagraphStyle
    restricted_heading: ParagraphStyle
    restricted_marker: ParagraphStyle
    restricted_name: ParagraphStyle
    restricted_bullet: ParagraphStyle
    summary: ParagraphStyle


@lru_cache(maxsize=8)
def _styles(fonts: PackFonts) -> _Styles:
    body = ParagraphStyle("pack-body", fontName=fonts.regular, fontSize=10, leading=_BODY_LEADING, textColor=_INK,
                          bulletFontName=fonts.regular, bulletFontSize=10)
    bold = ParagraphStyle("pack-bold", parent=body, fontName=fonts.bold, bulletFontName=fonts.bold)

    def derive(name: str, parent: ParagraphStyle, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=parent, **kw)

    return _Styles(
        title=derive("pack-title", bold, fontSize=22, leading=27, spaceAfter=2 * mm),
        subtitle=derive("pack-subtitle", body, textColor=_GREY, spaceAfter=5 * mm),
        name=derive("pack-name", bold, fontSize=26, leading=31, spaceAfter=3 * mm),
        h2=derive("pack-h2", bold, fontSize=16, leading=20, spaceBefore=7 * mm, spaceAfter=1.5 * mm),
        h3=derive("pack-h3", bold, fontSize=12, leading=15, spaceBefore=4 * mm, spaceAfter=1 * mm),
        label=derive("pack-label", bold, spaceBefore=2.5 * mm),
        label_first=derive("pack-label-first", bold),
        value=derive("pack-value", body),
        note=derive("pack-note", body, fontSize=9, leading=12, textColor=_GREY, spaceAfter=1 * mm),
        bullet=derive("pack-bullet", body, leftIndent=6 * mm, bulletIndent=1.5 * mm, spaceBefore=1 * mm),
        restricted_heading=derive("pack-restricted-heading", bold, fontSize=12, leading=15, textColor=_RED,
                                  spaceAfter=1 * mm),
        restricted_marker=derive("pack-restricted-marker", bold, textColor=_RED),
        restricted_name=derive("pack-restricted-name", bold, leftIndent=3 * mm, rightIndent=3 * mm,
                               spaceBefore=2 * mm),
        restricted_bullet=derive("pack-restricted-bullet", body, leftIndent=9 * mm, rightIndent=3 * mm,
                                 bulletIndent=4.5 * mm, spaceBefore=0.5 * mm),
        summary=derive("pack-summary", bold, textColor=_GREY, spaceAfter=1 * mm),
    )


# ---- the photo -------------------------------------------------------------------------------------------------


class _JpegReader(ImageReader):  # type: ignore[misc]  # reportlab has no type hints
    """An ImageReader for JPEG bytes we already hold, embedded as they are (one DCTDecode XObject).

    ``Canvas.drawImage`` calls ``getRGBData()`` only to name the image XObject (so a photo drawn twice is
    stored once), then embeds the file through ``jpeg_fh()`` without decoding it. The stock ImageReader would
    decode every pixel just for that name; the JPEG's own bytes name it as uniquely.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        if self.jpeg_fh() is None:
            raise ValueError("not a JPEG")
        self._jpeg = data
        self._dataA = None  # no alpha channel, so no soft mask

    def getRGBData(self) -> bytes:
        return self._jpeg


class _Photo(Image):  # type: ignore[misc]  # reportlab has no type hints
    """A platypus Image drawn from a :class:`_JpegReader`, scaled to fit the box with its aspect kept."""

    def __init__(self, reader: ImageReader, max_width: float, max_height: float) -> None:
        self._img = reader  # set first: Image would otherwise open its own, decoding, ImageReader
        pixel_width, pixel_height = reader.getSize()
        scale = min(max_width / pixel_width, max_height / pixel_height)
        super().__init__(io.BytesIO(), width=pixel_width * scale, height=pixel_height * scale)


def _photo(data: bytes) -> Flowable:
    try:
        reader: ImageReader = _JpegReader(data)
    except ValueError:  # not a JPEG after all (photos are stored as JPEG): ReportLab re-encodes it losslessly
        reader = ImageReader(io.BytesIO(data))
    return _Photo(reader, PHOTO_MAX_WIDTH, PHOTO_MAX_HEIGHT)


# ---- the story -------------------------------------------------------------------------------------------------


def build_story(doc: PackDocument, fonts: PackFonts) -> list[Flowable]:
    """The pack's flowables: the first page, then every section (MISSING, and a missing episode's Part 2, on
    pages of their own)."""
    st = _styles(fonts)
    story: list[Flowable] = []
    story += _first_page(doc, st)
    sections = list(doc.sections)
    for index, section in enumerate(sections):
        if index == 0 or section.code in OWN_PAGES or sections[index - 1].code in OWN_PAGES:
            story.append(PageBreakIfNotEmpty())
        story += _section(doc, section, st)
    return story


def _first_page(doc: PackDocument, st: _Styles) -> list[Flowable]:
    fp = doc.first_page
    title = POLICE_PACK_TITLE if doc.section(MISSING_PART2_CODE) is not None else "Handover pack"
    out: list[Flowable] = [_para(title, st.title)]
    prepared = f"Prepared for {doc.prepared_for}"
    if doc.recipient_title:
        prepared += f" ({doc.recipient_title})"
    out.append(_para(f"{prepared} on {doc.prepared_on}. Version {doc.version}.", st.subtitle))

    beside_photo = _identity(doc, st, with_legal_name=True)
    if fp.key_risks or doc.section("RISK") is not None:  # "none recorded" only where RISK is shared at all
        beside_photo += _key_risks(fp.key_risks, st)
    out += _with_photo(fp.photo, beside_photo)

    if fp.restricted_persons:
        out.append(Spacer(0, 4 * mm))
        out += _boxed(_restricted_box(doc, st))

    if fp.out_of_hours:
        out += _heading("Out of hours", st.h3)
        for label, value in fp.out_of_hours:
            out += _label_value(label, value, st)

    out += _heading("Sent by", st.h3)
    out += _paras(doc.sending_authority, st.value)
    if doc.sender_contact:
        out += _paras(doc.sender_contact, st.value)
    return out


def _identity(doc: PackDocument, st: _Styles, *, with_legal_name: bool) -> list[Flowable]:
    fp = doc.first_page
    out: list[Flowable] = [_para(fp.preferred_name, st.name)]
    if with_legal_name and fp.legal_name:
        out += _label_value("Legal name", fp.legal_name, st, first=True, keep=False)
    if fp.date_of_birth:
        out += _label_value("Date of birth", fp.date_of_birth, st, first=not (with_legal_name and fp.legal_name),
                            keep=False)
    if fp.photo is not None and fp.photo_taken_on:
        out += _label_value("Photo taken", fp.photo_taken_on, st, keep=False)
    return out


def _key_risks(risks: Iterable[str], st: _Styles) -> list[Flowable]:
    items = list(risks)
    out: list[Flowable] = [_para("Key risks", st.h3)]
    if not items:
        return [*out, _para("No key risks recorded.", st.value)]
    for risk in items:
        out += _paras(risk, st.bullet, bullet=True)
    return out


def _with_photo(photo: bytes | None, flowables: list[Flowable]) -> list[Flowable]:
    """The flowables with the photo on their right (text wraps under it), or as they are without a photo."""
    if photo is None:
        return flowables
    return [ImageAndFlowables(_photo(photo), flowables, imageLeftPadding=6 * mm, imageRightPadding=0,
                              imageBottomPadding=4 * mm, imageSide="right")]


def _restricted_box(doc: PackDocument, st: _Styles) -> list[Flowable]:
    out: list[Flowable] = _heading(RESTRICTED_HEADING, st.restricted_heading, lines_after=4)
    for person in doc.first_page.restricted_persons:
        who = f"{person.name} ({person.relationship})" if person.relationship else person.name
        out += _heading(who, st.restricted_name, lines_after=2)
        for reason in person.reasons:
            out += _paras(reason, st.restricted_bullet, bullet=True)
    return out


def _boxed(flowables: list[Flowable]) -> list[Flowable]:
    """A red-bordered, tinted box that may run over a page break (FrameBG, not a table: R52)."""
    return [
        FrameBG(color=_RED_TINT, strokeColor=_RED, strokeWidth=1.5, start=True),
        Spacer(0, 2 * mm),
        *flowables,
        Spacer(0, 3 * mm),
        FrameBG(start=False),
    ]


def _heading(text: str, style: ParagraphStyle, *, lines_after: int = 3) -> list[Flowable]:
    """A heading that never ends a page: it moves on with the first lines of what follows.

    A ``CondPageBreak`` sized for the heading and ``lines_after`` body lines, not ``keepWithNext``: that wraps
    the heading and everything it keeps together twice (a third of the render time of a 20-page pack), and
    moves a whole long answer to the next page where this keeps its first lines with the heading.
    """
    room = style.spaceBefore + 2 * style.leading + style.spaceAfter + lines_after * _BODY_LEADING
    return [CondPageBreak(room), _para(text, style)]


def _label_value(label: str, value: str, st: _Styles, *, first: bool = False, keep: bool = True
                 ) -> list[Flowable]:
    """A label in bold and its value below it. ``keep=False`` inside containers (beside the photo), where a
    page-break test cannot act."""
    shown = value if value.strip() else "Not recorded"
    style = st.label_first if first else st.label
    head = _heading(label, style, lines_after=2) if keep else [_para(label, style)]
    return [*head, *_paras(shown, st.value)]


def _items(items: Iterable[PackItem], st: _Styles) -> list[Flowable]:
    out: list[Flowable] = []
    for item in items:
        out += _label_value(item.label, item.value, st)
    return out


def _section(doc: PackDocument, section: PackSection, st: _Styles) -> list[Flowable]:
    missing = section.code in OWN_PAGES
    out: list[Flowable] = _heading(MISSING_TITLE if section.code == MISSING_CODE else section.title, st.h2,
                                   lines_after=5)
    if missing:
        # Printable on its own for the police: who the child is, with the photo, at the top of the page.
        out.append(Spacer(0, 2 * mm))
        out += _with_photo(doc.first_page.photo, _identity(doc, st, with_legal_name=True))
    if section.level == "summary":
        out.append(_para("Summary only: the headline facts this recipient needs.", st.summary))
    out.append(_para(section.reviewed, st.note))
    out += _items(section.items, st)
    if section.entries:
        if section.entry_plural:
            out += _heading(section.entry_plural[:1].upper() + section.entry_plural[1:], st.h3, lines_after=5)
        for entry in section.entries:
            out += _entry(entry, st)
    if section.documents:
        out += _heading("Documents (attached after this pack)", st.h3)
        for name in section.documents:
            out += _paras(name, st.bullet, bullet=True)
    if not (section.items or section.entries or section.documents):
        out.append(_para("Nothing recorded yet.", st.value))
    return out


def _entry(entry: PackEntry, st: _Styles) -> list[Flowable]:
    out: list[Flowable] = _heading(entry.title, st.h3, lines_after=4)
    if entry.restricted:
        out.append(_para(RESTRICTED_HEADING, st.restricted_marker))
    out += _items(entry.items, st)
    return out


# ---- pages: header, footer, "Page N of M", the page limit ------------------------------------------------------


def template_kwargs(doc: PackDocument, fonts: PackFonts) -> dict[str, Any]:
    """SimpleDocTemplate arguments: A4, the margins, neutral metadata (R54: no child's name), and DejaVu as the
    canvas's initial font (otherwise every page names Helvetica, unused, as a resource)."""
    return {
        "pagesize": A4,
        "leftMargin": MARGIN_X,
        "rightMargin": MARGIN_X,
        "topMargin": MARGIN_TOP,
        "bottomMargin": MARGIN_BOTTOM,
        "title": doc.reference,
        "author": doc.sending_authority,
        "subject": SUBJECT,
        "creator": CREATOR,
        "producer": CREATOR,
        "keywords": [],
        "lang": "en-GB",
        "initialFontName": fonts.regular,
    }


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut with an ellipsis so it fits ``width`` points (for single header and footer lines)."""
    if stringWidth(text, font, size) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if stringWidth(text[:mid] + "…", font, size) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + "…"


def page_furniture(doc: PackDocument, fonts: PackFonts) -> Callable[[Canvas, BaseDocTemplate], None]:
    """The onPage function: marking, "Prepared for … on …" and reference at the top; at the bottom the handling
    footer (R86: how to keep and destroy the pack, version and generation date, the sender's contact), then
    marking and reference. "Page N of M" is added by :func:`pack_canvas` once the page count is known."""
    marking = _plain(doc.marking)
    reference = _plain(doc.reference)
    prepared = _plain(f"Prepared for {doc.prepared_for} on {doc.prepared_on}")
    left, right = MARGIN_X, PAGE_WIDTH - MARGIN_X
    handling = _fit(_plain(f"{HANDLING_INSTRUCTION} Version {doc.version}, generated {doc.prepared_on}."),
                    fonts.regular, 7, right - left)
    contact = _fit(_plain(f"Sender: {doc.sender_contact or doc.sending_authority}"), fonts.regular, 7, right - left)

    def draw(canv: Canvas, _template: BaseDocTemplate) -> None:
        canv.saveState()
        canv.setFillColor(_INK)
        canv.setFont(fonts.bold, 10)
        canv.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT - 10 * mm, marking)
        canv.setFont(fonts.bold, 8.5)
        canv.drawRightString(right, PAGE_HEIGHT - 16 * mm, reference)
        room = right - left - stringWidth(reference, fonts.bold, 8.5) - 6 * mm
        canv.setFont(fonts.regular, 8.5)
        canv.drawString(left, PAGE_HEIGHT - 16 * mm, _fit(prepared, fonts.regular, 8.5, room))
        canv.setStrokeColor(_RULE)
        canv.setLineWidth(0.5)
        canv.line(left, PAGE_HEIGHT - 18.5 * mm, right, PAGE_HEIGHT - 18.5 * mm)
        canv.line(left, 14 * mm, right, 14 * mm)
        canv.setFont(fonts.regular, 7)
        canv.drawCentredString(PAGE_WIDTH / 2, 17.6 * mm, handling)
        canv.drawCentredString(PAGE_WIDTH / 2, 15.0 * mm, contact)
        canv.setFont(fonts.bold, 10)
        canv.drawCentredString(PAGE_WIDTH / 2, 8 * mm, marking)
        canv.setFont(fonts.regular, 8.5)
        canv.drawString(left, 8 * mm, _fit(reference, fonts.regular, 8.5, PAGE_WIDTH / 2 - left - 25 * mm))
        canv.restoreState()

    return draw


class _PageLimitReachedError(Exception):
    """Raised inside the build; render_pack turns it into PackTooLargeError. (ReportLab re-creates exceptions
    that pass through its page handlers with a longer message, so the public error is raised outside them.)"""


def pack_canvas(doc: PackDocument, fonts: PackFonts, *, max_pages: int = MAX_PAGES) -> type[Canvas]:
    """A Canvas class that holds each finished page back until the end, so it can write "Page N of M" on all of
    them in one pass (no second layout), and that raises :class:`PackTooLargeError` on page ``max_pages + 1``."""
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    right = PAGE_WIDTH - MARGIN_X

    class PackCanvas(Canvas):  # type: ignore[misc]  # reportlab has no type hints
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._held_pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            if len(self._held_pages) >= max_pages:
                raise _PageLimitReachedError(max_pages)
            self._held_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            if self._code:  # anything drawn after the last page break
                self.showPage()
            total = len(self._held_pages)
            for number, page in enumerate(self._held_pages, start=1):
                self.__dict__.update(page)
                self.saveState()
                self.setFillColor(_INK)
                self.setFont(fonts.regular, 8.5)
                self.drawRightString(right, 8 * mm, f"Page {number} of {total}")
                self.restoreState()
                Canvas.showPage(self)
            Canvas.save(self)

    return PackCanvas


def render_pack(doc: PackDocument, fonts: PackFonts, *, max_pages: int = MAX_PAGES) -> bytes:
    """The pack as unencrypted PDF bytes (encrypt with :func:`transitions.pdf.encrypt_pdf` before storing).

    Raises :class:`PackTooLargeError` past ``max_pages`` pages and :class:`PackConfigError` if ReportLab is
    not configured safely.
    """
    harden_reportlab()
    out = io.BytesIO()
    template = SimpleDocTemplate(out, **template_kwargs(doc, fonts))
    furniture = page_furniture(doc, fonts)
    try:
        template.build(build_story(doc, fonts), onFirstPage=furniture, onLaterPages=furniture,
                       canvasmaker=pack_canvas(doc, fonts, max_pages=max_pages))
    except _PageLimitReachedError:
        raise PackTooLargeError(max_pages) from None
    return out.getvalue()


def appendix_stamp(doc: PackDocument, fonts: PackFonts) -> bytes:
    """One transparent A4 page with the marking at the top and bottom and "<reference>: attached document",
    laid over every page of an attached document so that those pages are marked too."""
    harden_reportlab()
    out = io.BytesIO()
    canv = Canvas(out, pagesize=A4, initialFontName=fonts.regular)
    marking = _plain(doc.marking)
    note = _plain(f"{doc.reference}: document attached to the handover pack prepared for {doc.prepared_for}")
    canv.setFillColor(_INK)
    canv.setFont(fonts.bold, 9)
    canv.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT - 7 * mm, marking)
    canv.drawCentredString(PAGE_WIDTH / 2, 4 * mm, marking)
    canv.setFont(fonts.regular, 7)
    canv.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT - 10.5 * mm,
                           _fit(note, fonts.regular, 7, PAGE_WIDTH - 2 * MARGIN_X))
    canv.showPage()
    canv.save()
    return out.getvalue()
