"""Profiles: list, search, add, edit, import/export; a profile's page; Text This Profile."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("profiles", __name__)


@bp.route("/profiles")
def index():
    abort(501)  # being built (issue 5)


@bp.route("/profiles/<int:profile_id>")
def show(profile_id: int):
    abort(501)  # being built (issue 5)
