"""The checklist definitions in forms/: what is shipped is valid, and a broken file stops start-up clearly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import test_environ
from transitions.formdefs import REQUIRED_SECTIONS, FormDefinitionError, load_definitions
from transitions.paths import FORMS_DIR
from transitions.settings import load_settings


@pytest.fixture
def forms_copy(tmp_path: Path) -> Path:
    target = tmp_path / "forms"
    shutil.copytree(FORMS_DIR, target)
    return target


def test_shipped_definitions_hold_every_section_with_error_texts_and_why():
    definitions = load_definitions(FORMS_DIR)
    assert set(REQUIRED_SECTIONS) <= set(definitions.sections)
    for section in definitions.sections.values():
        assert section.why and section.why_source
        for f in section.all_fields:
            if f.mandatory:
                assert f.errors.get("required"), (section.code, f.id)
    assert definitions.section("HEALTH").edited_by == {"cla_nurse"}
    assert definitions.section("MH").edited_by == {"cla_nurse"}
    assert "cla_nurse" not in definitions.section("RISK").edited_by
    core = {s.code for s in definitions.sections.values() if s.core}
    assert {"PHOTO", "RISK", "MISSING", "CONTACTS", "HEALTH", "PLAN"} <= core
    health = definitions.section("HEALTH")
    assert health.field("preferred_hospital_name").mandatory  # Lesson CH3.2
    assert health.field("health_plan_doc").type == "document"  # Lesson CH1.1
    assert any(f.sensitivity == "identity_protected" for f in definitions.section("MISSING").fields)
    assert definitions.section("CONTACTS").entry is not None


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_unknown_field_type_stops_start_up_naming_file_and_field(forms_copy: Path, tmp_path: Path):
    _replace(forms_copy / "sections" / "voice.toml", 'type = "textarea"', 'type = "slider"')
    with pytest.raises(FormDefinitionError) as caught:
        load_definitions(forms_copy)
    message = str(caught.value)
    assert "voice.toml" in message and "unknown field type 'slider'" in message

    from transitions.app import create_app

    settings = load_settings(test_environ(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path / "instance",
                                          TRANSITIONS_FORMS_DIR=str(forms_copy)))
    with pytest.raises(FormDefinitionError, match="slider"):
        create_app(settings)


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
    ("sections/risk.toml", "[fields.errors]\nrequired", "[fields.errors]\nrequire", "unknown error kind"),
    ("sections/risk.toml", 'code = "RISK"', 'code = "ID"', "also defined"),
    ("sections/health.toml", 'edited_by = ["cla_nurse"]', 'edited_by = ["admin"]', "unknown role"),
    ("sections/risk.toml", "review_interval_days = 90", "review_interval_days = 0", "review_interval_days"),
    ("sections/voice.toml", 'codes = "VOICE_SOURCE"', 'codes = "NO_SUCH_LIST"', "unknown code list"),
    ("sections/mh.toml", 'required_if = { field = "camhs_open", in = ["yes"] }',
     'required_if = { field = "camhs_open", in = ["maybe"] }', "required_if values"),
    ("sections/mh.toml", 'required_if = { field = "camhs_open", in = ["yes"] }',
     'required_if = { field = "no_such_field", in = ["yes"] }', "not another field"),
])
def test_broken_definitions_are_refused(forms_copy: Path, file: str, old: str, new: str, expected: str):
    _replace(forms_copy / file, old, new)
    with pytest.raises(FormDefinitionError, match=expected):
        load_definitions(forms_copy)


def test_a_missing_section_is_refused(forms_copy: Path):
    (forms_copy / "sections" / "missing.toml").unlink()
    with pytest.raises(FormDefinitionError, match="MISSING"):
        load_definitions(forms_copy)


def test_the_digest_changes_with_the_definitions(forms_copy: Path):
    before = load_definitions(forms_copy).digest
    _replace(forms_copy / "sections" / "voice.toml", "title = ", "title = \"All about me\"\n#")
    assert load_definitions(forms_copy).digest != before


def test_every_transition_kind_and_recipient_type_loads():
    definitions = load_definitions(FORMS_DIR)
    assert len(definitions.kinds) >= 10
    emergency = definitions.kinds["emergency_move"]
    out_of_area = {r.type for r in emergency.recipients if r.when == "out_of_area" and r.required}
    assert {"host_la", "host_police"} <= out_of_area
    assert any(s.code == "PHOTO" and s.blocking and s.fresh for s in emergency.sections)
    assert definitions.recipient_types["parents_pr"].never_identity_protected


def test_organisation_kinds_match_the_register():
    from transitions.formdefs import ORGANISATION_KINDS
    from transitions.models import OrganisationKind

    assert {k.value for k in OrganisationKind} == ORGANISATION_KINDS


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
    ("transitions/emergency_move.toml", 'type = "host_police"', 'type = "neighbourhood_watch"',
     "unknown recipient type 'neighbourhood_watch'"),
    ("transitions/emergency_move.toml", 'when = "out_of_area"', 'when = "full_moon"', "unknown condition 'full_moon'"),
    ("transitions/emergency_move.toml", 'due = "on_arrival"', 'due = "soonish"', "due must be"),
    ("recipients.toml", 'source = "host_la"', 'source = "guess"', "source must be"),
])
def test_a_broken_transition_kind_stops_start_up_clearly(forms_copy: Path, file: str, old: str, new: str,
                                                         expected: str):
    _replace(forms_copy / file, old, new)
    with pytest.raises(FormDefinitionError, match=re.escape(expected)):
        load_definitions(forms_copy)


def test_a_missing_transition_kind_is_refused(forms_copy: Path):
    (forms_copy / "transitions" / "tier4_admission.toml").unlink()
    with pytest.raises(FormDefinitionError, match="tier4_admission"):
        load_definitions(forms_copy)
