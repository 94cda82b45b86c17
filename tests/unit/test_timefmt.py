"""Times shown in UK local time, GOV.UK style, either side of the clocks changing."""

from __future__ import annotations

from datetime import UTC, date, datetime

from transitions.web.timefmt import clock_time, date_time, day


def test_winter_is_gmt_and_summer_is_bst():
    assert date_time(datetime(2026, 1, 15, 14, 5, tzinfo=UTC)) == "15 January 2026, 2:05pm"
    assert date_time(datetime(2026, 7, 15, 14, 5, tzinfo=UTC)) == "15 July 2026, 3:05pm"


def test_the_night_the_clocks_go_back():
    # 25 October 2026: 01:30 BST (00:30 UTC) and 01:30 GMT (01:30 UTC) are an hour apart
    assert clock_time(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == "1:30am"
    assert clock_time(datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == "1:30am"
    assert clock_time(datetime(2026, 10, 25, 2, 0, tzinfo=UTC)) == "2:00am"


def test_midday_midnight_and_a_late_utc_evening_that_is_tomorrow_in_summer():
    assert clock_time(datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == "midday"
    assert clock_time(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "midnight"
    assert day(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == "1 July 2026"
    assert day(date(2026, 3, 3)) == "3 March 2026"
