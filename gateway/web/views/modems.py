"""Modems: identity, signal, registration, queue and counters of each modem."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("modems", __name__)


@bp.route("/modems")
def index():
    abort(501)  # being built (issue 5)
