"""Fixed forms of the audit pages: find a child by local child ID, and the integrity check."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextInput
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from transitions.web.forms import strip


class LocalIdForm(FlaskForm):
    """A POST, so the identifier never lands in a URL, a log or the browser history."""

    local_id = StringField("Local child ID", widget=GovTextInput(), filters=[strip],
                           description="The child's ID in the case management system (LCS, Mosaic or similar), "
                                       "in full.",
                           validators=[DataRequired(message="Enter the local child ID"),
                                       Length(max=64, message="Local child ID must be 64 characters or fewer")])
    submit = SubmitField("Find", widget=GovSubmitInput())


class IntegrityForm(FlaskForm):
    checkpoint = StringField(
        "Checkpoint kept outside the database (optional)", widget=GovTextInput(), filters=[strip],
        description="A checkpoint from an earlier check, like 1234 followed by a colon and 64 letters and digits. "
                    "It shows whether events up to it were removed since.",
        validators=[Length(max=200, message="A checkpoint is 200 characters or fewer")])
    submit = SubmitField("Check the audit trail now", widget=GovSubmitInput())
