"""Reports for managers and auditors: the period form, the charts and tables, a CSV file per table."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from flask import Blueprint, Response, abort, g, render_template, request, url_for
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovSelect
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import DateField, SelectField

from transitions.clock import UK
from transitions.services import reports as service
from transitions.services.accounts import StaffView
from transitions.services.errors import ForbiddenActionError, NotFoundError
from transitions.services.roles import MANAGERS, Role
from transitions.web.charts import Series, bar_chart
from transitions.web.context import actor, deps
from transitions.web.forms import DateInput, choices, date_error, uuid_or_none
from transitions.web.section_forms import show_errors
from transitions.web.security import staff
from transitions.web.timefmt import date_time, day

bp = Blueprint("reports", __name__)

REPORT_ROLES = (Role.TEAM_MANAGER, Role.SENIOR_MANAGER, Role.AUDITOR)
TABLE_NAMES = tuple(service.TABLES)
#: A cell beginning with one of these is a formula to a spreadsheet (CSV injection), also after leading spaces and
#: in their full-width forms (＝ ＋ － ＠), which spreadsheets read as the ASCII ones: it gets a leading apostrophe.
#: "|" and "%" start a DDE call or an old-style macro in some programs.
FORMULA_STARTS = ("=", "+", "-", "@", "|", "%", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\t", "\r")


@dataclass(frozen=True)
class Chart:
    """Which columns of a table its chart draws: (column, series name) pairs, the unit and the scale's top."""

    series: tuple[tuple[int, str], ...]
    unit: str = ""
    maximum: float | None = None
    #: Leave out the "All recipient types" total row (it would dwarf the others).
    skip_total: bool = False


CHARTS = {
    "kinds": Chart(((1, "Transitions"),)),
    "on_time": Chart(((6, "Sent on time"),), unit="%", maximum=100),
    "confirmation": Chart(((2, "Median"), (3, "90th percentile")), unit=" hours"),
    "sections": Chart(((2, "Missing"), (3, "Out of date"))),
    "escalations": Chart(((1, "Raised"), (2, "Acknowledged"), (3, "Resolved"))),
    "requests": Chart(((1, "Requests"), (2, "Answered")), skip_total=True),
}


class PeriodForm(FlaskForm):  # type: ignore[misc]  # flask_wtf is untyped
    class Meta:
        csrf = False  # a GET form that changes nothing

    from_date = DateField("From", widget=DateInput(), format="%d %m %Y", description="For example, 1 4 2026")
    to_date = DateField("To", widget=DateInput(), format="%d %m %Y", description="For example, 30 4 2026")
    team = SelectField("Team", widget=GovSelect(), choices=[], validate_choice=False)


@dataclass(frozen=True)
class ShownTable:
    table: service.Table
    cells: list[list[str]]
    links: list[str | None]
    chart: Markup | None
    csv_url: str


def _user() -> StaffView:
    user: StaffView = g.staff
    return user


@bp.errorhandler(ForbiddenActionError)
def forbidden(exc: ForbiddenActionError) -> tuple[str, int]:
    service.refuse(deps(), actor(), "other_team" if _user().role is Role.TEAM_MANAGER else "role")
    return render_template("errors/403.html"), 403


@bp.errorhandler(NotFoundError)
def not_found(exc: NotFoundError) -> tuple[str, int]:
    return render_template("errors/404.html"), 404


# ---- the period and team ----------------------------------------------------------------------------------


def _iso(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _read_choice(form: PeriodForm, args: MultiDict[str, str]) -> tuple[service.Period | None, UUID | None]:
    """The period and team asked for, or None with the form's fields carrying GOV.UK errors. Three ways in:
    the form's date inputs, ISO dates (?from=2026-04-01&to=2026-04-30, the CSV links), or nothing (the
    default period)."""
    default = service.default_period(deps())
    errors: dict[str, str] = {}
    team_text = args.get("team", "")
    team_id = uuid_or_none(team_text)
    if team_text and team_id is None:
        errors["team"] = "Select a team from the list"
    if "from_date" in args or "to_date" in args:
        start, end = form.from_date.data, form.to_date.data
        if message := date_error(form.from_date, missing="Enter the start date",
                                 invalid="The start date must be a real date, like 1 4 2026"):
            errors["from_date"] = message
        if message := date_error(form.to_date, missing="Enter the end date",
                                 invalid="The end date must be a real date, like 30 4 2026"):
            errors["to_date"] = message
    elif "from" in args or "to" in args:
        start, end = _iso(args.get("from")), _iso(args.get("to"))
        if start is None:
            errors["from_date"] = "The start date must be a real date, like 1 4 2026"
        if end is None:
            errors["to_date"] = "The end date must be a real date, like 30 4 2026"
        form.from_date.data, form.to_date.data = start, end
    else:
        start, end = default.start, default.end
        form.from_date.data, form.to_date.data = start, end
    if not errors:
        errors = service.period_errors(start, end)
    if errors or start is None or end is None:
        show_errors(form, errors)
        return None, team_id
    return service.Period(start, end), team_id


def _team_choices(form: PeriodForm, user: StaffView) -> None:
    teams = [(str(t.id), t.name) for t in service.teams_for(deps(), user)]
    form.team.choices = choices(teams if user.role is Role.TEAM_MANAGER else [("", "All teams"), *teams])


# ---- cells --------------------------------------------------------------------------------------------------


def _shown(value: service.Cell) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return date_time(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _csv_value(value: service.Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UK).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def neutralise(text: str) -> str:
    """A cell a spreadsheet would run as a formula is written as text (OWASP: CSV injection). Leading white space
    is skipped for the test (a spreadsheet skips it too) but kept in the value."""
    return "'" + text if text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS) else text


def csv_text(table: service.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([neutralise(_csv_value(v)) for v in row])
    return "\ufeff" + out.getvalue()  # the byte order mark: spreadsheet programs then read it as UTF-8


def _chart(table: service.Table) -> Markup | None:
    spec = CHARTS.get(table.name)
    if spec is None or not table.rows:
        return None
    rows = [r for r in table.rows if not (spec.skip_total and r[0] == service.ALL_RECIPIENTS)]
    series = [Series(name, tuple(float(v) if isinstance(v, int | float) else None for v in (r[i] for r in rows)))
              for i, name in spec.series]
    return bar_chart(f"chart-{table.name}", f"chart-{table.name}-caption", [str(r[0]) for r in rows], series,
                     unit=spec.unit, maximum=spec.maximum)


def _query(period: service.Period, team_id: UUID | None) -> dict[str, Any]:
    query: dict[str, Any] = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    if team_id is not None:
        query["team"] = str(team_id)
    return query


def _show(table: service.Table, query: dict[str, Any], links: bool) -> ShownTable:
    return ShownTable(
        table=table, cells=[[_shown(v) for v in row] for row in table.rows],
        links=[url_for("transitions.show", transition_id=t) if links and t else None
               for t in table.transition_ids],
        chart=_chart(table), csv_url=url_for("reports.table_csv", table=table.name, **query))


# ---- views --------------------------------------------------------------------------------------------------


@bp.get("/reports")
@staff(*REPORT_ROLES)
def index() -> str:
    user = _user()
    form = PeriodForm(formdata=request.args if ("from_date" in request.args or "to_date" in request.args)
                      else None)
    _team_choices(form, user)
    period, team_id = _read_choice(form, request.args)
    if period is None:
        return render_template("reports/index.html", form=form, report=None, tables=[], period=None)
    found = service.report(deps(), user, actor(), period, team_id)
    form.team.data = str(found.scope.team_id) if found.scope.team_id else ""
    query = _query(period, found.scope.team_id)
    links = user.role in MANAGERS
    return render_template("reports/index.html", form=form, report=found, period=period,
                           tables=[_show(t, query, links) for t in found.tables], links=links,
                           period_text=f"{day(period.start)} to {day(period.end)}")


@bp.get("/reports/<any(" + ",".join(TABLE_NAMES) + "):table>.csv")
@staff(*REPORT_ROLES)
def table_csv(table: str) -> Response:
    form = PeriodForm(formdata=None)
    period, team_id = _read_choice(form, request.args)
    if period is None:
        abort(400)
    found = service.report(deps(), _user(), actor(), period, team_id, only=table)
    name = f"cla-transitions-{table.replace('_', '-')}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    return Response(csv_text(found.table(table)), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
