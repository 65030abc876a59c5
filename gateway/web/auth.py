"""Logging in and out, the current user, role checks, and slowing down password guessing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..store import Store

bp = Blueprint("auth", __name__)


def password_version(row: sqlite3.Row) -> str:
    """Changes when the password does: a session from before a password change ends."""
    return row["password_hash"][-12:]


def load_user(store: Store, uid: Any, pwv: Any) -> sqlite3.Row | None:
    """The logged-in user of this session, or None (unknown, disabled, or password changed)."""
    if not isinstance(uid, int):
        return None
    row = store.users.get(uid)
    if row is None or row["disabled"] or pwv != password_version(row):
        return None
    return row


def admin_required(view: Callable) -> Callable:
    """Only admins; agents get 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if g.user is None or g.user["role"] != "admin":
            abort(403)
        return view(*args, **kwargs)

    return wrapper


class LoginThrottle:
    """Counts failed logins per user name and per client address. After a few failures each
    further attempt must wait, doubling up to 15 minutes; a success clears the name's count."""

    FREE = 4
    MAX_DELAY = 15 * 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._fails: dict[str, tuple[int, float]] = {}  # key -> (count, time of last)

    def wait_for(self, *keys: str) -> float:
        """Seconds before another attempt for these keys is allowed (0: go ahead)."""
        now = self.clock()
        with self._lock:
            waits = []
            for key in keys:
                count, last = self._fails.get(key, (0, 0.0))
                if count >= self.FREE:
                    delay = min(2.0 ** (count - self.FREE), self.MAX_DELAY)
                    waits.append(last + delay - now)
            return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                count, _ = self._fails.get(key, (0, 0.0))
                self._fails[key] = (count + 1, now)
            if len(self._fails) > 10_000:  # bound memory against a spray of names
                oldest = sorted(self._fails.items(), key=lambda kv: kv[1][1])[:5_000]
                for key, _ in oldest:
                    del self._fails[key]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._fails.pop(key, None)


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    ctx = current_app.extensions["gateway"]
    throttle: LoginThrottle = current_app.extensions["gateway.throttle"]
    error = None
    status = 200
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        keys = (f"user:{username.lower()}", f"ip:{request.remote_addr}")
        wait = throttle.wait_for(*keys)
        if wait > 0:
            error = f"Too many failed logins. Try again in {int(wait) + 1} seconds."
            status = 429
        elif not username or not password:
            error = "Enter your user name and password."
            status = 400
        else:
            user = ctx.store.users.authenticate(username, password)
            if user is None:
                throttle.failed(*keys)
                ctx.store.audit.add("login.failed", actor=username, ip=request.remote_addr)
                error = "Wrong user name or password."
                status = 401
            else:
                throttle.succeeded(keys[0])
                session.clear()
                session.permanent = True
                session["uid"] = user["id"]
                session["pwv"] = password_version(user)
                ctx.store.audit.add("login", actor=username, ip=request.remote_addr)
                return redirect(_safe_next(request.args.get("next")))
    elif g.get("user") is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=username), status


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
