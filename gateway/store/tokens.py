"""API tokens: per-user secrets for ``Authorization: Bearer`` on ``/api/v1``.

A token is ``gw_`` and 43 characters of a 32-byte random secret; only its SHA-256 is stored
(the secret has 256 bits of entropy, so a fast hash is as safe as a slow one and costs no
memory per request), and it is shown once, when created. A token acts as its user; a revoked
token, or one of a disabled user, authenticates nobody. ``last_used_at`` is written at most
once a minute per token, so an API client polling every second does not write to the card
every second.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from .db import Database, StoreError
from .times import iso, now, parse

log = logging.getLogger(__name__)

TOKEN_PREFIX = "gw_"
MAX_LABEL = 100
# A token's last use is written at most this often (the same rule as a session's last_seen).
TOUCH_EVERY = timedelta(seconds=60)

SCHEMA: list[str] = [
    "CREATE TABLE api_tokens ("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users (id),"
    " label TEXT NOT NULL DEFAULT '',"
    " secret_hash TEXT NOT NULL UNIQUE,"  # SHA-256 hex of the whole token
    " hint TEXT NOT NULL,"  # its first characters, so that a person can tell tokens apart
    " created_at TEXT NOT NULL,"
    " created_by TEXT,"
    " last_used_at TEXT,"
    " revoked_at TEXT,"
    " revoked_by TEXT)",
    "CREATE INDEX api_tokens_user ON api_tokens (user_id, id)",
]


class TokenError(ValueError):
    """A token cannot be created or revoked as asked (unknown user or token, bad label)."""


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` is the whole token, shown this once."""

    id: int
    secret: str
    user: str
    label: str
    created: str

    def to_json(self) -> dict:
        """What ``gateway token create`` prints, the secret with it."""
        return {
            "id": self.id,
            "token": self.secret,
            "user": self.user,
            "label": self.label,
            "created": self.created,
        }


def token_json(row: sqlite3.Row) -> dict:
    """A token as listed (``/api/v1/tokens``, ``gateway token list``), from a row of
    :meth:`ApiTokens.list` or :meth:`ApiTokens.get`: never its secret (the store does not have
    it)."""
    return {
        "id": row["id"],
        "user": row["username"],
        "label": row["label"],
        "hint": row["hint"] + "…",
        "created": row["created_at"],
        "created_by": row["created_by"],
        "last_used": row["last_used_at"],
        "revoked": row["revoked_at"],
    }


def token_hash(secret: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_label(label: str) -> str:
    """A token's label as stored (stripped); TokenError when it is too long or holds control
    characters."""
    label = (label or "").strip()
    if len(label) > MAX_LABEL:
        raise TokenError(f"label: at most {MAX_LABEL} characters ({len(label)} given)")
    if not label.isprintable():
        raise TokenError("label: must not contain control characters such as line breaks")
    return label


class ApiTokens:
    """Create, find, list and revoke API tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, username: str, label: str = "", *, by: str | None = None) -> NewToken:
        """A new token for ``username`` (who must exist and be enabled)."""
        label = check_label(label)
        user = self.db.q1(
            "SELECT id, username, disabled FROM users WHERE username = ?", (username,)
        )
        if user is None:
            raise TokenError(f"user: no user {username!r}")
        if user["disabled"]:
            raise TokenError(f"user: {username!r} is disabled; enable the user first")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        stamp = iso(now())
        with self.db.tx() as conn:
            cur = conn.execute(
                "INSERT INTO api_tokens (user_id, label, secret_hash, hint, created_at,"
                " created_by) VALUES (?, ?, ?, ?, ?, ?)",
                (user["id"], label, token_hash(secret), secret[:7], stamp, by),
            )
        return NewToken(int(cur.lastrowid), secret, user["username"], label, stamp)

    def authenticate(self, secret: object, *, at: datetime | None = None) -> sqlite3.Row | None:
        """The token's row joined with its user (``username``, ``role``) when ``secret`` is
        a live token of an enabled user, else None. Records the use (at most once a minute)."""
        if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
            return None
        row = self.db.q1(
            "SELECT t.*, u.username, u.role, u.disabled FROM api_tokens t"
            " JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?",
            (token_hash(secret),),
        )
        if row is None or row["revoked_at"] is not None or row["disabled"]:
            return None
        at = at or now()
        last = parse(row["last_used_at"])
        if last is None or at - last >= TOUCH_EVERY:
            try:
                with self.db.tx() as conn:
                    conn.execute(
                        "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (iso(at), row["id"])
                    )
            except StoreError as exc:
                # A full or read-only card must not lock every API client out of reading (nor
                # /metrics): the token is valid, only the note of its use is lost this time.
                log.warning("could not record the use of API token %d: %s", row["id"], exc)
        return row

    def get(self, token_id: int) -> sqlite3.Row | None:
        """A token with its user's name, or None."""
        return self.db.q1(
            "SELECT t.*, u.username FROM api_tokens t JOIN users u ON u.id = t.user_id"
            " WHERE t.id = ?",
            (token_id,),
        )

    def list(self, username: str | None = None, *, revoked: bool = True) -> list[sqlite3.Row]:
        """Tokens, newest first, with their user's name (and ``user_disabled``): of ``username``
        only when given;
        without the revoked ones when ``revoked`` is false. (A handful per user: no paging.)"""
        terms, params = [], []
        if username is not None:
            terms.append("u.username = ?")
            params.append(username)
        if not revoked:
            terms.append("t.revoked_at IS NULL")
        where = f"WHERE {' AND '.join(terms)}" if terms else ""
        return self.db.q(
            "SELECT t.*, u.username, u.disabled AS user_disabled FROM api_tokens t"
            f" JOIN users u ON u.id = t.user_id {where} ORDER BY t.id DESC",
            params,
        )

    def revoke(self, token_id: int, *, by: str | None = None) -> bool:
        """Revoke a token for good; False when it already was revoked. TokenError when there
        is no such token."""
        with self.db.tx() as conn:
            found = conn.execute(
                "SELECT revoked_at FROM api_tokens WHERE id = ?", (token_id,)
            ).fetchone()
            if found is None:
                raise TokenError(f"id: no API token {token_id}")
            if found["revoked_at"] is not None:
                return False
            conn.execute(
                "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                (iso(now()), by, token_id),
            )
        return True
