"""Attack #36: a right-to-left override typed into a child's name is shown as typed but cannot reorder the text
around it: every piece of page text that holds it sits inside an isolating element (``<bdi>``)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.conftest import sign_in
from tests.integration.test_child_record import Record, profile_input, record  # noqa: F401  (a fixture)
from transitions.services import accounts, children
from transitions.services.audit import Actor

pytestmark = pytest.mark.security

RLO = "\u202e"
NAME = f"Amy{RLO}lihc Jones"


class _BidiText(HTMLParser):
    """Collects the text runs that hold ``RLO``, each with whether an isolating element encloses it."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.runs: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in {"br", "img", "input", "meta", "link", "hr"}:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        if RLO in data and "title" not in self.open:  # a <title> holds no markup and is a line of its own
            self.runs.append((data, "bdi" in self.open))


def _runs(html: str) -> list[tuple[str, bool]]:
    parser = _BidiText()
    parser.feed(html)
    return parser.runs


def test_a_right_to_left_override_in_a_name_is_isolated_on_the_list_and_the_record(
        deps, record: Record, client, clock):  # noqa: F811
    view = accounts.get_user(deps, record.worker.id)
    child_id = children.create_child(
        deps, profile_input(deps, team_id=record.team_id, worker_id=record.worker.id, name=NAME,
                            nhs="9990001332", la_child_id="LCS-2"), view, Actor("staff", str(record.worker.id)))
    sign_in(client, record.worker, clock)
    for url in ("/children", f"/children/{child_id}"):
        response = client.get(url)
        assert response.status_code == 200, url
        runs = _runs(response.get_data(as_text=True))
        assert any(NAME.split()[0] in text for text, _ in runs), url  # shown, as typed
        assert all(isolated for _, isolated in runs), (url, [t for t, ok in runs if not ok])
