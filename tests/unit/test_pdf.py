"""Handover-pack PDFs (security.md C7: R49–R54; stack.md §4). Every fixture is built here in code.

The PDFs are read back with pypdf (text, decryption) and pikepdf (objects, encryption), never with the code
under test. ``sample_document`` and ``sample_photo`` are also used by bench/b_pdf_render.py.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pikepdf
import pypdf
import pytest
from PIL import Image, ImageDraw
from reportlab import rl_config
from reportlab.lib import rl_accel
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import SimpleDocTemplate

from transitions.paths import PDF_FONTS_DIR, REPO_ROOT
from transitions.pdf import (
    MAX_PAGES,
    MISSING_TITLE,
    FirstPage,
    PackConfigError,
    PackDocument,
    PackEntry,
    PackFontError,
    PackFonts,
    PackItem,
    PackSection,
    PackTooLargeError,
    RestrictedPersonLine,
    appendix_stamp,
    build_story,
    encrypt_pack,
    encrypt_pdf,
    harden_reportlab,
    load_fonts,
    new_pdf_password,
    pack_canvas,
    page_furniture,
    para_text,
    render_pack,
    template_kwargs,
)
from transitions.pdf import encrypt as encrypt_module
from transitions.pdf import render as render_module
from transitions.pdf.render import HANDLING_INSTRUCTION

pytestmark = pytest.mark.security

NAMES = "Łukasz Nguyễn Văn Ōkubo Şahin"
PAYLOADS = (
    '<img src="/etc/passwd"/>',
    '<a href="javascript:alert(1)">x</a>',
    "<b>unclosed",
    "<font color=\"[[[getattr(pow, Word('__globals__'))]]]\">",
)
PDF_DIR = REPO_ROOT / "transitions" / "pdf"


# --- fixtures and helpers ------------------------------------------------------------------------------------


def sample_photo(size: tuple[int, int] = (600, 800), quality: int = 85) -> bytes:
    """A portrait JPEG like a cleaned upload (no metadata): a face-like oval on a plain background."""
    width, height = size
    img = Image.new("RGB", size, (180, 200, 230))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width * 0.25, height * 0.12, width * 0.75, height * 0.55), fill=(230, 190, 160))
    draw.rectangle((width * 0.12, height * 0.62, width * 0.88, height), fill=(60, 90, 140))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def sample_document(*, photo: bytes | None = None, care_items: int = 8, **first_page: Any) -> PackDocument:
    """A fictional pack with every kind of content: first page, a full and a summary section, MISSING, entries
    (one restricted), documents. ``care_items`` long answers in CARE set the length (about 2.4 pages per 10)."""
    fp = FirstPage(
        preferred_name="Jade",
        legal_name="Jade Amelia Thornton",
        date_of_birth="14 February 2012",
        photo=photo,
        photo_taken_on="3 September 2026" if photo else "",
        key_risks=("Goes missing after contact with her father; usually found near the bus station",
                   "Severe peanut allergy: carries two adrenaline pens",
                   "Self-harm when anxious at night: remove ligature risks"),
        restricted_persons=(RestrictedPersonLine("Darren Thornton", "Father",
                                                 ("Non-molestation order until 2027 (ref CA-2026-114)",
                                                  "Must not know the placement address")),),
        out_of_hours=(("Emergency duty team", "0300 123 4567 (17:00–09:00 and weekends)"),
                      ("Social worker", "Amy Jones, 07700 900123"),
                      ("Police contact", "PC 1234 Brown, 101 extension 555")),
    )
    if first_page:
        fp = dataclasses.replace(fp, **first_page)
    answer = ("Jade settles best with a predictable evening routine: tea at six, a bath, then time on her own "
              "with music before lights out at ten. She does not like being asked about home at bedtime. ")
    sections = (
        PackSection("HEALTH", "Health", "full", 3, "Last reviewed 3 March 2026",
                    items=(PackItem("GP", "Dr Patel, Botchergate Surgery\nTel 01228 000000"),
                           PackItem("Medication", "Sertraline 50 mg each morning, given by carers."),
                           PackItem("Allergies", "Peanuts (anaphylaxis)"))),
        PackSection("MISSING", "Missing from care", "full", 2, "Last reviewed 1 March 2026",
                    items=(PackItem("Description", "White, slim, 160 cm, short brown hair, scar on left eyebrow"),
                           PackItem("Places likely to go", "The bus station; a friend's house on London Road"),
                           PackItem("Mobile phone", "07700 900999"))),
        PackSection("CONTACTS", "Family and associates", "summary", 1, "Last reviewed 28 February 2026",
                    entries=(PackEntry("Darren Thornton (father)", (PackItem("Contact", "None: court order"),),
                                       restricted=True),
                             PackEntry("Maria Thornton (mother)", (PackItem("Contact", "Supervised, fortnightly"),))),
                    entry_plural="people"),
        PackSection("CARE", "Care plan", "full", 4, "Last reviewed 2 March 2026",
                    items=tuple(PackItem(f"Routine {n}", answer * 3) for n in range(1, care_items + 1)),
                    documents=("Care plan March 2026.pdf", "Risk assessment.pdf")),
    )
    return PackDocument(reference="HP-7K3D9Q-v2", version=2, prepared_for="Ward 7, Cumberland Infirmary",
                        recipient_title="Hospital ward", prepared_on="25 November 2026",
                        sending_authority="Cumberland Council", sender_contact="Children's services, 0300 303 2992",
                        first_page=fp, sections=sections)


@pytest.fixture(scope="module")
def fonts() -> PackFonts:
    return load_fonts(PDF_FONTS_DIR)


def page_texts(pdf: bytes, password: str | None = None) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    if password is not None:
        assert reader.decrypt(password)
    return [page.extract_text() for page in reader.pages]


def body(texts: list[str], doc: PackDocument) -> str:
    """The pages' text without the header and footer lines, joined: a paragraph split over a page break
    reads on as it does on paper."""
    furniture = {doc.marking, doc.reference, f"Prepared for {doc.prepared_for} on {doc.prepared_on}"}
    lines = [line for text in texts for line in text.splitlines()
             if line.strip() not in furniture and not re.fullmatch(r"Page \d+ of \d+", line.strip())
             and not handling_footer(line)]
    return "\n".join(lines)


def handling_footer(line: str) -> bool:
    """One of the two handling lines every page carries at its foot (R86)."""
    return line.strip().startswith((HANDLING_INSTRUCTION, "Sender: "))


def squash(text: str) -> str:
    """Text without any whitespace: extraction breaks lines where the layout wrapped them."""
    return re.sub(r"\s+", "", text)


def image_xobjects(pdf: pikepdf.Pdf) -> list[pikepdf.Stream]:
    return [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image"]


def annotations(pdf: pikepdf.Pdf) -> list[Any]:
    return [annot for page in pdf.pages for annot in page.obj.get("/Annots", [])]


def image_placements(page: pikepdf.Page) -> list[tuple[float, float]]:
    """(width, height) in points of each image drawn on the page: the ``cm`` just before its ``Do``."""
    sizes, matrix = [], None
    for operands, operator in pikepdf.parse_content_stream(page):
        if str(operator) == "cm":
            matrix = [float(x) for x in operands]
        elif str(operator) == "Do" and matrix is not None:
            sizes.append((matrix[0], matrix[3]))
    return sizes


def appendix_pdf(pages: int, label: str) -> bytes:
    """A plain PDF with its own (identifying) metadata, as an uploaded document might have."""
    out = io.BytesIO()
    canvas = Canvas(out)
    canvas.setAuthor("Canary Person")
    canvas.setTitle("Canary title")
    for n in range(1, pages + 1):
        canvas.drawString(100, 700, f"{label} page {n}")
        canvas.showPage()
    canvas.save()
    with pikepdf.open(io.BytesIO(out.getvalue())) as pdf:
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as xmp:
            xmp["dc:creator"] = ["Canary Person"]
        for page in pdf.pages:
            page.obj.Metadata = pdf.make_stream(b"<x:xmpmeta>Canary Person</x:xmpmeta>")
        result = io.BytesIO()
        pdf.save(result)
    return result.getvalue()


# --- R51: Unicode names ------------------------------------------------------------------------------------


def test_unicode_names_round_trip_without_missing_glyphs(fonts: PackFonts) -> None:
    doc = sample_document(preferred_name="Łukasz", legal_name=NAMES)
    doc = dataclasses.replace(doc, sections=(PackSection("HEALTH", "Health", "full", 1, "Last reviewed today",
                                                         items=(PackItem("Name used at school", NAMES),)),))
    texts = page_texts(render_pack(doc, fonts))
    whole = "\n".join(texts)
    assert "■" not in whole and "\ufffd" not in whole
    assert NAMES in texts[0]  # the legal name on the first page
    assert NAMES in texts[1]  # and as an answer
    with pikepdf.open(io.BytesIO(render_pack(doc, fonts))) as pdf:
        base_fonts = {str(font.get("/BaseFont")) for page in pdf.pages
                      for font in page.obj.Resources.get("/Font", {}).values()}
    assert base_fonts and all("DejaVuSans" in name for name in base_fonts), base_fonts


# --- R49: markup is text -----------------------------------------------------------------------------------


def _markup_everywhere(payload: str, photo: bytes) -> PackDocument:
    def m(text: str) -> str:
        return f"{text} {payload}"

    fp = FirstPage(
        preferred_name=m("Jade"), legal_name=m("Jade Thornton"), date_of_birth=m("14 February 2012"), photo=photo,
        photo_taken_on=m("3 September 2026"), key_risks=(m("risk"),),
        restricted_persons=(RestrictedPersonLine(m("Darren"), m("Father"), (m("reason"),)),),
        out_of_hours=((m("Emergency duty team"), m("0300 123 4567")),),
    )
    sections = tuple(
        PackSection(code, m(title), level, 1, m("Last reviewed"), items=(PackItem(m("Label"), m("value")),),
                    entries=(PackEntry(m("Entry"), (PackItem(m("Entry label"), m("entry value")),),
                                       restricted=True),),
                    entry_plural=m("people"), documents=(m("document.pdf"),))
        for code, title, level in (("HEALTH", "Health", "full"), ("MISSING", "Missing", "summary"))
    )
    return PackDocument(reference=m("HP-1"), version=1, prepared_for=m("Ward 7"), recipient_title=m("Hospital"),
                        prepared_on=m("25 November 2026"), sending_authority=m("Cumberland Council"),
                        sender_contact=m("0300 303 2992"), first_page=fp, sections=sections)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markup_in_every_text_field_is_shown_literally(fonts: PackFonts, payload: str) -> None:
    doc = _markup_everywhere(payload, sample_photo())
    pdf = render_pack(doc, fonts)
    whole = squash("".join(page_texts(pdf)))
    fields = 24  # every string field above carries the payload once (the MISSING section repeats 3 identity lines)
    assert whole.count(squash(payload)) >= fields, whole[:2000]
    with pikepdf.open(io.BytesIO(pdf)) as parsed:
        assert len(image_xobjects(parsed)) == 1  # the photo only
        assert annotations(parsed) == []
    assert b"/URI" not in pdf and b"/Link" not in pdf and b"/JavaScript" not in pdf


def test_an_image_path_in_text_never_embeds_that_file(fonts: PackFonts, tmp_path: Path) -> None:
    """security.md A12: unescaped, <img src="…/other_child.jpg"/> embeds another child's photo."""
    other = tmp_path / "other_child.jpg"
    other.write_bytes(sample_photo((40, 40)))
    doc = sample_document()
    doc = dataclasses.replace(doc, sections=(PackSection("HEALTH", "Health", "full", 1, "Last reviewed",
                                                         items=(PackItem("Notes", f'<img src="{other}"/>'),)),))
    pdf = render_pack(doc, fonts)
    with pikepdf.open(io.BytesIO(pdf)) as parsed:
        assert image_xobjects(parsed) == []
    assert squash(f'<img src="{other}"/>') in squash("".join(page_texts(pdf)))


def test_para_text_escapes_then_breaks_lines() -> None:
    assert para_text("a < b & c > d\nnext") == "a &lt; b &amp; c &gt; d<br/>next"
    assert para_text("one\r\ntwo\rthree") == "one<br/>two<br/>three"
    assert para_text("bell\x07 nul\x00 \u202eevil\u202c lone\ud800") == "bell nul evil lone\ufffd"
    assert para_text('<a href="x">') == '&lt;a href="x"&gt;'


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and ((isinstance(node.func, ast.Name) and node.func.id == name)
                 or (isinstance(node.func, ast.Attribute) and node.func.attr == name))]


def test_one_place_builds_paragraphs_and_no_markup_is_built_with_data() -> None:
    """R49 as a lint rule: only render._para calls Paragraph, always on para_text(...); no f-string or % with
    a '<' anywhere in transitions/pdf (markup is never assembled around data)."""
    paragraph_calls = []
    for path in sorted(PDF_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
            for call in _calls(func, "Paragraph"):
                paragraph_calls.append((path.name, func.name, call))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and
                                  isinstance(v.value, str))
                assert "<" not in literal, f"{path.name}:{node.lineno}: f-string with markup"
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
                for side in (node.left, node.right):
                    if isinstance(side, ast.Constant) and isinstance(side.value, str) and "<" in side.value:
                        raise AssertionError(f"{path.name}:{node.lineno}: markup built with % or +")
    assert [(file, func) for file, func, _ in paragraph_calls] == [("render.py", "_para")]
    first_argument = paragraph_calls[0][2].args[0]
    assert isinstance(first_argument, ast.Call) and isinstance(first_argument.func, ast.Name)
    assert first_argument.func.id == "para_text"


# --- R52: long text and bounded generation -------------------------------------------------------------------


@pytest.mark.parametrize("where", ["item", "key_risk", "restricted_reason"])
def test_a_50000_character_value_renders_in_full(fonts: PackFonts, where: str) -> None:
    words = "The placement broke down after a series of incidents at night. "
    long_value = (words * (50_000 // len(words) + 1))[:49_990] + " TAIL-MARK"
    assert len(long_value) == 50_000
    doc = sample_document()
    if where == "item":
        doc = dataclasses.replace(doc, sections=(dataclasses.replace(doc.sections[0],
                                                                     items=(PackItem("History", long_value),)),))
    elif where == "key_risk":
        doc = dataclasses.replace(doc, first_page=dataclasses.replace(doc.first_page, key_risks=(long_value,)))
    else:
        person = RestrictedPersonLine("Darren Thornton", "Father", (long_value,))
        doc = dataclasses.replace(doc, first_page=dataclasses.replace(doc.first_page, restricted_persons=(person,)))
    texts = page_texts(render_pack(doc, fonts))
    assert len(texts) >= 8
    whole = squash(body(texts, doc))
    assert "TAIL-MARK" in whole
    assert whole.count(squash(words)) == long_value.count(words.strip())  # nothing dropped


def test_more_pages_than_the_limit_raises(fonts: PackFonts) -> None:
    doc = sample_document(care_items=20)
    assert len(page_texts(render_pack(doc, fonts, max_pages=8))) > 3
    with pytest.raises(PackTooLargeError) as caught:
        render_pack(doc, fonts, max_pages=3)
    assert caught.value.max_pages == 3
    assert str(caught.value) == "The pack would be longer than 3 pages; shorten the longest answers"


def test_the_default_limit_is_200_pages_and_reached_quickly(fonts: PackFonts) -> None:
    """R52: bounded in pages and time. One paragraph of 12,000 lines took about 5 minutes to reach the limit
    (ReportLab re-wraps the rest of a paragraph at every page); cut into pieces it takes about a second."""
    assert MAX_PAGES == 200
    many_lines = "A line of its own\n" * 12_000  # about 210 pages
    doc = dataclasses.replace(sample_document(), sections=(PackSection("CARE", "Care plan", "full", 1, "Reviewed",
                                                                        items=(PackItem("Log", many_lines),)),))
    started = time.monotonic()
    with pytest.raises(PackTooLargeError):
        render_pack(doc, fonts)
    assert time.monotonic() - started < 30


# --- pages ---------------------------------------------------------------------------------------------------


def test_every_page_has_marking_prepared_for_reference_and_page_n_of_m(fonts: PackFonts) -> None:
    doc = sample_document(photo=sample_photo(), care_items=20)
    texts = page_texts(render_pack(doc, fonts))
    total = len(texts)
    assert total >= 6
    for number, text in enumerate(texts, start=1):
        assert text.count("OFFICIAL-SENSITIVE") == 2, number  # header and footer
        assert "Prepared for Ward 7, Cumberland Infirmary on 25 November 2026" in text, number
        assert text.count("HP-7K3D9Q-v2") >= 2, number
        assert f"Page {number} of {total}" in text, number


def test_a_long_prepared_for_is_cut_to_fit_the_header(fonts: PackFonts) -> None:
    doc = dataclasses.replace(sample_document(), prepared_for="Ward 7 " + "Very Long Hospital Name " * 20)
    first = page_texts(render_pack(doc, fonts))[0]
    header = next(line for line in first.splitlines() if line.startswith("Prepared for Ward 7 Very"))
    assert header.endswith("…") and len(header) < 140


def test_first_page_carries_what_is_needed_in_the_first_minute(fonts: PackFonts) -> None:
    doc = sample_document(photo=sample_photo())
    first = page_texts(render_pack(doc, fonts))[0]
    for expected in ("Handover pack", "Jade", "Jade Amelia Thornton", "14 February 2012", "Key risks",
                     "• Severe peanut allergy: carries two adrenaline pens",
                     "Restricted: must not have contact / must not know where the child lives",
                     "Darren Thornton (Father)", "Non-molestation order until 2027 (ref CA-2026-114)",
                     "Emergency duty team", "0300 123 4567 (17:00–09:00 and weekends)",
                     "Cumberland Council", "Children's services, 0300 303 2992"):
        assert squash(expected) in squash(first), expected
    assert "Routine 1" not in first  # the sections start on the next page


def test_sections_show_summary_reviewed_entries_restricted_and_documents(fonts: PackFonts) -> None:
    whole = "\n".join(page_texts(render_pack(sample_document(), fonts)))
    contacts = whole[whole.index("Family and associates"):]
    assert contacts.index("Summary only") < contacts.index("Last reviewed 28 February 2026")
    darren = contacts[contacts.index("Darren Thornton (father)"):contacts.index("Maria Thornton (mother)")]
    assert "Restricted: must not have contact" in darren
    maria = contacts[contacts.index("Maria Thornton (mother)"):]
    assert "Restricted" not in maria.split("Care plan")[0]
    assert "Summary only" not in whole[whole.index("Health"):whole.index("Family and associates")]
    assert "Documents (attached after this pack)" in whole and "• Risk assessment.pdf" in whole


def test_missing_section_is_printable_on_its_own(fonts: PackFonts) -> None:
    photo = sample_photo()
    doc = sample_document(photo=photo)
    pdf = render_pack(doc, fonts)
    texts = page_texts(pdf)
    pages = [n for n, text in enumerate(texts) if MISSING_TITLE in text]
    assert len(pages) == 1
    n = pages[0]
    page = texts[n]
    before_title = page[:page.index(MISSING_TITLE)]
    furniture = ("OFFICIAL-SENSITIVE", "HP-7K3D9Q-v2", "Prepared for Ward 7, Cumberland Infirmary on 25 November 2026")
    for text in furniture:
        before_title = before_title.replace(text, "")
    before_title = "\n".join(line for line in before_title.splitlines() if not handling_footer(line))
    assert before_title.strip() == ""  # the section starts the page
    body = page[page.index(MISSING_TITLE):]
    assert body.index("Jade") < body.index("Description")  # name, date of birth and photo at its top
    assert "14 February 2012" in body and "Jade Amelia Thornton" in body
    assert "Description" not in texts[n - 1] and "Health" in texts[n - 1]
    assert "Family and associates" not in page and "Family and associates" in texts[n + 1]
    with pikepdf.open(io.BytesIO(pdf)) as parsed:
        assert image_placements(parsed.pages[n])  # the photo is drawn on it
        assert image_placements(parsed.pages[0])


def test_build_story_renders_with_a_bare_simpledoctemplate(fonts: PackFonts) -> None:
    """The benchmark's contract: the exposed pieces give the same pack as render_pack."""
    doc = sample_document(photo=sample_photo(), care_items=12)
    out = io.BytesIO()
    furniture = page_furniture(doc, fonts)
    SimpleDocTemplate(out, **template_kwargs(doc, fonts)).build(build_story(doc, fonts), onFirstPage=furniture,
                                                         onLaterPages=furniture, canvasmaker=pack_canvas(doc, fonts))
    bare, rendered = page_texts(out.getvalue()), page_texts(render_pack(doc, fonts))
    assert bare == rendered


# --- the photo -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(600, 800), (1600, 900), (120, 90)])
def test_photo_is_embedded_once_as_the_jpeg_and_keeps_its_shape(fonts: PackFonts, size: tuple[int, int]) -> None:
    photo = sample_photo(size)
    with pikepdf.open(io.BytesIO(render_pack(sample_document(photo=photo), fonts))) as pdf:
        images = image_xobjects(pdf)
        assert len(images) == 1  # drawn on the first page and the MISSING page, stored once
        assert [str(name) for name in pikepdf.Array(images[0].Filter)] == ["/DCTDecode"]
        assert images[0].read_raw_bytes() == photo  # the JPEG as it is, never decoded and re-encoded
        placements = [p for page in pdf.pages for p in image_placements(page)]
    assert len(placements) == 2
    for width, height in placements:
        assert width <= 60 * mm + 0.01 and height <= 80 * mm + 0.01
        assert max(width / (60 * mm), height / (80 * mm)) == pytest.approx(1, abs=0.001)  # fills the box
        assert width / height == pytest.approx(size[0] / size[1], rel=0.01)


def test_no_photo_means_no_image(fonts: PackFonts) -> None:
    with pikepdf.open(io.BytesIO(render_pack(sample_document(photo=None), fonts))) as pdf:
        assert image_xobjects(pdf) == []


def test_a_png_photo_still_renders(fonts: PackFonts) -> None:
    out = io.BytesIO()
    Image.new("RGB", (30, 40), (200, 10, 10)).save(out, "PNG")
    with pikepdf.open(io.BytesIO(render_pack(sample_document(photo=out.getvalue()), fonts))) as pdf:
        assert len(image_xobjects(pdf)) == 1


# --- R54: metadata -------------------------------------------------------------------------------------------


def _assert_neutral(pdf: pikepdf.Pdf, doc: PackDocument) -> None:
    info = {str(k): str(v) for k, v in pdf.docinfo.items()}
    assert info["/Title"] == doc.reference
    assert info["/Author"] == doc.sending_authority
    assert info["/Subject"] == "Handover pack"
    assert info["/Creator"] == "CLA Transitions"
    fp = doc.first_page
    for value in info.values():
        for secret in (fp.preferred_name, fp.legal_name, "Thornton", fp.date_of_birth, "Canary"):
            assert secret not in value
    assert "/Metadata" not in pdf.Root


def test_metadata_names_no_child(fonts: PackFonts) -> None:
    doc = sample_document(photo=sample_photo())
    with pikepdf.open(io.BytesIO(render_pack(doc, fonts))) as pdf:
        _assert_neutral(pdf, doc)


# --- R53: encryption -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_pack(fonts: PackFonts) -> tuple[PackDocument, bytes]:
    doc = sample_document(photo=sample_photo((120, 160)), care_items=2)
    return doc, render_pack(doc, fonts)


def test_encrypted_pack_is_aes_256_r6_and_opens_only_with_the_password(small_pack: tuple[PackDocument, bytes]
                                                                       ) -> None:
    doc, plain = small_pack
    password = new_pdf_password()
    encrypted = encrypt_pdf(plain, password)
    reader = pypdf.PdfReader(io.BytesIO(encrypted))
    assert reader.is_encrypted
    assert reader.decrypt(password) == pypdf.PasswordType.USER_PASSWORD
    assert "Jade Amelia Thornton" in reader.pages[0].extract_text()
    with pikepdf.open(io.BytesIO(encrypted), password=password) as pdf:
        info = pdf.encryption
        assert (info.R, info.V, info.bits) == (6, 5, 256)
        assert info.stream_method.name == info.string_method.name == "aesv3"
        assert pdf.allow.print_highres and pdf.allow.accessibility
        assert not (pdf.allow.modify_other or pdf.allow.modify_annotation or pdf.allow.modify_form
                    or pdf.allow.modify_assembly)
        _assert_neutral(pdf, doc)
        assert len(pdf.pages) == len(pypdf.PdfReader(io.BytesIO(plain)).pages)
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(encrypted))
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(encrypted), password="wrong-" + password)
    assert b"Cumberland Council" not in encrypted and b"HP-7K3D9Q" not in encrypted  # strings encrypted too


def test_appendix_pages_follow_the_pack_without_their_metadata(small_pack: tuple[PackDocument, bytes]) -> None:
    doc, plain = small_pack
    pack_pages = len(pypdf.PdfReader(io.BytesIO(plain)).pages)
    password = new_pdf_password()
    appendices = [("Care plan March 2026", appendix_pdf(1, "CARE PLAN")),
                  ("Risk assessment", appendix_pdf(3, "RISK ASSESSMENT"))]
    encrypted = encrypt_pdf(plain, password, appendices)
    texts = page_texts(encrypted, password)
    assert len(texts) == pack_pages + 1 + 3
    assert "CARE PLAN page 1" in texts[pack_pages]
    assert [("RISK ASSESSMENT page " + str(n)) in texts[pack_pages + n] for n in (1, 2, 3)] == [True] * 3
    with pikepdf.open(io.BytesIO(encrypted), password=password) as pdf:
        _assert_neutral(pdf, doc)
        assert all("/Metadata" not in page.obj for page in pdf.pages)
        with pdf.open_outline() as outline:
            marks = [(item.title, pdf.pages.index(pikepdf.Page(item.destination[0]))) for item in outline.root]
    assert marks == [("Handover pack", 0), ("Care plan March 2026", pack_pages),
                     ("Risk assessment", pack_pages + 1)]


def test_attached_documents_carry_the_marking_and_lose_their_links(small_pack: tuple[PackDocument, bytes],
                                                                     fonts: PackFonts) -> None:
    doc, plain = small_pack
    pack_pages = len(pypdf.PdfReader(io.BytesIO(plain)).pages)
    linked = pikepdf.open(io.BytesIO(appendix_pdf(2, "HEALTH PLAN")))
    link = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 50, 50],
                              A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI="https://tracker.example/p.gif"))
    linked.pages[0].obj["/Annots"] = linked.make_indirect(pikepdf.Array([linked.make_indirect(link)]))
    source = io.BytesIO()
    linked.save(source)
    password = new_pdf_password()
    encrypted, pages = encrypt_pack(plain, password, [("Health plan", source.getvalue())],
                                    appendix_stamp(doc, fonts))
    texts = page_texts(encrypted, password)
    assert pages == len(texts) == pack_pages + 2
    for text in texts[pack_pages:]:
        assert "OFFICIAL-SENSITIVE" in text and f"{doc.reference}: document attached" in text
        assert "HEALTH PLAN page" in text
    with pikepdf.open(io.BytesIO(encrypted), password=password) as pdf:
        assert all("/Annots" not in page.obj for page in pdf.pages[pack_pages:])
        assert "tracker.example" not in " ".join(repr(o) for o in pdf.objects)


def test_encrypt_pdf_keeps_only_neutral_document_information() -> None:
    """Whatever the input carries (XMP, keywords, custom entries), only the neutral entries survive."""
    source = io.BytesIO()
    canvas = Canvas(source)
    canvas.setTitle("HP-1")
    canvas.setAuthor("Cumberland Council")
    canvas.setKeywords("Jade Thornton")
    canvas.drawString(100, 700, "pack")
    canvas.save()
    with pikepdf.open(io.BytesIO(source.getvalue())) as pdf:
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as xmp:
            xmp["dc:description"] = "Jade Thornton"
        pdf.docinfo["/ChildName"] = "Jade Thornton"
        assert "/Metadata" in pdf.Root and "/Keywords" in pdf.docinfo
        pdf.pages[0].obj.PieceInfo = pikepdf.Dictionary(Note=pikepdf.String("Jade Thornton"))
        marked = io.BytesIO()
        pdf.save(marked)
    encrypted = encrypt_pdf(marked.getvalue(), "pw-1234567890", [("Appendix", appendix_pdf(1, "A"))])
    with pikepdf.open(io.BytesIO(encrypted), password="pw-1234567890") as pdf:
        assert set(pdf.docinfo.keys()) <= {"/Title", "/Author", "/Subject", "/Creator", "/Producer",
                                           "/CreationDate", "/ModDate"}
        assert str(pdf.docinfo["/Title"]) == "HP-1"
        assert "/Metadata" not in pdf.Root
        for page in pdf.pages:
            assert "/Metadata" not in page.obj and "/PieceInfo" not in page.obj


def test_pdf_password_is_random_readable_and_long() -> None:
    passwords = {new_pdf_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert re.fullmatch(r"[23456789abcdefghjkmnpqrstuvwxyz]{4}(-[23456789abcdefghjkmnpqrstuvwxyz]{4}){4}",
                            password), password
        assert len(password.replace("-", "")) >= 20
    assert not set("".join(passwords)) & set("01ilo")
    with pytest.raises(ValueError):
        encrypt_pdf(b"%PDF-1.4", "")


def test_owner_password_is_random_and_discarded(small_pack: tuple[PackDocument, bytes],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = encrypt_module.secrets.token_urlsafe

    def spy(n: int) -> str:
        seen.append(real(n))
        return seen[-1]

    monkeypatch.setattr(encrypt_module.secrets, "token_urlsafe", spy)
    _, plain = small_pack
    encrypt_pdf(plain, "user-password")
    encrypt_pdf(plain, "user-password")
    assert len(seen) == 2 and seen[0] != seen[1] and len(seen[0]) >= 40


# --- R50: ReportLab configuration ----------------------------------------------------------------------------


@pytest.fixture
def saved_rl_config() -> Iterator[None]:
    saved = {name: getattr(rl_config, name) for name in ("useA85", "trustedSchemes", "trustedHosts",
                                                          "toColorCanUse", "pageCompression")}
    yield
    for name, value in saved.items():
        setattr(rl_config, name, value)


@pytest.mark.usefixtures("saved_rl_config")
def test_harden_reportlab_trusts_nothing_and_writes_binary_streams(fonts: PackFonts) -> None:
    rl_config.useA85 = 1
    rl_config.trustedSchemes = ["file", "data", "http", "https", "ftp"]
    rl_config.trustedHosts = None
    rl_config.pageCompression = 0
    pdf = render_pack(sample_document(photo=sample_photo((60, 80))), fonts)  # hardens first
    assert rl_config.trustedSchemes == [] and rl_config.trustedHosts == []
    assert rl_config.useA85 == 0 and rl_config.pageCompression == 1
    assert rl_config.toColorCanUse != "rl_safe_eval"
    assert b"ASCII85Decode" not in pdf and b"FlateDecode" in pdf
    harden_reportlab()  # idempotent
    assert rl_config.trustedSchemes == []


@pytest.mark.usefixtures("saved_rl_config")
def test_harden_reportlab_refuses_rl_safe_eval(fonts: PackFonts) -> None:
    rl_config.toColorCanUse = "rl_safe_eval"
    with pytest.raises(PackConfigError, match="CVE-2023-33733"):
        render_pack(sample_document(), fonts)


def test_harden_reportlab_requires_the_c_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    assert rl_accel.asciiBase85Encode.__module__ == "_rl_accel"
    monkeypatch.setattr(render_module._rl_accel_interface, "instanceStringWidthTTF", lambda *a: 0.0)
    with pytest.raises(PackConfigError, match="instanceStringWidthTTF"):
        harden_reportlab()


# --- R51: fonts ----------------------------------------------------------------------------------------------


def test_missing_fonts_name_the_build_step(tmp_path: Path) -> None:
    with pytest.raises(PackFontError, match=r"npm ci && npm run build:assets") as caught:
        load_fonts(tmp_path)
    assert "DejaVuSans.ttf" in str(caught.value)
    (tmp_path / "DejaVuSans.ttf").write_bytes(b"not a font")
    (tmp_path / "DejaVuSans-Bold.ttf").write_bytes(b"not a font")
    with pytest.raises(PackFontError, match="could not be read"):
        load_fonts(tmp_path)


def test_load_fonts_registers_once_and_is_thread_safe(tmp_path: Path, fonts: PackFonts) -> None:
    assert load_fonts(PDF_FONTS_DIR) is fonts
    folder = tmp_path / "fonts"
    folder.mkdir()
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        shutil.copy(PDF_FONTS_DIR / name, folder / name)
    start = threading.Barrier(8)

    def load() -> PackFonts:
        start.wait()
        return load_fonts(folder)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: load(), range(8)))
    assert all(result is results[0] for result in results)
    assert results[0].regular != fonts.regular  # a second folder never replaces the fonts in use
