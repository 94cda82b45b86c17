"""PDF uploads: checked in a resource-limited child process, and stored exactly as uploaded (security.md R59).

``check_pdf`` refuses empty and oversized files, and files that do not begin with ``%PDF-`` (anything before
it could make an HTML/PDF polyglot). It then runs ``python -m transitions.uploads._pdf_worker`` with the
bytes on stdin. The worker parses them with pikepdf and refuses encrypted, damaged, page-less and
active-content PDFs. The child gets:

* a wall-clock timeout (``subprocess.run(timeout=...)``, after which the child is killed);
* ``RLIMIT_CPU`` (a backstop if the wall-clock timeout is somehow missed), ``RLIMIT_AS`` (memory),
  ``RLIMIT_FSIZE=0`` (no file writes) and ``RLIMIT_CORE=0``, all set in ``preexec_fn``;
* a minimal environment. The web process's environment holds secrets (database URL, keys), and a parser
  exploit must not be able to read them. Inherited file descriptors are closed (``close_fds``).

``preexec_fn`` runs Python code between ``fork`` and ``exec``. The subprocess docs warn that it is not safe in
a multi-threaded process. It calls only ``resource.setrlimit``, which is fine under gunicorn's sync workers. If
the app ever runs threaded workers, move the limits into the worker itself, before it reads stdin.

The worker's verdict is trusted for the original bytes, and ``CheckedPdf.data`` is those bytes unchanged. A
viewer whose parser differs from qpdf could in theory see objects that qpdf did not. Storing
a pikepdf re-save (content disarm) would close that gap, at the cost of changing the document.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .errors import (
    MSG_EMPTY,
    MSG_NOT_PDF,
    MSG_PDF_ACTIVE,
    MSG_PDF_DAMAGED,
    MSG_PDF_PASSWORD,
    MSG_PDF_TIMEOUT,
    UploadRejectedError,
    too_big_message,
)

PDF_MAGIC: Final = b"%PDF-"
# Python and pikepdf need about 40 MiB of address space just to start. Below this limit the child fails during
# start-up, in ways that look like a bad file (CPython can even spin until killed), so such a limit is refused.
MIN_MEMORY_LIMIT_BYTES: Final = 128 * 1024 * 1024
WORKER_MODULE: Final = "transitions.uploads._pdf_worker"
# The directory holding the ``transitions`` package. The child runs there so that ``-m`` finds the package
# even when it is not installed (a source checkout).
_IMPORT_ROOT: Final = str(Path(__file__).resolve().parents[2])
# Only these variables reach the child. They carry no secrets, but Python may need them to start.
_ENV_ALLOWLIST: Final = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LD_LIBRARY_PATH", "PYTHONHOME", "PYTHONPATH")

_REASON_MESSAGES: Final = {
    "encrypted": MSG_PDF_PASSWORD,
    "damaged": MSG_PDF_DAMAGED,
    "no_pages": MSG_PDF_DAMAGED,
    "active_content": MSG_PDF_ACTIVE,
    "limits": MSG_PDF_TIMEOUT,
}


@dataclass(frozen=True)
class CheckedPdf:
    """A PDF that passed the checks. ``data`` is the uploaded bytes, unchanged."""

    page_count: int
    sha256: str
    data: bytes


def check_pdf(
    data: bytes,
    *,
    max_bytes: int = 20 * 1024 * 1024,
    timeout_seconds: float = 10.0,
    memory_limit_bytes: int = 512 * 1024 * 1024,
) -> CheckedPdf:
    """Check an uploaded PDF in a sandboxed child process, or raise ``UploadRejectedError``.

    Raises ``RuntimeError`` only if the worker cannot run at all (a deployment fault, not the user's file),
    and ``ValueError`` for a limit that could never work.
    """
    if timeout_seconds <= 0:
        raise ValueError("timeout_seconds must be positive")
    if memory_limit_bytes < MIN_MEMORY_LIMIT_BYTES:
        raise ValueError(f"memory_limit_bytes must be at least {MIN_MEMORY_LIMIT_BYTES}")
    if not data:
        raise UploadRejectedError(MSG_EMPTY)
    if len(data) > max_bytes:
        raise UploadRejectedError(too_big_message(max_bytes))
    if not data.startswith(PDF_MAGIC):
        # Readers tolerate junk before %PDF-, but a file that starts as HTML and ends as a PDF is a polyglot:
        # opened from the downloads folder it is a web page. Only a file that begins as a PDF is one.
        raise UploadRejectedError(MSG_NOT_PDF)

    pages = _run_worker(data, timeout_seconds=timeout_seconds, memory_limit_bytes=memory_limit_bytes)
    return CheckedPdf(page_count=pages, sha256=hashlib.sha256(data).hexdigest(), data=data)


def _run_worker(data: bytes, *, timeout_seconds: float, memory_limit_bytes: int) -> int:
    env = {name: os.environ[name] for name in _ENV_ALLOWLIST if name in os.environ}
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv: this interpreter and our own module; no shell
            [sys.executable, "-B", "-s", "-m", WORKER_MODULE],
            input=data,
            capture_output=True,
            timeout=timeout_seconds,
            check=False,
            env=env,
            cwd=_IMPORT_ROOT,
            close_fds=True,
            preexec_fn=_resource_limits(timeout_seconds, memory_limit_bytes),  # thread-safety: see module doc
        )
    except subprocess.TimeoutExpired as exc:  # run() has already killed and reaped the child
        raise UploadRejectedError(MSG_PDF_TIMEOUT) from exc

    if proc.returncode < 0:  # killed by a signal while parsing this file
        if -proc.returncode in (signal.SIGXCPU, signal.SIGKILL):
            raise UploadRejectedError(MSG_PDF_TIMEOUT)
        raise UploadRejectedError(MSG_PDF_DAMAGED)  # e.g. SIGSEGV or SIGABRT inside qpdf

    report = _parse_report(proc.stdout)
    if proc.returncode != 0 or report is None:
        # stderr is deliberately not included: it may quote text from the uploaded file (R70).
        raise RuntimeError(f"PDF check worker failed to run (exit status {proc.returncode})")
    reason, pages = report
    if reason == "ok" and pages >= 1:
        return pages
    message = _REASON_MESSAGES.get(reason)
    if message is None:
        raise RuntimeError(f"PDF check worker gave an unknown verdict: {reason!r}")
    raise UploadRejectedError(message)


def _parse_report(stdout: bytes) -> tuple[str, int] | None:
    """The worker's verdict from its last output line, or None if the output is malformed."""
    lines = stdout.strip().splitlines()
    if not lines:
        return None
    try:
        report = json.loads(lines[-1])
    except ValueError:
        return None
    if not isinstance(report, dict):
        return None
    reason, pages, ok = report.get("reason"), report.get("pages"), report.get("ok")
    if not isinstance(reason, str) or not isinstance(pages, int) or isinstance(pages, bool):
        return None
    if ok is not (reason == "ok"):
        return None
    return reason, pages


def _resource_limits(timeout_seconds: float, memory_limit_bytes: int) -> Callable[[], None]:
    cpu_soft = max(1, math.ceil(timeout_seconds)) + 1  # includes interpreter start-up and imports

    def apply() -> None:  # runs in the child between fork and exec
        _set_limit(resource.RLIMIT_AS, memory_limit_bytes)
        _set_limit(resource.RLIMIT_CPU, cpu_soft, hard=cpu_soft + 1)
        _set_limit(resource.RLIMIT_FSIZE, 0)
        _set_limit(resource.RLIMIT_CORE, 0)

    return apply


def _set_limit(which: int, soft: int, *, hard: int | None = None) -> None:
    """Lower a limit; never try to raise one above the current hard limit (that would fail the exec)."""
    _, current_hard = resource.getrlimit(which)
    wanted_hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        wanted_hard = min(wanted_hard, current_hard)
        soft = min(soft, wanted_hard)
    resource.setrlimit(which, (soft, wanted_hard))
