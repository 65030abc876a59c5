"""Settings → Webhooks (admins only): each short code's webhooks with their backlog, failures
and secret; adding and removing them; the dead-letter list with "resend". Every change is in
the audit log (messaging/webhooks.py writes it)."""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from ...store.webhooks import FAMILIES
from ..auth import admin_required
from ..context import services
from ..helpers import shown_time, whole_number

bp = Blueprint("webhooks", __name__)

DEAD_PAGE = 50
FAMILY_TEXT = {
    "inbound": "inbound messages",
    "status": "sent, delivered, failed, expired",
    "opt": "opt-outs and opt-ins",
    "broadcast": "broadcast completed",
}


@bp.before_request
@admin_required
def _admins_only() -> None:
    """Every route here is for admins: agents get 403."""


def _data_preview(payload: str) -> str:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        return payload[:120]
    keys = ("message_id", "to", "from", "status", "phone", "action")
    return ", ".join(f"{k}: {data[k]}" for k in keys if data.get(k) is not None)


@bp.get("/settings/webhooks")
def index():
    ctx = services()
    hooks = ctx.webhooks.all()
    chosen = whole_number(request.args.get("webhook"), minimum=1)
    before = whole_number(request.args.get("before"), minimum=1)
    dead = ctx.webhooks.dead_letters(chosen, before=before, limit=DEAD_PAGE + 1)
    more = len(dead) > DEAD_PAGE
    dead = dead[:DEAD_PAGE]
    return render_template(
        "settings/webhooks.html",
        hooks=hooks,
        by_id={h.id: h for h in hooks},
        new=whole_number(request.args.get("new"), minimum=1),
        short_codes=ctx.config.short_codes,
        families=FAMILIES,
        family_text=FAMILY_TEXT,
        delivery=ctx.config.webhook_delivery,
        dead=dead,
        chosen=chosen,
        next_before=dead[-1].id if more and dead else None,
        preview=_data_preview,
        shown_time=shown_time,
        config_file=str(ctx.config.source) if ctx.config.source else None,
    )


@bp.post("/settings/webhooks")
def add():
    from ...messaging.webhooks import WebhookRefused

    ctx = services()
    events = [f for f in FAMILIES if request.form.get(f"event-{f}")]
    try:
        hook = ctx.webhooks.add(
            (request.form.get("short_code") or "").strip(),
            (request.form.get("url") or "").strip(),
            events,
            user=g.user["username"],
        )
    except WebhookRefused as exc:
        flash(f"{exc.field}: {exc.reason}", "error")
        return redirect(url_for("webhooks.index", _anchor="add"))
    flash(
        f"Webhook {hook.id} added. Give its secret (below) to the receiver: it verifies every "
        "POST with it.",
        "success",
    )
    return redirect(url_for("webhooks.index", new=hook.id, _anchor=f"webhook-{hook.id}"))


@bp.post("/settings/webhooks/<int:webhook_id>/remove")
def remove(webhook_id: int):
    from ...messaging.webhooks import WebhookRefused

    ctx = services()
    try:
        hook = ctx.webhooks.remove(webhook_id, user=g.user["username"])
    except WebhookRefused as exc:
        flash(exc.reason, "error")
        return redirect(url_for("webhooks.index"))
    flash(f"Webhook {hook.id} ({hook.url}) removed with its waiting deliveries.", "success")
    return redirect(url_for("webhooks.index"))


@bp.post("/settings/webhooks/<int:webhook_id>/resend")
def resend_all(webhook_id: int):
    ctx = services()
    if ctx.webhooks.get(webhook_id) is None:
        abort(404, description=f"There is no webhook {webhook_id}.")
    n = ctx.webhooks.resend(webhook_id=webhook_id, user=g.user["username"])
    flash(f"{n} dead letter(s) of webhook {webhook_id} queued again.", "success")
    return redirect(url_for("webhooks.index", _anchor="dead"))


@bp.post("/settings/webhooks/dead/<int:delivery_id>/resend")
def resend_one(delivery_id: int):
    ctx = services()
    n = ctx.webhooks.resend([delivery_id], user=g.user["username"])
    if n:
        flash(f"Delivery {delivery_id} queued again.", "success")
    else:
        flash(f"Delivery {delivery_id} is not in the dead-letter list any more.", "error")
    return redirect(url_for("webhooks.index", _anchor="dead"))
