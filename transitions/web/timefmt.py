"""Times as people in England read them: UK local time (GMT or BST), GOV.UK style ("3 March 2026, 2:05am").

Everything is stored and computed in UTC; only what is shown is converted. A ward nurse at 2 a.m. in
October should not have to work out whether "01:30 UTC" is before or after the clocks went back.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask

from transitions.clock import UK


def clock_time(value: datetime) -> str:
    local = value.astimezone(UK)
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    if local.hour == 12 and local.minute == 0:
        return "midday"
    if local.hour == 0 and local.minute == 0:
        return "midnight"
    return f"{hour}:{local.minute:02d}{suffix}"


def day(value: date | datetime) -> str:
    local = value.astimezone(UK) if isinstance(value, datetime) else value
    return f"{local.day} {local.strftime('%B')} {local.year}"


def date_time(value: datetime) -> str:
    return f"{day(value)}, {clock_time(value)}"


def register_time_filters(app: Flask) -> None:
    app.jinja_env.filters["clock_time"] = clock_time
    app.jinja_env.filters["day"] = day
    app.jinja_env.filters["date_time"] = date_time
