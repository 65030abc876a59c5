"""Settings (admins): users, short codes and the configuration in force."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("settings", __name__)


@bp.route("/settings")
def index():
    abort(501)  # being built (issue 5)
