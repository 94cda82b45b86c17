"""ReportLab's version guard (security.md R50, attack #33): the part tests/unit/test_pdf.py does not pin.

pip-audit does not run in CI (no network there), so "pip-audit fails on reportlab==3.6.12" is replaced by the
two checks that hold offline: the pin is at or above the fixed release, and a render refuses an older one.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import reportlab

from transitions.paths import PDF_FONTS_DIR, REPO_ROOT
from transitions.pdf import PackConfigError, harden_reportlab, load_fonts

pytestmark = pytest.mark.security

FIXED = (3, 6, 13)  # CVE-2023-33733: rl_safe_eval in <font color> is fixed from this release


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_reportlab_is_pinned_and_installed_at_or_above_the_fixed_release():
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in dependencies if d.startswith("reportlab")]
    assert len(pins) == 1 and "==" in pins[0], pins
    assert _version(pins[0].split("==", 1)[1]) >= FIXED
    assert _version(reportlab.Version) >= FIXED


@pytest.mark.parametrize("old", ["3.6.12", "3.5.67"])
def test_a_reportlab_older_than_the_fix_refuses_to_render(monkeypatch, old):
    load_fonts(PDF_FONTS_DIR)
    monkeypatch.setattr(reportlab, "Version", old)
    with pytest.raises(PackConfigError, match="CVE-2023-33733"):
        harden_reportlab()
    monkeypatch.undo()
    harden_reportlab()  # the real version passes
