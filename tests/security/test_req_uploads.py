"""Uploads through the running app (security.md C8: R57, R59–R62; attacks #36, #39–#43).

The unit tests in tests/unit/test_uploads.py prove the checks on bytes; these prove what the web layer does
around them: the request limits, the names, the storage and the response headers.
"""

from __future__ import annotations

import threading
import time
import unicodedata
import uuid

import pytest
from sqlalchemy import select
from werkzeug.http import parse_options_header

from tests.conftest import csrf_from, sign_in
from tests.integration.test_child_record import record, submit  # noqa: F401 - `record` is a fixture
from tests.unit.test_uploads import jpeg_with_metadata, one_page_pdf, pdf_bytes
from transitions.models import Attachment, StoredBlob
from transitions.uploads import UploadRejectedError, check_pdf, clean_photo
from transitions.uploads.errors import MSG_NOT_PDF, MSG_NOT_PHOTO, MSG_PDF_DAMAGED, MSG_PDF_TIMEOUT

pytestmark = pytest.mark.security

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


# ---- R57 / #42: request limits ------------------------------------------------------------------------------


BOUNDARY = "sec-b-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def _multipart(parts: int) -> tuple[bytes, str]:
    body = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n'.encode()
                    for i in range(parts))
    return body + f"--{BOUNDARY}--\r\n".encode(), MULTIPART


def _upload_body(token: str, field: str, filename: str, content_type: str, data: bytes) -> bytes:
    """A form with its CSRF token and one file, built by hand: the test client would spool a large file to a
    temp file of its own, and would not send a raw CR LF inside a file name."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def test_a_5000_part_form_and_a_21_mib_upload_get_the_413_page_fast_and_store_nothing(
        client, deps, clock, record):  # noqa: F811
    body, content_type = _multipart(5000)
    started = time.perf_counter()
    response = client.post("/sign-in", data=body, content_type=content_type)
    elapsed = time.perf_counter() - started
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True).lower()
    assert elapsed < 1.0, elapsed
    # 100 parts is the limit (MAX_FORM_PARTS); a form with 99 is parsed (and refused for its missing token)
    small, small_type = _multipart(99)
    assert client.post("/sign-in", data=small, content_type=small_type).status_code == 400

    sign_in(client, record.worker, clock)
    url = f"/children/{record.child_id}/sections/PHOTO/edit"
    token = csrf_from(client.get(url).get_data(as_text=True))
    body = _upload_body(token, "photo", "big.jpg", "image/jpeg", b"\xff\xd8\xff" + b"\0" * (21 * 1024 * 1024))
    response = client.post(url, data=body, content_type=MULTIPART)
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True).lower()
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    with deps.db.transaction() as session:
        assert session.scalars(select(StoredBlob)).first() is None


# ---- R60 / #36, #43: hostile file names ---------------------------------------------------------------------


HOSTILE_NAMES = ("../../app/config.py", "CON.pdf", "\u202egnp.exe.pdf", "x" * 300 + ".pdf", "..\\..\\boot.ini",
                 "nul\x00byte.pdf", "a%0D%0Ab.pdf")


def test_hostile_file_names_are_stored_under_a_random_id_and_downloaded_with_a_valid_header(
        client, deps, clock, record):  # noqa: F811
    """One upload per name (a browser sends CR and LF in a name as %0D and %0A: the next test sends them raw)."""
    sign_in(client, record.nurse, clock)
    for name in HOSTILE_NAMES:
        response = submit(client, f"/children/{record.child_id}/sections/HEALTH/edit", {},
                          files={"health_plan_doc": (pdf_bytes(one_page_pdf()), name)})
        assert response.status_code == 200  # other HEALTH answers are missing; the file is checked and kept
        with deps.db.transaction() as session:
            attachment = session.scalars(select(Attachment)).one()
            shown, attachment_id, blob_id = attachment.display_name, attachment.id, attachment.blob_id
        _assert_safe_name(shown)
        assert uuid.UUID(str(blob_id)).version == 4  # stored by a random id, never by the name it came with
        _assert_served_as_attachment(client.get(f"/children/{record.child_id}/files/{attachment_id}"), shown)
        with deps.db.transaction() as session:
            session.delete(session.get(Attachment, attachment_id))  # so the next name's row is the newest


def _assert_safe_name(shown: str) -> None:
    assert shown and len(shown) <= 100 and shown.endswith(".pdf"), shown
    assert not any(ch in shown for ch in "/\\\r\n\x00") and not shown.startswith(".")
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in shown)


def _assert_served_as_attachment(download, shown: str) -> None:
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    header = download.headers["Content-Disposition"]
    assert "\r" not in header and "\n" not in header
    disposition, options = parse_options_header(header)
    assert disposition == "attachment" and options["filename"] == shown
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"].startswith("sandbox")


def test_a_raw_cr_lf_in_a_multipart_file_name_cannot_split_headers(client, deps, clock, record):  # noqa: F811
    """Not what a browser sends, but what a script can: the part's header is cut at the CR LF. Whatever the
    parser makes of it, nothing is stored under a name with a line break and the app answers normally."""
    sign_in(client, record.nurse, clock)
    url = f"/children/{record.child_id}/sections/HEALTH/edit"
    token = csrf_from(client.get(url).get_data(as_text=True))
    body = _upload_body(token, "health_plan_doc", "a\r\nSet-Cookie: x=y\r\nb.pdf", "application/pdf",
                        pdf_bytes(one_page_pdf()))
    response = client.post(url, data=body, content_type=MULTIPART)
    assert response.status_code in (200, 400)
    assert "Set-Cookie" not in response.headers or "x=y" not in response.headers["Set-Cookie"]
    with deps.db.transaction() as session:
        for attachment in session.scalars(select(Attachment)):
            _assert_safe_name(attachment.display_name)


# ---- R61 / #39: polyglots are refused or never rendered ------------------------------------------------------


@pytest.mark.parametrize("data", [
    pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', id="svg"),
    pytest.param(b"GIF89a/*<script>alert(1)</script>*/", id="gif-js"),
    pytest.param(b"\xff\xd8\xff<html><script>alert(1)</script></html>", id="jpeg-magic-then-html"),
])
def test_html_svg_and_js_polyglots_named_as_photos_are_refused(data):
    with pytest.raises(UploadRejectedError) as caught:
        clean_photo(data)
    assert caught.value.message.startswith("The selected file")


def test_a_photo_is_always_served_as_the_re_encoded_jpeg_in_a_sandbox(client, deps, clock, record):  # noqa: F811
    """Whatever name and type the browser claimed, what is served is our JPEG, typed by us, sandboxed."""
    sign_in(client, record.worker, clock)
    submit(client, f"/children/{record.child_id}/sections/PHOTO/edit", {},
           files={"photo": (jpeg_with_metadata(), "photo.html")})
    with deps.db.transaction() as session:
        attachment = session.scalars(select(Attachment)).one()
        attachment_id = attachment.id
    served = client.get(f"/children/{record.child_id}/files/{attachment_id}")
    assert served.status_code == 200 and served.data.startswith(b"\xff\xd8\xff")
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


# ---- R59 / #40, #41: active and pathological PDFs --------------------------------------------------------------


def test_the_eicar_test_file_is_refused_as_a_photo_and_as_a_pdf():
    """No virus scanner runs (a gap against R59): EICAR is refused here only because it is neither format."""
    with pytest.raises(UploadRejectedError) as as_photo:
        clean_photo(EICAR)
    assert as_photo.value.message == MSG_NOT_PHOTO
    with pytest.raises(UploadRejectedError) as as_pdf:
        check_pdf(EICAR)
    assert as_pdf.value.message == MSG_NOT_PDF


def test_deeply_nested_pdf_is_refused_as_damaged_quickly():
    deep = (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /X " + b"[" * 200_000 + b"]" * 200_000
            + b" >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n")
    started = time.perf_counter()
    with pytest.raises(UploadRejectedError) as caught:
        check_pdf(deep)
    assert caught.value.message == MSG_PDF_DAMAGED
    assert time.perf_counter() - started < 5.0


def _object_chain(count: int) -> bytes:
    body = b"".join(b"%d 0 obj\n[%d 0 R]\nendobj\n" % (i, i + 1) for i in range(3, count + 3))
    return (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /X 3 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n" + body + b"trailer\n<< /Root 1 0 R >>\n")


def test_a_pdf_that_takes_too_long_hits_the_limit_while_the_app_keeps_answering(client):
    """200,000 chained objects take qpdf about 2.5 s; with a 0.5 s limit the child is killed and the upload is
    refused with the timeout message, and meanwhile the web process answers at once (the parse is elsewhere)."""
    chain = _object_chain(200_000)
    outcome: list[str] = []

    def check() -> None:
        try:
            check_pdf(chain, timeout_seconds=0.5)
        except UploadRejectedError as exc:
            outcome.append(exc.message)

    worker = threading.Thread(target=check)
    started = time.perf_counter()
    worker.start()
    answered = client.get("/healthz")
    answered_after = time.perf_counter() - started
    worker.join(timeout=10)
    assert answered.status_code == 200 and answered_after < 0.5
    assert outcome == [MSG_PDF_TIMEOUT]
    assert time.perf_counter() - started < 3.0
