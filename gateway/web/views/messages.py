"""Messages: every message with status, modem, parts and errors."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("messages", __name__)


@bp.route("/messages")
def index():
    abort(501)  # being built (issue 5)
