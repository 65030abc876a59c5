"""The JSON of each thing the API returns (the OpenAPI document in openapi.py describes the same
shapes; tests/web/test_api_v1_openapi.py checks every answer against it)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ...store.profiles import custom_fields
from ..context import services


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


def messages_json(rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    """A page of messages: every outbound one's parts read in one query."""
    parts = services().store.messages.parts_of(m["id"] for m in rows if m["direction"] == "out")
    return [message_json(m, parts.get(m["id"], [])) for m in rows]


def profile_json(p: sqlite3.Row) -> dict[str, Any]:
    """One profile (see :func:`profiles_json` for a page of them)."""
    return profiles_json([p])[0]


def profiles_json(rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    """Profiles with ``subscriptions``: for each configured short code whether the profile may
    get texts from it by the store's one rule (``subscribed`` is the all-short-codes switch);
    one query for the page's exceptions."""
    ctx = services()
    codes = [sc.code for sc in ctx.config.short_codes]
    own = ctx.store.subscriptions.differing([int(r["id"]) for r in rows]) if rows else {}
    return [_profile(p, codes, own.get(int(p["id"]), {})) for p in rows]


def _profile(p: sqlite3.Row, codes: list[str], own: dict[str, bool]) -> dict[str, Any]:
    everywhere = bool(p["subscribed"])
    return {
        "id": p["id"],
        "name": p["name"],
        "phone": p["phone"],
        "status": p["status"],
        "subscribed": everywhere,
        "subscriptions": {code: own.get(code, everywhere) for code in codes},
        "custom": {str(k): str(v) for k, v in custom_fields(p).items()},
        "created_at": p["created_at"],
        "updated_at": p["updated_at"],
        "last_message_at": p["last_message_at"],
    }
