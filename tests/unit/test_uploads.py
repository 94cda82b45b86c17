"""Upload checks (security.md C8: R58 photos, R59 PDFs, R60 display names). Every fixture is built here in code."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import time
import zlib
from typing import Any

import pikepdf
import pytest
from PIL import ExifTags, Image, ImageCms, ImageDraw, PngImagePlugin

from transitions.uploads import (
    CheckedPdf,
    CleanPhoto,
    UploadRejectedError,
    check_pdf,
    clean_photo,
    pdfs,
    safe_display_name,
)
from transitions.uploads.errors import (
    MSG_EMPTY,
    MSG_NOT_PDF,
    MSG_NOT_PHOTO,
    MSG_PDF_ACTIVE,
    MSG_PDF_DAMAGED,
    MSG_PDF_PASSWORD,
    MSG_PDF_TIMEOUT,
    MSG_UNREADABLE_PHOTO,
)

pytestmark = pytest.mark.security

MEGAPIXEL_MESSAGE = "The photo is too large: it must be no more than 25 megapixels"
XMP_PACKET = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
    b' exif:GPSLatitude="51,30.2N" exif:GPSLongitude="0,7.6W" xmp:CreatorTool="Phone"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


# --- helpers -------------------------------------------------------------------------------------------------


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_markers(data: bytes) -> list[int]:
    """The segment markers of a JPEG, up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    markers, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return markers


def assert_no_metadata(photo: CleanPhoto) -> None:
    assert photo.media_type == "image/jpeg"
    assert photo.sha256 == hashlib.sha256(photo.data).hexdigest()
    markers = jpeg_markers(photo.data)
    assert 0xDA in markers
    assert not [m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE], [hex(m) for m in markers]
    for needle in (b"Exif", b"http://ns.adobe.com/xap", b"xmpmeta", b"GPS", b"ICC_PROFILE", b"secret"):
        assert needle not in photo.data, needle
    with Image.open(io.BytesIO(photo.data)) as img:
        assert img.format == "JPEG"
        assert img.mode == "RGB"
        assert img.size == (photo.width, photo.height)
        assert dict(img.getexif()) == {}
        for key in ("exif", "xmp", "icc_profile", "comment", "photoshop"):
            assert key not in img.info, key


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A small PNG that declares a huge size: a valid IHDR (with CRC) and a little IDAT (about 48 KB)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * (50 * 1024 * 1024), 9)  # far short of the pixels declared
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def two_colour_image(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue, so the rotation can be checked."""
    img = Image.new("RGB", size, (0, 0, 255))
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=(255, 0, 0))
    return img


def jpeg_with_metadata() -> bytes:
    """A 300×200 JPEG with GPS EXIF, Orientation=6 (rotate 90° clockwise), XMP, an ICC profile and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme Phones"
    exif[ExifTags.Base.Model] = "Snapper 3"
    exif[ExifTags.Base.Orientation] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 36.0)
    out = io.BytesIO()
    two_colour_image((300, 200)).save(
        out, "JPEG", exif=exif, xmp=XMP_PACKET, icc_profile=srgb_icc(), comment=b"secret comment", quality=95
    )
    return out.getvalue()


def png_bytes(img: Image.Image, **params: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG", **params)
    return out.getvalue()


def noisy_jpeg(size: tuple[int, int] = (400, 400)) -> bytes:
    rng = random.Random(1)
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def pdf_bytes(pdf: pikepdf.Pdf, **save_options: Any) -> bytes:
    out = io.BytesIO()
    pdf.save(out, **save_options)
    return out.getvalue()


def one_page_pdf() -> pikepdf.Pdf:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    return pdf


def rejection(exc_info: pytest.ExceptionInfo[UploadRejectedError]) -> str:
    assert str(exc_info.value) == exc_info.value.message
    return exc_info.value.message


# --- photos --------------------------------------------------------------------------------------------------


def test_jpeg_metadata_is_stripped_and_orientation_applied() -> None:
    raw = jpeg_with_metadata()
    # The fixture really carries what we claim it does.
    for needle in (b"Exif", b"http://ns.adobe.com/xap", b"GPS", b"ICC_PROFILE", b"secret comment"):
        assert needle in raw
    with Image.open(io.BytesIO(raw)) as original:
        assert original.size == (300, 200)
        assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)

    photo = clean_photo(raw)

    assert_no_metadata(photo)
    assert (photo.width, photo.height) == (200, 300)  # Orientation=6 applied: the sides are swapped
    with Image.open(io.BytesIO(photo.data)) as img:
        top = img.getpixel((100, 20))
        bottom = img.getpixel((100, 280))
    # Rotating 90° clockwise moves the red left half to the top.
    assert isinstance(top, tuple) and top[0] > 200 and top[2] < 60
    assert isinstance(bottom, tuple) and bottom[2] > 200 and bottom[0] < 60


def test_png_text_and_icc_are_stripped_and_alpha_flattened_onto_white() -> None:
    img = Image.new("RGBA", (120, 80), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((60, 0, 119, 79), fill=(0, 128, 0, 255))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret location: 10 Downing Street")
    info.add_text("GPSInfo", "51.5034,-0.1276")
    raw = png_bytes(img, pnginfo=info, icc_profile=srgb_icc())
    assert b"tEXt" in raw and b"iCCP" in raw and b"secret" in raw

    photo = clean_photo(raw)

    assert_no_metadata(photo)
    assert (photo.width, photo.height) == (120, 80)
    with Image.open(io.BytesIO(photo.data)) as out:
        transparent, opaque = out.getpixel((10, 40)), out.getpixel((100, 40))
    assert isinstance(transparent, tuple) and min(transparent) > 240  # white, not black
    assert isinstance(opaque, tuple) and opaque[1] > 100 and opaque[0] < 40


def test_large_photo_is_scaled_to_max_edge() -> None:
    raw = png_bytes(two_colour_image((3000, 1500)))
    photo = clean_photo(raw)
    assert (photo.width, photo.height) == (2000, 1000)
    assert_no_metadata(photo)
    small = clean_photo(raw, max_edge=300)
    assert (small.width, small.height) == (300, 150)


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    raw = png_bytes(Image.new("I;16", (10, 10), 32768))
    photo = clean_photo(raw)
    with Image.open(io.BytesIO(photo.data)) as out:
        pixel = out.getpixel((5, 5))
    assert isinstance(pixel, tuple) and 110 < pixel[0] < 145


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(pdf_bytes(one_page_pdf()), id="pdf-renamed-jpg"),
        pytest.param(b"<html><script>alert(1)</script></html>", id="html-polyglot"),
        pytest.param(b"GIF89a" + b"\x00" * 100, id="gif"),
        pytest.param(b"\xff\xd8", id="two-byte-jpeg-magic"),
        pytest.param(b"BM" + b"\x00" * 100, id="bmp"),
    ],
)
def test_non_jpeg_png_bytes_are_refused_whatever_the_name(data: bytes) -> None:
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(data)
    assert rejection(exc_info) == MSG_NOT_PHOTO


def test_header_only_png_bomb_is_refused_before_decode_and_quickly() -> None:
    bomb = png_header_only(20000, 20000)
    assert 40_000 < len(bomb) < 60_000
    started = time.perf_counter()
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(bomb)
    assert time.perf_counter() - started < 1.0
    assert rejection(exc_info) == MEGAPIXEL_MESSAGE


def test_pixel_limit_is_checked_on_a_real_image() -> None:
    raw = png_bytes(Image.new("RGB", (100, 100), "white"))
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(raw, max_pixels=9_999)
    assert rejection(exc_info) == "The photo is too large: it must be no more than 0.009999 megapixels"
    assert clean_photo(raw, max_pixels=10_000).width == 100


def test_jpeg_declaring_huge_frame_is_refused_before_decode() -> None:
    raw = bytearray(noisy_jpeg((64, 64)))
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)  # height, width
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(bytes(raw))
    assert rejection(exc_info) == MEGAPIXEL_MESSAGE


def test_pillow_bomb_warning_is_an_error_even_if_our_limit_is_set_too_high() -> None:
    # 100 MP is over Pillow's own limit (about 89.5 MP), which only warns. Here the warning must become a refusal.
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(png_header_only(10000, 10000), max_pixels=500_000_000)
    assert rejection(exc_info) == "The photo is too large: it must be no more than 500 megapixels"


def test_empty_photo_is_refused() -> None:
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(b"")
    assert rejection(exc_info) == MSG_EMPTY


def test_oversized_photo_is_refused_before_anything_else() -> None:
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024))
    assert rejection(exc_info) == "The selected file must be smaller than 10 MB"
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(noisy_jpeg(), max_bytes=1000)
    assert rejection(exc_info) == "The selected file must be smaller than 1000 bytes"


def test_truncated_jpeg_is_refused() -> None:
    raw = noisy_jpeg()
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(raw[: len(raw) // 2])
    assert rejection(exc_info) == MSG_UNREADABLE_PHOTO


def test_png_with_bad_crc_is_refused() -> None:
    raw = bytearray(png_bytes(Image.new("RGB", (20, 20), "white")))
    raw[29] ^= 0xFF  # inside the IHDR CRC
    with pytest.raises(UploadRejectedError) as exc_info:
        clean_photo(bytes(raw))
    assert rejection(exc_info) == MSG_UNREADABLE_PHOTO


def test_garbage_after_magic_is_refused() -> None:
    for magic in (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"):
        with pytest.raises(UploadRejectedError) as exc_info:
            clean_photo(magic + random.Random(2).randbytes(5000))
        assert rejection(exc_info) == MSG_UNREADABLE_PHOTO


# --- PDFs ----------------------------------------------------------------------------------------------------


def test_valid_one_page_pdf_passes_unchanged() -> None:
    raw = pdf_bytes(one_page_pdf())
    checked = check_pdf(raw)
    assert checked == CheckedPdf(page_count=1, sha256=hashlib.sha256(raw).hexdigest(), data=raw)


def test_pdf_with_links_outline_and_plain_form_field_passes() -> None:
    pdf = one_page_pdf()
    pdf.add_blank_page()
    link = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Link,
            Rect=pikepdf.Array([0, 0, 100, 20]),
            A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.org/")),
        )
    )
    field = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Widget,
            FT=pikepdf.Name.Tx,
            T=pikepdf.String("name"),
            Rect=pikepdf.Array([0, 30, 200, 50]),
            P=pdf.pages[0].obj,
        )
    )
    pdf.pages[0].obj[pikepdf.Name.Annots] = pikepdf.Array([link, field])
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]))
    with pdf.open_outline() as outline:
        outline.root.append(pikepdf.OutlineItem("Page 2", 1))
    raw = pdf_bytes(pdf)
    assert check_pdf(raw).page_count == 2


def test_pdf_with_openaction_javascript_is_refused() -> None:
    pdf = one_page_pdf()
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(pdf_bytes(pdf))
    assert rejection(exc_info) == MSG_PDF_ACTIVE


def test_pdf_with_page_additional_actions_is_refused() -> None:
    pdf = one_page_pdf()
    # Only /AA is flagged here: the action itself is a harmless URI action.
    pdf.pages[0].obj[pikepdf.Name.AA] = pikepdf.Dictionary(
        O=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.org/"))
    )
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(pdf_bytes(pdf))
    assert rejection(exc_info) == MSG_PDF_ACTIVE


def test_javascript_in_annotation_inside_compressed_object_stream_is_refused() -> None:
    pdf = one_page_pdf()
    annot = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Link,
            Rect=pikepdf.Array([0, 0, 100, 100]),
            A=pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("this.exportDataObject()")),
        )
    )
    pdf.pages[0].obj[pikepdf.Name.Annots] = pikepdf.Array([annot])
    raw = pdf_bytes(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    assert b"JavaScript" not in raw  # only visible after qpdf decompresses the object stream
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(raw)
    assert rejection(exc_info) == MSG_PDF_ACTIVE


def test_hex_escaped_name_and_names_tree_javascript_is_refused() -> None:
    pdf = one_page_pdf()
    js = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.org/")))
    pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(Names=pikepdf.Array(["a", js])))
    raw = pdf_bytes(pdf, object_stream_mode=pikepdf.ObjectStreamMode.disable, compress_streams=False)
    escaped = raw.replace(b"/JavaScript", b"/J#61vaScript")
    assert escaped != raw
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(escaped)  # offsets are now wrong, so qpdf has to recover: it must still find the name
    assert rejection(exc_info) == MSG_PDF_ACTIVE


def test_pdf_with_embedded_file_is_refused() -> None:
    pdf = one_page_pdf()
    pdf.attachments["payload.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ\x90\x00", mime_type="application/x-msdownload")
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(pdf_bytes(pdf))
    assert rejection(exc_info) == MSG_PDF_ACTIVE


@pytest.mark.parametrize("user_password", ["open-sesame", ""])
def test_encrypted_pdf_is_refused(user_password: str) -> None:
    raw = pdf_bytes(one_page_pdf(), encryption=pikepdf.Encryption(user=user_password, owner="owner-secret", R=6))
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(raw)
    assert rejection(exc_info) == MSG_PDF_PASSWORD


def test_random_bytes_after_pdf_magic_are_refused_as_damaged() -> None:
    raw = b"%PDF-1.7\n" + random.Random(3).randbytes(20_000)
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(raw)
    assert rejection(exc_info) == MSG_PDF_DAMAGED


def test_pdf_without_pages_is_refused() -> None:
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(pdf_bytes(pikepdf.new()))
    assert rejection(exc_info) == MSG_PDF_DAMAGED


def test_png_given_as_pdf_is_refused() -> None:
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(png_bytes(Image.new("RGB", (10, 10), "white")))
    assert rejection(exc_info) == MSG_NOT_PDF


@pytest.mark.parametrize("prefix", [b" " * 1024, b"<html><script>alert(1)</script></html>\n", b"\n"])
def test_anything_before_the_pdf_magic_is_refused(prefix: bytes) -> None:
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(prefix + pdf_bytes(one_page_pdf()))
    assert rejection(exc_info) == MSG_NOT_PDF


def test_empty_and_oversized_pdfs_are_refused() -> None:
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(b"")
    assert rejection(exc_info) == MSG_EMPTY
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(b"%PDF-1.7\n" + b"\x00" * (20 * 1024 * 1024))
    assert rejection(exc_info) == "The selected file must be smaller than 20 MB"


def test_pdf_check_that_runs_too_long_gives_the_timeout_message() -> None:
    started = time.perf_counter()
    with pytest.raises(UploadRejectedError) as exc_info:
        check_pdf(pdf_bytes(one_page_pdf()), timeout_seconds=0.001)
    assert rejection(exc_info) == MSG_PDF_TIMEOUT
    assert time.perf_counter() - started < 5.0


def test_unusable_pdf_limits_are_a_programming_error() -> None:
    raw = pdf_bytes(one_page_pdf())
    with pytest.raises(ValueError, match="memory_limit_bytes"):
        check_pdf(raw, memory_limit_bytes=10 * 1024 * 1024)
    with pytest.raises(ValueError, match="timeout_seconds"):
        check_pdf(raw, timeout_seconds=0)


def test_worker_that_cannot_run_is_a_server_error_not_a_user_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # json.tool reads stdin, fails on the PDF and exits 1 without a verdict, like a worker that cannot start.
    monkeypatch.setattr(pdfs, "WORKER_MODULE", "json.tool")
    with pytest.raises(RuntimeError, match="exit status 1"):
        check_pdf(pdf_bytes(one_page_pdf()))


# --- display names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\system32\\cmd.exe", "cmd.exe"),
        ("a\r\nb.pdf", "a b.pdf"),
        ("\u202egnp.exe", "gnp.exe"),
        ("report\u2028\u2029 final\u200b.pdf", "report final.pdf"),
        ("   ", "document"),
        ("", "document"),
        ("..", "document"),
        ("C:\\Users\\me\\", "document"),
        ("\x00\x07\x1b[31m", "[31m"),
        ("Cafe\u0301 plan.pdf", "Café plan.pdf"),
        ("  Placement   plan .pdf  ", "Placement plan .pdf"),
    ],
)
def test_safe_display_name(name: str, expected: str) -> None:
    assert safe_display_name(name) == expected


def test_long_display_name_keeps_extension() -> None:
    name = safe_display_name("x" * 296 + ".pdf")
    assert len(name) == 100
    assert name == "x" * 96 + ".pdf"
    assert safe_display_name("y" * 300) == "y" * 100


def test_display_name_default_and_result_is_clean() -> None:
    assert safe_display_name("\u202e\u2066", default="photo") == "photo"
    for name in ("../../etc/passwd", "a\r\nb.pdf", "\u202egnp.exe", "z" * 300, "   "):
        cleaned = safe_display_name(name)
        assert cleaned
        assert len(cleaned) <= 100
        assert not any(ch in cleaned for ch in "/\\\r\n\t\x00\u202e\u2028")
