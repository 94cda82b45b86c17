"""CLA Transitions: handover packs and confirmed receipt when a child looked after moves or is admitted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """Build the Flask app (imported lazily so `transitions.crypto` stays free of Flask)."""
    from transitions.app import create_app as factory

    return factory(*args, **kwargs)
