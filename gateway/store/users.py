"""Users of the web app: admins and agents, with argon2 password hashes."""

from __future__ import annotations

import sqlite3

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .db import Database
from .times import iso, now

ROLES = ("admin", "agent")
MIN_PASSWORD = 8  # the web app and the CLI apply the same rule


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
        self._hasher = PasswordHasher()

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
        exist.
        """
        row = self.by_name(username)
        stored = row["password_hash"] if row is not None else _DUMMY_HASH
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self.db.tx() as conn:
                conn.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?",
                    (self._hasher.hash(password), row["id"]),
                )
        return row


_DUMMY_HASH = PasswordHasher().hash("not a password of anyone")
