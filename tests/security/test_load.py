"""Load (issue 7 item 6): recipients verifying codes while staff edit records, for a bounded time, against a
real gunicorn (-k sync -w 2) over TLS on loopback, with the real SMTP sink. The scenario and what it asserts
are in tests/security/load_scenario.py; bench/b_load.py runs the same scenario longer and prints figures."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import SmtpSink, make_staff
from tests.security.load_scenario import check, load_server, prepare, report, run_load
from transitions.services import accounts
from transitions.services.audit import Actor
from transitions.services.deps import ServiceDeps
from transitions.services.errors import AccountLockedError, InvalidCredentialsError

pytestmark = pytest.mark.security

#: How long staff save and confirmed recipients re-read. Every other flow (12 recipients, 2 abusive links, a
#: locked account, 3 simultaneous saves of one record at least) runs to its end. The whole test is about 12 s
#: of CPU (this process and gunicorn's): 18 s of wall time on 2 shared cores at load average 7.
SECONDS = 6.0


def test_recipients_and_staff_under_load_keep_limits_per_link_and_lose_nothing(
        tmp_path: Path, database_url: str, smtp_server: SmtpSink) -> None:
    with load_server(tmp_path, database_url, smtp_server) as server:
        world = prepare(server, smtp_server)  # while gunicorn's workers boot
        assert len(world.links) >= 12, len(world.links)
        server.wait_ready()
        run = run_load(server, smtp_server, world, seconds=SECONDS)
        problems = check(run)
    print("\n" + report(run))
    assert not problems, "\n".join(problems)


def test_parallel_wrong_passwords_get_exactly_the_allowed_tries(deps: ServiceDeps) -> None:
    """Found by the load test on PostgreSQL: parallel guesses all passed the lock check before the first of them
    set the lock, so 4 tabs got 8 password checks, not 5. The account's throttle row is now locked first."""
    account = make_staff(deps)
    answers: list[str] = []

    def tab() -> None:
        for _ in range(4):
            try:
                accounts.check_password(deps, account.email, "not the password at all", Actor("staff", None))
            except InvalidCredentialsError:
                answers.append("wrong")
            except AccountLockedError:
                answers.append("locked")

    tabs = [threading.Thread(target=tab) for _ in range(4)]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join()
    assert len(answers) == 16
    assert answers.count("wrong") == deps.settings.sign_in.max_failures, answers
