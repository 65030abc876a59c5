"""Inbox: recent inbound messages, newest first, with their type and actions (opt the sender
out or re-subscribe them, reactivate an inactive sender, message them, start a chat). New
messages appear live (inbox.js reads ``/api/inbox?after=<id>`` when the event stream says one
arrived).

The actions are the profile page's, with the same words and the same functions behind them:
re-subscribing (:class:`~gateway.messaging.subscriptions.Subscriptions`) never reactivates, and
reactivating (:meth:`~gateway.messaging.profiles.ProfileService.activate`) never re-subscribes.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for

from ...messaging.subscriptions import OptSource, ProfileNotFound
from ...store.search import MessageFilter
from ..context import services
from ..helpers import (
    chat_unavailable_reason,
    form_short_code,
    short_codes_status,
    shown_time,
    whole_number,
)
from .api import json_error, message_json, profile_json

bp = Blueprint("inbox", __name__)

PER_PAGE = 50
# The ``kind`` of inbound messages, as the filter offers them.
KINDS = {
    "reply": "Reply",
    "opt-out": "Opt-out",
    "opt-out-all": "Opt-out of all",
    "opt-in": "Opt-in",
    "help": "Help",
    "oops": "Undo of STOP",
    "unknown": "New number",
    "keyword": "Keyword",
    "confirm": "Opt-in confirmed (Y)",
    "answer": "Answer to a keyword's question",
}
KIND_BADGES = {
    "opt-out": "badge-bad",
    "opt-out-all": "badge-bad",
    "opt-in": "badge-ok",
    "confirm": "badge-ok",
    "help": "badge-warn",
}
# What the page's <template> row is rendered from; inbox.js fills in a real message.
BLANK_ROW = {
    "message": {"id": 0, "body": "", "created_at": "", "short_code": ""},
    "profile": {"id": 0, "name": "", "phone": "", "subscribed": True, "status": "active"},
    "chat_available": True,
    "kind_label": "",
    "kind_badge": "",
    "shown_time": "",
    "broadcast": None,
}


def _kind_arg() -> str | None:
    kind = request.args.get("kind", "").strip()
    if kind and kind not in KINDS:
        abort(400, description=f"kind: must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind or None


def _rows(messages: list[sqlite3.Row]) -> list[dict[str, Any]]:
    """Messages with their sender's profile and whether chat with them is available."""
    ctx = services()
    profiles: dict[int, sqlite3.Row | None] = {}
    reasons: dict[int, str | None] = {}
    rows = []
    answered = ctx.store.broadcasts.replied_to(messages)  # the broadcast each one answers
    # Each profile's short codes whose own row differs from its default: one query for the page.
    own = ctx.store.subscriptions.differing(list({int(m["profile_id"]) for m in messages}))
    for m in messages:
        pid = int(m["profile_id"])
        if pid not in profiles:
            profiles[pid] = ctx.store.profiles.get(pid)
            profile = profiles[pid]
            reasons[pid] = chat_unavailable_reason(ctx, profile) if profile else "no profile"
        profile = profiles[pid]
        if profile is None:  # cannot happen with the foreign key; never show half a row
            continue
        shown = profile_json(profile)
        # Subscribed to the short code this message came in on: what the row's buttons change.
        shown["subscribed"] = own.get(pid, {}).get(m["short_code"], bool(profile["subscribed"]))
        rows.append(
            {
                "message": message_json(m),
                "profile": shown,
                "chat_available": reasons[pid] is None,
                "reason": reasons[pid],
                "kind_label": KINDS.get(m["kind"] or "", m["kind"] or ""),
                "kind_badge": KIND_BADGES.get(m["kind"] or "", ""),
                "shown_time": shown_time(m["created_at"]),
                "broadcast": (
                    {"id": answered[m["id"]]["id"], "name": answered[m["id"]]["name"]}
                    if m["id"] in answered
                    else None
                ),
            }
        )
    return rows


@bp.get("/inbox")
def index():
    kind = _kind_arg()
    # Keyset pages ("older" after the last row shown, "newer" before the first): no count of
    # every inbound message, no OFFSET, so a deep page costs what the first does.
    before = whole_number(request.args.get("before", ""), minimum=1)
    after = whole_number(request.args.get("after", ""), minimum=0)
    page = services().store.messages.page(
        MessageFilter(direction="in", kind=kind),
        before=None if after is not None else before,
        after=after,
        limit=PER_PAGE,
    )
    return render_template(
        "inbox/index.html",
        rows=_rows(page.rows),
        kinds=KINDS,
        kind=kind,
        newest=page.newer_than is None,
        kind_badges=KIND_BADGES,
        chat_ready=any(s["up"] for s in short_codes_status(services())),
        newer_than=page.newer_than,
        older_than=page.older_than,
        here=request.full_path.rstrip("?"),
        blank_row=BLANK_ROW,
    )


@bp.get("/api/inbox")
def rows_json():
    """Inbound messages newer than ``after`` (newest first, at most one page), for live rows."""
    kind = request.args.get("kind", "").strip() or None
    if kind and kind not in KINDS:
        return json_error(f"The kind parameter must be one of {', '.join(KINDS)}.", "kind")
    after = whole_number(request.args.get("after", "0").strip() or "0")
    if after is None:
        return json_error("The after parameter must be a message id (a whole number).", "after")
    page = services().store.messages.page(
        MessageFilter(direction="in", kind=kind), after=after, limit=PER_PAGE
    )
    # More than a page arrived since: the page reloads instead of showing a gap.
    return jsonify(rows=_rows(page.rows), complete=page.newer_than is None)


def _back() -> str:
    target = request.form.get("next", "")
    return target if target.startswith("/inbox") else url_for("inbox.index")


def _who(profile_id: int) -> str:
    profile = services().store.profiles.get(profile_id)
    if profile is None:
        abort(404, description=f"There is no profile with id {profile_id}.")
    return profile["name"] or profile["phone"]


def _set_subscription(profile_id: int, subscribed: bool):
    """Change the subscription to the row's short code (the form's ``short_code``: the one
    the message came in on), or to every short code when the form names none."""
    ctx = services()
    who = _who(profile_id)
    code = form_short_code(ctx)
    subscriptions = ctx.subscriptions
    by = OptSource.by_hand(g.user["username"])
    try:
        if subscribed:
            changed = subscriptions.subscribe(profile_id, by, short_code=code)
        else:
            changed = subscriptions.unsubscribe(profile_id, by, short_code=code)
    except ProfileNotFound:
        abort(404, description=f"There is no profile with id {profile_id}.")
    scope = f" {'to' if subscribed else 'of'} {code}" if code else ""
    if not changed:
        state = "subscribed" if subscribed else "opted out"
        flash(f"{who} was already {state}{scope}.", "info")
    elif subscribed:
        flash(f"{who} is subscribed{scope} again.", "success")
    else:
        flash(f"{who} is opted out{scope}. No message was sent to them.", "success")
    return redirect(_back())


@bp.post("/inbox/profiles/<int:profile_id>/opt-out")
def opt_out(profile_id: int):
    return _set_subscription(profile_id, False)


@bp.post("/inbox/profiles/<int:profile_id>/resubscribe")
def resubscribe(profile_id: int):
    """Subscribe an opted-out sender again (they asked to); an inactive one stays inactive."""
    return _set_subscription(profile_id, True)


@bp.post("/inbox/profiles/<int:profile_id>/activate")
def activate(profile_id: int):
    """Reactivate an inactive sender; an opted-out one stays opted out."""
    who = _who(profile_id)
    changed = services().profiles.activate(profile_id, actor=g.user["username"])
    flash(f"{who} is active again." if changed else f"{who} was already active.", "success")
    return redirect(_back())
