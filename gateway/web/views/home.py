"""Home: what needs attention now (unanswered messages, the queue, modems), with the left pane."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from ..context import services
from ..helpers import short_codes_status, shown_time

bp = Blueprint("home", __name__)


@bp.route("/")
def root():
    return redirect(url_for("home.index"))


@bp.route("/home")
def index():
    ctx = services()
    statuses = ctx.manager.statuses() if ctx.manager else []
    attention = ctx.store.overview.attention()
    summary = {
        "profiles": ctx.store.profiles.count(),
        "unanswered": attention.unanswered,
        "queued": attention.queued,
        "failed_today": attention.failed_today,
        "modems_up": sum(1 for s in statuses if s.state == "up"),
        "modems": len([s for s in statuses if s.state != "unconfigured"]),
    }
    recent = ctx.store.overview.recent_inbound(8)
    return render_template(
        "home.html",
        summary=summary,
        recent=recent,
        short_codes=short_codes_status(ctx),
        statuses=statuses,
        shown_time=shown_time,
    )
