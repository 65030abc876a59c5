"""Who an API request comes from: the ``Authorization: Bearer TOKEN`` header, checked against
the store's hashed tokens. :func:`authenticate` is the one check, for ``/api/v1`` and for any
other endpoint that takes API tokens (``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Request

from ..context import services


@dataclass(frozen=True)
class TokenUser:
    """The user an API token acts for, with that user's role (``admin`` or ``agent``)."""

    token_id: int
    user_id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none (another
    scheme, or an empty one, counts as none)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def authenticate(request: Request) -> TokenUser | None:
    """The user of the request's API token, or None: no token, an unknown or revoked one, or
    one whose user is disabled. Records the token's use (at most once a minute). Call it within
    the web app (it reads the app's store)."""
    token = bearer(request)
    if token is None:
        return None
    row = services().store.api_tokens.authenticate(token)
    if row is None:
        return None
    return TokenUser(row["id"], row["user_id"], row["username"], row["role"])
