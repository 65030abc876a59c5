"""Phones (demo): the simulated handsets, to try the round trip alone."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("phones", __name__)


@bp.route("/phones")
def index():
    abort(501)  # being built (issue 5)
