"""Fixtures for integration tests: the demo world (teams, accounts, organisations, children) and a helper to
start a transition."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.conftest import Browser, StaffAccount, sign_in
from transitions.models import Child, Organisation
from transitions.services import accounts, demo, demo_children
from transitions.services import transitions as service
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor


@dataclass
class Demo:
    children: dict[str, uuid.UUID]
    orgs: dict[str, uuid.UUID]
    accounts: dict[str, StaffAccount]

    def view(self, deps, who: str) -> StaffView:
        return accounts.get_user(deps, self.accounts[who].id)

    def actor(self, who: str) -> Actor:
        return Actor("staff", str(self.accounts[who].id))


@pytest.fixture
def browser(app, clock):
    """A separate signed-in browser per account, so one test can compare what several people see."""

    def open_as(account: StaffAccount) -> Browser:
        app.test_client_class = Browser
        client = app.test_client()
        sign_in(client, account, clock)
        return client  # type: ignore[return-value]

    return open_as


@pytest.fixture
def world(deps) -> Demo:
    return load_world(deps)


def load_world(deps) -> Demo:
    demo.load_demo(deps)
    demo_children.load_demo_children(deps)
    with deps.db.transaction() as session:
        kids = {c.preferred_name or "": c.id for c in session.scalars(select(Child))}
        orgs = {o.code or o.name: o.id for o in session.scalars(select(Organisation))}
        people = {}
        for account in demo.DEMO_ACCOUNTS:
            user = accounts.find_by_email(deps, session, account.email)
            assert user is not None
            people[account.role.value + ("_south" if "south" in account.email else "")] = StaffAccount(
                user.id, account.email, account.password, account.totp_secret)
    return Demo(kids, orgs, people)


def start(deps, world: Demo, who: str, child: str, kind: str, destination: str, *, when: datetime,
          urgency: str = "planned", distance: str = "", reason: str = "", emergency_reason: str = "") -> uuid.UUID:
    data = service.TransitionInput(kind=kind, destination_id=world.orgs[destination], origin_id=None, starts_at=when,
                                   urgency=urgency, reason_code=reason, at_a_distance=distance,
                                   emergency_reason=emergency_reason, distance_miles="")
    return service.create_transition(deps, world.children[child], data, world.view(deps, who), world.actor(who))
