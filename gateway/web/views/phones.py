"""Phones (demo only): the simulator's handsets. Text the gateway as a handset and see what each
handset has received, so a visitor can try the whole round trip alone. 404 without a simulator."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for

# The demo's Phones page is a front of the simulator's control API (the services' simulator),
# and so the one part of the web app that knows the simulator; it never reaches the driver or
# the codec.
from ...sim import SimControl, SimError, UnknownHandset
from ..context import Services, services
from ..helpers import shown_time

bp = Blueprint("phones", __name__)

MAX_TEXT = 1600  # ten parts of GSM-7: as long as the gateway itself would send


@bp.before_request
def _demo_only() -> None:
    _control(services())


def _control(ctx: Services) -> SimControl:
    """The simulator's control; 404 when the gateway runs no simulator."""
    if ctx.simulator is None:
        abort(404, description="The Phones page exists only when the gateway runs the simulator.")
    return ctx.simulator.control


def gateway_numbers(ctx) -> list[dict[str, Any]]:
    """The numbers a handset can text: the simulated modems' own, each with its short code
    (through the configured modem of the same IMEI or ICCID), and the short codes the network
    routes to one of them."""
    by_imei = {m.imei: m for m in ctx.config.modems if m.imei}
    by_iccid = {m.iccid: m for m in ctx.config.modems if m.iccid}
    numbers = []
    for sim in _control(ctx).modems():
        configured = by_imei.get(sim["imei"]) or by_iccid.get((sim.get("iccid") or "").rstrip("F"))
        short = ctx.config.short_code_of_modem(configured.id) if configured else None
        label = f"{short.code} {short.name}" if short else "no short code"
        numbers.append(
            {
                "number": sim["number"],
                "short_code": short.code if short else None,
                "label": f"{label} ({sim['number']})",
            }
        )
        # A short code routed to this modem: what a person would really type.
        for served in sim.get("serves", ()):
            sc = next((c for c in ctx.config.short_codes if c.code == served), None)
            name = f"{served} {sc.name}" if sc else served
            numbers.append(
                {
                    "number": served,
                    "short_code": sc.code if sc else None,
                    "label": f"{name} (short code, to {sim['number']})",
                }
            )
    # Short codes first, in the configuration's order, then modems in none.
    order = {sc.code: i for i, sc in enumerate(ctx.config.short_codes)}
    numbers.sort(key=lambda n: (order.get(n["short_code"], len(order)), n["number"]))
    return numbers


def anchor(number: str) -> str:
    """The page anchor of a handset's card."""
    return "handset-" + "".join(c for c in number if c.isdigit())


def handset_names(ctx) -> dict[str, str]:
    sim_config = ctx.config.simulator
    if sim_config is None:
        return {}
    return {h.number: h.name for h in sim_config.handsets if h.name}


def inbox_json(ctx, number: str) -> list[dict[str, Any]]:
    """A handset's inbox, newest first (raises UnknownHandset)."""
    return list(reversed(_control(ctx).inbox(number)))


def _handset_views(ctx) -> list[dict[str, Any]]:
    names = handset_names(ctx)
    views = []
    for h in _control(ctx).handsets():
        views.append(
            {
                "number": h["number"],
                "anchor": anchor(h["number"]),
                "name": names.get(h["number"]),
                "reachable": h.get("reachable", True),
                "inbox": inbox_json(ctx, h["number"]),
            }
        )
    return views


def _page(errors: dict[str, str] | None = None, drafts: dict[str, dict] | None = None, status=200):
    ctx = services()
    return (
        render_template(
            "phones/index.html",
            handsets=_handset_views(ctx),
            numbers=gateway_numbers(ctx),
            errors=errors or {},
            drafts=drafts or {},
            shown_time=shown_time,
        ),
        status,
    )


@bp.route("/phones")
def index():
    return _page()


def _known_handset(number: str) -> None:
    try:
        _control(services()).inbox(number)
    except UnknownHandset:
        abort(404, description=f"There is no simulated handset {number}.")


@bp.route("/phones/<number>/send", methods=["POST"])
def send(number: str):
    ctx = services()
    _known_handset(number)
    to = (request.form.get("to") or "").strip()
    text = request.form.get("text") or ""
    allowed = {n["number"] for n in gateway_numbers(ctx)}
    error = None
    if to not in allowed:
        # Only the gateway's numbers: the simulated network would otherwise invent a handset.
        error = "to: choose one of the gateway's numbers"
    elif not text.strip():
        error = "text: write something to send"
    elif len(text) > MAX_TEXT:
        error = f"text: at most {MAX_TEXT} characters (this has {len(text)})"
    if error is None:
        try:
            result = _control(ctx).send(number, to, text)
        except (SimError, ValueError) as exc:
            error = f"the simulated network refused it: {exc}"
        else:
            parts = result["parts"]
            flash(f"{number} texted {to} ({parts} part{'s' if parts != 1 else ''}).", "success")
            return redirect(url_for("phones.index", _anchor=anchor(number)))
    return _page({number: error}, {number: {"to": to, "text": text}}, status=400)


@bp.route("/phones/<number>/inbox.json")
def inbox(number: str):
    ctx = services()
    try:
        messages = inbox_json(ctx, number)
    except UnknownHandset:
        return jsonify(error=f"There is no simulated handset {number}."), 404
    return jsonify(number=number, messages=messages)
