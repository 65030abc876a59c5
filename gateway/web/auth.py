"""Logging in and out, sessions, the current user, role checks, and slowing down password
guessing (a throttle per name and address, and a bound on password checks at once)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..store import Store
from ..store.users import SessionPolicy
from .context import app_state

bp = Blueprint("auth", __name__)


def current_user(store: Store, policy: SessionPolicy, *, touch: bool = True) -> sqlite3.Row | None:
    """The logged-in user of this request's session, or None (no session, logged out, expired,
    idle too long, password changed, user disabled): the store decides, not the cookie."""
    return store.users.resume_session(session.get("sid"), policy, touch=touch)


def log_in(user: sqlite3.Row) -> None:
    """Start a new session for ``user`` in this browser (a fresh cookie: nothing of an older
    session carries over but the messages waiting to be shown)."""
    state = app_state()
    token = state.services.store.users.start_session(user["id"], state.policy)
    flashes = session.get("_flashes")  # messages for this browser's next page still count
    session.clear()
    session.permanent = True
    session["sid"] = token
    if flashes:
        session["_flashes"] = flashes


def admin_required(view: Callable) -> Callable:
    """Only admins; agents get 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if g.user is None or g.user["role"] != "admin":
            abort(403)
        return view(*args, **kwargs)

    return wrapper


class LoginThrottle:
    """Slows down password guessing. Failed logins are counted per (user name, address), and,
    with a more generous allowance, per address: after the free attempts each further one must
    wait, doubling up to 15 minutes. A success clears its (name, address) count.

    Counting per (name, address) rather than per name means that guesses from one address
    never lock the real user out at another. An attempt is counted *before* its password is
    checked, in the same step that allows it (:meth:`begin`), so a burst of concurrent guesses
    gets exactly the free attempts checked, not one per thread.
    """

    PAIR_FREE = 4
    ADDRESS_FREE = 30
    MAX_DELAY = 15 * 60.0
    MAX_KEYS = 10_000  # bound memory against a spray of names

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._fails: dict[str, tuple[int, float]] = {}  # key -> (count, time of last)

    @staticmethod
    def _keys(username: str, address: str | None) -> tuple[str, str]:
        return f"user:{username.lower()}@{address}", f"ip:{address}"

    def _wait(self, key: str, free: int, now: float) -> float:
        count, last = self._fails.get(key, (0, 0.0))
        if count < free:
            return 0.0
        return last + min(2.0 ** (count - free), self.MAX_DELAY) - now

    def begin(self, username: str, address: str | None) -> float:
        """Seconds before this name may be tried again from this address (> 0: refused, not
        counted), or 0: the attempt is allowed and already counted as a failure, to be taken
        back by :meth:`succeeded` or :meth:`refund`."""
        pair, addr = self._keys(username, address)
        now = self.clock()
        with self._lock:
            wait = max(
                self._wait(pair, self.PAIR_FREE, now), self._wait(addr, self.ADDRESS_FREE, now)
            )
            if wait > 0:
                return wait
            for key in (pair, addr):
                count, _ = self._fails.get(key, (0, 0.0))
                self._fails[key] = (count + 1, now)
            if len(self._fails) > self.MAX_KEYS:
                oldest = sorted(self._fails.items(), key=lambda kv: kv[1][1])
                for key, _ in oldest[: self.MAX_KEYS // 2]:
                    del self._fails[key]
            return 0.0

    def succeeded(self, username: str, address: str | None) -> None:
        """The password was right: the name's count at this address starts again, and the
        address's count forgets this attempt."""
        pair, addr = self._keys(username, address)
        with self._lock:
            self._fails.pop(pair, None)
            self._uncount(addr)

    def refund(self, username: str, address: str | None) -> None:
        """The attempt allowed by :meth:`begin` was not checked after all (the gateway was
        busy): it does not count."""
        pair, addr = self._keys(username, address)
        with self._lock:
            self._uncount(pair)
            self._uncount(addr)

    def _uncount(self, key: str) -> None:
        count, last = self._fails.get(key, (0, 0.0))
        if count <= 1:
            self._fails.pop(key, None)
        else:
            self._fails[key] = (count - 1, last)


class LoginGate:
    """At most ``size`` password checks at once (one by default). Each argon2 check holds its
    memory (7 MiB, gateway/store/users.py) while it runs, so without a bound a burst of logins
    multiplies it by the number of server threads; a login that finds every slot taken for
    ``wait`` seconds is answered 429 with ``Retry-After`` and not counted as a guess. One check
    takes 15 ms on the development machine (a Pi is several times slower), so two people
    logging in together both get in."""

    def __init__(self, size: int = 1, wait: float = 0.5) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self.size = size
        self.wait = wait

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """A context giving True with a slot held, or False when none came free in time."""
        if not self._slots.acquire(timeout=self.wait):
            yield False
            return
        try:
            yield True
        finally:
            self._slots.release()


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    state = app_state()
    ctx, throttle, gate = state.services, state.throttle, state.gate
    error = None
    status = 200
    retry_after: int | None = None
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        address = request.remote_addr
        if not username or not password:
            error = "Enter your user name and password."
            status = 400
        elif (wait := throttle.begin(username, address)) > 0:
            retry_after = int(wait) + 1
            error = f"Too many failed logins. Try again in {retry_after} seconds."
            status = 429
        else:
            with gate.slot() as checking:
                user = ctx.store.users.authenticate(username, password) if checking else None
            if not checking:
                throttle.refund(username, address)
                retry_after = 2
                error = "The gateway is busy checking other logins. Try again in a moment."
                status = 429
            elif user is None:
                ctx.store.audit.add("login.failed", actor=username, ip=address)
                error = "Wrong user name or password."
                status = 401
            else:
                throttle.succeeded(username, address)
                log_in(user)
                ctx.store.audit.add("login", actor=username, ip=address)
                return redirect(_safe_next(request.args.get("next")))
    elif g.get("user") is not None:
        return redirect(_safe_next(request.args.get("next")))
    resp = make_response(render_template("login.html", error=error, username=username), status)
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


@bp.route("/logout", methods=["POST"])
def logout():
    # Ended in the store: a copy of the cookie kept from before is worth nothing now.
    app_state().services.store.users.end_session(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))
