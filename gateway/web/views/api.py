"""JSON API used by the pages' scripts.

- ``GET /api/events``: live updates, in views/live.py.
- ``GET /api/profiles/<id>/conversation?after=<message id>``: the conversation and whether chat
  is available; ``POST /api/profiles/<id>/messages``: send (an answer: it clears the profile's
  waiting messages from the agent queue; 409 with ``claimed_by`` when another agent has taken
  the conversation, unless an admin sends ``"force": true``); ``POST /api/profiles/<id>/read``:
  mark it read.
- ``GET /api/emoji``: the emoji picker's data (catalog and extra ``:name:`` shortcodes).

Errors are JSON ``{"error": ..., "field": ...}`` with a 4xx status. Login and CSRF (the
``X-CSRFToken`` header) are enforced by the app for every route here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request

from ...messaging.agent import ClaimedByOther
from ...messaging.eligibility import why_not_textable
from ...messaging.outbound import IdempotencyConflict, SendRefused
from ...messaging.requests import SendRequest
from ...store import StoreError
from .. import emoji_catalog
from ..context import services
from ..helpers import chat_unavailable_reason, short_codes_status, whole_number

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

# -- JSON shapes and errors ----------------------------------------------------------------


def json_error(error: str, field: str | None = None, status: int = 400) -> tuple[Response, int]:
    """The API's error answer: ``{"error": ..., "field": ...}`` with ``status``."""
    return jsonify(error=error, field=field), status


def profile_json(profile: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": profile["id"],
        "name": profile["name"],
        "phone": profile["phone"],
        "status": profile["status"],
        "subscribed": bool(profile["subscribed"]),
    }


def message_json(m: sqlite3.Row) -> dict[str, Any]:
    """A message as the chat window and the other pages' scripts read it."""
    return {
        "id": m["id"],
        "direction": m["direction"],
        "body": m["body"],
        "status": m["status"],
        "kind": m["kind"],
        "created_at": m["created_at"],
        "parts_total": m["parts_total"],
        "error": m["error"],
        "maybe_duplicate": bool(m["maybe_duplicate"]),
        "short_code": m["short_code"],
        "created_by": m["created_by"],
    }


def profile_or_404(profile_id: int) -> sqlite3.Row:
    profile = services().store.profiles.get(profile_id)
    if profile is None:
        abort(404, description=f"There is no profile with id {profile_id}.")
    return profile


MAX_JSON_BYTES = 256 * 1024  # a send request is a few KiB at most; nothing here takes more


class BadJson(Exception):
    """The request's body is not a usable JSON object; ``status`` and the message say why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def read_json_object(*, check_text: bool = True) -> dict[str, Any]:
    """The request's JSON object; :class:`BadJson` (400, or 413 when too large) with words for
    the user when the body is not one: not JSON, nested too deep for the parser, not an object,
    or (unless ``check_text`` is false, for a caller that checks each field itself) holding
    text that is not valid Unicode (a lone surrogate written as an escape)."""
    if not request.is_json:  # as before: a form or text/plain body is not taken for JSON
        raise BadJson("The body must be JSON (Content-Type: application/json).")
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise BadJson(f"The request body is too large ({MAX_JSON_BYTES // 1024} KiB at most).", 413)
    raw = request.get_data(cache=True)
    if len(raw) > MAX_JSON_BYTES:
        raise BadJson(f"The request body is too large ({MAX_JSON_BYTES // 1024} KiB at most).", 413)
    try:
        data = json.loads(raw)
    except RecursionError:
        # Python's parser gives up around a thousand levels; no request of ours has three.
        raise BadJson("The JSON is nested too deeply.") from None
    except ValueError as exc:  # also bytes that are not UTF-8
        raise BadJson(f"The body is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise BadJson("Send a JSON object.")
    if not check_text:
        return data
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadJson("The JSON holds text that is not valid Unicode (a lone surrogate).") from None
    except (RecursionError, ValueError):
        raise BadJson("The JSON is nested too deeply.") from None
    return data


def json_body() -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one (see read_json_object)."""
    try:
        return read_json_object()
    except BadJson:
        return None


# -- conversations -------------------------------------------------------------------------


@bp.get("/profiles/<int:profile_id>/conversation")
def conversation(profile_id: int):
    ctx = services()
    profile = profile_or_404(profile_id)
    after = whole_number(request.args.get("after", "0").strip() or "0")
    if after is None:
        return json_error("The after parameter must be a message id (a whole number).", "after")
    rows = ctx.store.messages.conversation(profile_id, after_id=after)
    reason = chat_unavailable_reason(ctx, profile)
    try:
        default_code = ctx.outbox.short_code_for(None, profile_id, profile=profile).code
    except SendRefused:
        default_code = None
    return jsonify(
        profile=profile_json(profile),
        chat_available=reason is None,
        reason=reason,
        short_codes=[
            {
                "code": s["code"],
                "name": s["name"],
                "up": s["up"],
                # Why this profile may not be texted from it (None: it may).
                "refusal": why_not_textable(ctx.store, profile, s["code"]),
                "subscribed": ctx.store.subscriptions.subscribed(profile_id, s["code"]),
            }
            for s in short_codes_status(ctx)
        ],
        default_short_code=default_code,
        unread=ctx.store.messages.unread_count(profile_id, g.user["id"]),
        messages=_with_broadcasts(rows),
    )


def _with_broadcasts(rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    """The messages as JSON, each reply to a broadcast marked with it (``broadcast``: id and
    name; computed when read, store/broadcasts.py ``replied_to``)."""
    marks = services().store.broadcasts.replied_to([r for r in rows if r["direction"] == "in"])
    out = []
    for r in rows:
        m = message_json(r)
        b = marks.get(int(r["id"]))
        m["broadcast"] = {"id": b["id"], "name": b["name"]} if b is not None else None
        out.append(m)
    return out


@bp.post("/profiles/<int:profile_id>/messages")
def send(profile_id: int):
    ctx = services()
    profile_or_404(profile_id)
    try:
        data = read_json_object(check_text=False)  # SendRequest names the field at fault
    except BadJson as exc:
        # "text": the one field a send needs could not be found in the body.
        return json_error(
            f"{exc} Send a JSON object with the text of the message.", "text", exc.status
        )
    force = data.get("force", False)  # answer a conversation another agent has taken
    if not isinstance(force, bool):
        return json_error("The force field must be true or false.", "force")
    if force and g.user["role"] != "admin":
        return json_error("Only an administrator can answer for another agent.", "force", 403)
    desk = ctx.desk
    try:
        # The same rules as the control socket, the CLI and the form (messaging/requests.py).
        req = SendRequest.from_mapping(data, recipient=False, ignore=frozenset({"force"}))
        with ctx.store.db.tx():  # the claim is checked where the answer is recorded
            desk.check_may_answer(profile_id, g.user["username"], force=force)
            accepted = ctx.outbox.submit(
                req.text,
                profile_id=profile_id,
                short_code=req.short_code,
                idempotency_key=req.idempotency_key,
                user=g.user["username"],
                answers=True,
            )
    except ClaimedByOther as exc:
        return jsonify(error=str(exc), field=None, claimed_by=exc.claimed_by), 409
    except IdempotencyConflict as exc:
        return json_error(exc.reason, exc.field, 409)
    except SendRefused as exc:
        return json_error(exc.reason, exc.field)
    except StoreError as exc:
        log.error("sending to profile %d: %s", profile_id, exc)
        return json_error(f"The message was not accepted: {exc}", None, 503)
    row = ctx.store.messages.get(accepted.message_id)
    return jsonify(message=message_json(row)), 201 if accepted.created else 200


@bp.post("/profiles/<int:profile_id>/read")
def mark_read(profile_id: int):
    """Mark the conversation read up to ``last_id`` (default: its newest message)."""
    ctx = services()
    profile_or_404(profile_id)
    try:
        # No body: up to the newest message. A body that is not a JSON object is refused, not
        # taken for "no body" (that would mark everything read).
        data = read_json_object() if request.get_data(cache=True) else {}
    except BadJson as exc:
        return json_error(str(exc), "last_id", exc.status)
    last_id = data.get("last_id")
    if last_id is None:
        last_id = ctx.store.messages.newest_id(profile_id)
    elif whole_number(last_id) is None or not isinstance(last_id, int) or isinstance(last_id, bool):
        return json_error("The last_id field must be a message id (a whole number).", "last_id")
    if last_id:
        ctx.store.messages.mark_read(profile_id, g.user["id"], int(last_id))
    return jsonify(unread=ctx.store.messages.unread_count(profile_id, g.user["id"]))


# -- emoji ---------------------------------------------------------------------------------


@bp.get("/emoji")
def emoji():
    """The picker's data (``emoji_catalog.picker_data()``): the same for every user and for
    the life of the process, so it is built once and cached by the browser."""
    cached = current_app.extensions.get("gateway.emoji_json")
    if cached is None:
        body = json.dumps(emoji_catalog.picker_data(), ensure_ascii=False, separators=(",", ":"))
        cached = (body.encode("utf-8"), hashlib.sha256(body.encode("utf-8")).hexdigest()[:32])
        current_app.extensions["gateway.emoji_json"] = cached
    body, etag = cached
    resp = Response(body, mimetype="application/json")
    resp.set_etag(etag)
    resp.cache_control.private = True
    resp.cache_control.max_age = 86400
    return resp.make_conditional(request)
