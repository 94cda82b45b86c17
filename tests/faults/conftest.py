"""Fault tests (security.md §d #45–#57, R37, R44, R56, R72, R77): a private PostgreSQL cluster to stop and start,
the environment a CLI or server subprocess needs to share a test's database and keys, and form helpers."""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import test_environ
from tests.integration.conftest import Demo, load_world
from tests.integration.test_packs import ready_emergency
from transitions.models import Transition
from transitions.services.deps import ServiceDeps
from transitions.settings import Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
CLI = str(Path(sys.executable).with_name("cla-transitions"))
REPO_ROOT = Path(__file__).resolve().parents[2]


def hidden(html: str, name: str) -> str:
    """The value of a hidden input on a page (a form's base_version)."""
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html)
    assert match, f"no {name} on the page"
    return match.group(1)


def environment_of(settings: Settings, database_url: str, instance: Path, smtp_port: int) -> dict[str, str]:
    """What a `cla-transitions` or gunicorn subprocess needs to work on this test's database with its keys."""
    def key(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSITIONS_")}
    env.update(test_environ(database_url, instance, TRANSITIONS_SMTP_PORT=str(smtp_port)))
    env.update({"TRANSITIONS_SECRET_KEY": settings.secrets.secret_key, "TRANSITIONS_KEYRING": settings.secrets.keyring,
                "TRANSITIONS_BLIND_INDEX_KEY": key(settings.secrets.blind_index_key),
                "TRANSITIONS_AUDIT_KEY": key(settings.secrets.audit_key), "PYTHONWARNINGS": "ignore"})
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                            check=False)
    assert result.returncode == 0, f"cla-transitions {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def world(deps: ServiceDeps) -> Demo:
    """The demo world (tests/integration/conftest.py), for fault tests too."""
    return load_world(deps)


def ready_move(deps: ServiceDeps, world: Demo) -> Transition:
    """Amira's emergency move, ready to send (tests/integration/test_packs.py's, one step short of sent)."""
    transition_id = ready_emergency(deps, world)
    with deps.db.transaction() as session:
        found = session.get(Transition, transition_id)
        assert found is not None
        session.expunge(found)
        return found


@dataclass
class PrivateCluster:
    """A PostgreSQL 15 cluster of this test's own, run by the postgres OS user (initdb refuses root): the shared
    server on 5432 is never stopped."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"),
                        "-w", "-t", "30", *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=30")
        self._pg_ctl("-o", options, "-l", str(self.directory / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "stop")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"{PG_BIN} has no initdb: install postgresql-15")
    # Not under tmp_path: pytest's directories are root's, mode 0700, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    shutil.chown(directory, "postgres")
    cluster = PrivateCluster(directory, _free_port())
    try:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(directory / "data"),
                        "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, timeout=60)
        cluster.start()
        yield cluster
    finally:
        if (directory / "data" / "postmaster.pid").exists():
            cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
