"""Modems: identity, short code, state, signal, registration, storage, queue, last error and
counters of each modem, updated live from the modem manager's events; admins can ask for a
storage sweep or a rescan of the ports."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for

from ..auth import admin_required
from ..context import services
from ..helpers import shown_time

bp = Blueprint("modems", __name__)

# What each state means to a person looking at the page.
STATE_HELP = {
    "searching": "looking for its port",
    "starting": "port found, setting the modem up",
    "up": "ready to send and receive",
    "down": "lost; reconnecting",
    "failed": "cannot be used until the problem is fixed",
    "failing": "its sends fail: out of routing, its messages go to the rest of its pool",
    "probing": "its check passed: the next message it sends brings it back into routing",
    "unconfigured": "found, but no configured modem matches it",
    "unknown": "the modem manager is not running",
}
STATE_BADGE = {
    "up": "badge-ok",
    "starting": "badge-warn",
    "searching": "badge-warn",
    "probing": "badge-warn",
}

_IDENTITY = ("imei", "iccid", "imsi", "number", "manufacturer", "model", "firmware")


def _from_store(record: sqlite3.Row | None) -> dict[str, Any]:
    if record is None:
        return {}
    return {k: record[k] for k in _IDENTITY if record[k]}


def sending_text(state: str, sending: dict[str, Any] | None) -> str:
    """How the modem's sends go, in words (modems.js says the same from the live events)."""
    if state not in ("failing", "probing") or not sending:
        return "ok" if state == "up" else "—"
    text = (
        f"{sending.get('failures', 0)} failed in a row"
        f" ({sending.get('reason') or 'no reason given'})"
    )
    when = sending.get("next_check")
    if state == "failing" and when:
        return f"{text}; checked again at {shown_time(when)}"
    return f"{text}; the next message it sends decides"


def modem_rows(ctx) -> list[dict[str, Any]]:
    """One dict per modem for the page: live status when a manager runs (else the configured
    modems with state "unknown"), merged with what the store remembers and the config says."""
    records = {r["modem_id"]: r for r in ctx.store.modems.all()}
    if ctx.manager is not None:
        live = [s.to_json() for s in ctx.manager.statuses()]
    else:
        live = [
            {"id": m.id, "label": m.label, "state": "unknown", "port": m.port}
            for m in ctx.config.modems
        ]
        live += [
            {"id": mid, "label": r["label"], "state": "unknown", "port": None}
            for mid, r in records.items()
            if mid not in {m.id for m in ctx.config.modems}
        ]
    rows = []
    for status in live:
        mid = status["id"]
        record = records.get(mid)
        row: dict[str, Any] = {**_from_store(record), **{k: v for k, v in status.items() if v}}
        row.setdefault("state", "unknown")
        try:
            configured = ctx.config.modem(mid)
        except KeyError:
            configured = None
        row["configured"] = configured is not None
        row["label"] = (
            status.get("label")
            or (configured.label if configured else None)
            or (record["label"] if record is not None else None)
        )
        row["port"] = status.get("port") or (configured.port if configured else None)
        short = ctx.config.short_code_of_modem(mid)
        row["short_code"] = f"{short.code} {short.name}" if short else None
        row["queue"] = ctx.store.messages.queued_count(mid)
        row["sending_text"] = sending_text(row["state"], status.get("sending"))
        row["state_help"] = STATE_HELP.get(row["state"], "")
        row["state_badge"] = STATE_BADGE.get(row["state"], "badge-bad")
        for key in ("sent_count", "received_count", "failed_count"):
            row[key] = record[key] if record is not None else 0
        for key in ("first_seen", "last_seen", "last_up", "last_down"):
            row[key] = record[key] if record is not None else None
        rows.append(row)
    return rows


@bp.route("/modems")
def index():
    ctx = services()
    return render_template(
        "modems/index.html",
        rows=modem_rows(ctx),
        manager_running=ctx.manager is not None,
        is_admin=g.user["role"] == "admin",
        shown_time=shown_time,
    )


def _manager_or_flash():
    manager = services().manager
    if manager is None:
        flash("The daemon's modem manager is not running here; nothing was done.", "error")
    return manager


@bp.route("/modems/<modem_id>/sweep", methods=["POST"])
@admin_required
def sweep(modem_id: str):
    ctx = services()
    try:
        ctx.config.modem(modem_id)
    except KeyError:
        abort(404, description=f"There is no configured modem {modem_id!r}.")
    manager = _manager_or_flash()
    if manager is not None:
        manager.request_sweep(modem_id)
        ctx.store.audit.add("modem.sweep", actor=g.user["username"], modem=modem_id)
        flash(
            f"Modem {modem_id}: its storage will be read now; new messages appear as they are"
            " stored.",
            "success",
        )
    return redirect(url_for("modems.index"))


@bp.route("/modems/rescan", methods=["POST"])
@admin_required
def rescan():
    ctx = services()
    manager = _manager_or_flash()
    if manager is not None:
        manager.rescan()
        ctx.store.audit.add("modem.rescan", actor=g.user["username"])
        flash("Looking for modems on the ports again.", "success")
    return redirect(url_for("modems.index"))
