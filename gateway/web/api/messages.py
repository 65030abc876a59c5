"""``/api/v1/messages``: send a text, read a message's status and parts, list and filter
messages (keyset pages, newest first).

A send goes through the same rules as every other way in (messaging/requests.py) and the one
way into the queue (:meth:`Outbox.submit`): 201 with the new message; 200 with the message
already stored when its ``idempotency_key`` was used before for the same request; 409 when the
key was used for another.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from ...messaging.outbound import IdempotencyConflict, SendRefused
from ...messaging.requests import SendRequest
from ...store.search import MessageFilter
from ...store.states import MessageStatus
from ..context import services
from .base import (
    ApiError,
    bp,
    choice_arg,
    cursor_arg,
    found,
    id_arg,
    json_object,
    limit_arg,
    only_fields,
    query_args,
    time_arg,
    token_user,
    whole,
)
from .shapes import message_json, messages_json

DIRECTIONS = ("in", "out")
STATUSES = tuple(s.value for s in MessageStatus)
MAX_WORDS_CHARS = 200
SEND_FIELDS = {"to", "profile_id", "text", "short_code", "idempotency_key"}


def message_or_404(message_id: int) -> dict[str, Any]:
    store = services().store
    row = found(store.messages.get, message_id, "message")
    return message_json(row, store.messages.parts(message_id))


@bp.post("/messages")
def send_message():
    data = json_object()
    only_fields(data, SEND_FIELDS)
    has_profile = "profile_id" in data
    if has_profile and "to" in data:
        raise ApiError(422, "Give either to (a phone number) or profile_id, not both.", "to")
    if not has_profile and "to" not in data:
        raise ApiError(422, "Say who gets the text: to (a phone number) or profile_id.", "to")
    if not has_profile and not isinstance(data["to"], str):
        raise ApiError(422, "to must be a phone number written as a string.", "to")
    profile_id = (
        whole(data["profile_id"], "profile_id", what="a profile id") if has_profile else None
    )
    fields = {k: v for k, v in data.items() if k != "profile_id"}
    ctx = services()
    try:
        req = SendRequest.from_mapping(fields, recipient=not has_profile)
        if profile_id is not None and ctx.store.profiles.get(profile_id) is None:
            raise ApiError(422, f"There is no profile with id {profile_id}.", "profile_id")
        accepted = ctx.outbox.submit(
            req.text,
            to=req.to,
            profile_id=profile_id,
            short_code=req.short_code,
            idempotency_key=req.idempotency_key,
            user=token_user().username,
        )
    except IdempotencyConflict as exc:
        raise ApiError(
            409, _sentence(exc.reason), "idempotency_key", code="idempotency_conflict"
        ) from None
    except SendRefused as exc:
        field = exc.field
        if field == "profile":  # the recipient cannot be texted (opted out, inactive)
            field = "profile_id" if has_profile else "to"
        elif field == "request":
            field = None
        raise ApiError(422, _sentence(exc.reason), field) from None
    body = message_or_404(accepted.message_id)
    return jsonify(body), 201 if accepted.created else 200


def _sentence(reason: str) -> str:
    reason = reason.strip()
    return reason[:1].upper() + reason[1:] + ("" if reason.endswith((".", ")")) else ".")


@bp.get("/messages/<int:message_id>")
def get_message(message_id: int):
    query_args(set())
    return jsonify(message_or_404(message_id))


@bp.get("/messages")
def list_messages():
    query_args({"q", "direction", "status", "short_code", "profile_id", "since", "cursor", "limit"})
    words = request.args.get("q", "")
    if len(words) > MAX_WORDS_CHARS:
        raise ApiError(422, f"q is too long ({MAX_WORDS_CHARS} characters at most).", "q")
    f = MessageFilter(
        text=words,
        direction=choice_arg("direction", DIRECTIONS),
        status=choice_arg("status", STATUSES),
        short_code=request.args.get("short_code") or None,
        profile_id=id_arg("profile_id"),
        since=time_arg("since"),
    )
    limit = limit_arg()
    result = services().store.messages.page(f, before=cursor_arg(), limit=limit)
    return jsonify(
        data=messages_json(result.rows),
        next=str(result.older_than) if result.older_than is not None else None,
    )
