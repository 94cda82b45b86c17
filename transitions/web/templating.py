"""Jinja's Undefined for this service: strict for our templates, lenient for GOV.UK macro parameters.

govuk-frontend-jinja's macros read optional keys of their `params` dict (`params.classes`) and rely on
a missing key being falsy. Everything else — an unknown variable, a missing attribute of an object —
raises, so a typo in our templates fails a test instead of rendering an empty string.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from jinja2 import ChainableUndefined, StrictUndefined, Template
from jinja2.environment import TemplateModule
from jinja2.runtime import Context
from jinja2.utils import missing
from markupsafe import Markup

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


class ImportCachingTemplate(Template):
    """A template whose plain `{% from ... import %}` reuses its module without rebuilding a key set per import.

    The GOV.UK macros import their helpers (`govukAttributes`, other components) inside each macro's body, so
    every macro call runs `_get_default_module(context)`. Jinja's version subtracts the template's globals
    (a ChainMap) from the caller's global names on each call, to see whether the caller has globals the cached
    module lacks: about 20 names times 20 imports per page. When every caller global is an environment global
    (the template's ChainMap holds them all), that difference is empty and Jinja returns the cached module; this
    override answers that question with one C-level subset test of the environment's dict and leaves every other
    case to Jinja, so the result is the same module either way.
    """

    def _get_default_module(self, ctx: Context | None = None) -> TemplateModule:
        if ctx is not None and not self.environment.globals.keys() >= ctx.globals_keys:
            return super()._get_default_module(ctx)
        return super()._get_default_module()


def isolate(value: object) -> Markup:
    """Typed text (a name, a placement) shown inline, escaped and wrapped in ``<bdi>``: a right-to-left override
    in it cannot reorder the words around it (attack #36). For text content only, never inside an attribute."""
    return Markup("<bdi>%s</bdi>") % value


def register_text_filters(app: Flask) -> None:
    app.jinja_env.filters["isolate"] = isolate
