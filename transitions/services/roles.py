"""Roles as the web layer sees them (it may not import models)."""

from __future__ import annotations

from transitions.models import ROLE_LABELS, Role

ROLE_CHOICES: list[tuple[str, str]] = [(role.value, ROLE_LABELS[role]) for role in Role]
ALL_STAFF = frozenset(Role)
MANAGERS = frozenset({Role.TEAM_MANAGER, Role.SENIOR_MANAGER})

__all__ = ["ALL_STAFF", "MANAGERS", "ROLE_CHOICES", "ROLE_LABELS", "Role"]
