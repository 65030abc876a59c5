"""The JSON of each thing the API returns (the OpenAPI document in openapi.py describes the same
shapes; tests/web/test_api_v1_openapi.py checks every answer against it)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ...store.profiles import custom_fields
from ...store.tokens import NewToken


def part_json(p: sqlite3.Row) -> dict[str, Any]:
    return {
        "seq": p["seq"],
        "status": p["status"],
        "modem_id": p["modem_id"],
        "error": p["error"],
        "sent_at": p["sent_at"],
        "reported_at": p["reported_at"],
    }


def message_json(m: sqlite3.Row, parts: list[sqlite3.Row]) -> dict[str, Any]:
    """A message with its parts (an inbound message has none: it arrives whole)."""
    return {
        "id": m["id"],
        "direction": m["direction"],
        "profile_id": m["profile_id"],
        "phone": m["phone"],
        "short_code": m["short_code"],
        "text": m["body"],
        "status": m["status"],
        "kind": m["kind"],
        "encoding": m["encoding"],
        "parts_total": m["parts_total"],
        "modem_id": m["modem_id"],
        "error": m["error"],
        "maybe_duplicate": bool(m["maybe_duplicate"]),
        "idempotency_key": m["idempotency_key"],
        "created_by": m["created_by"],
        "created_at": m["created_at"],
        "updated_at": m["updated_at"],
        "parts": [part_json(p) for p in parts] if m["direction"] == "out" else [],
    }


def profile_json(p: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": p["id"],
        "name": p["name"],
        "phone": p["phone"],
        "status": p["status"],
        "subscribed": bool(p["subscribed"]),
        "custom": {str(k): str(v) for k, v in custom_fields(p).items()},
        "created_at": p["created_at"],
        "updated_at": p["updated_at"],
        "last_message_at": p["last_message_at"],
    }


def token_json(t: sqlite3.Row) -> dict[str, Any]:
    """A token as listed: never its secret (the store does not have it)."""
    return {
        "id": t["id"],
        "user": t["username"],
        "label": t["label"],
        "hint": t["hint"] + "…",
        "created": t["created_at"],
        "created_by": t["created_by"],
        "last_used": t["last_used_at"],
        "revoked": t["revoked_at"],
    }


def new_token_json(t: NewToken) -> dict[str, Any]:
    """A token just created, with its secret (shown this once)."""
    return {"id": t.id, "token": t.secret, "user": t.user, "label": t.label, "created": t.created}
