"""Jinja's Undefined for this service: strict for our templates, lenient for GOV.UK macro parameters.

govuk-frontend-jinja's macros read optional keys of their `params` dict (`params.classes`) and rely on
a missing key being falsy. Everything else — an unknown variable, a missing attribute of an object —
raises, so a typo in our templates fails a test instead of rendering an empty string.
"""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined
from jinja2.utils import missing

#: Names the ported macros read without defining them: Nunjucks idioms (`value not in [undefined, null]`)
#: and `caller`, which a macro tests to see whether it was called with a body.
NUNJUCKS_NAMES = frozenset({"undefined", "null", "caller"})


class GovukUndefined(StrictUndefined):
    def __new__(cls, hint: str | None = None, obj: Any = missing, name: str | None = None,
                exc: Any = None) -> Any:
        if isinstance(obj, dict | ChainableUndefined) or (obj is missing and name in NUNJUCKS_NAMES):
            kwargs = {"exc": exc} if exc is not None else {}
            return ChainableUndefined(hint, obj, name, **kwargs)
        return super().__new__(cls)
