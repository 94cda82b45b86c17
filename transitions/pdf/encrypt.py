"""Encrypt a rendered pack with pikepdf: AES-256, /V 5 /R 6 (security.md R53), with its attached documents.

ReportLab's own encryption is not used: it defaults to RC4-40, and its AES-256 output (R5) is rejected by
poppler and pypdf (stack.md §4). The user password is a random phrase shown to the recipient or read out by
phone, never emailed; the owner password is random and thrown away, so nobody holds "full" rights.
"""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Sequence
from typing import Final

import pikepdf

READABLE_ALPHABET: Final = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: easy to read out and type
PASSWORD_GROUPS: Final = 5
PASSWORD_GROUP_LENGTH: Final = 4
#: The document information entries kept (all set by render_pack from neutral fields: R54).
NEUTRAL_DOCINFO: Final = ("/Title", "/Author", "/Subject", "/Creator", "/Producer", "/CreationDate", "/ModDate")


def new_pdf_password() -> str:
    """A random password such as ``7kqm-x3vd-9trp-wh4c-b2ne``: 20 characters from a 31-letter alphabet
    (about 99 bits) in groups of four, so it can be read aloud."""
    groups = ("".join(secrets.choice(READABLE_ALPHABET) for _ in range(PASSWORD_GROUP_LENGTH))
              for _ in range(PASSWORD_GROUPS))
    return "-".join(groups)


def encrypt_pdf(pdf: bytes, password: str, appendices: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """:func:`encrypt_pack` without the page count or a stamp."""
    return encrypt_pack(pdf, password, appendices)[0]


def encrypt_pack(pdf: bytes, password: str, appendices: Sequence[tuple[str, bytes]] = (),
                 stamp: bytes | None = None) -> tuple[bytes, int]:
    """The pack with every page of each appendix (title, PDF bytes) after its own pages, encrypted for
    ``password`` with AES-256 (R6). Printing and accessibility are allowed; changes and copying are not.

    Appendices must already have passed the upload checks (no active content, not encrypted). Only their
    pages are taken: not their document information, XMP, outline or names. The result keeps only the pack's
    neutral document information and has no XMP at all; the outline lists the pack and each appendix.
    """
    if not password:
        raise ValueError("a pack needs a user password")
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(pikepdf.open(io.BytesIO(pdf)))
        marks = [("Handover pack", 0)]
        for title, data in appendices:
            # The source must stay open until the result is saved: qpdf copies page streams lazily.
            source = stack.enter_context(pikepdf.open(io.BytesIO(data)))
            marks.append((title, len(out.pages)))
            out.pages.extend(source.pages)
        first_appendix_page = marks[1][1] if len(marks) > 1 else len(out.pages)
        for index, page in enumerate(out.pages):
            for key in ("/Metadata", "/PieceInfo"):
                if key in page.obj:
                    del page.obj[key]
            if index >= first_appendix_page and "/Annots" in page.obj:
                # An uploaded document's links and form widgets go: a pack opens nothing on the web (R49).
                del page.obj["/Annots"]
        if stamp is not None and len(marks) > 1:  # the marking on every page, attached documents' too
            marker = stack.enter_context(pikepdf.open(io.BytesIO(stamp)))
            form = out.copy_foreign(marker.pages[0].as_form_xobject())  # one copy, shared by every page
            for page in out.pages[first_appendix_page:]:
                page.add_overlay(form, pikepdf.Rectangle(page.trimbox))
        for obj in out.objects:  # XMP on images and forms inside an uploaded document, too (R54)
            if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream) and "/Metadata" in obj:
                del obj["/Metadata"]
        if "/Metadata" in out.Root:
            del out.Root.Metadata
        if "/PieceInfo" in out.Root:
            del out.Root.PieceInfo
        kept = {key: out.docinfo[key] for key in NEUTRAL_DOCINFO if key in out.docinfo}
        out.docinfo = out.make_indirect(pikepdf.Dictionary(kept))
        if appendices:
            with out.open_outline() as outline:
                outline.root[:] = [pikepdf.OutlineItem(title, index) for title, index in marks]
        buffer = io.BytesIO()
        pages = len(out.pages)
        out.save(
            buffer,
            # Streams stay as they are (ReportLab's are compressed already): recompressing them costs 3 ms.
            compress_streams=False,
            encryption=pikepdf.Encryption(
                user=password,
                owner=secrets.token_urlsafe(32),  # random and discarded
                R=6,
                aes=True,
                metadata=True,
                allow=pikepdf.Permissions(
                    accessibility=True,
                    print_lowres=True,
                    print_highres=True,
                    extract=False,
                    modify_annotation=False,
                    modify_assembly=False,
                    modify_form=False,
                    modify_other=False,
                ),
            ),
        )
    return buffer.getvalue(), pages
