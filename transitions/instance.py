"""SQLite is single-instance (R73, attack #46): the processes that serve one SQLite file hold a lock beside it.

The rule: ``<database file>.lock`` is locked (``flock``) by every *serving* process for its whole life: the
``cla-transitions run`` process and each gunicorn worker. The first takes it exclusively just long enough to
write its instance id (the ``run`` process's pid, or the gunicorn master's pid for its workers), then shares
it; a serving process with the same instance id shares it too, so ``gunicorn -w 2`` is one instance. A serving
process of another instance finds the lock held under another id and refuses to start. ``tick`` (cron or a
timer) is part of the same instance and takes no server lock, but two ticks never overlap: each holds
``<database file>.tick.lock`` exclusively while it runs. One-shot commands (``db upgrade``, ``audit-verify``…)
and in-process test apps take neither. PostgreSQL needs none of this (several hosts may serve it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("transitions.instance")

#: How long a starting process waits for another process of its own instance to finish writing the lock.
_START_WAIT_SECONDS = 3.0


class InstanceLockedError(Exception):
    """Another instance serves (or another tick runs on) this SQLite database."""


def sqlite_file(database_url: str) -> Path | None:
    """The database file of a SQLite URL; None for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def serving_instance_id() -> str:
    """Who this serving process belongs to: a gunicorn worker belongs to its master, anything else to itself.

    The id is the owner's pid with its pid namespace and start time: two containers each with a gunicorn master
    as pid 1, or a recycled pid, do not look like one instance. gunicorn sets SERVER_SOFTWARE in its master too
    (`--preload` builds the app there), so a process counts as a worker only when its parent is gunicorn."""
    owner = os.getpid()
    if os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/") and _is_gunicorn(os.getppid()):
        owner = os.getppid()
    return f"{_pid_namespace()}:{owner}:{_started(owner)}"


def _is_gunicorn(pid: int) -> bool:
    try:
        return b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    return stat.rsplit(")", 1)[-1].split()[19]


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def hold_server_lock(database_url: str, instance_id: str) -> int | None:
    """Take the serving lock for this instance; the descriptor must stay open while the process serves.

    Returns None for a database that is not a SQLite file. Raises InstanceLockedError if another instance
    holds it."""
    db_file = sqlite_file(database_url)
    if db_file is None:
        return None
    path = db_file.with_name(db_file.name + ".lock")
    fd = _open(path)
    deadline = time.monotonic() + _START_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:  # first of its instance: say who holds it, then let the rest of the instance share it
            os.ftruncate(fd, 0)
            os.pwrite(fd, instance_id.encode("ascii"), 0)
            fcntl.flock(fd, fcntl.LOCK_SH)
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # a process is writing its id right now
            if time.monotonic() > deadline:
                os.close(fd)
                raise InstanceLockedError(f"{path} is locked by a process that is starting") from None
            time.sleep(0.05)
            continue
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if holder == instance_id:
            return fd
        os.close(fd)
        raise InstanceLockedError(f"another instance (process {holder or 'unknown'}) serves this SQLite database "
                                  f"and holds {path}; SQLite is single instance: stop it or use PostgreSQL")


def hold_tick_lock(database_url: str) -> int | None:
    """Take the tick lock for the length of one tick (close the descriptor after). None for non-SQLite."""
    db_file = sqlite_file(database_url)
    if db_file is None:
        return None
    path = db_file.with_name(db_file.name + ".tick.lock")
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InstanceLockedError(f"another tick is running on this SQLite database ({path} is locked)") from None
    return fd
