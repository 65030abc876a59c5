"""``/api/v1/short-codes`` and ``/api/v1/modems``: whether each short code can send now, and
each modem's health (state, signal, registration, and when its sends fail: failing or probing),
from the running modem manager; without one (the web app started on its own) every modem's
state is ``unknown``."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from ..context import services
from ..helpers import short_codes_status
from .base import bp, query_args


@bp.get("/short-codes")
def short_codes():
    query_args(set())
    ctx = services()
    return jsonify(
        data=[
            {"code": s["code"], "name": s["name"], "up": s["up"], "modems": s["modems"]}
            for s in short_codes_status(ctx)
        ]
    )


def _modem(status: dict[str, Any], codes: dict[str, list[str]]) -> dict[str, Any]:
    sending = status.get("sending") or None
    return {
        "id": status["id"],
        "label": status.get("label"),
        "state": status["state"],
        "since": status.get("since"),
        "short_codes": codes.get(status["id"], []),
        "signal": status.get("signal"),
        "registration": status.get("registration"),
        "registered": bool(status.get("registered")),
        "operator": status.get("operator"),
        "last_error": status.get("last_error"),
        "sending": (
            {
                "state": str(sending.get("state", "ok")),
                "failures": int(sending.get("failures") or 0),
                "reason": sending.get("reason"),
                "next_check": sending.get("next_check"),
            }
            if sending
            else None
        ),
    }


@bp.get("/modems")
def modems():
    query_args(set())
    ctx = services()
    codes: dict[str, list[str]] = {}
    for sc in ctx.config.short_codes:
        for mid in sc.modems:
            codes.setdefault(mid, []).append(sc.code)
    if ctx.manager is not None:
        live = [s.to_json() for s in ctx.manager.statuses()]
    else:
        live = [{"id": m.id, "label": m.label, "state": "unknown"} for m in ctx.config.modems]
    return jsonify(data=[_modem(s, codes) for s in live])
