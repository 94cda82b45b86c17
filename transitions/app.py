"""The application factory. Read it as the table of contents of the service."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Flask

from transitions.clock import Clock, SystemClock
from transitions.paths import STATIC_DIR, TEMPLATES_DIR
from transitions.services.deps import ServiceDeps, build_deps
from transitions.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from flask_wtf.csrf import CSRFProtect

    from transitions.services.accounts import StaffView


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, web: bool = True) -> Flask:
    """The whole service; with web=False only settings and services, for CLI commands that serve no page."""
    settings = settings or load_settings()
    app = Flask("transitions", template_folder=str(TEMPLATES_DIR), static_folder=str(STATIC_DIR))
    configure_flask(app, settings)
    deps = register_services(app, settings, clock or SystemClock())
    refuse_demo_accounts_in_production(deps)
    refuse_wrong_keys(deps)
    install_log_redaction()
    if web:
        install_web(app, settings)
        hold_sqlite_lock_under_gunicorn(app, settings)
    return app


def hold_sqlite_lock_under_gunicorn(app: Flask, settings: Settings) -> None:
    """A gunicorn worker serving a SQLite file shares its master's lock, or refuses to boot if another instance
    holds it (R73; the rule is in transitions.instance). `cla-transitions run` takes it in the CLI."""
    import os

    if not os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return
    from transitions.instance import InstanceLockedError, hold_server_lock, serving_instance_id

    try:
        hold_server_lock(settings.database_url, serving_instance_id())
    except InstanceLockedError as exc:
        app.logger.error("refusing to start: %s", exc)
        raise


def install_web(app: Flask, settings: Settings) -> None:
    from flask_wtf.csrf import CSRFProtect

    from transitions.web.errors import register_error_pages
    from transitions.web.requests import InMemoryUploadRequest
    from transitions.web.security import enforce_access_rules, install_security_headers

    app.request_class = InMemoryUploadRequest
    install_templates(app, settings)
    install_sessions(app)
    install_security_headers(app)
    csrf = CSRFProtect(app)
    register_blueprints(app, settings)
    exempt_link_forms_from_session_tokens(csrf)
    enforce_access_rules(app)
    install_rate_limits(app, settings)
    register_error_pages(app)


def configure_flask(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=settings.secrets.secret_key,
        DEBUG=settings.app.debug,
        TESTING=settings.env == "test",
        TRUSTED_HOSTS=list(settings.app.trusted_hosts) or None,
        MAX_CONTENT_LENGTH=settings.app.max_content_length,
        MAX_FORM_PARTS=100,
        PREFERRED_URL_SCHEME="https" if settings.session.cookie_secure else "http",
        SESSION_COOKIE_NAME=settings.session.cookie_name,
        SESSION_COOKIE_SECURE=settings.session.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session.absolute_hours),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session, which expires itself
        WTF_CSRF_SSL_STRICT=True,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
    )
    if settings.app.proxy_count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.app.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0)  # type: ignore[method-assign]


def register_services(app: Flask, settings: Settings, clock: Clock) -> ServiceDeps:
    deps = build_deps(settings, clock)
    app.extensions["transitions"] = deps
    return deps


def refuse_demo_accounts_in_production(deps: ServiceDeps) -> None:
    from transitions.services import demo

    if deps.settings.env == "production" and demo.demo_accounts_exist(deps):
        deps.db.dispose()
        raise SettingsError("Refusing to start: the database holds demo accounts. They are for development only.")


def refuse_wrong_keys(deps: ServiceDeps) -> None:
    """R46, attack #54: a key id configured with other bytes than the database was encrypted with stops the start
    here, not at the first read. A database that cannot be reached yet does not stop it."""
    from transitions.services import key_check

    try:
        key_check.check_at_start(deps)
    except key_check.KeyMismatchError:
        deps.db.dispose()
        raise


def install_log_redaction() -> None:
    from transitions.web.logging import install_log_redaction as install

    install()


def install_templates(app: Flask, settings: Settings) -> None:
    from flask import Blueprint, g, has_request_context, request
    from govuk_frontend_wtf.main import WTFormsHelpers
    from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader

    from transitions.web.templating import GovukUndefined, ImportCachingTemplate, register_text_filters
    from transitions.web.timefmt import register_time_filters

    app.jinja_loader = ChoiceLoader([
        FileSystemLoader(str(TEMPLATES_DIR)),
        PrefixLoader({
            "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
            "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
        }),
    ])
    app.jinja_env.undefined = GovukUndefined
    app.jinja_env.template_class = ImportCachingTemplate
    register_time_filters(app)
    register_text_filters(app)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    WTFormsHelpers(app)
    govuk_assets = Blueprint("govuk_assets", __name__, static_folder=str(STATIC_DIR / "govuk" / "assets"),
                             static_url_path="/assets")
    app.register_blueprint(govuk_assets)

    @app.context_processor
    def page_context() -> dict[str, object]:
        """Runs for every template a request renders, and the GOV.UK WTForms widgets render one per field: the
        navigation (a url_for per item) is built once per request and person, not once per field."""
        user = g.get("staff")
        req = request._get_current_object() if has_request_context() else None  # type: ignore[attr-defined]
        built = g.get("_page_context")
        if req is not None and built is not None and built[0] is req and built[1] is user:
            return built[2]  # type: ignore[no-any-return]
        context = {"council_name": settings.app.council_name, "service_name": settings.app.service_name,
                   "current_staff": user, "nav_items": navigation(user), "is_development": settings.is_development}
        g._page_context = (req, user, context)
        return context


def navigation(user: StaffView | None) -> list[dict[str, object]]:
    from flask import request, url_for

    if user is None:
        return []
    items = [("home.index", "Home")]
    if not user.is_admin and user.role.value != "auditor":  # auditors see reports and audit, not records
        items.append(("children.index", "Children"))
    if user.role.value in ("social_worker", "cla_nurse", "team_manager", "senior_manager"):
        items.append(("work.my_work", "Your work"))
    if user.role.value in ("team_manager", "senior_manager", "auditor"):
        items.append(("transitions.crisis", "Crisis flags"))
        items.append(("children.break_glass_log", "Break-glass access"))
        items.append(("audit.index", "Audit"))
        items.append(("reports.index", "Reports"))
    if user.is_admin:
        items += [("admin.users", "Users"), ("admin.teams", "Teams"), ("organisations.index", "Organisations"),
                  ("audit.integrity", "Audit trail check")]
    items.append(("auth.account", "Your account"))
    return [{"href": url_for(ep), "text": text, "active": request.endpoint == ep} for ep, text in items]


def install_sessions(app: Flask) -> None:
    from flask import g

    from transitions.web.sessions import ServerSessionInterface

    app.session_interface = ServerSessionInterface()

    @app.before_request
    def load_signed_in_staff() -> None:
        from transitions.web.context import deps, server_session

        srv = server_session()
        g.staff = None
        if srv.user_id is not None:
            g.staff = srv.signed_in_staff(deps())  # read with the session, in its SELECT
            if g.staff is None:  # disabled since the session began
                srv.end()


def register_blueprints(app: Flask, settings: Settings) -> None:
    from transitions.web import admin, auth, children, home, organisations, recipient, transitions_views, work

    app.register_blueprint(home.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(organisations.bp)
    app.register_blueprint(children.bp)
    app.register_blueprint(transitions_views.bp)
    app.register_blueprint(recipient.bp)
    from transitions.web import missing

    app.register_blueprint(missing.bp)
    from transitions.web import audit_views

    app.register_blueprint(audit_views.bp)
    from transitions.web import reports

    app.register_blueprint(reports.bp)
    app.register_blueprint(work.bp)
    if settings.is_development:
        from transitions.web import dev

        app.register_blueprint(dev.bp)


def exempt_link_forms_from_session_tokens(csrf: CSRFProtect) -> None:
    """A recipient link's two forms are checked by Origin, so that fetching a link stores no session."""
    from transitions.web.recipient import ORIGIN_CHECKED_VIEWS

    for view in ORIGIN_CHECKED_VIEWS:
        csrf.exempt(view)


def install_rate_limits(app: Flask, settings: Settings) -> None:
    """A coarse per-IP limit on forms that check secrets. Per-account limits live in the database."""
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    limiter = Limiter(get_remote_address, app=app, storage_uri=settings.redis_url or "memory://",
                      strategy="moving-window")
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "ip_rate_limited", False):
            limited = limiter.limit(settings.sign_in.ip_limit, methods=["POST"])(view)
            limited = limiter.limit(settings.sign_in.page_limit, methods=["GET", "HEAD"])(limited)
            app.view_functions[endpoint] = limited  # type: ignore[assignment]
    app.extensions["transitions_limiter"] = limiter
