"""Checking and showing section values (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transitions.formdefs import load_definitions
from transitions.paths import FORMS_DIR
from transitions.services.values import (
    NOT_KNOWN_TEXT,
    FieldInput,
    check_field,
    check_fields,
    differences,
    display,
    format_nhs_number,
    gaps,
    valid_nhs_number,
)

DEFS = load_definitions(FORMS_DIR)


@pytest.mark.parametrize("number", ["9990000999", "999 000 1073", "943 476 5919"])
def test_valid_nhs_numbers(number):
    assert valid_nhs_number(number)


@pytest.mark.parametrize("number", ["9990000998", "123456789", "12345678901", "abcdefghij", "",
                                    "4857773456"])
def test_invalid_nhs_numbers(number):
    assert not valid_nhs_number(number)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_exactly_one_check_digit_or_none_is_valid(first_nine):
    valid = [d for d in "0123456789" if valid_nhs_number(first_nine + d)]
    assert len(valid) <= 1


def test_nhs_number_is_shown_in_groups():
    assert format_nhs_number("9990000999") == "999 000 0999"


def test_mandatory_field_may_be_recorded_as_not_known_and_shows_as_a_gap():
    health = DEFS.section("HEALTH")
    allergies = health.field("allergies")
    assert allergies.not_known
    value, error = check_field(allergies, FieldInput(value="", not_known=True))
    assert error is None and display(allergies, value) == NOT_KNOWN_TEXT
    content, errors = check_fields(health.fields, {"allergies": FieldInput(not_known=True)}, {})
    assert "allergies" not in errors
    assert allergies.label in gaps(health, content)


def test_mandatory_field_left_empty_gets_its_own_error_text():
    risk = DEFS.section("RISK")
    narrative = risk.field("risk_narrative")
    _, error = check_field(narrative, FieldInput(value="   "))
    assert error == narrative.errors["required"]


def test_codes_outside_the_list_are_refused():
    source = DEFS.section("VOICE").field("source")
    _, error = check_field(source, FieldInput(value="made_up"))
    assert error


def test_dates_are_stored_iso_and_shown_in_words():
    taken = DEFS.section("PHOTO").field("taken_on")
    value, error = check_field(taken, FieldInput(value=date(2026, 3, 3)))
    assert error is None and value == "2026-03-03" and display(taken, value) == "3 March 2026"
    _, error = check_field(taken, FieldInput(date_invalid=True))
    assert error == taken.errors["invalid"]


def test_differences_name_changed_fields_and_entries():
    contacts = DEFS.section("CONTACTS")
    old = {"entries": [{"id": "a", "name": "Maria", "relationship": "Grandmother"}]}
    new = {"entries": [{"id": "a", "name": "Maria", "relationship": "Aunt"},
                       {"id": "b", "name": "Darren", "relationship": "Father"}]}
    labels = [c.label for c in differences(contacts, old, new)]
    assert any("Darren" in label and "added" in label for label in labels)
    assert any("Maria" in label for label in labels)


def test_a_conditional_field_is_required_only_when_its_condition_holds():
    mh = DEFS.section("MH")
    open_case = {"camhs_open": FieldInput(value="yes")}
    _, errors = check_fields(mh.fields, open_case, {})
    assert errors["camhs_provider"] == mh.field("camhs_provider").errors["required"]
    _, errors = check_fields(mh.fields, {"camhs_open": FieldInput(value="no")}, {})
    assert "camhs_provider" not in errors
    assert mh.field("camhs_provider").label in gaps(mh, {"camhs_open": "yes"})
    assert mh.field("camhs_provider").label not in gaps(mh, {"camhs_open": "no"})
