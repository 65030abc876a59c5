"""The Flask app factory: configuration, security (sessions, CSRF, login required), blueprints.

Every page and endpoint needs a logged-in user, except the login page and static files.
Roles: ``admin`` (modems, short codes, users, settings) and ``agent`` (profiles, texting, chat).
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import urllib.parse
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from .. import memory
from ..store import StoreError
from ..store.users import SessionPolicy
from .auth import LoginGate, LoginThrottle, current_user
from .context import AppState, Services
from .views.live import SSE_MAX_STREAMS, SSE_PER_USER, StreamSlots

log = logging.getLogger(__name__)

# One module per area, each exposing ``bp``; the order is the order of the left pane.
# Streamed CSV exports: once one has ended, the allocator's free memory is returned.
EXPORT_ENDPOINTS = frozenset({"messages.export", "profiles.export_csv"})

BLUEPRINTS = [
    "gateway.web.auth",
    "gateway.web.views.home",
    "gateway.web.views.profiles",
    "gateway.web.views.inbox",
    "gateway.web.views.agent",
    "gateway.web.views.messages",
    "gateway.web.views.broadcasts",
    "gateway.web.views.modems",
    "gateway.web.views.settings",
    "gateway.web.views.keywords",
    "gateway.web.views.phones",
    "gateway.web.views.api",
    "gateway.web.views.live",
    "gateway.web.views.api_tokens",
    "gateway.web.api.routes",  # the REST API under /api/v1 (token authentication, no CSRF)
    "gateway.web.views.metrics",
    "gateway.web.views.webhooks",
]
API_BLUEPRINT = "api_v1"

# /metrics decides itself (views/metrics.py: an API token, or loopback when configured).
PUBLIC_ENDPOINTS = {"auth.login", "static", "metrics.metrics"}
# Requests a page makes by itself (the live-update stream reconnects every minute): they do not
# count as use of the session, so an open tab alone does not keep it from idling out.
UNATTENDED_ENDPOINTS = {"live.events"}


class SecretKeyError(RuntimeError):
    """The session signing key cannot be read or created."""


def _secret_key(path: Path) -> str:
    try:
        if path.exists():
            key = path.read_text(encoding="ascii").strip()
            if len(key) >= 32:
                return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
        return key
    except OSError as exc:
        raise SecretKeyError(f"web.secret_key_file: cannot use {path}: {exc}") from exc


def create_app(services: Services, **overrides: object) -> Flask:
    """The web app for a gateway's services (``overrides`` go into ``app.config``, for tests).
    The services and the app's guards are kept once, as its :class:`AppState`."""
    app = Flask(__name__)
    web = services.config.web
    key_file = web.secret_key_file or services.config.data_dir / "secret_key"
    app.config.update(
        SECRET_KEY=_secret_key(Path(key_file)),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.https,
        SESSION_COOKIE_NAME="gateway_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web.session_hours),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session, which expires on its own
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,  # CSV imports
        # A session lasts web.session_hours from login; an open tab's event stream, which
        # reconnects every minute, must not keep it alive for ever.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.config.update(overrides)
    idle = web.session_idle_minutes
    state = AppState(
        services=services,
        throttle=LoginThrottle(),
        gate=LoginGate(
            size=int(app.config.get("GATEWAY_LOGIN_CHECKS", 1)),
            wait=float(app.config.get("GATEWAY_LOGIN_WAIT", 0.5)),
        ),
        policy=SessionPolicy(
            absolute=timedelta(hours=web.session_hours),
            idle=timedelta(minutes=idle) if idle else None,
        ),
        stream_slots=StreamSlots(
            int(app.config.get("GATEWAY_SSE_MAX_STREAMS", SSE_MAX_STREAMS)),
            int(app.config.get("GATEWAY_SSE_PER_USER", SSE_PER_USER)),
        ),
    )
    state.install(app)

    # Before CSRFProtect's own check, which parses the form.
    @app.before_request
    def refuse_forms_that_are_not_utf8():
        # Werkzeug keeps a value whose bytes are not UTF-8 as its percent escapes, so the form
        # would carry other text than was typed; read the body first (it stays cached for the
        # form parser) and refuse it instead.
        if request.mimetype != "application/x-www-form-urlencoded":
            return None
        try:
            pairs = request.get_data(cache=True).decode("ascii").split("&")
            for pair in pairs:
                urllib.parse.unquote_to_bytes(pair.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            message = "The form's text is not valid UTF-8; send it again from the page."
            if _is_rest_api():
                from .api.errors import error_response

                return error_response(400, "The body is not valid UTF-8; send JSON in UTF-8.")
            if _wants_json():
                return jsonify(error=message), 400
            return render_template("error.html", code=400, message=message), 400
        return None

    csrf = CSRFProtect(app)

    for name in BLUEPRINTS:
        blueprint = importlib.import_module(name).bp
        app.register_blueprint(blueprint)
        if blueprint.name == API_BLUEPRINT:
            # Bearer tokens only (no cookie is read there), so no request can be forged.
            csrf.exempt(blueprint)

    @app.before_request
    def require_login():
        if request.blueprint == API_BLUEPRINT:
            g.user = None  # the API authenticates its token itself (web/api/base.py)
            return None
        g.user = current_user(
            services.store,
            state.policy,
            touch=request.endpoint not in UNATTENDED_ENDPOINTS,
        )
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if g.user is None:
            session.clear()
            if _wants_json():
                return jsonify(error="log in first"), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return None

    @app.teardown_request
    def give_back_the_store_connection(exc: BaseException | None) -> None:
        # Runs before a streamed response is sent (a live stream never touches the store
        # again), after a stream_with_context one (an export) has ended.
        services.store.release_connection()
        if request.endpoint in EXPORT_ENDPOINTS:
            memory.give_back()  # what the export's batches took goes back to the system
        else:
            memory.after_work()  # and what the pages took, a few seconds later

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if web.https:
            # The browser keeps to HTTPS for this host from now on, even when told http://.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # No request to any outside host, and no inline script: what handsets send stays text.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        )
        return response

    @app.context_processor
    def layout():
        user = g.get("user")
        return {"services": services, "user": user, "nav": _nav(user, services)}

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = "The form expired or did not come from this site; reload the page and try again."
        if _wants_json():
            return jsonify(error=message), 400
        return render_template("error.html", code=400, message=message), 400

    for code, message in (
        (403, "Only an administrator can do that."),
        (404, "There is nothing at this address."),
        (405, "That does not work at this address."),
        (413, "The upload is too large (8 MB at most)."),
    ):
        app.register_error_handler(code, _error_page(code, message))

    @app.errorhandler(StoreError)
    def store_fault(exc: StoreError):
        # Full, read-only or damaged store: the message names the file and what to do.
        log.error("request %s %s: %s", request.method, request.path, exc)
        message = f"The gateway cannot use its store right now: {exc}"
        if _wants_json():
            return jsonify(error=message), 503
        return render_template("error.html", code=503, message=message), 503

    @app.errorhandler(500)
    def server_error(exc):
        log.exception("request %s %s failed", request.method, request.path)
        if _is_rest_api():
            from .api.errors import error_response

            return error_response(500, "Something went wrong on the gateway; it has been logged.")
        return _error_page(500, "Something went wrong on the gateway; it has been logged.")(exc)

    return app


def _error_page(code: int, message: str):
    def handler(exc):
        if _is_rest_api():  # an unknown address or method under /api/v1
            from .api.base import http_error

            return http_error(exc)
        text = getattr(exc, "description", None) if code in (400, 403, 404) else None
        shown = (
            text
            if text and not str(text).startswith(("The requested URL", "You don't"))
            else message
        )
        if _wants_json():
            return jsonify(error=shown), code
        return render_template("error.html", code=code, message=shown), code

    return handler


def _is_rest_api() -> bool:
    return request.path == "/api/v1" or request.path.startswith("/api/v1/")


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _nav(user, services: Services) -> list[tuple[str, str, str]]:
    """(endpoint, label, path prefix) of the left pane for this user."""
    items = [
        ("home.index", "Home", "/home"),
        ("profiles.index", "Profiles", "/profiles"),
        ("inbox.index", "Inbox", "/inbox"),
        ("agent.index", "Agent View", "/agent"),
        ("messages.index", "Messages", "/messages"),
        ("broadcasts.index", "Broadcasts", "/broadcasts"),
        ("broadcasts.segments", "Segments", "/segments"),
        ("modems.index", "Modems", "/modems"),
        ("api_tokens.index", "API", "/api-tokens"),
    ]
    if user is not None and user["role"] == "admin":
        items.append(("settings.index", "Settings", "/settings"))
    if services.simulator is not None:
        items.append(("phones.index", "Phones", "/phones"))
    return items
