"""Property-based tests (security.md R84) for the three places untrusted input is parsed: the form definitions
and the values typed into them, the one text helper in front of ReportLab (R49), and uploads (R58–R60).

Each property says what must hold for *every* input, not just the examples in the unit tests: it returns a
result or raises the module's named error, never anything else, and what it accepts is clean. Cheap properties
run 500 examples (R84); those that decode an image, render a PDF or start the PDF-check subprocess run fewer,
with the reason next to them, so the whole file stays well under 20 s.
"""

from __future__ import annotations

import io
import re
import shutil
import string
import tempfile
import unicodedata
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pypdf
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph, SimpleDocTemplate
from reportlab.platypus.paraparser import ParaParser
from werkzeug.http import parse_options_header
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response

from transitions.formdefs import FIELD_TYPES, FieldDef, FormDefinitionError, load_definitions
from transitions.formdefs import sections as sections_module
from transitions.paths import FORMS_DIR, PDF_FONTS_DIR
from transitions.pdf import harden_reportlab, load_fonts, para_text
from transitions.services import values
from transitions.services.values import FieldInput, check_field
from transitions.uploads import UploadRejectedError, check_pdf, clean_photo, safe_display_name
from transitions.uploads.names import MAX_NAME_LENGTH

pytestmark = pytest.mark.security

CHEAP = settings(max_examples=500, deadline=None, database=None)

# ---- (a) form definitions and the values typed into them ------------------------------------------------------

DEFINITIONS = load_definitions(FORMS_DIR)
CODE_LISTS = DEFINITIONS.code_lists
ALL_FIELDS: list[FieldDef] = [f for s in DEFINITIONS.ordered() for f in s.all_fields if not f.is_upload]

# TOML values: what tomllib can hand the loader for any key.
toml_scalars = st.one_of(st.text(max_size=12), st.integers(-5, 1000), st.booleans(), st.floats(allow_nan=False),
                         st.dates())
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=10), inner, max_size=3),
                           max_leaves=8)
FIELD_KEYS = ("id", "label", "hint", "type", "requirement", "sensitivity", "errors", "codes", "not_known",
              "required_if", "when", "in_summary", "past", "max_length")
# Values near the valid ones, so the loader's later checks are reached, not only the first.
near_valid = {
    "id": st.sampled_from(["name", "Name", "", "x_1", "1x"]),
    "type": st.sampled_from([*sorted(FIELD_TYPES), "slider", ""]),
    "requirement": st.sampled_from(["mandatory", "optional", "conditional", "sometimes"]),
    "sensitivity": st.sampled_from(["normal", "high", "identity_protected", "secret"]),
    "codes": st.sampled_from([*sorted(CODE_LISTS), "NO_SUCH_LIST"]),
    "errors": st.dictionaries(st.sampled_from(["required", "invalid", "choice", "too_long", "future", "odd"]),
                              st.one_of(st.text(max_size=8), st.integers()), max_size=4),
    "required_if": st.one_of(st.fixed_dictionaries({"field": st.text(max_size=6), "in": toml_values}),
                             toml_values),
}


@st.composite
def field_tables(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from((*FIELD_KEYS, "surprise")), unique=True, max_size=len(FIELD_KEYS)))
    return {key: draw(st.one_of(near_valid[key], toml_values) if key in near_valid else toml_values)
            for key in keys}


@CHEAP
@given(field_tables())
@example({"id": "x", "label": "X", "type": "text", "requirement": "mandatory", "errors": ["required"]})
@example({"id": "x", "label": "X", "type": "choice", "requirement": "optional", "codes": ["SEX"]})
def test_any_field_table_loads_or_is_refused_with_a_named_error(raw: dict[str, Any]) -> None:
    """The loader's only failure is FormDefinitionError naming where: never a TypeError from a wrong TOML type."""
    try:
        f = sections_module._field(raw, "sections/x.toml", CODE_LISTS)
    except FormDefinitionError as exc:
        assert str(exc).startswith("sections/x.toml")
        return
    assert f.type in FIELD_TYPES and isinstance(f.label, str) and f.label


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_in_a_definition_file_stop_start_up_with_a_named_error(forms_copy: Path, data: bytes) -> None:
    """100, not 500: each example re-reads and re-checks all 30 files under forms/ (about 12 ms); the field
    tables above get the 500."""
    target = forms_copy / "sections" / "voice.toml"
    target.write_bytes(data)
    with pytest.raises(FormDefinitionError) as caught:
        load_definitions(forms_copy)
    assert "voice.toml" in str(caught.value) or "VOICE" in str(caught.value)


@pytest.fixture(scope="module")
def forms_copy() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "forms"
        shutil.copytree(FORMS_DIR, target)
        yield target


text_typed = st.one_of(st.text(max_size=60), st.text(string.digits + " +()-.,", max_size=20),
                       st.sampled_from(["yes", "no", "SW1A 1AA", "sw1a1aa", "a@b.example", "07700 900123"]), st.none())
ERROR_KINDS = ("required", "invalid", "choice", "too_long", "future")


@st.composite
def form_inputs(draw: st.DrawFn) -> tuple[FieldDef, FieldInput]:
    """A field and what the generated form can hand the service for it (section_forms.read_inputs): a date or
    nothing or "not a real date" for dates, a list of codes for checkboxes, text or nothing otherwise."""
    f = draw(st.sampled_from(ALL_FIELDS))
    not_known = draw(st.booleans())
    if f.type == "date":
        if draw(st.booleans()):
            return f, FieldInput(date_invalid=True, not_known=not_known)
        return f, FieldInput(value=draw(st.dates() | st.none()), not_known=not_known)
    if f.type == "choices":
        codes = sorted(f.codes.codes) if f.codes else []
        return f, FieldInput(value=draw(st.lists(st.sampled_from([*codes, "", "NOPE"]), max_size=4)),
                             not_known=not_known)
    known = sorted(f.codes.codes) if f.codes else []
    return f, FieldInput(value=draw(text_typed | st.sampled_from([*known, "NOPE"])), not_known=not_known)


@CHEAP
@given(given_input=form_inputs(), today=st.dates())
def test_every_typed_value_is_stored_or_named_and_what_is_stored_checks_again_unchanged(
        given_input: tuple[FieldDef, FieldInput], today: date) -> None:
    """check_field never raises; it gives a value or the field's own GOV.UK error text. What it stores is a fixed
    point (checking it again gives the same value, so nothing drifts across edits) and displays without error."""
    f, typed = given_input
    stored, error = check_field(f, typed, today=today)
    if error is not None:
        assert stored is None and error in {f.error(kind) for kind in ERROR_KINDS}
        return
    if stored is None or values.is_not_known(stored):
        return
    again_input = date.fromisoformat(stored) if f.type == "date" else stored
    assert isinstance(stored, str | list)
    assert check_field(f, FieldInput(value=again_input), today=today) == (stored, None)
    assert isinstance(values.display(f, stored), str)
    assert "\x00" not in str(stored)


@CHEAP
@given(st.dates())
def test_a_date_round_trips_through_storage_and_words(day: date) -> None:
    date_fields = [f for f in ALL_FIELDS if f.type == "date" and not f.past]
    assume(date_fields)
    stored, error = check_field(date_fields[0], FieldInput(value=day))
    assert error is None and date.fromisoformat(str(stored)) == day
    words = values.format_date(str(stored))
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{1,4}", words)
    day_text, month, year = words.split()
    assert date(int(year), values._MONTHS.index(month) + 1, int(day_text)) == day


@CHEAP
@given(st.text(max_size=40))
def test_nhs_number_check_never_raises_and_accepts_only_ten_digits(value: str) -> None:
    if values.valid_nhs_number(value):
        digits = "".join(value.split())
        assert len(digits) == 10 and digits.isascii() and digits.isdigit()
        assert values.valid_nhs_number(values.format_nhs_number(value))


# ---- (b) the one text helper in front of ReportLab (R49) -----------------------------------------------------

_PLAIN = ParagraphStyle("plain", fontName="Helvetica")
_PARSER = ParaParser()
markupish = st.text(alphabet=st.sampled_from(list("<>&;\"'/=[]#:bfontcolrimgsaef x\n\r\t")) | st.characters(),
                    max_size=80)


def _shown(fragments: list[Any]) -> str:
    return "".join("\n" if getattr(frag, "lineBreak", False) else frag.text for frag in fragments)


@CHEAP
@given(markupish)
@example('<font color="[[[getattr(pow, Word(\'__globals__\'))]]]">x</font>')
@example('<img src="/etc/passwd"/><a href="javascript:alert(1)">x</a><b>unclosed &amp; &#60; &')
def test_para_text_never_parses_as_a_tag_and_shows_exactly_the_text(value: str) -> None:
    """ReportLab's own parser reads para_text's output as plain text only: every fragment is in the paragraph's
    own font with no link or image, and the text shown is the input (control and bidi characters dropped,
    newlines as line breaks)."""
    markup = para_text(value)
    parsed = _PARSER.parse(markup, _PLAIN)
    assert parsed is not None, markup
    _style, fragments, _bullet = parsed
    for frag in fragments:
        assert frag.fontName == "Helvetica" and not frag.bold and not frag.italic
        assert not frag.link and not hasattr(frag, "cbDefn") and not frag.rise
    cleaned = value.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", "", cleaned)
    cleaned = re.sub("[\ud800-\udfff]", "\ufffd", cleaned)
    assert _shown(fragments) == cleaned


# Text DejaVu Sans has glyphs for and pypdf extracts one to one (no combining marks or ligature candidates).
printable = st.text(alphabet=st.characters(codec="utf-8", categories=("Lu", "Ll", "Nd", "Po", "Sm"),
                                           max_codepoint=0x04FF) | st.sampled_from(list("<>&\"' /=[]")),
                    min_size=1, max_size=60)


@settings(max_examples=200, deadline=None, database=None)
@given(printable)
@example("Łukasz Nguyễn Văn Ōkubo Şahin <b>x</b> & <img src='/etc/passwd'/>")
def test_text_extracted_from_the_rendered_pdf_is_what_was_written(value: str) -> None:
    """200, not 500: each example renders and re-reads a one-paragraph PDF (about 5 ms); the parser property
    above gets the 500. Whitespace is compared loosely, as
    ReportLab wraps lines and pypdf re-spaces them; every other character must come back in order."""
    harden_reportlab()
    fonts = load_fonts(PDF_FONTS_DIR)
    out = io.BytesIO()
    style = ParagraphStyle("body", fontName=fonts.regular, fontSize=10, leading=12)
    SimpleDocTemplate(out).build([Paragraph(para_text(value), style)])
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(out.getvalue())).pages)

    def squeeze(s: str) -> str:
        return unicodedata.normalize("NFC", "".join(s.split()))

    assert squeeze(text) == squeeze(value)
    assert "■" not in text


# ---- (c) uploads: photos, PDFs and their names (R58–R60) ----------------------------------------------------


def _image(kind: str, size: tuple[int, int]) -> bytes:
    img = Image.new("RGB", size, (200, 40, 90))
    out = io.BytesIO()
    if kind == "JPEG":
        exif = Image.Exif()
        exif[0x010F] = "CanaryCam"  # Make
        img.save(out, "JPEG", exif=exif.tobytes(), comment=b"canary comment")
    else:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Author", "canary author")
        img.save(out, "PNG", pnginfo=info)
    return out.getvalue()


SMALL_JPEG = _image("JPEG", (16, 12))
SMALL_PNG = _image("PNG", (16, 12))


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([SMALL_JPEG, SMALL_PNG])))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(len(data) // 2, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8))


def _assert_clean_jpeg(data: bytes) -> None:
    assert data.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert not img.getexif() and "comment" not in img.info and "icc_profile" not in img.info
        assert not any(key in img.info for key in ("exif", "xmp", "photoshop"))
    assert b"canary" not in data and b"CanaryCam" not in data


@CHEAP
@given(st.one_of(mutated_images(), st.binary(max_size=64).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
                 st.binary(max_size=64).map(lambda b: b"\xff\xd8\xff" + b), st.binary(max_size=64)))
@example(SMALL_JPEG)
@example(SMALL_PNG)
def test_any_bytes_as_a_photo_are_cleaned_or_refused_by_name(data: bytes) -> None:
    """Whatever survives is a metadata-free JPEG (the seeds carry an EXIF Make, a JPEG comment and a PNG text
    chunk, all "canary"); everything else is UploadRejectedError with a message to show. The images are tiny
    (16 x 12), so 500 examples cost well under a second."""
    try:
        photo = clean_photo(data, max_pixels=1_000_000)
    except UploadRejectedError as exc:
        assert exc.message.startswith(("The selected", "The photo")) and "canary" not in exc.message
        return
    _assert_clean_jpeg(photo.data)
    assert photo.media_type == "image/jpeg" and photo.width * photo.height <= 1_000_000


@settings(max_examples=500, deadline=None, database=None)
@given(st.binary(max_size=200).filter(lambda b: not b.startswith(b"%PDF-")))
def test_bytes_that_are_not_a_pdf_are_refused_before_any_parsing(data: bytes) -> None:
    with pytest.raises(UploadRejectedError) as caught:
        check_pdf(data)
    assert caught.value.message in ("The selected file is empty", "The selected file must be a PDF")


@settings(max_examples=20, deadline=None, database=None)
@given(st.binary(max_size=400).map(lambda b: b"%PDF-1.7\n" + b))
def test_any_bytes_after_the_pdf_magic_are_refused_by_name_in_the_worker(data: bytes) -> None:
    """20, not 500: each example starts the limited pikepdf subprocess (about 90 ms). Random bytes are never a
    PDF with a page, so each must be refused with a named message, never a crash in the web process."""
    with pytest.raises(UploadRejectedError) as caught:
        check_pdf(data)
    assert caught.value.message.startswith("The selected")


_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@CHEAP
@given(st.text(max_size=400) | st.sampled_from(["../../app/config.py", "CON.pdf", "a\r\nb.pdf", "\u202egnp.exe",
                                                  "..", "...", "x" * 300 + ".pdf", "C:\\Windows\\evil.pdf"]))
def test_display_names_are_short_flat_and_printable(name: str) -> None:
    shown = safe_display_name(name)
    assert 1 <= len(shown) <= MAX_NAME_LENGTH
    assert "/" not in shown and "\\" not in shown
    assert not any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in shown)
    assert not shown.startswith((".", " ")) and not shown.endswith((".", " ")) and "  " not in shown
    assert safe_display_name(shown) == shown  # stable: storing and showing again changes nothing
    response = Response(b"%PDF-")
    response.headers.set("Content-Disposition", "attachment", filename=shown)
    header = response.headers["Content-Disposition"]
    assert "\r" not in header and "\n" not in header
    disposition, options = parse_options_header(header)
    assert disposition == "attachment" and options.get("filename") is not None
    assert secure_filename(shown) == secure_filename(safe_display_name(name))

