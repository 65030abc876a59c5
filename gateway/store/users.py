"""Users of the web app: admins and agents, with argon2 password hashes, and their login
sessions (kept here, so that logging out or a password change ends them for good)."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .db import Database
from .times import iso, now, parse

ROLES = ("admin", "agent")
MIN_PASSWORD = 8  # the web app and the CLI apply the same rule

# argon2id at one of OWASP's equivalent settings (m=7 MiB, t=5, p=1: the same work as its
# m=19 MiB, t=2 in less memory; argon2-cffi's default is 64 MiB). Each check holds its memory
# while it runs, so this and the web app's one check at a time are what keep the daemon with
# the web app under 60 MB resident during a burst of logins. Hashes made with other parameters
# (the 19 MiB ones of earlier versions) are replaced at the user's next login.
ARGON2_MEMORY_KIB = 7 * 1024
ARGON2_TIME_COST = 5
ARGON2_PARALLELISM = 1

# A session's last_seen is written at most this often, so that browsing does not write to the
# SD card on every request.
_TOUCH_EVERY = timedelta(seconds=60)


def password_hasher() -> PasswordHasher:
    """The hasher for new and re-hashed passwords, with the parameters above."""
    return PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
    )


@dataclass(frozen=True)
class SessionPolicy:
    """How long a login lasts: ``absolute`` from logging in, and ``idle`` (None: no limit)
    since the last request that counted as use."""

    absolute: timedelta
    idle: timedelta | None = None


class UserError(ValueError):
    """A user cannot be created or changed as asked (duplicate name, bad role, weak password)."""


def _check(username: str, password: str | None, role: str | None) -> None:
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise UserError("username: 1-64 printable characters without spaces")
    if role is not None and role not in ROLES:
        raise UserError(f"role: must be one of {', '.join(ROLES)}, not {role!r}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")


class Users:
    """Create, find and authenticate users."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._hasher = password_hasher()
        self._dummy_hash: str | None = None

    def add(self, username: str, password: str, role: str = "agent") -> int:
        """Create a user; raises UserError when the name is taken or a field is invalid."""
        _check(username, password, role)
        stamp = iso(now())
        try:
            with self.db.tx() as conn:
                cur = conn.execute(
                    "INSERT INTO users (username, password_hash, role, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (username, self._hasher.hash(password), role, stamp, stamp),
                )
        except sqlite3.IntegrityError as exc:
            raise UserError(f"username: {username!r} already exists") from exc
        return int(cur.lastrowid)

    def set_password(self, username: str, password: str) -> None:
        """Change a user's password; raises UserError for an unknown user."""
        _check(username, password, None)
        with self.db.tx() as conn:
            cur = conn.execute(
                "UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?",
                (self._hasher.hash(password), iso(now()), username),
            )
            if cur.rowcount == 0:
                raise UserError(f"username: no user {username!r}")
            # Whoever had the old password may be logged in with it: every session ends.
            conn.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)",
                (username,),
            )

    def set_role(self, username: str, role: str) -> None:
        _check(username, None, role)
        with self.db.tx() as conn:
            cur = conn.execute(
                "UPDATE users SET role = ?, updated_at = ? WHERE username = ?",
                (role, iso(now()), username),
            )
        if cur.rowcount == 0:
            raise UserError(f"username: no user {username!r}")

    def set_disabled(self, username: str, disabled: bool) -> None:
        with self.db.tx() as conn:
            cur = conn.execute(
                "UPDATE users SET disabled = ?, updated_at = ? WHERE username = ?",
                (int(disabled), iso(now()), username),
            )
            if cur.rowcount == 0:
                raise UserError(f"username: no user {username!r}")
            if disabled:
                conn.execute(
                    "DELETE FROM sessions WHERE user_id ="
                    " (SELECT id FROM users WHERE username = ?)",
                    (username,),
                )

    def get(self, user_id: int) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM users WHERE id = ?", (user_id,))

    def by_name(self, username: str) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM users WHERE username = ?", (username,))

    def all(self) -> list[sqlite3.Row]:
        return self.db.q("SELECT * FROM users ORDER BY username")

    def count(self) -> int:
        return int(self.db.value("SELECT COUNT(*) FROM users"))

    def authenticate(self, username: str, password: str) -> sqlite3.Row | None:
        """The user when the password is right and the account enabled, else None.

        A wrong name still costs one hash verification, so timing does not tell which names
        exist. A hash made with older parameters is replaced by one with today's.
        """
        row = self.by_name(username)
        stored = row["password_hash"] if row is not None else self._dummy()
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self.db.tx() as conn:
                # Only if unchanged meanwhile: a password set at the same moment wins.
                conn.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                    (self._hasher.hash(password), row["id"], stored),
                )
            row = self.get(row["id"])
        return row

    def _dummy(self) -> str:
        # Made on first need with this store's hasher (same cost as a real check), not at import.
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash("not a password of anyone")
        return self._dummy_hash

    # -- login sessions --------------------------------------------------------------------

    def start_session(
        self, user_id: int, policy: SessionPolicy, *, at: datetime | None = None
    ) -> str:
        """A new login session of the user; the secret token goes into the browser's cookie
        (the store keeps only its hash). Sessions past their limits are cleared out here."""
        at = at or now()
        token = secrets.token_urlsafe(32)
        stamp = iso(at)
        with self.db.tx() as conn:
            conn.execute("DELETE FROM sessions WHERE created_at < ?", (iso(at - policy.absolute),))
            if policy.idle is not None:
                conn.execute("DELETE FROM sessions WHERE last_seen < ?", (iso(at - policy.idle),))
            conn.execute(
                "INSERT INTO sessions (id_hash, user_id, created_at, last_seen)"
                " VALUES (?, ?, ?, ?)",
                (_token_hash(token), user_id, stamp, stamp),
            )
        return token

    def resume_session(
        self,
        token: object,
        policy: SessionPolicy,
        *,
        at: datetime | None = None,
        touch: bool = True,
    ) -> sqlite3.Row | None:
        """The enabled user whose live session ``token`` names, or None (unknown, ended,
        expired, idle too long, user disabled). ``touch`` counts this as use of the session
        (an event stream that reconnects by itself does not)."""
        if not isinstance(token, str) or not token or len(token) > 100:
            return None
        at = at or now()
        key = _token_hash(token)
        row = self.db.q1(
            "SELECT u.*, s.created_at AS session_created, s.last_seen AS session_seen"
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?",
            (key,),
        )
        if row is None:
            return None
        created, seen = parse(row["session_created"]), parse(row["session_seen"])
        expired = at - created >= policy.absolute
        idle = policy.idle is not None and at - seen >= policy.idle
        if row["disabled"] or expired or idle:
            self.end_session(token)
            return None
        if touch and at - seen >= min(_TOUCH_EVERY, (policy.idle or _TOUCH_EVERY) / 4):
            with self.db.tx() as conn:
                conn.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (iso(at), key))
        return row

    def end_session(self, token: object) -> None:
        """Log this session out (nothing happens for an unknown token)."""
        if isinstance(token, str) and token:
            with self.db.tx() as conn:
                conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_token_hash(token),))

    def end_sessions(self, user_id: int) -> int:
        """Log every session of the user out; how many there were."""
        with self.db.tx() as conn:
            return conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
