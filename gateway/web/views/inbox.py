"""Inbox: recent inbound messages with their type and actions."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("inbox", __name__)


@bp.route("/inbox")
def index():
    abort(501)  # being built (issue 5)
