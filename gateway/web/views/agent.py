"""Agent View: the queue of unanswered messages."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("agent", __name__)


@bp.route("/agent")
def index():
    abort(501)  # being built (issue 5)
