"""R86: every page of a generated pack carries the handling footer: the marking, how to keep and destroy it, the
sender's contact, the version and when it was generated (not only page 1)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace

import pytest

from tests.unit.test_pdf import fonts, page_texts, sample_document, sample_photo  # noqa: F401  (fonts: a fixture)
from transitions.paths import REPO_ROOT
from transitions.pdf import PackFonts, render_pack

pytestmark = pytest.mark.security


def test_every_page_of_a_pack_carries_the_handling_footer(fonts: PackFonts) -> None:  # noqa: F811
    # The shipped wording: the longest contact line the footer must hold.
    contact = tomllib.loads((REPO_ROOT / "config" / "default.toml").read_text())["packs"]["sender_contact"]
    doc = replace(sample_document(photo=sample_photo(), care_items=12), sender_contact=contact, version=3,
                  reference="HP-7K3D9Q-v3")
    texts = page_texts(render_pack(doc, fonts))
    assert len(texts) >= 4
    for number, raw in enumerate(texts, start=1):
        text = re.sub(r"\s+", " ", raw)
        assert text.count("OFFICIAL-SENSITIVE") >= 2, number
        assert "Do not copy or forward. Keep only while needed for the child's care, then destroy securely." in text
        assert "Version 3, generated 25 November 2026." in text, number
        assert f"Sender: {contact}" in text, number
