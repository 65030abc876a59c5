"""Home: what needs attention now (unanswered messages, the queue, modems), with the left pane."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, url_for

from ..helpers import short_codes_status

bp = Blueprint("home", __name__)


@bp.route("/")
def root():
    return redirect(url_for("home.index"))


@bp.route("/home")
def index():
    ctx = g.ctx
    db = ctx.store.db
    statuses = ctx.manager.statuses() if ctx.manager else []
    summary = {
        "profiles": ctx.store.profiles.count(),
        "unanswered": db.value(
            "SELECT COUNT(*) FROM messages WHERE direction='in' AND agent_state IN"
            " ('open','claimed')"
        ),
        "queued": db.value(
            "SELECT COUNT(*) FROM messages WHERE direction='out' AND status IN ('queued','sending')"
        ),
        "failed_today": db.value(
            "SELECT COUNT(*) FROM messages WHERE direction='out' AND status IN"
            " ('failed','expired') AND updated_at >= date('now')"
        ),
        "modems_up": sum(1 for s in statuses if s.state == "up"),
        "modems": len([s for s in statuses if s.state != "unconfigured"]),
    }
    recent = db.q(
        "SELECT m.*, p.name AS profile_name FROM messages m JOIN profiles p ON p.id = m.profile_id"
        " WHERE m.direction = 'in' ORDER BY m.id DESC LIMIT 8"
    )
    return render_template(
        "home.html",
        summary=summary,
        recent=recent,
        short_codes=short_codes_status(ctx),
        statuses=statuses,
    )
