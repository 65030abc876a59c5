"""Agent View: the conversations waiting for an answer, the longest-waiting first. An agent
takes the next one (or picks one), answers it, returns it to the queue or marks it "no response
needed". The page's script (agent.js) drives the JSON routes below and follows the event stream.

JSON routes (login and CSRF as everywhere; errors ``{"error", "field"}``):

- ``GET /api/agent/queue?show=all|questions|urgent|mine`` → ``{"items", "counts", "user"}``
- ``POST /api/agent/take-next`` → ``{"item": {...} | null}``
- ``POST /api/agent/profiles/<id>/claim`` → ``{"item"}``; 409 when another agent has it
- ``POST /api/agent/profiles/<id>/release`` → ``{"returned": n}``
- ``POST /api/agent/profiles/<id>/no-response`` → ``{"closed": n}``

``release`` and ``no-response`` on someone else's conversation need ``{"force": true}`` and an
admin. Answers go through ``POST /api/profiles/<id>/messages``, which takes the conversation
out of the queue.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, jsonify, render_template, request

from ...messaging.agent import SHOW, AgentDesk, AgentError, ClaimedByOther, NotInQueue, QueueItem
from ..context import services
from ..helpers import chat_unavailable_reason, shown_time
from .api import json_body, json_error, profile_or_404

bp = Blueprint("agent", __name__)


def _desk() -> AgentDesk:
    return services().desk


def _show() -> str:
    return request.args.get("show", "all").strip() or "all"


def item_json(item: QueueItem) -> dict[str, Any]:
    data = item.to_json()
    reason = chat_unavailable_reason(services(), item.profile)
    data["chat_available"] = reason is None
    data["reason"] = reason
    data["shown_time"] = shown_time(item.oldest["created_at"])
    return data


def _refused(exc: AgentError):
    if isinstance(exc, ClaimedByOther):
        return jsonify(error=str(exc), field=None, claimed_by=exc.claimed_by), 409
    if isinstance(exc, NotInQueue):
        return json_error(str(exc), None, 409)
    return json_error(str(exc), None, 400)


@bp.get("/agent")
def index():
    show = _show()
    if show not in SHOW:
        abort(400, description=f"show: must be one of {', '.join(SHOW)}, not {show!r}")
    desk = _desk()
    user = g.user["username"]
    items = [item_json(i) for i in desk.queue(user=user, show=show)]
    return render_template(
        "agent/index.html",
        items=items,
        counts=desk.counts(user),
        show=show,
        shows={
            "all": "All",
            "questions": "Questions",
            "urgent": "Urgent",
            "mine": "Claimed by me",
        },
        canned=services().config.agent.canned_responses,
        me=user,
    )


@bp.get("/api/agent/queue")
def queue():
    show = _show()
    if show not in SHOW:
        return json_error(f"The show parameter must be one of {', '.join(SHOW)}.", "show")
    desk = _desk()
    user = g.user["username"]
    return jsonify(
        items=[item_json(i) for i in desk.queue(user=user, show=show)],
        counts=desk.counts(user),
        user=user,
    )


@bp.post("/api/agent/take-next")
def take_next():
    item = _desk().take_next(g.user["username"])
    return jsonify(item=item_json(item) if item else None)


@bp.post("/api/agent/profiles/<int:profile_id>/claim")
def claim(profile_id: int):
    profile_or_404(profile_id)
    try:
        item = _desk().claim(profile_id, g.user["username"])
    except AgentError as exc:
        return _refused(exc)
    return jsonify(item=item_json(item))


def _force() -> bool:
    data = json_body() or {}
    if data.get("force") is True:
        if g.user["role"] != "admin":
            abort(403, description="Only an administrator can take over another agent's work.")
        return True
    return False


@bp.post("/api/agent/profiles/<int:profile_id>/release")
def release(profile_id: int):
    profile_or_404(profile_id)
    try:
        count = _desk().release(profile_id, g.user["username"], force=_force())
    except AgentError as exc:
        return _refused(exc)
    return jsonify(returned=count)


@bp.post("/api/agent/profiles/<int:profile_id>/no-response")
def no_response(profile_id: int):
    profile_or_404(profile_id)
    try:
        count = _desk().no_response(profile_id, g.user["username"], force=_force())
    except AgentError as exc:
        return _refused(exc)
    return jsonify(closed=count)
