"""Forms for follow-through: a note on an escalation, a task or an answer to a recipient's request."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextArea
from wtforms import SubmitField, TextAreaField

from transitions.web.forms import strip


class EscalationForm(FlaskForm):
    note = TextAreaField("What are you doing about it?", widget=GovTextArea(), filters=[strip],
                         description="For example, who you have phoned and what they said. At least 10 characters.")
    acknowledge = SubmitField("Acknowledge", widget=GovSubmitInput())
    resolve = SubmitField("Resolve: no more reminders for this pack", widget=GovSubmitInput())


class TaskForm(FlaskForm):
    note = TextAreaField("What was done?", widget=GovTextArea(), filters=[strip],
                         description="At least 10 characters.")
    submit = SubmitField("Mark as done", widget=GovSubmitInput())


class AnswerForm(FlaskForm):
    note = TextAreaField("How did you answer the request?", widget=GovTextArea(), filters=[strip],
                         description="For example, \"Sent version 2 with the updated health plan\" or who you phoned.")
    submit = SubmitField("Record the answer", widget=GovSubmitInput())
