"""Working-day deadlines skip weekends and England and Wales bank holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from transitions.services.deadlines import add_working_days, due_at, is_working_day


def test_five_working_days_across_the_spring_bank_holiday_weekend():
    # Friday 22 May 2026; Monday 25 May is the Spring bank holiday
    start = datetime(2026, 5, 22, 21, 30, tzinfo=UTC)
    assert due_at("working_days:5", start) == datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 17:00 BST


def test_christmas_and_boxing_day_observed():
    assert not is_working_day(date(2026, 12, 25)) and not is_working_day(date(2026, 12, 28))
    assert add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 29)
    assert due_at("working_days:1", datetime(2026, 12, 24, 10, 0, tzinfo=UTC)) == datetime(
        2026, 12, 29, 17, 0, tzinfo=UTC)  # 17:00 GMT


def test_a_late_evening_in_summer_counts_from_the_uk_date():
    # 23:30 UTC on Friday 26 June 2026 is 00:30 BST on Saturday 27 June: counting starts from Saturday
    assert due_at("working_days:1", datetime(2026, 6, 26, 23, 30, tzinfo=UTC)) == datetime(
        2026, 6, 29, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(("rule", "expected"), [
    ("before_move", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ("on_arrival", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ("hours:24", datetime(2026, 3, 3, 9, 0, tzinfo=UTC)),
])
def test_hour_rules(rule, expected):
    assert due_at(rule, datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == expected


def test_unknown_rules_are_refused():
    with pytest.raises(ValueError):
        due_at("fortnight", datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
