"""Browser tests: a real gunicorn process, real headless Debian Chromium, axe-core on every page.

The server runs with the production session rules (a Secure ``__Host-`` cookie, an https public_base_url):
settings.check_safe refuses an ``http://`` public_base_url outside development, so gunicorn serves TLS on
loopback with a throwaway self-signed certificate made for 127.0.0.1, and the browser context ignores the
certificate's issuer. (Chromium would also keep a Secure ``__Host-`` cookie from http://127.0.0.1.)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import SmtpSink, test_environ

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("TRANSITIONS_CHROMIUM", "/usr/bin/chromium"))
AXE_JS = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
GOVUK_CSS = REPO_ROOT / "static" / "govuk" / "la.css"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 # the test server's certificate is self-signed: pages pass with ignore_https_errors, but
                 # Chromium cancels a download from an origin with a certificate error without this
                 "--ignore-certificate-errors"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BROWSER_REQUIRED = os.environ.get("TRANSITIONS_REQUIRE_BROWSER") == "1"
NO_BROWSER_REASON = (f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests "
                     "(set TRANSITIONS_REQUIRE_BROWSER=1 to make this a failure)")

#: Use as `pytestmark` in browser test modules: skipped without Chromium unless CI requires the browser.
skip_without_browser = pytest.mark.skipif(not CHROMIUM.exists() and not BROWSER_REQUIRED, reason=NO_BROWSER_REASON)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A one-day certificate for IP 127.0.0.1 (cryptography is a runtime dependency of the app)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class LiveServer:
    base_url: str
    env: dict[str, str]
    stderr_path: Path
    ssl_context: ssl.SSLContext
    process: subprocess.Popen[bytes] | None = None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-6000:] if self.stderr_path.exists() else ""

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `cla-transitions ARGS` with the server's environment; fail with its output if it fails."""
        result = subprocess.run([str(VENV_BIN / "cla-transitions"), *args], env=self.env, cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=timeout, check=False)
        assert result.returncode == 0, (f"cla-transitions {' '.join(args)} exited {result.returncode}\n"
                                        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def assert_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {self.process.returncode}; its stderr:\n{self.stderr()}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
        """One GET without following redirects: (status, headers)."""
        opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=self.ssl_context))
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with opener.open(request, timeout=2) as response:
                response.read()
                return int(response.status), dict(response.headers)
        except urllib.error.HTTPError as exc:
            with exc:
                exc.read()
                return exc.code, dict(exc.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _server_environment(tmp_path: Path, database_url: str, smtp: SmtpSink, port: int) -> dict[str, str]:
    config = tmp_path / "e2e.toml"
    config.write_text(
        "[app]\n"
        f'public_base_url = "https://127.0.0.1:{port}"\n'
        'trusted_hosts = ["127.0.0.1"]\n'
        "[session]\n"
        'cookie_name = "__Host-session"\n'
        "cookie_secure = true\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSITIONS_")}
    env.update(test_environ(database_url, tmp_path / "instance", TRANSITIONS_CONFIG=str(config),
                            TRANSITIONS_SMTP_HOST="127.0.0.1", TRANSITIONS_SMTP_PORT=str(smtp.port)))
    env["PYTHONWARNINGS"] = "ignore"  # the server's own warnings are not this test's business
    return env


@pytest.fixture
def live_server(tmp_path: Path, database_url: str, smtp_server: SmtpSink) -> Iterator[LiveServer]:
    """gunicorn -w 1 on a free loopback port over TLS, against a freshly migrated database."""
    if not GOVUK_CSS.exists():
        pytest.fail(f"{GOVUK_CSS} is missing: run `npm ci && npm run build:assets` first")
    port = _free_port()
    env = _server_environment(tmp_path, database_url, smtp_server, port)
    cert, key = _self_signed_certificate(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    server = LiveServer(f"https://127.0.0.1:{port}", env, tmp_path / "gunicorn.stderr", context)
    server.cli("db", "upgrade")

    with (tmp_path / "gunicorn.stdout").open("wb") as out, server.stderr_path.open("wb") as err:
        server.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "--certfile", str(cert),
             "--keyfile", str(key), "--graceful-timeout", "5", "--access-logfile", "-", "transitions:create_app()"],
            env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 20
        while True:
            server.assert_alive()
            try:
                if server.get("/healthz")[0] == 200:
                    break
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer /healthz within 20 s; its stderr:\n{server.stderr()}")
            time.sleep(0.1)
        yield server
        server.assert_alive()
    finally:
        stop_server(server.process)
    assert_no_credential_in_logs(smtp_server, tmp_path / "gunicorn.stdout", server.stderr_path)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL if it has not gone within 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


#: What an email can carry that is a credential: a recipient's link token or an account set-up token.
EMAILED_TOKEN = re.compile(r"/(?:r|setup)/([A-Za-z0-9_\-]{32,})")


def assert_no_credential_in_logs(smtp: SmtpSink, *logs: Path) -> None:
    """R29, R70 and attack #59: every journey's server logs (gunicorn's access log included) hold none of the link
    and set-up tokens that were emailed during the test; they are redacted in the access log's paths."""
    tokens = {match for message in smtp.messages
              for match in EMAILED_TOKEN.findall(message.get_body(("plain",)).get_content())}  # type: ignore[union-attr]
    text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
    leaked = sorted(token[:6] + "…" for token in tokens if token in text)
    assert not leaked, f"emailed tokens found in the server's logs: {leaked}"


# ---- browser -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (no downloaded browsers, no pytest-playwright fixtures)."""
    if not CHROMIUM.exists():
        if BROWSER_REQUIRED:
            pytest.fail(NO_BROWSER_REASON)
        pytest.skip(NO_BROWSER_REASON)
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm ci`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


#: Collects Content-Security-Policy violations the page reports (an init script is not subject to the CSP).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${where}`);
});
"""


@dataclass
class PageReport:
    url: str
    title: str
    violations: list[dict[str, Any]]
    passes: int
    seconds: float  # since the audit began, to see where a slow run spends its time


@dataclass
class BrowserAudit:
    """Runs axe-core on pages and watches the console; `assert_clean()` reports everything at once."""

    axe_source: str = field(default_factory=lambda: AXE_JS.read_text())
    started: float = field(default_factory=time.monotonic)
    reports: list[PageReport] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    error_documents: set[str] = field(default_factory=set)
    favicon_misses: int = 0
    loaded: list[str] = field(default_factory=list)  # every document the browser loaded, in order
    audited_upto: int = 0
    unaudited: list[str] = field(default_factory=list)

    def watch(self, context: Any) -> None:
        context.add_init_script(CSP_LISTENER)
        context.on("page", self._watch_page)
        for page in context.pages:
            self._watch_page(page)

    def _watch_page(self, page: Any) -> None:
        def on_response(response: Any) -> None:
            if response.request.is_navigation_request() and response.status >= 400:
                self.error_documents.add(response.url)

        def on_console(message: Any) -> None:
            text = message.text
            if "Content Security Policy" in text or "Content-Security-Policy" in text:
                self.csp_violations.append(f"{page.url}: {text}")
            if message.type != "error":
                return
            where = (message.location or {}).get("url", "")
            if text.startswith("Failed to load resource") and where in self.error_documents:
                return  # the document's own 4xx status (an expected error page)
            if text.startswith("Failed to load resource") and urlsplit(where).path == "/favicon.ico":
                # Chromium asks for /favicon.ico by itself; base.html deliberately has no icon (the GOV.UK ones
                # are not for council services) and the app serves none, so it is a 404. Known, not the page's.
                self.favicon_misses += 1
                return
            self.console_errors.append(f"{page.url}: {text} ({where})")

        def on_load(_: Any) -> None:
            self.loaded.append(page.url)

        page.on("response", on_response)
        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"{page.url}: uncaught {error}"))
        page.on("load", on_load)

    def check(self, page: Any) -> PageReport:
        """Audit the page now shown. Call it once after every navigation."""
        page.wait_for_load_state("load")
        try:  # set by template.html's nonce'd inline script; GOV.UK Frontend's JS needs it
            page.wait_for_function("document.body.classList.contains('govuk-frontend-supported')", timeout=5000)
        except PlaywrightTimeoutError:
            pytest.fail(f"GOV.UK Frontend did not start on {page.url} (blocked inline script?)")
        self.unaudited += self.loaded[self.audited_upto:-1]  # loads since the last check, before this one
        self.audited_upto = len(self.loaded)
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(self.axe_source)
        result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
        self.csp_violations += [f"{page.url}: {v}" for v in page.evaluate("window.__cspViolations || []")]
        report = PageReport(page.url, page.title(), result["violations"], len(result["passes"]),
                            time.monotonic() - self.started)
        self.reports.append(report)
        return report

    def summary(self) -> str:
        lines = []
        for r in self.reports:
            lines.append(f"{r.seconds:5.1f}s {len(r.violations)} violations, {r.passes} rules passed: "
                         f"{r.title} <{r.url}>")
            for v in r.violations:
                targets = "; ".join(", ".join(json.dumps(t) for t in node["target"]) for node in v["nodes"])
                lines.append(f"    {v['id']} ({v['impact']}): {v['help']} -> {targets}")
        if self.favicon_misses:
            lines.append(f"(ignored: {self.favicon_misses} console error(s) for /favicon.ico 404)")
        return "\n".join(lines)

    def assert_clean(self) -> None:
        problems = []
        if any(r.violations for r in self.reports):
            problems.append("axe-core violations:\n" + self.summary())
        if self.csp_violations:
            problems.append("CSP violations:\n  " + "\n  ".join(dict.fromkeys(self.csp_violations)))
        if self.console_errors:
            problems.append("console errors:\n  " + "\n  ".join(self.console_errors))
        unaudited = self.unaudited + self.loaded[self.audited_upto:]
        if unaudited:
            problems.append("pages loaded but not audited (call check() after each navigation):\n  "
                            + "\n  ".join(unaudited))
        assert not problems, "\n\n".join(problems)


@pytest.fixture
def browser_audit() -> BrowserAudit:
    return BrowserAudit()
