"""When each recipient is due: before the move, on arrival, N hours after, or N working days after.

Working days skip weekends and England and Wales bank holidays (the `holidays` library computes them
offline, including substitute days such as Boxing Day observed on a Monday). A "within 5 working days"
duty is met by the end of the fifth working day, taken here as 17:00 UK time on that day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from transitions.clock import UK

END_OF_WORKING_DAY = time(17, 0)


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    england = holidays.country_holidays("GB", subdiv="ENG", years=year)
    wales = holidays.country_holidays("GB", subdiv="WLS", years=year)
    return frozenset(england) | frozenset(wales)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The `days`-th working day after `start` (the start day itself does not count)."""
    current = start
    counted = 0
    while counted < days:
        current += timedelta(days=1)
        if is_working_day(current):
            counted += 1
    return current


def due_at(rule: str, starts_at: datetime) -> datetime:
    """The due time for a recipient rule from forms/ (before_move, on_arrival, hours:N, working_days:N)."""
    if rule in ("before_move", "on_arrival"):
        return starts_at
    kind, _, amount = rule.partition(":")
    if kind == "hours":
        return starts_at + timedelta(hours=int(amount))
    if kind == "working_days":
        local_start = starts_at.astimezone(UK).date()
        day = add_working_days(local_start, int(amount))
        return datetime.combine(day, END_OF_WORKING_DAY, tzinfo=UK).astimezone(starts_at.tzinfo)
    raise ValueError(f"unknown due rule {rule!r}")


START_OF_WORKING_DAY = time(9, 0)


def _opens(day: date) -> datetime:
    return datetime.combine(day, START_OF_WORKING_DAY, tzinfo=UK)


def _closes(day: date) -> datetime:
    return datetime.combine(day, END_OF_WORKING_DAY, tzinfo=UK)


def shift_working_hours(start: datetime, hours: int) -> datetime:
    """`hours` of working time (Monday to Friday 09:00-17:00 UK, bank holidays excluded) after `start`, or
    before it when negative. Zero or more hours forward from outside working time lands in working time: an
    alert "at the due time" of a planned move due on a Saturday waits for Monday morning."""
    remaining = timedelta(hours=abs(hours))
    at = start.astimezone(UK)
    if hours >= 0:
        while True:
            day = at.date()
            if not is_working_day(day) or at >= _closes(day):
                at = _opens(day + timedelta(days=1))
                continue
            at = max(at, _opens(day))
            step = min(remaining, _closes(day) - at)
            at += step
            remaining -= step
            if not remaining:
                return at.astimezone(start.tzinfo)
    while remaining:
        day = at.date()
        if not is_working_day(day) or at <= _opens(day):
            at = _closes(day - timedelta(days=1))
            continue
        at = min(at, _closes(day))
        step = min(remaining, at - _opens(day))
        at -= step
        remaining -= step
    return at.astimezone(start.tzinfo)


def shift_hours(start: datetime, hours: int, *, working_hours: bool) -> datetime:
    return shift_working_hours(start, hours) if working_hours else start + timedelta(hours=hours)
