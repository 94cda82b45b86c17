"""R73 / attack #46: SQLite is single instance. The processes serving one SQLite file share a lock beside it under
one instance id (``gunicorn -w 2`` is one instance); a server of another instance refuses to start with a clear
message and exit code 1; ``tick`` runs beside the server that shares its file, but never beside another tick."""

from __future__ import annotations

import os

import flask.cli
import pytest
from click.testing import CliRunner

from tests.conftest import _free_port, test_environ
from transitions.cli import main
from transitions.instance import InstanceLockedError, hold_server_lock, hold_tick_lock

pytestmark = [pytest.mark.security,
              pytest.mark.skipif(bool(os.environ.get("TRANSITIONS_TEST_POSTGRES_URL")),
                                 reason="SQLite mode only: the PostgreSQL run has nothing more to show")]


def test_one_instance_shares_the_lock_another_is_refused_and_ticks_never_overlap(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'transitions.db'}"
    first = hold_server_lock(url, "4100")
    second = hold_server_lock(url, "4100")  # a second worker of the same gunicorn master
    assert first is not None and second is not None
    with pytest.raises(InstanceLockedError, match=r"another instance .*4100.* single instance"):
        hold_server_lock(url, "4200")
    tick = hold_tick_lock(url)  # cron's tick beside the server it belongs to
    assert tick is not None
    with pytest.raises(InstanceLockedError, match="another tick is running"):
        hold_tick_lock(url)
    for fd in (first, second, tick):
        os.close(fd)
    later = hold_server_lock(url, "4200")  # once the first instance has stopped, another may start
    assert later is not None
    os.close(later)
    assert hold_server_lock("postgresql+psycopg://u@h/db", "1") is None  # PostgreSQL: several hosts may serve


def test_run_refuses_to_start_beside_another_instance(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'transitions.db'}"
    for name, value in test_environ(url, tmp_path / "instance").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)

    def serve(*args: object, **kwargs: object) -> None:
        raise AssertionError("the second instance started serving")

    monkeypatch.setattr(flask.cli, "run_simple", serve)  # a broken lock fails the test instead of serving forever
    held = hold_server_lock(url, "1")  # pid 1 is never this process's own id
    assert held is not None
    try:
        result = CliRunner().invoke(main, ["run", "--no-reload", "--port", str(_free_port())])
    finally:
        os.close(held)
    assert result.exit_code == 1, result.output
    assert "cannot start: another instance (process 1) serves this SQLite database" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_instance_id_names_the_owning_process_its_start_and_its_pid_namespace(monkeypatch) -> None:
    """A pid alone is not an instance: two containers' gunicorn masters are both pid 1. And gunicorn sets
    SERVER_SOFTWARE in its master too (--preload builds the app there), whose parent is not gunicorn."""
    import os

    from transitions.instance import serving_instance_id

    namespace, owner, started = serving_instance_id().split(":")
    assert owner == str(os.getpid()) and started.isdigit()
    assert namespace == str(os.stat("/proc/self/ns/pid").st_ino)
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")  # this test's parent is pytest, not gunicorn
    assert serving_instance_id().split(":")[1] == str(os.getpid())
